//! Handles whose element type is known at run time, not as a Rust type: the way in for
//! the Python module (`sharedctypes-py`), whose types come from typecodes and
//! `ctypes.Structure` classes. Not API: no stability promised.
//!
//! Everything here is built from the crate's own pieces, so that Python and Rust share
//! one implementation: an object's memory is a [`RawArray`] of `u8`, `u16`, `u32`,
//! `u64` or `u128` (whichever gives the element's alignment), locks are [`Lock`] and
//! [`RLock`], and [`publish()`](crate::erased::publish) and [`lookup()`](crate::erased::lookup) go through the heap's directory with the
//! same entries, layouts and checks as [`Heap::publish`] and [`Heap::lookup`]. What a
//! Python program publishes passes a Rust program's typed lookup when the layouts
//! agree, and fails with the same field-by-field [`Error::LayoutMismatch`] when they
//! do not.
//!
//! ```
//! use std::sync::Arc;
//! use sharedctypes::erased::{self, DynField, DynKind, DynLayout, Handle, Object};
//! use sharedctypes::{Heap, Primitive, RawValue, SharedStruct};
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! struct Point { x: f64, y: f64 }
//!
//! let f64_layout = || DynLayout::primitive(Primitive::F64);
//! let point = DynLayout::structure("Point", 16, 8, vec![
//!     DynField { name: "x".into(), offset: 0, layout: f64_layout() },
//!     DynField { name: "y".into(), offset: 8, layout: f64_layout() },
//! ])?;
//! let heap = Heap::new(1 << 16)?;
//! let obj = Object::value_in(&heap, Arc::new(point))?;
//! obj.block().cell::<f64>(8).unwrap().set(2.5);
//! erased::publish(&heap, "p", &Handle::Raw(obj))?;
//!
//! let p: RawValue<Point> = heap.lookup("p")?; // the typed lookup agrees
//! assert_eq!(p.y.get(), 2.5);
//! let Handle::Raw(found) = erased::lookup(&heap, "p")? else { unreachable!() };
//! assert_eq!(found.layout().to_string(), "Point { x: f64 @0, y: f64 @8 }");
//! # Ok::<(), sharedctypes::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result, UNDESCRIBABLE};
use crate::heap::publish::{Kind, LockKind, Parts, Shape};
use crate::heap::Heap;
use crate::layout::{codec, OwnedField, OwnedKind, OwnedLayout};
use crate::raw::RawArray;
use crate::shared::{Shared, SharedType};
use crate::sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard, RLock, RLockGuard, Semaphore,
};
use crate::Primitive;

// ---------------------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------------------

/// A type's layout, built at run time: what [`TypeLayout`](crate::TypeLayout) is for a
/// Rust type, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynLayout {
    /// Size in bytes (a multiple of `align`).
    pub size: usize,
    /// Alignment in bytes (a power of two).
    pub align: usize,
    /// What the type is.
    pub kind: DynKind,
}

/// What a [`DynLayout`] describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DynKind {
    /// A number.
    Primitive(Primitive),
    /// `[elem; len]`.
    Array {
        /// The element's layout.
        elem: Box<DynLayout>,
        /// The number of elements.
        len: usize,
    },
    /// A `#[repr(C)]` struct.
    Struct {
        /// The bare name.
        name: String,
        /// The fields, in declaration order.
        fields: Vec<DynField>,
    },
}

/// One field of a struct's [`DynLayout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynField {
    /// The field's name.
    pub name: String,
    /// Its offset in the struct.
    pub offset: usize,
    /// Its type's layout.
    pub layout: DynLayout,
}

/// Largest alignment an erased object can have: a `u128`'s (its memory is an array of
/// the unsigned integer of that alignment).
pub const MAX_ALIGN: usize = std::mem::align_of::<u128>();

impl DynLayout {
    /// A primitive's layout.
    ///
    /// ```
    /// use sharedctypes::erased::DynLayout;
    /// use sharedctypes::Primitive;
    ///
    /// assert_eq!(DynLayout::primitive(Primitive::I16).size, 2);
    /// ```
    pub fn primitive(p: Primitive) -> DynLayout {
        DynLayout {
            size: p.size(),
            align: p.align(),
            kind: DynKind::Primitive(p),
        }
    }

