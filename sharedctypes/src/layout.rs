//! Compile-time layout descriptions ([`SharedType::LAYOUT`](crate::SharedType::LAYOUT)).
//!
//! Two programs that share a named heap may have been built from different sources. Each
//! published object records its type's layout; a lookup compares it with the layout the
//! looking-up program was compiled with and reports any difference field by field.
//!
//! ```
//! use sharedctypes::{SharedStruct, SharedType};
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! struct Sample { t: f64, v: [i32; 2] }
//!
//! assert_eq!(Sample::LAYOUT.to_string(), "Sample { t: f64 @0, v: [i32; 2] @8 }");
//! assert!(Sample::LAYOUT.differences(&Sample::LAYOUT).is_empty());
//! assert!(!u32::LAYOUT.differences(&i32::LAYOUT).is_empty());
//! ```

use std::fmt;

/// A primitive's kind. `c_char`/`c_long` are aliases and compare as their underlying
/// types; `usize`/`isize` are distinct from the fixed-width integers. Typecode `'c'`
/// is `u8` on every platform, so its layout is [`U8`](Primitive::U8).
///
/// ```
/// use std::ffi::c_long;
/// use sharedctypes::{typecode, LayoutKind, Primitive, SharedType};
///
/// assert_eq!(f64::LAYOUT.kind, LayoutKind::Primitive(Primitive::F64));
/// assert_eq!(<typecode!('c')>::LAYOUT.kind, LayoutKind::Primitive(Primitive::U8));
/// // `c_long` is an alias (of `i64` on 64-bit Linux): its layout is its alias's.
/// let alias = if std::mem::size_of::<c_long>() == 8 { i64::LAYOUT } else { i32::LAYOUT };
/// assert_eq!(c_long::LAYOUT, alias);
/// assert_ne!(usize::LAYOUT, u64::LAYOUT); // distinct, even at the same size
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Primitive {
    /// `i8` (and `c_char` where it is signed, as on x86-64).
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64` (and `c_long` on 64-bit Linux).
    I64,
    /// `i128`.
    I128,
    /// `isize`: distinct from the fixed-width integers.
    Isize,
    /// `u8`: typecode `'c'` (a byte), and `c_char` where it is unsigned.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64` (and `c_ulong` on 64-bit Linux).
    U64,
    /// `u128`.
    U128,
    /// `usize`: distinct from the fixed-width integers.
    Usize,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl Primitive {
    /// The Rust name of the type, e.g. `"f64"`.
    ///
    /// ```
    /// use sharedctypes::Primitive;
    ///
    /// assert_eq!(Primitive::F64.name(), "f64");
    /// assert_eq!(Primitive::Usize.name(), "usize");
    /// ```
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
    ///
    /// ```
    /// use sharedctypes::Primitive;
    ///
    /// assert_eq!(Primitive::U128.size(), 16);
    /// assert_eq!(Primitive::Isize.size(), std::mem::size_of::<isize>());
    /// ```
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
    ///
    /// ```
    /// use sharedctypes::Primitive;
    ///
    /// assert_eq!(Primitive::U16.align(), 2);
    /// assert_eq!(Primitive::F64.align(), std::mem::align_of::<f64>());
    /// ```
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
///
/// ```
/// use sharedctypes::{LayoutKind, SharedType};
///
/// match <[f32; 4]>::LAYOUT.kind {
///     LayoutKind::Array { elem, len } => {
///         assert_eq!(len, 4);
///         assert_eq!(*elem, f32::LAYOUT);
///     }
///     other => panic!("not an array: {other:?}"),
/// }
/// ```
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
///
/// ```
/// use sharedctypes::{FieldLayout, LayoutKind, SharedStruct, SharedType};
///
/// #[derive(Clone, Copy, SharedStruct)]
/// #[repr(C)]
/// struct Point { x: f64, y: f32 }
///
/// let LayoutKind::Struct { name, fields } = Point::LAYOUT.kind else { unreachable!() };
/// assert_eq!(name, "Point");
/// let y: &FieldLayout = &fields[1];
/// assert_eq!((y.name, y.offset), ("y", std::mem::offset_of!(Point, y)));
/// assert_eq!(*y.layout, f32::LAYOUT);
/// ```
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
    ///
    /// ```
    /// use sharedctypes::{Primitive, SharedType, TypeLayout};
    ///
    /// let l = TypeLayout::primitive(Primitive::U32);
    /// assert_eq!((l.size, l.align), (4, 4));
    /// assert_eq!(l, u32::LAYOUT);
    /// ```
    pub const fn primitive(p: Primitive) -> TypeLayout {
        TypeLayout {
            size: p.size(),
            align: p.align(),
            kind: LayoutKind::Primitive(p),
        }
    }

    /// The layout of `[elem; len]`.
    ///
    /// ```
    /// use sharedctypes::{Primitive, SharedType, TypeLayout};
    ///
    /// static U16: TypeLayout = TypeLayout::primitive(Primitive::U16);
    /// let l = TypeLayout::array(&U16, 3);
    /// assert_eq!((l.size, l.align), (6, 2));
    /// assert_eq!(l, <[u16; 3]>::LAYOUT);
    /// ```
    pub const fn array(elem: &'static TypeLayout, len: usize) -> TypeLayout {
        TypeLayout {
            size: elem.size * len,
            align: elem.align,
            kind: LayoutKind::Array { elem, len },
        }
    }

    /// The layout of a derived struct (used by the derive).
    ///
    /// ```
    /// use std::mem::{align_of, offset_of, size_of};
    /// use sharedctypes::{FieldLayout, SharedStruct, SharedType, TypeLayout};
    ///
    /// #[derive(Clone, Copy, SharedStruct)]
    /// #[repr(C)]
    /// struct Pair { a: u32, b: u64 }
    ///
    /// static FIELDS: [FieldLayout; 2] = [
    ///     FieldLayout { name: "a", offset: offset_of!(Pair, a), layout: &u32::LAYOUT },
    ///     FieldLayout { name: "b", offset: offset_of!(Pair, b), layout: &u64::LAYOUT },
    /// ];
    /// let by_hand = TypeLayout::structure("Pair", size_of::<Pair>(), align_of::<Pair>(), &FIELDS);
    /// assert_eq!(by_hand, Pair::LAYOUT);
    /// ```
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
    ///
    /// ```
    /// use sharedctypes::{SharedStruct, SharedType};
    ///
    /// #[derive(Clone, Copy, SharedStruct)]
    /// #[repr(C)]
    /// struct Point { x: f64, y: f64 }
    ///
    /// assert_eq!(f64::LAYOUT.short_name(), "f64");
    /// assert_eq!(<[f64; 3]>::LAYOUT.short_name(), "[f64; 3]");
    /// assert_eq!(Point::LAYOUT.short_name(), "Point");
    /// ```
    pub fn short_name(&self) -> String {
        short_name(self)
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
    ///
    /// The work is bounded, whatever the types: at most 32 differences are listed (a
    /// last clause then says more were found), and a layout larger than a heap's
    /// directory can describe (a struct with two fields of a struct with two fields
    /// of … describes each field separately: twice as much per level) is compared only
    /// that far, a last clause saying the rest was not compared.
    pub fn differences(&self, here: &TypeLayout) -> Vec<String> {
        diff(self, here)
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

impl TryFrom<&TypeLayout> for OwnedLayout {
    type Error = codec::TooBig;

    /// Copies `l`, refusing what [`codec::encode`] would refuse: nesting deeper than
    /// [`codec::MAX_DEPTH`], a name the decoder refuses, or an encoding longer than
    /// [`codec::MAX_ENCODED_LEN`] bytes.
    ///
    /// A `TypeLayout` is a DAG: `struct A { a: B, b: B }` refers to `B`'s layout twice,
    /// so `n` such levels make a tree of `2^n` leaves. The copy is a tree, so it charges
    /// every node against the encoding's byte budget *before* copying it, and stops at
    /// once when the budget runs out: at most `MAX_ENCODED_LEN / 18` nodes are copied,
    /// however large the tree.
    fn try_from(l: &TypeLayout) -> Result<OwnedLayout, codec::TooBig> {
        let mut budget = codec::MAX_ENCODED_LEN;
        owned(l, 0, &mut budget)
    }
}

fn owned(l: &TypeLayout, depth: usize, budget: &mut usize) -> Result<OwnedLayout, codec::TooBig> {
    if depth >= codec::MAX_DEPTH {
        return Err(codec::TooBig::Depth);
    }
    charge(budget, codec::NODE_LEN)?;
    let kind = match l.kind {
        LayoutKind::Primitive(p) => {
            charge(budget, 1)?;
            OwnedKind::Primitive(p)
        }
        LayoutKind::Array { elem, len } => {
            charge(budget, 8)?;
            OwnedKind::Array {
                elem: Box::new(owned(elem, depth + 1, budget)?),
                len,
            }
        }
        LayoutKind::Struct { name, fields } => {
            charge(budget, codec::string_len(name)? + 4)?;
            let mut owned_fields = Vec::new();
            for f in fields {
                charge(budget, codec::string_len(f.name)? + 8)?;
                owned_fields.push(OwnedField {
                    name: f.name.to_owned(),
                    offset: f.offset,
                    layout: owned(f.layout, depth + 1, budget)?,
                });
            }
            OwnedKind::Struct {
                name: name.to_owned(),
                fields: owned_fields,
            }
        }
    };
    Ok(OwnedLayout {
        size: l.size,
        align: l.align,
        kind,
    })
}

/// Takes `n` bytes from the encoding's budget.
fn charge(budget: &mut usize, n: usize) -> Result<(), codec::TooBig> {
    *budget = budget.checked_sub(n).ok_or(codec::TooBig::Size)?;
    Ok(())
}

impl OwnedLayout {
    /// A short name: `f64`, `[f64; 3]`, `Point`.
    pub(crate) fn short_name(&self) -> String {
        short_name(self)
    }

    /// See [`TypeLayout::differences`].
    pub(crate) fn differences(&self, here: &OwnedLayout) -> Vec<String> {
        diff(self, here)
    }
}

/// Read access to a layout, static ([`TypeLayout`]) or owned ([`OwnedLayout`]), for
/// [`diff`] and [`short_name`].
trait Tree: Sized + 'static {
    type Field: TreeField<Tree = Self>;
    fn size(&self) -> usize;
    fn align(&self) -> usize;
    fn view(&self) -> View<'_, Self>;
}

trait TreeField {
    type Tree;
    fn name(&self) -> &str;
    fn offset(&self) -> usize;
    fn layout(&self) -> &Self::Tree;
}

enum View<'a, T: Tree> {
    Primitive(Primitive),
    Array {
        elem: &'a T,
        len: usize,
    },
    Struct {
        name: &'a str,
        fields: &'a [T::Field],
    },
}

impl Tree for TypeLayout {
    type Field = FieldLayout;

    fn size(&self) -> usize {
        self.size
    }

    fn align(&self) -> usize {
        self.align
    }

    fn view(&self) -> View<'_, Self> {
        match self.kind {
            LayoutKind::Primitive(p) => View::Primitive(p),
            LayoutKind::Array { elem, len } => View::Array { elem, len },
            LayoutKind::Struct { name, fields } => View::Struct { name, fields },
        }
    }
}

impl TreeField for FieldLayout {
    type Tree = TypeLayout;

    fn name(&self) -> &str {
        self.name
    }

    fn offset(&self) -> usize {
        self.offset
    }

    fn layout(&self) -> &TypeLayout {
        self.layout
    }
}

impl Tree for OwnedLayout {
    type Field = OwnedField;

    fn size(&self) -> usize {
        self.size
    }

    fn align(&self) -> usize {
        self.align
    }

    fn view(&self) -> View<'_, Self> {
        match &self.kind {
            OwnedKind::Primitive(p) => View::Primitive(*p),
            OwnedKind::Array { elem, len } => View::Array { elem, len: *len },
            OwnedKind::Struct { name, fields } => View::Struct { name, fields },
        }
    }
}

