//! Synchronized objects: a raw object plus a process-shared lock — Python's `Value`,
//! `Array` and `synchronized`.

use std::fmt;
use std::ops::Deref;

use crate::error::{Error, Result};
use crate::heap::{try_default_heap, Heap};
use crate::raw::{bytes, load_vec, short_type_name, store_slice, CopyShared, RawArray, RawValue};
use crate::shared::{Shared, SharedType};
use crate::sync::raw_lock::RawLock;
use crate::sync::thread_id::Me;
use crate::sync::{map_result, ConditionGuard, LockResult, LockType, RLock};

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
///
/// ```
/// use sharedctypes::{Lock, Value};
///
/// let v = Value::with_lock(10i32, Lock::new()?)?;
/// let guard = v.lock()?;
/// guard.set(guard.get() + 5); // two accesses under one lock
/// assert!(v.get_lock().try_acquire().is_err()); // held until the guard drops
/// drop(guard);
/// assert_eq!(v.get(), 15);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: SharedType, L: LockType + 'a> {
    obj: &'a RawValue<T>,
    _guard: L::Guard<'a>,
}

impl<T: SharedType> Value<T, RLock> {
    /// A value in the default heap with a fresh [`RLock`] of its own.
    ///
    /// ```
    /// use sharedctypes::Value;
    ///
    /// let a = Value::new(7i32)?; // Value('i', 7)
    /// let b = Value::new(7i32)?;
    /// assert_eq!(a.get(), 7);
    /// assert!(a.get_lock() != b.get_lock()); // each has a lock of its own
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
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
        // Two blocks, each counted: the lock may outlive the value (`get_lock`). If the
        // second allocation fails, dropping the first gives it back.
        let lock = RLock::new_in(heap)?;
        let obj = RawValue::new_in(heap, init)?;
        Ok(Value { obj, lock })
    }
}

impl<T: SharedType, L: LockType> Value<T, L> {
    /// A value guarded by `lock` (Python's `lock=lock`), allocated in the lock's heap,
    /// so that the pair can be published there. For another heap use
    /// `synchronized_with(RawValue::new_in(&heap, init)?, lock)`.
    ///
    /// ```
    /// use sharedctypes::{Heap, Lock, Value};
    ///
    /// let heap = Heap::new(4096)?;
    /// let lock = Lock::new_in(&heap)?;
    /// let a = Value::with_lock(1u8, lock.clone())?;
    /// let b = Value::with_lock(2u8, lock.clone())?;
    /// assert!(a.get_lock() == b.get_lock());
    /// assert_eq!(a.get_obj().heap(), &heap); // where the lock lives
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn with_lock(init: T, lock: L) -> Result<Self> {
        Ok(Value {
            obj: RawValue::new_in(lock.heap(), init)?,
            lock,
        })
    }

