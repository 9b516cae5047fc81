use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Label<'a> {
    id: u32,
    text: &'a str,
}

fn main() {}
