//! The directory's index: an open-addressing hash table of entry offsets, in the heap,
//! changed by compare-and-swap only. No lock is taken, so any process may publish,
//! unpublish and look up at once — in any PID namespace, where this crate's locks are
//! refused — and a process killed at any instant leaves the table consistent.
//!
//! ```text
//! TableHeader (64 bytes, 64-aligned), then 2^log2_slots slots of 8 bytes
//!   tag: u32         "SCDT"
//!   log2_slots: u32  MIN_LOG2..=MAX_LOG2
//!   next: u64        offset of the table that replaces this one, 0 while none does
//!   state: u32       COPYING while the previous table's entries are copied in, then DONE
//!   (4 bytes reserved)
//!   claimed: u64     slots taken from empty (entries, live or deleted): the load
//!   live: u64        live entries (both counters are hints: a process killed between
//!                    its compare-and-swap and the count leaves them one off)
//!   (24 bytes reserved)
//!
//! slot: bit 0 FROZEN, bit 1 COPIED, bit 2 DELETED, bits 3..48 the entry's offset
//!       (0: empty), bits 48..64 the high 16 bits of the key's hash (a tag that spares
//!       reading entries whose key cannot match)
//! ```
//!
//! **Probing.** A key's slots are `hash, hash + 1, …` (modulo the size), up to the first
//! empty one. A slot goes from empty to an entry, and from live to deleted, never back:
//! a deleted slot (a tombstone) keeps its entry's offset and is never reused in its
//! table. So every publisher of a key meets the others' entries for it before any
//! empty slot, and claims the first empty slot with a compare-and-swap: of concurrent
//! publishers of one key exactly one succeeds, the others find its entry.
//!
//! **Growth.** A publisher that would take the table past three quarters full
//! allocates a new table (twice the size, or the same size when most claimed slots
//! are tombstones) and links it from the old one's `next` with a compare-and-swap.
//! Then every process that changes the directory helps copy: it *freezes* each old slot
//! (sets FROZEN, after which no compare-and-swap on it succeeds, so its value is
//! final), inserts its entry into the new table unless it is deleted, and marks it
//! COPIED. Copies are idempotent (an entry already in the new table is found there by
//! its offset, even if deleted since), so helpers may repeat each other's work, and a
//! helper that dies half-way leaves nothing the next one does not finish. Whoever
//! finds every old slot COPIED sets the new table's state to DONE and moves the
//! heap's `directory` word to it. Publish and unpublish work only in a table whose
//! `next` is 0, after helping; lookups read the newest table whose copy is DONE,
//! which frozen slots leave readable while a copy is under way. The old table is
//! leaked, as the heap cannot free yet.
//!
//! Everything read here comes from other processes: a table's offset, tag, size and
//! bounds are checked before use, slots are decoded strictly, every loop is bounded
//! by the table's size or a step limit, so a damaged table is [`Error::InvalidHeap`],
//! never a hang or an access out of bounds.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::entry::{to_usize, Entry};
use crate::error::{Error, Result};
use crate::heap::alloc::Use;
use crate::heap::{Heap, HEADER_SIZE};

/// `"SCDT"`: the first word of every table.
const TABLE_TAG: u32 = u32::from_le_bytes(*b"SCDT");
/// [`TableHeader::state`] while the previous table is being copied in.
const COPYING: u32 = 0;
/// [`TableHeader::state`] once it holds every entry of the table it replaces (and of
/// the first table, which replaces none).
const DONE: u32 = u32::from_le_bytes(*b"DONE");

/// Smallest and largest tables, in log2 of their slots.
const MIN_LOG2: u32 = 4;
const MAX_LOG2: u32 = 40;

pub(super) const TABLE_HEADER_SIZE: usize = 64;
pub(super) const TABLE_ALIGN: usize = 64;

/// Steps (tables helped or replaced, compare-and-swaps lost to a freeze) one change of
/// the directory may take before the table is declared corrupt; a working directory
/// needs a handful.
pub(super) const MAX_STEPS: usize = 1 << 12;
/// Tables a reader follows from the heap's `directory` word before starting over, and
/// how often it starts over.
const MAX_HOPS: usize = 64;
const MAX_RESTARTS: usize = 4;

/// A table's fixed part. Only atomics: other processes write it.
#[repr(C)]
struct TableHeader {
    tag: AtomicU32,
    log2_slots: AtomicU32,
    next: AtomicU64,
    state: AtomicU32,
    _reserved: AtomicU32,
    claimed: AtomicU64,
    live: AtomicU64,
    _spare: [AtomicU64; 3],
}

