//! [`RLock`]: a process-shared recursive lock that survives its holder's death.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::heap::{try_default_heap, Heap};

use super::raw_lock::{Acquired, LockHandle, RawLock, OWNER_MASK};
use super::thread_id::{self, Me};
use super::{LockResult, OwnerDied, TryLockError, TryLockResult};

/// A process-shared recursive lock (Python's `multiprocessing.RLock`): the thread that
/// holds it may take it again, and it is released when every guard is dropped. Like
/// [`Lock`](super::Lock), it survives its holder's death.
///
/// ```
/// let rlock = sharedctypes::RLock::new()?;
/// let outer = rlock.acquire()?;
/// let inner = rlock.acquire()?; // same thread: fine
/// drop(inner);
/// drop(outer);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    handle: LockHandle,
}

/// Holds an [`RLock`] (one level of recursion); releases it on drop. Not `Send`.
///
/// ```
/// let lock = sharedctypes::RLock::new()?;
/// let free_elsewhere = || std::thread::scope(|s| {
///     s.spawn(|| lock.try_acquire().is_ok()).join().unwrap()
/// });
/// let outer = lock.acquire()?;
/// let inner = lock.acquire()?;
/// drop(outer);
/// assert!(!free_elsewhere()); // one level still held
/// drop(inner);
/// assert!(free_elsewhere()); // every guard dropped: released
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    state: &'a RawLock,
    me: Me,
    /// The word as this guard last saw it held by this thread (taken, nested into, or
    /// retaken after a condition wait). The last level's release CASes from it, so
    /// needs no load; if the word changed since (another guard's condition wait, a
    /// poisoning nested guard, waiters, a recovery by another process), the CAS fails
    /// and the slow path releases the word only if it names this thread.
    held: u64,
    _not_send: PhantomData<*const ()>,
}

impl RLock {
    /// A new recursive lock in the [default heap](crate::default_heap).
    ///
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// let _outer = lock.acquire()?;
    /// assert!(lock.try_acquire().is_ok()); // the holder may take it again
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new() -> Result<RLock> {
        RLock::new_in(try_default_heap()?)
    }

