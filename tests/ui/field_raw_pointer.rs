use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Node {
    value: u32,
    next: *const Node,
}

fn main() {}