    /// Reads the value under the lock (carrying on past a dead owner).
    ///
    /// ```
    /// let v = sharedctypes::Value::new(2.5f64)?;
    /// assert_eq!(v.get(), 2.5);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn get(&self) -> T {
        self.locked().get()
    }

    /// Writes the value under the lock (carrying on past a dead owner).
    ///
    /// ```
    /// let v = sharedctypes::Value::new(0u64)?;
    /// v.set(42);
    /// assert_eq!(v.get(), 42);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, value: T) {
        self.locked().set(value)
    }

    /// Atomic: replaces the value with `f(value)` under the lock, and returns the new
    /// value.
    ///
    /// The read and the write happen under one hold of the lock, so no other user of
    /// the lock, in any process, writes in between and no update is lost (unlike
    /// [`Shared::update`] on a [`RawValue`], a read then a write). `f` runs with the
    /// lock held: keep it short, and do not take the same [`Lock`](crate::Lock) in it.
    /// Carries on past a dead owner, as [`get`](Self::get) does.
    ///
    /// ```
    /// use sharedctypes::{Process, Value};
    ///
    /// let v = Value::new(0u64)?;
    /// let children: Vec<Process> = (0..4)
    ///     .map(|_| {
    ///         let v = v.clone();
    ///         Process::spawn(move || {
    ///             for _ in 0..1000 {
    ///                 v.update(|x| x + 1);
    ///             }
    ///         })
    ///     })
    ///     .collect::<Result<_, _>>()?;
    /// for child in children {
    ///     child.join()?;
    /// }
    /// assert_eq!(v.get(), 4000); // not one increment lost
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn update(&self, f: impl FnOnce(T) -> T) -> T {
        self.locked().update(f)
    }

    /// Takes the lock and returns a guard that derefs to the [`Shared<T>`].
    /// `Err(OwnerDied)` (holding the guard) if the previous holder died holding it.
    ///
    /// ```
    /// let v = sharedctypes::Value::new(1i64)?;
    /// let guard = v.lock()?; // Python's `with v.get_lock():`
    /// guard.set(guard.get() * 10);
    /// guard.update(|x| x + 1);
    /// drop(guard);
    /// assert_eq!(v.get(), 11);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
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
    ///
    /// ```
    /// let v = sharedctypes::Value::new(3u32)?;
    /// let raw = v.get_obj();
    /// raw.set(4); // no lock taken
    /// assert_eq!(v.get(), 4);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn get_obj(&self) -> &RawValue<T> {
        &self.obj
    }

    /// The lock (Python's `getlock()`).
    ///
    /// ```
    /// use sharedctypes::{Lock, Value};
    ///
    /// let lock = Lock::new()?;
    /// let v = Value::with_lock(0u8, lock.clone())?;
    /// assert!(v.get_lock() == &lock);
    /// let held = v.get_lock().acquire()?;
    /// assert!(lock.try_acquire().is_err()); // the same lock
    /// drop(held);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
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
///
/// ```
/// let a = sharedctypes::Array::from_slice(&[1u32, 2, 3])?;
/// {
///     let guard = a.lock()?;
///     assert_eq!(guard.len(), 3);
///     for x in guard.iter() {
///         x.set(x.get() * 10);
///     }
/// }
/// assert_eq!(a.to_vec(), [10, 20, 30]);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: SharedType, L: LockType + 'a> {
    obj: &'a RawArray<T>,
    _guard: L::Guard<'a>,
}

impl<T: SharedType> Array<T, RLock> {
    /// A zeroed array of `len` in the default heap with a fresh [`RLock`].
    ///
    /// ```
    /// let a = sharedctypes::Array::<f64>::zeroed(3)?; // Array('d', 3)
    /// assert_eq!(a.to_vec(), [0.0; 3]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<Self> {
        Self::zeroed_in(try_default_heap()?, len)
    }

    /// An array in the default heap holding a copy of `init`, with a fresh `RLock`.
    ///
    /// ```
    /// let a = sharedctypes::Array::from_slice(&[9i32, 2, 8])?; // Array('i', (9, 2, 8))
    /// assert_eq!(a.len(), 3);
    /// assert_eq!(a.get(2)?, 8);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
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
        // Two blocks, each counted, as in `Value::new_in`.
        let lock = RLock::new_in(heap)?;
        let obj = RawArray::zeroed_in(heap, len)?;
        Ok(Array { obj, lock })
    }

    /// [`from_slice`](Self::from_slice) in `heap` (the lock too).
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let a = sharedctypes::Array::from_slice_in(&heap, &[1u16, 2])?;
    /// assert_eq!(a.to_vec(), [1, 2]);
    /// assert_eq!(a.get_obj().heap(), &heap);
    /// assert_eq!(a.get_lock().heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_slice_in(heap: &Heap, init: &[T]) -> Result<Self> {
        let array = Self::zeroed_in(heap, init.len())?;
        let dst = array.obj.as_ptr().cast::<T>().cast_mut();
        // SAFETY: `dst` is freshly allocated room in `heap` for `init.len()` aligned `T`s
        // that nobody else can reach yet, and cannot overlap the borrowed `init`.
        unsafe { heap.copy_to_fresh(dst, init) };
        Ok(array)
    }
}