static_assertions::const_assert_eq!(std::mem::size_of::<TableHeader>(), TABLE_HEADER_SIZE);

const FROZEN: u64 = 1;
const COPIED: u64 = 2;
const DELETED: u64 = 4;
const TAG_SHIFT: u32 = 48;
const OFFSET_MASK: u64 = ((1 << TAG_SHIFT) - 1) & !7;

/// A slot, decoded (its FROZEN and COPIED bits aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Empty,
    Entry { at: u64, tag: u16, deleted: bool },
}

/// Decodes a slot's value; anything this crate never writes is [`Error::InvalidHeap`].
fn decode(v: u64) -> Result<Slot> {
    let at = v & OFFSET_MASK;
    let tag = (v >> TAG_SHIFT) as u16;
    let deleted = v & DELETED != 0;
    if v & COPIED != 0 && v & FROZEN == 0 {
        return Err(Error::InvalidHeap);
    }
    match at {
        0 if tag == 0 && !deleted => Ok(Slot::Empty),
        at if at >= HEADER_SIZE as u64 => Ok(Slot::Entry { at, tag, deleted }),
        _ => Err(Error::InvalidHeap),
    }
}

fn tag_of(hash: u64) -> u16 {
    (hash >> TAG_SHIFT) as u16
}

/// The slot value for a live entry at `at` whose key hashes to `hash`.
fn encode(at: usize, hash: u64) -> Result<u64> {
    let at = at as u64;
    if at & !OFFSET_MASK != 0 {
        // Entries are 8-aligned; one past the first 256 TiB of a heap cannot be
        // indexed. (No system maps that much today.)
        return Err(Error::OutOfMemory {
            requested: at as usize,
            available: 0,
        });
    }
    Ok(at | u64::from(tag_of(hash)) << TAG_SHIFT)
}

/// A table in a heap, its header checked.
pub(super) struct Table<'h> {
    heap: &'h Heap,
    /// Where the table starts.
    pub at: usize,
    /// log2 of its slots, as read once (a later change by another process is ignored).
    log2: u32,
}

impl<'h> Table<'h> {
    pub fn slots(&self) -> usize {
        1 << self.log2
    }

    /// Where the table ends.
    pub fn end(&self) -> usize {
        self.at + TABLE_HEADER_SIZE + 8 * self.slots()
    }

    fn header(&self) -> &'h TableHeader {
        // SAFETY: `Heap::table_at` and `Heap::new_table` checked (or allocated) the whole
        // table inside the mapping, `TABLE_ALIGN`-aligned; the header holds only
        // atomics, valid for every bit pattern; the mapping lives as long as `'h`.
        unsafe { self.heap.ptr_at::<TableHeader>(self.at).as_ref() }
    }

    fn slot_array(&self) -> &'h [AtomicU64] {
        let first = self.heap.ptr_at::<AtomicU64>(self.at + TABLE_HEADER_SIZE);
        // SAFETY: as in `header`: the `slots()` words after the header are inside the
        // mapping and 8-aligned, atomics valid for every bit pattern.
        unsafe { std::slice::from_raw_parts(first.as_ptr(), self.slots()) }
    }

    /// The slots of `hash`'s probe sequence, in order, each once.
    fn probe(&self, hash: u64) -> impl Iterator<Item = &'h AtomicU64> {
        let slots = self.slot_array();
        let start = hash as usize & (slots.len() - 1);
        slots[start..].iter().chain(&slots[..start])
    }

    fn next(&self) -> u64 {
        self.header().next.load(Ordering::Acquire)
    }

    fn is_done(&self) -> bool {
        self.header().state.load(Ordering::Acquire) == DONE
    }
}

/// What [`Heap::insert`] did.
pub(super) enum Insert {
    Inserted,
    /// A live entry already has the key.
    Taken,
    /// The table is being replaced: help, and retry in the new one.
    Moved,
    /// No room without passing the load limit: grow, and retry.
    Full,
}

/// What [`Heap::remove`] did.
pub(super) enum Remove {
    /// The live entry that had the key, now deleted.
    Removed(u64),
    Missing,
    Moved,
}

