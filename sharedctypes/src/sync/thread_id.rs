//! Who is this thread, system-wide: its kernel thread id (TID) and start time, cached
//! per thread and invalidated by `fork`.
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
pub(crate) struct Me {
    /// Kernel thread id.
    pub tid: u32,
    /// `tid << 32 | start time`: identifies this thread even after its TID is reused.
    pub stamp: u64,
}

thread_local! {
    /// `(generation, identity)`; generation 0 means "not cached".
    static CACHE: Cell<(u32, Me)> = const { Cell::new((0, Me { tid: 0, stamp: 0 })) };
}

extern "C" fn bump_generation() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread's identity.
#[inline]
pub(crate) fn me() -> Me {
    let (generation, me) = CACHE.with(Cell::get);
    if generation == FORK_GENERATION.load(Ordering::Relaxed) {
        return me;
    }
    refresh()
}

#[cold]
fn refresh() -> Me {
    if !ATFORK.load(Ordering::Acquire) {
        // SAFETY: registering a plain extern "C" function with no captured state; it only
        // touches an atomic, which is async-signal-safe and fork-safe.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(bump_generation)) };
        assert_eq!(rc, 0, "pthread_atfork failed: out of memory");
        // Set only after registering: a child forked in between registers again itself.
        ATFORK.store(true, Ordering::Release);
    }
    // Read the generation *before* the TID: a fork between the two leaves a stale
    // generation, and the next call refreshes again.
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let start = crate::liveness::start_time(tid).unwrap_or(0);
    let me = Me {
        tid,
        stamp: stamp(tid, start),
    };
    CACHE.with(|c| c.set((generation, me)));
    me
}

/// Packs a TID and a start time (low 32 bits of clock ticks since boot).
pub(crate) fn stamp(tid: u32, start: u64) -> u64 {
    (u64::from(tid) << 32) | (start & 0xffff_ffff)
}
