//! What [`Event`](super::Event), [`Semaphore`](super::Semaphore),
//! [`BoundedSemaphore`](super::BoundedSemaphore) and [`Barrier`](super::Barrier) share:
//! a handle to their state in a heap, and the short spin before a waiter sleeps.

use std::ptr::NonNull;

use crate::error::Result;
use crate::heap::Heap;

/// The shared-memory state of a coordination object.
///
/// # Safety
///
/// Implementors are `#[repr(C)]` structs made only of atomics, so that every bit
/// pattern (zeroed fresh memory, or whatever another process left in a named heap) is
/// a valid value, and sharing a reference with other threads and processes is sound.
pub(crate) unsafe trait SharedState: Sync {}

/// A handle to a coordination object's state: the heap, which keeps the mapping alive,
/// and where the state is in this process's mapping. Compared by heap identity and
/// offset, never by address (a named heap may be mapped twice in one process).
pub(crate) struct StateHandle<S> {
    heap: Heap,
    state: NonNull<S>,
}

impl<S> Clone for StateHandle<S> {
    fn clone(&self) -> Self {
        StateHandle {
            heap: self.heap.clone(),
            state: self.state,
        }
    }
}

// SAFETY: the state is made only of atomics (`SharedState`), and the heap keeps it
// mapped as long as the handle lives.
unsafe impl<S: SharedState> Send for StateHandle<S> {}
// SAFETY: as above.
unsafe impl<S: SharedState> Sync for StateHandle<S> {}

impl<S: SharedState> StateHandle<S> {
    /// Allocates a state in `heap` and lets `init` write its first value before anyone
    /// else can see it.
    pub(crate) fn new_in(heap: &Heap, init: impl FnOnce(&S)) -> Result<Self> {
        let handle = StateHandle {
            heap: heap.clone(),
            state: heap.alloc_array::<S>(1)?,
        };
        init(handle.state());
        Ok(handle)
    }

    /// # Safety
    ///
    /// `offset` must be in bounds of `heap` for an `S` and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Self {
        StateHandle {
            heap: heap.clone(),
            // The caller guarantees bounds and alignment, on which `state()` relies.
            state: heap.ptr_at(offset),
        }
    }

    #[inline]
    pub(crate) fn state(&self) -> &S {
        // SAFETY: `state` points to an aligned `S` inside the mapping, which `self.heap`
        // keeps alive; `S` is only atomics, valid for every bit pattern (`SharedState`).
        unsafe { self.state.as_ref() }
    }

    pub(crate) fn heap(&self) -> &Heap {
        &self.heap
    }

    pub(crate) fn offset(&self) -> usize {
        self.heap
            .offset_of(self.state.as_ptr(), std::mem::size_of::<S>())
            .expect("a handle points into its own heap")
    }

    /// Whether both handles name the same object (same heap, same offset).
    pub(crate) fn same(&self, other: &Self) -> bool {
        self.heap.same_heap(&other.heap) && self.offset() == other.offset()
    }
}

/// Polls `done` for a few microseconds (at most [`SPIN_POLLS`] polls, with a growing
/// pause between them) before a waiter goes to sleep in the kernel; returns whether it
/// came true. A wake-up that comes within the spin costs no system call on either side.
#[inline]
pub(crate) fn spin_until(mut done: impl FnMut() -> bool) -> bool {
    let mut backoff = 1;
    for _ in 0..SPIN_POLLS {
        if done() {
            return true;
        }
        for _ in 0..backoff {
            std::hint::spin_loop();
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    false
}

/// How many times a waiter polls before it sleeps: with the pause doubling from 1 to
/// [`MAX_BACKOFF`], about 200 `pause` instructions in all (a few microseconds).
const SPIN_POLLS: u32 = 10;
/// The longest pause between two polls, in `pause` instructions.
const MAX_BACKOFF: u32 = 32;
