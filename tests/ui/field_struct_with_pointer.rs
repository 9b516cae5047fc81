// A field whose type is a plain struct (not derived) that holds a pointer.
use sharedctypes::SharedStruct;

#[derive(Clone, Copy)]
struct Handle {
    ptr: *const u8,
}

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Resource {
    id: u32,
    handle: Handle,
}

fn main() {}
