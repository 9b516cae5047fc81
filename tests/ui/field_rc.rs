use std::rc::Rc;

use sharedctypes::SharedStruct;

#[derive(Clone, SharedStruct)]
#[repr(C)]
struct Cache {
    hits: u64,
    table: Rc<[u64; 16]>,
}

fn main() {}
