use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Counter {
    count: &'static u32,
}

fn main() {}
