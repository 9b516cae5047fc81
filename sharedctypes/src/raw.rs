//! Raw shared objects (no lock): [`RawValue`] and [`RawArray`], Python's `RawValue` and
//! `RawArray`, and [`copy`].

use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::heap::alloc::BlockRef;
use crate::heap::{try_default_heap, Heap};
use crate::shared::{Shared, SharedType};

/// One `T` in shared memory, without a lock (Python's `RawValue`). Derefs to
/// [`Shared<T>`]: `get`, `set`, `update`, and fields or elements in place.
///
/// Cloning is cheap and gives a handle to the same shared value; handles are
/// `Send + Sync` and keep working in forked children.
///
/// ```
/// use sharedctypes::{Process, RawValue};
///
/// let x = RawValue::new(1.0f64 / 3.0)?; // RawValue('d', 1.0/3.0)
/// let child = {
///     let x = x.clone();
///     Process::spawn(move || { x.update(|v| v * v); })?
/// };
/// child.join()?;
/// assert_eq!(x.get(), 1.0 / 9.0);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// Setting and getting are not atomic across processes (the note in Python's docs):
/// use [`Value`](crate::Value) when several processes write.
pub struct RawValue<T: SharedType> {
    /// The heap and the count this handle holds on the value's block.
    block: BlockRef,
    /// The value's address in this process (the block's object).
    ptr: NonNull<Shared<T>>,
}

// SAFETY: the handle only hands out `&Shared<T>`, which is `Sync`; the block reference
// (a heap handle and an offset) is `Send + Sync`; the pointer stays valid while the
// block's heap keeps the mapping alive.
unsafe impl<T: SharedType> Send for RawValue<T> {}
// SAFETY: as above.
unsafe impl<T: SharedType> Sync for RawValue<T> {}

impl<T: SharedType> RawValue<T> {
    /// Allocates a value in the [default heap](crate::default_heap), initialised to `init`.
    ///
    /// ```
    /// let v = sharedctypes::RawValue::new(2.4f64)?; // RawValue('d', 2.4)
    /// assert_eq!(v.get(), 2.4);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new(init: T) -> Result<Self> {
        Self::new_in(try_default_heap()?, init)
    }

    /// Allocates a zeroed value in the default heap.
    ///
    /// ```
    /// let v = sharedctypes::RawValue::<i32>::zeroed()?; // RawValue('i')
    /// assert_eq!(v.get(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed() -> Result<Self> {
        Self::zeroed_in(try_default_heap()?)
    }

    /// Allocates a value in `heap`, initialised to `init`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let v = sharedctypes::RawValue::new_in(&heap, 7u8)?;
    /// assert_eq!(v.get(), 7);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap, init: T) -> Result<Self> {
        let value = Self::zeroed_in(heap)?;
        // SAFETY: the memory was just allocated: valid and aligned for `T`, and no handle
        // to it exists yet in this process or another (the heap hands a block out only
        // while nothing refers to it), so a plain write cannot race with an access
        // through a handle.
        unsafe { value.ptr.as_ptr().cast::<T>().write(init) };
        Ok(value)
    }

    /// Allocates a zeroed value in `heap` (fresh heap memory is zero, so this writes
    /// nothing).
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let v = sharedctypes::RawValue::<[u16; 4]>::zeroed_in(&heap)?;
    /// assert_eq!(v.get(), [0; 4]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed_in(heap: &Heap) -> Result<Self> {
        let object = heap.alloc(std::mem::size_of::<T>(), std::mem::align_of::<T>())?;
        // SAFETY: `alloc` returned a block's object of `size_of::<T>()` bytes, aligned.
        Ok(unsafe { Self::from_offset(heap, object) })
    }

    /// The heap this value lives in.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let v = sharedctypes::RawValue::new_in(&heap, 1u8)?;
    /// assert_eq!(v.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn heap(&self) -> &Heap {
        self.block.heap()
    }

    /// The value's offset in its heap.
    pub(crate) fn offset(&self) -> usize {
        self.block.offset()
    }

    /// A handle to the value at `offset`, taking over one count already held on its
    /// block (by `alloc`, or taken by a lookup).
    ///
    /// # Safety
    ///
    /// `offset` must be the object of a block of `heap` holding at least one `T`, aligned
    /// for `T`.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Self {
        let block = BlockRef::new(heap, offset);
        RawValue {
            ptr: block.ptr(),
            block,
        }
    }
}

