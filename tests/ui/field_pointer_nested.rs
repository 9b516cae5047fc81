// A pointer inside an array or a generic argument is found too, and the error points
// at the pointer itself.
use sharedctypes::SharedStruct;

#[derive(Clone, SharedStruct)]
#[repr(C)]
struct Table {
    slots: [*mut u8; 8],
    grid: [[&'static u16; 2]; 3],
    maybe: Option<Box<u32>>,
}

fn main() {}
