//! What the heap targets (`open_lookup`, `heap_alloc`) share: turning fuzz input into a
//! named heap's segment in `/dev/shm`.
//!
//! A segment's bytes come with a flags byte:
//! - bit 0: set the header's `total_len` to the segment's length (after bit 4's
//!   padding), so that mutations that insert or remove bytes still reach the blocks;
//! - bit 1: set the header's PID and time namespaces to this process's, so that locks
//!   (and the allocator's back end) in a corpus made on another machine are used;
//! - bit 2: replace every `TID!` in the segment with this thread's id, and every `ST!`
//!   with its start time as a lock word records it (24 bits, in the word's top three
//!   bytes), so that lock words can name a live owner: this very thread;
//! - bit 4: pad the segment with zeros to [`PADDED_LEN`] bytes, so that a small input
//!   is a large heap (the blocks a seed ends with, free runs included, have zero
//!   payloads, which the seed leaves out).
//!
//! Whatever the input says, the allocator's lock word (in the heap's shared state) never
//! names a live thread other than this one: a foreign owner is made one that cannot be
//! alive (a thread id above the kernel's limit). A live owner of that lock makes every
//! allocation that needs the back end wait for it, by design (the lock is robust, not
//! a timeout); a dead one is taken over, and that recovery is still fuzzed.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Offsets in the heap header (`sharedctypes/src/heap/mod.rs`, `Header`).
const TOTAL_LEN_AT: usize = 16;
const PID_NAMESPACE_AT: usize = 48;
const TIME_NAMESPACE_AT: usize = 56;
/// Bytes of the header and the allocator's state (`heap::HEADER_SIZE`).
pub const HEADER_SIZE: usize = 4096;
/// The allocator's lock word (`heap::alloc::ALLOC_STATE_AT`, the `RawLock` first).
const ALLOC_LOCK_AT: usize = 128;
/// How long bit 4 makes a segment.
pub const PADDED_LEN: usize = 1 << 20;

/// The thread id bits of a lock word (`sync/raw_lock.rs`, `TID_MASK`), and all the
/// bits that name its owner (`OWNER_MASK`: the TID, "start unknown", the start time).
const TID_MASK: u64 = 0x3fff_ffff;
pub const OWNER_MASK: u64 = 0xffff_ff80_3fff_ffff;
/// A thread id bit above every kernel's `pid_max` (at most 2^22): a tid with it set
/// is never alive.
const NEVER_ALIVE: u64 = 1 << 29;

/// The inode of `/proc/self/ns/<which>`, as a heap's header records it (`u64::MAX`
/// for a kernel without time namespaces, 0 without `/proc`).
fn namespace(which: &str) -> u64 {
    match std::fs::metadata(format!("/proc/self/ns/{which}")) {
        Ok(m) => m.ino(),
        Err(_) if which == "time" && std::fs::metadata("/proc/self/ns/pid").is_ok() => u64::MAX,
        Err(_) => 0,
    }
}

/// This thread's id, and its start time as a lock word records it (bits 40..=63: the
/// start time, field 22 of `/proc/thread-self/stat`, modulo 2^24, 0 made 1).
pub fn me() -> (u32, [u8; 3]) {
    thread_local! {
        static ME: (u32, [u8; 3]) = {
            // SAFETY: `gettid` has no preconditions.
            let tid = unsafe { libc::gettid() } as u32;
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let start: u32 = after_name
                .split_ascii_whitespace()
                .nth(19)
                .and_then(|s| s.parse::<u64>().ok())
                .map_or(0, |s| (s & 0xff_ffff) as u32);
            let [a, b, c, _] = start.max(1).to_le_bytes();
            (tid, [a, b, c])
        };
    }
    ME.with(|me| *me)
}

/// Replaces every occurrence of `pattern` in `bytes` with `with` (as long).
fn replace_all(bytes: &mut [u8], pattern: &[u8], with: &[u8]) {
    let n = pattern.len();
    let mut at = 0;
    while at + n <= bytes.len() {
        if &bytes[at..at + n] == pattern {
            bytes[at..at + n].copy_from_slice(with);
            at += n;
        } else {
            at += 1;
        }
    }
}

/// How a lock word names this thread as its owner.
pub fn my_owner_bits() -> u64 {
    let (tid, [a, b, c]) = me();
    u64::from(tid) | u64::from_le_bytes([0, 0, 0, 0, 0, a, b, c])
}

/// The segment `flags` make of `bytes` (see the module docs), written to `/dev/shm`.
pub fn prepare(flags: u8, bytes: &[u8]) -> Segment {
    let mut segment = bytes.to_vec();
    let len = if flags & 16 != 0 {
        if segment.len() < HEADER_SIZE {
            segment.resize(HEADER_SIZE, 0);
        }
        segment.len().max(PADDED_LEN)
    } else {
        segment.len()
    };
    if segment.len() >= HEADER_SIZE {
        if flags & 1 != 0 {
            let len = len as u64;
            segment[TOTAL_LEN_AT..TOTAL_LEN_AT + 8].copy_from_slice(&len.to_ne_bytes());
        }
        if flags & 2 != 0 {
            for (at, which) in [(PID_NAMESPACE_AT, "pid"), (TIME_NAMESPACE_AT, "time")] {
                segment[at..at + 8].copy_from_slice(&namespace(which).to_ne_bytes());
            }
        }
    }
    if flags & 4 != 0 {
        let (tid, start) = me();
        replace_all(&mut segment, b"ST!", &start);
        replace_all(&mut segment, b"TID!", &tid.to_ne_bytes());
    }
    if segment.len() >= HEADER_SIZE {
        let word = &mut segment[ALLOC_LOCK_AT..ALLOC_LOCK_AT + 8];
        let mut w = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
        if w & TID_MASK != 0 && w & OWNER_MASK != my_owner_bits() {
            w |= NEVER_ALIVE;
            word.copy_from_slice(&w.to_ne_bytes());
        }
    }
    Segment::new(&segment, len)
}

/// A segment's name in `/dev/shm`, removed on drop. (A crash aborts the process, so
/// it leaves its input behind as `/dev/shm/scfuzz-<pid>-<tid>-<n>`.)
pub struct Segment {
    pub name: String,
}

impl Segment {
    /// Writes `bytes` under a fresh name, followed by zeros up to `len` bytes (a hole
    /// in the file: no memory until touched).
    fn new(bytes: &[u8], len: usize) -> Segment {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let segment = Segment {
            // The thread too: the regression tests load this module once per harness,
            // each with its own `N`, and run them on threads side by side.
            name: format!("/scfuzz-{}-{}-{n}", std::process::id(), me().0),
        };
        let file = std::fs::File::create(segment.path()).expect("create a segment in /dev/shm");
        (&file)
            .write_all(bytes)
            .expect("write a segment to /dev/shm");
        file.set_len(len as u64)
            .expect("size a segment in /dev/shm");
        segment
    }

    fn path(&self) -> String {
        format!("/dev/shm{}", self.name)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}
