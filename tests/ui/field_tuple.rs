use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Segment {
    ends: (f64, f64),
}

fn main() {}
