//! [`SharedType`] — what may live in shared memory — and [`Shared<T>`], one such value
//! in memory that other processes may change at any moment.
//!
//! # The memory-model argument
//!
//! A `Shared<T>` may be read and written at the same time by threads of this process
//! and by other processes mapping the same pages. Rust forbids data races between
//! non-atomic accesses, so every access goes through atomics:
//!
//! - every element access is decomposed, field by field and element by element, down
//!   to primitives, and each primitive is loaded or stored with one *relaxed* atomic
//!   operation of its own size (`u128`/`i128` as two `u64` halves). Two accesses to the
//!   same primitive therefore always have the same size and address: there are no
//!   mixed-size atomic accesses, and padding bytes are never read or written;
//! - relaxed atomics compile to plain loads and stores on x86-64 and AArch64, so a
//!   single access costs what the racy code C would write; the price is that bulk
//!   reads and writes of *shared* memory (`to_vec`, `copy_from_slice`) go element by
//!   element, since the compiler may not merge or vectorise atomics;
//! - a value read while another process writes it may be *torn* (some fields old, some
//!   new), but every field is a primitive and every bit pattern of every primitive is
//!   valid ([`SharedType`]'s contract), so a torn value is still a valid `T`;
//! - ordering between processes is provided by the locks ([`Lock`](crate::Lock),
//!   [`RLock`](crate::RLock)), whose acquire and release are `Acquire`/`Release`
//!   atomics on the same shared memory. (A lock taken over from a dead owner sees the
//!   dead owner's writes because the kernel fences when a process dies, not through a
//!   `Release` of its own.)
//!
//! The same memory may be mapped twice in one process (a named heap opened twice):
//! two addresses alias one location, which the Rust abstract machine does not model;
//! it is sound in practice because every access to shared objects is atomic and no
//! reference to their contents ever asserts exclusive access.
//!
//! Memory that no other process or thread can yet reach (a freshly allocated object)
//! is initialised with a plain `memcpy`, which is where bulk constructors get their
//! speed.
//!
//! ```
//! use sharedctypes::{RawValue, SharedStruct};
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! struct Pos { x: i32, y: i32 }
//!
//! let p = RawValue::new(Pos { x: 1, y: 2 })?;
//! p.x.set(10); // one field: one relaxed store of an `i32`
//! assert_eq!(p.y.get(), 2); // untouched
//! let whole = p.get(); // field by field
//! assert_eq!((whole.x, whole.y), (10, 2));
//! # Ok::<(), sharedctypes::Error>(())
//! ```

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicIsize, AtomicU16, AtomicU32, AtomicU64,
    AtomicU8, AtomicUsize, Ordering::Relaxed,
};

use crate::layout::{Primitive, TypeLayout};

