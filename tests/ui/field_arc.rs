use sharedctypes::SharedStruct;

#[derive(Clone, SharedStruct)]
#[repr(C)]
struct Config {
    settings: std::sync::Arc<[u32; 4]>,
}

fn main() {}