impl TreeField for OwnedField {
    type Tree = OwnedLayout;

    fn name(&self) -> &str {
        &self.name
    }

    fn offset(&self) -> usize {
        self.offset
    }

    fn layout(&self) -> &OwnedLayout {
        &self.layout
    }
}

/// `f64`, `[f64; 3]`, `Point`: linear in the nesting of arrays.
fn short_name<T: Tree>(l: &T) -> String {
    match l.view() {
        View::Primitive(p) => p.name().to_owned(),
        View::Array { elem, len } => format!("[{}; {len}]", short_name(elem)),
        View::Struct { name, .. } => name.to_owned(),
    }
}

/// `short_name(a) == short_name(b)`, without building the names.
fn same_short_name<T: Tree>(a: &T, b: &T) -> bool {
    match (a.view(), b.view()) {
        (View::Primitive(x), View::Primitive(y)) => x == y,
        (View::Array { elem: x, len: lx }, View::Array { elem: y, len: ly }) => {
            lx == ly && same_short_name(x, y)
        }
        (View::Struct { name: x, .. }, View::Struct { name: y, .. }) => x == y,
        _ => false,
    }
}

/// Most differences [`diff`] lists.
const MAX_CLAUSES: usize = 32;
/// Most node pairs and fields [`diff`] visits: more than two layouts of at most
/// [`codec::MAX_ENCODED_LEN`] encoded bytes each can hold (a node takes at least 18
/// bytes, a field at least 29), so layouts read from a heap are always compared in full.
const MAX_STEPS: usize = codec::MAX_ENCODED_LEN / 9;