/// A type that may live in shared memory.
///
/// Implemented for every integer, `f32`, `f64`, arrays `[T; N]` of a `SharedType`, and
/// every `#[repr(C)]` struct with [`#[derive(SharedStruct)]`](derive@crate::SharedStruct).
/// Not for `bool` or `char` (not every bit pattern is valid), nor for references,
/// pointers, `Box`, `Vec`, `String`, `Rc`, `Arc` or anything holding one: an address
/// means nothing in another process.
///
/// ```
/// use sharedctypes::RawValue;
/// let v = RawValue::new([1u16, 2, 3])?;
/// assert_eq!(v.get(), [1, 2, 3]);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// A pointer is refused at compile time:
///
/// ```compile_fail
/// let v = sharedctypes::RawValue::new(&0u8 as *const u8);
/// ```
///
/// # Safety
///
/// An implementor must
/// - hold no pointer and no resource (it needs no drop and is meaningful in any process);
/// - accept every bit pattern of its size, all-zero included, as a valid value;
/// - implement `__load` and `__store` by relaxed atomic accesses to its primitives only,
///   each of the primitive's own size, at an address aligned for that primitive
///   whenever the pointer passed in is aligned for `Self` (so no packed layout that
///   misaligns a field);
/// - have a `LAYOUT` that describes `Self` (its `size`/`align` equal `size_of`/`align_of::<Self>()`).
///
/// Implement it with `#[derive(SharedStruct)]`: the impl it generates meets each point
/// (every field must be a `SharedType`, a packing that could misalign a field does not
/// compile, and `LAYOUT` is computed from the struct's own size, alignment and field
/// offsets).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory",
    label = "`{Self}` is not a `SharedType`",
    note = "shared memory holds integers, floats, arrays of them, and `#[repr(C)]` structs \
            with `#[derive(SharedStruct)]`",
    note = "a pointer, reference, `Box`, `Vec`, `String`, `Rc` or `Arc` holds an address, \
            which means nothing in another process: store an index or an offset into a \
            shared array instead",
    note = "`bool`, `char` and enums are not valid for every bit pattern another process \
            may write: store a `u8` or `u32`; a tuple has no fixed layout: use a \
            `#[repr(C)]` struct"
)]
pub unsafe trait SharedType: Copy + Send + Sync + 'static {
    /// A compile-time description of this type's layout, compared when a named heap's
    /// objects are looked up by another program.
    ///
    /// ```
    /// use sharedctypes::SharedType;
    ///
    /// let l = <[u32; 4]>::LAYOUT;
    /// assert_eq!((l.size, l.align), (16, 4));
    /// assert_eq!(l.short_name(), "[u32; 4]");
    /// ```
    const LAYOUT: TypeLayout;

    /// Reads a value by relaxed atomic loads of each primitive.
    ///
    /// # Safety
    ///
    /// `src` must be aligned for `Self` and valid for reads and writes of `Self` (an
    /// atomic needs writable memory even to load), and every access to that memory that
    /// may race with this one must be atomic, primitive by primitive, with the same
    /// sizes (as every access through [`Shared`] is).
    #[doc(hidden)]
    unsafe fn __load(src: *const Self) -> Self;

    /// Writes a value by relaxed atomic stores of each primitive.
    ///
    /// # Safety
    ///
    /// As for [`__load`](SharedType::__load): `dst` aligned for `Self`, valid for reads
    /// and writes, and only raced with by atomic accesses of the same sizes.
    #[doc(hidden)]
    unsafe fn __store(dst: *mut Self, value: Self);
}

/// A `#[repr(C)]` struct whose fields can be reached in shared memory:
/// `Shared<S>` derefs to `S::Fields`, which holds one `Shared<F>` per field.
///
/// Implemented by `#[derive(SharedStruct)]` only.
///
/// ```
/// use sharedctypes::{RawValue, SharedStruct};
///
/// #[derive(Clone, Copy, SharedStruct)]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
///
/// let p = RawValue::new(Point { x: 1.0, y: 2.0 })?;
/// p.y.set(p.x.get() + 5.0);
/// assert_eq!(p.y.get(), 6.0);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// # Safety
///
/// `Fields` must be a `#[repr(C)]` struct with the same size and alignment as `Self`
/// and, for each field `f: F` of `Self`, a field `f: Shared<F>` at the same offset. The
/// derive asserts this at compile time: where a non-generic struct is defined, and for
/// each instantiation of a generic one in `__LAYOUT_CHECK`, which `Deref` (and the
/// derived `LAYOUT`, `__load` and `__store`) evaluate when they are monomorphized.
pub unsafe trait SharedStruct: SharedType {
    /// The companion `<Name>Fields` struct generated by the derive.
    type Fields;

    /// Evaluating this constant fails to compile if the layouts differ.
    #[doc(hidden)]
    const __LAYOUT_CHECK: ();
}

