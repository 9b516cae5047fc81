use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C, packed)]
struct Header {
    tag: u8,
    len: u32,
}

fn main() {}
