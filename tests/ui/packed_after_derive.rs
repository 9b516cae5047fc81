// `#[repr(packed)]` added by an attribute macro written after the derive: the derive
// never sees it, but the struct still must not compile, because its `u32` field would
// be read and written by atomic instructions at a misaligned address.
use sharedctypes::SharedStruct;

#[derive(Clone, Copy, SharedStruct)]
#[packer::packed]
#[repr(C)]
struct Header {
    tag: u8,
    len: u32,
}

fn main() {}
