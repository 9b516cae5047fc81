//! What the locks, [`Event`](super::Event), [`Semaphore`](super::Semaphore),
//! [`BoundedSemaphore`](super::BoundedSemaphore) and [`Barrier`](super::Barrier) share:
//! a handle to their state in a heap, and the brief polling before a waiter sleeps.

use std::ptr::NonNull;

use crate::error::Result;
use crate::heap::alloc::BlockRef;
use crate::heap::Heap;

/// The shared-memory state of a coordination object.
///
/// # Safety
///
/// Implementors are `#[repr(C)]` structs made only of atomics, so that every bit
/// pattern (zeroed fresh memory, or whatever another process left in a named heap) is
/// a valid value, and sharing a reference with other threads and processes is sound.
pub(crate) unsafe trait SharedState: Sync {}

/// A handle to a coordination object's state: a counted reference to its block (the
/// heap, which keeps the mapping alive, and the count, which keeps the block
/// allocated), and where the state is in this process's mapping. Compared by heap
/// identity and offset, never by address (a named heap may be mapped twice in one
/// process).
pub(crate) struct StateHandle<S> {
    block: BlockRef,
    state: NonNull<S>,
}

impl<S> Clone for StateHandle<S> {
    fn clone(&self) -> Self {
        StateHandle {
            block: self.block.clone(),
            state: self.state,
        }
    }
}

// SAFETY: the state is made only of atomics (`SharedState`), and the heap keeps it
// mapped, and the count allocated, as long as the handle lives.
unsafe impl<S: SharedState> Send for StateHandle<S> {}
// SAFETY: as above.
unsafe impl<S: SharedState> Sync for StateHandle<S> {}

impl<S: SharedState> StateHandle<S> {
    /// Allocates a state in `heap` and lets `init` write its first value before anyone
    /// else can see it.
    pub(crate) fn new_in(heap: &Heap, init: impl FnOnce(&S)) -> Result<Self> {
        let offset = heap.alloc(std::mem::size_of::<S>(), std::mem::align_of::<S>())?;
        // SAFETY: `alloc` returned a block's object with room for an `S`, aligned.
        let handle = unsafe { Self::from_offset(heap, offset) };
        init(handle.state());
        Ok(handle)
    }

    /// A handle to the state at `offset`, taking over one count already held on its
    /// block (by `alloc`, or taken by a lookup).
    ///
    /// # Safety
    ///
    /// `offset` must be the object of a block of `heap` with room for an `S`, aligned for
    /// it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Self {
        let block = BlockRef::new(heap, offset);
        StateHandle {
            // The caller guarantees bounds and alignment, on which `state()` relies.
            state: block.ptr(),
            block,
        }
    }

    #[inline]
    pub(crate) fn state(&self) -> &S {
        // SAFETY: `state` points to an aligned `S` inside the mapping, which the block's
        // heap keeps alive (and the count allocated); `S` is only atomics, valid for
        // every bit pattern (`SharedState`).
        unsafe { self.state.as_ref() }
    }

    pub(crate) fn heap(&self) -> &Heap {
        self.block.heap()
    }

    pub(crate) fn offset(&self) -> usize {
        self.block.offset()
    }

    /// Whether both handles name the same object (same heap, same offset).
    pub(crate) fn same(&self, other: &Self) -> bool {
        self.heap().same_heap(other.heap()) && self.offset() == other.offset()
    }
}

/// Polls `done` briefly before a waiter goes to sleep in the kernel; returns whether
/// it came true. A wake-up that comes within the polls costs no system call on either
/// side.
///
/// The shape of `parking_lot`'s `SpinWait`: [`SPINS`] polls with a short, doubling
/// `pause` between them (2 + 4 + 8 `pause`s, well under a microsecond), then polls with
/// a [`yield_now`](std::thread::yield_now) between them, up to [`SPIN_POLLS`] in all.
/// A yield, not a longer spin, because the process that will wake this one may be
/// waiting for this very core: with more runnable processes than cores (4 processes on
/// 2 cores at a barrier; 2 on 2 cores with anything else running), a spinning waiter
/// keeps the other side off the core for the whole spin, and every hand-off then
/// costs the spin, a sleep and a wake. A yield hands the core over when someone else
/// is runnable, and returns at once (one system call) when nobody is. Measured with
/// `benches/coordination.rs` on a busy 2-core machine: with 200 `pause`s of spin, a
/// Condition ping-pong took 1.8-2.1x as long as a pthread condvar's, a Semaphore
/// ping-pong 2.7-3.1x a `sem_t`'s, a 4-process barrier 1.5-2.5x glibc's; with this
/// shape 0.3-0.4x, 0.4-0.7x and 0.5-0.6x.
#[inline]
pub(crate) fn spin_until(mut done: impl FnMut() -> bool) -> bool {
    for poll in 0..SPIN_POLLS {
        if done() {
            return true;
        }
        if poll < SPINS {
            for _ in 0..2u32 << poll {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
    false
}

/// How many times a waiter polls before it sleeps.
const SPIN_POLLS: u32 = 10;
/// How many of those polls are separated by a `pause` spin (the rest by a yield).
const SPINS: u32 = 3;
