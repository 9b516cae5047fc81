//! Process-shared locks that survive their holder's death: [`Lock`] and [`RLock`]; and
//! the primitives processes wait on: [`Condition`], [`Event`], [`Semaphore`],
//! [`BoundedSemaphore`] and [`Barrier`] (each documents its own shared words).
//!
//! # The lock word
//!
//! Each lock is 16 bytes of shared memory, found by offset in its heap (no address is
//! stored, so the heap may be mapped anywhere). Everything that says who holds the
//! lock is in one 64-bit atomic word, changed only by compare-and-swap:
//!
//! ```text
//! word  : u64  bits 0..=29   owner's kernel thread id (TID); 0 when free
//!              bit 30        POISON: the last holder panicked holding the lock
//!              bit 31        WAITERS: someone may sleep in FUTEX_WAIT on the low half
//!              bits 32..=38  generation: +1 (mod 128) on every acquisition, kept by
//!                            release and by takeover
//!              bit 39        START_UNKNOWN: the owner could not read its start time
//!                            (then bits 40..=63 are 0)
//!              bits 40..=63  owner's start time mod 2^24 clock ticks, never 0 when
//!                            known
//! count : u32  RLock recursion depth while held; touched only by the owner (every
//!              first acquisition sets it, a release leaves it)
//! (u32 reserved, zero)
//! ```
//!
//! The kernel's futex is 32 bits: waiters sleep on the word's low half (TID and
//! flags), which changes whenever the lock changes hands. Rust code only ever accesses
//! the 64-bit atomic; the low half's address is only handed to `FUTEX_WAIT`, whose
//! 32-bit read is atomic.
//!
//! - **Fast path** (uncontended): a load and one compare-and-swap `free → owner`
//!   (`Acquire`) to take the lock; one compare-and-swap `owner → free` (`Release`) to
//!   release it. The owner bits come from a thread-local cache (see `thread_id`), so no
//!   system call is made: the cost of a `std::sync::Mutex`.
//! - **Contended**: spin briefly, polling with exponential backoff, then set `WAITERS`
//!   and sleep in `FUTEX_WAIT` on the low half. The futex is *shared* (no
//!   `FUTEX_PRIVATE_FLAG`), so a release in any process wakes waiters in any other. A
//!   release that sees `WAITERS` wakes one waiter; a waiter that took the lock after
//!   sleeping sets `WAITERS` again, since others may still be asleep.
//! - **Owner death**: a waiter sleeps at most [`CHECK_INTERVAL`] at a time; a waiter
//!   with a deadline checks at once, one without after its first interval. The check
//!   asks whether the owner named by the word is alive: `/proc/<tid>/stat` gone, or a
//!   zombie, means dead (a process killed by `SIGKILL` and not yet reaped counts); a
//!   live thread with that TID but another start time is a stranger that reused the
//!   TID, so the owner is dead too. A dead owner's word is taken over by a
//!   compare-and-swap from the exact word that was checked, so exactly one waiter wins,
//!   and the winner gets [`OwnerDied`]. Nothing is paid for this until somebody waits
//!   (or a `try_acquire` finds the lock busy: each such call reads `/proc`).
//! - **No window, no ABA**: owner and start time are installed and removed by one CAS,
//!   so no word ever names a TID without its start time (a process killed anywhere in
//!   `acquire` or `release` leaves either the old word or the new one). A waiter's
//!   takeover CAS succeeds only if the word is still the one it judged dead; for the
//!   word to come back, a thread with the dead owner's TID *and* start time (mod 2^24
//!   ticks, about 46 hours at 100 Hz) would have to hold the lock at the same
//!   generation (mod 128) — a dead thread holds nothing, and a new one with its TID
//!   started in the same clock tick would also have to land on that generation.
//!   Such a thread (or, for owners with `START_UNKNOWN`, any thread with the TID)
//!   writes the dead owner's very owner bits, so it also takes the held word for its
//!   own: an [`RLock`] gives it a nested guard of the dead owner's hold, unreported, and
//!   a [`Lock`] panics as if re-entered.
//! - **Corrupted words**: a word that names a thread that is not its recorded owner
//!   (a dead TID, a live TID with another start time) is recovered like a dead
//!   owner's, and so is a word no owner writes (a start field of 0 without
//!   `START_UNKNOWN`, or the flag beside a start); a free word with garbage in its
//!   upper bits is simply taken. A word that names a live thread with exactly its
//!   start time is indistinguishable from a real owner and is waited for; so is one
//!   with `START_UNKNOWN` (an owner that could not read `/proc`, e.g. in a `chroot`,
//!   cannot be told from a stranger).
//! - **Panics**: a guard dropped while its thread unwinds releases the lock with
//!   `POISON` set (an [`RLock`] guard of any depth sets it while the lock is still
//!   held); the next acquirer clears it with its CAS and gets [`OwnerDied`], once.
//!
//! # Namespaces
//!
//! Owners are named by TID and told apart from strangers by start time, so every
//! process using a lock must share its PID namespace (TIDs) and its time namespace
//! (`/proc/<tid>/stat` shows start times shifted by the *reader's* boot-time offset).
//! Each handle records the namespaces of the process that made it, and each thread
//! learns its own once per fork: a thread of a process in another PID or time
//! namespace (a child forked after `unshare`) that takes a lock **panics** instead of
//! sharing it, and named heaps refuse to hand out locks across namespaces
//! ([`Error::ForeignPidNamespace`],
//! [`Error::ForeignTimeNamespace`]). As a second
//! line, a start-time mismatch is believed only after `/proc/<tid>/ns/time` shows the
//! thread in the waiter's own time namespace (or the kernel has no time namespaces).
//! Reading that link needs ptrace access, so a thread of another user, or of a
//! non-dumpable process, cannot be placed: a dead owner whose TID such a thread reused
//! is waited on until that thread exits. Where `/proc` is missing in every process,
//! namespaces read as unknown (0) everywhere and are not compared; the waiter then
//! falls back to `kill(tid, 0)`, which recovers owners that are gone but waits on
//! zombies until they are reaped. A process that *loses* `/proc` after the handle was
//! made (a `chroot` without it, `/proc` unmounted: the privilege-separated daemon)
//! reads its namespaces as unknown, and an unknown namespace is not held against it:
//! it keeps using its locks, protected by what remains (its new threads record their
//! start time as unknown, and are waited on rather than taken over). The namespace
//! check therefore catches a child forked after `unshare` only where it can still
//! read `/proc`; named heaps fail closed instead.
//!
//! A [`Condition`] records no namespaces: its waiter slots name TIDs too, so a waiter
//! in a child of another PID namespace (waiting with a lock made in that child) may be
//! judged dead by a waiter here and lose its slot; it then returns as if notified.
//!
//! # Other limits
//!
//! - An owner that calls `execve` while holding a lock keeps its TID and start time,
//!   so it is never considered dead: release locks before `exec`. A process that
//!   changes its own time namespace with `setns` is not noticed until it forks.
//! - A guard copied into a forked child (by a raw `libc::fork`; [`Process::spawn`]
//!   never returns into such code) does nothing when dropped there: the lock belongs
//!   to the parent's thread.
//! - Recovery gives the new owner the dead owner's writes in practice (the kernel
//!   issues full barriers when a process exits or is killed), not by a `Release` of
//!   the dead owner: that is what [`OwnerDied`] warns about.
//!
//! glibc's robust mutexes (`PTHREAD_MUTEX_ROBUST`) would give owner-death detection
//! from the kernel, but cost 3–4× a plain mutex on the fast path (they maintain a
//! per-thread list on every lock and unlock); this lock keeps the fast path at one
//! CAS each way and pays only when somebody has already waited.
//!
//! [`Process::spawn`]: crate::Process::spawn
//!
//! # Panics
//!
//! [`Lock::acquire`] panics when the calling thread already holds the lock (it would
//! otherwise wait forever); every acquiring call panics in a process whose PID or time
//! namespace differs from the one the lock's handle was made in, as far as both can
//! read `/proc` (see above). An
//! [`RLock`] taken `u32::MAX` times over by one thread (guards forgotten) panics in
//! [`RLock::acquire`] rather than wrap its depth ([`RLock::try_acquire`] and
//! [`RLock::acquire_timeout`] give [`TryLockError::WouldBlock`] instead). A [`Condition`] wait panics when handed a guard that belongs
//! to another thread (one copied into a child by a raw `fork`). A
//! `FUTEX_WAIT`/`FUTEX_WAKE` failure other than the expected `EAGAIN`/`EINTR`/
//! `ETIMEDOUT` is ruled out by the design (the word is a valid, aligned, mapped
//! atomic); if it happens anyway the waiter sleeps instead, which cannot corrupt the
//! lock.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::heap::Heap;

