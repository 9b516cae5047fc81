//! Process-shared locks that survive their holder's death: [`Lock`] and [`RLock`].
//!
//! # Design
//!
//! Each lock is 16 bytes of shared memory, found by offset in its heap (no address is
//! stored, so the heap may be mapped anywhere):
//!
//! ```text
//! word  : u32  bit 31      WAITERS: someone may sleep in FUTEX_WAIT on `word`
//!              bit 30      EPOCH: flipped by every takeover from a dead owner, so the
//!                          word never repeats even if the new owner got the dead
//!                          owner's TID (no ABA for a waiter about to take over)
//!              bits 0..29  owner's kernel thread id (TID), 0 when free
//! count : u32  RLock recursion depth; touched only by the owner
//! stamp : u64  owner's TID << 32 | low 32 bits of its start time; 0 when free
//! ```
//!
//! - **Fast path** (uncontended): one compare-and-swap `0 → TID` (`Acquire`) plus a
//!   plain store of `stamp` to acquire; a store and a compare-and-swap `TID → 0`
//!   (`Release`) to release. The TID comes from a thread-local cache (see
//!   `thread_id`), so no system call is made. This is the cost of a `std::sync::Mutex`
//!   plus one store each way.
//! - **Contended**: spin briefly, polling with exponential backoff (every poll pulls
//!   the cache line away from the owner), then set `WAITERS` and sleep in `FUTEX_WAIT`
//!   on the word. The futex is *shared* (no `FUTEX_PRIVATE_FLAG`), so waiters in any
//!   process mapping the page are woken by a release in any other. A release that sees
//!   `WAITERS` wakes one waiter; a waiter that took the lock after sleeping keeps
//!   `WAITERS` set, since others may still be asleep.
//! - **Owner death**: a waiter sleeps at most [`CHECK_INTERVAL`] at a time. When that
//!   much time has passed without the lock changing hands it asks whether the owner is
//!   alive: `/proc/<tid>/stat` gone, or showing a zombie, means dead — this includes a
//!   process killed by `SIGKILL` that has not been reaped yet. A dead owner's word is
//!   taken over with a compare-and-swap (so exactly one waiter wins), and the winner
//!   gets [`OwnerDied`]; when it releases, the lock works normally again. No cost is
//!   paid for this until somebody has waited [`CHECK_INTERVAL`].
//! - **TID reuse**: TIDs are recycled (`pid_max` can be 32768). A live thread with the
//!   dead owner's TID is told apart by its start time, which the owner recorded in
//!   `stamp`. Only if it also shows the recorded stamp is the owner alive; a live
//!   thread with the right TID but another start time is a stranger, and the owner is
//!   declared dead after the mismatch is seen twice, [`CHECK_INTERVAL`] apart (an owner
//!   that has just taken the lock writes its stamp within nanoseconds). If an owner dies
//!   in the two instructions between taking the word and writing its stamp *and* its
//!   TID is reused before a waiter looks, the waiter waits until that stranger exits.
//!
//! glibc's robust mutexes (`PTHREAD_MUTEX_ROBUST`) would give owner-death detection
//! from the kernel, but cost 3–4× a plain mutex on the fast path (they maintain a
//! per-thread list on every lock and unlock); this lock keeps the fast path at one
//! atomic and pays only when somebody has already waited.
//!
//! Processes sharing a lock must share a PID namespace (TIDs are compared), and the
//! waiter must see a `/proc` of that namespace to tell a killed-but-unreaped owner
//! (a zombie) from a live one; without one it falls back to `kill(tid, 0)`, which
//! recovers from owners that are gone but waits on zombies until they are reaped.
//! An owner that calls `execve` while holding a lock keeps its TID and start time, so
//! it is never considered dead: release locks before `exec`.
//!
//! A guard copied into a forked child (by a raw `libc::fork`; [`Process::spawn`]
//! never returns into such code) does nothing when dropped there: the lock belongs to
//! the parent's thread.
//!
//! Recovery gives the new owner the dead owner's writes in practice (the kernel issues
//! full barriers when a process exits or is killed), not by a `Release` of the dead
//! owner: that is what [`OwnerDied`] warns about.
//!
//! [`Process::spawn`]: crate::Process::spawn
//!
//! # Panics
//!
//! [`Lock::acquire`] panics when the calling thread already holds the lock (it would
//! otherwise wait forever). A `FUTEX_WAIT`/`FUTEX_WAKE` failure other than the expected
//! `EAGAIN`/`EINTR`/`ETIMEDOUT` is ruled out by the design (the word is a valid,
//! aligned, mapped `u32`) and is ignored; it cannot corrupt the lock.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::heap::{try_default_heap, Heap};
use crate::liveness::{self, Task};
use crate::thread_id::{self, Me};

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
/// // A waiter notices the dead owner within a few intervals.
/// let taken = lock.acquire_timeout(50 * CHECK_INTERVAL).expect("recovered in time");
/// assert!(taken.is_err()); // `Err(OwnerDied)`, holding the guard
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);

