//! What this process has checked of a heap's directory, so that a lookup does not
//! check the whole directory again.
//!
//! A directory entry names memory — its object and its lock — that a lookup hands out
//! as a handle. A corrupted entry could name the heap's header, the directory's table,
//! another entry, or another object's memory, so that stores through the handle land
//! there. None of that is unsound (everything in shared memory is accessed through
//! atomics, and every bit pattern is valid), but it is wrong, and it is checked: each
//! [`Heap`] handle keeps, in this process, an index of the *regions* it knows — the
//! header, the current table, and for every entry it has checked the entry's own bytes,
//! its object and its lock — which never overlap, but that one object or one lock may
//! be named by several entries, whole. [`Heap::open`] checks every entry of the
//! directory and fills the index; a heap this process created starts with an empty
//! directory, and records what it publishes. A lookup then checks only the entry it
//! uses, and only when the entry is new to this handle or its bytes changed since it
//! was checked: O(log n) once per entry, O(1) after. An entry that clashes with the
//! index makes the handle rebuild the index from the directory as it is now (which
//! also drops entries unpublished since), and only a clash that remains is
//! [`Error::InvalidHeap`].
//!
//! What this does not see: entries that other processes published after this handle
//! was opened, and that it has not looked up. A handle handed out is checked against
//! everything else this handle has seen, not against those; they are checked against
//! it when looked up.
//!
//! The index costs about 220 bytes of this process's memory per entry it knows. It is
//! behind a mutex that lookups only *try* to take: a forked child may inherit it
//! locked (held by a thread of the parent at the fork, which the child does not have),
//! and a lookup that cannot take it checks against an index it builds for itself, from
//! the whole directory: O(n), but never a deadlock.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use super::entry::{to_usize, Entry, ENTRY_SIZE};
use super::table::Table;
use super::{check_lock, check_object};
use crate::error::{Error, Result};
use crate::heap::publish::{Kind, LockKind, Shape};
use crate::heap::{Heap, HEADER_SIZE};
use crate::layout::codec;
use crate::sync::LOCK_SIZE;

/// What a stretch of a heap holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Holds {
    Header,
    Table,
    Entry,
    Object,
    Lock,
}

/// `[start, end)` of a heap and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Region {
    pub start: usize,
    pub end: usize,
    pub holds: Holds,
}

/// The heap's header, which nothing else may overlap.
const HEADER_REGION: Region = Region {
    start: 0,
    end: HEADER_SIZE,
    holds: Holds::Header,
};

impl Region {
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    pub fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `self` and `other` may share memory: the same object, or the same lock,
    /// named twice.
    fn may_share(&self, other: &Region) -> bool {
        self == other && matches!(self.holds, Holds::Object | Holds::Lock)
    }

    /// `len` elements of `size` bytes at `start`; `None` if that is no memory at all.
    pub fn object(start: usize, len: usize, size: usize) -> Result<Option<Region>> {
        let end = len
            .checked_mul(size)
            .and_then(|n| start.checked_add(n))
            .ok_or(Error::InvalidHeap)?;
        let r = Region {
            start,
            end,
            holds: Holds::Object,
        };
        Ok((!r.is_empty()).then_some(r))
    }

    /// A lock's state at `start`.
    pub fn lock(start: usize) -> Result<Region> {
        let end = start.checked_add(LOCK_SIZE).ok_or(Error::InvalidHeap)?;
        Ok(Region {
            start,
            end,
            holds: Holds::Lock,
        })
    }

    fn table(t: &Table<'_>) -> Region {
        Region {
            start: t.at,
            end: t.end(),
            holds: Holds::Table,
        }
    }
}

/// Regions that do not overlap — but one object or one lock may be in several times,
/// whole, and is counted.
#[derive(Default)]
struct Regions {
    by_start: BTreeMap<usize, (Region, usize)>,
}

