//! Typed values, arrays and `#[repr(C)]` structs in shared memory that forked child
//! processes read and write, raw or behind process-shared locks — Python's
//! [`multiprocessing.sharedctypes`](https://docs.python.org/3/library/multiprocessing.html#module-multiprocessing.sharedctypes)
//! for Rust, with the type system refusing at compile time what cannot work across
//! processes (pointers).
//!
//! **Linux only.** The crate is built on Linux kernel features: `futex` (locks that
//! sleep in the kernel and work across processes), `memfd_create` (anonymous heaps that
//! children inherit), POSIX shared memory in `/dev/shm` (named heaps), and `/proc`
//! (telling a dead lock holder from a live one). On any other target the build stops
//! with one `compile_error!` that says so. See [Limits](#limits) for what it does not
//! do yet.
//!
//! ```
//! use sharedctypes::{Array, Lock, Process, RawValue, SharedStruct, Value};
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! struct Point { x: f64, y: f64 }
//!
//! let lock = Lock::new()?;
//! let n = Value::new(7i32)?;
//! let x = RawValue::new(1.0f64 / 3.0)?;
//! let s = Array::from_bytes_with_lock(b"hello world", lock.clone())?;
//! let a = Array::from_slice_with_lock(
//!     &[Point { x: 1.875, y: -6.25 }, Point { x: -5.75, y: 2.0 }],
//!     lock.clone(),
//! )?;
//!
//! let child = {
//!     let (n, x, s, a) = (n.clone(), x.clone(), s.clone(), a.clone());
//!     Process::spawn(move || {
//!         n.update(|v| v * v);
//!         x.update(|v| v * v);
//!         s.set_value(&s.value().to_ascii_uppercase()).unwrap();
//!         for p in a.lock().unwrap().iter() {
//!             p.x.update(|v| v * v);
//!             p.y.update(|v| v * v);
//!         }
//!     })?
//! };
//! child.join()?;
//! assert_eq!(n.get(), 49);
//! assert_eq!(s.value(), b"HELLO WORLD");
//! assert_eq!(a.get(1)?.y, 4.0);
//! # Ok::<(), sharedctypes::Error>(())
//! ```
//!
//! | Python | Rust |
//! |---|---|
//! | `RawValue('d', 2.4)` | [`RawValue::new(2.4f64)`](RawValue::new) |
//! | `RawArray('h', 7)` | [`RawArray::<typecode!('h')>::zeroed(7)`](RawArray::zeroed) |
//! | `RawArray('i', (9, 2, 8))` | [`RawArray::from_slice(&[9i32, 2, 8])`](RawArray::from_slice) |
//! | `RawArray('c', b'hi')` | [`RawArray::from_bytes(b"hi")`](RawArray::from_bytes): a `RawArray<u8>` on every platform |
//! | `Value('i', 7)` | [`Value::new(7i32)`](Value::new) (with a fresh [`RLock`]) |
//! | `Value('i', 7, lock=lock)` | [`Value::with_lock(7i32, lock)`](Value::with_lock) |
//! | `Array('c', b'hi', lock=lock)` | [`Array::from_bytes_with_lock(b"hi", lock)`](Array::from_bytes_with_lock) |
//! | `with n.get_lock(): n.value += 1` | [`n.update(..)`](Value::update) on a `Value`; lock-free on a `RawValue<u64>`: [`n.fetch_add(1, Relaxed)`](Shared::<u64>::fetch_add) |
//! | `copy(obj)` | [`copy(&obj)`](copy()) |
//! | `synchronized(obj, lock)` | [`synchronized_with(obj, lock)`](synchronized_with) |
//! | `obj.get_obj()`, `obj.get_lock()` | [`Value::get_obj`], [`Value::get_lock`] |
//! | `lock.acquire()` | [`lock.acquire()?`](Lock::acquire): a guard, or [`OwnerDied`] if the last holder died or panicked |
//! | `lock.acquire(False)`, `lock.acquire(timeout=t)` | [`lock.try_acquire()`](Lock::try_acquire), [`lock.acquire_timeout(t)`](Lock::acquire_timeout): a [`TryLockResult`] ([`TryLockError::WouldBlock`] or [`TryLockError::OwnerDied`]) |
//! | `Condition()`, `Condition(lock)` | [`Condition::new()`](Condition::new): waits with the guard of any [`Lock`], [`RLock`], [`Value`] or [`Array`] ([`ConditionGuard`]) |
//! | `cond.wait()`, `cond.wait(timeout)` | [`cond.wait(guard)`](Condition::wait), [`cond.wait_timeout(guard, t)`](Condition::wait_timeout) |
//! | `cond.wait_for(pred)` | [`cond.wait_while(guard, ..)`](Condition::wait_while) (waits *while* the closure is true), [`wait_timeout_while`](Condition::wait_timeout_while) |
//! | `cond.notify()`, `cond.notify(n)`, `cond.notify_all()` | [`notify_one()`](Condition::notify_one), [`notify(n)`](Condition::notify), [`notify_all()`](Condition::notify_all) |
//! | `Condition(v.get_lock())`, `with cond: cond.wait_for(..)` | [`cond.wait_while(v.lock()?, ..)`](Condition::wait_while): the [`Value`]'s own guard |
//! | `Event()`: `set`, `clear`, `is_set`, `wait` | [`Event::new()`](Event::new): [`set`](Event::set), [`clear`](Event::clear), [`is_set`](Event::is_set), [`wait`](Event::wait), [`wait_timeout`](Event::wait_timeout) |
//! | `Semaphore(3)`, `BoundedSemaphore(3)` | [`Semaphore::new(3)`](Semaphore::new), [`BoundedSemaphore::new(3)`](BoundedSemaphore::new) (a release too many is [`Error::SemaphoreOverflow`]) |
//! | `sem.acquire(False)`, `sem.get_value()` | [`sem.try_acquire()`](Semaphore::try_acquire) (a `bool`), [`sem.value()`](Semaphore::value) |
//! | `Barrier(4)`: `wait`, `abort`, `reset` | [`Barrier::new(4)`](Barrier::new): [`wait`](Barrier::wait), [`wait_timeout`](Barrier::wait_timeout), [`abort`](Barrier::abort), [`reset`](Barrier::reset) |
//! | `BrokenBarrierError` | [`Error::BrokenBarrier`] |
//! | `Process(target=f).start()`, `p.join()` | [`Process::spawn(f)`](Process::spawn), [`p.join()?`](Process::join) (returns `()`; [`Error::ChildFailed`] unless the child exited 0) |
//! | `p.exitcode`, `p.is_alive()`, `p.join(timeout)`, `p.kill()` | [`p.wait()?.code()`](Process::wait), [`p.try_wait()?.is_none()`](Process::try_wait), [`p.wait_timeout(t)?`](Process::wait_timeout), [`p.kill()?`](Process::kill) |
//!
//! The pieces:
//! - [`Heap`] and [`default_heap`]: where objects live (offsets only, never pointers);
//! - [named heaps](named): [`Heap::create`], [`Heap::open`], [`Heap::publish`],
//!   [`Heap::lookup`] for processes that are not forked from each other;
//! - [`SharedType`], [`Shared<T>`], [`SharedStruct`]: what may live there and how it is
//!   read and written (see the memory-model argument in [`shared`](mod@shared)); shared
//!   integers of up to 64 bits also have std's atomic methods, atomic across processes
//!   ([`fetch_add`](Shared::<u64>::fetch_add),
//!   [`compare_exchange`](Shared::<u64>::compare_exchange), …);
//! - [`RawValue`], [`RawArray`], [`copy`]: unsynchronised objects;
//! - [`Lock`], [`RLock`]: process-shared locks that survive their holder's death or
//!   panic ([`OwnerDied`], like std's poisoning); [`Lock::try_acquire`] and
//!   [`Lock::acquire_timeout`] return a [`TryLockResult`], std's shape;
//! - [`Value`], [`Array`], [`synchronized`]: objects behind a lock;
//! - [`Condition`], [`Event`], [`Semaphore`], [`BoundedSemaphore`], [`Barrier`]: waiting
//!   for other processes without polling (they sleep in the kernel on a shared futex);
//! - [`Process`]: fork a child that runs a closure; [`join`](Process::join) fails
//!   unless it succeeded, [`wait`](Process::wait), [`try_wait`](Process::try_wait) and
//!   [`kill`](Process::kill) treat it as a process;
//! - [`Error`]: one error type, whose messages name the heap or key at fault;
//! - [`typecode!`], [`Typecode`]: Python's one-letter type codes.
//!
//! # Memory that is given back
//!
//! Every object (raw object, lock, coordination object; a [`Value`] or [`Array`] is a
//! raw object plus a lock, each counted on its own, so a lock shared by several
//! objects lives until the last of them) carries a count in shared memory. Cloning a
//! handle counts one more, dropping one counts one less, in whichever process; when
//! the count reaches zero, the object's memory goes back to its heap, and later
//! allocations, by any process, reuse it. [`Heap::used`] counts live objects only, and
//! [`Heap::live_objects`] says how many there are.
//!
//! ```
//! use sharedctypes::{Heap, RawArray, RawValue};
//!
//! let heap = Heap::new(1 << 20)?;
//! for round in 0..100_000u64 {
//!     // Far more than the heap could hold at once, one at a time.
//!     let v = RawValue::new_in(&heap, round)?;
//!     let a = RawArray::<u8>::zeroed_in(&heap, 1000)?;
//!     drop((v, a));
//! }
//! assert_eq!((heap.used(), heap.live_objects()), (0, 0));
//! # Ok::<(), sharedctypes::Error>(())
//! ```
//!
//! - **Reuse.** Fresh memory comes from the heap's frontier (one compare-and-swap);
//!   freed small blocks (up to 32 KiB) go to lock-free free lists, one per size class;
//!   larger ones to a list of free runs kept under the heap's own robust lock, and
//!   blocks of 64 KiB or more give their pages back to the system (a hole punched in the
//!   heap's file). Before an allocation gives up with [`Error::OutOfMemory`], the free
//!   lists are merged back into runs, neighbours with neighbours, so that memory freed
//!   in small pieces is not stranded: a heap whose live objects fit never runs out.
//! - **Processes.** [`Process::spawn`] hands the handles its closure captured to the
//!   child: the parent keeps its copy, counted once, until the child is reaped (see
//!   [the closure's handles](Process#the-closures-handles)). Handles a child inherits
//!   through `fork` are not counted in the child — the closure's, a handle in a
//!   `static`, everything after a raw `libc::fork` — so dropping one there does
//!   nothing, and can never free an object its other holders still use; a clone made
//!   in the child is counted like any other. The rule that comes with it: an uncounted
//!   copy borrows its object from the handles that count it, so use it only while they
//!   keep the object alive — the closure's are kept until the child is reaped; a handle
//!   in a `static` is kept as long as the parent leaves it there; after a raw
//!   `libc::fork` (an `unsafe` call) that is the caller's to ensure, for instance by
//!   cloning what the child needs before the parent can drop it. A copy used after its
//!   object was freed reads or writes whatever reuses the memory (atomically, never out
//!   of bounds), like a handle another process scribbles on.
//! - **Named heaps.** A [published](Heap::publish) object is counted by the directory
//!   too, so it outlives its publisher; [`Heap::unpublish`] drops that count, and the
//!   object goes with the last handle any program looked up.
//! - **Deaths.** A process killed by a signal never drops its handles: what it held
//!   stays allocated until the heap goes — a bounded leak, never corruption. Killed
//!   inside an allocation or a free, it loses at most the block it was moving; killed
//!   while holding the allocator's lock, the next allocator takes the lock over and
//!   rebuilds the free runs from the heap's blocks.
//! - **Cost.** A handle's clone or drop is one atomic operation on shared memory (plus
//!   the [`Heap`]'s own process-local count); an allocation and a free are one
//!   compare-and-swap each on their size class's list. `used()` and `live_objects()`
//!   walk the heap's blocks instead of slowing that down: use them to debug, not in a
//!   hot loop.
//!
//! # Limits
//!
//! What the crate does not do (yet):
//! - **What a killed process held stays allocated** (see [Memory that is given
//!   back](#memory-that-is-given-back)), and so does each published key's directory
//!   entry after [`unpublish`](Heap::unpublish) (a few hundred bytes).
//! - **Python through `sharedctypes_rs` only** (the `sharedctypes-py` module): other
//!   languages cannot open these heaps; every program that shares a named heap must
//!   use the same `#[repr(C)]` layouts (checked, not converted).
//! - **Linux only**: no Windows, macOS or BSD (see above).
//! - **Locks need one PID namespace and one time namespace**: a lock's owner is named
//!   by thread id and told from a stranger reusing that id by its start time, so locks
//!   in a [named heap](named) are refused across PID or time namespaces
//!   ([`Error::ForeignPidNamespace`], [`Error::ForeignTimeNamespace`]), and so is a
//!   process that cannot read its namespaces (no `/proc`). Raw objects cross freely,
//!   but the heap's own allocator lock does not: in another namespace than the heap's
//!   creator, an allocation that needs it (larger than 32 KiB, aligned to more than 16
//!   bytes, or with no free block of its size class and no fresh memory left) is
//!   [`Error::ForeignPidNamespace`] / [`Error::ForeignTimeNamespace`], and a freed block
//!   larger than 32 KiB stays allocated.
//! - **Processes killed by a signal keep nothing consistent for you**: a lock they held
//!   is recovered (the next holder is told: [`OwnerDied`]), but the data it guarded may
//!   be half-written.
//! - **A [`Condition`] has [`MAX_WAITERS`](sync::MAX_WAITERS) (128) waiter slots**: up
//!   to that many threads wait with Python's exact semantics; beyond it, waiters still
//!   wake, but a [`notify(n)`](Condition::notify) may wake more than `n` of them (std's
//!   `Condvar` semantics). A waiter killed while waiting may swallow one notification.
//! - **A process that dies is not made up for** by a [`Semaphore`] (its permits stay
//!   taken) or a [`Barrier`] (the others wait until their timeout), as in Python.
//! - **A named heap truncated by another process after it was opened** can still raise
//!   `SIGBUS`, and a corrupted directory is checked only against what it names (see
//!   [what is checked](named#what-is-checked-and-what-cannot-be)).

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// One error, and nothing else: every module below is Linux-only, so it is left out
// rather than allowed to fail on a missing `libc` function.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "sharedctypes supports Linux only (target_os = \"linux\"): it is built on the futex \
     system call, memfd_create, POSIX shared memory in /dev/shm and /proc"
);

