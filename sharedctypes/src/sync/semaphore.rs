//! [`Semaphore`] and [`BoundedSemaphore`]: counters of permits that processes take and
//! give back (Python's `multiprocessing.Semaphore` and `BoundedSemaphore`).
//!
//! # The word
//!
//! A semaphore is 16 bytes of shared memory (8-aligned), found by offset in its heap:
//!
//! ```text
//! word  : u64  bits 0..=31   value: the permits available (0..=u32::MAX)
//!              bits 32..=63  sleepers: waiters registered to sleep (see below)
//! limit : u32  the largest value a release may reach: u32::MAX for a Semaphore,
//!              the initial value for a BoundedSemaphore; written once, at creation
//! (u32 reserved, zero)
//! ```
//!
//! Waiters sleep in `FUTEX_WAIT` on the word's low half — the value — expecting 0. Rust
//! code only ever accesses the 64-bit atomic; the low half's address is only handed to
//! the kernel, whose 32-bit read is atomic.
//!
//! - **Fast paths**: `acquire` is a load and one compare-and-swap `value → value - 1`
//!   (`Acquire`) when the value is positive; `release` is a load and one
//!   compare-and-swap `value → value + 1` (`Release`) — not a `fetch_add`, so that a
//!   release at the limit fails without changing anything. The same compare-and-swap
//!   reads `sleepers`: a release makes a `FUTEX_WAKE` of one waiter only when
//!   `sleepers > 0`. Uncontended, neither side makes a system call.
//! - **Waiting**: after a brief spin, a waiter finding the value 0 registers with a
//!   compare-and-swap `sleepers + 1` (from a word whose value is 0), then sleeps while
//!   the low half is 0. It takes a permit and unregisters in one compare-and-swap
//!   `(value - 1, sleepers - 1)`; a waiter whose timeout ran out unregisters alone (or
//!   takes a permit that came meanwhile: it returns `true`).
//! - **No lost wake-up**: registration and release are read-modify-writes of one word,
//!   so one comes first. If the release does, the registration's compare-and-swap
//!   (which expects value 0) fails and the waiter takes the permit. If the registration
//!   does, the release sees `sleepers > 0` and wakes one sleeper — and a waiter that has
//!   registered but not yet called `FUTEX_WAIT` finds the low half no longer 0 and does
//!   not sleep. Each release with sleepers wakes one of them, so `n` releases wake `n`
//!   waiters (or fewer, if fast acquirers took the permits, which is as good).
//!
//! # Orderings
//!
//! Taking a permit is `Acquire` and giving one back is `Release`: whoever takes a permit
//! sees everything the process that released it wrote before the release (every other
//! change of the word is a read-modify-write, which continues the release sequence).
//! Registration and unregistration need no ordering of their own (`Relaxed`): the kernel
//! compares the low half atomically with going to sleep.
//!
//! # Processes that die
//!
//! Every change is one atomic instruction, so a process killed anywhere leaves a
//! consistent word. But a semaphore counts, it does not know owners: **permits held by
//! a process that dies are not given back** (as in Python); release them from another
//! process if you know they are lost. A waiter killed while registered leaves
//! `sleepers` one too high: every later release then makes one `FUTEX_WAKE` system call
//! that may wake nobody (about a microsecond), and nothing else changes. A waiter killed
//! just after a release woke it takes that wake-up with it: the permit stays available,
//! but another sleeper may sleep on until the next release or its timeout.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::heap::{try_default_heap, Heap};

use super::futex;
use super::state::{spin_until, SharedState, StateHandle};

const VALUE_MASK: u64 = 0xffff_ffff;
/// One registered sleeper, in the high half.
const SLEEPER: u64 = 1 << 32;

/// A semaphore's shared memory (both kinds).
#[repr(C)]
pub(crate) struct RawSemaphore {
    word: AtomicU64,
    limit: AtomicU32,
    _reserved: AtomicU32,
}

