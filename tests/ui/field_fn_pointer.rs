use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Task {
    id: u32,
    run: fn(u32) -> u32,
}

fn main() {}
