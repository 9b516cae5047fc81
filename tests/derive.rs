//! `#[derive(SharedStruct)]` at run time: derived structs (nested, in arrays, tuple,
//! generic, over-aligned, with raw identifiers) read and written by forked children,
//! and the layout descriptions the derive generates.
//!
//! Each child only touches shared objects and finishes; everything is asserted in the
//! parent, after `join`, from the child's exit status and what it left in shared memory.

use std::mem::{align_of, offset_of, size_of};

use sharedctypes::{
    Array, LayoutKind, Lock, Process, RawArray, RawValue, SharedStruct, SharedType, TypeLayout,
    Value,
};

/// Runs `f` in a forked child and asserts that it exited successfully.
#[track_caller]
fn in_child(f: impl FnOnce() + Send + 'static) {
    let status = Process::spawn(f).expect("fork").wait().expect("wait");
    assert!(status.success(), "the child failed: {status}");
}

/// The struct's fields as (name, offset, field type's short name).
fn fields(layout: &TypeLayout) -> Vec<(&'static str, usize, String)> {
    match layout.kind {
        LayoutKind::Struct { fields, .. } => fields
            .iter()
            .map(|f| (f.name, f.offset, f.layout.short_name()))
            .collect(),
        other => panic!("not a struct layout: {other:?}"),
    }
}

fn struct_name(layout: &TypeLayout) -> &'static str {
    match layout.kind {
        LayoutKind::Struct { name, .. } => name,
        other => panic!("not a struct layout: {other:?}"),
    }
}

// --- The seed's example -------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

#[test]
fn seed_points_are_squared_in_a_child() {
    let lock = Lock::new().unwrap();
    let a = Array::from_slice_with_lock(
        &[
            Point { x: 1.875, y: -6.25 },
            Point { x: -5.75, y: 2.0 },
            Point { x: 2.375, y: 9.5 },
        ],
        lock,
    )
    .unwrap();
    {
        let a = a.clone();
        in_child(move || {
            let points = a.lock().unwrap_or_else(|died| died.into_inner());
            for p in points.iter() {
                p.x.update(|x| x * x);
                p.y.update(|y| y * y);
            }
        });
    }
    let got: Vec<(f64, f64)> = a.to_vec().iter().map(|p| (p.x, p.y)).collect();
    assert_eq!(
        got,
        [(3.515625, 39.0625), (33.0625, 4.0), (5.640625, 90.25)]
    );
}

// --- Nested structs and arrays of structs ---------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Inner {
    z: i32,
    w: [u16; 3],
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Outer {
    id: u8,
    inner: Inner,
    pair: [Inner; 2],
    grid: [[i64; 2]; 3],
    total: u128,
}

fn outer() -> Outer {
    Outer {
        id: 1,
        inner: Inner {
            z: -7,
            w: [1, 2, 3],
        },
        pair: [
            Inner {
                z: 10,
                w: [4, 5, 6],
            },
            Inner {
                z: 20,
                w: [7, 8, 9],
            },
        ],
        grid: [[1, 2], [3, 4], [5, 6]],
        total: u128::MAX - 1,
    }
}

#[test]
fn nested_struct_fields_are_reached_in_place_by_a_child() {
    let v = RawValue::new(outer()).unwrap();
    {
        let v = v.clone();
        in_child(move || {
            v.id.set(2);
            v.inner.z.update(|z| z * 3);
            v.inner.w[2].set(30);
            v.pair[1].z.update(|z| z + 1);
            v.pair[0].w[0].set(40);
            v.grid[2][1].update(|g| g * 100);
            v.total.update(|t| t + 1);
        });
    }
    let mut want = outer();
    want.id = 2;
    want.inner.z = -21;
    want.inner.w[2] = 30;
    want.pair[1].z = 21;
    want.pair[0].w[0] = 40;
    want.grid[2][1] = 600;
    want.total = u128::MAX;
    assert_eq!(v.get(), want);
}

