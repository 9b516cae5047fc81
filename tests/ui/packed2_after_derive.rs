// `#[repr(packed(2))]` added after the derive around a `u32` field: the field may sit
// at an address that is even but not a multiple of 4, which no atomic instruction
// accepts, so the struct must not compile.
use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[packer::packed(2)]
#[repr(C)]
struct Record {
    kind: u16,
    count: u32,
}

fn main() {}