    /// `[elem; len]`; an error if its size overflows.
    ///
    /// ```
    /// use sharedctypes::erased::DynLayout;
    /// use sharedctypes::Primitive;
    ///
    /// let a = DynLayout::array(DynLayout::primitive(Primitive::U32), 3)?;
    /// assert_eq!((a.size, a.align, a.to_string().as_str()), (12, 4, "[u32; 3]"));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn array(elem: DynLayout, len: usize) -> Result<DynLayout> {
        let size = elem.size.checked_mul(len).ok_or_else(|| {
            Error::LayoutMismatch(format!(
                "`[{}; {len}]` is larger than memory can hold",
                elem.short_name()
            ))
        })?;
        Ok(DynLayout {
            size,
            align: elem.align,
            kind: DynKind::Array {
                elem: Box::new(elem),
                len,
            },
        })
    }

    /// A struct's layout, checked: see [`check`](Self::check).
    ///
    /// ```
    /// use sharedctypes::erased::{DynField, DynLayout};
    /// use sharedctypes::Primitive;
    ///
    /// let field = |name: &str, offset| DynField {
    ///     name: name.into(), offset, layout: DynLayout::primitive(Primitive::I32),
    /// };
    /// assert!(DynLayout::structure("S", 8, 4, vec![field("a", 0), field("b", 4)]).is_ok());
    /// assert!(DynLayout::structure("S", 8, 4, vec![field("a", 0), field("b", 2)]).is_err());
    /// ```
    pub fn structure(
        name: &str,
        size: usize,
        align: usize,
        fields: Vec<DynField>,
    ) -> Result<DynLayout> {
        let l = DynLayout {
            size,
            align,
            kind: DynKind::Struct {
                name: name.to_owned(),
                fields,
            },
        };
        l.check()?;
        Ok(l)
    }

    /// The layout of the Rust type `T`.
    ///
    /// ```
    /// use sharedctypes::erased::DynLayout;
    ///
    /// assert_eq!(DynLayout::of::<[f32; 2]>()?.to_string(), "[f32; 2]");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn of<T: SharedType>() -> Result<DynLayout> {
        OwnedLayout::try_from(&T::LAYOUT)
            .map(|l| DynLayout::from_owned(&l))
            .map_err(|_| {
                Error::LayoutMismatch(format!("`{}` {UNDESCRIBABLE}", T::LAYOUT.short_name()))
            })
    }

    /// Checks that the layout is one memory can have and a heap's directory can
    /// describe: alignments are powers of two no larger than [`MAX_ALIGN`]; sizes are
    /// multiples of alignments; an array's size is its element's times its length; a
    /// struct's fields lie inside it, aligned, in order, without overlapping; names are
    /// 1 to 255 letters, digits and `_`; nesting and size are within the directory's
    /// limits. The error ([`Error::LayoutMismatch`]) names what is wrong.
    ///
    /// ```
    /// use sharedctypes::erased::{DynKind, DynLayout};
    /// use sharedctypes::Primitive;
    ///
    /// let mut l = DynLayout::primitive(Primitive::F64);
    /// assert!(l.check().is_ok());
    /// l.size = 4;
    /// assert!(l.check().is_err());
    /// ```
    pub fn check(&self) -> Result<()> {
        self.check_at(&mut String::new(), 0)?;
        codec::encode(&self.to_owned_layout()).map_err(|_| {
            Error::LayoutMismatch(format!(
                "`{}` {UNDESCRIBABLE}: it is too large or nested too deeply",
                self.short_name()
            ))
        })?;
        Ok(())
    }

    fn check_at(&self, path: &mut String, depth: usize) -> Result<()> {
        fn bad(path: &str, what: String) -> Result<()> {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!("field `{path}`: ")
            };
            Err(Error::LayoutMismatch(format!("{at}{what}")))
        }
        if depth >= codec::MAX_DEPTH {
            return bad(
                path,
                format!("nested more than {} levels deep", codec::MAX_DEPTH),
            );
        }
        if !self.align.is_power_of_two() || self.align > MAX_ALIGN {
            return bad(
                path,
                format!(
                    "alignment {} is not a power of two up to {MAX_ALIGN}",
                    self.align
                ),
            );
        }
        if self.size % self.align != 0 {
            return bad(
                path,
                format!(
                    "size {} is not a multiple of its alignment {}",
                    self.size, self.align
                ),
            );
        }
        match &self.kind {
            DynKind::Primitive(p) => {
                if (self.size, self.align) != (p.size(), p.align()) {
                    return bad(
                        path,
                        format!(
                            "{} has size {} and alignment {}, not {} and {}",
                            p.name(),
                            p.size(),
                            p.align(),
                            self.size,
                            self.align
                        ),
                    );
                }
            }
            DynKind::Array { elem, len } => {
                if elem.size.checked_mul(*len) != Some(self.size) || elem.align != self.align {
                    return bad(
                        path,
                        format!(
                            "an array of {len} elements of size {} and alignment {} has size {} \
                         and alignment {}",
                            elem.size, elem.align, self.size, self.align
                        ),
                    );
                }
                let before = path.len();
                path.push_str("[]");
                elem.check_at(path, depth + 1)?;
                path.truncate(before);
            }
            DynKind::Struct { name, fields } => {
                if !codec::valid_name(name) {
                    return bad(
                        path,
                        format!(
                            "struct name {name:?} is not 1 to {} letters, digits and `_`",
                            codec::MAX_NAME_LEN
                        ),
                    );
                }
                let mut end = 0;
                for f in fields {
                    if !codec::valid_name(&f.name) {
                        return bad(
                            path,
                            format!(
                                "field name {:?} is not 1 to {} letters, digits and `_`",
                                f.name,
                                codec::MAX_NAME_LEN
                            ),
                        );
                    }
                    let before = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&f.name);
                    let field_end = f.offset.checked_add(f.layout.size);
                    if f.offset < end {
                        return bad(
                            path,
                            format!(
                                "offset {} overlaps the field before it (which ends at {end})",
                                f.offset
                            ),
                        );
                    }
                    if f.offset % f.layout.align != 0 {
                        return bad(
                            path,
                            format!(
                                "offset {} is not a multiple of its alignment {}",
                                f.offset, f.layout.align
                            ),
                        );
                    }
                    if f.layout.align > self.align {
                        return bad(
                            path,
                            format!(
                                "alignment {} is larger than its struct's ({})",
                                f.layout.align, self.align
                            ),
                        );
                    }
                    match field_end {
                        Some(e) if e <= self.size => end = e,
                        _ => {
                            return bad(
                                path,
                                format!("ends past the end of its struct (size {})", self.size),
                            )
                        }
                    }
                    f.layout.check_at(path, depth + 1)?;
                    path.truncate(before);
                }
            }
        }
        Ok(())
    }

    /// `f64`, `[f64; 3]`, `Point`.
    ///
    /// ```
    /// use sharedctypes::erased::DynLayout;
    ///
    /// assert_eq!(DynLayout::of::<[u8; 4]>()?.short_name(), "[u8; 4]");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn short_name(&self) -> String {
        match &self.kind {
            DynKind::Primitive(p) => p.name().to_owned(),
            DynKind::Array { elem, len } => format!("[{}; {len}]", elem.short_name()),
            DynKind::Struct { name, .. } => name.clone(),
        }
    }

    /// Every difference between `self` (as stored in a heap) and `here`, field by
    /// field, as [`TypeLayout::differences`](crate::TypeLayout::differences) says them.
    ///
    /// ```
    /// use sharedctypes::erased::DynLayout;
    ///
    /// let d = DynLayout::of::<u32>()?.differences(&DynLayout::of::<i32>()?);
    /// assert_eq!(d, ["u32 in the heap, i32 here"]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn differences(&self, here: &DynLayout) -> Vec<String> {
        self.to_owned_layout().differences(&here.to_owned_layout())
    }

    pub(crate) fn to_owned_layout(&self) -> OwnedLayout {
        let kind = match &self.kind {
            DynKind::Primitive(p) => OwnedKind::Primitive(*p),
            DynKind::Array { elem, len } => OwnedKind::Array {
                elem: Box::new(elem.to_owned_layout()),
                len: *len,
            },
            DynKind::Struct { name, fields } => OwnedKind::Struct {
                name: name.clone(),
                fields: fields
                    .iter()
                    .map(|f| OwnedField {
                        name: f.name.clone(),
                        offset: f.offset,
                        layout: f.layout.to_owned_layout(),
                    })
                    .collect(),
            },
        };
        OwnedLayout {
            size: self.size,
            align: self.align,
            kind,
        }
    }

    pub(crate) fn from_owned(l: &OwnedLayout) -> DynLayout {
        let kind = match &l.kind {
            OwnedKind::Primitive(p) => DynKind::Primitive(*p),
            OwnedKind::Array { elem, len } => DynKind::Array {
                elem: Box::new(DynLayout::from_owned(elem)),
                len: *len,
            },
            OwnedKind::Struct { name, fields } => DynKind::Struct {
                name: name.clone(),
                fields: fields
                    .iter()
                    .map(|f| DynField {
                        name: f.name.clone(),
                        offset: f.offset,
                        layout: DynLayout::from_owned(&f.layout),
                    })
                    .collect(),
            },
        };
        DynLayout {
            size: l.size,
            align: l.align,
            kind,
        }
    }
}

