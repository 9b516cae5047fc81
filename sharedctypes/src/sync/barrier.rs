//! [`Barrier`]: a fixed number of parties wait for each other, round after round
//! (Python's `multiprocessing.Barrier`).
//!
//! # The word
//!
//! A barrier is 16 bytes of shared memory (8-aligned), found by offset in its heap.
//! Everything that changes is in one 64-bit atomic word, changed only by
//! compare-and-swap:
//!
//! ```text
//! word    : u64  bits 0..=23   round: +1 (mod 2^24) whenever a round ends — it trips
//!                              (all parties arrived) or is reset
//!                bit 24        BROKEN: this round is broken (abort, a timeout); every
//!                              wait fails until reset() starts a new round
//!                bits 25..=31  history: bit 25 + i is set iff round `round - 1 - i`
//!                              ended broken (was reset) rather than tripped
//!                bits 32..=55  arrived: parties waiting in this round (< parties)
//!                bits 56..=63  breaks: +1 (mod 256) whenever a round ends broken
//! parties : u32  1..=MAX_PARTIES (2^24 - 1); written once, at creation
//! (u32 reserved, zero)
//! ```
//!
//! Waiters sleep in `FUTEX_WAIT` on the word's low half (round, `BROKEN`, history),
//! which changes exactly when their round ends or breaks; arrivals change only the high
//! half, and wake nobody. Rust code only ever accesses the 64-bit atomic; the low half's
//! address is only handed to the kernel, whose 32-bit read is atomic.
//!
//! - **Arrive**: a compare-and-swap `arrived + 1`; the arrival's index is `arrived`
//!   before it (arrival order, as in Python). The last party (`arrived + 1 == parties`)
//!   instead ends the round: one compare-and-swap to the next round with `arrived = 0`
//!   and a history bit 0, then one `FUTEX_WAKE` of everybody (none if it was alone). It
//!   is the round's leader, and never waits.
//! - **Wait**: a brief spin, then `FUTEX_WAIT` on the low half it arrived with, until
//!   the low half differs. Then: the same round with `BROKEN` → `Err(BrokenBarrier)`;
//!   a later round → the waiter's own round is over, and the history says how it ended:
//!   tripped → `Ok`, even if the barrier broke or was reset after that; reset →
//!   `Err(BrokenBarrier)`.
//! - **Timeout**: a compare-and-swap that sets `BROKEN` in the waiter's own round
//!   (then a wake of everybody). If the round ended first, the compare-and-swap fails
//!   and the waiter reports how it ended instead — a round that tripped as the timeout
//!   expired is `Ok`.
//! - **abort()** sets `BROKEN` (and wakes everybody); **reset()** ends the round as
//!   broken (`arrived = 0`, `BROKEN` cleared, history bit 1, `breaks + 1`) and wakes its
//!   waiters, which get `Err(BrokenBarrier)`; a barrier that is neither broken nor
//!   entered is left alone. Unlike Python's, a reset barrier is usable at once: new
//!   arrivals start the next round while the old round's waiters are still waking up.
//!
//! Why a history: a waiter's round is over once the round number moved on, but the
//! waiter may be slow to look, and meanwhile further rounds may come and go (with more
//! processes than parties, or after a reset). The last seven endings are kept in the
//! word itself, so a waiter up to seven rounds late reads its own round's ending
//! exactly. One later still reads `breaks`: unchanged since it arrived means no round
//! ended broken since, so its own tripped (`Ok`); changed, it cannot tell and reports
//! `Err(BrokenBarrier)` — the safe answer, since proceeding past an unmet barrier is
//! worse than a spurious error. That needs a waiter descheduled for eight whole rounds
//! of a barrier that was also reset meanwhile. A waiter that is not scheduled at all
//! while the round number wraps (2^24 rounds) could take the word for its own round's
//! again: the only ABA, like the lock's.
//!
//! # Orderings
//!
//! Every arrival's compare-and-swap is `AcqRel`, and each continues the release
//! sequence of the ones before it, so the leader's compare-and-swap (`AcqRel`)
//! synchronises with every party's arrival; waiters load the word with `Acquire`, so
//! each party returning `Ok` sees everything every party wrote before calling `wait`.
//!
//! # Processes that die
//!
//! Every change is one compare-and-swap, so a process killed anywhere leaves a
//! consistent word: either it arrived or it did not. A party that dies while waiting
//! (or before arriving) does not come back: **the others wait until their timeout**,
//! which breaks the barrier (as in Python, where `wait()` without a timeout then waits
//! forever). A broken barrier stays broken until someone calls `reset()`.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::heap::{try_default_heap, Heap};