const WAITERS: u32 = 0x8000_0000;
const EPOCH: u32 = 0x4000_0000;
const TID_MASK: u32 = 0x3fff_ffff;
/// A waiter spins for at most this many `pause`s in all before it sleeps (about 7 µs
/// at the 26 ns a `pause` takes on AMD EPYC; the 64 single-`pause` polls before were
/// about 1.7 µs).
const SPIN_BUDGET: u32 = 256;
/// The longest gap between two polls of the word while spinning, in `pause`s; the gap
/// doubles from 1 up to this. Every poll pulls the lock's cache line away from the
/// owner, so polling less often lets the owner release and retake the lock on its own
/// core many times between polls: 4 processes × 250k increments on 2 cores went from
/// ~22 ms to ~8 ms (`BENCHMARKS.md`).
const MAX_BACKOFF: u32 = 32;

/// The lock's shared memory.
#[repr(C)]
pub(crate) struct LockState {
    word: AtomicU32,
    count: AtomicU32,
    stamp: AtomicU64,
}

/// Bytes and alignment of a lock in its heap.
pub(crate) const LOCK_SIZE: usize = std::mem::size_of::<LockState>();
pub(crate) const LOCK_ALIGN: usize = std::mem::align_of::<LockState>();

/// How a contended acquisition ended.
enum Acquired {
    Clean,
    OwnerDied,
    /// The calling thread already owns the lock.
    Mine,
    TimedOut,
}