mod barrier;
mod condition;
mod event;
mod futex;
mod liveness;
mod lock;
pub(crate) mod raw_lock;
mod rlock;
mod semaphore;
mod state;
pub(crate) mod thread_id;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condition::{Condition, ConditionGuard, WaitTimeoutResult, MAX_WAITERS};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub(crate) use raw_lock::{LOCK_ALIGN, LOCK_SIZE};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};
pub(crate) use {
    barrier::RawBarrier, condition::ConditionState, event::RawEvent, semaphore::RawSemaphore,
};

/// How long a waiter sleeps before it checks whether the owner is still alive.
///
/// ```
/// use sharedctypes::sync::CHECK_INTERVAL;
/// use sharedctypes::{Lock, Process};
///
/// let lock = Lock::new()?;
/// let child = {
///     let lock = lock.clone();
///     Process::spawn(move || std::mem::forget(lock.acquire()))? // dies holding it
/// };
/// child.join()?;
/// // A waiter notices the dead owner at once, or within a few intervals.
/// let taken = lock.acquire_timeout(50 * CHECK_INTERVAL);
/// assert!(matches!(taken, Err(sharedctypes::TryLockError::OwnerDied(_))));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// The result of taking a lock: `Err(OwnerDied(guard))` when the previous holder died
/// holding it (like [`std::sync::LockResult`] for poisoning).
///
/// ```
/// use sharedctypes::{Lock, LockGuard, LockResult};
///
/// let lock = Lock::new()?;
/// let result: LockResult<LockGuard<'_>> = lock.acquire();
/// assert!(result.is_ok()); // nobody died holding it
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub type LockResult<G> = std::result::Result<G, OwnerDied<G>>;