impl Array<u8, RLock> {
    /// A byte array (Python's `Array('c', …)`) in the default heap holding a copy of
    /// `bytes`, with a fresh `RLock`. The element type is `u8` on every platform.
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
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let s = sharedctypes::Array::from_bytes_in(&heap, b"abc")?;
    /// assert_eq!(s.value(), b"abc");
    /// assert_eq!(s.get_lock().heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_bytes_in(heap: &Heap, bytes: &[u8]) -> Result<Self> {
        Self::from_slice_in(heap, bytes)
    }
}

impl<T: SharedType, L: LockType> Array<T, L> {
    /// A zeroed array of `len` guarded by `lock`, allocated in the lock's heap. For
    /// another heap use `synchronized_with(RawArray::zeroed_in(&heap, len)?, lock)`.
    ///
    /// ```
    /// use sharedctypes::{Array, Heap, Lock};
    ///
    /// let heap = Heap::new(4096)?;
    /// let lock = Lock::new_in(&heap)?;
    /// let a = Array::<i16, Lock>::zeroed_with_lock(4, lock.clone())?;
    /// assert_eq!(a.to_vec(), [0; 4]);
    /// assert!(a.get_lock() == &lock);
    /// assert_eq!(a.get_obj().heap(), &heap); // where the lock lives
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn zeroed_with_lock(len: usize, lock: L) -> Result<Self> {
        Ok(Array {
            obj: RawArray::zeroed_in(lock.heap(), len)?,
            lock,
        })
    }

    /// An array holding a copy of `init`, guarded by `lock`, allocated in the lock's
    /// heap.
    ///
    /// ```
    /// use sharedctypes::{Array, Lock};
    ///
    /// let lock = Lock::new()?;
    /// let a = Array::from_slice_with_lock(&[1u8, 2], lock.clone())?;
    /// let b = Array::from_slice_with_lock(&[3u8], lock.clone())?;
    /// assert!(a.get_lock() == b.get_lock()); // one lock guards both
    /// assert_eq!(b.to_vec(), [3]);
    /// assert_eq!(b.get_obj().heap(), lock.heap());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_slice_with_lock(init: &[T], lock: L) -> Result<Self> {
        Ok(Array {
            obj: RawArray::from_slice_in(lock.heap(), init)?,
            lock,
        })
    }

    /// The number of elements (needs no lock: it never changes).
    ///
    /// ```
    /// let a = sharedctypes::Array::<u8>::zeroed(5)?;
    /// assert_eq!(a.len(), 5);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.obj.len()
    }

    /// Element `index`, read under the lock; `Err(IndexOutOfRange)` past the end.
    ///
    /// ```
    /// use sharedctypes::{Array, Error};
    ///
    /// let a = Array::from_slice(&[10i32, 20])?;
    /// assert_eq!(a.get(1)?, 20);
    /// assert!(matches!(a.get(2), Err(Error::IndexOutOfRange { index: 2, len: 2 })));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<T> {
        let cell = self.cell(index)?;
        let _guard = self.locked();
        Ok(cell.get())
    }

    /// Writes element `index` under the lock; `Err(IndexOutOfRange)` past the end.
    ///
    /// ```
    /// let a = sharedctypes::Array::from_slice(&[0u8; 3])?;
    /// a.set(0, 7)?;
    /// assert_eq!(a.to_vec(), [7, 0, 0]);
    /// assert!(a.set(3, 1).is_err());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        let cell = self.cell(index)?;
        let _guard = self.locked();
        cell.set(value);
        Ok(())
    }

    /// Copies every element out under one lock.
    ///
    /// ```
    /// let a = sharedctypes::Array::from_slice(&[1.5f32, -2.0])?;
    /// assert_eq!(a.to_vec(), vec![1.5, -2.0]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        load_vec(&self.locked())
    }

    /// Overwrites every element from `src` under one lock; `Err(LengthMismatch)` if the
    /// lengths differ (nothing is written).
    ///
    /// ```
    /// use sharedctypes::{Array, Error};
    ///
    /// let a = Array::<u32>::zeroed(3)?;
    /// a.copy_from_slice(&[4, 5, 6])?;
    /// assert_eq!(a.to_vec(), [4, 5, 6]);
    /// let err = a.copy_from_slice(&[1, 2]).unwrap_err();
    /// assert!(matches!(err, Error::LengthMismatch { expected: 3, found: 2 }));
    /// assert_eq!(a.to_vec(), [4, 5, 6]); // nothing was written
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn copy_from_slice(&self, src: &[T]) -> Result<()> {
        store_slice(&self.locked(), src)
    }

    /// Takes the lock and returns a guard that derefs to `[Shared<T>]`.
    /// `Err(OwnerDied)` (holding the guard) if the previous holder died holding it.
    ///
    /// ```
    /// let a = sharedctypes::Array::from_slice(&[1i64, 2, 3])?;
    /// let guard = a.lock()?;
    /// let sum: i64 = guard.iter().map(|x| x.get()).sum();
    /// guard[0].set(sum); // read and write under one lock
    /// drop(guard);
    /// assert_eq!(a.to_vec(), [6, 2, 3]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
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
    ///
    /// ```
    /// let a = sharedctypes::Array::from_slice(&[1u8, 2])?;
    /// let raw = a.get_obj();
    /// raw[1].set(9); // no lock taken
    /// assert_eq!(a.to_vec(), [1, 9]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn get_obj(&self) -> &RawArray<T> {
        &self.obj
    }

    /// The lock (Python's `getlock()`).
    ///
    /// ```
    /// use sharedctypes::{Array, Lock};
    ///
    /// let lock = Lock::new()?;
    /// let a = Array::from_slice_with_lock(&[1u8], lock.clone())?;
    /// assert!(a.get_lock() == &lock);
    /// let held = a.get_lock().acquire()?;
    /// assert!(lock.try_acquire().is_err()); // the same lock
    /// drop(held);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn get_lock(&self) -> &L {
        &self.lock
    }
}

