//! The lock word and the algorithms on it, shared by [`Lock`](super::Lock),
//! [`RLock`](super::RLock) and [`Condition`](super::Condition). See the
//! [module docs](super) for the layout and the argument.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::heap::Heap;

use super::futex;
use super::liveness::{self, Task};
use super::state::{SharedState, StateHandle};
use super::thread_id::{self, Me};
use super::CHECK_INTERVAL;

/// Bits 0..=29: the owner's kernel thread id; 0 when the lock is free.
pub(crate) const TID_MASK: u64 = 0x3fff_ffff;
/// Bit 30: the last holder died or panicked holding the lock; set in a *free* word (or
/// in a held word by a panicking RLock holder, carried into the free word at release).
pub(crate) const POISON: u64 = 1 << 30;
/// Bit 31: someone may sleep in `FUTEX_WAIT` on the low half.
pub(crate) const WAITERS: u64 = 1 << 31;
/// Bits 32..=38: the generation, bumped by every acquisition and kept by release.
const GEN_SHIFT: u32 = 32;
const GEN_MASK: u64 = 0x7f << GEN_SHIFT;
/// Bit 39: the owner could not read its own start time (its start field is 0).
const START_UNKNOWN: u64 = 1 << 39;
/// Bits 40..=63: the owner's start time modulo 2^24 clock ticks, never 0 when known.
const START_SHIFT: u32 = 40;
const START_MASK: u64 = 0xff_ffff << START_SHIFT;
/// The bits that say who owns the lock.
pub(crate) const OWNER_MASK: u64 = TID_MASK | START_UNKNOWN | START_MASK;

/// The owner bits thread `tid`, started at `start` (clock ticks since boot, as this
/// thread's time namespace shows them; `None` if unknown), writes into a lock word.
pub(crate) fn owner_bits(tid: u32, start: Option<u64>) -> u64 {
    let tid = u64::from(tid) & TID_MASK;
    match start {
        Some(start) => tid | start_field(start) << START_SHIFT,
        None => tid | START_UNKNOWN,
    }
}

/// A start time as stored in the word: 24 bits, 0 reserved for "unknown".
fn start_field(start: u64) -> u64 {
    match start & 0xff_ffff {
        0 => 1,
        s => s,
    }
}

/// The free word that follows `w`: no owner, `w`'s generation, and `poison`.
#[inline]
fn freed(w: u64, poison: bool) -> u64 {
    (w & GEN_MASK) | if poison { POISON } else { 0 }
}

/// The word `me` installs when taking the lock from word `w`: the next generation.
#[inline]
fn taken(w: u64, me: Me, extra: u64) -> u64 {
    let generation = (w & GEN_MASK).wrapping_add(1 << GEN_SHIFT) & GEN_MASK;
    me.owner | generation | extra
}

/// A spinning waiter polls at most this many `pause`s in all before it sleeps (about
/// 7 µs at the 26 ns a `pause` takes on AMD EPYC).
const SPIN_BUDGET: u32 = 256;
/// The longest gap between two polls while spinning, in `pause`s; the gap doubles
/// from 1 up to this, so the owner can release and retake the lock on its own core
/// between polls instead of losing the cache line to every poll.
const MAX_BACKOFF: u32 = 32;

/// A lock's shared memory: 16 bytes, 8-aligned.
#[repr(C)]
pub struct RawLock {
    /// Owner, start time, generation and flags (see the module docs).
    pub(crate) word: AtomicU64,
    /// RLock recursion depth; touched only by the owner.
    pub(crate) count: AtomicU32,
    /// Unused; zero.
    _reserved: AtomicU32,
}

/// Bytes and alignment of a lock in its heap.
pub(crate) const LOCK_SIZE: usize = std::mem::size_of::<RawLock>();
pub(crate) const LOCK_ALIGN: usize = std::mem::align_of::<RawLock>();