/// One `T` in shared memory: like [`Cell<T>`](std::cell::Cell), but for memory that
/// other processes may change at any moment.
///
/// You never own a `Shared<T>`; you reach one through a handle such as
/// [`RawValue`](crate::RawValue) or an element of a [`RawArray`](crate::RawArray).
/// A whole `get` or `set` is not atomic across processes (as in Python): take a
/// [`Lock`](crate::Lock) for that. See the [module docs](self) for why a racing access
/// is still memory-safe.
///
/// # Elements and fields in place
///
/// Two `Deref` impls reach inside a value without copying it out:
///
/// - `Shared<[T; N]>` derefs to `[Shared<T>; N]`, so `v[1]` is the `Shared<T>` of one
///   element, and `v.iter()`, `v.len()` and slicing work as on any array;
/// - `Shared<S>`, for a struct `S` with `#[derive(SharedStruct)]`, derefs to
///   `S::Fields`, which holds one `Shared<F>` per field: `p.x.get()`,
///   `p.inner.z.update(|z| z + 1)`.
///
/// (These impls are hidden from the list of trait implementations below, so that this
/// page shows `Shared`'s own methods rather than every method of arrays.)
///
/// ```
/// use sharedctypes::{RawValue, SharedStruct};
///
/// let v = RawValue::new([1i32, 2, 3])?;
/// v[1].update(|x| x * 10);
/// assert_eq!(v.get(), [1, 20, 3]);
/// assert_eq!(v.iter().map(|x| x.get()).sum::<i32>(), 24);
/// assert_eq!(v.replace([0; 3]), [1, 20, 3]);
///
/// #[derive(Clone, Copy, SharedStruct)]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
///
/// let p = RawValue::new(Point { x: 1.0, y: 2.0 })?;
/// p.x.set(p.y.get() * 4.0); // `p.x` is a `Shared<f64>`
/// assert_eq!(p.get().x, 8.0);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
// No `T: SharedType` bound here, only on the impls: the derive's generated `Fields`
// struct names `Shared<F>` for every field, and a bad field must be reported once, at
// the derive's own check, not again at every place the struct mentions it.
#[repr(transparent)]
pub struct Shared<T>(UnsafeCell<T>);

// SAFETY: every access safe code can make to the inner value (`get`, `set` and the
// derefs to elements and fields) is a relaxed atomic access of each primitive, of the
// primitive's size (see the module docs); the plain writes that initialise fresh memory
// happen before any handle to it exists. So sharing references between threads is sound.
unsafe impl<T: SharedType> Sync for Shared<T> {}
// SAFETY: as above; `T: Send` and owns nothing.
unsafe impl<T: SharedType> Send for Shared<T> {}

