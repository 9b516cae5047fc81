//! `#[derive(SharedStruct)]` for the [`sharedctypes`](https://docs.rs/sharedctypes) crate.
//!
//! Use it through `sharedctypes`, which re-exports it: `use sharedctypes::SharedStruct;`.
//!
//! The derive works in three stages, each in its own module: [`ast`] turns the
//! `syn::DeriveInput` into a small model of the struct, [`valid`] checks it (collecting
//! every error, not just the first), and [`expand`] writes the code.
//!
//! ```
//! use sharedctypes::{RawArray, SharedStruct};
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! pub struct Point {
//!     pub x: f64,
//!     pub y: f64,
//! }
//!
//! let a = RawArray::from_slice(&[Point { x: 1.5, y: -2.0 }])?;
//! a[0].x.update(|x| x * x);
//! assert_eq!(a[0].x.get(), 2.25);
//! # Ok::<(), sharedctypes::Error>(())
//! ```
//!
//! A pointer cannot be shared between processes, so it does not compile:
//!
//! ```compile_fail
//! use sharedctypes::SharedStruct;
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! struct Node {
//!     value: u32,
//!     next: *const Node, // error: store an index instead
//! }
//! ```

mod ast;
mod ctxt;
mod expand;
mod repr;
mod valid;

use proc_macro::TokenStream;

/// Derives `SharedType` and `SharedStruct` for a `#[repr(C)]` struct, and generates
/// `<Name>Fields`, the struct of `Shared<F>` cells that `Shared<Name>` derefs to.
///
/// See the [crate docs](crate) for an example, and `sharedctypes::SharedStruct` for
/// what the generated code guarantees.
#[proc_macro_derive(SharedStruct)]
pub fn derive_shared_struct(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