impl fmt::Display for DynLayout {
    /// `Point { x: f64 @0, y: f64 @8 }`, as [`TypeLayout`](crate::TypeLayout) shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_owned_layout(), f)
    }
}

// ---------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------

/// Bytes of shared memory, aligned, held as a [`RawArray`] of the unsigned integer of
/// that alignment (so the crate's own handle owns it).
#[derive(Clone)]
pub struct Block {
    units: Units,
    bytes: usize,
}

#[derive(Clone)]
enum Units {
    U8(RawArray<u8>),
    U16(RawArray<u16>),
    U32(RawArray<u32>),
    U64(RawArray<u64>),
    U128(RawArray<u128>),
}

/// Applies `$f` to the `RawArray` inside a `Units`.
macro_rules! with_units {
    ($units:expr, $a:ident => $f:expr) => {
        match $units {
            Units::U8($a) => $f,
            Units::U16($a) => $f,
            Units::U32($a) => $f,
            Units::U64($a) => $f,
            Units::U128($a) => $f,
        }
    };
}

/// The unit an object of `bytes` bytes aligned to `align` is made of: the largest
/// power of two up to `align` (and [`MAX_ALIGN`]) that divides `bytes`.
fn unit(bytes: usize, align: usize) -> usize {
    let mut unit = align.clamp(1, MAX_ALIGN);
    while unit > 1 && bytes % unit != 0 {
        unit /= 2;
    }
    unit
}

