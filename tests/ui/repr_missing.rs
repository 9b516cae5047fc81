use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
struct Point {
    x: f64,
    y: f64,
}

fn main() {}