use super::futex;
use super::state::{spin_until, SharedState, StateHandle};

const ROUND_MASK: u64 = 0x00ff_ffff;
const BROKEN: u64 = 1 << 24;
const HISTORY_SHIFT: u32 = 25;
const HISTORY_LEN: u64 = 7;
const HISTORY_MASK: u64 = 0x7f << HISTORY_SHIFT;
const ARRIVED_SHIFT: u32 = 32;
const ARRIVED_MASK: u64 = 0x00ff_ffff << ARRIVED_SHIFT;
/// One arrival, in the `arrived` field.
const ARRIVAL: u64 = 1 << ARRIVED_SHIFT;
const BREAKS_SHIFT: u32 = 56;
const BREAKS_MASK: u64 = 0xff << BREAKS_SHIFT;

/// A barrier's shared memory.
#[repr(C)]
pub(crate) struct RawBarrier {
    word: AtomicU64,
    parties: AtomicU32,
    _reserved: AtomicU32,
}

// The layout the module docs describe (and a named heap's directory records).
const _: () = {
    assert!(std::mem::size_of::<RawBarrier>() == 16);
    assert!(std::mem::offset_of!(RawBarrier, word) == 0);
    assert!(std::mem::offset_of!(RawBarrier, parties) == 8);
    assert!(std::mem::offset_of!(RawBarrier, _reserved) == 12);
};

// SAFETY: `#[repr(C)]`, only atomics.
unsafe impl SharedState for RawBarrier {}

#[inline]
fn arrived(w: u64) -> u64 {
    (w & ARRIVED_MASK) >> ARRIVED_SHIFT
}

/// The futex half of the word.
#[inline]
fn low(w: u64) -> u32 {
    w as u32
}

/// The word that starts the round after `w`'s, which ended broken or tripped.
fn next_round(w: u64, broken: bool) -> u64 {
    let round = w.wrapping_add(1) & ROUND_MASK;
    let mut history = ((w & HISTORY_MASK) << 1) & HISTORY_MASK;
    let mut breaks = w & BREAKS_MASK;
    if broken {
        history |= 1 << HISTORY_SHIFT;
        breaks = breaks.wrapping_add(1 << BREAKS_SHIFT);
    }
    round | history | breaks
}

/// How the round of a waiter that arrived with word `arrived` ended, seen from the word
/// `now`, whose low half differs.
fn outcome(arrived: u64, now: u64) -> Result<()> {
    let late = now.wrapping_sub(arrived) & ROUND_MASK;
    let broken = if late == 0 {
        // Still its round, and the low half changed: only `BROKEN` can have.
        true
    } else if late <= HISTORY_LEN {
        now >> (HISTORY_SHIFT as u64 + late - 1) & 1 != 0
    } else {
        now & BREAKS_MASK != arrived & BREAKS_MASK
    };
    if broken {
        Err(Error::BrokenBarrier)
    } else {
        Ok(())
    }
}

impl RawBarrier {
    fn init(&self, parties: u32) {
        self.word.store(0, Ordering::Relaxed);
        self.parties.store(parties, Ordering::Relaxed);
        self._reserved.store(0, Ordering::Relaxed);
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<BarrierWaitResult> {
        // A `parties` of 0 (a corrupted named heap) trips at every arrival: no hang; one
        // too large is capped, so `arrived` never spills into `breaks`.
        let parties =
            u64::from(self.parties.load(Ordering::Relaxed)).min(Barrier::MAX_PARTIES as u64);
        let mut w = self.word.load(Ordering::Relaxed);
        let arrival = loop {
            if w & BROKEN != 0 {
                return Err(Error::BrokenBarrier);
            }
            let index = arrived(w);
            let (new, leader) = if index + 1 >= parties {
                (next_round(w, false), true)
            } else {
                (w.wrapping_add(ARRIVAL), false)
            };
            match self
                .word
                .compare_exchange(w, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if leader => {
                    if index > 0 {
                        futex::wake_low(&self.word, u32::MAX);
                    }
                    return Ok(BarrierWaitResult {
                        index: index as usize,
                        leader: true,
                    });
                }
                Ok(_) => break w,
                Err(actual) => w = actual,
            }
        };
        let result = BarrierWaitResult {
            index: arrived(arrival) as usize,
            leader: false,
        };
        spin_until(|| low(self.word.load(Ordering::Relaxed)) != low(arrival));
        loop {
            let now = self.word.load(Ordering::Acquire);
            if low(now) != low(arrival) {
                return outcome(arrival, now).map(|()| result);
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return self.time_out(arrival).map(|()| result),
                },
            };
            futex::wait_low(&self.word, low(arrival), timeout);
        }
    }

