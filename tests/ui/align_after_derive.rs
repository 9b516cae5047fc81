// `#[repr(align(N))]` added by an attribute macro written after the derive: the derive
// cannot copy it onto `StampFields`, so the layout check at the definition fails and
// says what probably happened.
use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[packer::align(64)]
#[repr(C)]
struct Stamp {
    seconds: u64,
    nanos: u32,
}

fn main() {}