    /// A new recursive lock in `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let lock = sharedctypes::RLock::new_in(&heap)?;
    /// assert_eq!(lock.heap(), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap) -> Result<RLock> {
        Ok(RLock {
            handle: LockHandle::new_in(heap)?,
        })
    }

    /// Waits for the lock; returns at once if this thread already holds it.
    /// `Err(OwnerDied)` (holding the guard) if its previous holder died holding it.
    ///
    /// # Panics
    ///
    /// If this thread already holds it `u32::MAX` times (guards forgotten), as std's
    /// `ReentrantLock::lock` does: a count that deep cannot grow, and waiting would
    /// never end ([`try_acquire`](RLock::try_acquire) and
    /// [`acquire_timeout`](RLock::acquire_timeout) give
    /// `Err(TryLockError::WouldBlock)` instead). A named heap's memory, damaged by
    /// another process of the same user, can claim such a count too. Also as the
    /// [module docs](super#panics) say for every acquiring call.
    ///
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// let a = lock.acquire()?;
    /// let b = lock.acquire()?;
    /// # drop((a, b));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockResult<RLockGuard<'_>> {
        let me = self.handle.me();
        if let Some(held) = self.handle.state().try_fast(me) {
            return Ok(self.first_guard(me, held));
        }
        // The guard is built here, from a word and a flag (see `Lock::acquire`).
        let (held, died) = self.acquire_slow();
        let guard = RLockGuard {
            state: self.handle.state(),
            me,
            held,
            _not_send: PhantomData,
        };
        if died {
            Err(OwnerDied::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// [`acquire`](RLock::acquire) when the fast path failed (held, by this thread or
    /// another): waits, sets the depth, and returns the word held and whether the
    /// previous holder died. Out of line (and given nothing but `self`), so that the
    /// fast path stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn acquire_slow(&self) -> (u64, bool) {
        let me = self.handle.me();
        // The guard `finish` makes is forgotten: its level is handed to the one
        // `acquire` builds.
        let (guard, died) = match self.finish(me, self.handle.state().lock_contended(me, None)) {
            Ok(guard) => (guard, false),
            Err(TryLockError::OwnerDied(died)) => (died.into_inner(), true),
            // Without a deadline, only a recursion count at its limit is refused.
            Err(TryLockError::WouldBlock) => panic!(
                "RLock recursion depth overflow: this thread already holds it u32::MAX times"
            ),
        };
        let held = guard.held;
        std::mem::forget(guard);
        (held, died)
    }

    /// Takes the lock without waiting if it is free or already held by this thread; if
    /// its holder died, takes it over and returns `Err(TryLockError::OwnerDied)` with
    /// the guard (as [`acquire`](RLock::acquire) would, but at once);
    /// `Err(TryLockError::WouldBlock)` if another live thread holds it, or this thread
    /// holds it `u32::MAX` times already (as std's `ReentrantLock::try_lock`).
    ///
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// let g = lock.acquire()?;
    /// assert!(lock.try_acquire().is_ok()); // recursive
    /// # drop(g);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_acquire(&self) -> TryLockResult<RLockGuard<'_>> {
        let me = self.handle.me();
        self.finish(me, self.handle.state().try_lock(me))
    }

    /// Waits at most `timeout` for the lock (returning at once if this thread holds
    /// it); `Err(TryLockError::WouldBlock)` if it did not come free, or this thread
    /// holds it `u32::MAX` times already. A dead holder is recovered at once:
    /// `Err(TryLockError::OwnerDied)` with the guard.
    ///
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// assert!(lock.acquire_timeout(std::time::Duration::from_millis(1)).is_ok());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> TryLockResult<RLockGuard<'_>> {
        let me = self.handle.me();
        let state = self.handle.state();
        if let Some(held) = state.try_fast(me) {
            return Ok(self.first_guard(me, held));
        }
        let deadline = Instant::now().checked_add(timeout);
        self.finish(me, state.lock_contended(me, deadline))
    }

    /// Takes the lock only if it is free and clean, or already ours; never checks for a
    /// dead owner.
    pub(crate) fn try_acquire_quiet(&self) -> Option<RLockGuard<'_>> {
        let me = self.handle.me();
        let state = self.handle.state();
        if let Some(held) = state.try_fast(me) {
            Some(self.first_guard(me, held))
        } else if state.owned_by(me) {
            self.nested_guard(me)
        } else {
            None
        }
    }

    fn finish(&self, me: Me, acquired: Acquired) -> TryLockResult<RLockGuard<'_>> {
        match acquired {
            Acquired::Clean => Ok(self.first_guard_now(me)),
            Acquired::OwnerDied => Err(TryLockError::OwnerDied(OwnerDied::new(
                self.first_guard_now(me),
            ))),
            Acquired::Mine => self.nested_guard(me).ok_or(TryLockError::WouldBlock),
            Acquired::Busy => Err(TryLockError::WouldBlock),
        }
    }

    /// The guard of a first acquisition, which installed the word `held`. Every first
    /// acquisition sets the depth (a released lock keeps its last depth).
    #[inline]
    fn first_guard(&self, me: Me, held: u64) -> RLockGuard<'_> {
        let state = self.handle.state();
        state.count.store(1, Ordering::Relaxed);
        RLockGuard {
            state,
            me,
            held,
            _not_send: PhantomData,
        }
    }

    /// The guard of a first acquisition by a slow path (its word is read back).
    fn first_guard_now(&self, me: Me) -> RLockGuard<'_> {
        let held = self.handle.state().word.load(Ordering::Relaxed);
        self.first_guard(me, held)
    }

    /// One more level; `None` if the count is at `u32::MAX` already: that many guards
    /// held, or a count that another process of the same user wrote into a named heap
    /// (which once made `try_acquire` panic: `tests/fuzz_regressions.rs`).
    fn nested_guard(&self, me: Me) -> Option<RLockGuard<'_>> {
        let state = self.handle.state();
        let depth = state.count.load(Ordering::Relaxed).checked_add(1)?;
        state.count.store(depth, Ordering::Relaxed);
        Some(RLockGuard {
            state,
            me,
            held: state.word.load(Ordering::Relaxed),
            _not_send: PhantomData,
        })
    }

    /// The heap the lock lives in.
    ///
    /// ```
    /// use sharedctypes::{default_heap, Heap, RLock};
    ///
    /// assert_eq!(RLock::new()?.heap(), default_heap());
    /// let heap = Heap::new(4096)?;
    /// assert_eq!(RLock::new_in(&heap)?.heap(), &heap);
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
    /// `offset` must be in bounds of `heap` for a lock and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> RLock {
        RLock {
            // SAFETY: the caller's obligation is `from_offset`'s.
            handle: unsafe { LockHandle::from_offset(heap, offset) },
        }
    }
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // A guard copied into a forked child is not the child's to release (only a
        // fork changes the thread dropping a guard, and every fork changes the fork
        // generation: see `LockGuard`'s drop).
        if self.me.generation != thread_id::fork_generation() {
            return;
        }
        // Two copies of the release, each with `panicking` a constant: the common one
        // then has no poison branches at all.
        if std::thread::panicking() {
            release_panicking(self.state, self.me.owner, self.held);
        } else {
            release(self.state, self.me.owner, self.held, false);
        }
    }
}

