//! [`Condition`]: a process-shared condition variable with Python's semantics.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::heap::{try_default_heap, Heap};

use super::raw_lock::{self, RawLock, OWNER_MASK, TID_MASK};
use super::state::{spin_until, SharedState, StateHandle};
use super::thread_id::{self, Me};
use super::{futex, LockGuard, LockResult, OwnerDied, RLockGuard};

/// How many threads may wait on one [`Condition`] at once before further waiters
/// queue for a slot.
///
/// ```
/// assert!(sharedctypes::sync::MAX_WAITERS >= 64);
/// ```
pub const MAX_WAITERS: usize = 128;

const NOTIFIED: u64 = 1 << 30;
const SLEEPING: u64 = 1 << 31;

/// A condition's shared memory.
#[repr(C)]
pub(crate) struct ConditionState {
    high_water: AtomicU32,
    /// Waiters that found every slot taken.
    overflow: AtomicU32,
    /// Bumped by a notify that reaches the overflow waiters (their futex word).
    overflow_seq: AtomicU32,
    _reserved: AtomicU32,
    slots: [AtomicU64; MAX_WAITERS],
}

/// Whether a [`Condition::wait_timeout`] returned because its time ran out (like
/// [`std::sync::WaitTimeoutResult`]).
///
/// ```
/// use std::time::Duration;
/// use sharedctypes::{Condition, Lock};
///
/// let (lock, cond) = (Lock::new()?, Condition::new()?);
/// let (_guard, result) = cond.wait_timeout(lock.acquire()?, Duration::from_millis(5))?;
/// assert!(result.timed_out()); // nobody notified
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait ended because its timeout elapsed (for the `_while` forms:
    /// with the condition still true).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::{Condition, Value};
    ///
    /// let (v, cond) = (Value::new(0u8)?, Condition::new()?);
    /// let (g, r) = cond.wait_timeout_while(v.lock()?, Duration::ZERO, |g| g.get() == 0)?;
    /// assert!(r.timed_out() && g.get() == 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A guard a [`Condition`] can wait with: [`LockGuard`], [`RLockGuard`] (at any depth),
/// [`ValueGuard`](crate::ValueGuard) and [`ArrayGuard`](crate::ArrayGuard). Sealed.
///
/// ```
/// use sharedctypes::{Condition, ConditionGuard, Lock};
///
/// fn nap<G: ConditionGuard>(cond: &Condition, guard: G) -> G {
///     let (guard, _) = cond
///         .wait_timeout(guard, std::time::Duration::from_millis(1))
///         .unwrap_or_else(|died| died.into_inner());
///     guard
/// }
///
/// let (lock, cond) = (Lock::new()?, Condition::new()?);
/// let guard = nap(&cond, lock.acquire()?);
/// drop(guard);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a guard of a sharedctypes lock",
    label = "a `Condition` waits with the guard of a `Lock`, `RLock`, `Value` or `Array`",
    note = "a condition releases the lock while it waits and takes it back before it \
            returns, so it needs the guard of a process-shared lock of this crate"
)]
pub trait ConditionGuard: crate::sealed::Sealed {
    /// The lock behind the guard and the thread that holds it.
    #[doc(hidden)]
    fn __lock(&self) -> (&RawLock, Me);
    /// Records the word the lock was retaken with.
    #[doc(hidden)]
    fn __retaken(&mut self, word: u64);
}

impl crate::sealed::Sealed for LockGuard<'_> {}
impl ConditionGuard for LockGuard<'_> {
    fn __lock(&self) -> (&RawLock, Me) {
        self.raw_parts()
    }
    fn __retaken(&mut self, word: u64) {
        self.set_held(word);
    }
}

impl crate::sealed::Sealed for RLockGuard<'_> {}
impl ConditionGuard for RLockGuard<'_> {
    fn __lock(&self) -> (&RawLock, Me) {
        self.raw_parts()
    }
    fn __retaken(&mut self, word: u64) {
        self.set_held(word);
    }
}