// Lets the derive's `::sharedctypes::…` paths resolve inside this crate's own tests.
#[cfg(target_os = "linux")]
#[allow(unused_extern_crates)]
extern crate self as sharedctypes;

// Every module and re-export is Linux-only (`cfg` below), so that another target sees
// the one `compile_error!` above, not a cascade of missing `libc` items.
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
pub mod heap;
#[cfg(target_os = "linux")]
pub mod layout;
#[cfg(target_os = "linux")]
pub mod named;
#[cfg(target_os = "linux")]
mod os;
#[cfg(target_os = "linux")]
pub mod process;
#[cfg(target_os = "linux")]
mod raw;
#[cfg(target_os = "linux")]
pub mod shared;
#[cfg(target_os = "linux")]
pub mod sync;
#[cfg(target_os = "linux")]
mod synchronized;
#[cfg(target_os = "linux")]
mod typecode;

#[cfg(target_os = "linux")]
pub use error::{Error, NameKind, Result};
#[cfg(target_os = "linux")]
pub use heap::{default_heap, Heap, DEFAULT_HEAP_SIZE, HEAP_SIZE_ENV};
#[cfg(target_os = "linux")]
pub use layout::{FieldLayout, LayoutKind, Primitive, TypeLayout};
#[cfg(target_os = "linux")]
pub use named::{Publish, MAX_KEY_LEN};
#[cfg(target_os = "linux")]
pub use process::{Process, PANIC_EXIT_CODE};
#[cfg(target_os = "linux")]
pub use raw::{copy, copy_in, CopyShared, RawArray, RawValue};
#[cfg(target_os = "linux")]
pub use shared::{Shared, SharedStruct, SharedType};
#[cfg(target_os = "linux")]
pub use sync::{Barrier, BarrierWaitResult, BoundedSemaphore, Event, Semaphore};
#[cfg(target_os = "linux")]
pub use sync::{
    Condition, ConditionGuard, Lock, LockGuard, LockResult, LockType, OwnerDied, RLock, RLockGuard,
    TryLockError, TryLockResult, WaitTimeoutResult,
};
#[cfg(target_os = "linux")]
pub use synchronized::{
    synchronized, synchronized_with, Array, ArrayGuard, Synchronize, Value, ValueGuard,
};
#[cfg(target_os = "linux")]
pub use typecode::Typecode;

/// `#[derive(SharedStruct)]`, documented below: what it accepts, what it generates and
/// what it rejects. It implements [`SharedType`] and the [`SharedStruct`
/// trait](trait@SharedStruct).
#[cfg(target_os = "linux")]
pub use sharedctypes_derive::SharedStruct;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, target_os = "linux"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[cfg(target_os = "linux")]
mod sealed {
    pub trait Sealed {}
}

/// Items used by the code `#[derive(SharedStruct)]` generates. Not public API.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub mod __private {
    pub use crate::layout::{FieldLayout, TypeLayout};
    pub use crate::shared::{Shared, SharedStruct, SharedType};
    pub use core;
}

/// Handles whose element type is known at run time, for the Python module. Not API.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub mod erased;

/// Hooks for the fuzz targets in `fuzz/` and their regression tests. Not API.
#[cfg(target_os = "linux")]
#[doc(hidden)]
#[path = "fuzz_hooks.rs"]
pub mod __fuzz;