    /// A waiter that arrived with word `arrival` ran out of time: breaks its round,
    /// unless the round ended first.
    fn time_out(&self, arrival: u64) -> Result<()> {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if low(w) != low(arrival) {
                return outcome(arrival, w);
            }
            match self
                .word
                .compare_exchange(w, w | BROKEN, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    futex::wake_low(&self.word, u32::MAX);
                    return Err(Error::BrokenBarrier);
                }
                Err(actual) => w = actual,
            }
        }
    }

    fn abort(&self) {
        let mut w = self.word.load(Ordering::Relaxed);
        while w & BROKEN == 0 {
            match self
                .word
                .compare_exchange(w, w | BROKEN, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if arrived(w) > 0 {
                        futex::wake_low(&self.word, u32::MAX);
                    }
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    fn reset(&self) {
        let mut w = self.word.load(Ordering::Relaxed);
        while w & BROKEN != 0 || arrived(w) > 0 {
            match self.word.compare_exchange(
                w,
                next_round(w, true),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if arrived(w) > 0 {
                        futex::wake_low(&self.word, u32::MAX);
                    }
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    fn n_waiting(&self) -> usize {
        let w = self.word.load(Ordering::Relaxed);
        if w & BROKEN != 0 {
            0
        } else {
            arrived(w) as usize
        }
    }

    fn is_broken(&self) -> bool {
        self.word.load(Ordering::Relaxed) & BROKEN != 0
    }
}

/// A barrier for a fixed number of parties (threads, in any processes): Python's
/// `multiprocessing.Barrier`, in the shape of [`std::sync::Barrier`]. Shared by every
/// process forked after its creation (and, in a named heap, every process that opens
/// it).
///
/// Each [`wait`](Barrier::wait) blocks (asleep, in the kernel) until `parties` calls
/// have arrived, then all of them return and the next round begins. A timeout, an
/// [`abort`](Barrier::abort) or a [`reset`](Barrier::reset) *breaks* the round: its
/// waiters, and every later `wait` until a `reset`, get `Err(Error::BrokenBarrier)`.
/// Rounds are told apart by a round number in one 64-bit word, changed only by
/// compare-and-swap (the layout and orderings are described in `src/sync/barrier.rs`).
///
/// # Processes that die
///
/// A process killed anywhere leaves the barrier consistent: it either arrived or did
/// not. A party that dies while the others wait (or before it arrives) does not come
/// back: **the others wait until their timeout** (as in Python), which breaks the
/// barrier; plain [`wait`](Barrier::wait) waits forever. Use
/// [`wait_timeout`](Barrier::wait_timeout) where a party may die.
///
/// # A waiter that wakes very late
///
/// A party whose round completed gets `Ok` even if the barrier broke or was reset
/// before it woke up. The barrier remembers how the last seven rounds ended; a party
/// that is not scheduled at all while more than seven further rounds complete, *and*
/// the barrier is reset meanwhile, cannot tell and gets `Err(Error::BrokenBarrier)`
/// (never a false `Ok`).
///
/// ```
/// use sharedctypes::{Barrier, Process, RawArray};
///
/// // Four workers (three children and this process) start each phase together.
/// let start = Barrier::new(4)?;
/// let done = RawArray::<u32>::zeroed(4)?;
/// let children = (1..4)
///     .map(|i| {
///         let (start, done) = (start.clone(), done.clone());
///         Process::spawn(move || {
///             for phase in 1..=3 {
///                 start.wait().unwrap();
///                 done[i].set(phase);
///             }
///         })
///     })
///     .collect::<Result<Vec<_>, _>>()?;
/// for phase in 1..=3 {
///     start.wait()?;
///     done[0].set(phase);
/// }
/// for child in children {
///     child.join()?;
/// }
/// assert_eq!(done.to_vec(), [3, 3, 3, 3]);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    handle: StateHandle<RawBarrier>,
}

/// What [`Barrier::wait`] returns to each party of a round that completed.
///
/// ```
/// let barrier = sharedctypes::Barrier::new(1)?;
/// let r = barrier.wait()?;
/// assert!(r.is_leader());
/// assert_eq!(r.index(), 0);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult {
    index: usize,
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this party is the round's leader: exactly one party per round is — the
    /// last to arrive (which is where Python's `Barrier` runs its `action`).
    ///
    /// ```
    /// use sharedctypes::{Barrier, Process, RawValue};
    ///
    /// let barrier = Barrier::new(2)?;
    /// let leaders = RawValue::new(0u32)?;
    /// let child = {
    ///     let (barrier, leaders) = (barrier.clone(), leaders.clone());
    ///     Process::spawn(move || {
    ///         if barrier.wait().unwrap().is_leader() {
    ///             leaders.update(|n| n + 1);
    ///         }
    ///     })?
    /// };
    /// let mine = barrier.wait()?.is_leader();
    /// child.join()?;
    /// assert_eq!(leaders.get() + u32::from(mine), 1);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// The party's place in the round's order of arrival: `0..parties`, distinct within
    /// a round (Python's `wait()` return value); the leader's is `parties - 1`.
    ///
    /// ```
    /// let barrier = sharedctypes::Barrier::new(1)?;
    /// assert_eq!(barrier.wait()?.index(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Barrier {
    /// The most parties a barrier can have: 2^24 - 1, more than the threads one Linux
    /// system can run (its PID space holds at most 2^22).
    ///
    /// ```
    /// use sharedctypes::{Barrier, Error};
    ///
    /// assert!(Barrier::new(Barrier::MAX_PARTIES).is_ok());
    /// let too_many = Barrier::new(Barrier::MAX_PARTIES + 1);
    /// assert!(matches!(too_many, Err(Error::InvalidParties { .. })));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub const MAX_PARTIES: usize = (1 << 24) - 1;

    /// A new barrier for `parties` parties in the [default heap](crate::default_heap).
    /// `Err(Error::InvalidParties)` for 0 parties, or more than
    /// [`MAX_PARTIES`](Barrier::MAX_PARTIES).
    ///
    /// ```
    /// use sharedctypes::{Barrier, Error};
    ///
    /// let barrier = Barrier::new(3)?;
    /// assert_eq!(barrier.parties(), 3);
    /// assert!(matches!(Barrier::new(0), Err(Error::InvalidParties { parties: 0 })));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new(parties: usize) -> Result<Barrier> {
        Barrier::new_in(try_default_heap()?, parties)
    }

    /// A new barrier for `parties` parties in `heap`; errors as [`Barrier::new`].
    ///
    /// ```
    /// use sharedctypes::{Barrier, Heap};
    ///
    /// let heap = Heap::new(4096)?;
    /// let barrier = Barrier::new_in(&heap, 2)?;
    /// assert_eq!(barrier.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap, parties: usize) -> Result<Barrier> {
        let stored = match u32::try_from(parties) {
            Ok(p) if p > 0 && parties <= Barrier::MAX_PARTIES => p,
            _ => return Err(Error::InvalidParties { parties }),
        };
        Ok(Barrier {
            handle: StateHandle::new_in(heap, |s: &RawBarrier| s.init(stored))?,
        })
    }

    /// Waits until all parties have arrived in this round. `Err(Error::BrokenBarrier)`
    /// if the barrier is broken, or breaks while waiting (another party timed out, or
    /// called [`abort`](Barrier::abort) or [`reset`](Barrier::reset)); a round that
    /// completed is `Ok` for each of its parties, even if the barrier broke before they
    /// woke up. Without a timeout, a party that never comes (it died) means waiting
    /// forever: use [`wait_timeout`](Barrier::wait_timeout) where that can happen.
    ///
    /// ```
    /// use sharedctypes::{Barrier, Process};
    ///
    /// let barrier = Barrier::new(2)?;
    /// let child = {
    ///     let barrier = barrier.clone();
    ///     Process::spawn(move || {
    ///         barrier.wait().unwrap();
    ///     })?
    /// };
    /// let r = barrier.wait()?;
    /// assert!(r.index() < 2);
    /// child.join()?;
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait(&self) -> Result<BarrierWaitResult> {
        self.handle.state().wait_until(None)
    }

    /// Waits at most `timeout` for the other parties. A party whose time runs out
    /// **breaks the barrier** and gets `Err(Error::BrokenBarrier)`, as do the other
    /// waiters of its round (Python's `wait(timeout)`); the last party to arrive never
    /// waits, so it succeeds whatever its timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::{Barrier, Error};
    ///
    /// let barrier = Barrier::new(2)?;
    /// let alone = barrier.wait_timeout(Duration::from_millis(10));
    /// assert!(matches!(alone, Err(Error::BrokenBarrier)));
    /// assert!(barrier.is_broken());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<BarrierWaitResult> {
        let deadline = Instant::now().checked_add(timeout);
        self.handle
            .state()
            .wait_until(Some(deadline.unwrap_or_else(far_future)))
    }

    /// Breaks the barrier: the current round's waiters, and every `wait` until a
    /// [`reset`](Barrier::reset), get `Err(Error::BrokenBarrier)`. Aborting a broken
    /// barrier does nothing.
    ///
    /// ```
    /// use sharedctypes::{Barrier, Error};
    ///
    /// let barrier = Barrier::new(2)?;
    /// barrier.abort();
    /// assert!(barrier.is_broken());
    /// assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn abort(&self) {
        self.handle.state().abort();
    }

    /// Returns the barrier to its empty, unbroken state: the current round's waiters
    /// get `Err(Error::BrokenBarrier)`, and the next `wait` starts a new round. A barrier
    /// that is neither broken nor entered is left as it is.
    ///
    /// ```
    /// let barrier = sharedctypes::Barrier::new(1)?;
    /// barrier.abort();
    /// barrier.reset();
    /// assert!(!barrier.is_broken());
    /// assert!(barrier.wait().is_ok());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn reset(&self) {
        self.handle.state().reset();
    }

    /// The number of parties a round needs.
    ///
    /// ```
    /// assert_eq!(sharedctypes::Barrier::new(5)?.parties(), 5);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn parties(&self) -> usize {
        self.handle.state().parties.load(Ordering::Relaxed) as usize
    }

    /// The parties waiting in the current round now (0 when broken); other processes
    /// may change it at any moment.
    ///
    /// ```
    /// use sharedctypes::{Barrier, Process};
    ///
    /// let barrier = Barrier::new(2)?;
    /// assert_eq!(barrier.n_waiting(), 0);
    /// let child = {
    ///     let barrier = barrier.clone();
    ///     Process::spawn(move || {
    ///         barrier.wait().unwrap();
    ///     })?
    /// };
    /// while barrier.n_waiting() == 0 {
    ///     std::thread::yield_now(); // until the child has arrived
    /// }
    /// barrier.wait()?;
    /// child.join()?;
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.handle.state().n_waiting()
    }

    /// Whether the barrier is broken (until [`reset`](Barrier::reset)).
    ///
    /// ```
    /// let barrier = sharedctypes::Barrier::new(3)?;
    /// assert!(!barrier.is_broken());
    /// barrier.abort();
    /// assert!(barrier.is_broken());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn is_broken(&self) -> bool {
        self.handle.state().is_broken()
    }

    /// The heap the barrier lives in.
    ///
    /// ```
    /// use sharedctypes::{default_heap, Barrier};
    ///
    /// assert_eq!(Barrier::new(2)?.heap(), default_heap());
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
    /// `offset` must be in bounds of `heap` for a barrier's state and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Barrier {
        Barrier {
            // SAFETY: the caller's obligation is `from_offset`'s.
            handle: unsafe { StateHandle::from_offset(heap, offset) },
        }
    }
}