impl LockState {
    /// Fast path: one CAS.
    #[inline]
    fn try_fast(&self, me: Me) -> bool {
        if self
            .word
            .compare_exchange(0, me.tid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.stamp.store(me.stamp, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    #[inline]
    fn owned_by(&self, me: Me) -> bool {
        self.word.load(Ordering::Relaxed) & TID_MASK == me.tid
            && self.stamp.load(Ordering::Relaxed) == me.stamp
    }

    /// Releases the lock if `me` holds it (a lock recovered by another process in the
    /// meantime is left alone, stamp included).
    #[inline]
    fn unlock(&self, me: Me) {
        if self.stamp.load(Ordering::Relaxed) == me.stamp {
            self.stamp.store(0, Ordering::Relaxed);
        }
        if self
            .word
            .compare_exchange(me.tid, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow(me);
        }
    }

    #[cold]
    fn unlock_slow(&self, me: Me) {
        let mut w = self.word.load(Ordering::Relaxed);
        while w & TID_MASK == me.tid {
            match self
                .word
                .compare_exchange(w, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if w & WAITERS != 0 {
                        futex_wake(&self.word, 1);
                    }
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// Takes over the word `w` of a dead owner, flipping EPOCH so that the new word
    /// differs from `w` even when our TID equals the dead owner's.
    fn take_over(&self, w: u32, me: Me) -> bool {
        let new = me.tid | WAITERS | (!w & EPOCH);
        if self
            .word
            .compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.stamp.store(me.stamp, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Without waiting: free → take it; dead owner → take it over; else `None`.
    fn try_lock(&self, me: Me) -> Option<Acquired> {
        let mut suspect = None;
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 {
                if self.try_fast(me) {
                    return Some(Acquired::Clean);
                }
                continue;
            }
            if self.owned_by(me) {
                return Some(Acquired::Mine);
            }
            return match self.owner_dead(w, &mut suspect, true) {
                true if self.take_over(w, me) => Some(Acquired::OwnerDied),
                true => continue,
                false => None,
            };
        }
    }

    /// Waits for the lock until `deadline` (forever if `None`).
    #[cold]
    fn lock_contended(&self, me: Me, deadline: Option<Instant>) -> Acquired {
        // A recursive RLock acquisition must not spin first.
        if self.owned_by(me) {
            return Acquired::Mine;
        }
        let mut backoff = 1;
        let mut spun = 0;
        while spun < SPIN_BUDGET {
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 && self.try_fast(me) {
                return Acquired::Clean;
            }
            if w & WAITERS != 0 {
                break;
            }
            for _ in 0..backoff {
                std::hint::spin_loop();
            }
            spun += backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        let mut last_check = Instant::now();
        let mut suspect = None;
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 {
                // Keep WAITERS: other sleepers may exist, and release must wake them.
                if self
                    .word
                    .compare_exchange(0, me.tid | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.stamp.store(me.stamp, Ordering::Relaxed);
                    return Acquired::Clean;
                }
                continue;
            }
            if self.owned_by(me) {
                return Acquired::Mine;
            }
            if w & WAITERS == 0
                && self
                    .word
                    .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let w = w | WAITERS;
            let now = Instant::now();
            if now.duration_since(last_check) >= CHECK_INTERVAL {
                last_check = now;
                if self.owner_dead(w, &mut suspect, false) && self.take_over(w, me) {
                    return Acquired::OwnerDied;
                }
            }
            let mut wait = CHECK_INTERVAL.saturating_sub(now.duration_since(last_check));
            if let Some(deadline) = deadline {
                if now >= deadline {
                    return Acquired::TimedOut;
                }
                wait = wait.min(deadline - now);
            }
            futex_wait(&self.word, w, wait.max(Duration::from_micros(50)));
        }
    }

    /// Whether the owner recorded in word `w` is dead. `suspect` carries a TID/stamp
    /// mismatch seen by an earlier call, which must be seen twice, [`CHECK_INTERVAL`]
    /// apart, to count; `quick` (for `try_acquire`, which does not wait) never counts a
    /// mismatch, so only a blocking acquire recovers an owner whose TID was reused.
    fn owner_dead(&self, w: u32, suspect: &mut Option<(u32, u64)>, quick: bool) -> bool {
        let tid = w & TID_MASK;
        if tid == 0 {
            return false;
        }
        match liveness::task(tid) {
            Task::Dead => true,
            Task::Unknown => false,
            Task::Alive { start } => {
                let stamp = self.stamp.load(Ordering::Relaxed);
                let recorded = stamp != 0 && (stamp >> 32) as u32 == tid && stamp as u32 != 0;
                if !recorded || thread_id::stamp(tid, start) == stamp {
                    *suspect = None;
                    return false;
                }
                // A live stranger holds the owner's TID: confirm the word and stamp stay
                // unchanged, which a new legitimate owner would not allow.
                let seen = (w & !WAITERS, stamp);
                if quick {
                    return false;
                }
                let confirmed = *suspect == Some(seen);
                *suspect = Some(seen);
                confirmed
            }
        }
    }
}

/// `FUTEX_WAIT` (shared, not private) on `word` while it equals `expected`.
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 in memory mapped for the lifetime of the
    // call; `ts` is a valid timespec; the remaining arguments are unused by FUTEX_WAIT.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "look again". Anything
    // else (ENOSYS under a seccomp filter, say) would turn the caller into a busy loop:
    // sleep instead, which keeps the lock correct, only slower.
    if rc < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        if !matches!(errno, Some(libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT)) {
            std::thread::sleep(timeout);
        }
    }
}

/// `FUTEX_WAKE` (shared) of up to `n` waiters on `word`.
fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

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

/// The lock was taken, but its previous holder died while holding it, so the data it
/// protects may be half-updated. The guard is inside: check the data, then carry on.
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
    /// assert!(lock.try_acquire().is_none()); // held by `guard`
    /// drop(guard);
    /// assert!(lock.try_acquire().expect("free").is_ok()); // reported only once
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

/// A handle to a lock's state in a heap.
#[derive(Clone)]
struct LockHandle {
    heap: Heap,
    state: NonNull<LockState>,
}

// SAFETY: the state is only accessed through atomics; the heap keeps it mapped.
unsafe impl Send for LockHandle {}
// SAFETY: as above.
unsafe impl Sync for LockHandle {}

impl LockHandle {
    fn new_in(heap: &Heap) -> Result<Self> {
        Ok(LockHandle {
            heap: heap.clone(),
            state: heap.alloc_array::<LockState>(1)?,
        })
    }

    #[inline]
    fn state(&self) -> &LockState {
        // SAFETY: `state` points to an aligned LockState inside the mapping, which
        // `self.heap` keeps alive; it is only accessed through atomics.
        unsafe { self.state.as_ref() }
    }

    fn offset(&self) -> usize {
        self.heap
            .offset_of(self.state.as_ptr(), std::mem::size_of::<LockState>())
            .expect("a handle points into its own heap")
    }

    fn same(&self, other: &LockHandle) -> bool {
        self.heap.same_heap(&other.heap) && self.offset() == other.offset()
    }

    fn owner(&self) -> Option<u32> {
        match self.state().word.load(Ordering::Relaxed) & TID_MASK {
            0 => None,
            tid => Some(tid),
        }
    }
}

/// A process-shared, non-recursive lock (Python's `multiprocessing.Lock`) that
/// survives its holder's death.
///
/// Lives in a shared heap, so every process forked after its creation (and, for a
/// named heap, every process that opens it) shares it. Handles are cheap to clone and
/// compare equal when they name the same lock. See the [module docs](self) for the
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
///     assert!(lock.try_acquire().is_none());
/// }
/// assert!(lock.try_acquire().is_some()); // released when the guard was dropped
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    state: &'a LockState,
    me: Me,
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
    /// assert!(b.try_acquire().is_some()); // independent of `a`
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
    /// assert!(lock.try_acquire().is_some());
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
    /// [`RLock`] for re-entrant locking.
    ///
    /// ```
    /// let lock = sharedctypes::Lock::new()?;
    /// let guard = lock.acquire()?;
    /// assert!(lock.try_acquire().is_none());
    /// drop(guard);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockResult<LockGuard<'_>> {
        let me = thread_id::me();
        let state = self.handle.state();
        if state.try_fast(me) {
            return Ok(self.guard(me));
        }
        match state.lock_contended(me, None) {
            Acquired::Clean => Ok(self.guard(me)),
            Acquired::OwnerDied => Err(OwnerDied::new(self.guard(me))),
            Acquired::Mine => panic!(
                "sharedctypes::Lock::acquire: this thread already holds the lock, and a Lock \
                 is not re-entrant (this would wait forever); use an RLock"
            ),
            Acquired::TimedOut => unreachable!("no deadline was given"),
        }
    }

    /// Takes the lock if it is free (or its holder is dead), without waiting; `None`
    /// if another thread holds it, or the calling thread does. (An owner that died and
    /// whose TID a live stranger already reuses is recovered only by a waiting
    /// acquire.)
    ///
    /// ```
    /// let lock = sharedctypes::Lock::new()?;
    /// let g = lock.try_acquire().expect("free").expect("nobody died");
    /// assert!(lock.try_acquire().is_none());
    /// # drop(g);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Option<LockResult<LockGuard<'_>>> {
        let me = thread_id::me();
        match self.handle.state().try_lock(me)? {
            Acquired::Clean => Some(Ok(self.guard(me))),
            Acquired::OwnerDied => Some(Err(OwnerDied::new(self.guard(me)))),
            Acquired::Mine | Acquired::TimedOut => None,
        }
    }

    /// Waits at most `timeout` for the lock; `None` if it did not come free. As with
    /// Python's `Lock.acquire(timeout=t)`, a thread that already holds this lock waits
    /// out the whole timeout and gets `None` (a `Lock` is not re-entrant).
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = sharedctypes::Lock::new()?;
    /// let g = lock.acquire()?;
    /// assert!(lock.acquire_timeout(Duration::from_millis(20)).is_none());
    /// drop(g);
    /// assert!(lock.acquire_timeout(Duration::from_millis(20)).is_some());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockResult<LockGuard<'_>>> {
        let me = thread_id::me();
        let state = self.handle.state();
        if state.try_fast(me) {
            return Some(Ok(self.guard(me)));
        }
        let deadline = Instant::now().checked_add(timeout);
        match state.lock_contended(me, deadline) {
            Acquired::Clean => Some(Ok(self.guard(me))),
            Acquired::OwnerDied => Some(Err(OwnerDied::new(self.guard(me)))),
            Acquired::Mine => {
                // Held by this very thread: it cannot come free while we wait.
                std::thread::sleep(timeout);
                None
            }
            Acquired::TimedOut => None,
        }
    }

    /// Takes the lock only if it is free; never checks for a dead owner (so never
    /// consumes an owner-death report).
    fn try_acquire_quiet(&self) -> Option<LockGuard<'_>> {
        let me = thread_id::me();
        self.handle.state().try_fast(me).then(|| self.guard(me))
    }

