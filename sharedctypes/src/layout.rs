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
    ///
    /// ```
    /// use sharedctypes::{SharedStruct, SharedType};
    ///
    /// mod old {
    ///     #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    ///     #[repr(C)]
    ///     pub struct Point { pub x: f64, pub y: f64 }
    /// }
    /// #[derive(Clone, Copy, SharedStruct)]
    /// #[repr(C)]
    /// struct Point { x: f64, y: f32 }
    ///
    /// assert_eq!(
    ///     old::Point::LAYOUT.differences(&Point::LAYOUT),
    ///     ["field `y`: f64 at offset 8 in the heap, f32 at offset 8 here"]
    /// );
    /// ```
    pub fn differences(&self, here: &TypeLayout) -> Vec<String> {
        OwnedLayout::from(self).differences(&OwnedLayout::from(here))
    }
}

/// A [`TypeLayout`] that owns its parts: what a heap's directory stores, decoded.
///
/// [`TypeLayout`] borrows `'static` data (it is built at compile time); a layout read
/// back from shared memory cannot, so comparisons and messages work on this form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedLayout {
    pub size: usize,
    pub align: usize,
    pub kind: OwnedKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OwnedKind {
    Primitive(Primitive),
    Array {
        elem: Box<OwnedLayout>,
        len: usize,
    },
    Struct {
        name: String,
        fields: Vec<OwnedField>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedField {
    pub name: String,
    pub offset: usize,
    pub layout: OwnedLayout,
}

impl From<&TypeLayout> for OwnedLayout {
    fn from(l: &TypeLayout) -> OwnedLayout {
        let kind = match l.kind {
            LayoutKind::Primitive(p) => OwnedKind::Primitive(p),
            LayoutKind::Array { elem, len } => OwnedKind::Array {
                elem: Box::new(OwnedLayout::from(elem)),
                len,
            },
            LayoutKind::Struct { name, fields } => OwnedKind::Struct {
                name: name.to_owned(),
                fields: fields
                    .iter()
                    .map(|f| OwnedField {
                        name: f.name.to_owned(),
                        offset: f.offset,
                        layout: OwnedLayout::from(f.layout),
                    })
                    .collect(),
            },
        };
        OwnedLayout {
            size: l.size,
            align: l.align,
            kind,
        }
    }
}

impl OwnedLayout {
    /// A short name: `f64`, `[f64; 3]`, `Point`.
    pub(crate) fn short_name(&self) -> String {
        match &self.kind {
            OwnedKind::Primitive(p) => p.name().to_owned(),
            OwnedKind::Array { elem, len } => format!("[{}; {len}]", elem.short_name()),
            OwnedKind::Struct { name, .. } => name.clone(),
        }
    }

    /// See [`TypeLayout::differences`].
    pub(crate) fn differences(&self, here: &OwnedLayout) -> Vec<String> {
        let mut out = Vec::new();
        diff(self, here, "", &mut out);
        out
    }
}

fn diff(heap: &OwnedLayout, here: &OwnedLayout, path: &str, out: &mut Vec<String>) {
    let what = |s: &str| {
        if path.is_empty() {
            s.to_owned()
        } else {
            format!("field `{path}`: {s}")
        }
    };
    match (&heap.kind, &here.kind) {
        (OwnedKind::Primitive(a), OwnedKind::Primitive(b)) if a == b => {}
        (OwnedKind::Array { elem: a, len: la }, OwnedKind::Array { elem: b, len: lb })
            if la == lb =>
        {
            diff(a, b, &format!("{path}[]"), out)
        }
        (
            OwnedKind::Struct {
                name: na,
                fields: fa,
            },
            OwnedKind::Struct {
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
            let join = |f: &OwnedField| {
                if path.is_empty() {
                    f.name.clone()
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
                            diff(&a.layout, &b.layout, &join(a), out);
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

impl fmt::Display for OwnedLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            OwnedKind::Primitive(p) => f.write_str(p.name()),
            OwnedKind::Array { elem, len } => write!(f, "[{elem}; {len}]"),
            OwnedKind::Struct { name, fields } => {
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

/// The serialized form of a layout, as a named heap's directory stores it.
///
/// Little-endian, depth-first, with nothing implied:
///
/// ```text
/// node   := tag:u8 size:u64 align:u64 body
///   tag 0 (primitive): kind:u8                 index into Primitive::ALL
///   tag 1 (array):     len:u64 node            the element
///   tag 2 (struct):    name:str count:u32 field*
/// field  := name:str offset:u64 node
/// str    := len:u16 UTF-8 bytes
/// ```
///
/// The bytes come from another process and may be garbage: [`decode`] checks every
/// length against the bytes that remain, nests at most [`MAX_DEPTH`] levels, refuses
/// more than [`MAX_ENCODED_LEN`] bytes and trailing bytes, and never allocates more
/// than the input's size. [`encode`] refuses what `decode` would refuse, so whatever is
/// published can be read back.
pub(crate) mod codec {
    use super::{OwnedField, OwnedKind, OwnedLayout, Primitive};

    /// Deepest nesting of arrays and structs stored.
    pub(crate) const MAX_DEPTH: usize = 64;
    /// Largest encoded layout stored.
    pub(crate) const MAX_ENCODED_LEN: usize = 1 << 20;

    const PRIMITIVE: u8 = 0;
    const ARRAY: u8 = 1;
    const STRUCT: u8 = 2;

    /// Why a layout cannot be stored.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum TooBig {
        /// More than [`MAX_DEPTH`] levels of arrays and structs.
        Depth,
        /// More than [`MAX_ENCODED_LEN`] bytes, or a name longer than 65535 bytes.
        Size,
    }

    /// Serializes `layout`.
    pub(crate) fn encode(layout: &OwnedLayout) -> Result<Vec<u8>, TooBig> {
        let mut out = Vec::new();
        node(layout, 0, &mut out)?;
        if out.len() > MAX_ENCODED_LEN {
            return Err(TooBig::Size);
        }
        Ok(out)
    }

    fn node(l: &OwnedLayout, depth: usize, out: &mut Vec<u8>) -> Result<(), TooBig> {
        if depth >= MAX_DEPTH {
            return Err(TooBig::Depth);
        }
        if out.len() > MAX_ENCODED_LEN {
            return Err(TooBig::Size);
        }
        let tag = match l.kind {
            OwnedKind::Primitive(_) => PRIMITIVE,
            OwnedKind::Array { .. } => ARRAY,
            OwnedKind::Struct { .. } => STRUCT,
        };
        out.push(tag);
        out.extend_from_slice(&(l.size as u64).to_le_bytes());
        out.extend_from_slice(&(l.align as u64).to_le_bytes());
        match &l.kind {
            OwnedKind::Primitive(p) => {
                let index = Primitive::ALL.iter().position(|q| q == p).unwrap_or(0);
                out.push(index as u8);
            }
            OwnedKind::Array { elem, len } => {
                out.extend_from_slice(&(*len as u64).to_le_bytes());
                node(elem, depth + 1, out)?;
            }
            OwnedKind::Struct { name, fields } => {
                string(name, out)?;
                let count = u32::try_from(fields.len()).map_err(|_| TooBig::Size)?;
                out.extend_from_slice(&count.to_le_bytes());
                for f in fields {
                    string(&f.name, out)?;
                    out.extend_from_slice(&(f.offset as u64).to_le_bytes());
                    node(&f.layout, depth + 1, out)?;
                }
            }
        }
        Ok(())
    }

    fn string(s: &str, out: &mut Vec<u8>) -> Result<(), TooBig> {
        let len = u16::try_from(s.len()).map_err(|_| TooBig::Size)?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// Deserializes a layout; `None` for anything but exactly one well-formed node.
    pub(crate) fn decode(bytes: &[u8]) -> Option<OwnedLayout> {
        if bytes.len() > MAX_ENCODED_LEN {
            return None;
        }
        let mut r = Reader { bytes };
        let layout = r.node(0)?;
        r.bytes.is_empty().then_some(layout)
    }

    struct Reader<'a> {
        bytes: &'a [u8],
    }

    impl Reader<'_> {
        fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
            let (head, rest) = self.bytes.split_first_chunk::<N>()?;
            self.bytes = rest;
            Some(*head)
        }

        fn u8(&mut self) -> Option<u8> {
            self.take::<1>().map(|[b]| b)
        }

        fn u32(&mut self) -> Option<u32> {
            self.take().map(u32::from_le_bytes)
        }

        fn usize(&mut self) -> Option<usize> {
            self.take()
                .map(u64::from_le_bytes)
                .and_then(|n| usize::try_from(n).ok())
        }

        fn string(&mut self) -> Option<String> {
            let len = usize::from(self.take().map(u16::from_le_bytes)?);
            if len > self.bytes.len() {
                return None;
            }
            let (s, rest) = self.bytes.split_at(len);
            self.bytes = rest;
            String::from_utf8(s.to_vec()).ok()
        }

        fn node(&mut self, depth: usize) -> Option<OwnedLayout> {
            if depth >= MAX_DEPTH {
                return None;
            }
            let tag = self.u8()?;
            let size = self.usize()?;
            let align = self.usize()?;
            if !align.is_power_of_two() {
                return None;
            }
            let kind = match tag {
                PRIMITIVE => OwnedKind::Primitive(*Primitive::ALL.get(usize::from(self.u8()?))?),
                ARRAY => {
                    let len = self.usize()?;
                    let elem = Box::new(self.node(depth + 1)?);
                    OwnedKind::Array { elem, len }
                }
                STRUCT => {
                    let name = self.string()?;
                    let count = self.u32()?;
                    // Each field takes at least 27 bytes: never reserve more than the
                    // input could hold.
                    let mut fields =
                        Vec::with_capacity((count as usize).min(self.bytes.len() / 27));
                    for _ in 0..count {
                        let name = self.string()?;
                        let offset = self.usize()?;
                        let layout = self.node(depth + 1)?;
                        fields.push(OwnedField {
                            name,
                            offset,
                            layout,
                        });
                    }
                    OwnedKind::Struct { name, fields }
                }
                _ => return None,
            };
            Some(OwnedLayout { size, align, kind })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::codec::{decode, encode, TooBig, MAX_DEPTH};
    use super::*;
    use crate::SharedType;

    #[derive(Clone, Copy, crate::SharedStruct)]
    #[repr(C)]
    struct Inner {
        a: u8,
        b: [u16; 3],
    }

    #[derive(Clone, Copy, crate::SharedStruct)]
    #[repr(C)]
    struct Outer {
        x: f64,
        inner: [Inner; 2],
        n: usize,
    }

    #[derive(Clone, Copy, crate::SharedStruct)]
    #[repr(C)]
    struct Tuple(i128, u32);

    fn samples() -> Vec<OwnedLayout> {
        vec![
            OwnedLayout::from(&u8::LAYOUT),
            OwnedLayout::from(&<[f32; 7]>::LAYOUT),
            OwnedLayout::from(&Inner::LAYOUT),
            OwnedLayout::from(&Tuple::LAYOUT),
            OwnedLayout::from(&<[[Inner; 2]; 3]>::LAYOUT),
            OwnedLayout::from(&Outer::LAYOUT),
        ]
    }

    #[test]
    fn round_trips() {
        for l in samples() {
            let bytes = encode(&l).unwrap();
            assert_eq!(decode(&bytes), Some(l));
        }
        for p in Primitive::ALL {
            let l = OwnedLayout::from(&TypeLayout::primitive(p));
            assert_eq!(decode(&encode(&l).unwrap()), Some(l));
        }
    }

    #[test]
    fn every_prefix_and_every_byte_flip_is_handled() {
        for l in samples() {
            let bytes = encode(&l).unwrap();
            for n in 0..bytes.len() {
                assert_eq!(decode(&bytes[..n]), None, "prefix {n}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode(&longer), None);
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut b = bytes.clone();
                    b[i] ^= flip;
                    let _ = decode(&b); // must not panic; may decode to something else
                }
            }
        }
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
        // A struct claiming four billion fields in a few bytes.
        let mut b = vec![STRUCT_TAG];
        b.extend_from_slice(&8u64.to_le_bytes());
        b.extend_from_slice(&8u64.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&b), None);
    }

    const STRUCT_TAG: u8 = 2;

    #[test]
    fn nesting_is_bounded_both_ways() {
        let mut l = OwnedLayout::from(&u8::LAYOUT);
        for _ in 0..MAX_DEPTH - 1 {
            l = OwnedLayout {
                size: 1,
                align: 1,
                kind: OwnedKind::Array {
                    elem: Box::new(l),
                    len: 1,
                },
            };
        }
        let bytes = encode(&l).unwrap();
        assert!(decode(&bytes).is_some());
        let deeper = OwnedLayout {
            size: 1,
            align: 1,
            kind: OwnedKind::Array {
                elem: Box::new(l),
                len: 1,
            },
        };
        assert_eq!(encode(&deeper), Err(TooBig::Depth));
        // The same nesting written by hand is refused by the decoder.
        let mut b = Vec::new();
        for _ in 0..MAX_DEPTH {
            b.push(1);
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
        }
        b.push(0);
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(6);
        assert_eq!(decode(&b), None);
    }

    #[test]
    fn owned_differences_match_the_static_ones() {
        let a = OwnedLayout::from(&Inner::LAYOUT);
        assert!(a.differences(&a).is_empty());
        assert_eq!(
            Inner::LAYOUT.differences(&Tuple::LAYOUT)[0],
            "struct `Inner` in the heap, struct `Tuple` here"
        );
        assert_eq!(a.to_string(), Inner::LAYOUT.to_string());
        assert_eq!(a.short_name(), "Inner");
    }
}