/// A deadline no wait reaches (for a timeout too large for `Instant`).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

impl PartialEq for Barrier {
    /// Equal when both name the same barrier (same heap, same offset), however reached.
    ///
    /// ```
    /// use sharedctypes::Barrier;
    ///
    /// let a = Barrier::new(2)?;
    /// assert!(a == a.clone());
    /// assert!(a != Barrier::new(2)?);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn eq(&self, other: &Barrier) -> bool {
        self.handle.same(&other.handle)
    }
}

impl Eq for Barrier {}

impl fmt::Debug for Barrier {
    /// Shows the parties, the waiters and whether it is broken.
    ///
    /// ```
    /// let barrier = sharedctypes::Barrier::new(3)?;
    /// assert_eq!(
    ///     format!("{barrier:?}"),
    ///     "Barrier { parties: 3, n_waiting: 0, is_broken: false }"
    /// );
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("is_broken", &self.is_broken())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn barrier(parties: u32) -> RawBarrier {
        let b = RawBarrier {
            word: AtomicU64::new(0),
            parties: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
        };
        b.init(parties);
        b
    }

    /// Arrives without waiting (as a waiter would before sleeping); the arrival word.
    fn arrive(b: &RawBarrier) -> u64 {
        b.word.fetch_add(ARRIVAL, Ordering::Relaxed)
    }