impl Heap {
    /// The table at `at`, its header and bounds checked against the allocated part of
    /// the heap.
    fn table_at(&self, at: u64) -> Result<Table<'_>> {
        let limit = self.limit();
        let at = to_usize(at)?;
        let header_fits = at
            .checked_add(TABLE_HEADER_SIZE)
            .is_some_and(|end| end <= limit);
        if at < HEADER_SIZE || at % TABLE_ALIGN != 0 || !header_fits {
            return Err(Error::InvalidHeap);
        }
        let log2 = {
            // SAFETY: the header is inside the mapping (`limit` is at most its length),
            // aligned, and made of atomics, valid for every bit pattern.
            let header = unsafe { self.ptr_at::<TableHeader>(at).as_ref() };
            if header.tag.load(Ordering::Relaxed) != TABLE_TAG {
                return Err(Error::InvalidHeap);
            }
            header.log2_slots.load(Ordering::Relaxed)
        };
        let fits = (MIN_LOG2..=MAX_LOG2).contains(&log2)
            && (8usize << log2)
                .checked_add(at + TABLE_HEADER_SIZE)
                .is_some_and(|end| end <= limit)
            && self.is_internal(at, TABLE_HEADER_SIZE + (8usize << log2));
        if !fits {
            return Err(Error::InvalidHeap);
        }
        Ok(Table {
            heap: self,
            at,
            log2,
        })
    }

    /// Allocates a table of `2^log2` empty slots in `state`, reachable by nobody yet.
    fn new_table(&self, log2: u32, state: u32) -> Result<Table<'_>> {
        let bytes = (8usize << log2) + TABLE_HEADER_SIZE;
        let at = self.alloc_for(bytes, TABLE_ALIGN, Use::Internal)?;
        let table = Table {
            heap: self,
            at,
            log2,
        };
        let h = table.header();
        h.tag.store(TABLE_TAG, Ordering::Relaxed);
        h.log2_slots.store(log2, Ordering::Relaxed);
        h.next.store(0, Ordering::Relaxed);
        h.state.store(state, Ordering::Relaxed);
        h.claimed.store(0, Ordering::Relaxed);
        h.live.store(0, Ordering::Relaxed);
        // Fresh memory is zero today; written anyway, so that reused memory would do.
        for s in table.slot_array() {
            s.store(0, Ordering::Relaxed);
        }
        Ok(table)
    }

    /// The table lookups read: the one the heap's `directory` word names, or a newer
    /// one whose copy is done. `None` before the first publish.
    pub(super) fn read_table(&self) -> Result<Option<Table<'_>>> {
        for _ in 0..MAX_RESTARTS {
            let at = self.header().directory.load(Ordering::Acquire);
            if at == 0 {
                return Ok(None);
            }
            let mut t = self.table_at(at)?;
            for _ in 0..MAX_HOPS {
                let next = t.next();
                if next == 0 {
                    return Ok(Some(t));
                }
                let n = self.table_at(next)?;
                if !n.is_done() {
                    // Copy under way: `t` still holds everything (frozen slots read fine).
                    return Ok(Some(t));
                }
                t = n;
            }
            // A reader that slept through many replacements, or a cycle: start over
            // from the (newer) directory word.
        }
        Err(Error::InvalidHeap)
    }

    /// The table publish and unpublish change: the newest, after helping any copy into
    /// it finish. Creates the first table if `create` (else `None` when there is none).
    pub(super) fn write_table(&self, create: bool) -> Result<Option<Table<'_>>> {
        let directory = &self.header().directory;
        for _ in 0..MAX_STEPS {
            let at = directory.load(Ordering::Acquire);
            if at == 0 {
                if !create {
                    return Ok(None);
                }
                let t = self.new_table(MIN_LOG2, DONE)?;
                // Lost to another process: ours stays allocated, unreachable (192 bytes).
                let linked =
                    directory.compare_exchange(0, t.at as u64, Ordering::AcqRel, Ordering::Acquire);
                if linked.is_ok() {
                    return Ok(Some(t));
                }
                continue;
            }
            let t = self.table_at(at)?;
            let next = t.next();
            if next == 0 {
                return Ok(Some(t));
            }
            let n = self.table_at(next)?;
            self.copy_table(&t, &n)?;
            // Whoever wins, the word moves on; a failure means another helper moved it.
            let _ = directory.compare_exchange(at, next, Ordering::AcqRel, Ordering::Acquire);
        }
        Err(Error::InvalidHeap)
    }

    /// Helps copy `old` into `new`, its replacement, until every slot of `old` is copied.
    fn copy_table(&self, old: &Table<'_>, new: &Table<'_>) -> Result<()> {
        // Tables are allocations of their own: one inside another is not ours.
        if old.at < new.end() && new.at < old.end() {
            return Err(Error::InvalidHeap);
        }
        if new.is_done() {
            return Ok(());
        }
        for (i, slot) in old.slot_array().iter().enumerate() {
            let mut v = slot.load(Ordering::Acquire);
            while v & COPIED == 0 {
                if v & FROZEN == 0 {
                    // From here on the slot never changes but for COPIED.
                    v = slot.fetch_or(FROZEN, Ordering::AcqRel) | FROZEN;
                    continue;
                }
                if let Slot::Entry {
                    at, deleted: false, ..
                } = decode(v)?
                {
                    let entry = self.read_entry(at, self.limit())?;
                    self.copy_entry(new, at, self.entry_hash(&entry))?;
                }
                match slot.compare_exchange(v, v | COPIED, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(now) => v = now,
                }
            }
            // Someone else finished meanwhile: the rest is copied.
            if i % 64 == 63 && new.is_done() {
                return Ok(());
            }
        }
        // Every slot was seen COPIED (and nothing clears the bit): the copy is complete.
        new.header().state.store(DONE, Ordering::Release);
        Ok(())
    }

    /// Puts the entry at `at` into `new` (still being copied into, so no entry in it is
    /// ever replaced), unless a helper did already: found by its offset, even if
    /// unpublished since the copy finished, so an entry is never copied twice.
    fn copy_entry(&self, new: &Table<'_>, at: u64, hash: u64) -> Result<()> {
        let want = encode(to_usize(at)?, hash)?;
        for slot in new.probe(hash) {
            let mut v = slot.load(Ordering::Acquire);
            loop {
                if v == 0 {
                    match slot.compare_exchange(0, want, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => {
                            let h = new.header();
                            h.claimed.fetch_add(1, Ordering::Relaxed);
                            h.live.fetch_add(1, Ordering::Relaxed);
                            return Ok(());
                        }
                        Err(now) => v = now,
                    }
                } else if v & OFFSET_MASK == at {
                    return Ok(());
                } else {
                    break;
                }
            }
        }
        // Full: not a table this crate sized.
        Err(Error::InvalidHeap)
    }

    /// Starts replacing `t` (unless someone has): twice the size, or the same size when
    /// at most 3/8 of its slots are live entries (the rest tombstones).
    pub(super) fn grow(&self, t: &Table<'_>) -> Result<()> {
        if t.next() != 0 {
            return Ok(());
        }
        let slots = t.slots();
        let live = usize::try_from(t.header().live.load(Ordering::Relaxed)).unwrap_or(slots);
        let log2 = if live.min(slots) * 8 >= slots * 3 {
            t.log2 + 1
        } else {
            t.log2
        };
        if log2 > MAX_LOG2 {
            return Err(Error::OutOfMemory {
                requested: usize::MAX,
                available: self.available(),
            });
        }
        let n = self.new_table(log2, COPYING)?;
        // Lost to another process: ours stays allocated, unreachable.
        let _ =
            t.header()
                .next
                .compare_exchange(0, n.at as u64, Ordering::AcqRel, Ordering::Acquire);
        Ok(())
    }

    /// The live entry whose key is `key` (hashing to `hash`) in `t`.
    pub(super) fn find(&self, t: &Table<'_>, key: &[u8], hash: u64) -> Result<Option<Entry>> {
        let tag = tag_of(hash);
        for slot in t.probe(hash) {
            match decode(slot.load(Ordering::Acquire))? {
                Slot::Empty => return Ok(None),
                Slot::Entry {
                    at,
                    tag: t,
                    deleted: false,
                } if t == tag => {
                    // After the slot's `Acquire`: the entry is written (and checked against
                    // the end of the mapping and its own block).
                    let e = self.read_entry(at, self.limit())?;
                    if self.key_is(&e, key) {
                        return Ok(Some(e));
                    }
                }
                Slot::Entry { .. } => {}
            }
        }
        Ok(None)
    }

    /// Links the complete entry at `at`, whose key is `key`, into `t`.
    pub(super) fn insert(&self, t: &Table<'_>, at: usize, key: &[u8], hash: u64) -> Result<Insert> {
        let want = encode(at, hash)?;
        let h = t.header();
        let claimed = usize::try_from(h.claimed.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        if claimed >= t.slots() - t.slots() / 4 {
            return Ok(Insert::Full);
        }
        let tag = tag_of(hash);
        for slot in t.probe(hash) {
            let mut v = slot.load(Ordering::Acquire);
            loop {
                if v & FROZEN != 0 {
                    return Ok(Insert::Moved);
                }
                match decode(v)? {
                    Slot::Empty => {
                        // Release: whoever reads the slot sees the whole entry.
                        match slot.compare_exchange(v, want, Ordering::AcqRel, Ordering::Acquire) {
                            Ok(_) => {
                                h.claimed.fetch_add(1, Ordering::Relaxed);
                                h.live.fetch_add(1, Ordering::Relaxed);
                                return Ok(Insert::Inserted);
                            }
                            // Taken meanwhile (or frozen): look again.
                            Err(now) => v = now,
                        }
                    }
                    Slot::Entry {
                        at,
                        tag: t,
                        deleted: false,
                    } if t == tag => {
                        let e = self.read_entry(at, self.limit())?;
                        if self.key_is(&e, key) {
                            return Ok(Insert::Taken);
                        }
                        break;
                    }
                    Slot::Entry { .. } => break,
                }
            }
        }
        Ok(Insert::Full)
    }

    /// Deletes the live entry whose key is `key` from `t`.
    pub(super) fn remove(&self, t: &Table<'_>, key: &[u8], hash: u64) -> Result<Remove> {
        let tag = tag_of(hash);
        for slot in t.probe(hash) {
            let mut v = slot.load(Ordering::Acquire);
            loop {
                if v & FROZEN != 0 {
                    return Ok(Remove::Moved);
                }
                match decode(v)? {
                    Slot::Empty => return Ok(Remove::Missing),
                    Slot::Entry {
                        at,
                        tag: t2,
                        deleted: false,
                    } if t2 == tag => {
                        let e = self.read_entry(at, self.limit())?;
                        if !self.key_is(&e, key) {
                            break;
                        }
                        match slot.compare_exchange(
                            v,
                            v | DELETED,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => {
                                t.header().live.fetch_sub(1, Ordering::Relaxed);
                                return Ok(Remove::Removed(at));
                            }
                            // Deleted or frozen meanwhile: look again.
                            Err(now) => v = now,
                        }
                    }
                    Slot::Entry { .. } => break,
                }
            }
        }
        Ok(Remove::Missing)
    }

    /// The offsets of `t`'s live entries, in slot order.
    pub(super) fn live_entries(&self, t: &Table<'_>) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for slot in t.slot_array() {
            if let Slot::Entry {
                at, deleted: false, ..
            } = decode(slot.load(Ordering::Acquire))?
            {
                out.push(at);
            }
        }
        Ok(out)
    }
}