    fn guard(&self, me: Me) -> LockGuard<'_> {
        LockGuard {
            state: self.handle.state(),
            me,
            _not_send: PhantomData,
        }
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
        &self.handle.heap
    }

    pub(crate) fn offset(&self) -> usize {
        self.handle.offset()
    }

    /// # Safety
    ///
    /// `offset` must be in bounds of `heap` for a `LockState` and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Lock {
        Lock {
            handle: LockHandle {
                heap: heap.clone(),
                state: heap.ptr_at(offset),
            },
        }
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // A guard copied into a forked child is not the child's to release.
        if thread_id::me() == self.me {
            self.state.unlock(self.me);
        }
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

/// A process-shared recursive lock (Python's `multiprocessing.RLock`): the thread that
/// holds it may take it again, and it is released when every guard is dropped. Like
/// [`Lock`], it survives its holder's death.
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
///     s.spawn(|| lock.try_acquire().is_some()).join().unwrap()
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
    state: &'a LockState,
    me: Me,
    _not_send: PhantomData<*const ()>,
}

impl RLock {
    /// A new recursive lock in the [default heap](crate::default_heap).
    ///
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// let _outer = lock.acquire()?;
    /// assert!(lock.try_acquire().is_some()); // the holder may take it again
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
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// let a = lock.acquire()?;
    /// let b = lock.acquire()?;
    /// # drop((a, b));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockResult<RLockGuard<'_>> {
        let me = thread_id::me();
        let state = self.handle.state();
        if state.try_fast(me) {
            return Ok(self.first_guard(me));
        }
        self.finish(me, state.lock_contended(me, None))
            .expect("no deadline was given")
    }

    /// Takes the lock if it is free, held by this thread, or held by a dead thread;
    /// `None` if another live thread holds it.
    ///
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// let g = lock.acquire()?;
    /// assert!(lock.try_acquire().is_some()); // recursive
    /// # drop(g);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Option<LockResult<RLockGuard<'_>>> {
        let me = thread_id::me();
        let acquired = self.handle.state().try_lock(me)?;
        self.finish(me, acquired)
    }

    /// Waits at most `timeout` for the lock; `None` if it did not come free.
    ///
    /// ```
    /// let lock = sharedctypes::RLock::new()?;
    /// assert!(lock.acquire_timeout(std::time::Duration::from_millis(1)).is_some());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockResult<RLockGuard<'_>>> {
        let me = thread_id::me();
        let state = self.handle.state();
        if state.try_fast(me) {
            return Some(Ok(self.first_guard(me)));
        }
        let deadline = Instant::now().checked_add(timeout);
        self.finish(me, state.lock_contended(me, deadline))
    }

    /// Takes the lock only if it is free or already ours; never checks for a dead owner.
    fn try_acquire_quiet(&self) -> Option<RLockGuard<'_>> {
        let me = thread_id::me();
        let state = self.handle.state();
        if state.try_fast(me) {
            Some(self.first_guard(me))
        } else if state.owned_by(me) {
            Some(self.nested_guard(me))
        } else {
            None
        }
    }

    fn finish(&self, me: Me, acquired: Acquired) -> Option<LockResult<RLockGuard<'_>>> {
        match acquired {
            Acquired::Clean => Some(Ok(self.first_guard(me))),
            Acquired::OwnerDied => Some(Err(OwnerDied::new(self.first_guard(me)))),
            Acquired::Mine => Some(Ok(self.nested_guard(me))),
            Acquired::TimedOut => None,
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

    fn nested_guard(&self, me: Me) -> RLockGuard<'_> {
        let state = self.handle.state();
        let depth = state.count.load(Ordering::Relaxed);
        assert!(depth < u32::MAX, "RLock recursion depth overflow");
        state.count.store(depth + 1, Ordering::Relaxed);
        RLockGuard {
            state,
            me,
            _not_send: PhantomData,
        }
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
    /// `offset` must be in bounds of `heap` for a `LockState` and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> RLock {
        RLock {
            handle: LockHandle {
                heap: heap.clone(),
                state: heap.ptr_at(offset),
            },
        }
    }
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // A guard copied into a forked child is not the child's to release.
        if thread_id::me() != self.me {
            return;
        }
        let depth = self.state.count.load(Ordering::Relaxed);
        if depth > 1 {
            self.state.count.store(depth - 1, Ordering::Relaxed);
        } else {
            self.state.count.store(0, Ordering::Relaxed);
            self.state.unlock(self.me);
        }
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