/// One step of the path to a difference: a field, or an array's element (`[]`).
enum Step<'a> {
    Field(&'a str),
    Elem,
}

/// Compares two layouts in bounded time and memory (see [`TypeLayout::differences`]).
fn diff<T: Tree>(heap: &T, here: &T) -> Vec<String> {
    let mut d = Differ {
        out: Vec::new(),
        path: Vec::new(),
        steps: MAX_STEPS,
        stopped: false,
    };
    d.node(heap, here);
    d.out
}

struct Differ<'a> {
    out: Vec<String>,
    /// Where the nodes being compared are, formatted only for a difference found.
    path: Vec<Step<'a>>,
    steps: usize,
    /// Set once the budget or the list is full: nothing more is compared.
    stopped: bool,
}

impl<'a> Differ<'a> {
    /// Takes a step from the budget; false (and a last clause saying so) when it is
    /// spent, or when comparing has stopped already.
    fn step(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        if self.steps == 0 {
            self.stopped = true;
            self.out.push(
                "… (the layouts are too large to compare in full; the rest was not compared)"
                    .to_owned(),
            );
            return false;
        }
        self.steps -= 1;
        true
    }

    fn push(&mut self, clause: String) {
        if self.stopped {
            return;
        }
        if self.out.len() == MAX_CLAUSES {
            self.stopped = true;
            self.out.push("… (more differences not listed)".to_owned());
        } else {
            self.out.push(clause);
        }
    }

