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
//!
//! # Atomics, and mixing them with `get` and `set`
//!
//! For every integer `T` of at most 64 bits, `Shared<T>` also has the methods of the
//! matching `std::sync::atomic` type (`load`, `store`, `swap`, `compare_exchange`,
//! `fetch_add`, …, `fetch_update`; see [`Shared<u64>`](Shared#impl-Shared%3Cu64%3E)).
//! Each is the std method applied in place (`AtomicU64::from_ptr` on the shared
//! address), so a counter in shared memory needs no lock:
//! `hits.fetch_add(1, Ordering::Relaxed)` from four processes loses no increment.
//!
//! - **They are atomic across processes.** Every process maps the same physical memory,
//!   and on x86-64 and AArch64 atomic instructions (`lock xadd`, `lock cmpxchg`;
//!   `ldadd`, `cas`, or `ldxr`/`stxr` loops) act on physical cache lines kept coherent
//!   for every core, whatever virtual address, page table or process they are issued
//!   from. Two processes' `fetch_add`s are serialised exactly like two threads'.
//! - **Mixing them with `get`/`set` is sound.** `get` and `set` on such an integer are
//!   one relaxed atomic load or store of the integer's own size at its own address:
//!   they *are* `load(Relaxed)` and `store(v, Relaxed)`. So every access to the
//!   location, by any method, in any process, is an atomic access of one size at one
//!   address: no data race, and none of the mixed-size atomic accesses that the
//!   memory model leaves undefined. This holds inside aggregates too: `get` on a
//!   `Shared<[u64; 4]>` or on a derived struct is one relaxed load per element or field,
//!   each the same size as a `fetch_add` on that element or field. (`u128`, `i128`,
//!   `f32` and `f64` have no atomic methods: std has no portable atomic for them, and
//!   the 128-bit integers are accessed as two `u64` halves.)
//! - **`get` and `set` are `Relaxed`.** All accesses to one location have a single
//!   order that every process agrees on (coherence), so counters, flags and maxima
//!   are exact with `Relaxed` alone. What `Relaxed` does not give is the order of
//!   accesses to *different* locations: to publish data to another process, write it
//!   (with `set`, relaxed is fine), then `store` a flag with `Release`; the reader
//!   `load`s the flag with `Acquire` and then reads the data, which it is guaranteed to
//!   see. The pair works between processes as between threads: it is made of ordered
//!   instructions (on x86-64 every load already acquires and every store releases, so
//!   only the compiler is constrained; AArch64 uses `ldar`/`stlr`) that act on the
//!   shared physical memory, not on one address space. `AcqRel` read-modify-writes and
//!   `SeqCst` work the same way.
//! - **`update` and `replace` are not atomic** (a `get` then a `set`, which another
//!   process may interleave); use `fetch_update`, `swap` or `compare_exchange` instead,
//!   or a [`Lock`](crate::Lock) when several locations must change together.
//!
//! ```
//! use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
//! use sharedctypes::{Process, RawValue, SharedStruct};
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! struct Mailbox { ready: u32, len: u32, data: [u64; 4] }
//!
//! let mailbox = RawValue::new(Mailbox { ready: 0, len: 0, data: [0; 4] })?;
//! let child = {
//!     let mailbox = mailbox.clone();
//!     Process::spawn(move || {
//!         mailbox.data.set([1, 2, 3, 4]); // relaxed stores
//!         mailbox.len.set(4);
//!         mailbox.ready.store(1, Release); // publishes everything above
//!     })?
//! };
//! while mailbox.ready.load(Acquire) == 0 {
//!     std::hint::spin_loop();
//! }
//! assert_eq!(mailbox.len.get(), 4); // guaranteed by the Release/Acquire pair
//! assert_eq!(mailbox.data.get(), [1, 2, 3, 4]);
//! mailbox.data[0].fetch_add(10, Relaxed); // atomics and get/set mix freely
//! assert_eq!(mailbox.data.get()[0], 11);
//! child.join()?;
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
///
/// A `Shared` integer of at most 64 bits also has the atomic methods of std's
/// `AtomicU64` and friends (`fetch_add`, `compare_exchange`, …), atomic across processes:
///
/// ```
/// use std::sync::atomic::Ordering::Relaxed;
/// let hits = sharedctypes::RawArray::<u64>::zeroed(4)?;
/// hits[2].fetch_add(1, Relaxed);
/// assert_eq!(hits.to_vec(), [0, 0, 1, 0]);
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
    /// count without a lock, use the atomic methods of `Shared<integer>`
    /// ([`fetch_add`](Shared::<u64>::fetch_add),
    /// [`fetch_update`](Shared::<u64>::fetch_update), …); for any other update, use a
    /// [`Value`](crate::Value), whose `update` takes its lock around the read and the
    /// write, or hold the lock that guards this value (through a guard, as below, this
    /// `update` is atomic with respect to every other holder of the lock).
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