impl Block {
    /// `bytes` zeroed bytes aligned to `align` (a power of two up to [`MAX_ALIGN`]) in
    /// `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let b = sharedctypes::erased::Block::zeroed_in(&heap, 24, 8)?;
    /// assert_eq!(b.len_bytes(), 24);
    /// assert_eq!(b.as_ptr() as usize % 8, 0);
    /// assert_eq!(b.cell::<u64>(16).unwrap().get(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed_in(heap: &Heap, bytes: usize, align: usize) -> Result<Block> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(Error::AlignmentTooLarge {
                align,
                max: MAX_ALIGN,
            });
        }
        let units = match unit(bytes, align) {
            1 => Units::U8(RawArray::zeroed_in(heap, bytes)?),
            2 => Units::U16(RawArray::zeroed_in(heap, bytes / 2)?),
            4 => Units::U32(RawArray::zeroed_in(heap, bytes / 4)?),
            8 => Units::U64(RawArray::zeroed_in(heap, bytes / 8)?),
            _ => Units::U128(RawArray::zeroed_in(heap, bytes / 16)?),
        };
        Ok(Block { units, bytes })
    }

    /// # Safety
    ///
    /// `[offset, offset + bytes)` must be inside `heap`, and `offset` aligned to
    /// `align` (a power of two).
    unsafe fn from_offset(heap: &Heap, offset: usize, bytes: usize, align: usize) -> Block {
        /// One arm: the unit divides `bytes` and `align` (so the offset is aligned
        /// for it), and the caller guarantees the range in bounds.
        macro_rules! units {
            ($variant:ident, $unit:ty) => {{
                let n = bytes / std::mem::size_of::<$unit>();
                // SAFETY: `[offset, offset + n * size_of::<unit>()) = [offset, offset +
                // bytes)` is inside `heap` (the caller's obligation), and `offset` is
                // aligned to `align`, a multiple of the unit's alignment (`unit`).
                Units::$variant(unsafe { RawArray::from_offset(heap, offset, n) })
            }};
        }
        let units = match unit(bytes, align) {
            1 => units!(U8, u8),
            2 => units!(U16, u16),
            4 => units!(U32, u32),
            8 => units!(U64, u64),
            _ => units!(U128, u128),
        };
        Block { units, bytes }
    }

    /// The heap the block lives in.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// assert_eq!(sharedctypes::erased::Block::zeroed_in(&heap, 1, 1)?.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn heap(&self) -> &Heap {
        with_units!(&self.units, a => a.heap())
    }

    /// Its size in bytes.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// assert_eq!(sharedctypes::erased::Block::zeroed_in(&heap, 6, 2)?.len_bytes(), 6);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn len_bytes(&self) -> usize {
        self.bytes
    }

    /// Its address in this process (for a zero-copy view such as Python's buffer
    /// protocol: other processes may write the memory at any time).
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let b = sharedctypes::erased::Block::zeroed_in(&heap, 32, 16)?;
    /// assert_eq!(b.as_ptr() as usize % 16, 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        with_units!(&self.units, a => a.as_ptr().cast::<u8>().cast_mut())
    }

    fn offset(&self) -> usize {
        with_units!(&self.units, a => a.offset())
    }

    /// The `T` at byte `offset`, if it lies inside the block, aligned for `T`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let b = sharedctypes::erased::Block::zeroed_in(&heap, 16, 8)?;
    /// b.cell::<f64>(8).unwrap().set(1.5);
    /// assert_eq!(b.cell::<f64>(8).unwrap().get(), 1.5);
    /// assert!(b.cell::<f64>(4).is_none()); // misaligned
    /// assert!(b.cell::<f64>(16).is_none()); // past the end
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn cell<T: SharedType>(&self, offset: usize) -> Option<&Shared<T>> {
        self.cells::<T>(offset, 1).map(|c| &c[0])
    }

    /// `len` `T`s from byte `offset`, if they lie inside the block, aligned for `T`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let b = sharedctypes::erased::Block::zeroed_in(&heap, 12, 4)?;
    /// let c = b.cells::<u32>(4, 2).unwrap();
    /// c[1].set(7);
    /// assert_eq!(b.cell::<u32>(8).unwrap().get(), 7);
    /// assert!(b.cells::<u32>(4, 3).is_none());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn cells<T: SharedType>(&self, offset: usize, len: usize) -> Option<&[Shared<T>]> {
        let end = len
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|n| offset.checked_add(n))?;
        let ptr = self.as_ptr().wrapping_add(offset);
        if end > self.bytes || ptr as usize % std::mem::align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: `[ptr, ptr + len * size_of::<T>())` lies inside the block (checked
        // above), so inside the mapping that the block's handle keeps alive as long as
        // `self`; `ptr` is aligned for `T` (checked); `Shared<T>` is only accessed by
        // relaxed atomics or volatile accesses, and every bit pattern is a valid `T`
        // (`SharedType`), so viewing these bytes as `T`s, whatever else views them as,
        // is sound.
        Some(unsafe { Shared::slice_from_raw(ptr.cast::<Shared<T>>(), len) })
    }
}

impl PartialEq for Block {
    /// The same bytes of the same heap.
    fn eq(&self, other: &Block) -> bool {
        self.heap().same_heap(other.heap())
            && self.offset() == other.offset()
            && self.bytes == other.bytes
    }
}

/// Python's byte-string `value`: the bytes up to the first NUL.
///
/// ```
/// let heap = sharedctypes::Heap::new(4096)?;
/// let b = sharedctypes::erased::Block::zeroed_in(&heap, 4, 1)?;
/// let cells = b.cells::<u8>(0, 4).unwrap();
/// sharedctypes::erased::set_bytes_value(cells, b"hi")?;
/// assert_eq!(sharedctypes::erased::bytes_value(cells), b"hi");
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn bytes_value(cells: &[Shared<u8>]) -> Vec<u8> {
    crate::raw::bytes::value(cells)
}

