// Forgetting `Copy` gives rustc's ordinary message about the missing trait.
use sharedctypes::SharedStruct;

#[derive(Clone, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

fn main() {}
