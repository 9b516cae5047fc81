//! Synchronized objects: a raw object plus a process-shared lock — Python's `Value`,
//! `Array` and `synchronized`.

use std::ffi::c_char;
use std::fmt;
use std::ops::Deref;

use crate::error::{Error, Result};
use crate::heap::{try_default_heap, Heap};
use crate::raw::{bytes, load_vec, short_type_name, store_slice, CopyShared, RawArray, RawValue};
use crate::shared::{Shared, SharedType};
use crate::sync::{map_result, LockResult, LockType, RLock, LOCK_ALIGN, LOCK_SIZE};

/// Allocates a fresh [`RLock`] followed by room for `len` zeroed `T`s in *one*
/// allocation, so that running out of memory leaves nothing half-allocated. Returns
/// the lock and the offset of the first `T`.
fn alloc_with_rlock<T>(heap: &Heap, len: usize) -> Result<(RLock, usize)> {
    let data = LOCK_SIZE.next_multiple_of(std::mem::align_of::<T>());
    let size = len
        .checked_mul(std::mem::size_of::<T>())
        .and_then(|n| n.checked_add(data))
        .ok_or_else(|| Error::OutOfMemory {
            requested: usize::MAX,
            available: heap.available(),
        })?;
    let base = heap.alloc(size, LOCK_ALIGN.max(std::mem::align_of::<T>()))?;
    // SAFETY: `base` was just allocated, aligned for the lock (LOCK_ALIGN divides the
    // block's alignment) and with LOCK_SIZE bytes before `data`; fresh memory is zero,
    // which is an unlocked lock.
    let lock = unsafe { RLock::from_offset(heap, base) };
    Ok((lock, base + data))
}

/// A shared `T` behind a process-shared lock (Python's `Value`); by default a fresh
/// [`RLock`] of its own (`lock=True`), or a shared [`Lock`](crate::Lock)/`RLock`
/// given to [`with_lock`](Value::with_lock) (`lock=lock`). Python's `lock=False` is
/// [`RawValue`].
///
/// `get`, `set` and `update` take the lock for one access; [`lock`](Value::lock) holds
/// it across many.
///
/// ```
/// use sharedctypes::{Process, Value};
///
/// let n = Value::new(7i32)?;                    // Value('i', 7)
/// let child = {
///     let n = n.clone();
///     Process::spawn(move || { n.update(|x| x * x); })?
/// };
/// child.join()?;
/// assert_eq!(n.get(), 49);
///
/// let guard = n.lock()?;                         // with n.get_lock(): ...
/// guard.set(guard.get() + 1);
/// # drop(guard);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// The lock type must be a lock:
///
/// ```compile_fail
/// let v: sharedctypes::Value<i32, std::sync::Mutex<()>>;
/// ```
pub struct Value<T: SharedType, L: LockType = RLock> {
    obj: RawValue<T>,
    lock: L,
}

/// Holds a [`Value`]'s lock; derefs to the [`Shared<T>`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: SharedType, L: LockType + 'a> {
    obj: &'a RawValue<T>,
    _guard: L::Guard<'a>,
}

impl<T: SharedType> Value<T, RLock> {
    /// A value in the default heap with a fresh [`RLock`] of its own.
    pub fn new(init: T) -> Result<Self> {
        Self::new_in(try_default_heap()?, init)
    }

    /// A value and its fresh `RLock`, both in `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let v = sharedctypes::Value::new_in(&heap, 1.5f64)?;
    /// assert_eq!(v.get(), 1.5);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap, init: T) -> Result<Self> {
        let (lock, offset) = alloc_with_rlock::<T>(heap, 1)?;
        // SAFETY: `offset` is the freshly allocated, `T`-aligned room for one `T`.
        let obj = unsafe { RawValue::<T>::from_offset(heap, offset) };
        // SAFETY: the memory is valid and aligned for `T` and nobody else can reach it
        // yet, so a plain write cannot race.
        unsafe { obj.as_ptr().write(init) };
        Ok(Value { obj, lock })
    }
}