impl<T: SharedType> Deref for RawValue<T> {
    type Target = Shared<T>;

    #[inline]
    fn deref(&self) -> &Shared<T> {
        // SAFETY: `ptr` points to an aligned `Shared<T>` inside the mapping that the
        // block's heap keeps alive for as long as `self` lives, in a block that `self`'s
        // count keeps allocated.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: SharedType> Clone for RawValue<T> {
    /// Another handle to the same value (counted: the value lives until the last
    /// handle, in any process, is dropped).
    fn clone(&self) -> Self {
        RawValue {
            block: self.block.clone(),
            ptr: self.ptr,
        }
    }
}

impl<T: SharedType> PartialEq for RawValue<T> {
    /// Handles are equal when they name the same shared value.
    fn eq(&self, other: &Self) -> bool {
        self.heap().same_heap(other.heap()) && self.offset() == other.offset()
    }
}

impl<T: SharedType> Eq for RawValue<T> {}

impl<T: SharedType + fmt::Debug> fmt::Debug for RawValue<T> {
    /// `RawValue<i32>(7)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawValue<{}>({:?})", short_type_name::<T>(), self.get())
    }
}

/// An array of `T` in shared memory, without a lock (Python's `RawArray`). Derefs to
/// `[Shared<T>]`, so `len`, indexing, `iter` and slicing come from the slice.
///
/// Cloning is cheap and gives a handle to the same shared array.
///
/// ```
/// use sharedctypes::{typecode, RawArray};
///
/// let a = RawArray::<typecode!('h')>::zeroed(7)?;     // RawArray('h', 7)
/// let b = RawArray::<i32>::from_slice(&[9, 2, 8])?;  // RawArray('i', (9, 2, 8))
/// assert_eq!(a.len(), 7);
/// b[1].set(20);
/// assert_eq!(b.to_vec(), [9, 20, 8]);
/// assert_eq!(b.iter().map(|x| x.get()).sum::<i32>(), 37);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub struct RawArray<T: SharedType> {
    /// The heap and the count this handle holds on the array's block.
    block: BlockRef,
    /// The first element's address in this process.
    ptr: NonNull<Shared<T>>,
    len: usize,
}

// SAFETY: as for `RawValue`: only `&[Shared<T>]` is handed out.
unsafe impl<T: SharedType> Send for RawArray<T> {}
// SAFETY: as above.
unsafe impl<T: SharedType> Sync for RawArray<T> {}