impl Regions {
    /// Whether `r` overlaps a region here (other than an identical object or lock).
    fn clashes(&self, r: &Region) -> bool {
        // The regions here are disjoint: only the last one starting before `r` ends
        // can reach into it.
        !r.is_empty()
            && self
                .by_start
                .range(..r.end)
                .next_back()
                .is_some_and(|(_, (q, _))| q.overlaps(r) && !q.may_share(r))
    }

    /// Adds all of `rs`, or (on a clash) none.
    fn insert_all(&mut self, rs: &[Option<Region>]) -> bool {
        for (i, r) in rs.iter().enumerate() {
            let Some(r) = r else { continue };
            if self.clashes(r) {
                self.remove_all(&rs[..i]);
                return false;
            }
            if !r.is_empty() {
                self.by_start.entry(r.start).or_insert((*r, 0)).1 += 1;
            }
        }
        true
    }

    fn remove_all(&mut self, rs: &[Option<Region>]) {
        for r in rs.iter().flatten() {
            if let Some((q, n)) = self.by_start.get_mut(&r.start) {
                if q == r {
                    *n -= 1;
                    if *n == 0 {
                        self.by_start.remove(&r.start);
                    }
                }
            }
        }
    }
}

/// The handle type a lookup matched an entry with, as recorded: the address of its
/// element type's `TypeLayout` (a `static`: the same address, the same layout), or
/// [`Matched::BARE_LOCK`]. Its kind is not recorded: it is the entry's, which a
/// lookup compares with its handle type's (see [`Checked::knows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Matched(pub usize);

impl Matched {
    /// No handle type yet.
    const NONE: Matched = Matched(0);
    /// A bare lock, which has no layout (no `static` is at address 1).
    pub const BARE_LOCK: Matched = Matched(1);
}

/// An element's size and alignment.
type ElemSize = (usize, usize);

/// [`Known::object_size`] of an entry without an object (a bare lock).
const NO_OBJECT: usize = usize::MAX;

/// An entry this handle has checked, as it was then: 56 bytes, so that with its offset
/// (the map's key) a lookup reads one cache line of it. Its regions in the index are
/// computed from it ([`Known::regions`]), the same way each time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Known {
    object: u64,
    len: u64,
    lock: u64,
    kind: u32,
    key_len: u32,
    layout_len: u32,
    /// Its stored layout's bytes: `Checked::layouts[layout]`.
    layout: u32,
    /// The element size its object's region was computed with, [`NO_OBJECT`] if none.
    object_size: usize,
    /// The handle type a lookup found it matches.
    matched: Matched,
}

impl Known {
    fn new(e: &Entry, layout: u32, object_size: usize, matched: Matched) -> Known {
        Known {
            object: e.object,
            len: e.len,
            lock: e.lock,
            kind: e.kind,
            key_len: e.key_len as u32,
            layout_len: e.layout_len as u32,
            layout,
            object_size,
            matched,
        }
    }

    /// Whether `e` (at the same offset) has every field this was made from.
    fn is(&self, e: &Entry) -> bool {
        (self.object, self.len, self.lock, self.kind) == (e.object, e.len, e.lock, e.kind)
            && (self.key_len as usize, self.layout_len as usize) == (e.key_len, e.layout_len)
    }

    /// The entry's own bytes, its object (by `object_size`) and its lock.
    fn regions(&self, at: usize) -> Result<[Option<Region>; 3]> {
        let entry = Region {
            start: at,
            end: at + ENTRY_SIZE + self.key_len as usize + self.layout_len as usize,
            holds: Holds::Entry,
        };
        let object = match self.object_size {
            NO_OBJECT => None,
            size => Region::object(to_usize(self.object)?, to_usize(self.len)?, size)?,
        };
        let kind = Kind::from_bits(self.kind).ok_or(Error::InvalidHeap)?;
        let lock = match kind.lock {
            LockKind::None => None,
            _ => Some(Region::lock(to_usize(self.lock)?)?),
        };
        Ok([Some(entry), object, lock])
    }
}

