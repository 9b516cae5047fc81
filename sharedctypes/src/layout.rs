//! Compile-time layout descriptions ([`SharedType::LAYOUT`](crate::SharedType::LAYOUT)).
//!
//! Two programs that share a named heap may have been built from different sources. Each
//! published object records its type's layout; a lookup compares it with the layout the
//! looking-up program was compiled with and reports any difference field by field.

use std::fmt;

/// A primitive's kind. `c_char`/`c_long` are aliases and compare as their underlying
/// types; `usize`/`isize` are distinct from the fixed-width integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum Primitive {
    I8,
    I16,
    I32,
    I64,
    I128,
    Isize,
    U8,
    U16,
    U32,
    U64,
    U128,
    Usize,
    F32,
    F64,
}

impl Primitive {
    /// The Rust name of the type, e.g. `"f64"`.
    pub const fn name(self) -> &'static str {
        match self {
            Primitive::I8 => "i8",
            Primitive::I16 => "i16",
            Primitive::I32 => "i32",
            Primitive::I64 => "i64",
            Primitive::I128 => "i128",
            Primitive::Isize => "isize",
            Primitive::U8 => "u8",
            Primitive::U16 => "u16",
            Primitive::U32 => "u32",
            Primitive::U64 => "u64",
            Primitive::U128 => "u128",
            Primitive::Usize => "usize",
            Primitive::F32 => "f32",
            Primitive::F64 => "f64",
        }
    }

    /// Size in bytes.
    pub const fn size(self) -> usize {
        match self {
            Primitive::I8 | Primitive::U8 => 1,
            Primitive::I16 | Primitive::U16 => 2,
            Primitive::I32 | Primitive::U32 | Primitive::F32 => 4,
            Primitive::I64 | Primitive::U64 | Primitive::F64 => 8,
            Primitive::I128 | Primitive::U128 => 16,
            Primitive::Isize | Primitive::Usize => std::mem::size_of::<usize>(),
        }
    }

    /// Alignment in bytes on this target.
    pub const fn align(self) -> usize {
        match self {
            Primitive::I8 | Primitive::U8 => 1,
            Primitive::I16 | Primitive::U16 => 2,
            Primitive::I32 | Primitive::U32 | Primitive::F32 => 4,
            Primitive::I64 | Primitive::U64 | Primitive::F64 => std::mem::align_of::<u64>(),
            Primitive::I128 | Primitive::U128 => std::mem::align_of::<u128>(),
            Primitive::Isize | Primitive::Usize => std::mem::align_of::<usize>(),
        }
    }

    pub(crate) const ALL: [Primitive; 14] = [
        Primitive::I8,
        Primitive::I16,
        Primitive::I32,
        Primitive::I64,
        Primitive::I128,
        Primitive::Isize,
        Primitive::U8,
        Primitive::U16,
        Primitive::U32,
        Primitive::U64,
        Primitive::U128,
        Primitive::Usize,
        Primitive::F32,
        Primitive::F64,
    ];
}

/// What kind of type a [`TypeLayout`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutKind {
    /// A number.
    Primitive(Primitive),
    /// `[elem; len]`.
    Array {
        /// The element's layout.
        elem: &'static TypeLayout,
        /// The number of elements.
        len: usize,
    },
    /// A `#[derive(SharedStruct)]` struct.
    Struct {
        /// The bare name: no path, no generics, no `r#`.
        name: &'static str,
        /// The fields in declaration order.
        fields: &'static [FieldLayout],
    },
}

/// The layout of a [`SharedType`](crate::SharedType): size, alignment and what it is
/// made of.
///
/// ```
/// use sharedctypes::{SharedStruct, SharedType};
///
/// #[derive(Clone, Copy, SharedStruct)]
/// #[repr(C)]
/// struct Point { x: f64, y: f32 }
///
/// let l = Point::LAYOUT;
/// assert_eq!((l.size, l.align), (16, 8));
/// assert_eq!(l.to_string(), "Point { x: f64 @0, y: f32 @8 }");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeLayout {
    /// `size_of`.
    pub size: usize,
    /// `align_of`.
    pub align: usize,
    /// What the type is.
    pub kind: LayoutKind,
}

/// One field of a derived struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    /// The field's name (`"0"`, `"1"`, … for tuple structs; no `r#`).
    pub name: &'static str,
    /// `offset_of!` the field.
    pub offset: usize,
    /// The field type's layout.
    pub layout: &'static TypeLayout,
}

