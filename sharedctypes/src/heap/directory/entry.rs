//! Directory entries: one per published key, allocated in the heap, naming everything
//! by offset. Written completely before the table links them, never changed after
//! (an unpublished entry is only unlinked).
//!
//! ```text
//! EntryHeader (48 bytes, 8-aligned), then the key's bytes, then the encoded layout
//!   tag: u32         "SCDE"
//!   kind: u32        shape (1 value, 2 array, 3 bare lock, 4 Event, 5 Semaphore,
//!                    6 BoundedSemaphore, 7 Barrier, 8 Condition)
//!                    | lock (0 none, 1 Lock, 2 RLock) << 8
//!   seq: u64         the heap's publication count when it was written (orders `keys`)
//!   object: u64      offset of the value or array (0 for a bare lock)
//!   len: u64         elements (1 for a value, 0 for a bare lock)
//!   lock: u64        offset of the lock (0 when there is none)
//!   key_len: u32     1..=255
//!   layout_len: u32  bytes of the element type's encoded `TypeLayout` (0 for a bare lock)
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::MAX_KEY_LEN;
use crate::error::{Error, Result};
use crate::heap::alloc::Use;
use crate::heap::{Heap, HEADER_SIZE};
use crate::layout::codec;

/// `"SCDE"`: the first word of every directory entry.
pub(super) const ENTRY_TAG: u32 = u32::from_le_bytes(*b"SCDE");

/// A directory entry's fixed part, followed in the heap by the key and the layout.
/// Only atomics: another process may read it while it is written, and garbage is a
/// valid (if meaningless) value for each field.
#[repr(C)]
pub(super) struct EntryHeader {
    pub tag: AtomicU32,
    pub kind: AtomicU32,
    pub seq: AtomicU64,
    pub object: AtomicU64,
    pub len: AtomicU64,
    pub lock: AtomicU64,
    pub key_len: AtomicU32,
    pub layout_len: AtomicU32,
}

pub(super) const ENTRY_SIZE: usize = std::mem::size_of::<EntryHeader>();
pub(super) const ENTRY_ALIGN: usize = std::mem::align_of::<EntryHeader>();

/// A directory entry read out of the heap, its bounds checked: a snapshot of every
/// field, compared whole to tell whether an entry changed since it was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// Where the entry starts.
    pub at: usize,
    pub seq: u64,
    pub kind: u32,
    pub object: u64,
    pub len: u64,
    pub lock: u64,
    pub key_len: usize,
    pub layout_len: usize,
}

impl Entry {
    pub fn key_at(&self) -> usize {
        self.at + ENTRY_SIZE
    }

    pub fn layout_at(&self) -> usize {
        self.key_at() + self.key_len
    }
}

/// What [`Heap::write_entry`] stores.
pub(super) struct NewEntry<'a> {
    pub kind: u32,
    pub object: u64,
    pub len: u64,
    pub lock: u64,
    pub key: &'a [u8],
    pub layout: &'a [u8],
}