/// Python's byte-string `raw`: every byte.
///
/// ```
/// let heap = sharedctypes::Heap::new(4096)?;
/// let b = sharedctypes::erased::Block::zeroed_in(&heap, 2, 1)?;
/// assert_eq!(sharedctypes::erased::bytes_raw(b.cells::<u8>(0, 2).unwrap()), [0, 0]);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn bytes_raw(cells: &[Shared<u8>]) -> Vec<u8> {
    crate::raw::bytes::raw(cells)
}

/// Sets Python's byte-string `value`: NUL-terminated when shorter than the cells;
/// [`Error::TooLong`] (and nothing written) when longer.
///
/// ```
/// let heap = sharedctypes::Heap::new(4096)?;
/// let b = sharedctypes::erased::Block::zeroed_in(&heap, 2, 1)?;
/// assert!(sharedctypes::erased::set_bytes_value(b.cells::<u8>(0, 2).unwrap(), b"abc").is_err());
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn set_bytes_value(cells: &[Shared<u8>], value: &[u8]) -> Result<()> {
    crate::raw::bytes::set_value(cells, value)
}

/// Sets Python's byte-string `raw`: the first `raw.len()` bytes; [`Error::TooLong`]
/// (and nothing written) when longer than the cells.
///
/// ```
/// let heap = sharedctypes::Heap::new(4096)?;
/// let b = sharedctypes::erased::Block::zeroed_in(&heap, 3, 1)?;
/// let cells = b.cells::<u8>(0, 3).unwrap();
/// sharedctypes::erased::set_bytes_raw(cells, b"a\0b")?;
/// assert_eq!(sharedctypes::erased::bytes_raw(cells), b"a\0b");
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn set_bytes_raw(cells: &[Shared<u8>], raw: &[u8]) -> Result<()> {
    crate::raw::bytes::set_raw(cells, raw)
}

// ---------------------------------------------------------------------------------------
// Objects and handles
// ---------------------------------------------------------------------------------------

/// A value (one element) or an array (`len` elements) of a run-time layout in shared
/// memory: Python's `RawValue` and `RawArray` of any typecode or `ctypes` type.
#[derive(Clone)]
pub struct Object {
    block: Block,
    layout: Arc<DynLayout>,
    len: usize,
    array: bool,
}

impl Object {
    /// A zeroed value of `layout` in `heap` (the layout is [checked](DynLayout::check)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sharedctypes::erased::{DynLayout, Object};
    ///
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let v = Object::value_in(&heap, Arc::new(DynLayout::of::<i32>()?))?;
    /// assert_eq!((v.len(), v.is_array(), v.block().len_bytes()), (1, false, 4));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn value_in(heap: &Heap, layout: Arc<DynLayout>) -> Result<Object> {
        Object::new_in(heap, layout, 1, false)
    }

    /// A zeroed array of `len` elements of `layout` in `heap`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sharedctypes::erased::{DynLayout, Object};
    ///
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = Object::array_in(&heap, Arc::new(DynLayout::of::<u16>()?), 5)?;
    /// assert_eq!((a.len(), a.is_array(), a.block().len_bytes()), (5, true, 10));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn array_in(heap: &Heap, layout: Arc<DynLayout>, len: usize) -> Result<Object> {
        Object::new_in(heap, layout, len, true)
    }

    fn new_in(heap: &Heap, layout: Arc<DynLayout>, len: usize, array: bool) -> Result<Object> {
        layout.check()?;
        let bytes = layout.size.checked_mul(len).ok_or(Error::OutOfMemory {
            requested: usize::MAX,
            available: heap.available(),
        })?;
        let block = Block::zeroed_in(heap, bytes, layout.align)?;
        Ok(Object {
            block,
            layout,
            len,
            array,
        })
    }

    /// Its memory.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sharedctypes::erased::{DynLayout, Object};
    ///
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let v = Object::value_in(&heap, Arc::new(DynLayout::of::<u8>()?))?;
    /// v.block().cell::<u8>(0).unwrap().set(3);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Its element's layout.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sharedctypes::erased::{DynLayout, Object};
    ///
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let v = Object::value_in(&heap, Arc::new(DynLayout::of::<u8>()?))?;
    /// assert_eq!(v.layout().to_string(), "u8");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn layout(&self) -> &Arc<DynLayout> {
        &self.layout
    }

    /// The number of elements (1 for a value).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sharedctypes::erased::{DynLayout, Object};
    ///
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = Object::array_in(&heap, Arc::new(DynLayout::of::<u8>()?), 0)?;
    /// assert_eq!(a.len(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is an array (Python's `RawArray`), not a value.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sharedctypes::erased::{DynLayout, Object};
    ///
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// assert!(!Object::value_in(&heap, Arc::new(DynLayout::of::<u8>()?))?.is_array());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn is_array(&self) -> bool {
        self.array
    }

    fn shape(&self) -> Shape {
        if self.array {
            Shape::Array
        } else {
            Shape::Value
        }
    }
}