impl TypeLayout {
    /// The layout of a primitive.
    pub const fn primitive(p: Primitive) -> TypeLayout {
        TypeLayout {
            size: p.size(),
            align: p.align(),
            kind: LayoutKind::Primitive(p),
        }
    }

    /// The layout of `[elem; len]`.
    pub const fn array(elem: &'static TypeLayout, len: usize) -> TypeLayout {
        TypeLayout {
            size: elem.size * len,
            align: elem.align,
            kind: LayoutKind::Array { elem, len },
        }
    }

    /// The layout of a derived struct (used by the derive).
    pub const fn structure(
        name: &'static str,
        size: usize,
        align: usize,
        fields: &'static [FieldLayout],
    ) -> TypeLayout {
        TypeLayout {
            size,
            align,
            kind: LayoutKind::Struct { name, fields },
        }
    }

    /// A short name: `f64`, `[f64; 3]`, `Point`.
    pub fn short_name(&self) -> String {
        match self.kind {
            LayoutKind::Primitive(p) => p.name().to_owned(),
            LayoutKind::Array { elem, len } => format!("[{}; {len}]", elem.short_name()),
            LayoutKind::Struct { name, .. } => name.to_owned(),
        }
    }

    /// Describes every difference between `self` (what is stored in the heap) and
    /// `here` (what this program was compiled with), one clause per difference; empty
    /// when they agree.
    pub fn differences(&self, here: &TypeLayout) -> Vec<String> {
        let mut out = Vec::new();
        diff(self, here, "", &mut out);
        out
    }
}

fn diff(heap: &TypeLayout, here: &TypeLayout, path: &str, out: &mut Vec<String>) {
    let what = |s: &str| {
        if path.is_empty() {
            s.to_owned()
        } else {
            format!("field `{path}`: {s}")
        }
    };
    match (heap.kind, here.kind) {
        (LayoutKind::Primitive(a), LayoutKind::Primitive(b)) if a == b => {}
        (LayoutKind::Array { elem: a, len: la }, LayoutKind::Array { elem: b, len: lb })
            if la == lb =>
        {
            diff(a, b, &format!("{path}[]"), out)
        }
        (
            LayoutKind::Struct {
                name: na,
                fields: fa,
            },
            LayoutKind::Struct {
                name: nb,
                fields: fb,
            },
        ) => {
            if na != nb {
                out.push(what(&format!(
                    "struct `{na}` in the heap, struct `{nb}` here"
                )));
            }
            if heap.size != here.size || heap.align != here.align {
                out.push(what(&format!(
                    "size {} align {} in the heap, size {} align {} here",
                    heap.size, heap.align, here.size, here.align
                )));
            }
            let join = |f: &FieldLayout| {
                if path.is_empty() {
                    f.name.to_owned()
                } else {
                    format!("{path}.{}", f.name)
                }
            };
            for (i, a) in fa.iter().enumerate() {
                match fb.get(i) {
                    Some(b) if a.name == b.name => {
                        if a.offset != b.offset
                            || a.layout.short_name() != b.layout.short_name()
                        {
                            out.push(format!(
                                "field `{}`: {} at offset {} in the heap, {} at offset {} here",
                                join(a),
                                a.layout.short_name(),
                                a.offset,
                                b.layout.short_name(),
                                b.offset
                            ));
                        } else {
                            diff(a.layout, b.layout, &join(a), out);
                        }
                    }
                    Some(b) => out.push(format!(
                        "field {i}: `{}` ({} at offset {}) in the heap, `{}` ({} at offset {}) here",
                        join(a),
                        a.layout.short_name(),
                        a.offset,
                        join(b),
                        b.layout.short_name(),
                        b.offset
                    )),
                    None => out.push(format!(
                        "field `{}`: {} at offset {} in the heap, missing here",
                        join(a),
                        a.layout.short_name(),
                        a.offset
                    )),
                }
            }
            for b in fb.iter().skip(fa.len()) {
                out.push(format!(
                    "field `{}`: missing in the heap, {} at offset {} here",
                    join(b),
                    b.layout.short_name(),
                    b.offset
                ));
            }
        }
        _ => out.push(what(&format!(
            "{} in the heap, {} here",
            heap.short_name(),
            here.short_name()
        ))),
    }
}

impl fmt::Display for TypeLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LayoutKind::Primitive(p) => f.write_str(p.name()),
            LayoutKind::Array { elem, len } => write!(f, "[{elem}; {len}]"),
            LayoutKind::Struct { name, fields } => {
                write!(f, "{name} {{ ")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {} @{}", field.name, field.layout, field.offset)?;
                }
                f.write_str(" }")
            }
        }
    }
}