/// The lock was taken, but its previous holder died (was killed, crashed, exited) or
/// panicked while holding it, so the data it protects may be half-updated. The guard is inside: check the data, then carry on.
/// Only the first acquirer after the death is told; once its guard is released the
/// lock works normally.
///
/// ```
/// use sharedctypes::{Lock, Process};
///
/// let lock = Lock::new()?;
/// let child = {
///     let lock = lock.clone();
///     Process::spawn(move || {
///         std::mem::forget(lock.acquire()); // exits holding the lock
///     })?
/// };
/// child.join()?;
/// let guard = match lock.acquire() {
///     Ok(guard) => guard,
///     Err(died) => died.into_inner(), // the data may need repair here
/// };
/// drop(guard);
/// assert!(lock.acquire().is_ok());
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub struct OwnerDied<G> {
    guard: G,
}

impl<G> OwnerDied<G> {
    pub(crate) fn new(guard: G) -> Self {
        OwnerDied { guard }
    }

    /// The guard: the lock is held.
    ///
    /// ```
    /// use sharedctypes::{Lock, Process};
    ///
    /// let lock = Lock::new()?;
    /// let child = {
    ///     let lock = lock.clone();
    ///     Process::spawn(move || std::mem::forget(lock.acquire()))? // dies holding it
    /// };
    /// child.join()?;
    /// let died = lock.acquire().unwrap_err();
    /// let guard = died.into_inner();
    /// assert!(lock.try_acquire().is_err()); // held by `guard`
    /// drop(guard);
    /// assert!(lock.try_acquire().is_ok()); // reported only once
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// A reference to the guard.
    ///
    /// ```
    /// use sharedctypes::{Process, Value};
    ///
    /// let v = Value::new(0i32)?;
    /// let child = {
    ///     let v = v.clone();
    ///     Process::spawn(move || {
    ///         let guard = v.lock().unwrap();
    ///         guard.set(-1); // half-done work
    ///         std::mem::forget(guard); // dies holding the lock
    ///     })?
    /// };
    /// child.join()?;
    /// let Err(died) = v.lock() else { panic!("the child died holding the lock") };
    /// assert_eq!(died.get_ref().get(), -1); // inspect the data under the lock
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn get_ref(&self) -> &G {
        &self.guard
    }

    /// A mutable reference to the guard.
    ///
    /// ```
    /// use sharedctypes::{Process, Value};
    ///
    /// let v = Value::new(0i32)?;
    /// let child = {
    ///     let v = v.clone();
    ///     Process::spawn(move || {
    ///         let guard = v.lock().unwrap();
    ///         guard.set(-1); // half-done work
    ///         std::mem::forget(guard); // dies holding the lock
    ///     })?
    /// };
    /// child.join()?;
    /// let Err(mut died) = v.lock() else { panic!("the child died holding the lock") };
    /// died.get_mut().set(0); // repair the data under the lock
    /// drop(died); // releases the lock
    /// assert_eq!(v.get(), 0);
    /// assert!(v.lock().is_ok());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.guard
    }

    /// Maps the guard, keeping the report.
    pub(crate) fn map<H>(self, f: impl FnOnce(G) -> H) -> OwnerDied<H> {
        OwnerDied::new(f(self.guard))
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied").finish_non_exhaustive()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the lock's previous holder died while holding it; the lock is now held by \
             the caller, and the data it protects may be inconsistent",
        )
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

