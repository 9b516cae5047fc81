//! [`Lock`]: a process-shared, non-recursive lock that survives its holder's death.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::heap::{try_default_heap, Heap};

use super::raw_lock::{Acquired, LockHandle, RawLock};
use super::thread_id::{self, Me};
use super::{LockResult, OwnerDied, TryLockError, TryLockResult};

/// A process-shared, non-recursive lock (Python's `multiprocessing.Lock`) that
/// survives its holder's death.
///
/// Lives in a shared heap, so every process forked after its creation (and, for a
/// named heap, every process that opens it) shares it. Handles are cheap to clone and
/// compare equal when they name the same lock. See the [module docs](super) for the
/// design.
///
/// ```
/// use sharedctypes::{Lock, Process, RawValue};
///
/// let lock = Lock::new()?;
/// let counter = RawValue::new(0u64)?;
/// let children: Vec<_> = (0..4)
///     .map(|_| {
///         let (lock, counter) = (lock.clone(), counter.clone());
///         Process::spawn(move || {
///             for _ in 0..1000 {
///                 let _guard = lock.acquire().unwrap();
///                 counter.update(|c| c + 1);
///             }
///         })
///     })
///     .collect::<Result<_, _>>()?;
/// for child in children {
///     child.join()?;
/// }
/// assert_eq!(counter.get(), 4000);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    handle: LockHandle,
}

/// Holds a [`Lock`]; releases it on drop. Not `Send`: released by the thread that took it.
///
/// ```
/// let lock = sharedctypes::Lock::new()?;
/// {
///     let _guard = lock.acquire()?;
///     assert!(lock.try_acquire().is_err());
/// }
/// assert!(lock.try_acquire().is_ok()); // released when the guard was dropped
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    state: &'a RawLock,
    me: Me,
    /// The word this guard installed (its release CAS expects it).
    held: u64,
    _not_send: PhantomData<*const ()>,
}

impl Lock {
    /// A new lock in the [default heap](crate::default_heap).
    ///
    /// ```
    /// use sharedctypes::Lock;
    ///
    /// let a = Lock::new()?;
    /// let b = Lock::new()?;
    /// assert!(a != b); // two locks
    /// assert!(a == a.clone()); // a clone is a handle to the same lock
    /// let _held = a.acquire()?;
    /// assert!(b.try_acquire().is_ok()); // independent of `a`
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new() -> Result<Lock> {
        Lock::new_in(try_default_heap()?)
    }

