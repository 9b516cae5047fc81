use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Flags {
    count: u32,
    done: bool,
}

fn main() {}