/// What one [`Heap`] handle (and its clones) in this process has checked of the
/// directory. See the module documentation.
pub(crate) struct Checked {
    /// False until built from the directory (a heap just mapped), or after a failure.
    valid: bool,
    regions: Regions,
    /// The table whose region is in `regions`.
    table: Option<Region>,
    entries: HashMap<usize, Known, OffsetHash>,
    /// Distinct stored layouts (each decoded once), by [`Known::layout`] …
    layouts: Vec<Arc<[u8]>>,
    /// … and by their bytes, with the size and alignment their root records.
    layout_ids: HashMap<Arc<[u8]>, (u32, ElemSize)>,
}

impl Checked {
    /// For a heap just created: an empty directory, nothing to check.
    pub(crate) fn empty() -> Checked {
        let mut c = Checked::unchecked();
        c.reset();
        c.valid = true;
        c
    }

    /// For a heap whose directory has not been checked yet.
    pub(crate) fn unchecked() -> Checked {
        Checked {
            valid: false,
            regions: Regions::default(),
            table: None,
            entries: HashMap::with_hasher(OffsetHash::new()),
            layouts: Vec::new(),
            layout_ids: HashMap::new(),
        }
    }

    fn reset(&mut self) {
        self.valid = false;
        self.regions = Regions::default();
        self.regions.insert_all(&[Some(HEADER_REGION)]);
        self.table = None;
        self.entries.clear();
    }

    /// Rebuilds everything from the directory's table `t`, checking every live entry in
    /// full: bounds, alignment, kind, stored layout, and that nothing overlaps.
    pub(super) fn rebuild(&mut self, heap: &Heap, t: Option<&Table<'_>>) -> Result<()> {
        self.reset();
        let Some(t) = t else {
            self.valid = true;
            return Ok(());
        };
        let table = Region::table(t);
        if !self.regions.insert_all(&[Some(table)]) {
            return Err(Error::InvalidHeap);
        }
        self.table = Some(table);
        // Live entries are disjoint allocations: together they claim at most the bytes
        // allocated. Overlapping entries (a crafted heap) would make the decoding of
        // their layouts cost many times the heap's size; this budget keeps the work
        // proportional to it. (The bound is the end of the mapping, which every entry
        // is checked against: `limit`.)
        let mut claimed = 0usize;
        for at in heap.live_entries(t)? {
            let e = heap.read_entry(at, heap.limit())?;
            claimed += ENTRY_SIZE + e.key_len + e.layout_len;
            if claimed > heap.limit() - HEADER_SIZE {
                return Err(Error::InvalidHeap);
            }
            let (layout, root) = self.stored_layout(heap, &e)?;
            check_entry(heap, &e, root)?;
            let object_size = root.map_or(NO_OBJECT, |(size, _)| size);
            let known = Known::new(&e, layout, object_size, Matched::NONE);
            // Two slots naming one entry clash here: an entry is never shared.
            if !self.regions.insert_all(&known.regions(e.at)?) {
                return Err(Error::InvalidHeap);
            }
            self.entries.insert(e.at, known);
        }
        self.valid = true;
        Ok(())
    }

    /// `e`'s stored layout, interned, with its root's size and alignment (`None` for a
    /// bare lock, which stores none). Each distinct layout is decoded once.
    fn stored_layout(&mut self, heap: &Heap, e: &Entry) -> Result<(u32, Option<ElemSize>)> {
        let kind = Kind::from_bits(e.kind).ok_or(Error::InvalidHeap)?;
        let bytes = heap.load_bytes(e.layout_at(), e.layout_len);
        if kind.shape == Shape::Lock && !(bytes.is_empty() && e.object == 0) {
            return Err(Error::InvalidHeap);
        }
        if let Some(&(id, root)) = self.layout_ids.get(&bytes[..]) {
            return Ok((id, (kind.shape != Shape::Lock).then_some(root)));
        }
        let root = if kind.shape == Shape::Lock {
            (0, 0)
        } else {
            let l = codec::decode(&bytes).ok_or(Error::InvalidHeap)?;
            (l.size, l.align)
        };
        let id = u32::try_from(self.layouts.len()).map_err(|_| Error::InvalidHeap)?;
        let bytes: Arc<[u8]> = Arc::from(bytes);
        self.layouts.push(bytes.clone());
        self.layout_ids.insert(bytes, (id, root));
        Ok((id, (kind.shape != Shape::Lock).then_some(root)))
    }