/// A doc section with a runnable example: emitted for the instantiation marked
/// `examples` (`u64`), a pointer to it for the others. (One example per method family,
/// not one per method per type: 14 × 10 doctests would each be compiled and linked.)
macro_rules! atomic_example {
    (examples, $method:literal, $($code:expr),+ $(,)?) => {
        concat!("\n\n```\n", $($code),+, "\n# Ok::<(), sharedctypes::Error>(())\n```")
    };
    (no_examples, $method:literal, $($code:expr),+ $(,)?) => {
        concat!(
            "\n\nThe example is on [`Shared<u64>::", $method, "`](Shared#method.", $method,
            "); the impl block above has one for this type."
        )
    };
}

/// The `std::sync::atomic` methods on `Shared<$t>`, each delegating to `$atomic` viewed in
/// place with `from_ptr` (see the module docs for why that is sound across processes).
macro_rules! atomic_int {
    ($($t:ident => $atomic:ident, $ex:ident, impl_example: $impl_example:expr;)*) => {$(
        #[doc = concat!(
            "Atomic operations on a shared `", stringify!($t), "`: the methods of [`",
            stringify!($atomic), "`](std::sync::atomic::", stringify!($atomic), "), with the \
            same names, signatures and semantics, applied in place to the shared memory, so \
            they are atomic across every process that maps it (see the \
            [module docs](self#atomics-and-mixing-them-with-get-and-set)). \
            [`get`](Shared::get) is `load(Relaxed)` and [`set`](Shared::set) is \
            `store(_, Relaxed)`.\n\n```\n",
            $impl_example,
            "\n# Ok::<(), sharedctypes::Error>(())\n```"
        )]
        impl Shared<$t> {
            /// This value as the std atomic, in place.
            #[inline(always)]
            fn atomic(&self) -> &$atomic {
                // SAFETY: `self.0` is a valid `$t` for as long as `&self` lives, with the
                // size and alignment of `$atomic` (asserted by `primitive!`), and every
                // access to it, by any thread of any process, is an atomic access of this
                // same size (`__load`/`__store` and these methods; the module docs), as
                // `from_ptr` requires for the lifetime of the returned reference.
                unsafe { <$atomic>::from_ptr(self.0.get().cast()) }
            }

            #[doc = concat!(
                "Loads the value, as [`", stringify!($atomic), "::load`](std::sync::atomic::",
                stringify!($atomic), "::load). `load(Relaxed)` is [`get`](Shared::get).\n\n",
                "# Panics\n\nIf `order` is `Release` or `AcqRel`, as std does.",
                atomic_example!($ex, "load",
                    "use std::sync::atomic::Ordering;\n",
                    "let v = sharedctypes::RawValue::new(5", stringify!($t), ")?;\n",
                    "assert_eq!(v.load(Ordering::Acquire), 5);"),
            )]
            #[inline]
            pub fn load(&self, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().load(order)
            }

            #[doc = concat!(
                "Stores `val`, as [`", stringify!($atomic), "::store`](std::sync::atomic::",
                stringify!($atomic), "::store). `store(val, Relaxed)` is [`set`](Shared::set).\n\n",
                "# Panics\n\nIf `order` is `Acquire` or `AcqRel`, as std does.",
                atomic_example!($ex, "store",
                    "use std::sync::atomic::Ordering;\n",
                    "let v = sharedctypes::RawValue::new(5", stringify!($t), ")?;\n",
                    "v.store(10, Ordering::Release);\n",
                    "assert_eq!(v.get(), 10);"),
            )]
            #[inline]
            pub fn store(&self, val: $t, order: ::std::sync::atomic::Ordering) {
                self.atomic().store(val, order)
            }

            #[doc = concat!(
                "Stores `val` and returns the previous value in one atomic operation, as [`",
                stringify!($atomic), "::swap`](std::sync::atomic::", stringify!($atomic),
                "::swap) (unlike [`replace`](Shared::replace), which is two accesses).",
                atomic_example!($ex, "swap",
                    "use std::sync::atomic::Ordering;\n",
                    "let v = sharedctypes::RawValue::new(5", stringify!($t), ")?;\n",
                    "assert_eq!(v.swap(10, Ordering::AcqRel), 5);\n",
                    "assert_eq!(v.get(), 10);"),
            )]
            #[inline]
            pub fn swap(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().swap(val, order)
            }

            #[doc = concat!(
                "Stores `new` if the value is `current`, as [`", stringify!($atomic),
                "::compare_exchange`](std::sync::atomic::", stringify!($atomic),
                "::compare_exchange): `Ok(previous)` if it was stored, `Err(actual)` if not. ",
                "`success` orders the read-modify-write that stores, `failure` the load that ",
                "does not.\n\n",
                "# Panics\n\nIf `failure` is `Release` or `AcqRel`, as std does.",
                atomic_example!($ex, "compare_exchange",
                    "use std::sync::atomic::Ordering::{Acquire, Relaxed};\n",
                    "let owner = sharedctypes::RawValue::new(0", stringify!($t), ")?;\n",
                    "// Claim the slot once: only the first claimant sees `Ok`.\n",
                    "assert_eq!(owner.compare_exchange(0, 7, Acquire, Relaxed), Ok(0));\n",
                    "assert_eq!(owner.compare_exchange(0, 9, Acquire, Relaxed), Err(7));\n",
                    "assert_eq!(owner.get(), 7);"),
            )]
            #[inline]
            pub fn compare_exchange(
                &self,
                current: $t,
                new: $t,
                success: ::std::sync::atomic::Ordering,
                failure: ::std::sync::atomic::Ordering,
            ) -> Result<$t, $t> {
                self.atomic().compare_exchange(current, new, success, failure)
            }

            #[doc = concat!(
                "Like [`compare_exchange`](Shared::compare_exchange), but may fail even when ",
                "the value is `current` (cheaper in a loop on some platforms), as [`",
                stringify!($atomic), "::compare_exchange_weak`](std::sync::atomic::",
                stringify!($atomic), "::compare_exchange_weak).\n\n",
                "# Panics\n\nIf `failure` is `Release` or `AcqRel`, as std does.",
                atomic_example!($ex, "compare_exchange_weak",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let v = sharedctypes::RawValue::new(3", stringify!($t), ")?;\n",
                    "// Double the value, whatever other processes do meanwhile.\n",
                    "let mut old = v.load(Relaxed);\n",
                    "while let Err(actual) = v.compare_exchange_weak(old, old * 2, Relaxed, Relaxed) {\n",
                    "    old = actual;\n",
                    "}\n",
                    "assert_eq!(v.get(), 6);"),
            )]
            #[inline]
            pub fn compare_exchange_weak(
                &self,
                current: $t,
                new: $t,
                success: ::std::sync::atomic::Ordering,
                failure: ::std::sync::atomic::Ordering,
            ) -> Result<$t, $t> {
                self.atomic().compare_exchange_weak(current, new, success, failure)
            }

            #[doc = concat!(
                "Adds `val`, wrapping around on overflow, and returns the previous value, as [`",
                stringify!($atomic), "::fetch_add`](std::sync::atomic::", stringify!($atomic),
                "::fetch_add). A counter shared by many processes needs no lock.",
                atomic_example!($ex, "fetch_add",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "use sharedctypes::{Process, RawValue};\n\n",
                    "let hits = RawValue::new(0", stringify!($t), ")?;\n",
                    "let children = (0..4)\n",
                    "    .map(|_| {\n",
                    "        let hits = hits.clone();\n",
                    "        Process::spawn(move || {\n",
                    "            for _ in 0..1000 {\n",
                    "                hits.fetch_add(1, Relaxed);\n",
                    "            }\n",
                    "        })\n",
                    "    })\n",
                    "    .collect::<Result<Vec<_>, _>>()?;\n",
                    "for child in children {\n",
                    "    child.join()?;\n",
                    "}\n",
                    "assert_eq!(hits.get(), 4000); // no increment lost\n",
                    "assert_eq!(hits.fetch_add(1, Relaxed), 4000); // the previous value"),
            )]
            #[inline]
            pub fn fetch_add(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_add(val, order)
            }

            #[doc = concat!(
                "Subtracts `val`, wrapping around on overflow, and returns the previous value, ",
                "as [`", stringify!($atomic), "::fetch_sub`](std::sync::atomic::",
                stringify!($atomic), "::fetch_sub).",
                atomic_example!($ex, "fetch_sub",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let v = sharedctypes::RawValue::new(10", stringify!($t), ")?;\n",
                    "assert_eq!(v.fetch_sub(3, Relaxed), 10);\n",
                    "assert_eq!(v.get(), 7);"),
            )]
            #[inline]
            pub fn fetch_sub(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_sub(val, order)
            }

            #[doc = concat!(
                "Bitwise AND with `val`; returns the previous value, as [`", stringify!($atomic),
                "::fetch_and`](std::sync::atomic::", stringify!($atomic), "::fetch_and).",
                atomic_example!($ex, "fetch_and",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let flags = sharedctypes::RawValue::new(0b1101", stringify!($t), ")?;\n",
                    "assert_eq!(flags.fetch_and(0b0110, Relaxed), 0b1101);\n",
                    "assert_eq!(flags.get(), 0b0100);"),
            )]
            #[inline]
            pub fn fetch_and(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_and(val, order)
            }

            #[doc = concat!(
                "Bitwise NAND with `val` (`!(value & val)`); returns the previous value, as [`",
                stringify!($atomic), "::fetch_nand`](std::sync::atomic::", stringify!($atomic),
                "::fetch_nand).",
                atomic_example!($ex, "fetch_nand",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let v = sharedctypes::RawValue::new(0x13", stringify!($t), ")?;\n",
                    "assert_eq!(v.fetch_nand(0x31, Relaxed), 0x13);\n",
                    "assert_eq!(v.get(), !(0x13 & 0x31));"),
            )]
            #[inline]
            pub fn fetch_nand(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_nand(val, order)
            }

            #[doc = concat!(
                "Bitwise OR with `val`; returns the previous value, as [`", stringify!($atomic),
                "::fetch_or`](std::sync::atomic::", stringify!($atomic), "::fetch_or).",
                atomic_example!($ex, "fetch_or",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let flags = sharedctypes::RawValue::new(0b0001", stringify!($t), ")?;\n",
                    "assert_eq!(flags.fetch_or(0b0100, Relaxed), 0b0001);\n",
                    "assert_eq!(flags.get(), 0b0101);"),
            )]
            #[inline]
            pub fn fetch_or(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_or(val, order)
            }

            #[doc = concat!(
                "Bitwise XOR with `val`; returns the previous value, as [`", stringify!($atomic),
                "::fetch_xor`](std::sync::atomic::", stringify!($atomic), "::fetch_xor).",
                atomic_example!($ex, "fetch_xor",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let v = sharedctypes::RawValue::new(0b0101", stringify!($t), ")?;\n",
                    "assert_eq!(v.fetch_xor(0b0011, Relaxed), 0b0101);\n",
                    "assert_eq!(v.get(), 0b0110);"),
            )]
            #[inline]
            pub fn fetch_xor(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_xor(val, order)
            }

            #[doc = concat!(
                "Stores the maximum of the value and `val`; returns the previous value, as [`",
                stringify!($atomic), "::fetch_max`](std::sync::atomic::", stringify!($atomic),
                "::fetch_max).",
                atomic_example!($ex, "fetch_max",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let peak = sharedctypes::RawValue::new(23", stringify!($t), ")?;\n",
                    "assert_eq!(peak.fetch_max(42, Relaxed), 23);\n",
                    "assert_eq!(peak.fetch_max(7, Relaxed), 42);\n",
                    "assert_eq!(peak.get(), 42);"),
            )]
            #[inline]
            pub fn fetch_max(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_max(val, order)
            }

            #[doc = concat!(
                "Stores the minimum of the value and `val`; returns the previous value, as [`",
                stringify!($atomic), "::fetch_min`](std::sync::atomic::", stringify!($atomic),
                "::fetch_min).",
                atomic_example!($ex, "fetch_min",
                    "use std::sync::atomic::Ordering::Relaxed;\n",
                    "let low = sharedctypes::RawValue::new(23", stringify!($t), ")?;\n",
                    "assert_eq!(low.fetch_min(42, Relaxed), 23);\n",
                    "assert_eq!(low.fetch_min(7, Relaxed), 23);\n",
                    "assert_eq!(low.get(), 7);"),
            )]
            #[inline]
            pub fn fetch_min(&self, val: $t, order: ::std::sync::atomic::Ordering) -> $t {
                self.atomic().fetch_min(val, order)
            }

            #[doc = concat!(
                "Applies `f` to the value and stores its result, retrying if another ",
                "thread or process changed the value meanwhile (so `f` may run several times), ",
                "as [`", stringify!($atomic), "::fetch_update`](std::sync::atomic::",
                stringify!($atomic), "::fetch_update): `Ok(previous)` once a `Some(new)` was ",
                "stored, `Err(previous)` as soon as `f` returns `None`. `set_order` orders the ",
                "store, `fetch_order` the loads.\n\n",
                "# Panics\n\nIf `fetch_order` is `Release` or `AcqRel`, as std does.",
                atomic_example!($ex, "fetch_update",
                    "use std::sync::atomic::Ordering::{AcqRel, Acquire};\n",
                    "// A counter that stops at 3.\n",
                    "let n = sharedctypes::RawValue::new(2", stringify!($t), ")?;\n",
                    "let bump = |x| if x < 3 { Some(x + 1) } else { None };\n",
                    "assert_eq!(n.fetch_update(AcqRel, Acquire, bump), Ok(2));\n",
                    "assert_eq!(n.fetch_update(AcqRel, Acquire, bump), Err(3));\n",
                    "assert_eq!(n.get(), 3);"),
            )]
            #[inline]
            // std renames this `try_update` (1.95) and will deprecate the old name; the
            // crate's minimum Rust (1.81) only has `fetch_update`.
            #[allow(deprecated)]
            pub fn fetch_update<F>(
                &self,
                set_order: ::std::sync::atomic::Ordering,
                fetch_order: ::std::sync::atomic::Ordering,
                f: F,
            ) -> Result<$t, $t>
            where
                F: FnMut($t) -> Option<$t>,
            {
                self.atomic().fetch_update(set_order, fetch_order, f)
            }
        }
    )*};
}

