//! Checks on the model: `repr(C)`, no lifetimes, no pointer-like field types.
//!
//! Pointer-like types are recognised by their syntax, so that the message can name
//! the field and the kind of pointer. Every other type is checked by the compiler
//! against `SharedType`, whose `#[diagnostic::on_unimplemented]` explains itself.

use syn::{GenericArgument, PathArguments, Type};

use crate::ast::Input;
use crate::ctxt::Ctxt;

/// Collects every problem with `input`.
pub(crate) fn check(input: &Input<'_>) -> syn::Result<()> {
    let mut cx = Ctxt::default();
    for (span, msg) in &input.repr.rejected {
        cx.push(syn::Error::new(*span, msg));
    }
    if input.repr.c.is_none() && input.repr.rejected.is_empty() {
        cx.error_spanned_by(
            input.ident,
            format!(
                "`SharedStruct` needs `#[repr(C)]` on `{}`: without it the compiler may \
                 reorder fields, and another process (or another build) could see a different \
                 layout; add `#[repr(C)]` to the struct",
                input.name()
            ),
        );
    }
    if let Some(lt) = input.generics.lifetimes().next() {
        cx.error_spanned_by(
            lt,
            "`SharedStruct` cannot have lifetime parameters: a shared struct holds no \
             references, since an address means nothing in another process",
        );
    }
    for field in &input.fields {
        check_type(&mut cx, &field.name, field.ty);
    }
    cx.check()
}

/// Reports pointer-like types anywhere inside `ty` (arrays, tuples, generic arguments).
fn check_type(cx: &mut Ctxt, field: &str, ty: &Type) {
    let kind = match ty {
        Type::Ptr(_) => Some("a raw pointer"),
        Type::Reference(r) => Some(if is_str(&r.elem) {
            "a `&str` (a pointer to text elsewhere)"
        } else {
            "a reference"
        }),
        Type::BareFn(_) => Some("a function pointer"),
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last();
            let kind = last.and_then(|s| match s.ident.to_string().as_str() {
                "Box" => Some("a `Box` (a pointer to the heap of this process)"),
                "Vec" => Some("a `Vec` (a pointer to the heap of this process)"),
                "String" => Some("a `String` (a pointer to the heap of this process)"),
                "Rc" => Some("an `Rc` (a pointer to the heap of this process)"),
                "Arc" => Some("an `Arc` (a pointer to the heap of this process)"),
                "NonNull" => Some("a `NonNull` pointer"),
                _ => None,
            });
            if kind.is_none() {
                for seg in &p.path.segments {
                    if let PathArguments::AngleBracketed(args) = &seg.arguments {
                        for arg in &args.args {
                            if let GenericArgument::Type(t) = arg {
                                check_type(cx, field, t);
                            }
                        }
                    }
                }
            }
            kind
        }
        Type::Array(a) => {
            check_type(cx, field, &a.elem);
            None
        }
        Type::Tuple(t) => {
            for elem in &t.elems {
                check_type(cx, field, elem);
            }
            None
        }
        Type::Paren(p) => {
            check_type(cx, field, &p.elem);
            None
        }
        Type::Group(g) => {
            check_type(cx, field, &g.elem);
            None
        }
        _ => None,
    };
    if let Some(kind) = kind {
        cx.error_spanned_by(
            ty,
            format!(
                "field `{field}` is {kind}, which cannot be shared between processes: an \
                 address is only meaningful in the process that made it, and another process \
                 would read garbage or crash; store an index or an offset into a shared array \
                 instead"
            ),
        );
    }
}

fn is_str(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str"))
}