// The layout the module docs describe (and a named heap's directory records).
const _: () = {
    assert!(std::mem::size_of::<RawSemaphore>() == 16);
    assert!(std::mem::offset_of!(RawSemaphore, word) == 0);
    assert!(std::mem::offset_of!(RawSemaphore, limit) == 8);
    assert!(std::mem::offset_of!(RawSemaphore, _reserved) == 12);
};

// SAFETY: `#[repr(C)]`, only atomics.
unsafe impl SharedState for RawSemaphore {}

#[inline]
fn value(w: u64) -> u32 {
    (w & VALUE_MASK) as u32
}

impl RawSemaphore {
    fn init(&self, value: u32, limit: u32) {
        self.word.store(u64::from(value), Ordering::Relaxed);
        self.limit.store(limit, Ordering::Relaxed);
        self._reserved.store(0, Ordering::Relaxed);
    }

    /// One attempt at taking a permit.
    #[inline]
    fn try_fast(&self) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        value(w) > 0
            && self
                .word
                .compare_exchange(w, w - 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    fn try_acquire(&self) -> bool {
        let mut w = self.word.load(Ordering::Relaxed);
        while value(w) > 0 {
            match self
                .word
                .compare_exchange(w, w - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => w = actual,
            }
        }
        false
    }

    /// Waits for a permit until `deadline` (forever if `None`).
    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> bool {
        if spin_until(|| self.try_acquire()) {
            return true;
        }
        // Register as a sleeper, or take a permit that came meanwhile.
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            let (new, taken) = if value(w) > 0 {
                (w - 1, true)
            } else {
                (w.wrapping_add(SLEEPER), false)
            };
            match self
                .word
                .compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if taken => return true,
                Ok(_) => break,
                Err(actual) => w = actual,
            }
        }
        loop {
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return self.unregister(),
                },
            };
            futex::wait_low(&self.word, 0, timeout);
            // Take a permit and unregister in one step, if there is one.
            let mut w = self.word.load(Ordering::Relaxed);
            while value(w) > 0 {
                match self.word.compare_exchange(
                    w,
                    (w - 1).wrapping_sub(SLEEPER),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(actual) => w = actual,
                }
            }
        }
    }

    /// A registered waiter gives up: unregisters, or takes a permit if one came.
    fn unregister(&self) -> bool {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            let (new, taken) = if value(w) > 0 {
                ((w - 1).wrapping_sub(SLEEPER), true)
            } else {
                (w.wrapping_sub(SLEEPER), false)
            };
            match self
                .word
                .compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return taken,
                Err(actual) => w = actual,
            }
        }
    }

    fn acquire(&self) {
        if !self.try_fast() {
            self.acquire_slow(None);
        }
    }

    fn acquire_timeout(&self, timeout: Duration) -> bool {
        if self.try_fast() {
            return true;
        }
        if timeout.is_zero() {
            return self.try_acquire();
        }
        self.acquire_slow(Instant::now().checked_add(timeout))
    }

    fn release(&self) -> Result<()> {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if value(w) >= limit {
                return Err(Error::SemaphoreOverflow);
            }
            match self
                .word
                .compare_exchange(w, w + 1, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if w >= SLEEPER {
                        futex::wake_low(&self.word, 1);
                    }
                    return Ok(());
                }
                Err(actual) => w = actual,
            }
        }
    }

    fn value(&self) -> u32 {
        value(self.word.load(Ordering::Relaxed))
    }
}