/// Reading and writing a heap's table through its file, for tests that damage it.
#[cfg(test)]
pub(super) mod on_file {
    use std::fs::File;
    use std::mem::offset_of;
    use std::os::unix::fs::FileExt;

    use super::super::entry::{EntryHeader, ENTRY_SIZE};
    use super::*;
    use crate::heap::test_util::{u32_at, u64_at};
    use crate::heap::Header;

    pub const FLAG_COPIED: u64 = COPIED;
    pub const NEXT_AT: u64 = offset_of!(TableHeader, next) as u64;
    pub const LOG2_AT: u64 = offset_of!(TableHeader, log2_slots) as u64;
    pub const TAG_AT: u64 = offset_of!(TableHeader, tag) as u64;

    /// The current table's offset and number of slots.
    pub fn table(f: &File) -> (u64, u64) {
        let at = u64_at(f, offset_of!(Header, directory) as u64);
        (at, 1 << u32_at(f, at + LOG2_AT))
    }

    /// Where the current table's slot `i` is.
    pub fn slot_at(f: &File, i: u64) -> u64 {
        table(f).0 + TABLE_HEADER_SIZE as u64 + 8 * i
    }

    /// Where the slot naming the live entry at `entry` is.
    pub fn slot_of(f: &File, entry: u64) -> u64 {
        let (_, slots) = table(f);
        (0..slots)
            .map(|i| slot_at(f, i))
            .find(|&at| {
                let v = u64_at(f, at);
                v & OFFSET_MASK == entry && v & DELETED == 0
            })
            .expect("a slot naming the entry")
    }