impl<T: SharedType, L: LockType> Value<T, L> {
    /// A value in the default heap guarded by `lock` (Python's `lock=lock`).
    ///
    /// ```
    /// use sharedctypes::{Lock, Value};
    /// let lock = Lock::new()?;
    /// let a = Value::with_lock(1u8, lock.clone())?;
    /// let b = Value::with_lock(2u8, lock.clone())?;
    /// assert!(a.get_lock() == b.get_lock());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn with_lock(init: T, lock: L) -> Result<Self> {
        Ok(Value {
            obj: RawValue::new(init)?,
            lock,
        })
    }

    /// Reads the value under the lock (carrying on past a dead owner).
    #[inline]
    pub fn get(&self) -> T {
        self.locked().get()
    }

    /// Writes the value under the lock (carrying on past a dead owner).
    #[inline]
    pub fn set(&self, value: T) {
        self.locked().set(value)
    }

    /// Replaces the value with `f(value)` under the lock and returns the new value:
    /// atomic with respect to every user of the lock.
    ///
    /// ```
    /// let v = sharedctypes::Value::new(3u32)?;
    /// assert_eq!(v.update(|x| x * 2), 6);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn update(&self, f: impl FnOnce(T) -> T) -> T {
        self.locked().update(f)
    }

    /// Takes the lock and returns a guard that derefs to the [`Shared<T>`].
    /// `Err(OwnerDied)` (holding the guard) if the previous holder died holding it.
    pub fn lock(&self) -> LockResult<ValueGuard<'_, T, L>> {
        map_result(self.lock.acquire(), |g| self.guard(g))
    }

    #[inline]
    fn locked(&self) -> ValueGuard<'_, T, L> {
        self.lock().unwrap_or_else(|died| died.into_inner())
    }

    fn guard<'a>(&'a self, g: L::Guard<'a>) -> ValueGuard<'a, T, L> {
        ValueGuard {
            obj: &self.obj,
            _guard: g,
        }
    }

    /// The raw value (Python's `getobj()`): access through it takes no lock.
    pub fn get_obj(&self) -> &RawValue<T> {
        &self.obj
    }

    /// The lock (Python's `getlock()`).
    pub fn get_lock(&self) -> &L {
        &self.lock
    }
}

impl<T: SharedType, L: LockType> Deref for ValueGuard<'_, T, L> {
    type Target = Shared<T>;

    #[inline]
    fn deref(&self) -> &Shared<T> {
        self.obj
    }
}

impl<T: SharedType, L: LockType> Clone for Value<T, L> {
    fn clone(&self) -> Self {
        Value {
            obj: self.obj.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: SharedType + fmt::Debug, L: LockType> fmt::Debug for Value<T, L> {
    /// `Value<i32>(7)`; `Value<i32>(<locked>)` when another thread holds the lock (or
    /// this thread holds a non-recursive [`Lock`](crate::Lock)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>(", short_type_name::<T>())?;
        match self.lock.__try_acquire_quiet() {
            Some(_guard) => write!(f, "{:?})", self.obj.get()),
            None => f.write_str("<locked>)"),
        }
    }
}

/// An array of `T` behind a process-shared lock (Python's `Array`).
///
/// ```
/// use sharedctypes::{Array, Lock};
///
/// let a = Array::from_slice(&[9i32, 2, 8])?;           // Array('i', (9, 2, 8))
/// a.set(1, 20)?;
/// assert_eq!(a.get(1)?, 20);
/// assert!(a.get(3).is_err());                           // out of range
/// {
///     let g = a.lock()?;                                // one lock for many accesses
///     for x in g.iter() { x.update(|v| v + 1); }
/// }
/// assert_eq!(a.to_vec(), [10, 21, 9]);
///
/// let lock = Lock::new()?;
/// let s = Array::from_bytes_with_lock(b"hello world", lock.clone())?;
/// s.set_value(b"HELLO WORLD")?;
/// assert_eq!(s.value(), b"HELLO WORLD");
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub struct Array<T: SharedType, L: LockType = RLock> {
    obj: RawArray<T>,
    lock: L,
}

/// Holds an [`Array`]'s lock; derefs to `[Shared<T>]`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: SharedType, L: LockType + 'a> {
    obj: &'a RawArray<T>,
    _guard: L::Guard<'a>,
}

impl<T: SharedType> Array<T, RLock> {
    /// A zeroed array of `len` in the default heap with a fresh [`RLock`].
    pub fn zeroed(len: usize) -> Result<Self> {
        Self::zeroed_in(try_default_heap()?, len)
    }

    /// An array in the default heap holding a copy of `init`, with a fresh `RLock`.
    pub fn from_slice(init: &[T]) -> Result<Self> {
        Self::from_slice_in(try_default_heap()?, init)
    }

    /// [`zeroed`](Self::zeroed) in `heap` (the lock too).
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = sharedctypes::Array::<u8>::zeroed_in(&heap, 4)?;
    /// assert_eq!(a.to_vec(), [0; 4]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed_in(heap: &Heap, len: usize) -> Result<Self> {
        let (lock, offset) = alloc_with_rlock::<T>(heap, len)?;
        // SAFETY: `offset` is freshly allocated, `T`-aligned room for `len` `T`s; fresh
        // heap memory is zero.
        let obj = unsafe { RawArray::<T>::from_offset(heap, offset, len) };
        Ok(Array { obj, lock })
    }

