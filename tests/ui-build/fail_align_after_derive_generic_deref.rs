// As `fail_align_after_derive_generic_get`, for reaching a field of an array element
// (`Deref` to `StampFields`).
use sharedctypes::{RawArray, SharedStruct};

#[derive(Clone, Copy, SharedStruct)]
#[packer::align(64)]
#[repr(C)]
struct Stamp<T> {
    seconds: u64,
    extra: T,
}

fn main() {
    let a = RawArray::<Stamp<u16>>::zeroed(2).unwrap();
    a[1].extra.set(7);
}