    /// The path, with `field` appended if given: `x`, `to.y`, `[][]`, `[].b`.
    fn path(&self, field: Option<&str>) -> String {
        let mut s = String::new();
        let add_field = |s: &mut String, name: &str| {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(name);
        };
        for step in &self.path {
            match step {
                Step::Field(name) => add_field(&mut s, name),
                Step::Elem => s.push_str("[]"),
            }
        }
        if let Some(name) = field {
            add_field(&mut s, name);
        }
        s
    }

    /// A difference at the current path.
    fn here(&mut self, what: String) {
        let clause = if self.path.is_empty() {
            what
        } else {
            format!("field `{}`: {what}", self.path(None))
        };
        self.push(clause);
    }

    fn node<T: Tree>(&mut self, heap: &'a T, here: &'a T) {
        // The same node (a layout compared with itself) has no differences.
        if std::ptr::eq(heap, here) || !self.step() {
            return;
        }
        match (heap.view(), here.view()) {
            (View::Primitive(a), View::Primitive(b)) if a == b => {}
            (View::Array { elem: a, len: la }, View::Array { elem: b, len: lb }) if la == lb => {
                self.path.push(Step::Elem);
                self.node(a, b);
                self.path.pop();
            }
            (
                View::Struct {
                    name: na,
                    fields: fa,
                },
                View::Struct {
                    name: nb,
                    fields: fb,
                },
            ) => {
                if na != nb {
                    self.here(format!("struct `{na}` in the heap, struct `{nb}` here"));
                }
                if heap.size() != here.size() || heap.align() != here.align() {
                    self.here(format!(
                        "size {} align {} in the heap, size {} align {} here",
                        heap.size(),
                        heap.align(),
                        here.size(),
                        here.align()
                    ));
                }
                self.fields::<T>(fa, fb);
            }
            _ => self.here(format!(
                "{} in the heap, {} here",
                short_name(heap),
                short_name(here)
            )),
        }
    }