// `u64` first: its methods carry the examples, and rustdoc's `#method.…` anchors name
// the first impl that has the method.
atomic_int! {
    u64 => AtomicU64, examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let hits = sharedctypes::RawValue::new(0u64)?;
hits.fetch_add(1, Relaxed);
assert_eq!(hits.load(Relaxed), 1);";
    u8 => AtomicU8, no_examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let v = sharedctypes::RawValue::new(u8::MAX)?;
assert_eq!(v.fetch_add(1, Relaxed), u8::MAX); // wraps around, as std
assert_eq!(v.fetch_or(0x0f, Relaxed), 0);
assert_eq!(v.swap(1, Relaxed), 0x0f);";
    u16 => AtomicU16, no_examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let a = sharedctypes::RawArray::from_slice(&[1u16, 2, 3])?;
a[2].fetch_sub(1, Relaxed);
assert_eq!(a[0].fetch_max(5, Relaxed), 1);
assert_eq!(a.to_vec(), [5, 2, 2]);";
    u32 => AtomicU32, no_examples, impl_example: "use std::sync::atomic::Ordering::{Acquire, Release};
let ready = sharedctypes::RawValue::new(0u32)?;
ready.store(1, Release);
assert_eq!(ready.load(Acquire), 1);";
    usize => AtomicUsize, no_examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let next = sharedctypes::RawValue::new(0usize)?;
let slot = next.fetch_add(1, Relaxed); // claim an index
assert_eq!((slot, next.get()), (0, 1));";
    i8 => AtomicI8, no_examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let v = sharedctypes::RawValue::new(i8::MAX)?;
assert_eq!(v.fetch_add(1, Relaxed), i8::MAX); // wraps around, as std
assert_eq!(v.fetch_min(-1, Relaxed), i8::MIN);
assert_eq!(v.get(), i8::MIN);";
    i16 => AtomicI16, no_examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let v = sharedctypes::RawValue::new([0i16; 2])?;
v[1].fetch_sub(300, Relaxed);
assert_eq!(v.get(), [0, -300]);";
    i32 => AtomicI32, no_examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let v = sharedctypes::RawValue::new(-5i32)?;
assert_eq!(v.fetch_max(3, Relaxed), -5);
assert_eq!(v.compare_exchange(3, 4, Relaxed, Relaxed), Ok(3));";
    i64 => AtomicI64, no_examples, impl_example: "use std::sync::atomic::Ordering::{AcqRel, Acquire};
let balance = sharedctypes::RawValue::new(100i64)?;
// Withdraw only what is there.
let withdraw = |n| move |b: i64| (b >= n).then(|| b - n);
assert_eq!(balance.fetch_update(AcqRel, Acquire, withdraw(60)), Ok(100));
assert_eq!(balance.fetch_update(AcqRel, Acquire, withdraw(60)), Err(40));";
    isize => AtomicIsize, no_examples, impl_example: "use std::sync::atomic::Ordering::Relaxed;
let v = sharedctypes::RawValue::new(0isize)?;
assert_eq!(v.fetch_sub(1, Relaxed), 0);
assert_eq!(v.fetch_xor(-1, Relaxed), -1);
assert_eq!(v.get(), 0);";
}
