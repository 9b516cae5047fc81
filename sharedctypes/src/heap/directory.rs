//! The directory of a heap: publish and lookup by key.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::publish::{Found, Kind, LockKind, Publish, Shape};
use super::{Heap, HEADER_SIZE};
use crate::error::{Error, NameKind, Result, UNDESCRIBABLE};
use crate::layout::codec::{self, TooBig};
use crate::layout::OwnedLayout;
use crate::os;

use crate::sync::{LOCK_ALIGN, LOCK_SIZE};
use crate::TypeLayout;

/// Longest key [`Heap::publish`] accepts, in bytes.
///
/// ```
/// use sharedctypes::{Error, Heap, RawValue, MAX_KEY_LEN};
///
/// let heap = Heap::new(1 << 16)?; // publishing works on anonymous heaps too
/// let v = RawValue::new_in(&heap, 1u8)?;
/// heap.publish(&"k".repeat(MAX_KEY_LEN), &v)?;
/// let err = heap.publish(&"k".repeat(MAX_KEY_LEN + 1), &v).unwrap_err();
/// assert!(matches!(err, Error::InvalidName { .. }));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub const MAX_KEY_LEN: usize = 255;

// ---------------------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------------------

/// `"SCDE"`: the first word of every directory entry.
const ENTRY_TAG: u32 = u32::from_le_bytes(*b"SCDE");

/// A directory entry's fixed part, followed in the heap by the key and the layout.
/// Only atomics: another process may read it while it is written, and garbage is a
/// valid (if meaningless) value for each field.
#[repr(C)]
struct EntryHeader {
    tag: AtomicU32,
    kind: AtomicU32,
    next: AtomicU64,
    object: AtomicU64,
    len: AtomicU64,
    lock: AtomicU64,
    key_len: AtomicU32,
    layout_len: AtomicU32,
}

const ENTRY_SIZE: usize = std::mem::size_of::<EntryHeader>();
const ENTRY_ALIGN: usize = std::mem::align_of::<EntryHeader>();

/// A directory entry read out of the heap; its bounds are checked.
struct Entry {
    next: u64,
    kind: u32,
    object: u64,
    len: u64,
    lock: u64,
    key_at: usize,
    key_len: usize,
    layout_at: usize,
    layout_len: usize,
}

/// What a stretch of a heap holds, for [`Heap::check_aliasing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Holds {
    Header,
    Entry,
    Object,
    Lock,
}

/// `[start, end)` of a heap and what it holds. Ordered by start, then end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Region {
    start: usize,
    end: usize,
    holds: Holds,
}

/// The heap's header, which nothing else may overlap.
const HEADER_REGION: Region = Region {
    start: 0,
    end: HEADER_SIZE,
    holds: Holds::Header,
};

impl Region {
    fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `self` and `other` may share memory: the same object, or the same lock,
    /// named twice.
    fn may_share(&self, other: &Region) -> bool {
        self == other && matches!(self.holds, Holds::Object | Holds::Lock)
    }

    /// `len` elements of `size` bytes at `start`.
    fn object(start: usize, len: usize, size: usize) -> Result<Region> {
        let end = len
            .checked_mul(size)
            .and_then(|n| start.checked_add(n))
            .ok_or(Error::InvalidHeap)?;
        Ok(Region {
            start,
            end,
            holds: Holds::Object,
        })
    }

    /// A lock's state at `start`.
    fn lock(start: usize) -> Result<Region> {
        let end = start.checked_add(LOCK_SIZE).ok_or(Error::InvalidHeap)?;
        Ok(Region {
            start,
            end,
            holds: Holds::Lock,
        })
    }
}

