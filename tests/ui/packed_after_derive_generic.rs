// The same for a generic struct, whose layout checks otherwise run only where it is
// used: `P<u32>` would have its `u32` at offset 1. (`Clone` is written by hand: the
// standard derive would trip over the packed field of a generic struct first.)
use sharedctypes::SharedStruct;

#[derive(Copy, SharedStruct)]
#[packer::packed]
#[repr(C)]
struct P<T> {
    a: u8,
    b: T,
}

impl<T: Copy> Clone for P<T> {
    fn clone(&self) -> Self {
        *self
    }
}

fn main() {}
