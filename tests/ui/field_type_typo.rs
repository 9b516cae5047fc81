// A typo in a field type gives rustc's ordinary "cannot find type" error and nothing
// from the derive. (rustc reports it for each item that names the type: the struct,
// the derived functions, the generated `PointFields`. cargo prints identical messages
// once, so a user sees exactly what they would see without `SharedStruct`.)
use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Point {
    x: f46,
    y: f64,
}

fn main() {}
