//! The code `#[derive(SharedStruct)]` generates names everything by absolute path: it
//! compiles without the prelude, and beside user items named like what it uses
//! (`Result`, `Option`, `Shared`, `Box`, `Copy`, `SharedType`, modules `core` and
//! `sharedctypes`, …). A user type named `Box` that is not generic is not mistaken for
//! the standard `Box`.

use sharedctypes::{Process, RawValue, SharedType};

/// No prelude at all: every name the generated code uses must be absolute.
mod no_prelude {
    #![no_implicit_prelude]

    #[derive(
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::fmt::Debug,
        ::core::cmp::PartialEq,
        ::sharedctypes::SharedStruct,
    )]
    #[repr(C)]
    pub struct Point {
        pub x: f64,
        pub y: f64,
    }

    #[derive(
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::fmt::Debug,
        ::core::cmp::PartialEq,
        ::sharedctypes::SharedStruct,
    )]
    #[repr(C, align(32))]
    pub struct Tagged<T, const N: usize>(pub [T; N], pub Point)
    where
        T: ::core::marker::Copy;

    /// Reads and writes through the generated `Fields` structs, without the prelude.
    pub fn double(t: &::sharedctypes::Shared<Tagged<u16, 3>>) {
        t.1.x.update(|x| x * 2.0);
        t.1.y.update(|y| y * 2.0);
        for e in t.0.iter() {
            e.update(|v| v * 2);
        }
    }
}

/// User items that shadow every name the generated code might use unqualified.
#[allow(dead_code, non_camel_case_types)]
mod shadowed {
    pub mod core {}
    pub mod sharedctypes {}
    pub mod std {}
    pub trait SharedType {}
    pub trait Copy {}
    pub trait Clone {}
    pub trait Sized {}
    pub struct Some;
    pub struct None;
    pub struct Ok;
    pub struct Err;
    pub type str = u8;

    // `Result`, `Option`, `Shared` and `Box` are shared structs themselves.
    #[derive(::core::clone::Clone, ::core::marker::Copy, ::sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Result {
        pub ok: u32,
        pub err: u32,
    }

    #[derive(::core::clone::Clone, ::core::marker::Copy, ::sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Option(pub u8, pub Result);

    #[derive(::core::clone::Clone, ::core::marker::Copy, ::sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Shared {
        pub value: i64,
    }

    /// Not the standard `Box`: not generic, so the derive leaves it to the compiler,
    /// which finds it is a `SharedType`.
    #[derive(::core::clone::Clone, ::core::marker::Copy, ::sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Box {
        pub w: u16,
        pub h: u16,
    }

    /// Field names that the generated code also uses for its own variables, and a
    /// type parameter named like the generated helpers' own.
    #[derive(::core::clone::Clone, ::core::marker::Copy, ::sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Crate<__T> {
        pub src: Shared,
        pub dst: Option,
        pub value: Box,
        pub this: [Box; 2],
        pub t: __T,
    }
}

fn in_child(f: impl FnOnce() + Send + 'static) {
    let status = Process::spawn(f).expect("fork").wait().expect("wait");
    assert!(status.success(), "the child failed: {status}");
}

#[test]
fn derived_without_the_prelude() {
    use no_prelude::{Point, Tagged};

    let v = RawValue::new(Tagged([1u16, 2, 3], Point { x: 0.5, y: -1.0 })).unwrap();
    {
        let v = v.clone();
        in_child(move || no_prelude::double(&v));
    }
    assert_eq!(v.get(), Tagged([2, 4, 6], Point { x: 1.0, y: -2.0 }));
    assert_eq!(<Tagged<u16, 3>>::LAYOUT.align, 32);
}

#[test]
fn derived_beside_shadowing_names() {
    use shadowed::{Box, Crate, Option, Result, Shared};

    let init = Crate {
        src: Shared { value: -1 },
        dst: Option(7, Result { ok: 1, err: 2 }),
        value: Box { w: 3, h: 4 },
        this: [Box { w: 5, h: 6 }; 2],
        t: 8u64,
    };
    let v = RawValue::new(init).unwrap();
    {
        let v = v.clone();
        in_child(move || {
            v.src.value.set(100);
            v.dst.1.err.update(|e| e * 10);
            v.value.h.set(40);
            v.this[1].w.set(50);
            v.t.update(|t| t + 1);
        });
    }
    let got = v.get();
    assert_eq!(got.src.value, 100);
    assert_eq!((got.dst.0, got.dst.1.ok, got.dst.1.err), (7, 1, 20));
    assert_eq!((got.value.w, got.value.h), (3, 40));
    assert_eq!((got.this[0].w, got.this[1].w), (5, 50));
    assert_eq!(got.t, 9);
    assert_eq!(<Crate<u64>>::LAYOUT.size, std::mem::size_of::<Crate<u64>>());
}
