// Every bad field is reported, each at its own field, in one build: pointer-like types
// by the derive itself, other non-`SharedType` types by the compiler.
use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Everything {
    ok: u32,
    ptr: *const u8,
    name: &'static str,
    flag: bool,
    letter: char,
    also_ok: [f64; 2],
}

fn main() {}
