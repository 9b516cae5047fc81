//! The allocator: blocks carved from the heap by a bump frontier, counted, and given
//! back to free lists when their count reaches zero; from any process that maps the
//! heap, robust to a process killed at any instant.
//!
//! # Blocks
//!
//! Everything allocated is a *block*: a 16-byte [`BlockHeader`] followed by the
//! object. Blocks tile the heap from [`HEADER_SIZE`] up to the *frontier*, the first
//! header that is still zero (everything past it is fresh, zero memory), so the heap
//! can be walked from block to block. A header holds the block's size and state in
//! one word (`tag`) and, while the block is live, the object's count (`word`); while
//! it is free, the same word links it into a free list.
//!
//! - **Fresh memory** comes from the frontier: an allocator finds the first zero
//!   header (starting at the `cursor` hint) and claims it with one compare-and-swap
//!   from zero to its size, then moves the hint past it (`fetch_max`: the hint only
//!   grows, so it never names a header a merge has zeroed). The claim is the only write
//!   that matters: a process killed right after it leaves a live block (leaked), never
//!   a hole in the tiling.
//! - **Small blocks** (up to [`MAX_SMALL`] bytes, header included) come in 43 size
//!   classes. A freed small block is zeroed and pushed on its class's lock-free stack
//!   (a Treiber stack whose head is an offset plus a tag in one 64-bit word, against
//!   ABA; [`SHARDS`] stacks per class, picked by thread id, so that processes churning
//!   side by side do not share one cache line); an allocation pops from its class
//!   first, its own shard before the others. One compare-and-swap each way, so a
//!   process killed mid-operation loses at most the block it was moving.
//! - **Large blocks and everything else** go through the *back end*, under the heap's
//!   allocator lock (this crate's robust [`RawLock`]): a list of free *runs* (blocks in
//!   state `FREE_LARGE`, whose payload is always zero), first fit. A large block
//!   (≥ [`LARGE`]) is page-granular (its object starts on a page, its size is whole
//!   pages), and its pages are given back to the system when it is freed
//!   (`madvise(MADV_REMOVE)`, which punches a hole in the heap's file).
//! - **Nothing is stranded**: when an allocation finds neither a free block nor fresh
//!   memory, the back end drains the class stacks into runs and merges neighbouring
//!   free blocks (a walk of the heap) before it gives up with `OutOfMemory`.
//!
//! Every change the back end makes keeps the tiling valid after each single store
//! (a run is split by writing the new headers inside it first, then shrinking it), and
//! the list of runs is a cache of what the tiling says: the lock holder marks the
//! back end `dirty` while it changes it, and whoever takes the lock next and finds it
//! dirty (its holder died) rebuilds the list from a walk. Offsets read from free lists
//! and headers are checked before use, like directory entries.
//!
//! # Counting
//!
//! A live block's `word` counts the handles to its object, in all processes. Cloning
//! a handle adds one, dropping one takes one away; the handle that takes it to zero
//! frees the block. A handle carries the fork generation it was counted in: a copy
//! that came into a process through `fork` (a raw `libc::fork`, or the handles a
//! [`Process`](crate::Process) child inherits) was never counted there, and dropping
//! it does nothing (see [`BlockRef`]).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Heap, HEADER_SIZE};
use crate::error::{Error, Result};
use crate::os;
use crate::sync::raw_lock::{Acquired, RawLock};
use crate::sync::thread_id;

/// Bytes of a block's header.
pub(crate) const BLOCK_HEADER: usize = 16;
/// The largest block (header included) kept in a size class.
pub(crate) const MAX_SMALL: usize = 32 << 10;
/// Blocks of at least this many bytes are page-granular and give their pages back to
/// the system when freed.
pub(crate) const LARGE: usize = 64 << 10;
/// Heaps are at most this large: free-list heads hold a block's offset in 40 bits (in
/// 16-byte units).
pub(crate) const MAX_HEAP: usize = 1 << 44;

/// A block's state, in the low bits of its `tag`.
const STATE_MASK: u64 = 0xf;
/// A live object, counted.
const LIVE: u64 = 1;
/// Free, on (or being moved to or from) a size class's stack.
const FREE_SMALL: u64 = 2;
/// Free, zero, owned by the back end (on its list of runs, or waiting for a rebuild).
const FREE_LARGE: u64 = 3;
/// Live, used by the heap itself (the directory): never counted or freed.
const INTERNAL: u64 = 4;
/// Padding claimed at the frontier before an aligned block: free, zero, and not on any
/// list until the back end's next rebuild merges it with its free neighbours (or makes
/// it a run of its own).
const PAD: u64 = 5;

/// A live block's `word`: the count (low bits) and, once the object has been
/// published, this mark.
const PUBLISHED: u64 = 1 << 63;
const COUNT_MASK: u64 = PUBLISHED - 1;

/// The number of small size classes.
pub(crate) const CLASSES: usize = 43;

/// `MADV_POPULATE_WRITE` (Linux 5.14): commits pages now, failing with `ENOMEM`
/// instead of a later `SIGBUS`.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// The header before every block's object. Atomics only: other processes write it.
#[repr(C)]
pub(crate) struct BlockHeader {
    /// Size in bytes (a multiple of 16, header included) | state; 0 past the frontier.
    tag: AtomicU64,
    /// Live: the object's count. Free: the next block's offset in its list (0: none).
    word: AtomicU64,
}

/// The allocator's shared state, right after the heap's [`Header`](super::Header).
#[repr(C)]
pub(crate) struct AllocState {
    /// The back end's lock.
    lock: RawLock,
    /// Non-zero while a holder of `lock` changes the back end; the next holder rebuilds
    /// the list of runs if it finds it set.
    dirty: AtomicU64,
    /// The first free run (a `FREE_LARGE` block's offset), 0 for none.
    runs: AtomicU64,
    /// Each size class's stacks, [`SHARDS`] of them: a block offset in 16-byte units
    /// (low 40 bits) and a tag bumped by every push and pop (high 24 bits). A thread
    /// frees to the shard its thread id picks and allocates from it first, so that
    /// processes churning side by side do not fight over one cache line; any shard's
    /// blocks serve any thread.
    classes: [[AtomicU64; CLASSES]; SHARDS],
}

