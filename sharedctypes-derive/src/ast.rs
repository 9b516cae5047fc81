//! The derive's own small model of the input struct.

use proc_macro2::{Ident, Span};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Generics, Member, Type, Visibility};

use crate::repr::Repr;

/// A struct to derive for.
pub(crate) struct Input<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub generics: &'a Generics,
    pub style: Style,
    pub fields: Vec<Field<'a>>,
    pub repr: Repr,
}

/// Named, tuple or unit struct.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Named,
    Tuple,
    Unit,
}

/// One field.
pub(crate) struct Field<'a> {
    /// `x` or `0`, as written (raw identifiers keep their `r#`).
    pub member: Member,
    /// The bare name: `x`, `type` for `r#type`, `0` for a tuple field.
    pub name: String,
    pub vis: &'a Visibility,
    pub ty: &'a Type,
    /// Where errors about the field point: its name, or its type for a tuple field.
    pub span: Span,
}

impl<'a> Input<'a> {
    /// Turns `input` into the model; enums and unions are errors here.
    pub(crate) fn from_syn(input: &'a DeriveInput) -> syn::Result<Self> {
        let data = match &input.data {
            Data::Struct(data) => data,
            Data::Enum(e) => {
                return Err(syn::Error::new(
                    e.enum_token.span,
                    "`SharedStruct` cannot be derived for an enum: not every bit pattern is a \
                     valid enum value, and another process may write any bits; use a \
                     `#[repr(C)]` struct with an integer tag field instead",
                ))
            }
            Data::Union(u) => {
                return Err(syn::Error::new(
                    u.union_token.span,
                    "`SharedStruct` cannot be derived for a union: its fields overlap, so \
                     they cannot each be a separate `Shared` cell; use a `#[repr(C)]` struct",
                ))
            }
        };
        let (style, fields) = match &data.fields {
            Fields::Named(f) => (Style::Named, f.named.iter().collect::<Vec<_>>()),
            Fields::Unnamed(f) => (Style::Tuple, f.unnamed.iter().collect()),
            Fields::Unit => (Style::Unit, Vec::new()),
        };
        let fields = fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| match &f.ident {
                Some(ident) => Field {
                    member: Member::Named(ident.clone()),
                    name: ident.unraw().to_string(),
                    vis: &f.vis,
                    ty: &f.ty,
                    span: ident.span(),
                },
                None => Field {
                    member: Member::Unnamed(syn::Index {
                        index: i as u32,
                        span: Span::call_site(),
                    }),
                    name: i.to_string(),
                    vis: &f.vis,
                    ty: &f.ty,
                    span: f.ty.span(),
                },
            })
            .collect();
        Ok(Input {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            style,
            fields,
            repr: Repr::parse(&input.attrs)?,
        })
    }

    /// The struct's bare name (no `r#`).
    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }
}
