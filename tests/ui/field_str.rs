use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Greeting {
    id: u32,
    text: &'static str,
}

fn main() {}