impl Heap {
    /// Publishes `handle` under `key` in this heap's directory, for
    /// [`lookup`](Heap::lookup) by any process that opens the heap.
    ///
    /// `handle` is a [`RawValue`](crate::RawValue), [`RawArray`](crate::RawArray),
    /// [`Value`](crate::Value), [`Array`](crate::Array), [`Lock`](crate::Lock),
    /// [`RLock`](crate::RLock), or a coordination object ([`Event`](crate::Event),
    /// [`Semaphore`](crate::Semaphore), [`BoundedSemaphore`](crate::BoundedSemaphore),
    /// [`Barrier`](crate::Barrier)) whose memory (and lock) lives in this heap, else
    /// [`Error::WrongHeap`].
    /// A key is 1 to [`MAX_KEY_LEN`] bytes ([`Error::InvalidName`] otherwise); a taken key
    /// is [`Error::AlreadyExists`] — of concurrent publishes of one key, in any
    /// processes, exactly one succeeds. The element type's [layout](crate::SharedType::LAYOUT)
    /// and the handle's kind are stored for `lookup` to compare. Works on anonymous heaps
    /// too (for forked children).
    ///
    /// ```
    /// use sharedctypes::{Error, Heap, Lock, RawArray};
    ///
    /// let heap = Heap::create(&format!("/doc-publish-{}", std::process::id()), 1 << 16)?;
    /// let samples = RawArray::from_slice_in(&heap, &[1.0f64, 2.0])?;
    /// heap.publish("samples", &samples)?;
    /// assert!(matches!(heap.publish("samples", &samples), Err(Error::AlreadyExists { .. })));
    /// let elsewhere = Lock::new_in(&Heap::new(4096)?)?;
    /// assert!(matches!(heap.publish("lock", &elsewhere), Err(Error::WrongHeap)));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn publish<H: Publish>(&self, key: &str, handle: &H) -> Result<()> {
        let key_str = key;
        let key = self.check_key(key)?;
        if H::__KIND.lock != LockKind::None {
            self.check_namespaces()?;
        }
        let parts = handle.__parts();
        let ours = |part: Option<(&Heap, usize)>| part.map_or(true, |(h, _)| h.same_heap(self));
        if !ours(parts.object) || !ours(parts.lock) {
            return Err(Error::WrongHeap);
        }
        let layout = match H::__layout() {
            Some(l) => OwnedLayout::try_from(l)
                .and_then(|owned| codec::encode(&owned))
                .map_err(|e| {
                    Error::LayoutMismatch(format!(
                        "{}, so it cannot be published",
                        undescribable(l, e)
                    ))
                })?,
            None => Vec::new(),
        };
        let directory = &self.header().directory;
        let mut seen = directory.load(Ordering::Acquire);
        if self.find(seen, key)?.is_some() {
            return Err(self.key_taken(key_str));
        }
        let size = ENTRY_SIZE + key.len() + layout.len();
        let at = self.alloc(size, ENTRY_ALIGN)?;
        let header = self.entry_header(at);
        header.tag.store(ENTRY_TAG, Ordering::Relaxed);
        header.kind.store(H::__KIND.to_bits(), Ordering::Relaxed);
        header
            .object
            .store(parts.object.map_or(0, |(_, o)| o as u64), Ordering::Relaxed);
        header.len.store(parts.len as u64, Ordering::Relaxed);
        header
            .lock
            .store(parts.lock.map_or(0, |(_, o)| o as u64), Ordering::Relaxed);
        header.key_len.store(key.len() as u32, Ordering::Relaxed);
        header
            .layout_len
            .store(layout.len() as u32, Ordering::Relaxed);
        self.store_bytes(at + ENTRY_SIZE, key);
        self.store_bytes(at + ENTRY_SIZE + key.len(), &layout);
        loop {
            header.next.store(seen, Ordering::Relaxed);
            // Release: whoever sees the new head sees the whole entry.
            match directory.compare_exchange(seen, at as u64, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(head) => {
                    // Others linked entries meanwhile: one of them may hold our key.
                    if self.find(head, key)?.is_some() {
                        return Err(self.key_taken(key_str));
                    }
                    seen = head;
                }
            }
        }
    }

    /// The object published under `key`, as a working handle of type `H` in this
    /// process.
    ///
    /// [`Error::NotFound`] if no such key; [`Error::LayoutMismatch`] if the stored
    /// element type's [layout](crate::SharedType::LAYOUT) or the handle kind (value or array,
    /// lock or none, which lock) differs from `H`'s — the message says what differs,
    /// field by field; [`Error::InvalidHeap`] if the entry is corrupt, or if its object
    /// or lock would overlap the heap's header, a directory entry, or another published
    /// object or lock (the same object or lock published under several keys is fine);
    /// for a handle with a lock, [`Error::ForeignPidNamespace`] or
    /// [`Error::ForeignTimeNamespace`] from another namespace (see
    /// [locks and namespaces](crate::named#locks-pid-namespaces-and-time-namespaces)).
    ///
    /// ```
    /// use sharedctypes::{Error, Heap, RawValue, Value};
    ///
    /// let name = format!("/doc-lookup-{}", std::process::id());
    /// let heap = Heap::create(&name, 1 << 16)?;
    /// heap.publish("n", &Value::new_in(&heap, 7i32)?)?;
    ///
    /// let opened = Heap::open(&name)?;
    /// let n: Value<i32> = opened.lookup("n")?;
    /// assert_eq!(n.update(|x| x * 6), 42);
    /// let missing = opened.lookup::<Value<i32>>("m").unwrap_err();
    /// assert!(matches!(missing, Error::NotFound { .. }));
    /// assert!(missing.to_string().starts_with(&format!("key \"m\" not found in heap {name:?}")));
    ///
    /// let Err(Error::LayoutMismatch(why)) = opened.lookup::<RawValue<i64>>("n") else {
    ///     panic!("a Value<i32> is not a RawValue<i64>")
    /// };
    /// assert_eq!(
    ///     why,
    ///     "key \"n\": a Value<i32> with an RLock in the heap, a RawValue<i64> here; \
    ///      i32 in the heap, i64 here"
    /// );
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn lookup<H: Publish>(&self, key: &str) -> Result<H> {
        let key_bytes = self.check_key(key)?;
        let head = self.header().directory.load(Ordering::Acquire);
        let entry = self.find(head, key_bytes)?.ok_or_else(|| Error::NotFound {
            name: key.to_owned(),
            kind: self.key_kind(),
        })?;
        let stored_kind = Kind::from_bits(entry.kind).ok_or(Error::InvalidHeap)?;
        let stored_layout = self.entry_layout(&entry, stored_kind)?;
        let here_layout = match H::__layout() {
            Some(l) => Some(OwnedLayout::try_from(l).map_err(|e| {
                Error::LayoutMismatch(format!(
                    "key {key:?}: {}, so nothing published can match it",
                    undescribable(l, e)
                ))
            })?),
            None => None,
        };

        let diffs = match (&stored_layout, &here_layout) {
            (Some(stored), Some(here)) if stored != here => {
                let diffs = stored.differences(here);
                if diffs.is_empty() {
                    vec![format!("`{stored}` in the heap, `{here}` here")]
                } else {
                    diffs
                }
            }
            _ => Vec::new(),
        };
        let stored_desc = stored_kind.describe(stored_layout.as_ref());
        if stored_kind != H::__KIND {
            let mut what = format!(
                "key {key:?}: {stored_desc} in the heap, {} here",
                H::__KIND.describe(here_layout.as_ref())
            );
            for d in diffs {
                what.push_str("; ");
                what.push_str(&d);
            }
            return Err(Error::LayoutMismatch(what));
        }
        if !diffs.is_empty() {
            return Err(Error::LayoutMismatch(format!(
                "key {key:?} ({stored_desc}): {}",
                diffs.join("; ")
            )));
        }

        // The kinds and layouts agree: check the memory against `H`'s own type — its
        // real size and alignment, not its `LAYOUT`'s (which the unsafe `SharedType`
        // contract requires to agree, but soundness here does not rely on it).
        let limit = self.cursor();
        let found = Found {
            object: to_usize(entry.object)?,
            len: to_usize(entry.len)?,
            lock: to_usize(entry.lock)?,
        };
        // What the handle will cover, with `H`'s real element size.
        let mut ours = Vec::with_capacity(2);
        if let Some((size, align)) = H::__ELEM {
            check_object(found.object, found.len, size, align, H::__KIND.shape, limit)?;
            ours.push(Region::object(found.object, found.len, size)?);
        }
        if H::__KIND.lock != LockKind::None {
            check_lock(found.lock, limit)?;
            ours.push(Region::lock(found.lock)?);
        }
        // Nothing else in the directory may share its memory (read again: the entry may
        // have changed since it was found, which the check then reports as an overlap).
        ours.retain(|r| !r.is_empty());
        self.check_not_aliased(head, &ours)?;
        if H::__KIND.lock != LockKind::None {
            self.check_namespaces()?;
        }
        // SAFETY: `check_object` proved `[object, object + len * size_of::<T>())` inside the
        // allocated part of this heap and aligned for `T` (`H::__ELEM` is `T`'s
        // `size_of` and `align_of`); `check_lock` did the same for the lock's
        // lock; the kind (and so which of them `H` uses) is `H::__KIND`, compared
        // above. (`check_aliasing` keeps the object off the lock words, for correctness:
        // soundness does not depend on it, every access being atomic.)
        Ok(unsafe { H::__rebuild(self, &found) })
    }

    /// Locks are usable only in the PID and time namespaces the heap was created in. A
    /// namespace that cannot be read, on either side, counts as another one: a lock
    /// that cannot be proven safe to share is not shared.
    fn check_namespaces(&self) -> Result<()> {
        let header = self.header();
        let same = |theirs: u64, ours: u64| {
            theirs != os::UNKNOWN_NAMESPACE && ours != os::UNKNOWN_NAMESPACE && theirs == ours
        };
        if !same(
            header.pid_namespace.load(Ordering::Relaxed),
            os::pid_namespace(),
        ) {
            return Err(Error::ForeignPidNamespace);
        }
        if !same(
            header.time_namespace.load(Ordering::Relaxed),
            os::time_namespace(),
        ) {
            return Err(Error::ForeignTimeNamespace);
        }
        Ok(())
    }

    /// What a key names in this heap, for errors.
    fn key_kind(&self) -> NameKind {
        NameKind::Key {
            heap: self.name().map(str::to_owned),
        }
    }

    /// [`Error::AlreadyExists`] for `key`.
    fn key_taken(&self, key: &str) -> Error {
        Error::AlreadyExists {
            name: key.to_owned(),
            kind: self.key_kind(),
        }
    }

    /// `key`'s bytes, if it is 1 to [`MAX_KEY_LEN`] bytes long.
    fn check_key<'k>(&self, key: &'k str) -> Result<&'k [u8]> {
        let reason = match key.len() {
            0 => "it is empty",
            1..=MAX_KEY_LEN => return Ok(key.as_bytes()),
            _ => "it is longer than 255 bytes",
        };
        Err(Error::InvalidName {
            name: key.to_owned(),
            kind: self.key_kind(),
            reason,
        })
    }

    /// The keys published in this heap, newest first.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// heap.publish("a", &sharedctypes::Lock::new_in(&heap)?)?;
    /// heap.publish("b", &sharedctypes::RLock::new_in(&heap)?)?;
    /// assert_eq!(heap.keys()?, ["b", "a"]);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let head = self.header().directory.load(Ordering::Acquire);
        self.walk(head, |e| {
            let key = self.load_bytes(e.key_at, e.key_len);
            keys.push(String::from_utf8_lossy(&key).into_owned());
            Ok(None::<()>)
        })?;
        Ok(keys)
    }

    /// Checks every directory entry in full (for `open`).
    pub(super) fn check_directory(&self) -> Result<()> {
        let head = self.header().directory.load(Ordering::Acquire);
        let limit = self.cursor();
        self.walk(head, |e| {
            let kind = Kind::from_bits(e.kind).ok_or(Error::InvalidHeap)?;
            let layout = self.entry_layout(e, kind)?;
            if let Some(l) = layout {
                let object = to_usize(e.object)?;
                check_object(object, to_usize(e.len)?, l.size, l.align, kind.shape, limit)?;
            }
            if kind.lock != LockKind::None {
                check_lock(to_usize(e.lock)?, limit)?;
            }
            Ok(None::<()>)
        })?;
        self.check_aliasing(head)
    }

    /// Checks that the memory the directory from `head` names — entries, objects,
    /// locks — overlaps neither itself nor the header (for `open`), except that one
    /// object or one lock may be named more than once, whole (published under several
    /// keys, or one lock shared by several objects). A legitimate heap never has
    /// anything else: every entry, object and lock is an allocation of its own. A
    /// corrupted directory could otherwise hand out an object whose stores land on a
    /// lock word or on the directory itself.
    ///
    /// Only what the directory names can be checked: a lock or object that was never
    /// published leaves no trace in the heap.
    fn check_aliasing(&self, head: u64) -> Result<()> {
        let mut regions = vec![HEADER_REGION];
        self.directory_regions(head, |r| {
            regions.push(r);
            Ok(())
        })?;
        // Sorted by start, an overlap is a region that starts before the furthest end
        // seen so far; a repeat of the region just before it is allowed.
        regions.sort_unstable();
        let mut reach = 0;
        let mut prev: Option<Region> = None;
        for r in regions {
            if prev.is_some_and(|p| p.may_share(&r)) {
                continue;
            }
            if r.start < reach {
                return Err(Error::InvalidHeap);
            }
            reach = r.end;
            prev = Some(r);
        }
        Ok(())
    }

    /// Checks that `ours` — the object and lock a lookup is about to hand out — overlap
    /// neither each other, nor the header, nor anything the directory from `head`
    /// names, except themselves (see [`Heap::check_aliasing`]). One pass over the
    /// directory, no sorting: a lookup costs time proportional to the directory, as
    /// finding the key already does.
    fn check_not_aliased(&self, head: u64, ours: &[Region]) -> Result<()> {
        let clash = |r: &Region| ours.iter().any(|o| o.overlaps(r) && !o.may_share(r));
        let mut rest = ours;
        while let [first, tail @ ..] = rest {
            if tail.iter().any(|r| r.overlaps(first)) {
                return Err(Error::InvalidHeap);
            }
            rest = tail;
        }
        if clash(&HEADER_REGION) {
            return Err(Error::InvalidHeap);
        }
        self.directory_regions(head, |r| {
            if clash(&r) {
                Err(Error::InvalidHeap)
            } else {
                Ok(())
            }
        })
    }

    /// Feeds `visit` the memory each entry from `head` names: the entry itself, its
    /// object (by the element size its stored layout records) and its lock. Empty
    /// objects (zero elements, or zero-sized ones) hold no memory and are left out.
    fn directory_regions(
        &self,
        head: u64,
        mut visit: impl FnMut(Region) -> Result<()>,
    ) -> Result<()> {
        self.walk(head, |e| {
            visit(Region {
                start: e.key_at - ENTRY_SIZE,
                end: e.layout_at + e.layout_len,
                holds: Holds::Entry,
            })?;
            let kind = Kind::from_bits(e.kind).ok_or(Error::InvalidHeap)?;
            if kind.shape != Shape::Lock {
                let size = self.root_size(e).ok_or(Error::InvalidHeap)?;
                let object = Region::object(to_usize(e.object)?, to_usize(e.len)?, size)?;
                if !object.is_empty() {
                    visit(object)?;
                }
            }
            if kind.lock != LockKind::None {
                visit(Region::lock(to_usize(e.lock)?)?)?;
            }
            Ok(None::<()>)
        })?;
        Ok(())
    }

    /// The element size an entry's stored layout records (its root node's size; the
    /// rest is compared by `lookup`).
    fn root_size(&self, e: &Entry) -> Option<usize> {
        let mut root = [0u8; codec::ROOT_SIZE_END];
        let n = e.layout_len.min(root.len());
        for (b, stored) in root.iter_mut().zip(self.bytes(e.layout_at, n)) {
            *b = stored.load(Ordering::Relaxed);
        }
        codec::root_size(&root[..n])
    }

    /// The entry whose key is `key`, walking from `head`.
    fn find(&self, head: u64, key: &[u8]) -> Result<Option<Entry>> {
        self.walk(head, |e| {
            Ok((e.key_len == key.len() && self.bytes_equal(e.key_at, key)).then_some(()))
        })
    }

    /// Visits the entries from `head` to the end until `visit` returns `Some`, and
    /// returns that entry. Every entry's bounds are checked before it is visited.
    fn walk<R>(
        &self,
        head: u64,
        mut visit: impl FnMut(&Entry) -> Result<Option<R>>,
    ) -> Result<Option<Entry>> {
        // After loading `head` (Acquire), the cursor covers every entry reachable from it.
        let limit = self.cursor();
        // Live entries are disjoint allocations: together they claim at most the bytes
        // allocated. Overlapping entries (a crafted heap) would make the walk, and the
        // decoding of their layouts, cost many times the heap's size; this budget keeps
        // the work proportional to it.
        let mut budget = limit - HEADER_SIZE;
        let (mut saved, mut power, mut lambda) = (0u64, 1usize, 0usize);
        let mut at = head;
        while at != 0 {
            if at == saved {
                return Err(Error::InvalidHeap);
            }
            let entry = self.read_entry(at, limit)?;
            // `read_entry` bounded both lengths: no overflow.
            let claimed = ENTRY_SIZE + entry.key_len + entry.layout_len;
            budget = budget.checked_sub(claimed).ok_or(Error::InvalidHeap)?;
            if visit(&entry)?.is_some() {
                return Ok(Some(entry));
            }
            // Brent's cycle detection: remember the entry at every power of two steps;
            // a cycle brings the walk back to it within one more power of two.
            lambda += 1;
            if lambda == power {
                saved = at;
                power = power.saturating_mul(2);
                lambda = 0;
            }
            at = entry.next;
        }
        Ok(None)
    }

    /// The entry's fixed part at `at` (an offset this process just allocated, or
    /// checked by `read_entry`).
    fn entry_header(&self, at: usize) -> &EntryHeader {
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
    fn read_entry(&self, at: u64, limit: usize) -> Result<Entry> {
        let at = to_usize(at)?;
        let fits =
            |start: usize, len: usize| start.checked_add(len).is_some_and(|end| end <= limit);
        if at < HEADER_SIZE || at % ENTRY_ALIGN != 0 || !fits(at, ENTRY_SIZE) {
            return Err(Error::InvalidHeap);
        }
        let h = self.entry_header(at);
        let key_len = h.key_len.load(Ordering::Relaxed) as usize;
        let layout_len = h.layout_len.load(Ordering::Relaxed) as usize;
        let key_at = at + ENTRY_SIZE;
        let layout_at = key_at + key_len;
        if h.tag.load(Ordering::Relaxed) != ENTRY_TAG
            || !(1..=MAX_KEY_LEN).contains(&key_len)
            || layout_len > codec::MAX_ENCODED_LEN
            || !fits(layout_at, layout_len)
        {
            return Err(Error::InvalidHeap);
        }
        Ok(Entry {
            next: h.next.load(Ordering::Relaxed),
            kind: h.kind.load(Ordering::Relaxed),
            object: h.object.load(Ordering::Relaxed),
            len: h.len.load(Ordering::Relaxed),
            lock: h.lock.load(Ordering::Relaxed),
            key_at,
            key_len,
            layout_at,
            layout_len,
        })
    }

    /// The stored element layout (`None` for a bare lock, which stores none).
    fn entry_layout(&self, e: &Entry, kind: Kind) -> Result<Option<OwnedLayout>> {
        if kind.shape == Shape::Lock {
            return if e.layout_len == 0 && e.object == 0 {
                Ok(None)
            } else {
                Err(Error::InvalidHeap)
            };
        }
        let bytes = self.load_bytes(e.layout_at, e.layout_len);
        codec::decode(&bytes).map(Some).ok_or(Error::InvalidHeap)
    }

    fn bytes(&self, at: usize, len: usize) -> &[AtomicU8] {
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

    fn load_bytes(&self, at: usize, len: usize) -> Vec<u8> {
        self.bytes(at, len)
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    fn bytes_equal(&self, at: usize, other: &[u8]) -> bool {
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

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::InvalidHeap)
}

/// `len` elements of `size` bytes at `object` lie in `[HEADER_SIZE, limit)`, aligned.
fn check_object(
    object: usize,
    len: usize,
    size: usize,
    align: usize,
    shape: Shape,
    limit: usize,
) -> Result<()> {
    let end = len.checked_mul(size).and_then(|n| object.checked_add(n));
    // Only an array has other than one element (a coordination object's `len` is 1 too).
    let valid = (shape == Shape::Array || len == 1)
        && align.is_power_of_two()
        && align <= os::page_size()
        && object >= HEADER_SIZE
        && object % align == 0
        && end.is_some_and(|end| end <= limit);
    valid.then_some(()).ok_or(Error::InvalidHeap)
}

/// A lock's state at `lock` lies in `[HEADER_SIZE, limit)`, aligned.
fn check_lock(lock: usize, limit: usize) -> Result<()> {
    let valid = lock >= HEADER_SIZE
        && lock % LOCK_ALIGN == 0
        && lock.checked_add(LOCK_SIZE).is_some_and(|end| end <= limit);
    valid.then_some(()).ok_or(Error::InvalidHeap)
}

/// Why `l` cannot be described in a directory entry; contains [`UNDESCRIBABLE`], which
/// keeps [`Error::LayoutMismatch`]'s message from advising a rebuild.
fn undescribable(l: &TypeLayout, why: TooBig) -> String {
    let name = l.short_name();
    let why = match why {
        TooBig::Depth => format!(
            "it nests arrays and structs more than {} levels deep",
            codec::MAX_DEPTH
        ),
        TooBig::Size => format!(
            "its description takes more than {} bytes (a struct describes each of its \
             fields, an array its element once: use arrays for repeated fields)",
            codec::MAX_ENCODED_LEN
        ),
        TooBig::Name => format!(
            "a struct or field name in it is longer than {} bytes or has characters \
             other than letters, digits and `_`",
            codec::MAX_NAME_LEN
        ),
    };
    format!("`{name}` {UNDESCRIBABLE}: {why}")
}

#[cfg(test)]
mod tests {
    use std::fs::{File, OpenOptions};
    use std::mem::offset_of;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::heap::Header;
    use crate::raw::{RawArray, RawValue};
    use crate::shared::SharedType;
    use crate::sync::Lock;
    use crate::synchronized::Value;

    fn unique() -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        format!("/sct-unit-{}-{n}", std::process::id())
    }

    /// Where the interesting parts of a test heap are.
    struct Spots {
        total: u64,
        /// The newest entry ("lock", a bare Lock), then the older one ("v", a Value<u64>).
        newest: u64,
        older: u64,
    }

    fn u64_at(f: &File, at: u64) -> u64 {
        let mut b = [0; 8];
        f.read_exact_at(&mut b, at).unwrap();
        u64::from_ne_bytes(b)
    }

    fn put(f: &File, at: u64, bytes: &[u8]) {
        f.write_all_at(bytes, at).unwrap();
    }

    fn field(entry: u64, offset: usize) -> u64 {
        entry + offset as u64
    }

    /// Makes a heap with two entries, lets `edit` damage its file, and opens it.
    fn open_damaged(edit: impl FnOnce(&File, &Spots)) -> Result<Heap> {
        let name = unique();
        {
            let heap = Heap::create(&name, 1 << 16).unwrap();
            heap.publish("v", &Value::new_in(&heap, 7u64).unwrap())
                .unwrap();
            heap.publish("lock", &Lock::new_in(&heap).unwrap()).unwrap();
            heap.persist();
        }
        let path = format!("/dev/shm{name}");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let newest = u64_at(&file, offset_of!(Header, directory) as u64);
        let older = u64_at(&file, field(newest, offset_of!(EntryHeader, next)));
        let spots = Spots {
            total: file.metadata().unwrap().len(),
            newest,
            older,
        };
        edit(&file, &spots);
        let result = Heap::open(&name);
        Heap::unlink(&name).unwrap();
        result
    }

    fn invalid(edit: impl FnOnce(&File, &Spots)) -> bool {
        matches!(open_damaged(edit), Err(Error::InvalidHeap))
    }

    #[test]
    fn an_undamaged_heap_opens() {
        let heap = open_damaged(|_, _| {}).unwrap();
        assert_eq!(heap.keys().unwrap(), ["lock", "v"]);
        assert_eq!(heap.lookup::<Value<u64>>("v").unwrap().get(), 7);
    }

    #[test]
    fn a_damaged_header_is_invalid() {
        let at = |o: usize| o as u64;
        assert!(invalid(|f, _| put(f, 0, b"NOTAHEAP")));
        assert!(invalid(|f, _| put(
            f,
            at(offset_of!(Header, version)),
            &99u32.to_ne_bytes()
        )));
        assert!(invalid(|f, _| put(
            f,
            at(offset_of!(Header, header_size)),
            &64u32.to_ne_bytes()
        )));
        assert!(invalid(|f, s| put(
            f,
            at(offset_of!(Header, total_len)),
            &(s.total * 2).to_ne_bytes()
        )));
        assert!(invalid(|f, _| put(
            f,
            at(offset_of!(Header, cursor)),
            &8u64.to_ne_bytes()
        )));
        assert!(invalid(|f, s| put(
            f,
            at(offset_of!(Header, cursor)),
            &(s.total + 1).to_ne_bytes()
        )));
        assert!(invalid(|f, _| put(
            f,
            at(offset_of!(Header, state)),
            &7u32.to_ne_bytes()
        )));
    }

    #[test]
    fn a_wrong_size_is_invalid() {
        assert!(invalid(|f, s| f.set_len(s.total - 4096).unwrap()));
        assert!(invalid(|f, s| f.set_len(s.total + 4096).unwrap()));
        assert!(invalid(|f, _| f.set_len(64).unwrap()));
        assert!(invalid(|f, _| f.set_len(HEADER_SIZE as u64 - 1).unwrap()));
    }

    #[test]
    fn a_heap_being_created_is_not_found() {
        let not_found =
            |edit: fn(&File, &Spots)| matches!(open_damaged(edit), Err(Error::NotFound { .. }));
        assert!(not_found(|f, _| f.set_len(0).unwrap()));
        // Header not written yet, or half written.
        assert!(not_found(|f, _| put(f, 0, &[0; HEADER_SIZE])));
        assert!(not_found(|f, _| {
            put(f, 0, &[0; HEADER_SIZE]);
            put(f, 0, b"SHCT");
        }));
        assert!(not_found(|f, _| put(
            f,
            offset_of!(Header, state) as u64,
            &0u32.to_ne_bytes()
        )));
    }

    #[test]
    fn a_damaged_directory_is_invalid() {
        let head = offset_of!(Header, directory) as u64;
        let next = offset_of!(EntryHeader, next);
        // The head out of bounds, misaligned, inside the header.
        assert!(invalid(|f, s| put(f, head, &(s.total - 8).to_ne_bytes())));
        assert!(invalid(|f, s| put(f, head, &(s.newest + 4).to_ne_bytes())));
        assert!(invalid(|f, _| put(f, head, &8u64.to_ne_bytes())));
        assert!(invalid(|f, _| put(f, head, &u64::MAX.to_ne_bytes())));
        // Cycles of one and two entries.
        assert!(invalid(|f, s| put(
            f,
            field(s.newest, next),
            &s.newest.to_ne_bytes()
        )));
        assert!(invalid(|f, s| put(
            f,
            field(s.older, next),
            &s.newest.to_ne_bytes()
        )));
    }

    #[test]
    fn a_damaged_entry_is_invalid() {
        let e = |o: usize| o;
        let tag = e(offset_of!(EntryHeader, tag));
        let kind = e(offset_of!(EntryHeader, kind));
        let object = e(offset_of!(EntryHeader, object));
        let len = e(offset_of!(EntryHeader, len));
        let lock = e(offset_of!(EntryHeader, lock));
        let key_len = e(offset_of!(EntryHeader, key_len));
        let layout_len = e(offset_of!(EntryHeader, layout_len));
        assert!(invalid(|f, s| put(f, field(s.older, tag), b"XXXX")));
        // (9: the first unused shape; 0x0104: an Event with a lock.)
        for bad in [0u32, 0x0303, 9, 0x0104, 0x0300, 0x0400_0001] {
            assert!(
                invalid(|f, s| put(f, field(s.older, kind), &bad.to_ne_bytes())),
                "{bad:#x}"
            );
        }
        for bad in [0u32, 256, u32::MAX] {
            assert!(invalid(|f, s| put(
                f,
                field(s.older, key_len),
                &bad.to_ne_bytes()
            )));
        }
        for bad in [7u32, 100_000, u32::MAX] {
            assert!(invalid(|f, s| put(
                f,
                field(s.older, layout_len),
                &bad.to_ne_bytes()
            )));
        }
        // The layout's bytes: the tag of its root node.
        assert!(invalid(|f, s| put(
            f,
            s.older + ENTRY_SIZE as u64 + 1,
            &[9]
        )));
        // The value: out of bounds, misaligned, overlapping the header, a value of 2.
        for bad in [1u64 << 40, 0x1001, 8, u64::MAX - 3] {
            assert!(invalid(|f, s| put(
                f,
                field(s.older, object),
                &bad.to_ne_bytes()
            )));
        }
        assert!(invalid(|f, s| put(
            f,
            field(s.older, len),
            &2u64.to_ne_bytes()
        )));
        // The locks, of the value and the bare one.
        for bad in [0u64, 1 << 40, 0x1004, u64::MAX] {
            assert!(invalid(|f, s| put(
                f,
                field(s.older, lock),
                &bad.to_ne_bytes()
            )));
            assert!(invalid(|f, s| put(
                f,
                field(s.newest, lock),
                &bad.to_ne_bytes()
            )));
        }
        // A bare lock that claims an object.
        assert!(invalid(|f, s| put(
            f,
            field(s.newest, object),
            &256u64.to_ne_bytes()
        )));
    }

    #[test]
    fn damage_after_open_is_caught_by_lookup() {
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        heap.publish("v", &RawArray::from_slice_in(&heap, &[1u32, 2]).unwrap())
            .unwrap();
        let opened = Heap::open(&name).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm{name}"))
            .unwrap();
        let entry = u64_at(&file, offset_of!(Header, directory) as u64);
        put(
            &file,
            field(entry, offset_of!(EntryHeader, len)),
            &(1u64 << 40).to_ne_bytes(),
        );
        assert!(matches!(
            opened.lookup::<RawArray<u32>>("v"),
            Err(Error::InvalidHeap)
        ));
        put(
            &file,
            field(entry, offset_of!(EntryHeader, len)),
            &2u64.to_ne_bytes(),
        );
        assert_eq!(
            opened.lookup::<RawArray<u32>>("v").unwrap().to_vec(),
            [1, 2]
        );
        put(
            &file,
            field(entry, offset_of!(EntryHeader, next)),
            &entry.to_ne_bytes(),
        );
        assert!(matches!(
            opened.lookup::<RawArray<u32>>("w"),
            Err(Error::InvalidHeap)
        ));
        assert!(matches!(heap.keys(), Err(Error::InvalidHeap)));
    }

    #[test]
    fn kinds_round_trip() {
        for shape in [Shape::Value, Shape::Array, Shape::Lock] {
            for lock in [LockKind::None, LockKind::Lock, LockKind::RLock] {
                let k = Kind::new(shape, lock);
                let back = Kind::from_bits(k.to_bits());
                if shape == Shape::Lock && lock == LockKind::None {
                    assert_eq!(back, None);
                } else {
                    assert_eq!(back, Some(k));
                }
            }
        }
    }

    #[test]
    fn the_creator_pid_is_recorded() {
        let name = unique();
        let heap = Heap::create(&name, 4096).unwrap();
        assert_eq!(
            Heap::open(&name).unwrap().creator_pid(),
            Some(std::process::id())
        );
        assert_eq!(Heap::new(4096).unwrap().creator_pid(), None);
        drop(heap);
    }

    /// Links `n` bare-lock entries `stride` bytes apart, each with a 255-byte key (so
    /// with `stride < ENTRY_SIZE + 255` each key covers the next entries' fixed parts),
    /// newest last, in place of `heap`'s directory.
    fn overlapping_entries(heap: &Heap, n: usize, stride: usize) {
        let lock = Lock::new_in(heap).unwrap();
        let base = heap
            .alloc(stride * (n - 1) + ENTRY_SIZE + MAX_KEY_LEN, ENTRY_ALIGN)
            .unwrap();
        for i in 0..n {
            let at = base + i * stride;
            let h = heap.entry_header(at);
            h.tag.store(ENTRY_TAG, Ordering::Relaxed);
            let kind = Kind::new(Shape::Lock, LockKind::Lock).to_bits();
            h.kind.store(kind, Ordering::Relaxed);
            let next = if i == 0 { 0 } else { (at - stride) as u64 };
            h.next.store(next, Ordering::Relaxed);
            h.object.store(0, Ordering::Relaxed);
            h.len.store(0, Ordering::Relaxed);
            h.lock.store(lock.offset() as u64, Ordering::Relaxed);
            h.key_len.store(MAX_KEY_LEN as u32, Ordering::Relaxed);
            h.layout_len.store(0, Ordering::Relaxed);
        }
        let newest = base + (n - 1) * stride;
        heap.header()
            .directory
            .store(newest as u64, Ordering::Release);
    }

    #[test]
    fn overlapping_entries_exceed_the_byte_budget() {
        // 64 entries 56 bytes apart: each one in bounds, aligned and well formed, and
        // fewer than the allocated bytes could hold by count (the old limit), but
        // together they claim 64 * 303 bytes of about 4 KiB allocated.
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        overlapping_entries(&heap, 64, 56);
        assert!(64 < (heap.cursor() - HEADER_SIZE) / ENTRY_SIZE);
        assert!(matches!(Heap::open(&name), Err(Error::InvalidHeap)));
        assert!(matches!(heap.keys(), Err(Error::InvalidHeap)));
        assert!(matches!(heap.lookup::<Lock>("k"), Err(Error::InvalidHeap)));
        // The same entries laid out apart are fine.
        let apart = Heap::new(1 << 16).unwrap();
        overlapping_entries(&apart, 64, ENTRY_SIZE + MAX_KEY_LEN + 1);
        assert_eq!(apart.keys().unwrap().len(), 64);
    }

    #[test]
    fn a_heap_full_of_entries_is_within_the_budget() {
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        let mut n = 0;
        loop {
            let key = format!("{n:0>255}");
            let Ok(lock) = Lock::new_in(&heap) else { break };
            match heap.publish(&key, &lock) {
                Ok(()) => n += 1,
                Err(Error::OutOfMemory { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(n > 100, "{n}");
        let opened = Heap::open(&name).unwrap();
        assert_eq!(opened.keys().unwrap().len(), n);
    }

    /// A type whose `LAYOUT` lies (violating `SharedType`'s contract): it claims to be a
    /// `u8`, but is 8 bytes, 8-aligned.
    #[derive(Clone, Copy)]
    #[repr(C, align(8))]
    struct Liar(u64);

    // SAFETY: not sound as a whole (`LAYOUT` is wrong, deliberately, to show that
    // `lookup` does not rely on it); the test never obtains a handle, so never accesses
    // a `Liar` in memory. `__load`/`__store` would be `u64`'s, which have the same size.
    unsafe impl SharedType for Liar {
        const LAYOUT: TypeLayout = TypeLayout::primitive(crate::Primitive::U8);

        unsafe fn __load(src: *const Self) -> Self {
            // SAFETY: the caller guarantees `src` valid and aligned for `Liar`, which
            // is a `u64` with at least its alignment.
            Liar(unsafe { u64::__load(src.cast()) })
        }

        unsafe fn __store(dst: *mut Self, value: Self) {
            // SAFETY: as in `__load`, for writes.
            unsafe { u64::__store(dst.cast(), value.0) }
        }
    }

    #[test]
    fn lookup_checks_the_real_size_and_alignment() {
        let heap = Heap::new(1 << 16).unwrap();
        let _first = RawValue::new_in(&heap, 1u8).unwrap();
        let odd = RawValue::new_in(&heap, 2u8).unwrap();
        assert_eq!(odd.offset() % 2, 1);
        heap.publish("odd", &odd).unwrap();
        // The layouts compare equal (both say `u8`); the object is misaligned for a
        // `Liar` all the same.
        assert!(matches!(
            heap.lookup::<RawValue<Liar>>("odd"),
            Err(Error::InvalidHeap)
        ));
        assert_eq!(heap.lookup::<RawValue<u8>>("odd").unwrap().get(), 2);
    }

    #[test]
    fn coordination_kinds_round_trip_and_carry_no_lock() {
        for shape in [
            Shape::Event,
            Shape::Semaphore,
            Shape::BoundedSemaphore,
            Shape::Barrier,
            Shape::Condition,
        ] {
            let k = Kind::new(shape, LockKind::None);
            assert_eq!(Kind::from_bits(k.to_bits()), Some(k));
            for lock in [LockKind::Lock, LockKind::RLock] {
                assert_eq!(Kind::from_bits(Kind::new(shape, lock).to_bits()), None);
            }
        }
    }
    /// Offsets in a heap holding "v" (a `Value<u64>` with its own RLock), "a" (a
    /// `RawArray<u64>` of 4) and "lock" (a bare `Lock`), published in that order.
    #[derive(Clone, Copy, Debug)]
    struct Three {
        /// The entries.
        e_v: u64,
        e_a: u64,
        e_lock: u64,
        /// The objects and locks.
        o_v: u64,
        l_v: u64,
        o_a: u64,
        l_b: u64,
    }

    /// What a corrupted directory does to `open` and to `lookup`.
    struct Aliased {
        /// `Heap::open` after the damage.
        open: Result<Heap>,
        /// `lookup` of the damaged key through a heap opened before the damage.
        lookup: Result<()>,
    }

    /// Makes the heap of [`Three`], opens it, lets `edit` damage its file, then opens
    /// it again and looks up `key` (as the handle type it was published as) through the
    /// first opening.
    fn aliased(key: &str, edit: impl FnOnce(&File, &Three)) -> Aliased {
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        heap.publish("v", &Value::new_in(&heap, 7u64).unwrap())
            .unwrap();
        heap.publish(
            "a",
            &RawArray::from_slice_in(&heap, &[1u64, 2, 3, 4]).unwrap(),
        )
        .unwrap();
        heap.publish("lock", &Lock::new_in(&heap).unwrap()).unwrap();
        let early = Heap::open(&name).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm{name}"))
            .unwrap();
        let at = |entry: u64, field_at: usize| u64_at(&file, field(entry, field_at));
        let e_lock = u64_at(&file, offset_of!(Header, directory) as u64);
        let e_a = at(e_lock, offset_of!(EntryHeader, next));
        let e_v = at(e_a, offset_of!(EntryHeader, next));
        let three = Three {
            e_v,
            e_a,
            e_lock,
            o_v: at(e_v, offset_of!(EntryHeader, object)),
            l_v: at(e_v, offset_of!(EntryHeader, lock)),
            o_a: at(e_a, offset_of!(EntryHeader, object)),
            l_b: at(e_lock, offset_of!(EntryHeader, lock)),
        };
        edit(&file, &three);
        let lookup = match key {
            "v" => early.lookup::<Value<u64>>(key).map(drop),
            "a" => early.lookup::<RawArray<u64>>(key).map(drop),
            _ => early.lookup::<Lock>(key).map(drop),
        };
        let open = Heap::open(&name);
        Aliased { open, lookup }
    }

    fn set(f: &File, entry: u64, field_at: usize, value: u64) {
        put(f, field(entry, field_at), &value.to_ne_bytes());
    }

    #[test]
    fn the_three_entry_heap_is_laid_out_as_assumed() {
        let r = aliased("v", |_, t| {
            // Each allocation follows the one before; the value's lock comes first.
            assert!(t.l_v < t.o_v && t.o_v < t.e_v && t.e_v < t.o_a && t.o_a < t.e_a);
            assert!(t.e_a < t.l_b && t.l_b < t.e_lock);
            assert_eq!(t.o_v - t.l_v, LOCK_SIZE as u64);
        });
        assert!(r.open.is_ok() && r.lookup.is_ok());
    }

    #[test]
    fn objects_and_locks_that_alias_are_invalid() {
        const OBJECT: usize = offset_of!(EntryHeader, object);
        const LOCK: usize = offset_of!(EntryHeader, lock);
        type Edit = fn(&File, &Three);
        let cases: [(&str, &str, Edit); 12] = [
            ("a value on its own lock", "v", |f, t| {
                set(f, t.e_v, OBJECT, t.l_v)
            }),
            ("a value on another entry's lock", "v", |f, t| {
                set(f, t.e_v, OBJECT, t.l_b)
            }),
            ("an array over a lock and a value", "a", |f, t| {
                set(f, t.e_a, OBJECT, t.l_v)
            }),
            ("an array on another entry", "a", |f, t| {
                set(f, t.e_a, OBJECT, t.e_lock)
            }),
            ("an array on its own entry", "a", |f, t| {
                set(f, t.e_a, OBJECT, t.e_a)
            }),
            ("an array on the header", "a", |f, t| {
                set(f, t.e_a, OBJECT, 64)
            }),
            ("a value inside an array", "v", |f, t| {
                set(f, t.e_v, OBJECT, t.o_a + 8)
            }),
            ("a lock inside an array", "lock", |f, t| {
                set(f, t.e_lock, LOCK, t.o_a)
            }),
            ("a lock on an entry", "lock", |f, t| {
                set(f, t.e_lock, LOCK, t.e_v)
            }),
            ("a lock half over another", "lock", |f, t| {
                set(f, t.e_lock, LOCK, t.l_v + 8)
            }),
            ("a value's lock on its own value", "v", |f, t| {
                set(f, t.e_v, LOCK, t.o_v - 8)
            }),
            ("a value's lock inside an array", "v", |f, t| {
                set(f, t.e_v, LOCK, t.o_a)
            }),
        ];
        for (what, key, edit) in cases {
            let r = aliased(key, edit);
            assert!(matches!(r.open, Err(Error::InvalidHeap)), "open: {what}");
            assert!(
                matches!(r.lookup, Err(Error::InvalidHeap)),
                "lookup: {what}"
            );
        }
    }

    #[test]
    fn namespaces_unknown_or_different_refuse_locks() {
        let heap = Heap::new(1 << 16).unwrap();
        heap.publish("lock", &Lock::new_in(&heap).unwrap()).unwrap();
        heap.publish("raw", &RawValue::new_in(&heap, 1u8).unwrap())
            .unwrap();
        let header = heap.header();
        let (pid_ns, time_ns) = (
            header.pid_namespace.load(Ordering::Relaxed),
            header.time_namespace.load(Ordering::Relaxed),
        );
        assert_eq!(pid_ns, os::pid_namespace());
        assert_eq!(time_ns, os::time_namespace());
        assert_ne!(time_ns, os::UNKNOWN_NAMESPACE, "this test needs /proc");
        let lookup = || heap.lookup::<Lock>("lock").map(drop);
        assert!(lookup().is_ok());
        for (field, recorded, err) in [
            (&header.pid_namespace, 0, "ForeignPidNamespace"),
            (&header.pid_namespace, pid_ns ^ 1, "ForeignPidNamespace"),
            (&header.time_namespace, 0, "ForeignTimeNamespace"),
            (&header.time_namespace, time_ns ^ 1, "ForeignTimeNamespace"),
            (
                &header.time_namespace,
                os::NO_TIME_NAMESPACES,
                "ForeignTimeNamespace",
            ),
        ] {
            let was = field.swap(recorded, Ordering::Relaxed);
            assert_eq!(format!("{:?}", lookup().unwrap_err()), err);
            let publish = heap.publish("lock2", &Lock::new_in(&heap).unwrap());
            assert_eq!(format!("{:?}", publish.unwrap_err()), err);
            // Raw objects are not affected.
            assert_eq!(heap.lookup::<RawValue<u8>>("raw").unwrap().get(), 1);
            field.store(was, Ordering::Relaxed);
        }
        assert!(lookup().is_ok());
    }
}