#[test]
fn a_child_replaces_whole_nested_structs() {
    let v = RawValue::new(outer()).unwrap();
    {
        let v = v.clone();
        in_child(move || {
            v.inner.set(Inner {
                z: 99,
                w: [9, 9, 9],
            });
            v.pair.set([Inner { z: 0, w: [0; 3] }; 2]);
        });
    }
    let got = v.get();
    assert_eq!(
        got.inner,
        Inner {
            z: 99,
            w: [9, 9, 9]
        }
    );
    assert_eq!(got.pair, [Inner { z: 0, w: [0; 3] }; 2]);
    assert_eq!(got.grid, outer().grid);
}

#[test]
fn arrays_of_structs_are_shared_with_a_child() {
    let raw = RawArray::from_slice(&[outer(), outer(), outer()]).unwrap();
    let locked: Value<Inner> = Value::new(Inner { z: 1, w: [0; 3] }).unwrap();
    {
        let (raw, locked) = (raw.clone(), locked.clone());
        in_child(move || {
            for (i, o) in raw.iter().enumerate() {
                o.id.set(i as u8 * 10);
                o.pair[i % 2].z.set(i as i32);
            }
            let g = locked.lock().unwrap_or_else(|died| died.into_inner());
            g.z.update(|z| z + 41);
            g.w.set([1, 2, 3]);
        });
    }
    let got = raw.to_vec();
    for (i, o) in got.iter().enumerate() {
        assert_eq!(o.id, i as u8 * 10);
        assert_eq!(o.pair[i % 2].z, i as i32);
        assert_eq!(o.inner, outer().inner);
    }
    assert_eq!(
        locked.get(),
        Inner {
            z: 42,
            w: [1, 2, 3]
        }
    );
}

// --- Tuple structs ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Rgb(u8, u8, u8);

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Pixel(pub Rgb, pub f32);

#[test]
fn tuple_struct_fields_are_dot_0_dot_1() {
    let a = RawArray::from_slice(&[Pixel(Rgb(1, 2, 3), 0.5), Pixel(Rgb(4, 5, 6), 1.5)]).unwrap();
    {
        let a = a.clone();
        in_child(move || {
            for p in a.iter() {
                p.0 .0.update(|r| r * 10);
                p.0 .2.set(255);
                p.1.update(|alpha| alpha * 2.0);
            }
        });
    }
    assert_eq!(
        a.to_vec(),
        [Pixel(Rgb(10, 2, 255), 1.0), Pixel(Rgb(40, 5, 255), 3.0)]
    );
}