impl<T: SharedType> Shared<T> {
    /// Reads the value.
    ///
    /// ```
    /// let v = sharedctypes::RawValue::new(2.5f64)?;
    /// assert_eq!(v.get(), 2.5);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn get(&self) -> T {
        // SAFETY: `self.0` is an aligned `T`, valid for reads and writes (in an
        // `UnsafeCell`) for as long as `&self` lives, and only accessed atomically with
        // these sizes (see the `Sync` impl).
        unsafe { T::__load(self.0.get()) }
    }

    /// Writes the value.
    ///
    /// ```
    /// let v = sharedctypes::RawValue::new(0u8)?;
    /// v.set(7);
    /// assert_eq!(v.get(), 7);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, value: T) {
        // SAFETY: as in `get`.
        unsafe { T::__store(self.0.get(), value) }
    }

    /// Writes `value` and returns the previous value (two accesses, not one atomic swap).
    ///
    /// ```
    /// let v = sharedctypes::RawValue::new(1u32)?;
    /// assert_eq!(v.replace(2), 1);
    /// assert_eq!(v.get(), 2);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn replace(&self, value: T) -> T {
        let old = self.get();
        self.set(value);
        old
    }

    /// Not atomic: reads the value, then writes `f(value)` and returns it, so a write
    /// by another thread or process in between is lost.
    ///
    /// Four processes doing `n.update(|x| x + 1)` on a `RawValue` lose increments. To
    /// count without a lock, use the atomic methods of `Shared<integer>` (`fetch_add`,
    /// `fetch_update`, …); for any other update, use a [`Value`](crate::Value), whose
    /// `update` takes its lock around the read and the write, or hold the lock that
    /// guards this value (through a guard, as below, this `update` is atomic with
    /// respect to every other holder of the lock).
    ///
    /// ```
    /// let v = sharedctypes::RawValue::new(7i32)?;
    /// assert_eq!(v.update(|x| x * x), 49); // fine while nobody else writes
    ///
    /// let counter = sharedctypes::Value::new(0u64)?;
    /// let guard = counter.lock()?; // a guard derefs to `Shared<u64>`
    /// guard.update(|x| x + 1); // under the lock: no update is lost
    /// # drop(guard);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn update(&self, f: impl FnOnce(T) -> T) -> T {
        let new = f(self.get());
        self.set(new);
        new
    }

    /// A raw pointer to the value, valid while the handle it came from is alive.
    /// Accessing the value through it is `unsafe`: while another thread or process
    /// may access it too, use atomics of each primitive's size, as `get` and `set` do
    /// (a plain read or write would be a data race).
    ///
    /// ```
    /// let v = sharedctypes::RawValue::new(5u64)?;
    /// assert_eq!(v.as_ptr() as usize % std::mem::align_of::<u64>(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn as_ptr(&self) -> *mut T {
        self.0.get()
    }

    /// Views a slice of shared elements as `Shared` cells.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid, aligned and shared-memory-like (only accessed through
    /// `Shared`/atomics) for `len` elements for the lifetime `'a`.
    #[inline]
    pub(crate) unsafe fn slice_from_raw<'a>(ptr: *const Shared<T>, len: usize) -> &'a [Shared<T>] {
        // SAFETY: the caller guarantees validity and alignment for `len` elements.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

impl<T: SharedType + fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[doc(hidden)]
impl<T: SharedType, const N: usize> Deref for Shared<[T; N]> {
    type Target = [Shared<T>; N];

    #[inline]
    fn deref(&self) -> &[Shared<T>; N] {
        // SAFETY: `Shared<U>` is `repr(transparent)` over `UnsafeCell<U>`, which has the
        // layout of `U`; so `Shared<[T; N]>` and `[Shared<T>; N]` have the same layout,
        // and both only permit `Shared`-mediated (atomic) access to the elements.
        unsafe { &*(self as *const Self).cast::<[Shared<T>; N]>() }
    }
}

#[doc(hidden)]
impl<T: SharedStruct> Deref for Shared<T> {
    type Target = T::Fields;

    #[inline]
    fn deref(&self) -> &T::Fields {
        // Forces the derive's layout assertions to be evaluated for this `T` when this
        // is monomorphized (matters for generic structs, checked per instantiation).
        #[allow(clippy::let_unit_value)]
        let () = T::__LAYOUT_CHECK;
        // SAFETY: `SharedStruct`'s contract, asserted for this `T` by `__LAYOUT_CHECK`
        // just above, makes `T::Fields` a repr(C) struct of `Shared<F>` at exactly the
        // offsets of `T`'s fields, with `T`'s size and alignment; the reference keeps
        // `self`'s lifetime and, like it, only permits atomic access.
        unsafe { &*(self as *const Self).cast::<T::Fields>() }
    }
}

macro_rules! primitive {
    ($($t:ty => $atomic:ty, $prim:ident;)*) => {$(
        static_assertions::assert_eq_size!($t, $atomic);
        static_assertions::const_assert_eq!(
            ::core::mem::align_of::<$t>(),
            ::core::mem::align_of::<$atomic>()
        );

        // SAFETY: a primitive number holds no pointer and every bit pattern is valid;
        // `__load`/`__store` are one relaxed atomic access of the same size.
        unsafe impl SharedType for $t {
            const LAYOUT: TypeLayout = TypeLayout::primitive(Primitive::$prim);

            #[inline(always)]
            unsafe fn __load(src: *const Self) -> Self {
                // SAFETY: what `from_ptr` needs is the caller's contract: `src` is aligned
                // for `Self`, whose size and alignment equal the atomic's (asserted
                // above), valid for reads and writes, and raced with only by atomic
                // accesses of this size.
                let atomic = unsafe { <$atomic>::from_ptr(src.cast_mut().cast()) };
                FromBits::from_bits(atomic.load(Relaxed))
            }

            #[inline(always)]
            unsafe fn __store(dst: *mut Self, value: Self) {
                // SAFETY: as in `__load`, for writes.
                let atomic = unsafe { <$atomic>::from_ptr(dst.cast()) };
                atomic.store(FromBits::to_bits(value), Relaxed);
            }
        }
    )*};
}

/// Bit conversion between a primitive and the atomic's integer.
trait FromBits<B> {
    fn from_bits(bits: B) -> Self;
    fn to_bits(self) -> B;
}

macro_rules! same_bits {
    ($($t:ty),*) => {$(
        impl FromBits<$t> for $t {
            #[inline(always)]
            fn from_bits(bits: $t) -> Self { bits }
            #[inline(always)]
            fn to_bits(self) -> $t { self }
        }
    )*};
}
same_bits!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl FromBits<u32> for f32 {
    #[inline(always)]
    fn from_bits(bits: u32) -> Self {
        f32::from_bits(bits)
    }
    #[inline(always)]
    fn to_bits(self) -> u32 {
        f32::to_bits(self)
    }
}

impl FromBits<u64> for f64 {
    #[inline(always)]
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    #[inline(always)]
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
}

primitive! {
    i8 => AtomicI8, I8;
    i16 => AtomicI16, I16;
    i32 => AtomicI32, I32;
    i64 => AtomicI64, I64;
    isize => AtomicIsize, Isize;
    u8 => AtomicU8, U8;
    u16 => AtomicU16, U16;
    u32 => AtomicU32, U32;
    u64 => AtomicU64, U64;
    usize => AtomicUsize, Usize;
    f32 => AtomicU32, F32;
    f64 => AtomicU64, F64;
}

macro_rules! wide {
    ($($t:ty => $prim:ident;)*) => {$(
        static_assertions::const_assert!(::core::mem::align_of::<$t>() >= 8);

        // SAFETY: a 128-bit integer holds no pointer and every bit pattern is valid; it is
        // accessed as two relaxed `u64` atomics (always the same two, never mixed sizes).
        unsafe impl SharedType for $t {
            const LAYOUT: TypeLayout = TypeLayout::primitive(Primitive::$prim);

            #[inline(always)]
            unsafe fn __load(src: *const Self) -> Self {
                let words = src.cast::<u64>();
                // SAFETY: the caller guarantees `src` is valid for 16 bytes and aligned to
                // at least 8 (asserted above), so both halves are valid aligned `u64`s,
                // each accessed only as a `u64` (never as one 128-bit access).
                let lo = unsafe { u64::__load(words) };
                // SAFETY: as above, for the upper half.
                let hi = unsafe { u64::__load(words.wrapping_add(1)) };
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&lo.to_ne_bytes());
                bytes[8..].copy_from_slice(&hi.to_ne_bytes());
                <$t>::from_ne_bytes(bytes)
            }

            #[inline(always)]
            unsafe fn __store(dst: *mut Self, value: Self) {
                let bytes = value.to_ne_bytes();
                let mut lo = [0u8; 8];
                let mut hi = [0u8; 8];
                lo.copy_from_slice(&bytes[..8]);
                hi.copy_from_slice(&bytes[8..]);
                let words = dst.cast::<u64>();
                // SAFETY: as in `__load`, for writes.
                unsafe { u64::__store(words, u64::from_ne_bytes(lo)) };
                // SAFETY: as above, for the upper half.
                unsafe { u64::__store(words.wrapping_add(1), u64::from_ne_bytes(hi)) };
            }
        }
    )*};
}

wide! {
    i128 => I128;
    u128 => U128;
}

// SAFETY: an array of `SharedType`s holds no pointer and accepts every bit pattern its
// elements accept; it is accessed element by element through the elements' own
// `__load`/`__store`.
unsafe impl<T: SharedType, const N: usize> SharedType for [T; N] {
    const LAYOUT: TypeLayout = TypeLayout::array(&T::LAYOUT, N);

    #[inline]
    unsafe fn __load(src: *const Self) -> Self {
        let first = src.cast::<T>();
        // SAFETY: the caller guarantees `src` is valid and aligned for `[T; N]`, so each
        // element pointer `first + i` (i < N) is valid and aligned for `T`.
        std::array::from_fn(|i| unsafe { T::__load(first.wrapping_add(i)) })
    }

    #[inline]
    unsafe fn __store(dst: *mut Self, value: Self) {
        let first = dst.cast::<T>();
        for (i, v) in value.into_iter().enumerate() {
            // SAFETY: as in `__load`, for writes.
            unsafe { T::__store(first.wrapping_add(i), v) };
        }
    }
}
