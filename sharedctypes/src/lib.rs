//! Typed values, arrays and `#[repr(C)]` structs in shared memory that forked child
//! processes read and write, raw or behind process-shared locks — Python's
//! [`multiprocessing.sharedctypes`](https://docs.python.org/3/library/multiprocessing.html#module-multiprocessing.sharedctypes)
//! for Rust, with the type system refusing at compile time what cannot work across
//! processes (pointers).
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
//! | `Value('i', 7)` | [`Value::new(7i32)`](Value::new) |
//! | `Value('i', 7, lock=lock)` | [`Value::with_lock(7i32, lock)`](Value::with_lock) |
//! | `Array('c', b'hi', lock=lock)` | [`Array::from_bytes_with_lock(b"hi", lock)`](Array::from_bytes_with_lock) |
//! | `copy(obj)` | [`copy(&obj)`](copy()) |
//! | `synchronized(obj, lock)` | [`synchronized_with(obj, lock)`](synchronized_with) |
//! | `obj.get_obj()`, `obj.get_lock()` | [`Value::get_obj`], [`Value::get_lock`] |
//! | `Event()` | [`Event::new()`](Event::new) |
//! | `Semaphore(3)`, `BoundedSemaphore(3)` | [`Semaphore::new(3)`](Semaphore::new), [`BoundedSemaphore::new(3)`](BoundedSemaphore::new) |
//! | `Barrier(4)` | [`Barrier::new(4)`](Barrier::new) |
//!
//! The pieces:
//! - [`Heap`] and [`default_heap`]: where objects live (offsets only, never pointers);
//! - [named heaps](named): [`Heap::create`], [`Heap::open`], [`Heap::publish`],
//!   [`Heap::lookup`] for processes that are not forked from each other;
//! - [`SharedType`], [`Shared<T>`], [`SharedStruct`]: what may live there and how it is
//!   read and written (see the memory-model argument in [`shared`](mod@shared));
//! - [`RawValue`], [`RawArray`], [`copy`]: unsynchronised objects;
//! - [`Lock`], [`RLock`]: process-shared locks that survive their holder's death;
//! - [`Value`], [`Array`], [`synchronized`]: objects behind a lock;
//! - [`Event`], [`Semaphore`], [`BoundedSemaphore`], [`Barrier`]: waiting for other
//!   processes without polling;
//! - [`Process`]: fork a child that runs a closure;
//! - [`typecode!`], [`Typecode`]: Python's one-letter type codes.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// Lets the derive's `::sharedctypes::…` paths resolve inside this crate's own tests.
#[allow(unused_extern_crates)]
extern crate self as sharedctypes;

mod error;
pub mod heap;
pub mod layout;
pub mod named;
mod os;
pub mod process;
mod raw;
pub mod shared;
pub mod sync;
mod synchronized;
mod typecode;

pub use error::{Error, Result};
pub use heap::{default_heap, Heap, DEFAULT_HEAP_SIZE, HEAP_SIZE_ENV};
pub use layout::{FieldLayout, LayoutKind, Primitive, TypeLayout};
pub use named::{Publish, MAX_KEY_LEN};
pub use process::{Process, PANIC_EXIT_CODE};
pub use raw::{copy, copy_in, CopyShared, RawArray, RawValue};
pub use shared::{Shared, SharedStruct, SharedType};
pub use sync::{Barrier, BarrierWaitResult, BoundedSemaphore, Event, Semaphore};
pub use sync::{
    Condition, ConditionGuard, Lock, LockGuard, LockResult, LockType, OwnerDied, RLock, RLockGuard,
    TryLockError, TryLockResult, WaitTimeoutResult,
};
pub use synchronized::{
    synchronized, synchronized_with, Array, ArrayGuard, Synchronize, Value, ValueGuard,
};
pub use typecode::Typecode;

/// `#[derive(SharedStruct)]`, documented below: what it accepts, what it generates and
/// what it rejects. It implements [`SharedType`] and the [`SharedStruct`
/// trait](trait@SharedStruct).
pub use sharedctypes_derive::SharedStruct;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

mod sealed {
    pub trait Sealed {}
}

/// Items used by the code `#[derive(SharedStruct)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::layout::{FieldLayout, TypeLayout};
    pub use crate::shared::{Shared, SharedStruct, SharedType};
    pub use core;
}