    fn trip(b: &RawBarrier) {
        let r = b.wait_until(None).expect("the last party trips the round");
        assert!(r.is_leader());
    }

    fn now(b: &RawBarrier) -> u64 {
        b.word.load(Ordering::Relaxed)
    }

    #[test]
    fn a_tripped_round_is_ok_even_after_a_reset() {
        let b = barrier(2);
        let a = arrive(&b);
        trip(&b);
        let tripped = now(&b);
        assert!(outcome(a, tripped).is_ok());
        // The next round is entered, then reset, before the first waiter looks.
        let _second = arrive(&b);
        b.reset();
        assert!(outcome(a, now(&b)).is_ok(), "its own round tripped");
    }

    #[test]
    fn a_reset_round_is_broken_even_after_later_trips() {
        let b = barrier(2);
        let a = arrive(&b);
        b.reset();
        assert!(outcome(a, now(&b)).is_err());
        for _ in 0..HISTORY_LEN - 1 {
            arrive(&b);
            trip(&b);
        }
        assert!(
            outcome(a, now(&b)).is_err(),
            "seven rounds late, still exact"
        );
    }

    #[test]
    fn a_very_late_waiter_falls_back_on_the_break_count() {
        // Tripped, then many rounds with no break: Ok.
        let b = barrier(2);
        let a = arrive(&b);
        for _ in 0..20 {
            trip(&b);
            arrive(&b);
        }
        assert!(outcome(a, now(&b)).is_ok());
        // Tripped, then many rounds with a break among them: cannot tell, so Err.
        b.reset();
        for _ in 0..20 {
            arrive(&b);
            trip(&b);
        }
        assert!(outcome(a, now(&b)).is_err());
    }