impl<T: SharedType> RawArray<T> {
    /// A zeroed array of `len` elements in the default heap (Python: an integer size).
    ///
    /// ```
    /// let a = sharedctypes::RawArray::<f64>::zeroed(3)?;
    /// assert_eq!(a.to_vec(), [0.0; 3]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<Self> {
        Self::zeroed_in(try_default_heap()?, len)
    }

    /// An array in the default heap holding a copy of `init` (Python: an initializer
    /// sequence). One `memcpy`.
    ///
    /// ```
    /// let a = sharedctypes::RawArray::from_slice(&[1u8, 2, 3])?;
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_slice(init: &[T]) -> Result<Self> {
        Self::from_slice_in(try_default_heap()?, init)
    }

    /// An array in the default heap holding the items of `iter`.
    ///
    /// ```
    /// let a = sharedctypes::RawArray::try_from_iter((0..5u32).map(|i| i * i))?;
    /// assert_eq!(a.to_vec(), [0, 1, 4, 9, 16]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_from_iter<I: IntoIterator<Item = T>>(iter: I) -> Result<Self> {
        Self::try_from_iter_in(try_default_heap()?, iter)
    }

    /// [`zeroed`](Self::zeroed) in `heap`. Writes nothing: fresh heap memory is zero.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = sharedctypes::RawArray::<u16>::zeroed_in(&heap, 10)?;
    /// assert_eq!(a.to_vec(), [0; 10]);
    /// assert_eq!(heap.used(), 48); // 20 bytes and a 16-byte header, to a size class
    /// drop(a);
    /// assert_eq!(heap.used(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed_in(heap: &Heap, len: usize) -> Result<Self> {
        let size = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| Error::OutOfMemory {
                requested: usize::MAX,
                available: heap.available(),
            })?;
        let object = heap.alloc(size, std::mem::align_of::<T>())?;
        // SAFETY: `alloc` returned a block's object of `len` `T`s, aligned for `T`.
        Ok(unsafe { Self::from_offset(heap, object, len) })
    }

    /// [`from_slice`](Self::from_slice) in `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = sharedctypes::RawArray::from_slice_in(&heap, &[1.5f32, 2.5])?;
    /// assert_eq!(a[1].get(), 2.5);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_slice_in(heap: &Heap, init: &[T]) -> Result<Self> {
        let array = Self::zeroed_in(heap, init.len())?;
        // SAFETY: the destination was just allocated in `heap` for `init.len()` elements,
        // aligned, and cannot overlap `init` (a borrowed slice living elsewhere); no
        // handle to it exists yet (as in `RawValue::new_in`), so a plain copy cannot race
        // with an access through a handle.
        unsafe { heap.copy_to_fresh(array.ptr.as_ptr().cast::<T>(), init) };
        Ok(array)
    }

    /// [`try_from_iter`](Self::try_from_iter) in `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = sharedctypes::RawArray::try_from_iter_in(&heap, [3i8, 2, 1])?;
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_from_iter_in<I: IntoIterator<Item = T>>(heap: &Heap, iter: I) -> Result<Self> {
        let items: Vec<T> = iter.into_iter().collect();
        Self::from_slice_in(heap, &items)
    }

    /// Copies the elements out (element by element relaxed loads: a concurrent writer
    /// may make the copy a mix of old and new elements).
    ///
    /// ```
    /// let a = sharedctypes::RawArray::from_slice(&[4u64, 5])?;
    /// assert_eq!(a.to_vec(), vec![4, 5]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        load_vec(self)
    }

    /// Overwrites every element from `src`, which must have the array's length
    /// (otherwise `Err(Error::LengthMismatch)` and nothing is written).
    ///
    /// ```
    /// let a = sharedctypes::RawArray::<u8>::zeroed(3)?;
    /// a.copy_from_slice(&[7, 8, 9])?;
    /// assert_eq!(a.to_vec(), [7, 8, 9]);
    /// assert!(a.copy_from_slice(&[1]).is_err());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn copy_from_slice(&self, src: &[T]) -> Result<()> {
        store_slice(self, src)
    }

    /// The heap this array lives in.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = sharedctypes::RawArray::<u8>::zeroed_in(&heap, 3)?;
    /// assert_eq!(a.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn heap(&self) -> &Heap {
        self.block.heap()
    }

    pub(crate) fn offset(&self) -> usize {
        self.block.offset()
    }

    /// A handle to the array at `offset`, taking over one count already held on its
    /// block (by `alloc`, or taken by a lookup).
    ///
    /// # Safety
    ///
    /// `offset` must be the object of a block of `heap` holding `len` `T`s, aligned for
    /// `T`.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize, len: usize) -> Self {
        let block = BlockRef::new(heap, offset);
        RawArray {
            ptr: block.ptr(),
            block,
            len,
        }
    }
}

/// Copies `cells` out into a `Vec` by relaxed loads.
pub(crate) fn load_vec<T: SharedType>(cells: &[Shared<T>]) -> Vec<T> {
    cells.iter().map(Shared::get).collect()
}

/// Stores `src` into `cells` by relaxed stores, after checking the lengths.
pub(crate) fn store_slice<T: SharedType>(cells: &[Shared<T>], src: &[T]) -> Result<()> {
    if cells.len() != src.len() {
        return Err(Error::LengthMismatch {
            expected: cells.len(),
            found: src.len(),
        });
    }
    for (cell, &v) in cells.iter().zip(src) {
        cell.set(v);
    }
    Ok(())
}

impl<T: SharedType> Deref for RawArray<T> {
    type Target = [Shared<T>];