    fn fields<T: Tree>(&mut self, fa: &'a [T::Field], fb: &'a [T::Field]) {
        for (i, a) in fa.iter().enumerate() {
            if !self.step() {
                return;
            }
            let (an, al) = (a.name(), a.layout());
            match fb.get(i) {
                Some(b) if an == b.name() => {
                    let bl = b.layout();
                    if a.offset() != b.offset() || !same_short_name(al, bl) {
                        let clause = format!(
                            "field `{}`: {} at offset {} in the heap, {} at offset {} here",
                            self.path(Some(an)),
                            short_name(al),
                            a.offset(),
                            short_name(bl),
                            b.offset()
                        );
                        self.push(clause);
                    } else {
                        self.path.push(Step::Field(an));
                        self.node(al, bl);
                        self.path.pop();
                    }
                }
                Some(b) => {
                    let clause = format!(
                        "field {i}: `{}` ({} at offset {}) in the heap, `{}` ({} at offset {}) here",
                        self.path(Some(an)),
                        short_name(al),
                        a.offset(),
                        self.path(Some(b.name())),
                        short_name(b.layout()),
                        b.offset()
                    );
                    self.push(clause);
                }
                None => {
                    let clause = format!(
                        "field `{}`: {} at offset {} in the heap, missing here",
                        self.path(Some(an)),
                        short_name(al),
                        a.offset()
                    );
                    self.push(clause);
                }
            }
        }
        for b in fb.iter().skip(fa.len()) {
            if !self.step() {
                return;
            }
            let clause = format!(
                "field `{}`: missing in the heap, {} at offset {} here",
                self.path(Some(b.name())),
                short_name(b.layout()),
                b.offset()
            );
            self.push(clause);
        }
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
/// str    := len:u16 UTF-8 bytes                 a name: 1..=255 bytes, letters, digits, `_`
/// ```
///
/// The bytes come from another process and may be garbage: [`decode`] checks every
/// length against the bytes that remain, nests at most [`MAX_DEPTH`] levels, refuses
/// more than [`MAX_ENCODED_LEN`] bytes and trailing bytes, refuses names that are not
/// [`valid_name`]s (so no NULs, escape codes or 64 KiB names reach a message), and never
/// allocates more than the input's size. [`encode`] refuses what `decode` would refuse,
/// so whatever is published can be read back.
pub(crate) mod codec {
    use super::{OwnedField, OwnedKind, OwnedLayout, Primitive};

    /// Deepest nesting of arrays and structs stored.
    pub(crate) const MAX_DEPTH: usize = 64;
    /// Largest encoded layout stored.
    pub(crate) const MAX_ENCODED_LEN: usize = 1 << 20;
    /// Longest struct or field name stored, in bytes.
    pub(crate) const MAX_NAME_LEN: usize = 255;
    /// A node's fixed part: tag, size and alignment.
    pub(crate) const NODE_LEN: usize = 1 + 8 + 8;

    const PRIMITIVE: u8 = 0;
    const ARRAY: u8 = 1;
    const STRUCT: u8 = 2;

    /// Why a layout cannot be stored.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum TooBig {
        /// More than [`MAX_DEPTH`] levels of arrays and structs.
        Depth,
        /// More than [`MAX_ENCODED_LEN`] bytes.
        Size,
        /// A struct or field name that is not a [`valid_name`].
        Name,
    }

    /// A name as stored: 1 to [`MAX_NAME_LEN`] bytes of letters, digits and `_` (Rust
    /// identifiers, without `r#`, and tuple field numbers).
    pub(crate) fn valid_name(s: &str) -> bool {
        (1..=MAX_NAME_LEN).contains(&s.len()) && s.chars().all(|c| c == '_' || c.is_alphanumeric())
    }

    /// Bytes `s` takes encoded, if it is a valid name.
    pub(crate) fn string_len(s: &str) -> Result<usize, TooBig> {
        if valid_name(s) {
            Ok(2 + s.len())
        } else {
            Err(TooBig::Name)
        }
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
        string_len(s)?;
        let len = u16::try_from(s.len()).map_err(|_| TooBig::Name)?;
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
            if len > MAX_NAME_LEN || len > self.bytes.len() {
                return None;
            }
            let (s, rest) = self.bytes.split_at(len);
            self.bytes = rest;
            let s = std::str::from_utf8(s).ok()?;
            valid_name(s).then(|| s.to_owned())
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
    use super::codec::{decode, encode, TooBig, MAX_DEPTH, MAX_ENCODED_LEN, MAX_NAME_LEN};
    use super::*;
    use crate::SharedType;

    fn owned_layout(l: &TypeLayout) -> OwnedLayout {
        OwnedLayout::try_from(l).unwrap()
    }

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
            owned_layout(&u8::LAYOUT),
            owned_layout(&<[f32; 7]>::LAYOUT),
            owned_layout(&Inner::LAYOUT),
            owned_layout(&Tuple::LAYOUT),
            owned_layout(&<[[Inner; 2]; 3]>::LAYOUT),
            owned_layout(&Outer::LAYOUT),
        ]
    }

