//! [`Event`]: a flag that processes wait for (Python's `multiprocessing.Event`).
//!
//! # The word
//!
//! An event is one 32-bit atomic word in shared memory (4 bytes, 4-aligned), found by
//! offset in its heap; waiters sleep on it with the shared futex:
//!
//! ```text
//! word : u32  bit 0        SET: the flag
//!             bit 1        WAITERS: someone may sleep in FUTEX_WAIT on the word
//!             bits 2..=31  sets: +1 (mod 2^30) by every set() that raised the flag
//! ```
//!
//! - `set()`: a compare-and-swap from an unset word `w` to `SET | (sets(w) + 1)`, which
//!   clears `WAITERS`; if `w` had `WAITERS`, one `FUTEX_WAKE` of every sleeper. On a
//!   set event, a compare-and-swap of the word to itself (for the ordering below). No
//!   sleeper, no system call.
//! - `clear()`: one `fetch_and(!SET)`; the `sets` count stays.
//! - `wait()`: returns at once if `SET`. Otherwise it remembers `sets`, spins briefly,
//!   sets `WAITERS` with a compare-and-swap and sleeps in `FUTEX_WAIT` on the word it
//!   installed. It returns `true` when it finds `SET`, **or** a `sets` count other than
//!   the one it started with: an event set and cleared again while the waiter slept (or
//!   before it woke) still releases it, as Python's `Event.wait` returns `True` to the
//!   waiters a `set()` notified, whatever happens after. No wake-up is lost: `set()`
//!   changes the word, so a `FUTEX_WAIT` that races with it fails (`EAGAIN`) and the
//!   waiter looks again.
//!
//! # Orderings
//!
//! `set()`'s compare-and-swap is `Release` (also on an event already set, so a second
//! setter's writes are published as well); `is_set()` and the waiter's loads are
//! `Acquire`. Every later change of the word is a read-modify-write, so it continues
//! `set()`'s release sequence: a waiter that returns `true` — because it saw `SET`, or
//! only a new `sets` count after a `clear()` — has synchronised with the `set()`, and
//! sees everything its caller wrote before. `clear()` is `Release` too, so a process that
//! sees the flag down sees what the clearer wrote before clearing.
//!
//! # Processes that die
//!
//! Every change is one atomic instruction, so a process killed anywhere leaves a
//! consistent word. A waiter killed while asleep leaves `WAITERS` set: the next `set()`
//! makes one `FUTEX_WAKE` that wakes nobody, and clears it. A waiter that wakes more
//! than 2^30 sets late (the count wrapped to the very value it started with, and the
//! event is clear) would sleep on; that is the only ABA, and needs a billion sets while
//! one waiter is not scheduled.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::heap::{try_default_heap, Heap};

use super::futex;
use super::state::{spin_until, SharedState, StateHandle};

const SET: u32 = 1;
const WAITERS: u32 = 1 << 1;
const SETS_SHIFT: u32 = 2;
const SETS_MASK: u32 = !(SET | WAITERS);

/// An event's shared memory.
#[repr(C)]
pub(crate) struct RawEvent {
    word: AtomicU32,
}

// The layout the module docs describe (and a named heap's directory records).
const _: () = {
    assert!(std::mem::size_of::<RawEvent>() == 4);
    assert!(std::mem::offset_of!(RawEvent, word) == 0);
};

// SAFETY: `#[repr(C)]`, one atomic.
unsafe impl SharedState for RawEvent {}

/// Whether a waiter that started on a clear word with `sets` count `start` is
/// released by the word `now`: the flag is up, or a `set()` happened since.
fn released(start: u32, now: u32) -> bool {
    now & SET != 0 || now & SETS_MASK != start & SETS_MASK
}