/// A [`Lock`] or an [`RLock`].
#[derive(Clone, PartialEq)]
pub enum AnyLock {
    /// Not recursive.
    Lock(Lock),
    /// Recursive.
    RLock(RLock),
}

impl AnyLock {
    fn parts(&self) -> (LockKind, &Heap, usize) {
        match self {
            AnyLock::Lock(l) => (LockKind::Lock, l.heap(), l.offset()),
            AnyLock::RLock(l) => (LockKind::RLock, l.heap(), l.offset()),
        }
    }
}

/// Everything [`Heap::publish`] can publish, with the element type (if any) erased.
#[derive(Clone)]
pub enum Handle {
    /// A `RawValue` or `RawArray`.
    Raw(Object),
    /// A `Value` or `Array`: the object and its lock.
    Synchronized(Object, AnyLock),
    /// A bare [`Lock`].
    Lock(Lock),
    /// A bare [`RLock`].
    RLock(RLock),
    /// An [`Event`].
    Event(Event),
    /// A [`Semaphore`].
    Semaphore(Semaphore),
    /// A [`BoundedSemaphore`].
    BoundedSemaphore(BoundedSemaphore),
    /// A [`Barrier`].
    Barrier(Barrier),
    /// A [`Condition`].
    Condition(Condition),
}

/// [`Heap::publish`] for an erased handle: the same entry a Rust program's publish of
/// the matching typed handle writes.
///
/// ```
/// use std::sync::Arc;
/// use sharedctypes::erased::{self, AnyLock, DynLayout, Handle, Object};
/// use sharedctypes::{Heap, RLock, Value};
///
/// let heap = Heap::new(1 << 16)?;
/// let obj = Object::value_in(&heap, Arc::new(DynLayout::of::<i64>()?))?;
/// obj.block().cell::<i64>(0).unwrap().set(-3);
/// let v = Handle::Synchronized(obj, AnyLock::RLock(RLock::new_in(&heap)?));
/// erased::publish(&heap, "v", &v)?;
/// assert_eq!(heap.lookup::<Value<i64>>("v")?.get(), -3);
/// assert!(heap.lookup::<Value<u64>>("v").is_err());
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn publish(heap: &Heap, key: &str, handle: &Handle) -> Result<()> {
    fn object(o: &Object) -> Option<(&Heap, usize)> {
        Some((o.block.heap(), o.block.offset()))
    }
    match handle {
        Handle::Raw(o) => heap.publish_erased(
            key,
            Kind::new(o.shape(), LockKind::None),
            Some(&o.layout.to_owned_layout()),
            Parts {
                object: object(o),
                len: o.len,
                lock: None,
            },
        ),
        Handle::Synchronized(o, lock) => {
            let (kind, lock_heap, lock_offset) = lock.parts();
            heap.publish_erased(
                key,
                Kind::new(o.shape(), kind),
                Some(&o.layout.to_owned_layout()),
                Parts {
                    object: object(o),
                    len: o.len,
                    lock: Some((lock_heap, lock_offset)),
                },
            )
        }
        Handle::Lock(l) => heap.publish(key, l),
        Handle::RLock(l) => heap.publish(key, l),
        Handle::Event(e) => heap.publish(key, e),
        Handle::Semaphore(s) => heap.publish(key, s),
        Handle::BoundedSemaphore(s) => heap.publish(key, s),
        Handle::Barrier(b) => heap.publish(key, b),
        Handle::Condition(c) => heap.publish(key, c),
    }
}