/// Stacks per size class. Consecutive thread ids (the threads of a process, children
/// forked one after another) pick different ones.
pub(crate) const SHARDS: usize = 8;

/// Where [`AllocState`] lives.
pub(crate) const ALLOC_STATE_AT: usize = 128;
static_assertions::const_assert!(ALLOC_STATE_AT + std::mem::size_of::<AllocState>() <= HEADER_SIZE);
static_assertions::const_assert!(std::mem::size_of::<super::Header>() <= ALLOC_STATE_AT);

const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// The block size of class `c`: 32 to 256 in steps of 16, then four steps per doubling
/// up to [`MAX_SMALL`].
pub(crate) const fn class_size(c: usize) -> usize {
    if c < 15 {
        32 + 16 * c
    } else {
        let k = c - 15;
        let octave = 1usize << (8 + k / 4);
        octave + (k % 4 + 1) * (octave / 4)
    }
}

/// The smallest class whose blocks hold `size` bytes (header included), for
/// `size <= MAX_SMALL`.
pub(crate) fn class_of(size: usize) -> usize {
    if size <= 256 {
        size.max(32).saturating_sub(32).div_ceil(16)
    } else {
        let octave_log = usize::BITS - 1 - (size - 1).leading_zeros();
        let octave = 1usize << octave_log;
        let step = octave / 4;
        15 + (octave_log as usize - 8) * 4 + (size - octave).div_ceil(step) - 1
    }
}

/// What an allocation is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Use {
    /// An object, counted (its count starts at 1).
    Object,
    /// The heap's own bookkeeping (directory entries and tables): never freed.
    Internal,
}

impl Use {
    fn state(self) -> u64 {
        match self {
            Use::Object => LIVE,
            Use::Internal => INTERNAL,
        }
    }
}

/// The shard of the size classes this thread frees to and allocates from first.
#[inline]
fn my_shard() -> usize {
    thread_id::me().tid as usize % SHARDS
}

fn size_of(tag: u64) -> usize {
    (tag & !STATE_MASK) as usize
}

impl Heap {
    fn alloc_state(&self) -> &AllocState {
        // SAFETY: the mapping is at least HEADER_SIZE bytes, page-aligned, so the state
        // at ALLOC_STATE_AT (asserted to fit) is in bounds and aligned; it is made of
        // atomics only, valid for every bit pattern, and lives as long as `self`.
        unsafe { self.ptr_at::<AllocState>(ALLOC_STATE_AT).as_ref() }
    }

    /// The header of the block at `block`, which must be a checked block offset
    /// (16-aligned, at least `HEADER_SIZE`, with 16 bytes before the mapping's end).
    fn header_at(&self, block: usize) -> &BlockHeader {
        debug_assert!(self.valid_block(block));
        // SAFETY: `block` is in bounds for a 16-byte header (callers check it with
        // `valid_block`, or got it from the allocator) and 16-aligned; a header is atomics
        // only, valid for any bits; the mapping lives as long as `self`.
        unsafe { self.ptr_at::<BlockHeader>(block).as_ref() }
    }

    /// Whether a header can be read at `block`: aligned, after the heap's header, and
    /// inside the mapping.
    fn valid_block(&self, block: usize) -> bool {
        block >= HEADER_SIZE
            && block % BLOCK_HEADER == 0
            && block
                .checked_add(BLOCK_HEADER)
                .is_some_and(|end| end <= self.inner.len)
    }

    /// The size of the block whose tag is `tag` at `block`, if it is plausible: at
    /// least a header, a multiple of 16, inside the mapping.
    fn checked_size(&self, block: usize, tag: u64) -> Option<usize> {
        let size = size_of(tag);
        (size >= BLOCK_HEADER
            && size % BLOCK_HEADER == 0
            && block
                .checked_add(size)
                .is_some_and(|end| end <= self.inner.len))
        .then_some(size)
    }

    /// The frontier hint, clamped into the mapping.
    pub(crate) fn cursor(&self) -> usize {
        let c = self.header().cursor.load(Ordering::Relaxed);
        usize::try_from(c)
            .unwrap_or(usize::MAX)
            .clamp(HEADER_SIZE, self.inner.len)
            & !(BLOCK_HEADER - 1)
    }

    /// Checks (for `open`) that the frontier hint is where a walk of the blocks from
    /// the start gets to: a block boundary, at or before the first zero header, as
    /// every allocator leaves it. A hint inside a block (or past the frontier) would
    /// make the next allocation claim memory in use, such as a directory table whose
    /// empty slots read as a zero header. O(blocks before the hint).
    pub(crate) fn check_frontier(&self) -> Result<()> {
        let hint = self.header().cursor.load(Ordering::Relaxed);
        let mut at = HEADER_SIZE;
        loop {
            if at as u64 == hint {
                return Ok(());
            }
            if at as u64 > hint || !self.valid_block(at) {
                return Err(Error::InvalidHeap);
            }
            let tag = self.header_at(at).tag.load(Ordering::Acquire);
            at += self.checked_size(at, tag).ok_or(Error::InvalidHeap)?;
        }
    }

    /// The highest offset an object may end at: the end of the mapping. Offsets read
    /// from shared memory are checked against it.
    pub(crate) fn limit(&self) -> usize {
        self.inner.len
    }

    /// Allocates an object of `size` bytes aligned to `align` (a power of two up to the
    /// page size), counted once, and returns its offset. Its memory is zero. On failure
    /// nothing is consumed.
    pub(crate) fn alloc(&self, size: usize, align: usize) -> Result<usize> {
        self.alloc_for(size, align, Use::Object)
    }