    #[test]
    fn round_trips() {
        for l in samples() {
            let bytes = encode(&l).unwrap();
            assert_eq!(decode(&bytes), Some(l));
        }
        for p in Primitive::ALL {
            let l = owned_layout(&TypeLayout::primitive(p));
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
        let mut l = owned_layout(&u8::LAYOUT);
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
        let a = owned_layout(&Inner::LAYOUT);
        assert!(a.differences(&a).is_empty());
        assert_eq!(
            Inner::LAYOUT.differences(&Tuple::LAYOUT)[0],
            "struct `Inner` in the heap, struct `Tuple` here"
        );
        assert_eq!(a.to_string(), Inner::LAYOUT.to_string());
        assert_eq!(a.short_name(), "Inner");
    }

    /// A struct node with one `u8` field, with the names given.
    fn named(name: &str, field: &str) -> OwnedLayout {
        OwnedLayout {
            size: 1,
            align: 1,
            kind: OwnedKind::Struct {
                name: name.to_owned(),
                fields: vec![OwnedField {
                    name: field.to_owned(),
                    offset: 0,
                    layout: owned_layout(&u8::LAYOUT),
                }],
            },
        }
    }

    /// The encoding of `named(name, "x")`, with the name written as raw bytes.
    fn encoded_with_name(name: &[u8]) -> Vec<u8> {
        let mut b = vec![STRUCT_TAG];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.push(b'x');
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&encode(&owned_layout(&u8::LAYOUT)).unwrap());
        b
    }