/// A process-shared condition variable (Python's `multiprocessing.Condition`, in the
/// shape of [`std::sync::Condvar`]): wait, with the guard of any of this crate's locks,
/// until another thread or process notifies.
///
/// Python's semantics, not std's: a wait returns only when notified or timed out (no
/// spurious wake-ups), and [`notify(n)`](Condition::notify) wakes at most `n` of the
/// threads already waiting when it is called. Change the shared state under the lock,
/// then notify: a waiter that checked the state under the lock cannot miss it. See
/// *Design* below, and its limits (a waiter killed while waiting may swallow one
/// notification).
///
/// ```
/// use sharedctypes::{Condition, Process, Value};
///
/// let ready = Value::new(0u32)?;
/// let cond = Condition::new()?;
/// let child = {
///     let (ready, cond) = (ready.clone(), cond.clone());
///     Process::spawn(move || {
///         let g = ready.lock().unwrap();
///         let g = cond.wait_while(g, |g| g.get() == 0).unwrap();
///         assert_eq!(g.get(), 42);
///     })?
/// };
/// {
///     let g = ready.lock()?;
///     g.set(42);
///     cond.notify_all();
/// }
/// child.join()?;
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// # Design
///
/// A condition is a small table of *waiter slots* in shared memory, found by offset in
/// its heap like a lock:
///
/// ```text
/// high_water   : u32        slots ever used (a notify scans slots[..high_water])
/// overflow     : u32        waiters that found every slot taken
/// overflow_seq : u32        bumped by a notify that reaches them (their futex word)
/// reserved     : u32
/// slots        : [u64; 128] one per waiting thread:
///              0 = free; otherwise the waiter's owner bits (TID and start time,
///              as in a lock word: bits 0..=29 and 39..=63) plus
///              bit 30  NOTIFIED  set by a notify, once
///              bit 31  SLEEPING  the waiter may be in FUTEX_WAIT on the low half
/// ```
///
/// - **wait**: while still holding the lock, the waiter claims a free slot with a CAS
///   (`0 → owner bits`); then it releases the lock completely (an [`RLock`] at any
///   depth, the depth kept aside) and sleeps on its own slot until `NOTIFIED` is set or
///   its deadline passes. A waiter that times out frees its slot with a CAS from the
///   un-notified word; if that CAS fails, a notify got there first and the wait counts
///   as notified. Then it takes the lock again (a holder that died or panicked in the
///   meantime is reported as [`OwnerDied`]) and restores the depth.
/// - **notify(n)**: scans the slots and sets `NOTIFIED` on up to `n` waiting ones by
///   CAS, waking each that sleeps. Only slots claimed before the scan are seen: a
///   notify wakes at most `n` of the waiters *already waiting*, never a later one, and a
///   waiter returns only when notified or timed out — no spurious wake-ups (Python's
///   semantics, stronger than std's `Condvar`).
/// - **No lost wake-up**: a waiter claims its slot *before* releasing the lock, so a
///   notifier that changes the shared state under the lock (as it must) and then
///   notifies always finds it, even if the waiter has not gone to sleep yet: the
///   futex compare sees `NOTIFIED` and returns at once.
/// - Slot claims and the notify scan are `SeqCst`, so a notify made *without* the lock,
///   after the waiter's slot claim, is not missed either.
///
/// # Limits
///
/// - Up to [`MAX_WAITERS`] threads wait on one condition with the exact semantics
///   above. When every slot is taken (slots of waiters that died are reclaimed first),
///   further waiters count themselves in `overflow` and sleep on `overflow_seq`, which a
///   notify that found fewer than `n` slot waiters bumps: then *every* overflow waiter
///   wakes, so beyond [`MAX_WAITERS`] waiters `notify(n)` may wake more than `n` (std's
///   `Condvar` semantics; [`Condition::wait_while`] copes either way).
/// - A waiter killed while waiting may swallow one notification (as in Python): the
///   notify that picks its slot wakes nobody. One killed while counted in `overflow`
///   stays counted: every later notify that finds fewer than `n` slot waiters counts
///   it as woken.
/// - A waiter whose slot is taken from it while it sleeps — freed by a waiter that
///   judged it dead (possible for a waiter in a child of another PID namespace, see
///   the [module docs](crate::sync#namespaces)), or rewritten by another process — returns
///   as if notified: the one spurious wake-up, where sleeping on could last forever.
///
/// [`RLock`]: crate::RLock
#[derive(Clone)]
pub struct Condition {
    handle: StateHandle<ConditionState>,
}

// SAFETY: `ConditionState` is a `#[repr(C)]` struct of atomics only.
unsafe impl SharedState for ConditionState {}