/// A lock a synchronized object can use: [`Lock`] or [`RLock`] (sealed).
///
/// ```
/// use sharedctypes::{Lock, LockType, RLock};
///
/// /// Whether another thread could take `lock` now.
/// fn free_elsewhere<L: LockType>(lock: &L) -> bool {
///     std::thread::scope(|s| s.spawn(|| lock.try_acquire().is_some()).join().unwrap())
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
    /// assert!(lock.try_acquire().is_none());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    type Guard<'a>
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
    /// Takes the lock if it is free (or its holder is dead); `None` if another thread
    /// holds it. A thread that already holds it gets `None` from a [`Lock`] and a nested
    /// guard from an [`RLock`].
    ///
    /// ```
    /// use sharedctypes::{Lock, LockType, RLock};
    ///
    /// fn take_twice<L: LockType>(lock: &L) -> (bool, bool) {
    ///     let first = lock.try_acquire();
    ///     let second = lock.try_acquire();
    ///     (first.is_some(), second.is_some())
    /// }
    ///
    /// assert_eq!(take_twice(&Lock::new()?), (true, false)); // not re-entrant
    /// assert_eq!(take_twice(&RLock::new()?), (true, true)); // re-entrant
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    fn try_acquire(&self) -> Option<LockResult<Self::Guard<'_>>>;
    /// Waits at most `timeout` for the lock; `None` if it did not come free.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::{Lock, LockType};
    ///
    /// fn taken_elsewhere_within<L: LockType>(lock: &L, timeout: Duration) -> bool {
    ///     std::thread::scope(|s| {
    ///         s.spawn(|| lock.acquire_timeout(timeout).is_some()).join().unwrap()
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
    fn acquire_timeout(&self, timeout: Duration) -> Option<LockResult<Self::Guard<'_>>>;
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
            fn try_acquire(&self) -> Option<LockResult<$guard<'_>>> {
                $lock::try_acquire(self)
            }
            fn acquire_timeout(&self, timeout: Duration) -> Option<LockResult<$guard<'_>>> {
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