    #[inline]
    fn deref(&self) -> &[Shared<T>] {
        // SAFETY: `ptr` points to `len` aligned `Shared<T>` inside the mapping that the
        // block's heap keeps alive for as long as `self` lives, in a block that `self`'s
        // count keeps allocated.
        unsafe { Shared::slice_from_raw(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: SharedType> Clone for RawArray<T> {
    /// Another handle to the same array (counted, as for [`RawValue`]).
    fn clone(&self) -> Self {
        RawArray {
            block: self.block.clone(),
            ptr: self.ptr,
            len: self.len,
        }
    }
}

impl<T: SharedType> PartialEq for RawArray<T> {
    /// Handles are equal when they name the same shared array.
    fn eq(&self, other: &Self) -> bool {
        self.heap().same_heap(other.heap())
            && self.offset() == other.offset()
            && self.len == other.len
    }
}

impl<T: SharedType> Eq for RawArray<T> {}

impl<T: SharedType + fmt::Debug> fmt::Debug for RawArray<T> {
    /// `RawArray<i32>([9, 2, 8])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RawArray<{}>({:?})",
            short_type_name::<T>(),
            self.to_vec()
        )
    }
}

/// Byte strings: Python's `Array('c', b"...")` with its `value` and `raw` attributes.
///
/// ```
/// use sharedctypes::RawArray;
///
/// let s = RawArray::from_bytes(b"hello world")?;
/// assert_eq!(s.len(), 11);
/// s.set_value(b"bye")?;
/// assert_eq!(s.value(), b"bye");                 // up to the first NUL
/// assert_eq!(s.raw(), b"bye\0o world");          // every byte
/// assert!(s.set_value(b"far too long for this array").is_err());
/// # Ok::<(), sharedctypes::Error>(())
/// ```
impl RawArray<u8> {
    /// A byte array in the default heap holding a copy of `bytes` (no terminator added).
    ///
    /// ```
    /// let s = sharedctypes::RawArray::from_bytes(b"hi")?;
    /// assert_eq!(s.len(), 2); // no terminator added
    /// assert_eq!(s.value(), b"hi");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_in(try_default_heap()?, bytes)
    }

    /// [`from_bytes`](Self::from_bytes) in `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let s = sharedctypes::RawArray::from_bytes_in(&heap, b"abc")?;
    /// assert_eq!(s.value(), b"abc");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_bytes_in(heap: &Heap, bytes: &[u8]) -> Result<Self> {
        Self::from_slice_in(heap, bytes)
    }

    /// The bytes up to the first NUL (all of them if there is none).
    ///
    /// ```
    /// use sharedctypes::RawArray;
    ///
    /// assert_eq!(RawArray::from_bytes(b"ab\0cd")?.value(), b"ab");
    /// assert_eq!(RawArray::from_bytes(b"abcd")?.value(), b"abcd"); // no NUL: every byte
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn value(&self) -> Vec<u8> {
        bytes::value(self)
    }

    /// Every byte, NULs included.
    ///
    /// ```
    /// let s = sharedctypes::RawArray::from_bytes(b"ab\0cd")?;
    /// assert_eq!(s.raw(), b"ab\0cd");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn raw(&self) -> Vec<u8> {
        bytes::raw(self)
    }

    /// Writes `value` and a NUL terminator when it is shorter than the array; a value
    /// of exactly the array's length needs none. Longer is `Err(Error::TooLong)` and
    /// writes nothing.
    ///
    /// ```
    /// use sharedctypes::{Error, RawArray};
    ///
    /// let s = RawArray::from_bytes(b"hello")?;
    /// s.set_value(b"hey")?;
    /// assert_eq!(s.raw(), b"hey\0o"); // NUL-terminated
    /// s.set_value(b"HELLO")?; // exactly the length: no terminator
    /// assert_eq!(s.value(), b"HELLO");
    /// let err = s.set_value(b"HELLO!").unwrap_err();
    /// assert!(matches!(err, Error::TooLong { len: 6, capacity: 5 }));
    /// assert_eq!(s.value(), b"HELLO"); // nothing was written
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn set_value(&self, value: &[u8]) -> Result<()> {
        bytes::set_value(self, value)
    }

    /// Writes `raw` over the first `raw.len()` bytes, leaving the rest. Longer than
    /// the array is `Err(Error::TooLong)` and writes nothing.
    ///
    /// ```
    /// let s = sharedctypes::RawArray::from_bytes(b"hello")?;
    /// s.set_raw(b"J")?;
    /// assert_eq!(s.value(), b"Jello");
    /// assert!(s.set_raw(b"too long").is_err());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn set_raw(&self, raw: &[u8]) -> Result<()> {
        bytes::set_raw(self, raw)
    }
}

/// Python's byte-string semantics over `[Shared<u8>]`, shared by `RawArray` and
/// `Array`'s guard.
pub(crate) mod bytes {
    use super::*;

    pub(crate) fn value(cells: &[Shared<u8>]) -> Vec<u8> {
        cells
            .iter()
            .map(Shared::get)
            .take_while(|&b| b != 0)
            .collect()
    }

    pub(crate) fn raw(cells: &[Shared<u8>]) -> Vec<u8> {
        load_vec(cells)
    }

    pub(crate) fn set_value(cells: &[Shared<u8>], value: &[u8]) -> Result<()> {
        set_raw(cells, value)?;
        if let Some(terminator) = cells.get(value.len()) {
            terminator.set(0);
        }
        Ok(())
    }