    /// Makes the index current for the table `t` a lookup reads.
    pub(super) fn follow(&mut self, heap: &Heap, t: &Table<'_>) -> Result<()> {
        let table = Region::table(t);
        if self.valid && self.table == Some(table) {
            return Ok(());
        }
        if self.valid {
            if let Some(old) = self.table.take() {
                self.regions.remove_all(&[Some(old)]);
            }
            if self.regions.insert_all(&[Some(table)]) {
                self.table = Some(table);
                return Ok(());
            }
        }
        self.rebuild(heap, Some(t))
    }

    /// Whether `e` is known as it is now (every field, and its stored layout's bytes),
    /// found to match a handle type with the element layout `matched` and the kind
    /// `kind` (the entry's: compared when it was matched), with its object's region
    /// computed with the element size `object_size` — so that the handle a lookup
    /// makes covers exactly the regions checked against everything else.
    pub(super) fn knows(
        &self,
        heap: &Heap,
        e: &Entry,
        kind: u32,
        matched: Matched,
        object_size: Option<usize>,
    ) -> bool {
        e.kind == kind
            && self.entries.get(&e.at).is_some_and(|k| {
                k.is(e)
                    && k.matched == matched
                    && k.object_size == object_size.unwrap_or(NO_OBJECT)
                    && heap.bytes_equal(e.layout_at(), &self.layouts[k.layout as usize])
            })
    }

    /// Records an entry this process just published (its kind and layout are those of
    /// `matched`, its object's element size `object_size`); a clash (never, short of a
    /// corrupted heap) only makes the next lookup rebuild the record.
    fn note(&mut self, heap: &Heap, e: &Entry, matched: Matched, object_size: Option<usize>) {
        if self.valid && !matches!(self.try_admit(heap, e, matched, object_size), Ok(true)) {
            self.valid = false;
        }
    }

    /// Records `e` as matching `matched`, its object's region computed with the
    /// element size `object_size`, after checking that its regions clash with nothing
    /// known (else, after looking at the directory as it is now: perhaps a clash with
    /// entries unpublished or changed since).
    pub(super) fn admit(
        &mut self,
        heap: &Heap,
        t: &Table<'_>,
        e: &Entry,
        matched: Matched,
        object_size: Option<usize>,
    ) -> Result<()> {
        if self.try_admit(heap, e, matched, object_size)? {
            return Ok(());
        }
        self.rebuild(heap, Some(t))?;
        if self.try_admit(heap, e, matched, object_size)? {
            return Ok(());
        }
        Err(Error::InvalidHeap)
    }

    /// [`Checked::admit`] without the rebuild: `false` on a clash (nothing changed
    /// then but that the entry is forgotten).
    fn try_admit(
        &mut self,
        heap: &Heap,
        e: &Entry,
        matched: Matched,
        object_size: Option<usize>,
    ) -> Result<bool> {
        let (layout, _) = self.stored_layout(heap, e)?;
        let known = Known::new(e, layout, object_size.unwrap_or(NO_OBJECT), matched);
        let regions = known.regions(e.at)?;
        self.forget(e.at);
        if !self.regions.insert_all(&regions) {
            return Ok(false);
        }
        self.entries.insert(e.at, known);
        Ok(true)
    }

    /// Forgets the entry at `at`, and its regions.
    fn forget(&mut self, at: usize) {
        if let Some(old) = self.entries.remove(&at) {
            if let Ok(regions) = old.regions(at) {
                self.regions.remove_all(&regions);
            }
        }
    }
}