/// A counting semaphore: Python's `multiprocessing.Semaphore`, shared by every process
/// forked after its creation (and, in a named heap, every process that opens it).
///
/// [`acquire`](Semaphore::acquire) takes a permit, sleeping in the kernel (a shared
/// futex) while there is none; [`release`](Semaphore::release) gives one back, from any
/// thread of any process — a semaphore counts, it does not know owners. Permits held by
/// a process that dies are **not** given back (as in Python). The state is one 64-bit
/// word (value and registered sleepers) changed only by compare-and-swap; uncontended,
/// `acquire` and `release` are one compare-and-swap each and make no system call (the
/// layout and orderings are described in `src/sync/semaphore.rs`).
///
/// # Processes that die
///
/// A process killed anywhere leaves the semaphore consistent, but keeps its permits:
/// release them from another process if you know they are lost. A waiter killed while
/// asleep leaves the count of sleepers one too high, so every later release makes one
/// futex wake-up system call (about a microsecond) that may wake nobody; and one killed
/// just as a release woke it takes that wake-up along, so another sleeper may sleep on,
/// with the permit available, until the next release or its timeout.
///
/// ```
/// use sharedctypes::{Process, Semaphore, Value};
///
/// // At most two of the four children in the section at once.
/// let sem = Semaphore::new(2)?;
/// let inside = Value::new(0u32)?; // how many are in it now
/// let most = Value::new(0u32)?; // the most there ever were
/// let children = (0..4)
///     .map(|_| {
///         let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
///         Process::spawn(move || {
///             sem.acquire();
///             let now = inside.update(|n| n + 1);
///             most.update(|m| m.max(now));
///             std::thread::sleep(std::time::Duration::from_millis(5));
///             inside.update(|n| n - 1);
///             sem.release().unwrap();
///         })
///     })
///     .collect::<Result<Vec<_>, _>>()?;
/// for child in children {
///     child.join()?;
/// }
/// assert!(most.get() <= 2);
/// assert_eq!(sem.value(), 2); // every permit came back
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    handle: StateHandle<RawSemaphore>,
}

impl Semaphore {
    /// A new semaphore with `value` permits, in the [default heap](crate::default_heap).
    ///
    /// ```
    /// let sem = sharedctypes::Semaphore::new(3)?;
    /// assert_eq!(sem.value(), 3);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new(value: u32) -> Result<Semaphore> {
        Semaphore::new_in(try_default_heap()?, value)
    }

    /// A new semaphore with `value` permits, in `heap`.
    ///
    /// ```
    /// use sharedctypes::{Heap, Semaphore};
    ///
    /// let heap = Heap::new(4096)?;
    /// let sem = Semaphore::new_in(&heap, 1)?;
    /// assert_eq!(sem.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap, value: u32) -> Result<Semaphore> {
        Semaphore::with_limit(heap, value, u32::MAX)
    }

    fn with_limit(heap: &Heap, value: u32, limit: u32) -> Result<Semaphore> {
        Ok(Semaphore {
            handle: StateHandle::new_in(heap, |s: &RawSemaphore| s.init(value, limit))?,
        })
    }

    /// Takes a permit, waiting (asleep, after a brief spin) until one is released if
    /// there is none.
    ///
    /// ```
    /// use sharedctypes::{Process, Semaphore};
    ///
    /// let sem = Semaphore::new(0)?;
    /// let child = {
    ///     let sem = sem.clone();
    ///     Process::spawn(move || sem.release().unwrap())?
    /// };
    /// sem.acquire(); // sleeps until the child releases
    /// assert_eq!(sem.value(), 0);
    /// child.join()?;
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) {
        self.handle.state().acquire();
    }

    /// Takes a permit if there is one, without waiting (Python's
    /// `acquire(block=False)`).
    ///
    /// ```
    /// let sem = sharedctypes::Semaphore::new(1)?;
    /// assert!(sem.try_acquire());
    /// assert!(!sem.try_acquire());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.handle.state().try_acquire()
    }

    /// Waits at most `timeout` for a permit: `true` when one was taken, `false` when the
    /// time ran out. A zero timeout only tries.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sem = sharedctypes::Semaphore::new(0)?;
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    /// sem.release()?;
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.handle.state().acquire_timeout(timeout)
    }

    /// Gives a permit back and wakes one waiter, if any sleeps. Any thread of any process
    /// may release. `Err(Error::SemaphoreOverflow)`, changing nothing, when the value is
    /// already `u32::MAX`.
    ///
    /// ```
    /// use sharedctypes::{Error, Semaphore};
    ///
    /// let sem = Semaphore::new(0)?;
    /// sem.release()?;
    /// assert_eq!(sem.value(), 1);
    /// let full = Semaphore::new(u32::MAX)?;
    /// assert!(matches!(full.release(), Err(Error::SemaphoreOverflow)));
    /// assert_eq!(full.value(), u32::MAX);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        self.handle.state().release()
    }

    /// The permits available now (Python's `get_value()`); other processes may change
    /// it at any moment.
    ///
    /// ```
    /// let sem = sharedctypes::Semaphore::new(2)?;
    /// sem.acquire();
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn value(&self) -> u32 {
        self.handle.state().value()
    }

    /// The heap the semaphore lives in.
    ///
    /// ```
    /// use sharedctypes::{default_heap, Semaphore};
    ///
    /// assert_eq!(Semaphore::new(1)?.heap(), default_heap());
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
    /// `offset` must be in bounds of `heap` for a semaphore's state and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Semaphore {
        Semaphore {
            // SAFETY: the caller's obligation is `from_offset`'s.
            handle: unsafe { StateHandle::from_offset(heap, offset) },
        }
    }
}