    #[test]
    fn names_are_checked_both_ways() {
        let longest = "n".repeat(MAX_NAME_LEN);
        for good in ["P", "_", "0", "Café", longest.as_str()] {
            let l = named(good, good);
            assert_eq!(decode(&encode(&l).unwrap()), Some(l), "{good:?}");
            assert!(
                decode(&encoded_with_name(good.as_bytes())).is_some(),
                "{good:?}"
            );
        }
        let too_long = "n".repeat(MAX_NAME_LEN + 1);
        let huge = "n".repeat(65_535);
        for bad in ["", "a\0b", "\u{1b}[31mred", "a b", "a.b", &too_long, &huge] {
            assert_eq!(encode(&named(bad, "x")), Err(TooBig::Name), "{bad:?}");
            assert_eq!(encode(&named("P", bad)), Err(TooBig::Name), "{bad:?}");
            assert_eq!(decode(&encoded_with_name(bad.as_bytes())), None, "{bad:?}");
        }
        // The byte layout of `encoded_with_name` is the encoder's.
        assert_eq!(encoded_with_name(b"P"), encode(&named("P", "x")).unwrap());
    }

    /// `A0 { a: u8, b: u8 }`, `A1 { a: A0, b: A0 }`, …: each level doubles the tree that
    /// the layout describes, while the `TypeLayout` DAG grows by one node.
    macro_rules! doubling {
        ($leaf:ty; $($name:ident)*) => { doubling!(@ $leaf; $($name)*); };
        (@ $prev:ty; $name:ident $($rest:ident)*) => {
            #[derive(Clone, Copy, crate::SharedStruct)]
            #[repr(C)]
            pub struct $name {
                pub a: $prev,
                pub b: $prev,
            }
            doubling!(@ $name; $($rest)*);
        };
        (@ $prev:ty;) => {};
    }

    mod a {
        doubling!(u8; A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12 A13 A14 A15 A16 A17 A18 A19 A20);
    }

    mod b {
        doubling!(i8; A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12 A13 A14 A15 A16 A17 A18 A19 A20);
    }

    /// A copy of a `doubling!` layout in new memory: equal trees, other `TypeLayout`s
    /// (identical constants may be merged, so a second `doubling!` could share them).
    fn copy_doubling(l: &'static TypeLayout) -> &'static TypeLayout {
        match l.kind {
            LayoutKind::Struct { name, fields } => {
                // Both fields have one type.
                let inner = copy_doubling(fields[0].layout);
                let fields: Vec<FieldLayout> = fields
                    .iter()
                    .map(|f| FieldLayout {
                        layout: inner,
                        ..*f
                    })
                    .collect();
                let copy = TypeLayout::structure(name, l.size, l.align, fields.leak());
                Box::leak(Box::new(copy))
            }
            _ => l,
        }
    }

    #[test]
    fn a_doubling_dag_is_refused_within_the_budget() {
        // 2^21 leaves of 18 encoded bytes each would be 36 MiB: refused, having copied
        // at most the budget's worth.
        assert_eq!(OwnedLayout::try_from(&a::A20::LAYOUT), Err(TooBig::Size));
        // Small levels still convert, and encode within the limit.
        let small = owned_layout(&a::A8::LAYOUT);
        assert!(encode(&small).unwrap().len() <= MAX_ENCODED_LEN);
    }

    #[test]
    fn differences_of_doubling_dags_are_bounded() {
        let l = &a::A20::LAYOUT;
        assert!(l.differences(l).is_empty());
        // Every leaf differs: the list stops after MAX_CLAUSES, and says so.
        let d = a::A20::LAYOUT.differences(&b::A20::LAYOUT);
        assert_eq!(d.len(), MAX_CLAUSES + 1);
        assert_eq!(
            d[0],
            "field `a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a`: u8 at offset 0 in the heap, \
             i8 at offset 0 here"
        );
        assert_eq!(d[MAX_CLAUSES], "… (more differences not listed)");
        // Equal trees of distinct DAGs: compared until the budget is spent, then the
        // comparison stops, saying so.
        assert_eq!(
            a::A20::LAYOUT.differences(copy_doubling(&a::A20::LAYOUT)),
            ["… (the layouts are too large to compare in full; the rest was not compared)"]
        );
        assert!(a::A8::LAYOUT
            .differences(copy_doubling(&a::A8::LAYOUT))
            .is_empty());
        let d = owned_layout(&a::A12::LAYOUT).differences(&owned_layout(&b::A12::LAYOUT));
        assert_eq!(d.len(), MAX_CLAUSES + 1);
    }
}