/// [`Heap::lookup`] without a type: whatever is published under `key`, with the
/// element layout as stored (what a Rust program published with its `LAYOUT`, or a
/// Python program with its `ctypes` type). The entry is checked as a typed lookup
/// checks it ([`Error::NotFound`], [`Error::InvalidHeap`], the namespace errors).
///
/// ```
/// use sharedctypes::erased::{self, Handle};
/// use sharedctypes::{Array, Heap};
///
/// let heap = Heap::new(1 << 16)?;
/// heap.publish("a", &Array::from_slice_in(&heap, &[1.5f64, 2.5])?)?;
/// let Handle::Synchronized(a, _) = erased::lookup(&heap, "a")? else { unreachable!() };
/// assert_eq!((a.len(), a.layout().to_string().as_str()), (2, "f64"));
/// assert_eq!(a.block().cell::<f64>(8).unwrap().get(), 2.5);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn lookup(heap: &Heap, key: &str) -> Result<Handle> {
    let entry = heap.lookup_erased(key)?;
    let (shape, lock) = (entry.kind.shape, entry.kind.lock);
    let object = |layout: &OwnedLayout| {
        let bytes = layout
            .size
            .checked_mul(entry.found.len)
            .ok_or(Error::InvalidHeap)?;
        // The stored alignment may exceed what an erased object is made of; the block
        // is then made of smaller units (its offset is aligned all the same).
        // SAFETY: `lookup_erased` checked `len` elements of the stored layout's size at
        // the object's offset inside the heap's allocated part, aligned to the stored
        // alignment.
        let block = unsafe { Block::from_offset(heap, entry.found.object, bytes, layout.align) };
        Ok::<_, Error>(Object {
            block,
            layout: Arc::new(DynLayout::from_owned(layout)),
            len: entry.found.len,
            array: shape == Shape::Array,
        })
    };
    let any_lock = || match lock {
        // SAFETY: `lookup_erased` checked the lock's offset in bounds and aligned for a
        // lock, since the kind has one.
        LockKind::Lock => Some(AnyLock::Lock(unsafe {
            Lock::from_offset(heap, entry.found.lock)
        })),
        // SAFETY: as above.
        LockKind::RLock => Some(AnyLock::RLock(unsafe {
            RLock::from_offset(heap, entry.found.lock)
        })),
        LockKind::None => None,
    };
    match (shape, &entry.layout) {
        (Shape::Value | Shape::Array, Some(layout)) => {
            let o = object(layout)?;
            Ok(match any_lock() {
                Some(l) => Handle::Synchronized(o, l),
                None => Handle::Raw(o),
            })
        }
        (Shape::Lock, _) => Ok(match any_lock() {
            Some(AnyLock::Lock(l)) => Handle::Lock(l),
            Some(AnyLock::RLock(l)) => Handle::RLock(l),
            None => return Err(Error::InvalidHeap),
        }),
        // Coordination objects have Rust types: the typed lookup checks their state's
        // real size and layout, and takes its own count (this one goes back).
        (Shape::Event, _) => coordination(heap, key, entry.found.object, Handle::Event),
        (Shape::Semaphore, _) => coordination(heap, key, entry.found.object, Handle::Semaphore),
        (Shape::BoundedSemaphore, _) => {
            coordination(heap, key, entry.found.object, Handle::BoundedSemaphore)
        }
        (Shape::Barrier, _) => coordination(heap, key, entry.found.object, Handle::Barrier),
        (Shape::Condition, _) => coordination(heap, key, entry.found.object, Handle::Condition),
        (Shape::Value | Shape::Array, None) => Err(Error::InvalidHeap),
    }
}

/// The [default heap](crate::default_heap), or the error that kept it from being
/// created (where `default_heap` panics).
///
/// ```
/// assert!(sharedctypes::erased::try_default_heap().is_ok());
/// ```
pub fn try_default_heap() -> Result<&'static Heap> {
    crate::heap::try_default_heap()
}

/// A coordination object found by [`lookup`]: the count `lookup_erased` took on
/// `object` goes back, and the typed lookup (which checks the state's real type) makes
/// the handle.
fn coordination<H: crate::Publish>(
    heap: &Heap,
    key: &str,
    object: usize,
    wrap: fn(H) -> Handle,
) -> Result<Handle> {
    heap.release(object);
    heap.lookup(key).map(wrap)
}

/// Takes `lock` if that needs no waiting and no system call: free, or (an
/// [`RLock`]) held by this thread already. `None` otherwise, and nothing is read from
/// `/proc` (unlike [`Lock::try_acquire`], which checks whether a holder died).
///
/// ```
/// let lock = sharedctypes::Lock::new()?;
/// let g = sharedctypes::erased::try_lock_quick(&lock).unwrap();
/// assert!(sharedctypes::erased::try_lock_quick(&lock).is_none());
/// drop(g);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn try_lock_quick(lock: &Lock) -> Option<LockGuard<'_>> {
    lock.try_acquire_quiet()
}