    /// A new lock in `heap`.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// let lock = sharedctypes::Lock::new_in(&heap)?;
    /// assert!(lock.try_acquire().is_ok());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new_in(heap: &Heap) -> Result<Lock> {
        Ok(Lock {
            handle: LockHandle::new_in(heap)?,
        })
    }

    /// Waits for the lock. `Err(OwnerDied)` (holding the guard) if its previous
    /// holder died holding it.
    ///
    /// # Panics
    ///
    /// If the calling thread already holds this lock (that would wait forever); use an
    /// [`RLock`](super::RLock) for re-entrant locking.
    ///
    /// ```
    /// let lock = sharedctypes::Lock::new()?;
    /// let guard = lock.acquire()?;
    /// assert!(lock.try_acquire().is_err());
    /// drop(guard);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockResult<LockGuard<'_>> {
        let me = self.handle.me();
        if let Some(held) = self.handle.state().try_fast(me) {
            return Ok(self.guard(me, held));
        }
        // The guard is built here, from a word and a flag: a slow path returning a
        // whole guard (or a fast path sharing its result with the slow one) would pass
        // the guard through memory on the fast path too.
        let (held, died) = self.acquire_slow();
        let guard = self.guard(me, held);
        if died {
            Err(OwnerDied::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// [`acquire`](Lock::acquire) when the fast path failed: waits, and returns the
    /// word installed and whether the previous holder died. Out of line (and given
    /// nothing but `self`), so that the fast path stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn acquire_slow(&self) -> (u64, bool) {
        let me = self.handle.me();
        let state = self.handle.state();
        let died = match state.lock_contended(me, None) {
            Acquired::Clean => false,
            Acquired::OwnerDied => true,
            Acquired::Mine => panic!(
                "sharedctypes::Lock::acquire: this thread already holds the lock, and a Lock \
                 is not re-entrant (this would wait forever); use an RLock"
            ),
            Acquired::Busy => unreachable!("no deadline was given"),
        };
        (state.word.load(std::sync::atomic::Ordering::Relaxed), died)
    }

    /// Takes the lock if it is free, or if its holder died (then
    /// `Err(TryLockError::OwnerDied)`, holding the guard), without waiting;
    /// `Err(TryLockError::WouldBlock)` if another thread holds it, or the calling
    /// thread does.
    ///
    /// ```
    /// use sharedctypes::TryLockError;
    ///
    /// let lock = sharedctypes::Lock::new()?;
    /// let g = lock.try_acquire()?;
    /// assert!(matches!(lock.try_acquire(), Err(TryLockError::WouldBlock)));
    /// # drop(g);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_acquire(&self) -> TryLockResult<LockGuard<'_>> {
        let me = self.handle.me();
        self.finish(me, self.handle.state().try_lock(me))
    }

    /// Waits at most `timeout` for the lock; `Err(TryLockError::WouldBlock)` if it did
    /// not come free (a dead holder is recovered at once: `Err(TryLockError::OwnerDied)`
    /// with the guard). As with Python's `Lock.acquire(timeout=t)`, a thread that
    /// already holds this lock waits out the whole timeout and gets `WouldBlock` (a
    /// `Lock` is not re-entrant).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::TryLockError;
    ///
    /// let lock = sharedctypes::Lock::new()?;
    /// let g = lock.acquire()?;
    /// let again = lock.acquire_timeout(Duration::from_millis(20));
    /// assert!(matches!(again, Err(TryLockError::WouldBlock)));
    /// drop(g);
    /// assert!(lock.acquire_timeout(Duration::from_millis(20)).is_ok());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> TryLockResult<LockGuard<'_>> {
        let me = self.handle.me();
        let state = self.handle.state();
        if let Some(held) = state.try_fast(me) {
            return Ok(self.guard(me, held));
        }
        let deadline = Instant::now().checked_add(timeout);
        match state.lock_contended(me, deadline) {
            Acquired::Mine => {
                // Held by this very thread: it cannot come free while we wait.
                std::thread::sleep(timeout);
                Err(TryLockError::WouldBlock)
            }
            acquired => self.finish(me, acquired),
        }
    }

    fn finish(&self, me: Me, acquired: Acquired) -> TryLockResult<LockGuard<'_>> {
        match acquired {
            Acquired::Clean => Ok(self.guard_now(me)),
            Acquired::OwnerDied => Err(TryLockError::OwnerDied(OwnerDied::new(self.guard_now(me)))),
            Acquired::Mine | Acquired::Busy => Err(TryLockError::WouldBlock),
        }
    }

    /// Takes the lock only if it is free and clean; never checks for a dead owner (so
    /// never consumes an owner-death report).
    pub(crate) fn try_acquire_quiet(&self) -> Option<LockGuard<'_>> {
        let me = self.handle.me();
        let held = self.handle.state().try_fast(me)?;
        Some(self.guard(me, held))
    }

    #[inline]
    fn guard(&self, me: Me, held: u64) -> LockGuard<'_> {
        LockGuard {
            state: self.handle.state(),
            me,
            held,
            _not_send: PhantomData,
        }
    }

    /// A guard for a lock just taken by a slow path (its word is read back).
    fn guard_now(&self, me: Me) -> LockGuard<'_> {
        let held = self
            .handle
            .state()
            .word
            .load(std::sync::atomic::Ordering::Relaxed);
        self.guard(me, held)
    }

    /// The heap the lock lives in.
    ///
    /// ```
    /// use sharedctypes::{default_heap, Heap, Lock};
    ///
    /// assert_eq!(Lock::new()?.heap(), default_heap());
    /// let heap = Heap::new(4096)?;
    /// assert_eq!(Lock::new_in(&heap)?.heap(), &heap);
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
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Lock {
        Lock {
            // SAFETY: the caller's obligation is `from_offset`'s.
            handle: unsafe { LockHandle::from_offset(heap, offset) },
        }
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // A guard copied into a forked child is not the child's to release. The guard
        // is not `Send`, so only a fork can change the identity of the thread dropping
        // it, and every fork changes the fork generation: one load, where looking up
        // the thread's identity again would cost a thread-local read and a load.
        if self.me.generation == thread_id::fork_generation() {
            // Branch on `panicking` first, so that the common release has no poison
            // branch of its own.
            if std::thread::panicking() {
                self.state.unlock(self.me.owner, self.held, true);
            } else {
                self.state.unlock(self.me.owner, self.held, false);
            }
        }
    }
}

impl LockGuard<'_> {
    /// The lock and its holder, for a condition wait.
    pub(crate) fn raw_parts(&self) -> (&RawLock, Me) {
        (self.state, self.me)
    }

    /// Records the word a condition wait took the lock back with.
    pub(crate) fn set_held(&mut self, held: u64) {
        self.held = held;
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

impl PartialEq for Lock {
    /// Equal when both name the same lock (same heap, same offset), however reached.
    fn eq(&self, other: &Lock) -> bool {
        self.handle.same(&other.handle)
    }
}

impl Eq for Lock {}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("owner_tid", &self.handle.owner())
            .finish()
    }
}
