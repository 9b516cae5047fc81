//! `#[packer::packed]` and `#[packer::packed(N)]`: prepend `#[repr(packed)]` or
//! `#[repr(packed(N))]` to the item, leaving its tokens (and so their spans) untouched.
//!
//! A test helper for `sharedctypes`: an attribute macro written *after*
//! `#[derive(SharedStruct)]` expands after it, so the derive never sees this `packed`.
//! The item keeps its spans, so compiler errors still point at the user's fields.

use proc_macro::TokenStream;

/// Prepends `#[repr(packed)]` (no argument) or `#[repr(packed(N))]` to the item.
#[proc_macro_attribute]
pub fn packed(args: TokenStream, item: TokenStream) -> TokenStream {
    let repr = if args.is_empty() {
        "#[repr(packed)]".to_owned()
    } else {
        format!("#[repr(packed({args}))]")
    };
    let mut out: TokenStream = repr.parse().expect("a valid attribute");
    out.extend(item);
    out
}

/// Prepends `#[repr(align(N))]` to the item: the other `repr` the derive copies onto
/// `<Name>Fields`, and so must see.
#[proc_macro_attribute]
pub fn align(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut out: TokenStream = format!("#[repr(align({args}))]")
        .parse()
        .expect("a valid attribute");
    out.extend(item);
    out
}