    pub(crate) fn set_raw(cells: &[Shared<u8>], raw: &[u8]) -> Result<()> {
        if raw.len() > cells.len() {
            return Err(Error::TooLong {
                len: raw.len(),
                capacity: cells.len(),
            });
        }
        store_slice(&cells[..raw.len()], raw)
    }
}

/// Shared objects that [`copy`] can duplicate: [`RawValue`], [`RawArray`],
/// [`Value`](crate::Value), [`Array`](crate::Array).
///
/// ```
/// use sharedctypes::{CopyShared, Heap, RawArray};
///
/// let heap = Heap::new(4096)?;
/// let a = RawArray::from_slice(&[1u8, 2, 3])?;
/// let b = a.copy_into(&heap)?;
/// b[0].set(9);
/// assert_eq!(a.to_vec(), [1, 2, 3]); // a copy, not a second handle
/// assert_eq!(b.to_vec(), [9, 2, 3]);
/// assert_eq!(b.heap(), &heap);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub trait CopyShared: crate::sealed::Sealed {
    /// The raw object a copy gives.
    ///
    /// ```
    /// use sharedctypes::{CopyShared, RawValue, Value};
    ///
    /// let v = Value::new(1u8)?;
    /// let copy: <Value<u8> as CopyShared>::Raw = sharedctypes::copy(&v)?;
    /// let _: &RawValue<u8> = &copy;
    /// assert_eq!(copy.get(), 1);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    type Raw;

    /// Copies the contents into a new raw object in `heap`.
    ///
    /// ```
    /// use sharedctypes::{CopyShared, Heap, Value};
    ///
    /// let heap = Heap::new(4096)?;
    /// let v = Value::new(7i32)?;
    /// let copy = v.copy_into(&heap)?; // a RawValue, read under `v`'s lock
    /// v.set(8);
    /// assert_eq!(copy.get(), 7);
    /// assert_eq!(copy.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn copy_into(&self, heap: &Heap) -> Result<Self::Raw>;
}

impl<T: SharedType> CopyShared for RawValue<T> {
    type Raw = RawValue<T>;

    fn copy_into(&self, heap: &Heap) -> Result<RawValue<T>> {
        RawValue::new_in(heap, self.get())
    }
}

impl<T: SharedType> CopyShared for RawArray<T> {
    type Raw = RawArray<T>;

    fn copy_into(&self, heap: &Heap) -> Result<RawArray<T>> {
        let copy = RawArray::<T>::zeroed_in(heap, self.len)?;
        for (dst, src) in copy.iter().zip(self.iter()) {
            dst.set(src.get());
        }
        Ok(copy)
    }
}

/// A new raw shared object, in the default heap, with the same type and contents as
/// `obj` (Python's `copy(obj)`). Copying a [`Value`](crate::Value) or
/// [`Array`](crate::Array) reads it under its lock and gives a raw object.
///
/// ```
/// use sharedctypes::{copy, RawArray};
///
/// let a = RawArray::from_slice(&[1i64, 2, 3])?;
/// let b = copy(&a)?;
/// b[0].set(100);
/// assert_eq!(a.to_vec(), [1, 2, 3]);
/// assert_eq!(b.to_vec(), [100, 2, 3]);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn copy<O: CopyShared>(obj: &O) -> Result<O::Raw> {
    obj.copy_into(try_default_heap()?)
}

/// [`copy`] into `heap`.
///
/// ```
/// let heap = sharedctypes::Heap::new(4096)?;
/// let v = sharedctypes::RawValue::new(5u8)?;
/// let w = sharedctypes::copy_in(&heap, &v)?;
/// assert_eq!((w.get(), w.heap() == &heap), (5, true));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn copy_in<O: CopyShared>(heap: &Heap, obj: &O) -> Result<O::Raw> {
    obj.copy_into(heap)
}

/// `std::any::type_name` without module paths: `Point`, `[f64; 3]`, `i32`.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut ident = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            ident.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            ident.clear();
        } else {
            out.push_str(&ident);
            ident.clear();
            out.push(c);
        }
    }
    out.push_str(&ident);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name::<i32>(), "i32");
        assert_eq!(short_type_name::<[u8; 3]>(), "[u8; 3]");
        assert_eq!(short_type_name::<Vec<std::ffi::CString>>(), "Vec<CString>");
    }
}