/// The hash of a key, the same in every process and every build: FNV-1a over the bytes,
/// then MurmurHash3's finaliser so that every bit of the result depends on every byte
/// (FNV's low bits, which pick the slot, are weak on their own). A table position takes
/// the low bits, the slot's tag the high 16.
pub(super) fn key_hash(key: impl IntoIterator<Item = u8>) -> u64 {
    fmix64(fnv1a(key))
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// MurmurHash3's 64-bit finaliser: a bijection that mixes every bit into every other.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Heap {
    /// Allocates and writes a complete entry; returns its offset. Nothing links it yet:
    /// no other process can reach it.
    pub(super) fn write_entry(&self, new: &NewEntry<'_>) -> Result<usize> {
        let size = ENTRY_SIZE + new.key.len() + new.layout.len();
        let at = self.alloc_for(size, ENTRY_ALIGN, Use::Internal)?;
        let seq = self.header().published.fetch_add(1, Ordering::Relaxed);
        let header = self.entry_header(at);
        header.tag.store(ENTRY_TAG, Ordering::Relaxed);
        header.kind.store(new.kind, Ordering::Relaxed);
        header.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        header.object.store(new.object, Ordering::Relaxed);
        header.len.store(new.len, Ordering::Relaxed);
        header.lock.store(new.lock, Ordering::Relaxed);
        header
            .key_len
            .store(new.key.len() as u32, Ordering::Relaxed);
        header
            .layout_len
            .store(new.layout.len() as u32, Ordering::Relaxed);
        self.store_bytes(at + ENTRY_SIZE, new.key);
        self.store_bytes(at + ENTRY_SIZE + new.key.len(), new.layout);
        Ok(at)
    }

    /// The entry's fixed part at `at` (an offset this process just allocated, or
    /// checked by `read_entry`).
    pub(super) fn entry_header(&self, at: usize) -> &EntryHeader {
        // An invariant of both callers, so a failure is a bug in this crate, never bad
        // input; checked all the same, since soundness rests on it.
        assert!(
            at % ENTRY_ALIGN == 0
                && at
                    .checked_add(ENTRY_SIZE)
                    .is_some_and(|end| end <= self.mapped_len()),
            "directory entry out of bounds"
        );
        // SAFETY: `at` is in bounds for an `EntryHeader` and aligned for it (asserted; the
        // mapping is page-aligned); the header holds only atomics, valid for every bit
        // pattern, so a shared reference to memory other processes write is sound; the
        // mapping lives as long as `self`.
        unsafe { self.ptr_at::<EntryHeader>(at).as_ref() }
    }

    /// Reads and bounds-checks the entry at offset `at`; nothing is read beyond `limit`.
    pub(super) fn read_entry(&self, at: u64, limit: usize) -> Result<Entry> {
        let at = to_usize(at)?;
        let fits =
            |start: usize, len: usize| start.checked_add(len).is_some_and(|end| end <= limit);
        if at < HEADER_SIZE || at % ENTRY_ALIGN != 0 || !fits(at, ENTRY_SIZE) {
            return Err(Error::InvalidHeap);
        }
        let h = self.entry_header(at);
        let key_len = h.key_len.load(Ordering::Relaxed) as usize;
        let layout_len = h.layout_len.load(Ordering::Relaxed) as usize;
        if h.tag.load(Ordering::Relaxed) != ENTRY_TAG
            || !(1..=MAX_KEY_LEN).contains(&key_len)
            || layout_len > codec::MAX_ENCODED_LEN
            || !fits(at + ENTRY_SIZE + key_len, layout_len)
            || !self.is_internal(at, ENTRY_SIZE + key_len + layout_len)
        {
            return Err(Error::InvalidHeap);
        }
        Ok(Entry {
            at,
            seq: h.seq.load(Ordering::Relaxed),
            kind: h.kind.load(Ordering::Relaxed),
            object: h.object.load(Ordering::Relaxed),
            len: h.len.load(Ordering::Relaxed),
            lock: h.lock.load(Ordering::Relaxed),
            key_len,
            layout_len,
        })
    }

    /// Whether `e`'s key is `key`.
    pub(super) fn key_is(&self, e: &Entry, key: &[u8]) -> bool {
        e.key_len == key.len() && self.bytes_equal(e.key_at(), key)
    }

    /// The hash of `e`'s key.
    pub(super) fn entry_hash(&self, e: &Entry) -> u64 {
        key_hash(
            self.bytes(e.key_at(), e.key_len)
                .iter()
                .map(|b| b.load(Ordering::Relaxed)),
        )
    }

    pub(super) fn bytes(&self, at: usize, len: usize) -> &[AtomicU8] {
        // Callers pass a range checked by `read_entry`, or just allocated: a failure is a
        // bug in this crate, never bad input.
        assert!(
            at.checked_add(len)
                .is_some_and(|end| end <= self.mapped_len()),
            "directory bytes out of bounds"
        );
        // SAFETY: the range is inside the mapping (asserted); `AtomicU8` has alignment 1
        // and is valid for every bit pattern, so a shared slice of memory other processes
        // write is sound; the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr_at::<AtomicU8>(at).as_ptr(), len) }
    }

    pub(super) fn load_bytes(&self, at: usize, len: usize) -> Vec<u8> {
        self.bytes(at, len)
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    pub(super) fn bytes_equal(&self, at: usize, other: &[u8]) -> bool {
        self.bytes(at, other.len())
            .iter()
            .zip(other)
            .all(|(b, &o)| b.load(Ordering::Relaxed) == o)
    }

    fn store_bytes(&self, at: usize, src: &[u8]) {
        for (b, &s) in self.bytes(at, src.len()).iter().zip(src) {
            b.store(s, Ordering::Relaxed);
        }
    }
}

pub(super) fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::InvalidHeap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hash_is_fnv1a_then_fmix64() {
        // FNV-1a's published test vectors (the hash must be the same in every process
        // and every build of every program that opens a heap).
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(*b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(key_hash(*b"foobar"), fmix64(0x8594_4171_f739_67e8));
        // fmix64 is a bijection that leaves no bit alone.
        assert_eq!(fmix64(0), 0);
        assert_ne!(fmix64(1) >> 48, 0);
        assert_ne!(fmix64(1 << 63) & 0xffff, 0);
    }
}
