//! `#[repr(...)]` parsed into a typed value, each hint with its span.

use proc_macro2::Span;
use syn::{Attribute, LitInt};

/// The layout hints on the struct.
#[derive(Default)]
pub(crate) struct Repr {
    /// `repr(C)`'s span, if present.
    pub c: Option<Span>,
    /// `align(N)`, copied onto the generated `Fields` struct.
    pub align: Option<LitInt>,
    /// Hints that are not allowed, each with its own message.
    pub rejected: Vec<Rejected>,
}

/// A `repr` hint the derive does not accept.
pub(crate) struct Rejected {
    /// The hint's name, to point at.
    pub span: Span,
    /// Why it is refused and what to write instead.
    pub message: String,
    /// The message already says to use `#[repr(C)]` (so a missing `C` is not reported
    /// again).
    pub suggests_c: bool,
}

impl Repr {
    /// Parses every `#[repr(...)]` attribute.
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<Repr> {
        let mut repr = Repr::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
            attr.parse_nested_meta(|meta| {
                let span = meta
                    .path
                    .get_ident()
                    .map_or_else(Span::call_site, |i| i.span());
                let name = meta
                    .path
                    .get_ident()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let mut reject = |message: String, suggests_c: bool| {
                    repr.rejected.push(Rejected {
                        span,
                        message,
                        suggests_c,
                    })
                };
                match name.as_str() {
                    "C" => repr.c = Some(span),
                    "align" => {
                        let content;
                        syn::parenthesized!(content in meta.input);
                        repr.align = Some(content.parse()?);
                    }
                    "packed" => {
                        if meta.input.peek(syn::token::Paren) {
                            let content;
                            syn::parenthesized!(content in meta.input);
                            let _: LitInt = content.parse()?;
                        }
                        reject(
                            "`#[repr(packed)]` is not allowed on a shared struct: packed \
                             fields may be unaligned, and shared fields are read and written \
                             with atomic instructions, which need aligned addresses; remove \
                             `packed`"
                                .to_owned(),
                            false,
                        );
                    }
                    "Rust" => reject(
                        "`#[repr(Rust)]` leaves the field order to the compiler; a shared \
                         struct needs the fixed, C-compatible layout of `#[repr(C)]`"
                            .to_owned(),
                        true,
                    ),
                    "transparent" => reject(
                        "use `#[repr(C)]` instead of `#[repr(transparent)]` on a shared struct"
                            .to_owned(),
                        true,
                    ),
                    _ => reject(
                        format!(
                            "`#[repr({name})]` is not supported on a shared struct; use \
                             `#[repr(C)]`, optionally with `align(N)`"
                        ),
                        true,
                    ),
                }
                Ok(())
            })?;
        }
        Ok(repr)
    }
}
