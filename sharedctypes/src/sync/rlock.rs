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
        let state = self.handle.state();
        if state.try_fast(me).is_some() {
            return Ok(self.first_guard(me));
        }
        match self.finish(me, state.lock_contended(me, None)) {
            Ok(guard) => Ok(guard),
            Err(TryLockError::OwnerDied(died)) => Err(died),
            // Without a deadline, only a recursion count at its limit is refused.
            Err(TryLockError::WouldBlock) => panic!(
                "RLock recursion depth overflow: this thread already holds it u32::MAX times"
            ),
        }
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
        if state.try_fast(me).is_some() {
            return Ok(self.first_guard(me));
        }
        let deadline = Instant::now().checked_add(timeout);
        self.finish(me, state.lock_contended(me, deadline))
    }

    /// Takes the lock only if it is free and clean, or already ours; never checks for a
    /// dead owner.
    pub(crate) fn try_acquire_quiet(&self) -> Option<RLockGuard<'_>> {
        let me = self.handle.me();
        let state = self.handle.state();
        if state.try_fast(me).is_some() {
            Some(self.first_guard(me))
        } else if state.owned_by(me) {
            self.nested_guard(me)
        } else {
            None
        }
    }

    fn finish(&self, me: Me, acquired: Acquired) -> TryLockResult<RLockGuard<'_>> {
        match acquired {
            Acquired::Clean => Ok(self.first_guard(me)),
            Acquired::OwnerDied => Err(TryLockError::OwnerDied(OwnerDied::new(
                self.first_guard(me),
            ))),
            Acquired::Mine => self.nested_guard(me).ok_or(TryLockError::WouldBlock),
            Acquired::Busy => Err(TryLockError::WouldBlock),
        }
    }

    #[inline]
    fn first_guard(&self, me: Me) -> RLockGuard<'_> {
        let state = self.handle.state();
        state.count.store(1, Ordering::Relaxed);
        RLockGuard {
            state,
            me,
            _not_send: PhantomData,
        }
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
        &self.handle.heap
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
        // A guard copied into a forked child is not the child's to release.
        if thread_id::me().owner != self.me.owner {
            return;
        }
        // Nor is a lock taken from this thread (recovered by a waiter that found its
        // word naming a dead thread: the word was rewritten): its word and its depth
        // are the new owner's. The release below expects the word it loads here, so
        // without this check it would free the new owner's hold.
        let held = self.state.word.load(Ordering::Relaxed);
        if held & OWNER_MASK != self.me.owner {
            return;
        }
        let panicking = std::thread::panicking();
        let depth = self.state.count.load(Ordering::Relaxed);
        if depth > 1 {
            if panicking {
                // The outermost critical section did not finish either.
                self.state.poison_held(self.me);
            }
            self.state.count.store(depth - 1, Ordering::Relaxed);
        } else {
            self.state.count.store(0, Ordering::Relaxed);
            self.state.unlock(self.me, held, panicking);
        }
    }
}

impl RLockGuard<'_> {
    /// The lock and its holder, for a condition wait.
    pub(crate) fn raw_parts(&self) -> (&RawLock, Me) {
        (self.state, self.me)
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
            .field("depth", &self.handle.state().count.load(Ordering::Relaxed))
            .finish()
    }
}