/// [`try_lock_quick`] for an [`RLock`].
///
/// ```
/// let lock = sharedctypes::RLock::new()?;
/// let outer = sharedctypes::erased::try_rlock_quick(&lock).unwrap();
/// let inner = sharedctypes::erased::try_rlock_quick(&lock).unwrap(); // recursive
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn try_rlock_quick(lock: &RLock) -> Option<RLockGuard<'_>> {
    lock.try_acquire_quiet()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RawArray, RawValue, SharedStruct, Value};

    #[derive(Clone, Copy, SharedStruct)]
    #[repr(C)]
    struct Point {
        x: f64,
        y: f64,
    }

    fn f64_field(name: &str, offset: usize) -> DynField {
        DynField {
            name: name.into(),
            offset,
            layout: DynLayout::primitive(Primitive::F64),
        }
    }

    #[test]
    fn a_struct_layout_equals_the_derived_one() {
        let here = DynLayout::structure("Point", 16, 8, vec![f64_field("x", 0), f64_field("y", 8)])
            .unwrap();
        assert_eq!(here, DynLayout::of::<Point>().unwrap());
    }

    #[test]
    fn a_mismatch_names_the_field() {
        let heap = Heap::new(1 << 16).unwrap();
        let mut y = f64_field("y", 8);
        y.layout = DynLayout::primitive(Primitive::F32);
        let l = DynLayout::structure("Point", 16, 8, vec![f64_field("x", 0), y]).unwrap();
        let o = Object::value_in(&heap, Arc::new(l)).unwrap();
        publish(&heap, "p", &Handle::Raw(o)).unwrap();
        let Err(Error::LayoutMismatch(why)) = heap.lookup::<RawValue<Point>>("p") else {
            panic!("the layouts differ")
        };
        assert!(
            why.contains("field `y`: f32 at offset 8 in the heap, f64 at offset 8 here"),
            "{why}"
        );
    }

    #[test]
    fn bad_layouts_are_refused_with_the_field() {
        let mut inner = f64_field("b", 4);
        inner.layout = DynLayout::primitive(Primitive::F64);
        let e = DynLayout::structure("S", 16, 8, vec![f64_field("a", 0), inner]).unwrap_err();
        assert!(e.to_string().contains("field `b`"), "{e}");
        let e = DynLayout::structure("S", 8, 8, vec![f64_field("a", 0), f64_field("b", 8)])
            .unwrap_err();
        assert!(e.to_string().contains("ends past the end"), "{e}");
        let e = DynLayout::structure("no good", 8, 8, vec![f64_field("a", 0)]).unwrap_err();
        assert!(e.to_string().contains("struct name"), "{e}");
        let mut big = DynLayout::primitive(Primitive::U8);
        big.align = 32;
        big.size = 32;
        assert!(big.check().is_err());
    }

    #[test]
    fn typed_objects_are_found_erased_and_back() {
        let heap = Heap::new(1 << 16).unwrap();
        let a = RawArray::from_slice_in(&heap, &[Point { x: 1.0, y: 2.0 }; 3]).unwrap();
        heap.publish("a", &a).unwrap();
        let Handle::Raw(found) = lookup(&heap, "a").unwrap() else {
            panic!("a raw array")
        };
        assert_eq!((found.len(), found.is_array()), (3, true));
        assert_eq!(*found.layout().as_ref(), DynLayout::of::<Point>().unwrap());
        found.block().cell::<f64>(40).unwrap().set(9.0);
        assert_eq!(a[2].y.get(), 9.0);
        // Published again erased, found typed.
        publish(&heap, "b", &Handle::Raw(found)).unwrap();
        assert_eq!(heap.lookup::<RawArray<Point>>("b").unwrap()[2].y.get(), 9.0);
        assert!(heap.lookup::<RawValue<Point>>("b").is_err());
    }

    #[test]
    fn locks_and_coordination_objects_round_trip() {
        let heap = Heap::new(1 << 16).unwrap();
        let v = Value::new_in(&heap, 5u32).unwrap();
        heap.publish("v", &v).unwrap();
        let Handle::Synchronized(o, AnyLock::RLock(l)) = lookup(&heap, "v").unwrap() else {
            panic!("a Value with an RLock")
        };
        assert!(&l == v.get_lock());
        assert_eq!(o.block().cell::<u32>(0).unwrap().get(), 5);
        publish(&heap, "e", &Handle::Event(Event::new_in(&heap).unwrap())).unwrap();
        assert!(matches!(lookup(&heap, "e"), Ok(Handle::Event(_))));
        publish(&heap, "l", &Handle::Lock(Lock::new_in(&heap).unwrap())).unwrap();
        assert!(matches!(lookup(&heap, "l"), Ok(Handle::Lock(_))));
        assert!(matches!(
            lookup(&heap, "missing"),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn erased_handles_are_counted_like_typed_ones() {
        let heap = Heap::new(1 << 16).unwrap();
        let l = DynLayout::structure("Point", 16, 8, vec![f64_field("x", 0), f64_field("y", 8)])
            .unwrap();
        let o = Object::array_in(&heap, Arc::new(l), 4).unwrap();
        let lock = AnyLock::RLock(RLock::new_in(&heap).unwrap());
        publish(&heap, "a", &Handle::Synchronized(o, lock)).unwrap();
        // The directory keeps both blocks alive.
        assert_eq!(heap.live_objects(), 2);
        for _ in 0..3 {
            let found = lookup(&heap, "a").unwrap();
            let typed = heap.lookup::<crate::Array<Point>>("a").unwrap();
            assert_eq!(typed.len(), 4);
            drop((found, typed));
        }
        publish(&heap, "e", &Handle::Event(Event::new_in(&heap).unwrap())).unwrap();
        drop(lookup(&heap, "e").unwrap());
        assert_eq!(heap.live_objects(), 3);
        let kept = lookup(&heap, "a").unwrap();
        heap.unpublish("a").unwrap();
        heap.unpublish("e").unwrap();
        assert_eq!(
            heap.live_objects(),
            2,
            "the looked-up handle keeps the array and lock"
        );
        drop(kept);
        assert_eq!((heap.live_objects(), heap.used()), (0, 0));
    }

    #[test]
    fn a_failed_erased_publish_gives_its_counts_back() {
        let heap = Heap::new(1 << 16).unwrap();
        let o = Object::value_in(&heap, Arc::new(DynLayout::of::<u32>().unwrap())).unwrap();
        publish(&heap, "v", &Handle::Raw(o.clone())).unwrap();
        assert!(matches!(
            publish(&heap, "v", &Handle::Raw(o.clone())),
            Err(Error::AlreadyExists { .. })
        ));
        heap.unpublish("v").unwrap();
        drop(o);
        assert_eq!(heap.live_objects(), 0);
    }

    #[test]
    fn a_block_from_another_heap_is_refused() {
        let heap = Heap::new(1 << 16).unwrap();
        let other = Heap::new(1 << 16).unwrap();
        let o = Object::value_in(&other, Arc::new(DynLayout::of::<u8>().unwrap())).unwrap();
        assert!(matches!(
            publish(&heap, "x", &Handle::Raw(o)),
            Err(Error::WrongHeap)
        ));
    }
}
