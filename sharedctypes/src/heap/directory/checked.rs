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
//! The index costs about 250 bytes of this process's memory per entry it knows. It is
//! behind a mutex that lookups only *try* to take: a forked child may inherit it
//! locked (held by a thread of the parent at the fork, which the child does not have),
//! and a lookup that cannot take it checks against an index it builds for itself, from
//! the whole directory: O(n), but never a deadlock.

use std::collections::{BTreeMap, HashMap};
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

    fn entry(e: &Entry) -> Region {
        Region {
            start: e.at,
            end: e.end(),
            holds: Holds::Entry,
        }
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

/// The handle type a lookup matched an entry with: its kind bits, and the address of
/// its element type's `TypeLayout` (a `static`: the same address, the same layout;
/// 0 for a bare lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Matched {
    pub kind: u32,
    pub layout: usize,
}

/// An element's size and alignment.
type ElemSize = (usize, usize);

/// An entry this handle has checked.
struct Known {
    /// The entry as it was when checked.
    entry: Entry,
    /// Its stored layout's bytes then (shared between entries with the same layout).
    layout: Arc<[u8]>,
    /// Its own bytes, its object and its lock, as in the index.
    regions: [Option<Region>; 3],
    /// The handle type a lookup found it matches, if any.
    matched: Option<Matched>,
}

/// What one [`Heap`] handle (and its clones) in this process has checked of the
/// directory. See the module documentation.
pub(crate) struct Checked {
    /// False until built from the directory (a heap just mapped), or after a failure.
    valid: bool,
    regions: Regions,
    /// The table whose region is in `regions`.
    table: Option<Region>,
    entries: HashMap<usize, Known>,
    /// Distinct stored layouts, with the size and alignment their root records.
    layouts: HashMap<Arc<[u8]>, (usize, usize)>,
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
            entries: HashMap::new(),
            layouts: HashMap::new(),
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
        // proportional to it. (The cursor is read after each slot: it covers the
        // entry, and only grows.)
        let mut claimed = 0usize;
        for at in heap.live_entries(t)? {
            let e = heap.read_entry(at, heap.cursor())?;
            claimed += ENTRY_SIZE + e.key_len + e.layout_len;
            if claimed > heap.cursor() - HEADER_SIZE {
                return Err(Error::InvalidHeap);
            }
            let (layout, root) = self.stored_layout(heap, &e)?;
            let regions = entry_regions(heap, &e, root)?;
            if !self.regions.insert_all(&regions) {
                return Err(Error::InvalidHeap);
            }
            let known = Known {
                entry: e,
                layout,
                regions,
                matched: None,
            };
            if let Some(dup) = self.entries.insert(e.at, known) {
                // Two slots naming one entry: its regions clashed above already.
                self.regions.remove_all(&dup.regions);
                return Err(Error::InvalidHeap);
            }
        }
        self.valid = true;
        Ok(())
    }

    /// `e`'s stored layout, interned, with its root's size and alignment (`None` for a
    /// bare lock, which stores none). Each distinct layout is decoded once.
    fn stored_layout(&mut self, heap: &Heap, e: &Entry) -> Result<(Arc<[u8]>, Option<ElemSize>)> {
        let kind = Kind::from_bits(e.kind).ok_or(Error::InvalidHeap)?;
        let bytes = heap.load_bytes(e.layout_at(), e.layout_len);
        if kind.shape == Shape::Lock {
            return if bytes.is_empty() && e.object == 0 {
                Ok((Arc::from(bytes), None))
            } else {
                Err(Error::InvalidHeap)
            };
        }
        if let Some((k, &root)) = self.layouts.get_key_value(&bytes[..]) {
            return Ok((k.clone(), Some(root)));
        }
        let l = codec::decode(&bytes).ok_or(Error::InvalidHeap)?;
        let key: Arc<[u8]> = Arc::from(bytes);
        self.layouts.insert(key.clone(), (l.size, l.align));
        Ok((key, Some((l.size, l.align))))
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
    /// and found to match the handle type `matched`.
    pub(super) fn knows(&self, heap: &Heap, e: &Entry, matched: Matched) -> bool {
        self.entries.get(&e.at).is_some_and(|k| {
            k.entry == *e
                && k.matched == Some(matched)
                && heap.bytes_equal(e.layout_at(), &k.layout)
        })
    }

    /// Whether the entry at `at` is known with exactly the object and lock regions
    /// `ours` (checked against everything else when recorded).
    pub(super) fn covers(&self, at: usize, ours: &[Option<Region>; 2]) -> bool {
        self.entries
            .get(&at)
            .is_some_and(|k| k.regions[1..] == ours[..])
    }

    /// Records an entry this process just published, with the regions `ours` of the
    /// handle it published; a clash (never, short of a corrupted heap) only makes the
    /// next lookup rebuild the record.
    fn note(&mut self, heap: &Heap, e: &Entry, matched: Matched, ours: [Option<Region>; 2]) {
        if !self.valid {
            return;
        }
        let Ok((layout, _)) = self.stored_layout(heap, e) else {
            self.valid = false;
            return;
        };
        let regions = [Some(Region::entry(e)), ours[0], ours[1]];
        if !self.swap_in(e.at, &regions) {
            self.valid = false;
            return;
        }
        let known = Known {
            entry: *e,
            layout,
            regions,
            matched: Some(matched),
        };
        self.entries.insert(e.at, known);
    }

    /// Records `e`, with the regions `ours` a handle covers, after checking that they
    /// clash with nothing known.
    pub(super) fn admit(
        &mut self,
        heap: &Heap,
        t: &Table<'_>,
        e: &Entry,
        matched: Matched,
        ours: [Option<Region>; 2],
    ) -> Result<()> {
        let (layout, _) = self.stored_layout(heap, e)?;
        let regions = [Some(Region::entry(e)), ours[0], ours[1]];
        if !self.swap_in(e.at, &regions) {
            // Perhaps a clash with entries unpublished or changed since: look at the
            // directory as it is now.
            self.rebuild(heap, Some(t))?;
            if !self.swap_in(e.at, &regions) {
                return Err(Error::InvalidHeap);
            }
        }
        let known = Known {
            entry: *e,
            layout,
            regions,
            matched: Some(matched),
        };
        self.entries.insert(e.at, known);
        Ok(())
    }

    /// Replaces the regions of the entry at `at` with `regions`, unless they clash.
    fn swap_in(&mut self, at: usize, regions: &[Option<Region>; 3]) -> bool {
        if let Some(old) = self.entries.remove(&at) {
            self.regions.remove_all(&old.regions);
        }
        self.regions.insert_all(regions)
    }
}