impl<L: LockType> Array<u8, L> {
    /// A byte array holding a copy of `bytes`, guarded by `lock`, allocated in the
    /// lock's heap.
    ///
    /// ```
    /// use sharedctypes::{Array, Heap, Lock};
    ///
    /// let heap = Heap::new(4096)?;
    /// let lock = Lock::new_in(&heap)?;
    /// let s = Array::from_bytes_with_lock(b"hello", lock.clone())?;
    /// assert_eq!(s.len(), 5); // no terminator added
    /// assert_eq!(s.value(), b"hello");
    /// assert!(s.get_lock() == &lock);
    /// assert_eq!(s.get_obj().heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn from_bytes_with_lock(bytes: &[u8], lock: L) -> Result<Self> {
        Ok(Array {
            obj: RawArray::from_bytes_in(lock.heap(), bytes)?,
            lock,
        })
    }

    /// The bytes up to the first NUL, read under the lock.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"ab\0cd")?;
    /// assert_eq!(s.value(), b"ab");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn value(&self) -> Vec<u8> {
        bytes::value(&self.locked())
    }

    /// Every byte, read under the lock.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"ab\0cd")?;
    /// assert_eq!(s.raw(), b"ab\0cd");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn raw(&self) -> Vec<u8> {
        bytes::raw(&self.locked())
    }

    /// Writes a byte string (NUL-terminated when shorter) under the lock; too long is
    /// `Err(TooLong)` and writes nothing.
    ///
    /// ```
    /// use sharedctypes::{Array, Error};
    ///
    /// let s = Array::from_bytes(b"hello")?;
    /// s.set_value(b"hi")?;
    /// assert_eq!(s.value(), b"hi");
    /// assert_eq!(s.raw(), b"hi\0lo");
    /// let err = s.set_value(b"too long").unwrap_err();
    /// assert!(matches!(err, Error::TooLong { len: 8, capacity: 5 }));
    /// assert_eq!(s.raw(), b"hi\0lo"); // nothing was written
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn set_value(&self, value: &[u8]) -> Result<()> {
        bytes::set_value(&self.locked(), value)
    }

    /// Writes raw bytes over the start of the array under the lock; too long is
    /// `Err(TooLong)` and writes nothing.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"hello")?;
    /// s.set_raw(b"J")?;
    /// assert_eq!(s.value(), b"Jello");
    /// assert!(s.set_raw(b"too long").is_err());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn set_raw(&self, raw: &[u8]) -> Result<()> {
        bytes::set_raw(&self.locked(), raw)
    }
}