    /// [`from_slice`](Self::from_slice) in `heap` (the lock too).
    pub fn from_slice_in(heap: &Heap, init: &[T]) -> Result<Self> {
        let array = Self::zeroed_in(heap, init.len())?;
        let dst = array.obj.as_ptr().cast::<T>().cast_mut();
        // SAFETY: `dst` is freshly allocated room in `heap` for `init.len()` aligned `T`s
        // that nobody else can reach yet, and cannot overlap the borrowed `init`.
        unsafe { heap.copy_to_fresh(dst, init) };
        Ok(array)
    }
}

impl Array<c_char, RLock> {
    /// A `c_char` array in the default heap holding `bytes`, with a fresh `RLock`.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"hi")?;
    /// assert_eq!(s.value(), b"hi");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_in(try_default_heap()?, bytes)
    }

    /// [`from_bytes`](Self::from_bytes) in `heap` (the lock too).
    pub fn from_bytes_in(heap: &Heap, bytes: &[u8]) -> Result<Self> {
        Self::from_slice_in(heap, crate::raw::bytes_as_chars(bytes))
    }
}

impl<T: SharedType, L: LockType> Array<T, L> {
    /// A zeroed array of `len` in the default heap guarded by `lock`.
    pub fn zeroed_with_lock(len: usize, lock: L) -> Result<Self> {
        Ok(Array {
            obj: RawArray::zeroed(len)?,
            lock,
        })
    }

    /// An array in the default heap holding a copy of `init`, guarded by `lock`.
    pub fn from_slice_with_lock(init: &[T], lock: L) -> Result<Self> {
        Ok(Array {
            obj: RawArray::from_slice(init)?,
            lock,
        })
    }

    /// The number of elements (needs no lock: it never changes).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.obj.len()
    }

    /// Element `index`, read under the lock; `Err(IndexOutOfRange)` past the end.
    pub fn get(&self, index: usize) -> Result<T> {
        let cell = self.cell(index)?;
        let _guard = self.locked();
        Ok(cell.get())
    }

    /// Writes element `index` under the lock; `Err(IndexOutOfRange)` past the end.
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        let cell = self.cell(index)?;
        let _guard = self.locked();
        cell.set(value);
        Ok(())
    }

    /// Copies every element out under one lock.
    pub fn to_vec(&self) -> Vec<T> {
        load_vec(&self.locked())
    }

    /// Overwrites every element from `src` under one lock; `Err(LengthMismatch)` if the
    /// lengths differ (nothing is written).
    pub fn copy_from_slice(&self, src: &[T]) -> Result<()> {
        store_slice(&self.locked(), src)
    }

    /// Takes the lock and returns a guard that derefs to `[Shared<T>]`.
    /// `Err(OwnerDied)` (holding the guard) if the previous holder died holding it.
    pub fn lock(&self) -> LockResult<ArrayGuard<'_, T, L>> {
        map_result(self.lock.acquire(), |g| ArrayGuard {
            obj: &self.obj,
            _guard: g,
        })
    }

    fn locked(&self) -> ArrayGuard<'_, T, L> {
        self.lock().unwrap_or_else(|died| died.into_inner())
    }

    fn cell(&self, index: usize) -> Result<&Shared<T>> {
        self.obj.get(index).ok_or(Error::IndexOutOfRange {
            index,
            len: self.obj.len(),
        })
    }

    /// The raw array (Python's `getobj()`): access through it takes no lock.
    pub fn get_obj(&self) -> &RawArray<T> {
        &self.obj
    }

    /// The lock (Python's `getlock()`).
    pub fn get_lock(&self) -> &L {
        &self.lock
    }
}

impl<L: LockType> Array<c_char, L> {
    /// A `c_char` array in the default heap holding `bytes`, guarded by `lock`.
    pub fn from_bytes_with_lock(bytes: &[u8], lock: L) -> Result<Self> {
        Ok(Array {
            obj: RawArray::from_bytes(bytes)?,
            lock,
        })
    }

    /// The bytes up to the first NUL, read under the lock.
    pub fn value(&self) -> Vec<u8> {
        bytes::value(&self.locked())
    }

    /// Every byte, read under the lock.
    pub fn raw(&self) -> Vec<u8> {
        bytes::raw(&self.locked())
    }

    /// Writes a byte string (NUL-terminated when shorter) under the lock; too long is
    /// `Err(TooLong)` and writes nothing.
    pub fn set_value(&self, value: &[u8]) -> Result<()> {
        bytes::set_value(&self.locked(), value)
    }

    /// Writes raw bytes over the start of the array under the lock; too long is
    /// `Err(TooLong)` and writes nothing.
    pub fn set_raw(&self, raw: &[u8]) -> Result<()> {
        bytes::set_raw(&self.locked(), raw)
    }
}