/// Checks `e`'s object (by the element size and alignment `root` of its stored
/// layout) and lock in bounds and aligned.
fn check_entry(heap: &Heap, e: &Entry, root: Option<ElemSize>) -> Result<()> {
    let kind = Kind::from_bits(e.kind).ok_or(Error::InvalidHeap)?;
    let limit = heap.limit();
    if let Some((size, align)) = root {
        check_object(
            to_usize(e.object)?,
            to_usize(e.len)?,
            size,
            align,
            kind.shape,
            limit,
        )?;
    }
    if kind.lock != LockKind::None {
        check_lock(to_usize(e.lock)?, limit)?;
    }
    Ok(())
}

/// Hashes entry offsets for [`Checked::entries`]: one multiplication folded to 64 bits
/// (SipHash would cost more than the rest of a lookup's bookkeeping), keyed per map
/// so that whoever chose the offsets (anyone who can write the heap) cannot arrange
/// collisions.
struct OffsetHash(u64);

impl OffsetHash {
    fn new() -> OffsetHash {
        OffsetHash(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }
}

impl BuildHasher for OffsetHash {
    type Hasher = OffsetHasher;

    fn build_hasher(&self) -> OffsetHasher {
        OffsetHasher(self.0)
    }
}

struct OffsetHasher(u64);

impl OffsetHasher {
    fn mix(&mut self, x: u64) {
        let p = u128::from(self.0 ^ x) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl std::hash::Hasher for OffsetHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(u64::from(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How many times a lookup tries the mutex before checking on its own.
const TRIES: usize = 200;

impl Heap {
    /// This handle's record, unless another thread holds it for long or it is held
    /// for good (inherited locked by a forked child). Poisoning (a panic inside, which
    /// this crate never does) only discards what was recorded.
    fn checked(&self) -> Option<MutexGuard<'_, Checked>> {
        let lock: &Mutex<Checked> = &self.inner().checked;
        for attempt in 0..TRIES {
            match lock.try_lock() {
                Ok(guard) => return Some(guard),
                Err(TryLockError::Poisoned(p)) => {
                    let mut guard = p.into_inner();
                    guard.valid = false;
                    lock.clear_poison();
                    return Some(guard);
                }
                Err(TryLockError::WouldBlock) if attempt < TRIES / 2 => std::hint::spin_loop(),
                Err(TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
        None
    }

    /// This handle's record, or — when it is not to be had (see [`Heap::checked`]) —
    /// one of the caller's own, built from the whole directory when first used.
    pub(super) fn checked_or_own(&self) -> CheckedRef<'_> {
        match self.checked() {
            Some(guard) => CheckedRef::Shared(guard),
            None => CheckedRef::Own(Checked::unchecked()),
        }
    }

    /// Checks every live entry of the directory in full (for `open`), and records them.
    pub(super) fn check_all(&self) -> Result<()> {
        let t = self.read_table()?;
        self.checked_or_own().rebuild(self, t.as_ref())
    }

    /// Records an entry this process just published (if the record is to be had).
    pub(super) fn note_published(&self, e: &Entry, matched: Matched, object_size: Option<usize>) {
        if let Some(mut c) = self.checked() {
            c.note(self, e, matched, object_size);
        }
    }

    /// Forgets an entry this process just unpublished (if the record is to be had).
    pub(super) fn forget_entry(&self, at: usize) {
        if let Some(mut c) = self.checked() {
            c.forget(at);
        }
    }
}

/// A [`Checked`] record: this handle's, or the caller's own.
pub(super) enum CheckedRef<'a> {
    Shared(MutexGuard<'a, Checked>),
    Own(Checked),
}

impl std::ops::Deref for CheckedRef<'_> {
    type Target = Checked;

    fn deref(&self) -> &Checked {
        match self {
            CheckedRef::Shared(g) => g,
            CheckedRef::Own(c) => c,
        }
    }
}

impl std::ops::DerefMut for CheckedRef<'_> {
    fn deref_mut(&mut self) -> &mut Checked {
        match self {
            CheckedRef::Shared(g) => g,
            CheckedRef::Own(c) => c,
        }
    }
}