impl<G> From<OwnerDied<G>> for Error {
    fn from(_: OwnerDied<G>) -> Error {
        Error::OwnerDied
    }
}

/// Maps a [`LockResult`]'s guard.
pub(crate) fn map_result<G, H>(r: LockResult<G>, f: impl FnOnce(G) -> H) -> LockResult<H> {
    match r {
        Ok(g) => Ok(f(g)),
        Err(died) => Err(died.map(f)),
    }
}

/// The result of a lock attempt that may give up: [`Lock::try_acquire`],
/// [`Lock::acquire_timeout`] and their [`RLock`] twins (like
/// [`std::sync::TryLockResult`]).
///
/// ```
/// use sharedctypes::{Lock, LockGuard, TryLockError, TryLockResult};
///
/// let lock = Lock::new()?;
/// let first: TryLockResult<LockGuard<'_>> = lock.try_acquire();
/// assert!(first.is_ok());
/// assert!(matches!(lock.try_acquire(), Err(TryLockError::WouldBlock)));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub type TryLockResult<G> = std::result::Result<G, TryLockError<G>>;

/// Why a lock attempt that may give up did not return a clean guard (like
/// [`std::sync::TryLockError`]).
///
/// `?` turns it into an [`Error`] ([`Error::WouldBlock`] or [`Error::OwnerDied`]; the
/// guard of an `OwnerDied` is dropped, releasing the lock).
///
/// ```
/// use std::time::Duration;
/// use sharedctypes::{Lock, Process, TryLockError};
///
/// let lock = Lock::new()?;
/// let child = {
///     let lock = lock.clone();
///     Process::spawn(move || std::mem::forget(lock.acquire()))? // dies holding it
/// };
/// child.join()?;
/// match lock.acquire_timeout(Duration::from_secs(5)) {
///     Ok(_guard) => unreachable!("the holder died"),
///     Err(TryLockError::OwnerDied(died)) => drop(died.into_inner()), // repair, release
///     Err(TryLockError::WouldBlock) => unreachable!("a dead holder is recovered"),
/// }
/// assert!(lock.try_acquire().is_ok()); // reported once
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub enum TryLockError<G> {
    /// The lock is held by another thread (or, for a [`Lock`], by this one), or did not
    /// come free within the timeout.
    WouldBlock,
    /// The lock was taken, but its previous holder died (or panicked) holding it.
    OwnerDied(OwnerDied<G>),
}

impl<G> From<OwnerDied<G>> for TryLockError<G> {
    fn from(died: OwnerDied<G>) -> Self {
        TryLockError::OwnerDied(died)
    }
}

impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
            TryLockError::OwnerDied(died) => f.debug_tuple("OwnerDied").field(died).finish(),
        }
    }
}

impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str(
                "the lock is held by another thread or process (or did not come free within \
                 the timeout)",
            ),
            TryLockError::OwnerDied(died) => fmt::Display::fmt(died, f),
        }
    }
}

impl<G> std::error::Error for TryLockError<G> {}

impl<G> From<TryLockError<G>> for Error {
    fn from(e: TryLockError<G>) -> Error {
        match e {
            TryLockError::WouldBlock => Error::WouldBlock,
            TryLockError::OwnerDied(_) => Error::OwnerDied,
        }
    }
}