impl<L: LockType> ArrayGuard<'_, u8, L> {
    /// The bytes up to the first NUL.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"ab\0c")?;
    /// let guard = s.lock()?;
    /// assert_eq!(guard.value(), b"ab");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn value(&self) -> Vec<u8> {
        bytes::value(self)
    }

    /// Every byte.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"ab\0c")?;
    /// let guard = s.lock()?;
    /// assert_eq!(guard.raw(), b"ab\0c");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn raw(&self) -> Vec<u8> {
        bytes::raw(self)
    }

    /// Writes a byte string, NUL-terminated when shorter. Longer than the array is
    /// `Err(TooLong)` and writes nothing.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"hello")?;
    /// let guard = s.lock()?;
    /// guard.set_value(b"hey")?;
    /// assert_eq!(guard.raw(), b"hey\0o");
    /// assert!(guard.set_value(b"greetings").is_err()); // longer than the array
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn set_value(&self, value: &[u8]) -> Result<()> {
        bytes::set_value(self, value)
    }

    /// Writes raw bytes over the start of the array. Longer than the array is
    /// `Err(TooLong)` and writes nothing.
    ///
    /// ```
    /// let s = sharedctypes::Array::from_bytes(b"hello")?;
    /// let guard = s.lock()?;
    /// guard.set_raw(b"HE")?;
    /// assert_eq!(guard.raw(), b"HEllo");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
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
///
/// ```
/// use sharedctypes::{Lock, RawValue, Synchronize};
///
/// let raw = RawValue::new(5i32)?;
/// let v = raw.clone().with_lock(Lock::new()?); // what `synchronized_with` does
/// v.set(6);
/// assert_eq!(raw.get(), 6); // the same shared value
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub trait Synchronize: crate::sealed::Sealed + Sized {
    /// The synchronized wrapper with lock type `L`.
    ///
    /// ```
    /// use sharedctypes::{Array, RLock, RawArray, Synchronize};
    ///
    /// let wrapped: <RawArray<u8> as Synchronize>::Synchronized<RLock> =
    ///     RawArray::from_slice(&[1u8, 2])?.with_lock(RLock::new()?);
    /// let _: &Array<u8, RLock> = &wrapped;
    /// assert_eq!(wrapped.to_vec(), [1, 2]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    type Synchronized<L: LockType>;

    /// Wraps `self` with `lock`.
    ///
    /// ```
    /// use sharedctypes::{Lock, RawArray, Synchronize};
    ///
    /// let lock = Lock::new()?;
    /// let raw = RawArray::from_slice(&[1u8, 2, 3])?;
    /// let arr = raw.clone().with_lock(lock.clone());
    /// assert!(arr.get_lock() == &lock);
    /// assert!(arr.get_obj() == &raw);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn with_lock<L: LockType>(self, lock: L) -> Self::Synchronized<L>;

    /// The heap the raw object lives in.
    ///
    /// ```
    /// use sharedctypes::{Heap, RawArray, Synchronize};
    ///
    /// let heap = Heap::new(4096)?;
    /// let raw = RawArray::<u8>::zeroed_in(&heap, 4)?;
    /// assert_eq!(raw.home_heap(), &heap); // where `synchronized` puts the new lock
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
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

impl<T: SharedType, L: LockType> crate::sealed::Sealed for ValueGuard<'_, T, L> {}
impl<T: SharedType, L: LockType> ConditionGuard for ValueGuard<'_, T, L> {
    fn __lock(&self) -> (&RawLock, Me) {
        self._guard.__lock()
    }
    fn __retaken(&mut self, word: u64) {
        self._guard.__retaken(word);
    }
}

impl<T: SharedType, L: LockType> crate::sealed::Sealed for ArrayGuard<'_, T, L> {}
impl<T: SharedType, L: LockType> ConditionGuard for ArrayGuard<'_, T, L> {
    fn __lock(&self) -> (&RawLock, Me) {
        self._guard.__lock()
    }
    fn __retaken(&mut self, word: u64) {
        self._guard.__retaken(word);
    }
}
