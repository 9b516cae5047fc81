use sharedctypes::SharedStruct;

#[derive(Clone, SharedStruct)]
#[repr(C)]
struct Boxed {
    value: Box<u64>,
}

fn main() {}