impl<L: LockType> ArrayGuard<'_, c_char, L> {
    /// The bytes up to the first NUL.
    pub fn value(&self) -> Vec<u8> {
        bytes::value(self)
    }

    /// Every byte.
    pub fn raw(&self) -> Vec<u8> {
        bytes::raw(self)
    }

    /// Writes a byte string, NUL-terminated when shorter.
    pub fn set_value(&self, value: &[u8]) -> Result<()> {
        bytes::set_value(self, value)
    }

    /// Writes raw bytes over the start of the array.
    pub fn set_raw(&self, raw: &[u8]) -> Result<()> {
        bytes::set_raw(self, raw)
    }
}

impl<T: SharedType, L: LockType> Deref for ArrayGuard<'_, T, L> {
    type Target = [Shared<T>];

    #[inline]
    fn deref(&self) -> &[Shared<T>] {
        self.obj
    }
}

impl<T: SharedType, L: LockType> Clone for Array<T, L> {
    fn clone(&self) -> Self {
        Array {
            obj: self.obj.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: SharedType + fmt::Debug, L: LockType> fmt::Debug for Array<T, L> {
    /// `Array<i32>([9, 2, 8])`; `Array<i32>(<locked>)` when the lock is unavailable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array<{}>(", short_type_name::<T>())?;
        match self.lock.__try_acquire_quiet() {
            Some(_guard) => write!(f, "{:?})", self.obj.to_vec()),
            None => f.write_str("<locked>)"),
        }
    }
}

impl<T: SharedType, L: LockType> crate::sealed::Sealed for Value<T, L> {}
impl<T: SharedType, L: LockType> crate::sealed::Sealed for Array<T, L> {}

impl<T: SharedType, L: LockType> CopyShared for Value<T, L> {
    type Raw = RawValue<T>;

    fn copy_into(&self, heap: &Heap) -> Result<RawValue<T>> {
        RawValue::new_in(heap, self.get())
    }
}

impl<T: SharedType, L: LockType> CopyShared for Array<T, L> {
    type Raw = RawArray<T>;

    fn copy_into(&self, heap: &Heap) -> Result<RawArray<T>> {
        let _guard = self.locked();
        self.obj.copy_into(heap)
    }
}

/// A raw object that [`synchronized`] can wrap: [`RawValue`] (into [`Value`]) or
/// [`RawArray`] (into [`Array`]).
pub trait Synchronize: crate::sealed::Sealed + Sized {
    /// The synchronized wrapper with lock type `L`.
    type Synchronized<L: LockType>;

    /// Wraps `self` with `lock`.
    fn with_lock<L: LockType>(self, lock: L) -> Self::Synchronized<L>;

    /// The heap the raw object lives in.
    fn home_heap(&self) -> &Heap;
}

impl<T: SharedType> crate::sealed::Sealed for RawValue<T> {}
impl<T: SharedType> crate::sealed::Sealed for RawArray<T> {}

impl<T: SharedType> Synchronize for RawValue<T> {
    type Synchronized<L: LockType> = Value<T, L>;

    fn with_lock<L: LockType>(self, lock: L) -> Value<T, L> {
        Value { obj: self, lock }
    }

    fn home_heap(&self) -> &Heap {
        self.heap()
    }
}

impl<T: SharedType> Synchronize for RawArray<T> {
    type Synchronized<L: LockType> = Array<T, L>;

    fn with_lock<L: LockType>(self, lock: L) -> Array<T, L> {
        Array { obj: self, lock }
    }

    fn home_heap(&self) -> &Heap {
        self.heap()
    }
}

/// Wraps a raw object with a fresh [`RLock`] allocated in the raw object's heap
/// (Python's `synchronized(obj)`).
///
/// ```
/// use sharedctypes::{synchronized, RawArray};
///
/// let raw = RawArray::from_slice(&[1.0f64, 2.0])?;
/// let arr = synchronized(raw.clone())?;
/// arr.set(0, 5.0)?;
/// assert_eq!(raw[0].get(), 5.0);
/// assert!(arr.get_obj() == &raw);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn synchronized<R: Synchronize>(raw: R) -> Result<R::Synchronized<RLock>> {
    let lock = RLock::new_in(raw.home_heap())?;
    Ok(raw.with_lock(lock))
}

/// Wraps a raw object with `lock` (Python's `synchronized(obj, lock)`); cannot fail.
///
/// ```
/// use sharedctypes::{synchronized_with, Heap, Lock, RawArray};
///
/// let heap = Heap::new(1 << 16)?;
/// let lock = Lock::new()?;
/// let arr = synchronized_with(RawArray::<u32>::zeroed_in(&heap, 8)?, lock.clone());
/// assert!(arr.get_lock() == &lock);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub fn synchronized_with<R: Synchronize, L: LockType>(raw: R, lock: L) -> R::Synchronized<L> {
    raw.with_lock(lock)
}
