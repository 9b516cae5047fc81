// A packing that moves no field compiles and works: with every field of alignment 1,
// `repr(packed)` gives the layout of `repr(C)`, and so does `packed(2)` around fields
// of alignment 2 at most (here added by attribute macros the derive does not see). A generic field, or
// an array of generic length, is refused: its alignment is not known at the definition.
use sharedctypes::{RawValue, SharedStruct, SharedType};

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[packer::packed]
#[repr(C)]
struct Bytes {
    tag: u8,
    data: [u8; 3],
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[packer::packed(2)]
#[repr(C)]
struct Halves {
    a: u8,
    b: u16,
    c: [i16; 2],
}

fn main() {
    let b = RawValue::new(Bytes { tag: 1, data: [2, 3, 4] }).unwrap();
    b.data[2].set(40);
    assert_eq!(b.get(), Bytes { tag: 1, data: [2, 3, 40] });
    assert_eq!((Bytes::LAYOUT.size, Bytes::LAYOUT.align), (4, 1));

    let h = RawValue::new(Halves { a: 1, b: 2, c: [3, 4] }).unwrap();
    h.b.set(20);
    assert_eq!(h.get(), Halves { a: 1, b: 20, c: [3, 4] });
    assert_eq!((Halves::LAYOUT.size, Halves::LAYOUT.align), (8, 2));
}