    pub(crate) fn alloc_for(&self, size: usize, align: usize, what: Use) -> Result<usize> {
        debug_assert!(align.is_power_of_two());
        // Every page size is at least 4096, so only a larger alignment needs `sysconf`.
        if align > 4096 && align > os::page_size() {
            return Err(Error::AlignmentTooLarge {
                align,
                max: os::page_size(),
            });
        }
        let oom = || Error::OutOfMemory {
            requested: size,
            available: self.available(),
        };
        let needed = size
            .checked_add(BLOCK_HEADER + BLOCK_HEADER - 1)
            .map(|n| n & !(BLOCK_HEADER - 1))
            .filter(|&n| n <= self.inner.len)
            .ok_or_else(oom)?;
        if needed <= MAX_SMALL && align <= BLOCK_HEADER {
            let class = class_of(needed);
            let bsize = class_size(class);
            if let Some(block) = self.pop(class) {
                return Ok(self.hand_out(block, bsize, what));
            }
            if let Some(block) = self.claim_fresh(bsize, BLOCK_HEADER, what) {
                return Ok(block + BLOCK_HEADER);
            }
            return self.alloc_slow(bsize, BLOCK_HEADER, what)?.ok_or_else(oom);
        }
        let (bsize, align) = if needed >= LARGE {
            // Page-granular: the object starts on a page and ends on one.
            let page = os::page_size();
            let body = size.checked_next_multiple_of(page).ok_or_else(oom)?;
            let bsize = body.checked_add(BLOCK_HEADER).ok_or_else(oom)?;
            (bsize, align.max(page))
        } else if needed <= MAX_SMALL {
            (class_size(class_of(needed)), align)
        } else {
            (needed, align)
        };
        self.alloc_slow(bsize, align, what)?.ok_or_else(oom)
    }

    /// Turns a block just taken from a free list into a live one.
    fn hand_out(&self, block: usize, bsize: usize, what: Use) -> usize {
        let h = self.header_at(block);
        h.word
            .store(u64::from(what == Use::Object), Ordering::Relaxed);
        h.tag.store(bsize as u64 | what.state(), Ordering::Release);
        block + BLOCK_HEADER
    }

    /// Claims a fresh block of `bsize` bytes at the frontier, its object aligned to
    /// `align`; `None` when the frontier has no room (or a header on the way is
    /// corrupt).
    fn claim_fresh(&self, bsize: usize, align: usize, what: Use) -> Option<usize> {
        self.claim_fresh_from(self.cursor(), bsize, align, what)
    }

