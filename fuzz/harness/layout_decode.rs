//! The decoder of the layouts stored in a heap's directory, on arbitrary bytes, and the
//! comparison `lookup` makes between a stored layout and the one asked for.
//!
//! Input: `len: u16 (LE)`, then `len` bytes of a first encoding, then a second encoding
//! (whatever remains). Properties: nothing panics or runs away; a layout that decodes
//! encodes back to exactly the same bytes; equal layouts have no differences, and
//! differences are bounded (32 clauses and a last one saying more were found).

use sharedctypes::__fuzz::DecodedLayout;
use sharedctypes::{SharedStruct, SharedType};

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Inner {
    id: u16,
    flags: [u8; 2],
}

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Record {
    x: f64,
    y: f32,
    count: u32,
    inner: Inner,
    tags: [[i8; 3]; 2],
}

/// `lookup` never lists more than this many differences (32, then "more not listed").
const MAX_DIFFERENCES: usize = 33;

fn check(bytes: &[u8], others: &[DecodedLayout]) -> Option<DecodedLayout> {
    let l = DecodedLayout::decode(bytes)?;
    let encoded = l.encode().expect("a decoded layout encodes again");
    assert_eq!(
        encoded, bytes,
        "decode → encode is not the identity for {l}"
    );
    let _ = l.to_string();
    let _ = l.short_name();
    assert_eq!(l.differences(&l.clone()), Vec::<String>::new());
    for o in others {
        for (a, b) in [(&l, o), (o, &l)] {
            let d = a.differences(b);
            assert!(d.len() <= MAX_DIFFERENCES, "{} differences", d.len());
            if a == b {
                assert!(d.is_empty(), "equal layouts differ: {d:?}");
            }
        }
    }
    Some(l)
}

/// Runs one input; panics on a broken property.
pub fn run(data: &[u8]) {
    let mut known: Vec<DecodedLayout> = [&u32::LAYOUT, &<[u8; 3]>::LAYOUT, &Record::LAYOUT]
        .into_iter()
        .map(|l| DecodedLayout::of(l).expect("a small layout can be stored"))
        .collect();
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (first, second) = rest.split_at(split);
    if let Some(a) = check(first, &known) {
        known.push(a);
    }
    check(second, &known);
}
