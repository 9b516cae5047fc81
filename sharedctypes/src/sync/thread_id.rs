//! Who is this thread, system-wide: its kernel thread id (TID), start time and
//! namespaces, cached per thread and invalidated by `fork`.
//!
//! Locks record their owner as a TID. `gettid` is a system call, too slow for a lock's
//! fast path, so the value is cached in a thread-local. A forked child's only thread
//! has a new TID but inherits the parent's thread-locals, so every cache entry carries
//! the *fork generation* it was taken in; a `pthread_atfork` child handler bumps the
//! generation, which makes every inherited entry stale.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Bumped in every forked child (by the atfork handler).
static FORK_GENERATION: AtomicU32 = AtomicU32::new(1);
/// Whether the atfork handler is registered. Not a `Once`: a child forked while another
/// thread is inside `call_once` would wait for that thread forever. Two threads racing
/// here may register twice, which only bumps the generation twice per fork.
static ATFORK: AtomicBool = AtomicBool::new(false);

/// This thread's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Me {
    /// Kernel thread id.
    pub tid: u32,
    /// The fork generation this identity was taken in (see [`fork_generation`]); 0
    /// only in the empty cache entry (the counter starts at 1).
    pub generation: u32,
    /// The owner bits this thread writes into a lock word: its TID and its start time
    /// (see [`owner_bits`](super::raw_lock::owner_bits)); they identify this thread even
    /// after its TID is reused.
    pub owner: u64,
    /// The PID and time namespaces this thread lives in (see [`namespaces`]).
    pub ns: u64,
}

thread_local! {
    /// This thread's identity; `generation` 0 means "not cached".
    static CACHE: Cell<Me> =
        const { Cell::new(Me { tid: 0, generation: 0, owner: 0, ns: 0 }) };
}

extern "C" fn bump_generation() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread's identity.
#[inline]
pub(crate) fn me() -> Me {
    if CACHE.with(|c| c.get().generation) != FORK_GENERATION.load(Ordering::Relaxed) {
        refresh();
    }
    // Read back from the cache on both paths (rather than returning `refresh`'s
    // result): the fast path then loads only the fields its caller uses, straight
    // from thread-local storage, instead of merging two copies through the stack.
    CACHE.with(Cell::get)
}

/// This process's fork generation: the same in every thread of a process, different
/// in each forked child (the atfork handler bumps it, and [`me`] registers the handler
/// before it returns an identity). A lock guard compares the `generation` of the
/// identity it was taken with against this, a single load, to tell that it has been
/// copied into a forked child (not the child's lock to release) without looking up the
/// thread-local identity again.
#[inline]
pub(crate) fn fork_generation() -> u32 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Makes sure every fork from now on bumps the [`fork_generation`]. Called before
/// anything that compares generations exists: a lock identity (`refresh`), a heap (its
/// objects' handles remember the generation they were counted in).
pub(crate) fn register_atfork() {
    if !ATFORK.load(Ordering::Acquire) {
        // SAFETY: registering a plain extern "C" function with no captured state; it only
        // touches an atomic, which is async-signal-safe and fork-safe.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(bump_generation)) };
        assert_eq!(rc, 0, "pthread_atfork failed: out of memory");
        // Set only after registering: a child forked in between registers again itself.
        ATFORK.store(true, Ordering::Release);
    }
}

#[cold]
#[inline(never)]
fn refresh() {
    register_atfork();
    // Read the generation *before* the TID: a fork between the two leaves a stale
    // generation, and the next call refreshes again.
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let start = super::liveness::start_time(tid);
    let me = Me {
        tid,
        generation,
        owner: super::raw_lock::owner_bits(tid, start),
        ns: namespaces(),
    };
    CACHE.with(|c| c.set(me));
}

/// This process's PID and time namespaces in one number: the inodes of
/// `/proc/self/ns/pid` (high half) and `/proc/self/ns/time` (low half), each 0 when
/// unknown. A process can move its *children* to new namespaces (`unshare`), never
/// itself (except by `setns` on a single-threaded process), so the value is taken once
/// per fork, with the rest of the identity.
pub(crate) fn namespaces() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let ino = |path: &str| std::fs::metadata(path).map_or(0, |m| m.ino() & 0xffff_ffff);
    (ino("/proc/self/ns/pid") << 32) | ino("/proc/self/ns/time")
}