impl PartialEq for Semaphore {
    /// Equal when both name the same semaphore (same heap, same offset), however
    /// reached.
    ///
    /// ```
    /// use sharedctypes::Semaphore;
    ///
    /// let a = Semaphore::new(1)?;
    /// assert!(a == a.clone());
    /// assert!(a != Semaphore::new(1)?);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn eq(&self, other: &Semaphore) -> bool {
        self.handle.same(&other.handle)
    }
}

impl Eq for Semaphore {}

impl fmt::Debug for Semaphore {
    /// Shows the value.
    ///
    /// ```
    /// let sem = sharedctypes::Semaphore::new(3)?;
    /// assert_eq!(format!("{sem:?}"), "Semaphore { value: 3 }");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

/// A semaphore whose value never exceeds its initial value: Python's
/// `multiprocessing.BoundedSemaphore`.
///
/// The same as a [`Semaphore`], except that a [`release`](BoundedSemaphore::release)
/// that would raise the value above the initial one is
/// `Err(Error::SemaphoreOverflow)` and changes nothing (Python raises `ValueError`): it
/// catches a release without a matching acquire. Permits held by a process that dies
/// are not given back, so its bound is then never reached again.
///
/// ```
/// use sharedctypes::{BoundedSemaphore, Error, Process};
///
/// let slots = BoundedSemaphore::new(2)?;
/// slots.acquire();
/// let child = {
///     let slots = slots.clone();
///     Process::spawn(move || slots.release().unwrap())? // any process may release
/// };
/// child.join()?;
/// assert_eq!(slots.value(), 2);
/// assert!(matches!(slots.release(), Err(Error::SemaphoreOverflow))); // one too many
/// assert_eq!(slots.value(), 2);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl BoundedSemaphore {
    /// A new bounded semaphore with `value` permits, which is also its bound, in the
    /// [default heap](crate::default_heap).
    ///
    /// ```
    /// let sem = sharedctypes::BoundedSemaphore::new(1)?;
    /// assert_eq!(sem.value(), 1);
    /// assert!(sem.release().is_err()); // already at its bound
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        BoundedSemaphore::new_in(try_default_heap()?, value)
    }

    /// A new bounded semaphore with `value` permits, which is also its bound, in
    /// `heap`.
    ///
    /// ```
    /// use sharedctypes::{BoundedSemaphore, Heap};
    ///
    /// let heap = Heap::new(4096)?;
    /// let sem = BoundedSemaphore::new_in(&heap, 4)?;
    /// assert_eq!(sem.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap, value: u32) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore {
            inner: Semaphore::with_limit(heap, value, value)?,
        })
    }

    /// Takes a permit, waiting until one is released if there is none; see
    /// [`Semaphore::acquire`].
    ///
    /// ```
    /// let sem = sharedctypes::BoundedSemaphore::new(1)?;
    /// sem.acquire();
    /// assert_eq!(sem.value(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) {
        self.inner.acquire();
    }

    /// Takes a permit if there is one, without waiting.
    ///
    /// ```
    /// let sem = sharedctypes::BoundedSemaphore::new(1)?;
    /// assert!(sem.try_acquire());
    /// assert!(!sem.try_acquire());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.inner.try_acquire()
    }

    /// Waits at most `timeout` for a permit: `true` when one was taken.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sem = sharedctypes::BoundedSemaphore::new(1)?;
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.inner.acquire_timeout(timeout)
    }

    /// Gives a permit back and wakes one waiter, if any sleeps.
    /// `Err(Error::SemaphoreOverflow)`, changing nothing, if the value would pass the
    /// initial value.
    ///
    /// ```
    /// use sharedctypes::{BoundedSemaphore, Error};
    ///
    /// let sem = BoundedSemaphore::new(1)?;
    /// sem.acquire();
    /// sem.release()?;
    /// assert!(matches!(sem.release(), Err(Error::SemaphoreOverflow)));
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        self.inner.release()
    }

    /// The permits available now.
    ///
    /// ```
    /// let sem = sharedctypes::BoundedSemaphore::new(2)?;
    /// assert_eq!(sem.value(), 2);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn value(&self) -> u32 {
        self.inner.value()
    }

    /// The heap the semaphore lives in.
    ///
    /// ```
    /// use sharedctypes::{default_heap, BoundedSemaphore};
    ///
    /// assert_eq!(BoundedSemaphore::new(1)?.heap(), default_heap());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn heap(&self) -> &Heap {
        self.inner.heap()
    }

    pub(crate) fn offset(&self) -> usize {
        self.inner.offset()
    }

    /// # Safety
    ///
    /// `offset` must be in bounds of `heap` for a semaphore's state and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            // SAFETY: the caller's obligation is `from_offset`'s.
            inner: unsafe { Semaphore::from_offset(heap, offset) },
        }
    }
}

