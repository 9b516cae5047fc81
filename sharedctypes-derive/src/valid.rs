//! Checks on the model: `repr(C)`, no lifetimes, no pointer-like field types.
//!
//! These checks see the attributes as written: a `repr` that an attribute macro adds
//! after the derive ran is invisible here, and is caught by the code `expand`
//! generates (the field borrows and the layout assertions), not by these checks.
//!
//! Pointer-like types are recognised by their syntax, so that the message can name
//! the field and the kind of pointer, and say what to store instead. Every other type
//! is checked by the compiler against `SharedType` (see `expand`), whose
//! `#[diagnostic::on_unimplemented]` explains itself.
//!
//! Recognising types by name has a limit: a type of your own named `String`, or a
//! generic one named `Box`, `Vec`, `Rc`, `Arc` or `NonNull`, is taken for the standard
//! one. A non-generic type of your own named `Box` (say) is not, since the standard
//! ones always take a type argument.

use syn::{GenericArgument, PathArguments, Type};

use crate::ast::Input;
use crate::ctxt::Ctxt;

/// What the checks found.
pub(crate) struct Report {
    /// Every problem, combined into one error; `None` if there is none.
    pub error: Option<syn::Error>,
    /// Per field: `true` if the field's type was not rejected here, so that the
    /// compiler's `SharedType` check on it is worth running (and will not repeat an
    /// error already reported).
    pub field_ok: Vec<bool>,
}

/// Collects every problem with `input`.
pub(crate) fn check(input: &Input<'_>) -> Report {
    let mut cx = Ctxt::default();
    for hint in &input.repr.rejected {
        cx.push(syn::Error::new(hint.span, &hint.message));
    }
    let c_suggested = input.repr.rejected.iter().any(|hint| hint.suggests_c);
    if input.repr.c.is_none() && !c_suggested {
        cx.error_spanned_by(
            input.ident,
            format!(
                "`SharedStruct` needs `#[repr(C)]` on `{}`: without it the compiler may \
                 reorder the fields, and another process (or a program built separately) \
                 could see a different layout; add `#[repr(C)]` to the struct",
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
    let field_ok = input
        .fields
        .iter()
        .map(|field| {
            let before = cx.len();
            check_type(&mut cx, &field.name, field.ty, true);
            cx.len() == before
        })
        .collect();
    Report {
        error: cx.check().err(),
        field_ok,
    }
}

const INDEX: &str = "store an index or an offset into a shared array instead";
const INLINE_VALUE: &str = "store the value inline, or an index or an offset into a shared array";
const INLINE_TEXT: &str =
    "store the text inline as bytes (`[u8; N]`), or an index or an offset into a shared array";
const INLINE_ELEMENTS: &str =
    "store the elements inline (`[T; N]`), or an index or an offset into a shared array";

/// Pointers into this process's heap, known by name: (name, what it is, what to store
/// instead). `String` takes no type argument; the others always take one.
const NAMED_POINTERS: [(&str, &str, &str); 6] = [
    (
        "Box",
        "a `Box` (a pointer into this process's heap)",
        INLINE_VALUE,
    ),
    (
        "Vec",
        "a `Vec` (a pointer into this process's heap)",
        INLINE_ELEMENTS,
    ),
    (
        "String",
        "a `String` (a pointer into this process's heap)",
        INLINE_TEXT,
    ),
    (
        "Rc",
        "an `Rc` (a pointer into this process's heap)",
        INLINE_VALUE,
    ),
    (
        "Arc",
        "an `Arc` (a pointer into this process's heap)",
        INLINE_VALUE,
    ),
    ("NonNull", "a `NonNull` pointer", INDEX),
];

/// Reports pointer-like types anywhere inside `ty` (arrays, tuples, generic arguments),
/// each at its own span. `whole` is true when `ty` is the field's whole type.
fn check_type(cx: &mut Ctxt, field: &str, ty: &Type, whole: bool) {
    match ty {
        Type::Ptr(_) => report(cx, field, ty, whole, "a raw pointer", INDEX),
        Type::Reference(r) if is_str(&r.elem) => {
            report(cx, field, ty, whole, "a `&str`", INLINE_TEXT)
        }
        Type::Reference(_) => report(cx, field, ty, whole, "a reference", INDEX),
        Type::BareFn(_) => report(
            cx,
            field,
            ty,
            whole,
            "a function pointer",
            "store an index into a table of functions instead",
        ),
        Type::Path(p) if p.qself.is_none() => {
            if let Some(last) = p.path.segments.last() {
                let generic = matches!(last.arguments, PathArguments::AngleBracketed(_));
                let known = NAMED_POINTERS
                    .iter()
                    .find(|(name, ..)| last.ident == name && generic == (*name != "String"));
                if let Some((_, what, instead)) = known {
                    return report(cx, field, ty, whole, what, instead);
                }
            }
            for seg in &p.path.segments {
                if let PathArguments::AngleBracketed(args) = &seg.arguments {
                    for arg in &args.args {
                        if let GenericArgument::Type(t) = arg {
                            check_type(cx, field, t, false);
                        }
                    }
                }
            }
        }
        Type::Array(a) => check_type(cx, field, &a.elem, false),
        Type::Tuple(t) => {
            for elem in &t.elems {
                check_type(cx, field, elem, false);
            }
        }
        Type::Paren(p) => check_type(cx, field, &p.elem, whole),
        Type::Group(g) => check_type(cx, field, &g.elem, whole),
        _ => {}
    }
}

/// One error at `ty`: the field, what the pointer is, why it cannot be shared, and what
/// to store instead.
fn report(cx: &mut Ctxt, field: &str, ty: &Type, whole: bool, what: &str, instead: &str) {
    let verb = if whole { "is" } else { "contains" };
    cx.error_spanned_by(
        ty,
        format!(
            "field `{field}` {verb} {what}, which cannot live in shared memory: an address \
             means nothing in another process; {instead}"
        ),
    );
}

fn is_str(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.is_ident("str"),
        Type::Paren(p) => is_str(&p.elem),
        Type::Group(g) => is_str(&g.elem),
        _ => false,
    }
}