/// A lock a synchronized object can use: [`Lock`] or [`RLock`] (sealed).
///
/// ```
/// use sharedctypes::{Lock, LockType, RLock};
///
/// /// Whether another thread could take `lock` now.
/// fn free_elsewhere<L: LockType>(lock: &L) -> bool {
///     std::thread::scope(|s| s.spawn(|| lock.try_acquire().is_ok()).join().unwrap())
/// }
///
/// let (lock, rlock) = (Lock::new()?, RLock::new()?);
/// assert!(free_elsewhere(&lock) && free_elsewhere(&rlock));
/// let _g = lock.acquire()?;
/// let _h = rlock.acquire()?;
/// assert!(!free_elsewhere(&lock) && !free_elsewhere(&rlock));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a lock type",
    label = "expected `sharedctypes::Lock` or `sharedctypes::RLock`",
    note = "synchronized objects (`Value`, `Array`) are guarded by a process-shared \
            `sharedctypes::Lock` or `sharedctypes::RLock`; other locks do not work \
            across processes"
)]
pub trait LockType:
    crate::sealed::Sealed + Clone + PartialEq + fmt::Debug + Send + Sync + 'static
{
    /// The guard [`acquire`](LockType::acquire) returns.
    ///
    /// ```
    /// use sharedctypes::{Lock, LockGuard, LockType};
    ///
    /// let lock = Lock::new()?;
    /// let guard: <Lock as LockType>::Guard<'_> = LockType::acquire(&lock)?;
    /// let _: &LockGuard<'_> = &guard;
    /// assert!(lock.try_acquire().is_err());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    type Guard<'a>: ConditionGuard
    where
        Self: 'a;

    /// Waits for the lock.
    ///
    /// ```
    /// use sharedctypes::{Lock, LockType, RLock, RawValue};
    ///
    /// fn bump<L: LockType>(lock: &L, n: &RawValue<u32>) {
    ///     let _guard = lock.acquire().unwrap_or_else(|died| died.into_inner());
    ///     n.update(|x| x + 1);
    /// }
    ///
    /// let n = RawValue::new(0u32)?;
    /// bump(&Lock::new()?, &n);
    /// bump(&RLock::new()?, &n);
    /// assert_eq!(n.get(), 2);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn acquire(&self) -> LockResult<Self::Guard<'_>>;
    /// Takes the lock if it is free (or its holder is dead: `Err(TryLockError::OwnerDied)`
    /// with the guard); `Err(TryLockError::WouldBlock)` if another thread holds it. A
    /// thread that already holds it gets `WouldBlock` from a [`Lock`] and a nested guard
    /// from an [`RLock`].
    ///
    /// ```
    /// use sharedctypes::{Lock, LockType, RLock};
    ///
    /// fn take_twice<L: LockType>(lock: &L) -> (bool, bool) {
    ///     let first = lock.try_acquire();
    ///     let second = lock.try_acquire();
    ///     (first.is_ok(), second.is_ok())
    /// }
    ///
    /// assert_eq!(take_twice(&Lock::new()?), (true, false)); // not re-entrant
    /// assert_eq!(take_twice(&RLock::new()?), (true, true)); // re-entrant
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn try_acquire(&self) -> TryLockResult<Self::Guard<'_>>;
    /// Waits at most `timeout` for the lock; `Err(TryLockError::WouldBlock)` if it did
    /// not come free.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::{Lock, LockType};
    ///
    /// fn taken_elsewhere_within<L: LockType>(lock: &L, timeout: Duration) -> bool {
    ///     std::thread::scope(|s| {
    ///         s.spawn(|| lock.acquire_timeout(timeout).is_ok()).join().unwrap()
    ///     })
    /// }
    ///
    /// let lock = Lock::new()?;
    /// assert!(taken_elsewhere_within(&lock, Duration::from_millis(5)));
    /// let guard = lock.acquire()?;
    /// assert!(!taken_elsewhere_within(&lock, Duration::from_millis(5))); // gave up
    /// drop(guard);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn acquire_timeout(&self, timeout: Duration) -> TryLockResult<Self::Guard<'_>>;
    /// The heap the lock lives in.
    ///
    /// ```
    /// use sharedctypes::{Heap, LockType, RLock};
    ///
    /// fn home<L: LockType>(lock: &L) -> &Heap {
    ///     lock.heap()
    /// }
    ///
    /// let heap = Heap::new(4096)?;
    /// let lock = RLock::new_in(&heap)?;
    /// assert_eq!(home(&lock), &heap);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn heap(&self) -> &Heap;

    /// Takes the lock only if that needs no wait and no owner-death check.
    #[doc(hidden)]
    fn __try_acquire_quiet(&self) -> Option<Self::Guard<'_>>;
    /// A new lock in `heap`.
    #[doc(hidden)]
    fn __new_in(heap: &Heap) -> Result<Self>;
}

macro_rules! lock_type {
    ($lock:ident, $guard:ident) => {
        impl crate::sealed::Sealed for $lock {}

        impl LockType for $lock {
            type Guard<'a> = $guard<'a>;

            #[inline]
            fn acquire(&self) -> LockResult<$guard<'_>> {
                $lock::acquire(self)
            }
            fn try_acquire(&self) -> TryLockResult<$guard<'_>> {
                $lock::try_acquire(self)
            }
            fn acquire_timeout(&self, timeout: Duration) -> TryLockResult<$guard<'_>> {
                $lock::acquire_timeout(self, timeout)
            }
            fn heap(&self) -> &Heap {
                $lock::heap(self)
            }
            fn __try_acquire_quiet(&self) -> Option<$guard<'_>> {
                $lock::try_acquire_quiet(self)
            }
            fn __new_in(heap: &Heap) -> Result<Self> {
                $lock::new_in(heap)
            }
        }
    };
}

lock_type!(Lock, LockGuard);
lock_type!(RLock, RLockGuard);