    /// Where an empty slot is.
    pub fn empty_slot(f: &File) -> u64 {
        let (_, slots) = table(f);
        (0..slots)
            .map(|i| slot_at(f, i))
            .find(|&at| u64_at(f, at) == 0)
            .expect("an empty slot")
    }

    /// The offset of the live entry whose key is `key`.
    pub fn entry_of(f: &File, key: &str) -> u64 {
        let (_, slots) = table(f);
        (0..slots)
            .map(|i| u64_at(f, slot_at(f, i)))
            .filter(|v| v & DELETED == 0 && v & OFFSET_MASK != 0)
            .map(|v| v & OFFSET_MASK)
            .find(|&e| {
                let len = u32_at(f, e + offset_of!(EntryHeader, key_len) as u64) as usize;
                let mut k = vec![0; len];
                f.read_exact_at(&mut k, e + ENTRY_SIZE as u64).unwrap();
                k == key.as_bytes()
            })
            .expect("an entry with the key")
    }

    /// A slot value naming `entry`, tagged for a key hashing to `hash`.
    pub fn slot_value(entry: u64, hash: u64) -> u64 {
        encode(entry as usize, hash).unwrap()
    }
}

/// Replaces the directory of `heap` with a fresh table holding the entries `at` (written
/// by the test), as a process that does not cooperate could.
#[cfg(test)]
pub(super) fn link_for_test(heap: &Heap, at: &[usize]) {
    let t = heap.new_table(7, DONE).unwrap();
    for &e in at {
        heap.copy_entry(&t, e as u64, (e as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .unwrap();
    }
    heap.header()
        .directory
        .store(t.at as u64, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_decode_strictly() {
        let ok = |v: u64| decode(v).ok();
        assert_eq!(ok(0), Some(Slot::Empty));
        assert_eq!(ok(FROZEN), Some(Slot::Empty));
        assert_eq!(ok(FROZEN | COPIED), Some(Slot::Empty));
        let v = encode(4096, 0xabcd << TAG_SHIFT).unwrap();
        let live = Slot::Entry {
            at: 4096,
            tag: 0xabcd,
            deleted: false,
        };
        assert_eq!(ok(v), Some(live));
        assert_eq!(ok(v | FROZEN | COPIED), Some(live));
        assert_eq!(
            ok(v | DELETED),
            Some(Slot::Entry {
                at: 4096,
                tag: 0xabcd,
                deleted: true
            })
        );
        // COPIED without FROZEN; an empty slot with a tag or deleted; inside the header.
        for bad in [
            COPIED,
            v | COPIED,
            1 << TAG_SHIFT,
            DELETED,
            8,
            120,
            64 | FROZEN,
        ] {
            assert!(matches!(decode(bad), Err(Error::InvalidHeap)), "{bad:#x}");
        }
        assert!(encode(1 << TAG_SHIFT, 0).is_err());
    }

    use std::fs::File;

    use super::on_file::*;
    use crate::heap::test_util::{open_damaged, put_u64, shm_file, u64_at, unique};
    use crate::raw::RawValue;

    /// Publishes `n` values, `key{i}` → `i`.
    fn publish_values(heap: &Heap, n: u64) {
        publish_range(heap, 0..n);
    }

    fn publish_range(heap: &Heap, keys: std::ops::Range<u64>) {
        for i in keys {
            let v = RawValue::new_in(heap, i).unwrap();
            heap.publish(&format!("key{i}"), &v).unwrap();
        }
    }

    fn looks_up(heap: &Heap, i: u64) -> bool {
        heap.lookup::<RawValue<u64>>(&format!("key{i}"))
            .is_ok_and(|v| v.get() == i)
    }

    /// Where things are in a heap holding `key0` … `key9`.
    struct Spots {
        total: u64,
        table: u64,
        entry: u64,
        other: u64,
        object: u64,
    }

    fn ten_keys(heap: &Heap, f: &File) -> Spots {
        publish_values(heap, 10);
        let entry = entry_of(f, "key3");
        Spots {
            total: f.metadata().unwrap().len(),
            table: table(f).0,
            entry,
            other: entry_of(f, "key4"),
            object: u64_at(f, entry + 16),
        }
    }

    fn invalid(edit: impl FnOnce(&File, &Spots)) -> bool {
        matches!(open_damaged(ten_keys, edit), Err(Error::InvalidHeap))
    }

    #[test]
    fn an_undamaged_table_opens() {
        let heap = open_damaged(ten_keys, |_, _| {}).unwrap();
        assert!((0..10).all(|i| looks_up(&heap, i)));
        assert_eq!(heap.keys().unwrap().len(), 10);
    }

    #[test]
    fn a_damaged_directory_word_is_invalid() {
        let word = std::mem::offset_of!(crate::heap::Header, directory) as u64;
        // Out of bounds, misaligned, inside the header, past any offset.
        let bads: [fn(&Spots) -> u64; 4] =
            [|s| s.total - 64, |s| s.table + 8, |_| 64, |_| u64::MAX];
        for bad in bads {
            assert!(invalid(|f, s| put_u64(f, word, bad(s))));
        }
        // Pointing at an entry (no table there).
        assert!(invalid(|f, s| put_u64(f, word, s.entry & !63)));
    }

    #[test]
    fn a_damaged_table_header_is_invalid() {
        assert!(invalid(|f, s| put_u64(f, s.table + TAG_AT, 0)));
        // Too small, too large, past the end of the heap.
        for log2 in [3u32, 41, 20] {
            assert!(invalid(|f, s| crate::heap::test_util::put(
                f,
                s.table + LOG2_AT,
                &log2.to_ne_bytes()
            )));
        }
    }

    #[test]
    fn damaged_slots_are_invalid() {
        type Edit = fn(&File, &Spots);
        let cases: [(&str, Edit); 9] = [
            ("an entry past the end", |f, s| {
                put_u64(f, slot_of(f, s.entry), slot_value(s.total + 64, 0))
            }),
            ("an entry far out of bounds", |f, s| {
                put_u64(f, slot_of(f, s.entry), slot_value(1 << 40, 0))
            }),
            ("an entry inside the header", |f, s| {
                put_u64(f, slot_of(f, s.entry), slot_value(64, 0))
            }),
            ("COPIED without FROZEN", |f, s| {
                let at = slot_of(f, s.entry);
                put_u64(f, at, u64_at(f, at) | FLAG_COPIED)
            }),
            ("the table itself", |f, s| {
                put_u64(f, slot_of(f, s.entry), slot_value(s.table, 0))
            }),
            ("an entry named twice", |f, s| {
                put_u64(f, empty_slot(f), u64_at(f, slot_of(f, s.entry)))
            }),
            ("inside another entry", |f, s| {
                put_u64(f, slot_of(f, s.entry), slot_value(s.other + 8, 0))
            }),
            ("an object, not an entry", |f, s| {
                put_u64(f, slot_of(f, s.entry), slot_value(s.object, 0))
            }),
            ("an empty slot with a tag", |f, _| {
                put_u64(f, empty_slot(f), 1 << TAG_SHIFT)
            }),
        ];
        for (what, edit) in cases {
            assert!(invalid(edit), "{what}");
        }
    }

    #[test]
    fn a_damaged_slot_on_the_path_is_invalid_for_a_lookup() {
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        publish_values(&heap, 10);
        let opened = Heap::open(&name).unwrap();
        let f = shm_file(&name);
        let slot = slot_of(&f, entry_of(&f, "key3"));
        let was = u64_at(&f, slot);
        // Tagged as the key's: the lookup reads them.
        let hash = super::super::entry::key_hash(*b"key3");
        for bad in [
            slot_value(1 << 40, hash),
            slot_value(64, hash),
            was | FLAG_COPIED,
        ] {
            put_u64(&f, slot, bad);
            for h in [&heap, &opened] {
                let r = h.lookup::<RawValue<u64>>("key3");
                assert!(matches!(r, Err(Error::InvalidHeap)), "{bad:#x}");
                assert!(matches!(h.keys(), Err(Error::InvalidHeap)), "{bad:#x}");
                assert!(matches!(h.unpublish("key3"), Err(Error::InvalidHeap)));
            }
        }
        put_u64(&f, slot, was);
        assert!(looks_up(&heap, 3) && looks_up(&opened, 3));
    }

    #[test]
    fn cycles_of_tables_end_in_invalid_heap() {
        let name = unique();
        let heap = Heap::create(&name, 1 << 20).unwrap();
        publish_values(&heap, 1);
        let f = shm_file(&name);
        let (first, _) = table(&f);
        // Enough keys to replace the first table.
        publish_range(&heap, 1..40);
        let (second, _) = table(&f);
        assert_ne!(first, second);
        let opened = Heap::open(&name).unwrap();
        // A table replaced by itself, and two that replace each other.
        for (at, next) in [(second, second), (second, first)] {
            put_u64(&f, at + NEXT_AT, next);
            for h in [&heap, &opened] {
                assert!(matches!(h.keys(), Err(Error::InvalidHeap)));
                let r = h.lookup::<RawValue<u64>>("key1");
                assert!(matches!(r, Err(Error::InvalidHeap)));
                let v = RawValue::new_in(h, 1u8).unwrap();
                assert!(matches!(h.publish("new", &v), Err(Error::InvalidHeap)));
                assert!(matches!(h.unpublish("key1"), Err(Error::InvalidHeap)));
            }
            assert!(matches!(Heap::open(&name), Err(Error::InvalidHeap)));
            put_u64(&f, second + NEXT_AT, 0);
            assert!(looks_up(&opened, 7));
        }
    }

    #[test]
    fn a_copy_left_half_done_is_finished_by_the_next_change() {
        // As a process killed while copying leaves it: a new table linked, some old slots
        // frozen, some entries copied, some slots marked.
        let heap = Heap::new(1 << 20).unwrap();
        publish_values(&heap, 11);
        let t = heap.write_table(false).unwrap().unwrap();
        heap.grow(&t).unwrap();
        let n = heap.table_at(t.next()).unwrap();
        assert!(!n.is_done());
        let mut copied = 0;
        for (i, slot) in t.slot_array().iter().enumerate().take(12) {
            let v = slot.fetch_or(FROZEN, Ordering::AcqRel) | FROZEN;
            // Some slots frozen only, some copied too, some of those marked COPIED.
            let done = match decode(v).unwrap() {
                Slot::Entry { at, .. } if i % 3 != 0 => {
                    let e = heap.read_entry(at, heap.limit()).unwrap();
                    heap.copy_entry(&n, at, heap.entry_hash(&e)).unwrap();
                    copied += 1;
                    true
                }
                Slot::Entry { .. } => false,
                Slot::Empty => true,
            };
            if done && i % 2 == 0 {
                slot.fetch_or(COPIED, Ordering::AcqRel);
            }
        }
        assert!(copied > 0);
        // Readers still read the old table, whole.
        assert!((0..11).all(|i| looks_up(&heap, i)));
        assert_eq!(heap.keys().unwrap().len(), 11);
        // A key in a frozen slot cannot be unpublished there: the copy is finished first.
        heap.unpublish("key5").unwrap();
        assert!(n.is_done());
        assert_eq!(heap.header().directory.load(Ordering::Acquire), n.at as u64);
        assert!(!looks_up(&heap, 5));
        let v = RawValue::new_in(&heap, 11u64).unwrap();
        heap.publish("key11", &v).unwrap();
        assert!((0..12).filter(|&i| i != 5).all(|i| looks_up(&heap, i)));
        assert_eq!(heap.keys().unwrap().len(), 11);
    }

    #[test]
    fn a_slow_helper_never_copies_an_unpublished_entry_back() {
        let heap = Heap::new(1 << 20).unwrap();
        publish_values(&heap, 11);
        let old = heap.write_table(false).unwrap().unwrap();
        // The entry of key4 as a helper read it before the copy finished.
        let e = heap.find(&old, b"key4", super::super::entry::key_hash(*b"key4"));
        let e = e.unwrap().unwrap();
        heap.grow(&old).unwrap();
        let new = heap.write_table(false).unwrap().unwrap();
        assert_ne!(new.at, old.at);
        heap.unpublish("key4").unwrap();
        // The helper wakes up and copies what it read: found (deleted) by its offset.
        heap.copy_entry(&new, e.at as u64, heap.entry_hash(&e))
            .unwrap();
        assert!(!looks_up(&heap, 4));
        // And a new publication of the key is the only one.
        let v = RawValue::new_in(&heap, 4u64).unwrap();
        heap.publish("key4", &v).unwrap();
        heap.unpublish("key4").unwrap();
        assert!(!looks_up(&heap, 4));
    }

    #[test]
    fn tables_grow_and_shrink_back_to_their_load() {
        let heap = Heap::new(1 << 22).unwrap();
        publish_values(&heap, 1000);
        let t = heap.read_table().unwrap().unwrap();
        let slots = t.slots();
        assert!((1000 * 4 / 3..=1000 * 4).contains(&slots), "{slots}");
        // Tombstones: unpublishing and publishing again cycles through same-size tables.
        for round in 0..3 * slots {
            let key = format!("key{}", round % 1000);
            heap.unpublish(&key).unwrap();
            heap.publish(
                &key,
                &RawValue::new_in(&heap, (round % 1000) as u64).unwrap(),
            )
            .unwrap();
        }
        // Grown once at most (to a load below 3/8), then compacted in place.
        let t = heap.read_table().unwrap().unwrap();
        assert!(t.slots() <= 2 * slots, "{} {slots}", t.slots());
        assert!((0..1000).all(|i| looks_up(&heap, i)));
    }
}
