use sharedctypes::SharedStruct;

#[derive(Clone, SharedStruct)]
#[repr(C)]
struct Samples {
    len: usize,
    data: Vec<f64>,
}

fn main() {}