impl Condition {
    /// A new condition in the [default heap](crate::default_heap).
    ///
    /// ```
    /// let a = sharedctypes::Condition::new()?;
    /// assert!(a == a.clone() && a != sharedctypes::Condition::new()?);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new() -> Result<Condition> {
        Condition::new_in(try_default_heap()?)
    }

    /// A new condition in `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(1 << 16)?;
    /// let cond = sharedctypes::Condition::new_in(&heap)?;
    /// assert_eq!(cond.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap) -> Result<Condition> {
        Ok(Condition {
            handle: StateHandle::new_in(heap, |_| {})?,
        })
    }

    /// # Safety
    ///
    /// `offset` must be in bounds of `heap` for a `ConditionState` and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Condition {
        Condition {
            // SAFETY: the caller's obligation is `from_offset`'s.
            handle: unsafe { StateHandle::from_offset(heap, offset) },
        }
    }

    pub(crate) fn offset(&self) -> usize {
        self.handle.offset()
    }

    /// The heap the condition lives in.
    ///
    /// ```
    /// use sharedctypes::{default_heap, Condition};
    /// assert_eq!(Condition::new()?.heap(), default_heap());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn heap(&self) -> &Heap {
        self.handle.heap()
    }

    fn state(&self) -> &ConditionState {
        self.handle.state()
    }

    /// Releases the guard's lock, waits until notified, and takes the lock back.
    /// `Err(OwnerDied)` (holding the guard) if a holder of the lock died or panicked
    /// while this thread waited. An [`RLock`](crate::RLock) held at any depth is
    /// released completely while waiting and restored to that depth after.
    ///
    /// ```
    /// use sharedctypes::{Condition, Process, RLock, RawValue};
    ///
    /// let (lock, cond, flag) = (RLock::new()?, Condition::new()?, RawValue::new(0u8)?);
    /// let child = {
    ///     let (lock, cond, flag) = (lock.clone(), cond.clone(), flag.clone());
    ///     Process::spawn(move || {
    ///         let _outer = lock.acquire().unwrap();
    ///         let mut g = lock.acquire().unwrap(); // depth 2
    ///         while flag.get() == 0 {
    ///             g = cond.wait(g).unwrap(); // releases both levels while waiting
    ///         }
    ///     })?
    /// };
    /// loop {
    ///     let _g = lock.acquire()?; // free whenever the child waits
    ///     flag.set(1);
    ///     cond.notify_one();
    ///     break;
    /// }
    /// child.join()?;
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait<G: ConditionGuard>(&self, guard: G) -> LockResult<G> {
        self.wait_until(guard, None)
            .map(|(g, _)| g)
            .map_err(|died| died.map(|(g, _)| g))
    }

    /// Like [`wait`](Condition::wait), but gives up after `timeout`; the result says
    /// whether it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::{Condition, Lock};
    ///
    /// let (lock, cond) = (Lock::new()?, Condition::new()?);
    /// let (guard, r) = cond.wait_timeout(lock.acquire()?, Duration::from_millis(10))?;
    /// assert!(r.timed_out());
    /// drop(guard);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait_timeout<G: ConditionGuard>(
        &self,
        guard: G,
        timeout: Duration,
    ) -> LockResult<(G, WaitTimeoutResult)> {
        let deadline = Instant::now().checked_add(timeout);
        self.wait_until(guard, deadline)
            .map(|(g, notified)| (g, WaitTimeoutResult(!notified)))
            .map_err(|died| died.map(|(g, notified)| (g, WaitTimeoutResult(!notified))))
    }

    /// Waits while `condition` holds (Python's `wait_for` with the predicate negated,
    /// std's `Condvar::wait_while`): checks it under the lock, waits, checks again.
    /// A holder's death seen on the way is reported once the condition is false.
    ///
    /// ```
    /// use sharedctypes::{Condition, Process, Value};
    ///
    /// let (items, cond) = (Value::new(0u32)?, Condition::new()?);
    /// let producer = {
    ///     let (items, cond) = (items.clone(), cond.clone());
    ///     Process::spawn(move || {
    ///         for _ in 0..3 {
    ///             items.update(|n| n + 1);
    ///             cond.notify_all();
    ///         }
    ///     })?
    /// };
    /// let g = cond.wait_while(items.lock()?, |g| g.get() < 3)?;
    /// assert_eq!(g.get(), 3);
    /// # drop(g);
    /// producer.join()?;
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait_while<G: ConditionGuard>(
        &self,
        guard: G,
        mut condition: impl FnMut(&G) -> bool,
    ) -> LockResult<G> {
        let mut guard = guard;
        let mut died = false;
        while condition(&guard) {
            guard = match self.wait(guard) {
                Ok(g) => g,
                Err(d) => {
                    died = true;
                    d.into_inner()
                }
            };
        }
        if died {
            Err(OwnerDied::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Waits while `condition` holds, for at most `timeout` in all; the result says
    /// whether the time ran out with the condition still true.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::{Condition, Value};
    ///
    /// let (v, cond) = (Value::new(5i32)?, Condition::new()?);
    /// let (g, r) = cond.wait_timeout_while(v.lock()?, Duration::from_millis(5), |g| g.get() > 0)?;
    /// assert!(r.timed_out());
    /// assert_eq!(g.get(), 5);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn wait_timeout_while<G: ConditionGuard>(
        &self,
        guard: G,
        timeout: Duration,
        mut condition: impl FnMut(&G) -> bool,
    ) -> LockResult<(G, WaitTimeoutResult)> {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = guard;
        let mut died = false;
        let mut timed_out = false;
        while condition(&guard) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = true;
                break;
            }
            guard = match self.wait_until(guard, deadline) {
                Ok((g, _)) => g,
                Err(d) => {
                    died = true;
                    d.into_inner().0
                }
            };
        }
        let result = (guard, WaitTimeoutResult(timed_out));
        if died {
            Err(OwnerDied::new(result))
        } else {
            Ok(result)
        }
    }

    /// Wakes one waiting thread, if any (Python's `notify()`).
    ///
    /// ```
    /// sharedctypes::Condition::new()?.notify_one(); // nobody waits: nothing happens
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every thread waiting now (Python's `notify_all()`).
    ///
    /// ```
    /// sharedctypes::Condition::new()?.notify_all();
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn notify_all(&self) {
        self.notify(usize::MAX);
    }

    /// Wakes at most `n` of the threads waiting now (Python's `notify(n)`); returns
    /// how many it woke (a waiter killed while waiting counts, though nobody wakes).
    ///
    /// ```
    /// let cond = sharedctypes::Condition::new()?;
    /// assert_eq!(cond.notify(3), 0); // nobody waits
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn notify(&self, n: usize) -> usize {
        let state = self.state();
        let high = (state.high_water.load(Ordering::SeqCst) as usize).min(MAX_WAITERS);
        let mut woken = 0;
        for slot in &state.slots[..high] {
            if woken >= n {
                break;
            }
            let mut w = slot.load(Ordering::SeqCst);
            while w & TID_MASK != 0 && w & NOTIFIED == 0 {
                match slot.compare_exchange(w, w | NOTIFIED, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => {
                        if w & SLEEPING != 0 {
                            futex::wake_low(slot, 1);
                        }
                        woken += 1;
                        break;
                    }
                    Err(actual) => w = actual,
                }
            }
        }
        if woken < n {
            let overflow = state.overflow.load(Ordering::SeqCst) as usize;
            if overflow > 0 {
                state.overflow_seq.fetch_add(1, Ordering::SeqCst);
                futex::wake(&state.overflow_seq, u32::MAX);
                woken += overflow.min(n - woken);
            }
        }
        woken
    }

    /// The wait itself: `(guard, notified)`.
    fn wait_until<G: ConditionGuard>(
        &self,
        mut guard: G,
        deadline: Option<Instant>,
    ) -> LockResult<(G, bool)> {
        let (lock, me) = guard.__lock();
        // A guard copied into a forked child by a raw fork is not this thread's.
        assert_eq!(
            thread_id::me().owner,
            me.owner,
            "sharedctypes::Condition::wait: the guard belongs to another thread or process"
        );
        let state = self.state();
        let slot = self.claim(me);
        // Without a slot: count in `overflow` and note the sequence, still under the lock.
        let seq = match slot {
            Some(_) => 0,
            None => {
                state.overflow.fetch_add(1, Ordering::SeqCst);
                state.overflow_seq.load(Ordering::SeqCst)
            }
        };
        let depth = lock.unlock_for_wait(me);
        let notified = match slot {
            Some(slot) => self.sleep(slot, me.owner & OWNER_MASK, deadline),
            None => {
                let notified = sleep_overflow(&state.overflow_seq, seq, deadline);
                state.overflow.fetch_sub(1, Ordering::SeqCst);
                notified
            }
        };
        let (word, died) = lock.relock_after_wait(me, depth);
        guard.__retaken(word);
        if died {
            Err(OwnerDied::new((guard, notified)))
        } else {
            Ok((guard, notified))
        }
    }

    /// Claims a free slot for `me` (called with the lock held); `None` when every slot
    /// is taken, even after reclaiming those of dead waiters.
    fn claim(&self, me: Me) -> Option<&AtomicU64> {
        let state = self.state();
        let mine = me.owner & OWNER_MASK;
        for attempt in 0..2 {
            for (i, slot) in state.slots.iter().enumerate() {
                if slot.load(Ordering::Relaxed) != 0 {
                    continue;
                }
                // Raise the scan limit *before* the claim: a notify whose first load
                // follows the claim (in the SeqCst order) then sees both. Raised after,
                // a notify in between would scan short of the claimed slot.
                state.high_water.fetch_max(i as u32 + 1, Ordering::SeqCst);
                if slot
                    .compare_exchange(0, mine, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(slot);
                }
            }
            if attempt == 0 {
                self.reclaim_dead();
            }
        }
        None
    }

    /// Frees the slots of waiters that died (the table was full).
    #[cold]
    fn reclaim_dead(&self) {
        for slot in &self.state().slots {
            let w = slot.load(Ordering::Relaxed);
            if w != 0 && raw_lock::owner_dead(w & !(NOTIFIED | SLEEPING)) {
                let _ = slot.compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }

    /// Sleeps on `slot`, claimed with the owner bits `mine`, until notified (`true`) or
    /// the deadline (`false`); frees it.
    fn sleep(&self, slot: &AtomicU64, mine: u64, deadline: Option<Instant>) -> bool {
        // A notify that comes within a few microseconds costs no system call.
        spin_until(|| slot.load(Ordering::Acquire) & NOTIFIED != 0);
        loop {
            let w = slot.load(Ordering::SeqCst);
            if w & OWNER_MASK != mine {
                // The slot was taken from us while we slept: freed by a waiter that
                // judged us dead (one in another PID namespace reads our TID as
                // another thread's), or rewritten. Its NOTIFIED bit and the slot
                // itself are its new owner's, and a wake-up we took may have been
                // meant for that owner: pass it on. Whether a notify reached us first
                // cannot be told, so return as notified (`wait_while` looks again),
                // where sleeping on could be forever.
                futex::wake_low(slot, u32::MAX);
                return true;
            }
            if w & NOTIFIED != 0 {
                // Free it only if it is still ours (a CAS, not a store: a slot taken
                // from us meanwhile may already be someone else's claim).
                let _ = slot.compare_exchange(w, 0, Ordering::Release, Ordering::Relaxed);
                return true;
            }
            let timeout = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        // Leave unless a notify got here first.
                        if slot
                            .compare_exchange(w, 0, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                        {
                            return false;
                        }
                        continue;
                    }
                },
                None => None,
            };
            if w & SLEEPING == 0
                && slot
                    .compare_exchange(w, w | SLEEPING, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                continue;
            }
            futex::wait_low(slot, (w | SLEEPING) as u32, timeout);
        }
    }
}

/// An overflow waiter's sleep: until `seq` moves past `seen` (`true`) or the deadline.
fn sleep_overflow(seq: &AtomicU32, seen: u32, deadline: Option<Instant>) -> bool {
    loop {
        if seq.load(Ordering::SeqCst) != seen {
            return true;
        }
        let timeout = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return false,
            },
            None => None,
        };
        futex::wait(seq, seen, timeout);
    }
}

impl PartialEq for Condition {
    /// Equal when both name the same condition (same heap, same offset).
    fn eq(&self, other: &Condition) -> bool {
        self.handle.same(&other.handle)
    }
}

impl Eq for Condition {}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = self
            .state()
            .slots
            .iter()
            .filter(|s| {
                let w = s.load(Ordering::Relaxed);
                w & TID_MASK != 0 && w & NOTIFIED == 0
            })
            .count();
        f.debug_struct("Condition")
            .field("waiting", &waiting)
            .finish()
    }
}
