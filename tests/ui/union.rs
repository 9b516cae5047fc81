use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
