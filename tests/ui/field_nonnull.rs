use std::ptr::NonNull;

use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Link {
    target: NonNull<u64>,
}

fn main() {}
