// A generic struct whose layout differs from its `StampFields` (an `align` added by an
// attribute macro after the derive) is checked for each instantiation that touches
// shared memory: reading a whole `Stamp<u32>` with `get` does not compile.
use sharedctypes::{RawValue, SharedStruct};

#[derive(Clone, Copy, SharedStruct)]
#[packer::align(64)]
#[repr(C)]
struct Stamp<T> {
    seconds: u64,
    extra: T,
}

fn main() {
    let v = RawValue::new(Stamp { seconds: 1, extra: 2u32 }).unwrap();
    let _ = v.get();
}