impl fmt::Debug for BoundedSemaphore {
    /// Shows the value and the bound.
    ///
    /// ```
    /// let sem = sharedctypes::BoundedSemaphore::new(3)?;
    /// sem.acquire();
    /// assert_eq!(format!("{sem:?}"), "BoundedSemaphore { value: 2, bound: 3 }");
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = self.inner.handle.state().limit.load(Ordering::Relaxed);
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &bound)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sem(value: u32, limit: u32) -> RawSemaphore {
        let s = RawSemaphore {
            word: AtomicU64::new(0),
            limit: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
        };
        s.init(value, limit);
        s
    }

    #[test]
    fn a_release_passes_sleepers_by() {
        let s = sem(0, 2);
        s.word.store(3 * SLEEPER, Ordering::Relaxed);
        s.release().unwrap();
        assert_eq!(s.word.load(Ordering::Relaxed), 3 * SLEEPER + 1);
        s.release().unwrap();
        assert!(matches!(s.release(), Err(Error::SemaphoreOverflow)));
        assert_eq!(s.word.load(Ordering::Relaxed), 3 * SLEEPER + 2);
    }

    #[test]
    fn a_timed_out_waiter_unregisters_or_takes_the_permit() {
        let s = sem(0, u32::MAX);
        s.word.store(2 * SLEEPER, Ordering::Relaxed);
        assert!(!s.unregister());
        assert_eq!(s.word.load(Ordering::Relaxed), SLEEPER);
        s.release().unwrap();
        assert!(s.unregister(), "a permit that came is taken");
        assert_eq!(s.word.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn acquire_never_takes_from_sleepers() {
        let s = sem(0, u32::MAX);
        s.word.store(SLEEPER, Ordering::Relaxed);
        assert!(!s.try_acquire());
        assert_eq!(s.word.load(Ordering::Relaxed), SLEEPER);
    }
}
