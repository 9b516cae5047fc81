// As `fail_align_after_derive_generic_get`, for the layout description that named
// heaps compare (`LAYOUT`).
use sharedctypes::{SharedStruct, SharedType};

#[derive(Clone, Copy, SharedStruct)]
#[packer::align(64)]
#[repr(C)]
struct Stamp<T> {
    seconds: u64,
    extra: T,
}

fn main() {
    let layout = <Stamp<u8> as SharedType>::LAYOUT;
    assert_eq!(layout.align, 64);
}