/// An entry's regions, its object's by the element size `root` of its stored layout,
/// after checking the object and lock in bounds and aligned.
fn entry_regions(heap: &Heap, e: &Entry, root: Option<ElemSize>) -> Result<[Option<Region>; 3]> {
    let kind = Kind::from_bits(e.kind).ok_or(Error::InvalidHeap)?;
    let limit = heap.cursor();
    let mut object = None;
    if let Some((size, align)) = root {
        let (at, len) = (to_usize(e.object)?, to_usize(e.len)?);
        check_object(at, len, size, align, kind.shape, limit)?;
        object = Region::object(at, len, size)?;
    }
    let mut lock = None;
    if kind.lock != LockKind::None {
        let at = to_usize(e.lock)?;
        check_lock(at, limit)?;
        lock = Some(Region::lock(at)?);
    }
    Ok([Some(Region::entry(e)), object, lock])
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
    pub(super) fn note_published(&self, e: &Entry, matched: Matched, ours: [Option<Region>; 2]) {
        if let Some(mut c) = self.checked() {
            c.note(self, e, matched, ours);
        }
    }

    /// Forgets an entry this process just unpublished (if the record is to be had).
    pub(super) fn forget_entry(&self, at: usize) {
        if let Some(mut c) = self.checked() {
            if let Some(old) = c.entries.remove(&at) {
                c.regions.remove_all(&old.regions);
            }
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