impl RawEvent {
    fn set(&self) {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w & SET != 0 {
                // Already set: write the same word back, so that whoever sees the flag
                // from now on also sees what this caller wrote before `set`.
                match self
                    .word
                    .compare_exchange(w, w, Ordering::Release, Ordering::Relaxed)
                {
                    Ok(_) => return,
                    Err(actual) => {
                        w = actual;
                        continue;
                    }
                }
            }
            let sets = (w & SETS_MASK).wrapping_add(1 << SETS_SHIFT) & SETS_MASK;
            match self
                .word
                .compare_exchange(w, sets | SET, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if w & WAITERS != 0 {
                        futex::wake(&self.word, u32::MAX);
                    }
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    fn clear(&self) {
        self.word.fetch_and(!SET, Ordering::Release);
    }

    fn is_set(&self) -> bool {
        self.word.load(Ordering::Acquire) & SET != 0
    }

    /// Waits until set (`true`) or until `deadline` (`false`).
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let start = self.word.load(Ordering::Acquire);
        if start & SET != 0 {
            return true;
        }
        if spin_until(|| released(start, self.word.load(Ordering::Acquire))) {
            return true;
        }
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if released(start, w) {
                return true;
            }
            if w & WAITERS == 0 {
                if let Err(actual) =
                    self.word
                        .compare_exchange(w, w | WAITERS, Ordering::Acquire, Ordering::Acquire)
                {
                    w = actual;
                    continue;
                }
                w |= WAITERS;
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            futex::wait(&self.word, w, timeout);
            w = self.word.load(Ordering::Acquire);
        }
    }
}

/// A flag that processes wait for: Python's `multiprocessing.Event`, shared by every
/// process forked after its creation (and, in a named heap, every process that opens
/// it).
///
/// Waiters sleep in the kernel (a shared futex) until [`set`](Event::set) wakes them.
/// Handles are cheap to clone and compare equal when they name the same event. The
/// state is one 32-bit word, changed only by atomic instructions (its layout and the
/// orderings it relies on are described in `src/sync/event.rs`).
///
/// # Processes that die
///
/// A process killed anywhere leaves the event consistent. A waiter killed while asleep
/// costs the next `set` one futex wake-up system call that wakes nobody; nothing else.
///
/// ```
/// use sharedctypes::{Event, Process, RawValue};
///
/// let ready = Event::new()?;
/// let answer = RawValue::new(0u32)?;
/// let child = {
///     let (ready, answer) = (ready.clone(), answer.clone());
///     Process::spawn(move || {
///         answer.set(42);
///         ready.set(); // everything written before is visible to the waiter
///     })?
/// };
/// ready.wait(); // sleeps until the child sets it
/// assert_eq!(answer.get(), 42);
/// child.join()?;
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    handle: StateHandle<RawEvent>,
}