/// Gives up one level of the RLock `state`, which the thread with owner bits `owner`
/// took or last saw with word `held`; releases it at the last level. `panicking`: the
/// critical section did not finish (poisons the lock). Given the guard's fields, not
/// the guard, so that the guard never needs an address.
///
/// A lock taken from this thread (recovered by a waiter that found its word naming a
/// dead thread: the word was rewritten) is left alone, word and depth: they are the new
/// owner's. A nested level checks the word before it touches the depth; the last level
/// leaves the depth as it is (the next first acquisition sets it) and CASes from
/// `held`, which fails on any other word, and the slow path then releases only a word
/// naming this thread. So the common release is one load of the depth and one CAS.
#[inline(always)]
fn release(state: &RawLock, owner: u64, held: u64, panicking: bool) {
    let depth = state.count.load(Ordering::Relaxed);
    if depth > 1 {
        if state.word.load(Ordering::Relaxed) & OWNER_MASK != owner {
            return;
        }
        if panicking {
            // The outermost critical section did not finish either.
            state.poison_held(owner);
        }
        state.count.store(depth - 1, Ordering::Relaxed);
    } else {
        state.unlock(owner, held, panicking);
    }
}

#[cold]
#[inline(never)]
fn release_panicking(state: &RawLock, owner: u64, held: u64) {
    release(state, owner, held, true);
}

impl RLockGuard<'_> {
    /// The lock and its holder, for a condition wait.
    pub(crate) fn raw_parts(&self) -> (&RawLock, Me) {
        (self.state, self.me)
    }

    /// Records the word a condition wait took the lock back with.
    pub(crate) fn set_held(&mut self, held: u64) {
        self.held = held;
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}

impl PartialEq for RLock {
    /// Equal when both name the same lock (same heap, same offset), however reached.
    fn eq(&self, other: &RLock) -> bool {
        self.handle.same(&other.handle)
    }
}

impl Eq for RLock {}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner_tid", &self.handle.owner())
            .field(
                "depth",
                // A released lock keeps its last depth (see `release`).
                &match self.handle.owner() {
                    Some(_) => self.handle.state().count.load(Ordering::Relaxed),
                    None => 0,
                },
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::raw_lock::{owner_bits, OWNER_MASK};

    /// A word that no longer names this thread (taken over, or overwritten by another
    /// process) is left alone by the guard's release, which would otherwise free
    /// another owner's lock.
    #[test]
    fn the_last_release_leaves_a_word_naming_another_owner_alone() {
        let heap = Heap::new(4096).unwrap();
        let lock = RLock::new_in(&heap).unwrap();
        let guard = lock.acquire().unwrap();
        let word = &lock.handle.state().word;
        let stranger = owner_bits(1, Some(12345)) | (5 << 32);
        assert_ne!(
            word.load(Ordering::Relaxed) & OWNER_MASK,
            stranger & OWNER_MASK
        );
        word.store(stranger, Ordering::Relaxed);
        drop(guard);
        assert_eq!(
            word.load(Ordering::Relaxed),
            stranger,
            "another owner's word freed"
        );
    }

    /// Nor do stale nested guards touch the new owner's depth.
    #[test]
    fn stale_nested_guards_leave_the_new_owners_depth_alone() {
        let heap = Heap::new(4096).unwrap();
        let lock = RLock::new_in(&heap).unwrap();
        let outer = lock.acquire().unwrap();
        let inner = lock.acquire().unwrap();
        let state = lock.handle.state();
        // Recovered by another process, which holds it at depth 2 itself.
        let stranger = owner_bits(1, Some(12345)) | (5 << 32);
        state.word.store(stranger, Ordering::Relaxed);
        assert_eq!(state.count.load(Ordering::Relaxed), 2);
        drop(inner);
        drop(outer);
        assert_eq!(state.word.load(Ordering::Relaxed), stranger);
        assert_eq!(
            state.count.load(Ordering::Relaxed),
            2,
            "the new owner's depth"
        );
    }

    /// A nested guard dropped last releases the lock, and so does a guard taken before
    /// a condition wait (through another guard) replaced the word.
    #[test]
    fn any_guard_dropped_last_releases() {
        let heap = Heap::new(4096).unwrap();
        let lock = RLock::new_in(&heap).unwrap();
        let outer = lock.acquire().unwrap();
        let inner = lock.acquire().unwrap();
        drop(outer);
        assert!(lock.handle.owner().is_some());
        drop(inner);
        assert_eq!(lock.handle.owner(), None);

        let cond = crate::Condition::new_in(&heap).unwrap();
        let outer = lock.acquire().unwrap();
        let inner = lock.acquire().unwrap();
        let (inner, _) = cond
            .wait_timeout(inner, std::time::Duration::from_millis(1))
            .unwrap();
        drop(inner);
        assert!(lock.handle.owner().is_some(), "one level still held");
        drop(outer); // taken before the wait retook the lock with a new word
        assert_eq!(lock.handle.owner(), None);
    }
}
