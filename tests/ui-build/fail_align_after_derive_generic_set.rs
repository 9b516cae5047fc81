// As `fail_align_after_derive_generic_get`, for writing a whole `Stamp<u32>` with `set`.
use sharedctypes::{RawValue, SharedStruct};

#[derive(Clone, Copy, SharedStruct)]
#[packer::align(64)]
#[repr(C)]
struct Stamp<T> {
    seconds: u64,
    extra: T,
}

fn main() {
    let v = RawValue::<Stamp<u32>>::zeroed().unwrap();
    v.set(Stamp { seconds: 1, extra: 2 });
}