impl Event {
    /// A new, clear event in the [default heap](crate::default_heap).
    ///
    /// ```
    /// let event = sharedctypes::Event::new()?;
    /// assert!(!event.is_set());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new() -> Result<Event> {
        Event::new_in(try_default_heap()?)
    }

    /// A new, clear event in `heap`.
    ///
    /// ```
    /// use sharedctypes::{Event, Heap};
    ///
    /// let heap = Heap::new(4096)?;
    /// let event = Event::new_in(&heap)?;
    /// assert_eq!(event.heap(), &heap);
    /// assert!(!event.is_set());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap) -> Result<Event> {
        Ok(Event {
            handle: StateHandle::new_in(heap, |s: &RawEvent| s.word.store(0, Ordering::Relaxed))?,
        })
    }

    /// Raises the flag and wakes every waiter, in every process. Setting a set event
    /// does nothing.
    ///
    /// ```
    /// let event = sharedctypes::Event::new()?;
    /// event.set();
    /// event.set();
    /// assert!(event.is_set());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn set(&self) {
        self.handle.state().set();
    }

    /// Lowers the flag: later waits sleep until the next [`set`](Event::set). Waiters
    /// that a `set` already released are not called back.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = sharedctypes::Event::new()?;
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn clear(&self) {
        self.handle.state().clear();
    }

    /// Whether the flag is up.
    ///
    /// ```
    /// let event = sharedctypes::Event::new()?;
    /// assert!(!event.is_set());
    /// event.set();
    /// assert!(event.is_set());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.handle.state().is_set()
    }

    /// Waits until the flag is up; returns at once if it already is. A waiter that a
    /// [`set`](Event::set) released returns even if the event was cleared again before
    /// it woke up (Python's semantics).
    ///
    /// ```
    /// use sharedctypes::{Event, Process};
    ///
    /// let go = Event::new()?;
    /// let children = (0..3)
    ///     .map(|_| {
    ///         let go = go.clone();
    ///         Process::spawn(move || go.wait())
    ///     })
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// go.set(); // releases all three
    /// for child in children {
    ///     child.join()?;
    /// }
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait(&self) {
        self.handle.state().wait_until(None);
    }

    /// Waits at most `timeout` for the flag: `true` when it is set (or was set during
    /// the wait), `false` when the time ran out. A zero timeout only looks.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = sharedctypes::Event::new()?;
    /// assert!(!event.wait_timeout(Duration::ZERO));
    /// assert!(!event.wait_timeout(Duration::from_millis(10)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(10)));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if timeout.is_zero() {
            return self.is_set();
        }
        let deadline = Instant::now().checked_add(timeout);
        self.handle.state().wait_until(deadline)
    }

    /// The heap the event lives in.
    ///
    /// ```
    /// use sharedctypes::{default_heap, Event};
    ///
    /// assert_eq!(Event::new()?.heap(), default_heap());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn heap(&self) -> &Heap {
        self.handle.heap()
    }

    pub(crate) fn offset(&self) -> usize {
        self.handle.offset()
    }

    /// # Safety
    ///
    /// `offset` must be in bounds of `heap` for an event's state and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Event {
        Event {
            // SAFETY: the caller's obligation is `from_offset`'s.
            handle: unsafe { StateHandle::from_offset(heap, offset) },
        }
    }
}

impl PartialEq for Event {
    /// Equal when both name the same event (same heap, same offset), however reached.
    ///
    /// ```
    /// use sharedctypes::Event;
    ///
    /// let a = Event::new()?;
    /// assert!(a == a.clone());
    /// assert!(a != Event::new()?);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn eq(&self, other: &Event) -> bool {
        self.handle.same(&other.handle)
    }
}

impl Eq for Event {}

impl fmt::Debug for Event {
    /// Shows whether the flag is up.
    ///
    /// ```
    /// let event = sharedctypes::Event::new()?;
    /// event.set();
    /// assert_eq!(format!("{event:?}"), "Event { is_set: true }");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RawEvent {
        RawEvent {
            word: AtomicU32::new(0),
        }
    }

    #[test]
    fn a_set_releases_a_waiter_even_if_cleared_before_it_looks() {
        let e = event();
        let start = e.word.load(Ordering::Relaxed);
        assert!(!released(start, start));
        e.set();
        e.clear();
        let now = e.word.load(Ordering::Relaxed);
        assert_eq!(now & SET, 0);
        assert!(
            released(start, now),
            "the set in between releases the waiter"
        );
        // A waiter that starts after the clear is not released by that old set.
        assert!(!released(now, now));
    }

    #[test]
    fn set_clears_waiters_and_counts_sets() {
        let e = event();
        e.word.store(WAITERS, Ordering::Relaxed);
        e.set();
        assert_eq!(e.word.load(Ordering::Relaxed), SET | (1 << SETS_SHIFT));
        e.set(); // already set: nothing changes
        assert_eq!(e.word.load(Ordering::Relaxed), SET | (1 << SETS_SHIFT));
        e.clear();
        e.set();
        assert_eq!(e.word.load(Ordering::Relaxed), SET | (2 << SETS_SHIFT));
    }

    #[test]
    fn the_set_count_wraps_without_touching_the_flags() {
        let e = event();
        e.word.store(SETS_MASK, Ordering::Relaxed);
        e.set();
        assert_eq!(e.word.load(Ordering::Relaxed), SET);
    }
}