    /// [`claim_fresh`](Heap::claim_fresh), walking from `at`, a value the cursor had.
    fn claim_fresh_from(
        &self,
        mut at: usize,
        bsize: usize,
        align: usize,
        what: Use,
    ) -> Option<usize> {
        let hint = &self.header().cursor;
        loop {
            if !self.valid_block(at) {
                return None;
            }
            let h = self.header_at(at);
            let tag = h.tag.load(Ordering::Acquire);
            if tag != 0 {
                at += self.checked_size(at, tag)?;
                continue;
            }
            // A zero header below the cursor is not the frontier (every header below the
            // cursor was claimed): it is inside a run that a merge made since this walk
            // read the size that led here (a merge moves the cursor past a header before
            // it zeroes it, with `Release`; the `Acquire` load above sees the cursor it
            // left). Claiming it would make a block inside free memory. What is left is
            // an ABA between this check and the compare-and-swap below: the frontier
            // claimed, freed and merged by others in between, like the wrap-around of a
            // class stack's tag.
            let cursor = self.cursor();
            if at < cursor {
                at = cursor;
                continue;
            }
            // Padding so that the object (after the header) is aligned: a free block of
            // its own (a header-only block when it is 16 bytes).
            let pad = (align - (at + BLOCK_HEADER) % align) % align;
            let (claim, state) = if pad > 0 {
                (pad, PAD)
            } else {
                (bsize, what.state())
            };
            if at.checked_add(claim)? > self.inner.len {
                return None;
            }
            if h.tag
                .compare_exchange(0, claim as u64 | state, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            if pad == 0 {
                // Only now: before the claim, another allocator may own this header (and
                // its block a count above one).
                h.word
                    .store(u64::from(what == Use::Object), Ordering::Relaxed);
            }
            // Monotonic, so that it always names a block boundary at or below the
            // frontier; merges zero headers only below it.
            let end = at + claim;
            hint.fetch_max(end as u64, Ordering::Relaxed);
            if pad > 0 {
                at = end;
                continue;
            }
            return Some(at);
        }
    }

    // -----------------------------------------------------------------------------
    // Size classes: lock-free stacks
    // -----------------------------------------------------------------------------

    fn push(&self, class: usize, block: usize) {
        self.push_to(my_shard(), class, block);
    }

    fn push_to(&self, shard: usize, class: usize, block: usize) {
        let head = &self.alloc_state().classes[shard][class];
        let h = self.header_at(block);
        let mut cur = head.load(Ordering::Relaxed);
        loop {
            h.word.store((cur & OFFSET_MASK) << 4, Ordering::Relaxed);
            let new = ((block as u64) >> 4) | (((cur >> OFFSET_BITS) + 1) << OFFSET_BITS);
            match head.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes a block off `class`'s stack. A link that is not a plausible block of the
    /// class (another process wrote it) ends the stack for this call; so does a block
    /// taken off that turns out not to be a free block of the class (left alone, and
    /// not followed further: the links of such a block may form a cycle).
    fn pop(&self, class: usize) -> Option<usize> {
        let mine = my_shard();
        (0..SHARDS).find_map(|i| self.pop_from((mine + i) % SHARDS, class))
    }

    fn pop_from(&self, shard: usize, class: usize) -> Option<usize> {
        let head = &self.alloc_state().classes[shard][class];
        let bsize = class_size(class) as u64;
        let mut cur = head.load(Ordering::Acquire);
        loop {
            let block = ((cur & OFFSET_MASK) << 4) as usize;
            if block == 0 || !self.valid_block(block) {
                return None;
            }
            // Read while another thread may pop and reuse the block: then the value is
            // garbage, and the tag makes the compare-and-swap below fail.
            let next = self.header_at(block).word.load(Ordering::Relaxed);
            if next != 0 && !self.valid_block(next as usize) {
                return None;
            }
            let new = (next >> 4) | (((cur >> OFFSET_BITS) + 1) << OFFSET_BITS);
            match head.compare_exchange_weak(cur, new, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    let tag = self.header_at(block).tag.load(Ordering::Acquire);
                    if tag == bsize | FREE_SMALL && self.checked_size(block, tag).is_some() {
                        return Some(block);
                    }
                    // Not a free block of this class: somebody else's memory; leave it,
                    // and end the stack for this call (its links may loop back to it).
                    return None;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    // -----------------------------------------------------------------------------
    // Counting
    // -----------------------------------------------------------------------------

    /// Counts one more handle to the object at `object` (a live block's object).
    #[inline]
    pub(crate) fn retain(&self, object: usize) {
        self.header_at(object - BLOCK_HEADER)
            .word
            .fetch_add(1, Ordering::Relaxed);
    }

    /// [`retain`](Heap::retain) for the directory: also marks the object as reachable
    /// through the directory, so that its last drop never takes the shortcut (a lookup
    /// may be counting it at that very moment).
    pub(crate) fn retain_published(&self, object: usize) {
        let word = &self.header_at(object - BLOCK_HEADER).word;
        word.fetch_or(PUBLISHED, Ordering::Relaxed);
        word.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one more handle to the object at `object`, an offset read from shared
    /// memory (a directory entry): only if a live block starts there and holds
    /// `len` bytes, and its count is not zero (being freed). Returns whether it did.
    pub(crate) fn try_retain(&self, object: usize, len: usize) -> bool {
        let Some(block) = object.checked_sub(BLOCK_HEADER) else {
            return false;
        };
        if !self.valid_block(block) {
            return false;
        }
        let h = self.header_at(block);
        let tag = h.tag.load(Ordering::Acquire);
        let fits = self
            .checked_size(block, tag)
            .is_some_and(|size| len <= size - BLOCK_HEADER);
        if tag & STATE_MASK != LIVE || !fits {
            return false;
        }
        self.count_up(h)
    }

    /// The compare-and-swap loop of [`try_retain`](Heap::try_retain): counts one more
    /// on `h`, a header whose tag said live, unless its count is zero.
    fn count_up(&self, h: &BlockHeader) -> bool {
        let mut count = h.word.load(Ordering::Relaxed);
        loop {
            // Only published objects are looked up: a count without the mark is not one
            // (nor is a free block's list link, which a lookup that read the tag while
            // the object was live may find here once it was freed).
            if count & PUBLISHED == 0 || count & COUNT_MASK == 0 || count & COUNT_MASK == COUNT_MASK
            {
                return false;
            }
            match h.word.compare_exchange_weak(
                count,
                count + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => count = actual,
            }
        }
    }

    /// Whether `len` bytes at `at`, an offset read from shared memory (a directory
    /// table or entry), are the object of an internal block: the directory's own
    /// memory, which the allocator never hands out. (Inside the mapping is not enough:
    /// a table or entry reaching past its block would overlap what is allocated next.)
    pub(crate) fn is_internal(&self, at: usize, len: usize) -> bool {
        let Some(block) = at.checked_sub(BLOCK_HEADER) else {
            return false;
        };
        if !self.valid_block(block) {
            return false;
        }
        let tag = self.header_at(block).tag.load(Ordering::Acquire);
        tag & STATE_MASK == INTERNAL
            && self
                .checked_size(block, tag)
                .is_some_and(|size| len <= size - BLOCK_HEADER)
    }

    /// Counts one handle less to the object at `object`; frees its block when that was
    /// the last.
    #[inline]
    pub(crate) fn release(&self, object: usize) {
        let block = object - BLOCK_HEADER;
        let word = &self.header_at(block).word;
        // The shortcut: a count of one on an object never published is the caller's
        // handle alone, and nothing can count it again (a clone needs a counted handle,
        // a lookup a published object), so no atomic read-modify-write is needed. The
        // fence pairs with the release of whoever dropped the second-to-last handle.
        if word.load(Ordering::Relaxed) == 1 {
            std::sync::atomic::fence(Ordering::Acquire);
            self.free_block(block);
            return;
        }
        let previous = word.fetch_sub(1, Ordering::Release) & COUNT_MASK;
        if previous == 1 {
            std::sync::atomic::fence(Ordering::Acquire);
            self.free_block(block);
        } else if previous == 0 {
            // Released more often than counted: only a process writing the heap behind
            // our back does that. Undo, and leave the block alone.
            self.header_at(block).word.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`release`](Heap::release) for an offset read from shared memory (a directory
    /// entry being removed): only if a live object's block starts there.
    pub(crate) fn release_checked(&self, object: usize) {
        let Some(block) = object.checked_sub(BLOCK_HEADER) else {
            return;
        };
        if self.valid_block(block) {
            let tag = self.header_at(block).tag.load(Ordering::Acquire);
            if tag & STATE_MASK == LIVE && self.checked_size(block, tag).is_some() {
                self.release(object);
            }
        }
    }

    /// Gives a block whose count reached zero back to the free lists.
    #[cold]
    fn free_block(&self, block: usize) {
        let h = self.header_at(block);
        let tag = h.tag.load(Ordering::Acquire);
        let Some(size) = self.checked_size(block, tag) else {
            return;
        };
        if tag & STATE_MASK != LIVE {
            return;
        }
        let class = (size <= MAX_SMALL).then(|| class_of(size));
        if let Some(class) = class.filter(|&c| class_size(c) == size) {
            // SAFETY: the block is inside the mapping (checked size), its count is zero:
            // no counted handle to it exists in any process, so nothing reads or writes
            // its object (an uncounted copy used after its object went, against the
            // rule in the crate docs, or a process that does not cooperate, could: see
            // "Memory that is given back" and `HeapInner`'s `Sync`).
            unsafe { self.zero(block + BLOCK_HEADER, size - BLOCK_HEADER) };
            h.tag.store(size as u64 | FREE_SMALL, Ordering::Release);
            self.push(class, block);
            return;
        }
        let Ok(backend) = self.backend() else {
            // The lock cannot be used from here (another namespace): leak the block.
            return;
        };
        backend.dirty();
        self.release_pages(block, size);
        h.word.store(0, Ordering::Relaxed);
        h.tag.store(size as u64 | FREE_LARGE, Ordering::Release);
        backend.link(block);
        backend.clean();
    }

    /// Zeroes `len` bytes at `at`.
    ///
    /// # Safety
    ///
    /// `[at, at + len)` must be inside the mapping, and no other thread or process may
    /// access it meanwhile (a freed block's object).
    unsafe fn zero(&self, at: usize, len: usize) {
        let p = self.ptr_at::<u8>(at);
        // SAFETY: the caller's contract.
        unsafe { std::ptr::write_bytes(p.as_ptr(), 0, len) };
    }

    /// Makes the object of the free block at `block` (`size` bytes) zero, giving its
    /// whole pages back to the system (a hole in the heap's file).
    fn release_pages(&self, block: usize, size: usize) {
        let page = os::page_size();
        let start = block + BLOCK_HEADER;
        let end = block + size;
        let first = start.next_multiple_of(page).min(end);
        let last = (end / page * page).max(first);
        // SAFETY: inside the block (checked by the caller), whose count is zero (or
        // which the back end owns): nobody else accesses its object.
        unsafe { self.zero(start, first - start) };
        // SAFETY: as above, the block's tail.
        unsafe { self.zero(last, end - last) };
        if last > first {
            let p = self.ptr_at::<u8>(first);
            // SAFETY: `[first, last)` is a page-aligned range inside the mapping, owned as
            // above. For a shared mapping MADV_REMOVE frees the backing pages (a hole in
            // the file); later reads see zeros.
            let rc = unsafe { libc::madvise(p.as_ptr().cast(), last - first, libc::MADV_REMOVE) };
            if rc != 0 {
                // SAFETY: as above.
                unsafe { self.zero(first, last - first) };
            }
        }
    }

    // -----------------------------------------------------------------------------
    // The back end
    // -----------------------------------------------------------------------------

    /// Takes the allocator lock. [`Error::ForeignPidNamespace`] or
    /// [`Error::ForeignTimeNamespace`] if this process must not use it: the heap was
    /// made in another PID or time namespace, where thread ids and start times (which
    /// the lock uses to tell a dead holder) mean something else.
    fn backend(&self) -> Result<Backend<'_>> {
        let me = thread_id::me();
        let header = self.header();
        let theirs = (
            header.pid_namespace.load(Ordering::Relaxed),
            header.time_namespace.load(Ordering::Relaxed),
        );
        let ours = (me.ns >> 32, me.ns & 0xffff_ffff);
        let differ = |a: u64, b: u64| a != 0 && b != 0 && (a & 0xffff_ffff) != b;
        if differ(theirs.0, ours.0) {
            return Err(Error::ForeignPidNamespace);
        }
        if differ(theirs.1, ours.1) {
            return Err(Error::ForeignTimeNamespace);
        }
        let lock = &self.alloc_state().lock;
        let died = match lock.try_fast(me) {
            Some(_) => false,
            None => match lock.lock_contended(me, None) {
                Acquired::Clean => false,
                Acquired::OwnerDied => true,
                // Only if this thread holds it already: never (no callback runs under it).
                Acquired::Mine | Acquired::Busy => {
                    return Err(Error::os(
                        "the heap's allocator lock",
                        std::io::Error::other("already held by this thread"),
                    ))
                }
            },
        };
        let backend = Backend { heap: self, me };
        if died || self.alloc_state().dirty.load(Ordering::Acquire) != 0 {
            // A holder died midway: rebuild the list, and zero every run (it may have
            // left headers it was writing inside one).
            backend.dirty();
            backend.rebuild(false, true);
            backend.clean();
        }
        Ok(backend)
    }

    /// Allocation through the back end: a free run, then the frontier, then (after
    /// draining the size classes and merging neighbours) a free run again.
    #[cold]
    fn alloc_slow(&self, bsize: usize, align: usize, what: Use) -> Result<Option<usize>> {
        let backend = self.backend()?;
        if let Some(object) = backend.carve_run(bsize, align, what) {
            return Ok(Some(object));
        }
        if let Some(block) = self.claim_fresh(bsize, align, what) {
            return Ok(Some(block + BLOCK_HEADER));
        }
        backend.dirty();
        backend.rebuild(true, false);
        backend.clean();
        if let Some(object) = backend.carve_run(bsize, align, what) {
            return Ok(Some(object));
        }
        Ok(self
            .claim_fresh(bsize, align, what)
            .map(|block| block + BLOCK_HEADER))
    }

    // -----------------------------------------------------------------------------
    // Statistics
    // -----------------------------------------------------------------------------

    /// Walks the blocks: (bytes of live objects' blocks, live objects).
    pub(crate) fn live(&self) -> (usize, usize) {
        let mut at = HEADER_SIZE;
        let (mut bytes, mut objects) = (0, 0);
        while self.valid_block(at) {
            let tag = self.header_at(at).tag.load(Ordering::Acquire);
            let Some(size) = self.checked_size(at, tag) else {
                break;
            };
            // The heap's own directory (and free memory) is not an object.
            if tag & STATE_MASK == LIVE {
                bytes += size;
                objects += 1;
            }
            at += size;
        }
        (bytes, objects)
    }
}

/// The allocator lock, held.
struct Backend<'a> {
    heap: &'a Heap,
    me: thread_id::Me,
}

impl Drop for Backend<'_> {
    fn drop(&mut self) {
        let lock = &self.heap.alloc_state().lock;
        let held = lock.word.load(Ordering::Relaxed);
        lock.unlock(self.me.owner, held, false);
    }
}

impl Backend<'_> {
    fn state(&self) -> &AllocState {
        self.heap.alloc_state()
    }

    fn dirty(&self) {
        self.state().dirty.store(1, Ordering::Release);
    }

    fn clean(&self) {
        self.state().dirty.store(0, Ordering::Release);
    }

    /// Puts the free run at `block` at the head of the list.
    fn link(&self, block: usize) {
        let runs = &self.state().runs;
        self.heap
            .header_at(block)
            .word
            .store(runs.load(Ordering::Relaxed), Ordering::Relaxed);
        runs.store(block as u64, Ordering::Release);
    }

    /// First fit in the list of runs: carves a block of `bsize` bytes whose object is
    /// aligned to `align`, and returns the object's offset.
    fn carve_run(&self, bsize: usize, align: usize, what: Use) -> Option<usize> {
        let heap = self.heap;
        let mut prev: Option<usize> = None;
        let mut at = self.state().runs.load(Ordering::Acquire) as usize;
        let mut steps = 0usize;
        while at != 0 {
            steps += 1;
            if !heap.valid_block(at) || steps > heap.inner.len / BLOCK_HEADER {
                // A corrupt list: forget it (the next rebuild makes a new one).
                self.state().runs.store(0, Ordering::Release);
                return None;
            }
            let h = heap.header_at(at);
            let tag = h.tag.load(Ordering::Acquire);
            let next = h.word.load(Ordering::Relaxed) as usize;
            let Some(size) = heap
                .checked_size(at, tag)
                .filter(|_| tag & STATE_MASK == FREE_LARGE)
            else {
                self.state().runs.store(0, Ordering::Release);
                return None;
            };
            let p = (at + BLOCK_HEADER).next_multiple_of(align) - BLOCK_HEADER;
            if p + bsize <= at + size {
                let front = p - at;
                let rest = at + size - (p + bsize);
                // The pages written from here on (the block, the rest's header) may
                // have been given back to the system: in a named heap, commit them
                // first, so that a full `/dev/shm` is `OutOfMemory` rather than a
                // `SIGBUS` on first touch (here, or in the caller's object).
                let end = p + bsize + if rest > 0 { BLOCK_HEADER } else { 0 };
                if !heap.reserve(p, end - p) {
                    return None;
                }
                self.dirty();
                if rest > 0 {
                    let r = heap.header_at(p + bsize);
                    r.word.store(0, Ordering::Relaxed);
                    r.tag.store(rest as u64 | FREE_LARGE, Ordering::Release);
                }
                let b = heap.header_at(p);
                b.word
                    .store(u64::from(what == Use::Object), Ordering::Relaxed);
                // Unlink `at` (or keep it, shrunk, if a front part stays free).
                if front > 0 {
                    b.tag.store(bsize as u64 | what.state(), Ordering::Release);
                    h.tag.store(front as u64 | FREE_LARGE, Ordering::Release);
                } else {
                    let link = match prev {
                        Some(prev) => &heap.header_at(prev).word,
                        None => &self.state().runs,
                    };
                    link.store(next as u64, Ordering::Release);
                    b.tag.store(bsize as u64 | what.state(), Ordering::Release);
                }
                if rest > 0 {
                    self.link(p + bsize);
                }
                self.clean();
                return Some(p + BLOCK_HEADER);
            }
            prev = Some(at);
            at = next;
        }
        None
    }

    /// Rebuilds the list of runs from a walk of the heap, merging neighbouring free
    /// blocks; with `drain`, first moves every block of the size classes to the back
    /// end; with `scrub`, zeroes every run whole (after a holder died while writing in
    /// one). Each step keeps the tiling valid; a holder killed midway leaves `dirty`
    /// set, and the next one starts over.
    fn rebuild(&self, drain: bool, scrub: bool) {
        let heap = self.heap;
        if drain {
            for (shard, class) in (0..SHARDS).flat_map(|s| (0..CLASSES).map(move |c| (s, c))) {
                while let Some(block) = heap.pop_from(shard, class) {
                    let h = heap.header_at(block);
                    h.word.store(0, Ordering::Relaxed);
                    h.tag
                        .store(class_size(class) as u64 | FREE_LARGE, Ordering::Release);
                }
            }
        }
        self.state().runs.store(0, Ordering::Release);
        let mut at = HEADER_SIZE;
        let mut run: Option<usize> = None;
        let finish = |start: usize, end: usize| {
            if scrub || end - start >= LARGE {
                heap.release_pages(start, end - start);
            }
            self.link(start);
        };
        while heap.valid_block(at) {
            let h = heap.header_at(at);
            let tag = h.tag.load(Ordering::Acquire);
            let Some(size) = heap.checked_size(at, tag) else {
                break;
            };
            let state = tag & STATE_MASK;
            if state == FREE_LARGE || state == PAD {
                match run {
                    Some(start) => {
                        let merged = at + size - start;
                        heap.header_at(start)
                            .tag
                            .store(merged as u64 | FREE_LARGE, Ordering::Release);
                        // The cursor past this header before it turns to zero, so that a
                        // frontier walk never takes it for the frontier (see
                        // `claim_fresh_from`): padding whose claimant died before it moved
                        // the cursor may be the last block below it.
                        heap.header()
                            .cursor
                            .fetch_max((at + size) as u64, Ordering::Relaxed);
                        // Now inside the run's object, which must read zero.
                        h.word.store(0, Ordering::Relaxed);
                        h.tag.store(0, Ordering::Release);
                    }
                    None => {
                        if state == PAD {
                            h.word.store(0, Ordering::Relaxed);
                            h.tag.store(size as u64 | FREE_LARGE, Ordering::Release);
                        }
                        run = Some(at);
                    }
                }
            } else if let Some(start) = run.take() {
                finish(start, at);
            }
            at += size;
        }
        if let Some(start) = run {
            finish(start, at);
        }
    }
}

impl Heap {
    /// For a named heap, whose memory was reserved at creation: commits `[at, at + len)`
    /// again after its pages were given back, so that a full `/dev/shm` is an error now
    /// rather than a `SIGBUS` on first touch. Returns false when the system has no room.
    fn reserve(&self, at: usize, len: usize) -> bool {
        if self.header().creator_pid.load(Ordering::Relaxed) == 0 || len == 0 {
            // Anonymous heaps commit memory when it is touched.
            return true;
        }
        let page = os::page_size();
        let start = at / page * page;
        let end = (at + len).next_multiple_of(page).min(self.inner.len);
        let p = self.ptr_at::<u8>(start);
        loop {
            // SAFETY: `[start, end)` is page-aligned and inside the mapping; populating
            // pages does not change their contents.
            let rc = unsafe { libc::madvise(p.as_ptr().cast(), end - start, MADV_POPULATE_WRITE) };
            if rc == 0 {
                return true;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                // A kernel older than 5.14: nothing to check with; touch and hope.
                Some(libc::EINVAL) => return true,
                // EFAULT is what a full tmpfs gives: "a SIGBUS would have been
                // generated on access"; ENOMEM, EHWPOISON: no memory either.
                _ => return false,
            }
        }
    }
}

/// A counted reference to an object in a heap: the process-local part of every handle.
///
/// Cloning counts one more in the object's block; dropping counts one less, and frees
/// the block at zero. The reference remembers the fork generation it was counted in: a
/// copy that reached another process through `fork` (any handle a forked child
/// inherits, including those a [`Process`](crate::Process) closure captured, whose
/// count the parent keeps until the child is reaped) was never counted there, so
/// dropping it there does nothing. Copies made by any other means than `Clone` do not
/// exist in safe code.
pub(crate) struct BlockRef {
    heap: Heap,
    object: usize,
    generation: u32,
}

impl BlockRef {
    /// Takes over the count of a freshly allocated object.
    pub(crate) fn new(heap: &Heap, object: usize) -> BlockRef {
        BlockRef {
            heap: heap.clone(),
            object,
            generation: thread_id::fork_generation(),
        }
    }

    pub(crate) fn heap(&self) -> &Heap {
        &self.heap
    }

    pub(crate) fn offset(&self) -> usize {
        self.object
    }

    /// The object's address in this process.
    pub(crate) fn ptr<T>(&self) -> NonNull<T> {
        self.heap.ptr_at(self.object)
    }
}

impl Clone for BlockRef {
    #[inline]
    fn clone(&self) -> Self {
        self.heap.retain(self.object);
        BlockRef {
            heap: self.heap.clone(),
            object: self.object,
            generation: thread_id::fork_generation(),
        }
    }
}

impl Drop for BlockRef {
    #[inline]
    fn drop(&mut self) {
        if self.generation == thread_id::fork_generation() {
            self.heap.release(self.object);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size() {
        assert_eq!(class_size(CLASSES - 1), MAX_SMALL);
        let mut last = 0;
        for c in 0..CLASSES {
            let s = class_size(c);
            assert!(s > last && s % 16 == 0, "class {c}: {s}");
            assert_eq!(class_of(s), c, "class of {s}");
            assert_eq!(class_of(last + 1), c, "class of {}", last + 1);
            last = s;
        }
        for size in 1..=MAX_SMALL {
            let c = class_of(size);
            assert!(class_size(c) >= size && (c == 0 || class_size(c - 1) < size.max(32)));
        }
    }

    #[test]
    fn alloc_is_aligned_and_disjoint() {
        let heap = Heap::new(1 << 20).unwrap();
        let a = heap.alloc(3, 1).unwrap();
        let b = heap.alloc(8, 8).unwrap();
        let c = heap.alloc(64, 64).unwrap();
        assert_eq!(a, HEADER_SIZE + BLOCK_HEADER);
        assert_eq!(b % 8, 0);
        assert!(b >= a + 3);
        assert_eq!(c % 64, 0);
        assert!(c >= b + 8);
        let page = os::page_size();
        let d = heap.alloc(1, page).unwrap();
        assert_eq!(d % page, 0);
        assert!(matches!(
            heap.alloc(1, page * 2),
            Err(Error::AlignmentTooLarge { .. })
        ));
    }

    #[test]
    fn exhaustion_consumes_nothing() {
        let heap = Heap::new(4096).unwrap();
        let before = heap.used();
        let err = heap.alloc(heap.capacity() + 1, 1).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory { requested, .. }
            if requested == heap.capacity() + 1));
        assert_eq!(heap.used(), before);
        assert!(heap.alloc(usize::MAX, 8).is_err());
        assert!(heap.alloc(usize::MAX / 4, 8).is_err());
        assert_eq!(heap.used(), before);
    }

    #[test]
    fn freed_blocks_are_reused_and_zero() {
        let heap = Heap::new(1 << 20).unwrap();
        let a = heap.alloc(40, 8).unwrap();
        // SAFETY: 40 bytes at `a` belong to this test's object.
        unsafe { std::ptr::write_bytes(heap.ptr_at::<u8>(a).as_ptr(), 0xAB, 40) };
        assert_eq!(heap.live(), (64, 1));
        heap.release(a);
        assert_eq!(heap.live(), (0, 0));
        let b = heap.alloc(33, 1).unwrap();
        assert_eq!(a, b);
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(heap.ptr_at::<u8>(b).as_ptr(), 40) };
        assert!(bytes.iter().all(|&x| x == 0));
    }

    #[test]
    fn small_blocks_merge_into_a_large_one() {
        let heap = Heap::new(1 << 20).unwrap();
        let mut small = Vec::new();
        while let Ok(o) = heap.alloc(100, 8) {
            small.push(o);
        }
        assert!(small.len() > 5000);
        assert!(heap.alloc(600 << 10, 8).is_err());
        for o in small {
            heap.release(o);
        }
        assert_eq!(heap.live(), (0, 0));
        let big = heap.alloc(900 << 10, 8).unwrap();
        heap.release(big);
        // And small ones again, from the merged runs.
        let again: Vec<_> = (0..5000).map(|_| heap.alloc(100, 8).unwrap()).collect();
        for o in again {
            heap.release(o);
        }
    }

    #[test]
    fn large_blocks_are_page_granular_and_reused() {
        let heap = Heap::new(8 << 20).unwrap();
        let page = os::page_size();
        let a = heap.alloc(3 << 20, 8).unwrap();
        assert_eq!(a % page, 0);
        heap.release(a);
        let b = heap.alloc(2 << 20, 8).unwrap();
        assert_eq!(a, b);
        let c = heap.alloc(1 << 20, 8).unwrap();
        assert!(c >= b + (2 << 20));
        heap.release(b);
        heap.release(c);
        assert_eq!(heap.live(), (0, 0));
    }

    #[test]
    fn a_dirty_back_end_is_rebuilt() {
        let heap = Heap::new(1 << 20).unwrap();
        let a = heap.alloc(100 << 10, 8).unwrap();
        heap.release(a);
        // A holder that died midway: a garbage list, marked dirty, and a header it was
        // writing inside the run.
        heap.alloc_state().dirty.store(1, Ordering::Relaxed);
        heap.alloc_state().runs.store(12345, Ordering::Relaxed);
        heap.header_at(a + 4096)
            .tag
            .store(64 | LIVE, Ordering::Relaxed);
        let b = heap.alloc(100 << 10, 8).unwrap();
        assert_eq!(a, b);
        // SAFETY: the object is this test's, 100 KiB long.
        let bytes = unsafe { std::slice::from_raw_parts(heap.ptr_at::<u8>(b).as_ptr(), 100 << 10) };
        assert!(bytes.iter().all(|&x| x == 0));
    }
}

/// Attacks on the allocator's internals: interleavings and shared-memory contents that
/// the public API cannot stage deterministically (see also `tests/alloc_attack.rs`).
#[cfg(test)]
mod attack {
    use std::time::Duration;

    use super::*;

    /// What a lookup does after its tag check passed: the compare-and-swap loop of
    /// `try_retain` on the block's count.
    fn stale_retain(heap: &Heap, block: usize) -> bool {
        heap.count_up(heap.header_at(block))
    }

    /// Allocates an object, publishes it (the directory's count and mark), and drops
    /// the handle's count: what a published object nobody else holds looks like.
    fn published(heap: &Heap, size: usize) -> usize {
        let o = heap.alloc(size, 8).unwrap();
        heap.retain_published(o);
        heap.release(o);
        o
    }

    /// A lookup reads the block's tag while the object is published (live), then the
    /// object is unpublished and freed, and its block taken off the free list by an
    /// allocation that has not handed it out yet; only then does the lookup count.
    /// Counting a free block's list link and giving the count back after the block
    /// was handed out again would free the new object under its owner.
    #[test]
    fn a_stale_lookup_never_counts_a_free_block() {
        let heap = Heap::new(1 << 20).unwrap();
        let a = published(&heap, 40);
        let b = published(&heap, 40);
        heap.release(b); // unpublished
        heap.release(a); // a's word now links to b
        let block = a - BLOCK_HEADER;
        let class = class_of(64);
        assert_eq!(heap.pop(class), Some(block));
        let counted = stale_retain(&heap, block);
        // The allocator hands the block out as a new object; the lookup then finds its
        // entry gone and gives its count back.
        let again = heap.hand_out(block, class_size(class), Use::Object);
        assert_eq!(again, a);
        if counted {
            heap.release(a);
        }
        assert_eq!(heap.live().1, 1, "the new object was freed under its owner");
        assert_ne!(heap.alloc(40, 8).unwrap(), a, "handed out twice");
        heap.release(a);
        assert!(
            !stale_retain(&heap, block),
            "counted a block on a free list"
        );

        // The same with a run of the back end, whose word links the list of runs.
        let c = published(&heap, 40_000);
        let d = published(&heap, 40_000);
        heap.release(d);
        heap.release(c);
        assert!(!stale_retain(&heap, c - BLOCK_HEADER), "counted a free run");
    }

    /// A class stack that another process turned into a cycle of blocks that are not
    /// free (here a live block linking to itself) must not hang allocations.
    #[test]
    fn a_cyclic_class_stack_does_not_hang_allocation() {
        let heap = Heap::new(1 << 20).unwrap();
        let a = heap.alloc(40, 8).unwrap();
        let block = a - BLOCK_HEADER;
        let class = class_of(64);
        heap.alloc_state().classes[0][class].store((block as u64) >> 4, Ordering::Relaxed);
        heap.header_at(block)
            .word
            .store(block as u64, Ordering::Relaxed);
        let mut child = crate::Process::spawn(move || {
            let b = heap.alloc(40, 8).unwrap();
            assert_ne!(b, a);
        })
        .unwrap();
        let status = child.wait_timeout(Duration::from_secs(30)).unwrap();
        if status.is_none() {
            child.kill().unwrap();
        }
        assert!(
            status.is_some_and(|s| s.success()),
            "allocation hung or failed on a cyclic stack: {status:?}"
        );
    }

    /// A thread that read the cursor (or a block's size) and was preempted before it
    /// looked at the next header: meanwhile the blocks there were freed and merged,
    /// which zeroes the headers inside the merged run. The stale walker must not take
    /// such a zero header for the frontier and claim a block inside the run.
    #[test]
    fn a_stale_frontier_walk_never_claims_inside_a_merged_run() {
        let heap = Heap::new(1 << 20).unwrap();
        let a = heap.alloc(40_000, 8).unwrap();
        let b = heap.alloc(40_000, 8).unwrap();
        let stale = b - BLOCK_HEADER;
        heap.release(a);
        heap.release(b);
        {
            let backend = heap.backend().unwrap();
            backend.dirty();
            backend.rebuild(true, false);
            backend.clean();
        }
        let run = a - BLOCK_HEADER;
        let tag = heap.header_at(run).tag.load(Ordering::Relaxed);
        assert_eq!(tag & STATE_MASK, FREE_LARGE);
        let run_end = run + size_of(tag);
        assert!(run_end > stale, "the two blocks were not merged");
        let claimed = heap.claim_fresh_from(stale, 64, BLOCK_HEADER, Use::Object);
        assert!(
            claimed.is_some_and(|at| at >= run_end),
            "claimed {claimed:?} inside the free run [{run}, {run_end})"
        );
    }

    /// Padding claimed before aligned blocks must not strand memory: after aligned
    /// objects come and go, a large one fits.
    #[test]
    fn padding_is_merged_with_free_neighbours() {
        let heap = Heap::new(1 << 20).unwrap();
        let mut objects = Vec::new();
        // 64 bytes aligned to 64: an 80-byte block, then 32 bytes of padding each.
        while let Ok(o) = heap.alloc(64, 64) {
            objects.push(o);
        }
        assert!(objects.len() > 1000);
        for o in objects {
            heap.release(o);
        }
        let big = heap.alloc(900 << 10, 8);
        assert!(big.is_ok(), "{big:?}");
    }

    /// A process killed after it claimed padding at the frontier, before it moved the
    /// cursor past it: once the padding is merged into the free run before it, the
    /// cursor must not point at its (now zero) header.
    #[test]
    fn padding_of_a_dead_claimant_merged_away_is_not_the_frontier() {
        let heap = Heap::new(1 << 20).unwrap();
        let a = heap.alloc(40_000, 8).unwrap();
        heap.release(a);
        let pad_at = heap.cursor();
        heap.header_at(pad_at)
            .tag
            .store(32 | PAD, Ordering::Relaxed);
        {
            let backend = heap.backend().unwrap();
            backend.dirty();
            backend.rebuild(true, false);
            backend.clean();
        }
        let run = a - BLOCK_HEADER;
        let run_end = run + size_of(heap.header_at(run).tag.load(Ordering::Relaxed));
        let b = heap.claim_fresh(64, BLOCK_HEADER, Use::Object);
        assert!(
            b.is_some_and(|at| at >= run_end),
            "claimed {b:?} inside the free run [{run}, {run_end})"
        );
    }
}