    #[test]
    fn a_break_in_the_same_round_is_seen() {
        let b = barrier(3);
        let a = arrive(&b);
        arrive(&b);
        b.abort();
        assert!(outcome(a, now(&b)).is_err());
        assert_eq!(b.n_waiting(), 0);
        assert!(b.wait_until(None).is_err(), "broken until reset");
        b.reset();
        assert!(!b.is_broken());
        assert_eq!(b.n_waiting(), 0);
    }

    #[test]
    fn a_timeout_after_the_trip_is_ok() {
        let b = barrier(2);
        let a = arrive(&b);
        trip(&b);
        assert!(b.time_out(a).is_ok());
        assert!(!b.is_broken());
    }

    #[test]
    fn a_timeout_breaks_its_round() {
        let b = barrier(3);
        let a = arrive(&b);
        let other = arrive(&b);
        assert!(b.time_out(a).is_err());
        assert!(b.is_broken());
        assert!(outcome(other, now(&b)).is_err());
    }

    #[test]
    fn fields_wrap_without_spilling() {
        let w = ROUND_MASK | HISTORY_MASK | BREAKS_MASK | (5 * ARRIVAL);
        let next = next_round(w, true);
        assert_eq!(next & ROUND_MASK, 0);
        assert_eq!(arrived(next), 0);
        assert_eq!(next & BROKEN, 0);
        assert_eq!(next & HISTORY_MASK, HISTORY_MASK);
        assert_eq!(next & BREAKS_MASK, 0);
        // A waiter from just before the wrap reads the right ending.
        assert!(outcome(w, next).is_err());
        assert!(outcome(w & !HISTORY_MASK, next_round(w & !HISTORY_MASK, false)).is_ok());
    }

    #[test]
    fn corrupted_parties_never_hang() {
        let b = barrier(0);
        assert!(b.wait_until(None).unwrap().is_leader());
    }
}
