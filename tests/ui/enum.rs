use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
enum State {
    Idle,
    Busy(u32),
}

fn main() {}