// --- Generic structs -------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Pair<T> {
    a: T,
    b: T,
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Buffer<const N: usize> {
    len: u32,
    data: [u8; N],
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Grid<T, const W: usize, const H: usize = 2>
where
    T: Default,
{
    cells: [[T; W]; H],
    count: usize,
}

#[test]
fn generic_structs_work_for_each_instantiation() {
    let floats = RawValue::new(Pair { a: 1.5f32, b: -2.5 }).unwrap();
    let nested = RawValue::new(Pair {
        a: Inner { z: 1, w: [1; 3] },
        b: Inner { z: 2, w: [2; 3] },
    })
    .unwrap();
    let buf = RawValue::new(Buffer::<5> {
        len: 0,
        data: [0; 5],
    })
    .unwrap();
    let grid = RawValue::new(Grid::<i16, 3> {
        cells: [[0; 3]; 2],
        count: 0,
    })
    .unwrap();
    {
        let (floats, nested, buf, grid) =
            (floats.clone(), nested.clone(), buf.clone(), grid.clone());
        in_child(move || {
            floats.a.update(|a| a * 2.0);
            floats.b.set(0.25);
            nested.b.w[1].set(200);
            nested.a.z.set(100);
            for (i, byte) in b"hello".iter().enumerate() {
                buf.data[i].set(*byte);
            }
            buf.len.set(5);
            grid.cells[1][2].set(-12);
            grid.count.update(|c| c + 1);
        });
    }
    assert_eq!(floats.get(), Pair { a: 3.0, b: 0.25 });
    assert_eq!(
        nested.get(),
        Pair {
            a: Inner { z: 100, w: [1; 3] },
            b: Inner {
                z: 2,
                w: [2, 200, 2]
            },
        }
    );
    assert_eq!(buf.get().data, *b"hello");
    assert_eq!(buf.len.get(), 5);
    assert_eq!(grid.get().cells, [[0, 0, 0], [0, 0, -12]]);
    assert_eq!(grid.count.get(), 1);
}

#[test]
fn generic_layouts_describe_each_instantiation() {
    let l = <Pair<u16>>::LAYOUT;
    assert_eq!(struct_name(&l), "Pair");
    assert_eq!((l.size, l.align), (4, 2));
    assert_eq!(
        fields(&l),
        [("a", 0, "u16".to_owned()), ("b", 2, "u16".to_owned())]
    );
    let l = <Pair<Point>>::LAYOUT;
    assert_eq!((l.size, l.align), (32, 8));
    assert_eq!(
        fields(&l),
        [("a", 0, "Point".to_owned()), ("b", 16, "Point".to_owned())]
    );
    let l = <Buffer<3>>::LAYOUT;
    assert_eq!(struct_name(&l), "Buffer");
    assert_eq!((l.size, l.align), (8, 4));
    assert_eq!(
        fields(&l),
        [
            ("len", 0, "u32".to_owned()),
            ("data", 4, "[u8; 3]".to_owned())
        ]
    );
    let l = <Grid<u8, 3, 1>>::LAYOUT;
    assert_eq!(
        fields(&l),
        [
            ("cells", 0, "[[u8; 3]; 1]".to_owned()),
            (
                "count",
                offset_of!(Grid<u8, 3, 1>, count),
                "usize".to_owned()
            ),
        ]
    );
}

// --- Over-aligned structs --------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C, align(64))]
struct CacheLine {
    hits: u64,
    tag: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Padded {
    tag: u8,
    line: CacheLine,
}

fn misaligned(addr: usize) -> u32 {
    u32::from(addr % 64 != 0)
}

#[test]
fn over_aligned_structs_are_placed_aligned() {
    assert_eq!((size_of::<CacheLine>(), align_of::<CacheLine>()), (64, 64));
    assert_eq!((CacheLine::LAYOUT.size, CacheLine::LAYOUT.align), (64, 64));
    assert_eq!(align_of::<CacheLineFields>(), 64);

    // Something small first, so that the next allocation is not aligned by chance.
    let _small = RawValue::new(1u8).unwrap();
    let one = RawValue::new(CacheLine { hits: 1, tag: 1 }).unwrap();
    let _small = RawValue::new(1u8).unwrap();
    let many = RawArray::from_slice(&[CacheLine { hits: 0, tag: 0 }; 5]).unwrap();
    let _small = RawValue::new(1u8).unwrap();
    let nested = RawValue::new(Padded {
        tag: 3,
        line: CacheLine { hits: 2, tag: 2 },
    })
    .unwrap();
    let misaligned_in_child = RawValue::new(u32::MAX).unwrap();

    let mut bad = misaligned(one.as_ptr() as usize) + misaligned(nested.line.as_ptr() as usize);
    bad += many
        .iter()
        .map(|l| misaligned(l.as_ptr() as usize))
        .sum::<u32>();
    assert_eq!(bad, 0, "misaligned in the parent");
    assert_eq!(offset_of!(Padded, line), 64);

    {
        let (one, many, nested, out) = (
            one.clone(),
            many.clone(),
            nested.clone(),
            misaligned_in_child.clone(),
        );
        in_child(move || {
            let mut bad = misaligned(one.as_ptr() as usize);
            bad += misaligned(nested.line.as_ptr() as usize);
            for (i, l) in many.iter().enumerate() {
                bad += misaligned(l.as_ptr() as usize);
                l.hits.set(i as u64 + 100);
                l.tag.set(i as u8);
            }
            one.hits.update(|h| h + 1);
            nested.line.tag.set(9);
            out.set(bad);
        });
    }
    assert_eq!(misaligned_in_child.get(), 0, "misaligned in the child");
    assert_eq!(one.get(), CacheLine { hits: 2, tag: 1 });
    assert_eq!(nested.get().line, CacheLine { hits: 2, tag: 9 });
    for (i, l) in many.to_vec().iter().enumerate() {
        assert_eq!(
            *l,
            CacheLine {
                hits: i as u64 + 100,
                tag: i as u8
            }
        );
    }
}

// --- Raw identifiers -------------------------------------------------------------------

#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct r#struct {
    r#type: u32,
    r#fn: [i16; 2],
    r#match: Inner,
}

#[test]
fn raw_identifiers_keep_their_names_without_the_prefix() {
    let v = RawValue::new(r#struct {
        r#type: 1,
        r#fn: [2, 3],
        r#match: Inner { z: 4, w: [5; 3] },
    })
    .unwrap();
    {
        let v = v.clone();
        in_child(move || {
            v.r#type.set(10);
            v.r#fn[1].set(30);
            v.r#match.z.set(40);
        });
    }
    let got = v.get();
    assert_eq!((got.r#type, got.r#fn, got.r#match.z), (10, [2, 30], 40));

    // The companion struct drops the prefix too: `structFields`.
    let _: &structFields = &v;
    let l = r#struct::LAYOUT;
    assert_eq!(struct_name(&l), "struct");
    let names: Vec<_> = fields(&l).into_iter().map(|(n, ..)| n).collect();
    assert_eq!(names, ["type", "fn", "match"]);
}

// --- Layout descriptions ---------------------------------------------------------------

mod deep {
    pub mod inside {
        use sharedctypes::SharedStruct;

        /// A struct whose path is long: the layout keeps only its name.
        #[derive(Clone, Copy, SharedStruct)]
        #[repr(C)]
        pub struct Sample {
            pub a: u8,
            pub b: u32,
            pub c: [u16; 3],
            pub d: sharedctypes::typecode!('d'), // a type written as a macro
        }
    }
}

#[test]
fn layout_of_a_named_struct() {
    use deep::inside::Sample;

    let l = Sample::LAYOUT;
    assert_eq!(struct_name(&l), "Sample");
    assert_eq!(
        (l.size, l.align),
        (size_of::<Sample>(), align_of::<Sample>())
    );
    assert_eq!((l.size, l.align), (24, 8));
    assert_eq!(
        fields(&l),
        [
            ("a", 0, "u8".to_owned()),
            ("b", 4, "u32".to_owned()),
            ("c", 8, "[u16; 3]".to_owned()),
            ("d", 16, "f64".to_owned()),
        ]
    );
    assert_eq!(
        l.to_string(),
        "Sample { a: u8 @0, b: u32 @4, c: [u16; 3] @8, d: f64 @16 }"
    );
}

#[test]
fn layout_of_a_tuple_struct_names_fields_by_index() {
    let l = Pixel::LAYOUT;
    assert_eq!(struct_name(&l), "Pixel");
    assert_eq!((l.size, l.align), (8, 4));
    assert_eq!(
        fields(&l),
        [("0", 0, "Rgb".to_owned()), ("1", 4, "f32".to_owned())]
    );
    assert_eq!(fields(&Rgb::LAYOUT).len(), 3);
    assert_eq!(fields(&Rgb::LAYOUT)[2].0, "2");
}

#[test]
fn layout_of_a_nested_struct_refers_to_the_inner_layout() {
    let l = Outer::LAYOUT;
    assert_eq!((l.size, l.align), (size_of::<Outer>(), align_of::<Outer>()));
    let LayoutKind::Struct { fields, .. } = l.kind else {
        panic!("not a struct")
    };
    let inner = fields[1];
    assert_eq!(
        (inner.name, inner.offset),
        ("inner", offset_of!(Outer, inner))
    );
    assert_eq!(*inner.layout, Inner::LAYOUT);
    let pair = fields[2];
    assert_eq!(pair.offset, offset_of!(Outer, pair));
    assert!(matches!(
        pair.layout.kind,
        LayoutKind::Array { elem, len: 2 } if *elem == Inner::LAYOUT
    ));
    assert_eq!(fields[4].offset, offset_of!(Outer, total));
}

#[test]
fn layout_of_an_over_aligned_struct() {
    let l = Padded::LAYOUT;
    assert_eq!((l.size, l.align), (128, 64));
    assert_eq!(
        fields(&l),
        [
            ("tag", 0, "u8".to_owned()),
            ("line", 64, "CacheLine".to_owned())
        ]
    );
}

// --- Visibility of the companion struct ------------------------------------------------

mod account {
    use sharedctypes::SharedStruct;

    /// `balance` is public, `pin` private to this module.
    #[derive(Clone, Copy, SharedStruct)]
    #[repr(C)]
    pub struct Account {
        pub balance: i64,
        pin: u32,
    }

    impl Account {
        pub fn new(balance: i64, pin: u32) -> Self {
            Account { balance, pin }
        }
    }

    /// Code in the defining module reaches the private cell, as it reaches the field.
    pub fn check_pin(a: &sharedctypes::Shared<Account>, pin: u32) -> bool {
        a.pin.get() == pin
    }
}

#[test]
fn cells_keep_the_visibility_of_their_fields() {
    let a = RawValue::new(account::Account::new(10, 1234)).unwrap();
    {
        let a = a.clone();
        in_child(move || {
            a.balance.update(|b| b + 5);
        });
    }
    assert_eq!(a.balance.get(), 15);
    assert!(account::check_pin(&a, 1234));
    // `a.pin` would not compile here: see tests/ui/private_field_stays_private.rs.
}

// --- Empty structs ----------------------------------------------------------------------

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Empty {}

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Unit;

#[test]
fn structs_without_fields_have_empty_layouts() {
    assert_eq!(fields(&Empty::LAYOUT), []);
    assert_eq!((Unit::LAYOUT.size, Unit::LAYOUT.align), (0, 1));
    assert_eq!(struct_name(&Unit::LAYOUT), "Unit");
}

// --- A packing the derive does not see --------------------------------------------------
//
// `#[packer::packed]` written after the derive expands after it, so the derive cannot
// reject the `packed`. A packing that could misalign a field does not compile (see
// tests/ui/packed_after_derive*.rs); one that moves no field is harmless and works.

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[packer::packed]
#[repr(C)]
struct PackedBytes {
    tag: u8,
    data: [u8; 3],
    signed: i8,
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct UnpackedBytes {
    tag: u8,
    data: [u8; 3],
    signed: i8,
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[packer::packed(2)]
#[repr(C)]
struct PackedHalves {
    a: u8,
    b: u16,
    c: [i16; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct UnpackedHalves {
    a: u8,
    b: u16,
    c: [i16; 2],
}

#[test]
fn a_packing_that_moves_no_field_keeps_the_repr_c_layout_and_works() {
    // The same layout as the unpacked twin, field by field (names aside).
    assert_eq!(
        (PackedBytes::LAYOUT.size, PackedBytes::LAYOUT.align),
        (UnpackedBytes::LAYOUT.size, UnpackedBytes::LAYOUT.align)
    );
    assert_eq!(fields(&PackedBytes::LAYOUT), fields(&UnpackedBytes::LAYOUT));
    assert_eq!(
        (PackedHalves::LAYOUT.size, PackedHalves::LAYOUT.align),
        (UnpackedHalves::LAYOUT.size, UnpackedHalves::LAYOUT.align)
    );
    assert_eq!(
        fields(&PackedHalves::LAYOUT),
        fields(&UnpackedHalves::LAYOUT)
    );

    let bytes = RawArray::from_slice(
        &[PackedBytes {
            tag: 1,
            data: [2, 3, 4],
            signed: -5,
        }; 3],
    )
    .unwrap();
    let halves = RawValue::new(PackedHalves {
        a: 1,
        b: 2,
        c: [3, 4],
    })
    .unwrap();
    {
        let (bytes, halves) = (bytes.clone(), halves.clone());
        in_child(move || {
            bytes[2].data[1].set(30);
            bytes[1].signed.update(|s| s * 10);
            halves.b.update(|b| b + 1000);
            halves.c[1].set(-4);
        });
    }
    let got = bytes.to_vec();
    assert_eq!((got[0].data, got[0].signed), ([2, 3, 4], -5));
    assert_eq!((got[1].data, got[1].signed), ([2, 3, 4], -50));
    assert_eq!((got[2].data, got[2].signed), ([2, 30, 4], -5));
    assert_eq!(
        halves.get(),
        PackedHalves {
            a: 1,
            b: 1002,
            c: [3, -4]
        }
    );
}
