use sharedctypes::SharedStruct;

#[derive(Clone, SharedStruct)]
#[repr(C)]
struct Person {
    age: u8,
    name: String,
}

fn main() {}
