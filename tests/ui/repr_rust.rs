use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(Rust)]
struct Point {
    x: f64,
    y: f64,
}

fn main() {}