/// How an acquisition ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Taken from a free lock whose last holder released it normally.
    Clean,
    /// Taken from a dead owner, or from a holder that panicked: report it.
    OwnerDied,
    /// The calling thread already owns the lock.
    Mine,
    /// Not taken: busy (try) or not free before the deadline.
    Busy,
}

impl RawLock {
    /// Fast path: one load and one CAS, when the lock is free and clean.
    #[inline]
    pub(crate) fn try_fast(&self, me: Me) -> Option<u64> {
        let w = self.word.load(Ordering::Relaxed);
        if w & (TID_MASK | POISON | WAITERS) != 0 {
            return None;
        }
        let new = taken(w, me, 0);
        self.word
            .compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| new)
    }

    /// Whether `me` owns the lock.
    #[inline]
    pub(crate) fn owned_by(&self, me: Me) -> bool {
        self.word.load(Ordering::Relaxed) & OWNER_MASK == me.owner
    }

    /// Releases the lock, which the thread with owner bits `owner` holds with word
    /// `held` (as last seen by this thread). `poison` marks it for the next acquirer
    /// (the holder is panicking).
    #[inline]
    pub(crate) fn unlock(&self, owner: u64, held: u64, poison: bool) {
        // Sleepers to wake, or a POISON set by a nested RLock guard: the slow path.
        if !poison
            && held & (WAITERS | POISON) == 0
            && self
                .word
                .compare_exchange(
                    held,
                    freed(held, false),
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return;
        }
        self.unlock_slow(owner, poison);
    }

    /// The release of a word with waiters, poison, or not exactly `held`: given only
    /// the owner bits, so that the inlined fast path need not keep a whole [`Me`] in
    /// memory for the call.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, owner: u64, poison: bool) {
        let mut w = self.word.load(Ordering::Relaxed);
        // Leave a word that is no longer ours alone (it was taken over by a waiter
        // that found the owner dead: the kernel's answer, or corruption).
        while w & OWNER_MASK == owner {
            let new = freed(w, poison || w & POISON != 0);
            match self
                .word
                .compare_exchange(w, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if w & WAITERS != 0 {
                        futex::wake_low(&self.word, 1);
                    }
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// Marks the held lock poisoned: its next acquirer after the final release gets
    /// `OwnerDied`. Called by an RLock guard dropped during unwinding at depth > 1.
    #[cold]
    #[inline(never)]
    pub(crate) fn poison_held(&self, owner: u64) {
        let mut w = self.word.load(Ordering::Relaxed);
        while w & OWNER_MASK == owner && w & POISON == 0 {
            match self
                .word
                .compare_exchange(w, w | POISON, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => w = actual,
            }
        }
    }

    /// Releases the lock completely for a condition wait, whatever the RLock depth;
    /// returns the depth to restore with [`relock_after_wait`](Self::relock_after_wait).
    ///
    /// A lock that is no longer `me`'s (taken over by a waiter that found its word
    /// naming a dead thread: the word was rewritten) is left alone, word and depth: they
    /// are the new owner's. The wait then takes it back at depth 1.
    pub(crate) fn unlock_for_wait(&self, me: Me) -> u32 {
        let held = self.word.load(Ordering::Relaxed);
        if held & OWNER_MASK != me.owner {
            return 1;
        }
        let depth = self.count.load(Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.unlock(me.owner, held, false);
        depth
    }

    /// Takes the lock back after a condition wait and restores the RLock depth;
    /// returns the word installed and whether a holder died (or panicked) meanwhile.
    pub(crate) fn relock_after_wait(&self, me: Me, depth: u32) -> (u64, bool) {
        let died = match self.try_fast(me) {
            Some(_) => false,
            None => match self.lock_contended(me, None) {
                Acquired::OwnerDied => true,
                // `Mine` cannot happen (the lock was released completely), nor `Busy`
                // (no deadline).
                _ => false,
            },
        };
        self.count.store(depth, Ordering::Relaxed);
        (self.word.load(Ordering::Relaxed), died)
    }

    /// Takes the free word `w` (`w & TID_MASK == 0`), keeping `extra` flags.
    fn take_free(&self, w: u64, me: Me, extra: u64) -> Option<Acquired> {
        let new = taken(w, me, extra);
        self.word
            .compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| {
                if w & POISON != 0 {
                    Acquired::OwnerDied
                } else {
                    Acquired::Clean
                }
            })
    }

    /// Takes the word `w` of a dead owner: exactly one caller's CAS succeeds, and the
    /// word cannot have come back to `w` in between (see the module docs).
    fn take_over(&self, w: u64, me: Me) -> bool {
        // Keep WAITERS: the dead owner's waiters may still sleep.
        self.word
            .compare_exchange(
                w,
                taken(w, me, WAITERS),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Without waiting: free → take it; ours → `Mine`; dead owner → take it over;
    /// otherwise `Busy`.
    pub(crate) fn try_lock(&self, me: Me) -> Acquired {
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w & TID_MASK == 0 {
                match self.take_free(w, me, w & WAITERS) {
                    Some(acquired) => return acquired,
                    None => continue,
                }
            }
            if w & OWNER_MASK == me.owner {
                return Acquired::Mine;
            }
            if owner_dead(w) {
                if self.take_over(w, me) {
                    return Acquired::OwnerDied;
                }
                continue;
            }
            return Acquired::Busy;
        }
    }

    /// Waits for the lock until `deadline` (forever if `None`).
    #[cold]
    pub(crate) fn lock_contended(&self, me: Me, deadline: Option<Instant>) -> Acquired {
        let mut backoff = 1;
        let mut spun = 0;
        while spun < SPIN_BUDGET {
            let w = self.word.load(Ordering::Relaxed);
            if w & TID_MASK == 0 {
                if let Some(acquired) = self.take_free(w, me, w & WAITERS) {
                    return acquired;
                }
                continue;
            }
            if w & OWNER_MASK == me.owner {
                return Acquired::Mine;
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
        // A waiter with a deadline checks the owner at once (its deadline may come
        // before the first interval ends); one without waits an interval first, so a
        // merely busy lock never costs a look at /proc.
        let start = Instant::now();
        let mut next_check = match deadline {
            Some(_) => start,
            None => start + CHECK_INTERVAL,
        };
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w & TID_MASK == 0 {
                // Keep WAITERS: other sleepers may exist, and release must wake them.
                if let Some(acquired) = self.take_free(w, me, WAITERS) {
                    return acquired;
                }
                continue;
            }
            if w & OWNER_MASK == me.owner {
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
            if now >= next_check {
                next_check = now + CHECK_INTERVAL;
                if owner_dead(w) {
                    if self.take_over(w, me) {
                        return Acquired::OwnerDied;
                    }
                    continue;
                }
            }
            let mut wait = next_check.saturating_duration_since(now);
            if let Some(deadline) = deadline {
                if now >= deadline {
                    return Acquired::Busy;
                }
                wait = wait.min(deadline - now);
            }
            futex::wait_low(
                &self.word,
                w as u32,
                Some(wait.max(Duration::from_micros(50))),
            );
        }
    }
}

/// Whether the owner named by the held word `w` is dead: its thread is gone (or a
/// zombie), or a live thread with its TID started at another time than the one the
/// owner recorded, in our own time namespace. Owner and start time were installed by
/// one CAS, so a mismatch is never a half-written word.
pub(crate) fn owner_dead(w: u64) -> bool {
    let tid = (w & TID_MASK) as u32;
    if tid == 0 {
        return false;
    }
    let recorded = (w & START_MASK) >> START_SHIFT;
    match liveness::task(tid) {
        Task::Dead => true,
        Task::Unknown => false,
        // An owner that could not read its own start time cannot be told from a
        // stranger: wait for it.
        Task::Alive { .. } if w & START_UNKNOWN != 0 && recorded == 0 => false,
        Task::Alive { start } => {
            // No owner ever writes a start field of 0 without the flag, nor the flag
            // with a start: such a word was never installed by an owner.
            let malformed = recorded == 0 || w & START_UNKNOWN != 0;
            (malformed || start_field(start) != recorded) && liveness::same_time_namespace(tid)
        }
    }
}

/// A handle to a lock's state in a heap (a [`StateHandle`], like every coordination
/// object's), with the namespaces of the process that made it (see the module docs).
#[derive(Clone)]
pub(crate) struct LockHandle {
    inner: StateHandle<RawLock>,
    ns: u64,
}

// SAFETY: `RawLock` is a `#[repr(C)]` struct of atomics only.
unsafe impl SharedState for RawLock {}

impl LockHandle {
    pub(crate) fn new_in(heap: &Heap) -> Result<Self> {
        Ok(LockHandle {
            inner: StateHandle::new_in(heap, |_| {})?,
            ns: thread_id::me().ns,
        })
    }

    /// # Safety
    ///
    /// `offset` must be in bounds of `heap` for a `RawLock` and aligned for it.
    pub(crate) unsafe fn from_offset(heap: &Heap, offset: usize) -> Self {
        LockHandle {
            // SAFETY: the caller's obligation is `from_offset`'s.
            inner: unsafe { StateHandle::from_offset(heap, offset) },
            ns: thread_id::me().ns,
        }
    }

    #[inline]
    pub(crate) fn state(&self) -> &RawLock {
        self.inner.state()
    }

    pub(crate) fn heap(&self) -> &Heap {
        self.inner.heap()
    }

    /// The calling thread's identity, checked against the handle's namespaces.
    ///
    /// # Panics
    ///
    /// In a process whose PID or time namespace differs from the handle maker's.
    #[inline]
    pub(crate) fn me(&self) -> Me {
        let me = thread_id::me();
        if me.ns != self.ns {
            check_namespaces(me.ns, self.ns);
            // Looked up again rather than kept across the call, so that the fast path
            // never spills `me` for the sake of this rare one.
            return thread_id::me();
        }
        me
    }

    pub(crate) fn offset(&self) -> usize {
        self.inner.offset()
    }

    pub(crate) fn same(&self, other: &LockHandle) -> bool {
        self.inner.same(&other.inner)
    }

    pub(crate) fn owner(&self) -> Option<u32> {
        match self.state().word.load(Ordering::Relaxed) & TID_MASK {
            0 => None,
            tid => Some(tid as u32),
        }
    }
}

/// Panics if the two namespace words (PID namespace in the high half, time namespace
/// in the low half, 0 where unknown) name different namespaces. A half that one side
/// cannot read proves nothing and is not held against it: a child that `chroot`s
/// without `/proc` (the usual privilege-separated daemon) keeps working, relying on the
/// checks that remain (start times, which it then records as unknown, are waited on).
#[cold]
#[inline(never)]
fn check_namespaces(mine: u64, theirs: u64) {
    let differs = |shift: u32| {
        let (a, b) = (
            (mine >> shift) & 0xffff_ffff,
            (theirs >> shift) & 0xffff_ffff,
        );
        a != 0 && b != 0 && a != b
    };
    if differs(32) || differs(0) {
        panic!(
            "sharedctypes: this process is in another PID or time namespace (ns {mine:#x}) \
             than the process that made this lock handle (ns {theirs:#x}): locks name their \
             owners by thread id and start time, which mean something else here, so the lock \
             cannot be shared safely; fork such children before `unshare`, or share only raw \
             objects"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(tid: u32, start: u64) -> Me {
        Me {
            tid,
            generation: 1,
            owner: owner_bits(tid, Some(start)),
            ns: 0,
        }
    }

    fn lock_with(word: u64) -> RawLock {
        RawLock {
            word: AtomicU64::new(word),
            count: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
        }
    }

    #[test]
    fn only_known_namespaces_that_differ_conflict() {
        let ok = |a, b| std::panic::catch_unwind(|| check_namespaces(a, b)).is_ok();
        assert!(ok(0, 0x1_0000_0002));
        assert!(
            ok(0x1_0000_0000, 0x1_0000_0002),
            "an unknown time namespace"
        );
        assert!(!ok(0x1_0000_0002, 0x1_0000_0003), "time namespaces differ");
        assert!(!ok(0x1_0000_0002, 0x4_0000_0002), "PID namespaces differ");
    }

    #[test]
    fn the_generation_survives_release_and_takeover() {
        let l = lock_with(0);
        let a = me(100, 5);
        let held = l.try_fast(a).expect("free");
        assert_eq!(held & GEN_MASK, 1 << GEN_SHIFT);
        l.unlock(a.owner, held, false);
        assert_eq!(l.word.load(Ordering::Relaxed), 1 << GEN_SHIFT);
        let again = l.try_fast(a).expect("free");
        assert_ne!(
            again, held,
            "the same thread retaking the lock makes a new word"
        );
        l.unlock(a.owner, again, false);
        assert_eq!(l.word.load(Ordering::Relaxed), 2 << GEN_SHIFT);
    }

    #[test]
    fn a_reused_tid_never_recreates_a_word() {
        let dead = me(100, 5);
        let stranger = me(100, 6);
        assert_ne!(dead.owner, stranger.owner);
        // A start time of 0 mod 2^24 is still "known".
        assert_ne!(owner_bits(7, Some(1 << 24)), owner_bits(7, None));
        assert_ne!(owner_bits(7, Some(1 << 24)) & START_MASK, 0);
    }

    #[test]
    fn poison_is_reported_once() {
        let l = lock_with(0);
        let a = me(100, 5);
        let held = l.try_fast(a).expect("free");
        l.unlock(a.owner, held, true);
        assert!(
            l.try_fast(a).is_none(),
            "the fast path refuses a poisoned word"
        );
        assert_eq!(l.try_lock(a), Acquired::OwnerDied);
        let held = l.word.load(Ordering::Relaxed);
        l.unlock(a.owner, held, false);
        assert_eq!(l.try_lock(a), Acquired::Clean);
    }

    #[test]
    fn a_word_naming_a_dead_thread_is_taken_over() {
        let garbage = (u64::from(u32::MAX >> 2) & TID_MASK) | (123 << START_SHIFT);
        let l = lock_with(garbage | WAITERS);
        assert_eq!(l.try_lock(me(100, 5)), Acquired::OwnerDied);
    }

    #[test]
    fn a_word_naming_a_live_thread_with_a_wrong_start_is_taken_over() {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        let Some(start) = liveness::start_time(pid) else {
            eprintln!("no usable /proc here: the start-time check cannot run");
            return;
        };
        let tid = u64::from(pid);
        let real = owner_bits(pid, Some(start));
        let cases = [
            (
                "a wrong start",
                owner_bits(pid, Some(start + 1)),
                Acquired::OwnerDied,
            ),
            ("a zero stamp", tid, Acquired::OwnerDied),
            (
                "garbage above",
                tid | 0xdead_beef << 32,
                Acquired::OwnerDied,
            ),
            (
                "unknown and a start",
                real | START_UNKNOWN,
                Acquired::OwnerDied,
            ),
            (
                "an owner without /proc",
                owner_bits(pid, None),
                Acquired::Busy,
            ),
        ];
        for (what, word, expected) in cases {
            let l = lock_with(word | WAITERS);
            assert_eq!(l.try_lock(me(1, 1)), expected, "{what}");
        }
        let l = lock_with(owner_bits(pid, Some(start)));
        assert_eq!(
            l.try_lock(me(1, 1)),
            Acquired::Busy,
            "the real owner is alive"
        );
    }
}
