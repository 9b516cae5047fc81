//! `#[derive(SharedStruct)]` for the [`sharedctypes`](https://docs.rs/sharedctypes) crate.
//!
//! Use it through `sharedctypes`, which re-exports it: `use sharedctypes::SharedStruct;`
//! names both the derive and its trait. The derive's own documentation says what it
//! accepts, generates and rejects.
//!
//! The derive works in three stages, each in its own module: `ast` turns the
//! `syn::DeriveInput` into a small model of the struct, `valid` checks it (collecting
//! every error, not just the first), and `expand` writes the code.

mod ast;
mod ctxt;
mod expand;
mod repr;
mod valid;

use proc_macro::TokenStream;

/// Lets a `#[repr(C)]` struct live in shared memory: implements `SharedType` and
/// `SharedStruct` for it, and generates `<Name>Fields`, the struct that `Shared<Name>`
/// derefs to, so that fields are read and written in place (`p.x.get()`,
/// `p.inner.z.update(|z| z + 1)`).
///
/// ```
/// use sharedctypes::{Process, RawArray, SharedStruct};
///
/// #[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
/// #[repr(C)]
/// pub struct Point {
///     pub x: f64,
///     pub y: f64,
/// }
///
/// #[derive(Clone, Copy, SharedStruct)]
/// #[repr(C)]
/// struct Path {
///     len: u32,
///     points: [Point; 4], // nested structs and arrays of them
/// }
///
/// let a = RawArray::from_slice(&[Point { x: 1.5, y: -2.0 }])?;
/// let child = {
///     let a = a.clone();
///     Process::spawn(move || {
///         a[0].x.update(|x| x * x); // `a[0]` is a `Shared<Point>`, `.x` a `Shared<f64>`
///     })?
/// };
/// child.join()?;
/// assert_eq!(a[0].get(), Point { x: 2.25, y: -2.0 });
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// # What it accepts
///
/// A struct with `#[repr(C)]` (optionally with `align(N)`), with named fields, tuple
/// fields or none, any visibility, type and const generics, and raw identifiers
/// (`r#type`). Every field type must be a `SharedType`: an integer, `f32`, `f64`, an
/// array of them (nested arrays too), or another struct with this derive. The struct
/// must also be `Copy` (derive `Clone` and `Copy` alongside).
///
/// A generic struct gets `T: SharedType` bounds on its type parameters, so `Pair<u32>`
/// can live in shared memory and `Pair<*const u8>` is an error where it is used.
///
/// # What it generates
///
/// - `unsafe impl SharedType`, whose `LAYOUT` describes the struct: its bare name
///   (without path, generics or `r#`), size, alignment, and each field's name (`0`,
///   `1`, … for tuple fields), offset and layout;
/// - `unsafe impl SharedStruct`, with `type Fields = <Name>Fields`;
/// - `<Name>Fields` (for `r#type`: `typeFields`), a `#[repr(C)]` struct with the same
///   visibility, generics and `align(N)` as `Name`, holding one `Shared<F>` cell per
///   field, with the same names (or positions) and in the same order;
/// - compile-time checks that `<Name>Fields` has the size, the alignment and every field
///   offset of `Name`. They run where a non-generic struct is defined; for a generic
///   one, for each instantiation that is read, written, reached through
///   `Shared<Name<…>>` or described by `LAYOUT` — when that code is monomorphized, so
///   `cargo build` reports a failure and `cargo check` may not;
/// - a function, never called, that borrows every field: a reference to a field of a
///   packed struct is a compile error (E0793) wherever packing could misalign it, so a
///   `#[repr(packed)]` the derive cannot see (below) is still refused, generic or not.
///
/// **Field visibility.** Each cell in `<Name>Fields` has the visibility of its field in
/// `Name`, not `pub`: shared memory must not open a field that the struct keeps
/// private. Code that can read `point.x` can use `shared_point.x`, and no other code
/// can:
///
/// ```compile_fail,E0616
/// mod bank {
///     #[derive(Clone, Copy, sharedctypes::SharedStruct)]
///     #[repr(C)]
///     pub struct Account {
///         pub balance: i64,
///         pin: u32, // private to `bank`, in `AccountFields` too
///     }
/// }
///
/// fn peek(a: &sharedctypes::Shared<bank::Account>) -> u32 {
///     a.pin.get() // error[E0616]: field `pin` of struct `AccountFields` is private
/// }
/// ```
///
/// # What it rejects
///
/// Each problem is its own compile error, pointing at the offending token; a struct
/// with several bad fields gets one error per field, in one build.
///
/// - A field that is or contains a raw pointer, a reference (`&str` too), a function
///   pointer, `Box`, `Vec`, `String`, `Rc`, `Arc` or `NonNull`: an address means nothing
///   in another process. The message names the field and suggests what to store
///   instead (an index or an offset into a shared array; the bytes of a text inline):
///
/// ```compile_fail
/// use sharedctypes::SharedStruct;
///
/// #[derive(Clone, Copy, SharedStruct)]
/// #[repr(C)]
/// struct Node {
///     value: u32,
///     next: *const Node, // error: field `next` is a raw pointer, which cannot live
///                        // in shared memory …; store an index or an offset …
/// }
/// ```
///
/// - Any other field type that is not a `SharedType` — `bool` and `char` (not every bit
///   pattern is valid), tuples, a struct without this derive — is reported by the
///   compiler, at the field, as "`bool` cannot live in shared memory".
/// - A struct without `#[repr(C)]` (also with `#[repr(Rust)]`), with
///   `#[repr(packed)]` or `#[repr(transparent)]`, or with lifetime parameters; enums
///   and unions.
/// - A `#[repr(packed)]` or `#[repr(align(N))]` added by an attribute macro written
///   *after* `#[derive(SharedStruct)]`: such a macro expands after the derive, which
///   never sees what it adds, so the derive cannot name the problem itself. The
///   compiler reports a packing that could misalign a field as E0793, "reference to
///   field of packed struct is unaligned", at that field (ignore its advice about
///   unaligned reads: shared fields are accessed atomically, which needs alignment),
///   and a layout that differs from `<Name>Fields` with a message naming the likely
///   cause. A packing that moves no field (every field of alignment 1, or
///   `packed(N)` around fields of alignment at most `N`) leaves `repr(C)`'s layout and
///   is accepted. Write such a macro before the derive, and it sees the `repr`.
///
/// Pointer types are recognised by name, before the compiler resolves them: a type of
/// your own named `String`, or a generic one named `Box`, `Vec`, `Rc`, `Arc` or
/// `NonNull`, is taken for the standard one (a non-generic type named `Box` is not).
///
/// The generated code uses absolute paths only (`::core::…`, `::sharedctypes::…`), so
/// it works under `#![no_implicit_prelude]` and beside items named `Result`, `Option`
/// or `Shared`; it needs the `sharedctypes` crate under that name.
#[proc_macro_derive(SharedStruct)]
pub fn derive_shared_struct(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
