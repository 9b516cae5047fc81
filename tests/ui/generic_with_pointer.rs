// A generic struct is checked where it is instantiated: `Pair<u32>` can live in shared
// memory, `Pair<*const u8>` cannot.
use sharedctypes::{RawValue, SharedStruct};

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Pair<T> {
    a: T,
    b: T,
}

fn share(a: *const u8, b: *const u8) {
    let _ok = RawValue::new(Pair { a: 1u32, b: 2 });
    let _bad = RawValue::new(Pair { a, b });
}

fn main() {}
