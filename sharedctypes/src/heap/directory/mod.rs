//! The directory of a heap: publish, look up and unpublish objects by key, from any
//! process that maps the heap.
//!
//! Three parts, each in its own file:
//! - `entry`: one entry per published key, allocated in the heap, written completely
//!   before it is linked and never changed after;
//! - `table`: the index, a hash table of entry offsets in the heap, changed by
//!   compare-and-swap only, grown by copying into a fresh table (the old one is leaked
//!   until the heap can free memory);
//! - `checked`: what this process has checked of the directory, so that a lookup
//!   checks one entry, not all of them.
//!
//! The heap header's `directory` word names the current table (0 before the first
//! publish), and its `published` word counts publications, which number the entries
//! (`keys` lists them newest first).
//!
//! Costs: a lookup hashes its key and reads a slot or two and one entry (O(1), with
//! O(log n) once per entry this handle has not seen, for the aliasing check); publish
//! and unpublish do the same plus one compare-and-swap, and now and then help copy
//! the table into a larger one (O(1) amortised). Each publish allocates its entry
//! (48 bytes, the key, the encoded layout); tables take 8 bytes a slot, at most 3/4
//! full. Until the heap can free memory, unpublished entries, tables that were
//! replaced, and entries of publishes that lost a race stay allocated.

mod checked;
mod entry;
mod erased;
mod table;

use std::sync::atomic::Ordering;

use self::checked::Matched;
use self::entry::{key_hash, to_usize, Entry, NewEntry, ENTRY_SIZE};
use self::table::{Insert, Remove, MAX_STEPS};
use super::publish::{Found, Kind, LockKind, Parts, Publish, Shape};
use super::{Heap, HEADER_SIZE};
use crate::error::{Error, NameKind, Result, UNDESCRIBABLE};
use crate::layout::codec::{self, TooBig};
use crate::layout::OwnedLayout;
use crate::os;
use crate::sync::{LOCK_ALIGN, LOCK_SIZE};
use crate::TypeLayout;

pub(crate) use self::checked::Checked;

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

/// The handle type `H`, as [`Checked`] records what an entry matched.
fn matched<H: Publish>() -> Matched {
    H::__layout().map_or(Matched::BARE_LOCK, |l| {
        Matched(l as *const TypeLayout as usize)
    })
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
        self.check_key(key)?;
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
        self.publish_entry(
            key_str,
            H::__KIND,
            &layout,
            &parts,
            matched::<H>(),
            H::__ELEM.map(|(s, _)| s),
        )
    }

    /// The part of [`publish`](Heap::publish) after the handle's kind and layout are
    /// known (typed, or given at run time by `publish_erased`): the directory's counts,
    /// the entry, and its insertion, with exactly one winner for a key.
    fn publish_entry(
        &self,
        key_str: &str,
        kind: Kind,
        layout: &[u8],
        parts: &Parts<'_>,
        matched: Matched,
        elem_size: Option<usize>,
    ) -> Result<()> {
        let key = key_str.as_bytes();
        let hash = key_hash(key.iter().copied());
        // A taken key is refused before anything is allocated (and again below, for
        // publishers that race).
        if let Some(t) = self.read_table()? {
            if self.find(&t, key, hash)?.is_some() {
                return Err(self.key_taken(key_str));
            }
        }
        let object = parts.object.map(|(_, o)| o);
        let lock = parts.lock.map(|(_, o)| o);
        // The directory's counts, taken before the entry can be seen (an unpublish in
        // another process releases them as soon as it can), given back if the publish
        // fails.
        let counted = (
            object.map(|o| Counted::retain(self, o)),
            lock.map(|o| Counted::retain(self, o)),
        );
        let at = self.write_entry(&NewEntry {
            kind: kind.to_bits(),
            object: object.unwrap_or(0) as u64,
            len: parts.len as u64,
            lock: lock.unwrap_or(0) as u64,
            key,
            layout,
        })?;
        // A publish that fails from here on leaves its entry allocated, unreachable.
        for _ in 0..MAX_STEPS {
            let t = self.write_table(true)?.ok_or(Error::InvalidHeap)?;
            match self.insert(&t, at, key, hash)? {
                Insert::Inserted => {
                    counted
                        .0
                        .iter()
                        .chain(counted.1.iter())
                        .for_each(Counted::keep);
                    // For this handle's aliasing checks.
                    let entry = self.read_entry(at as u64, self.limit())?;
                    self.note_published(&entry, matched, elem_size);
                    return Ok(());
                }
                Insert::Taken => return Err(self.key_taken(key_str)),
                Insert::Moved => {}
                Insert::Full => self.grow(&t)?,
            }
        }
        Err(Error::InvalidHeap)
    }

    /// The object published under `key`, as a working handle of type `H` in this
    /// process.
    ///
    /// [`Error::NotFound`] if no such key; [`Error::LayoutMismatch`] if the stored
    /// element type's [layout](crate::SharedType::LAYOUT) or the handle kind (value or array,
    /// lock or none, which lock) differs from `H`'s — the message says what differs,
    /// field by field; [`Error::InvalidHeap`] if the entry is corrupt, or if its object
    /// or lock would overlap the heap's header, the directory, or another published
    /// object or lock (the same object or lock published under several keys is fine;
    /// see [what is checked](crate::named#what-is-checked-and-what-cannot-be));
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
        let hash = key_hash(key_bytes.iter().copied());
        let t = self.read_table()?.ok_or_else(|| self.key_missing(key))?;
        let entry = self
            .find(&t, key_bytes, hash)?
            .ok_or_else(|| self.key_missing(key))?;
        let matched = matched::<H>();
        let object_size = H::__ELEM.map(|(size, _)| size);
        let mut checked = self.checked_or_own();
        checked.follow(self, &t)?;
        // An entry this handle checked and matched with `H` before, unchanged since, is
        // not compared or checked against the rest again.
        let known = checked.knows(self, &entry, H::__KIND.to_bits(), matched, object_size);
        if !known {
            self.compare_kind_and_layout::<H>(key, &entry)?;
        }

        // The kinds and layouts agree: check the memory against `H`'s own type — its
        // real size and alignment, not its `LAYOUT`'s (which the unsafe `SharedType`
        // contract requires to agree, but soundness here does not rely on it). Every
        // time: soundness does not rest on what this process remembers.
        let limit = self.limit();
        let found = Found {
            object: to_usize(entry.object)?,
            len: to_usize(entry.len)?,
            lock: to_usize(entry.lock)?,
        };
        if let Some((size, align)) = H::__ELEM {
            check_object(found.object, found.len, size, align, H::__KIND.shape, limit)?;
        }
        if H::__KIND.lock != LockKind::None {
            check_lock(found.lock, limit)?;
        }
        // Nothing else this handle knows of may share that memory (see `checked`).
        if !known {
            checked.admit(self, &t, &entry, matched, object_size)?;
        }
        drop(checked);
        if H::__KIND.lock != LockKind::None {
            self.check_namespaces()?;
        }
        // Count the handle's parts, then make sure the entry is still there: a count
        // taken while the entry was published is on the published object (the
        // directory's own count kept it alive), not on whatever reused its memory.
        let object_bytes = H::__ELEM.map(|(size, _)| found.len * size);
        self.count_parts(key, &entry, &found, object_bytes, H::__KIND.lock)?;
        // SAFETY: `check_object` proved `[object, object + len * size_of::<T>())` inside the
        // allocated part of this heap and aligned for `T` (`H::__ELEM` is `T`'s
        // `size_of` and `align_of`); `check_lock` did the same for the lock; which of
        // them `H` uses is `H`'s own kind. (`admit` keeps the object off the lock words
        // and the directory, for correctness: soundness does not depend on it, every
        // access being atomic.)
        Ok(unsafe { H::__rebuild(self, &found) })
    }

    /// Removes `key` from the directory: later lookups of it are [`Error::NotFound`],
    /// and it may be published again. [`Error::NotFound`] if it is not published.
    ///
    /// The directory's count on the object goes: handles looked up before keep working,
    /// and the object's memory is given back when the last of them is dropped (the
    /// directory entry itself stays allocated). Of concurrent unpublishes of one key, in
    /// any processes, exactly one succeeds.
    ///
    /// ```
    /// use sharedctypes::{Error, Heap, RawValue};
    ///
    /// let name = format!("/doc-unpublish-{}", std::process::id());
    /// let heap = Heap::create(&name, 1 << 16)?;
    /// let job = RawValue::new_in(&heap, 7u32)?;
    /// heap.publish("job", &job)?;
    /// let seen: RawValue<u32> = heap.lookup("job")?;
    ///
    /// heap.unpublish("job")?;
    /// assert!(matches!(heap.lookup::<RawValue<u32>>("job"), Err(Error::NotFound { .. })));
    /// assert_eq!(seen.get(), 7); // still usable
    /// let again = heap.unpublish("job").unwrap_err();
    /// assert!(again.to_string().starts_with(&format!("key \"job\" not found in heap {name:?}")));
    ///
    /// heap.publish("job", &RawValue::new_in(&heap, 8u32)?)?; // the key is free again
    /// assert_eq!(heap.lookup::<RawValue<u32>>("job")?.get(), 8);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn unpublish(&self, key: &str) -> Result<()> {
        let key_bytes = self.check_key(key)?;
        let hash = key_hash(key_bytes.iter().copied());
        for _ in 0..MAX_STEPS {
            let Some(t) = self.write_table(false)? else {
                return Err(self.key_missing(key));
            };
            match self.remove(&t, key_bytes, hash)? {
                Remove::Removed(at) => {
                    let at = to_usize(at)?;
                    // The directory's counts go: the objects live on while other
                    // handles to them do.
                    if let Ok(e) = self.read_entry(at as u64, self.limit()) {
                        for part in [e.object, e.lock] {
                            if let Ok(part) = usize::try_from(part) {
                                self.release_checked(part);
                            }
                        }
                    }
                    self.forget_entry(at);
                    return Ok(());
                }
                Remove::Missing => return Err(self.key_missing(key)),
                Remove::Moved => {}
            }
        }
        Err(Error::InvalidHeap)
    }

    /// Counts one more handle to each part of a found entry — its object
    /// (`object_bytes` long, if it has one) and its lock (if `lock` is one) — then makes
    /// sure the entry is still published: a count taken while the entry was published
    /// is on the published object (the directory's own count kept it alive), not on
    /// whatever reused its memory. The counts are the caller's to hand to its handles.
    fn count_parts(
        &self,
        key: &str,
        entry: &Entry,
        found: &Found,
        object_bytes: Option<usize>,
        lock: LockKind,
    ) -> Result<()> {
        let object = match object_bytes {
            Some(bytes) => Some(self.count_found(key, entry, found.object, bytes)?),
            None => None,
        };
        let lock = if lock == LockKind::None {
            None
        } else {
            Some(self.count_found(key, entry, found.lock, LOCK_SIZE)?)
        };
        let key_bytes = key.as_bytes();
        let hash = key_hash(key_bytes.iter().copied());
        let still = match self.read_table()? {
            Some(t) => self
                .find(&t, key_bytes, hash)?
                .is_some_and(|e| e.at == entry.at),
            None => false,
        };
        if !still {
            return Err(self.key_missing(key));
        }
        object.iter().chain(lock.iter()).for_each(Counted::keep);
        Ok(())
    }

    /// Counts one more handle to a part of a found entry (`len` bytes at `object`):
    /// [`Error::NotFound`] if it is no longer live (unpublished and freed meanwhile),
    /// [`Error::InvalidHeap`] if it never was a block.
    fn count_found(
        &self,
        key: &str,
        entry: &Entry,
        object: usize,
        len: usize,
    ) -> Result<Counted<'_>> {
        if self.try_retain(object, len) {
            return Ok(Counted {
                heap: self,
                object,
                armed: std::cell::Cell::new(true),
            });
        }
        // Gone meanwhile, or not an object at all.
        let still = match self.read_table()? {
            Some(t) => {
                let key_bytes = key.as_bytes();
                let hash = key_hash(key_bytes.iter().copied());
                self.find(&t, key_bytes, hash)?
                    .is_some_and(|e| e.at == entry.at)
            }
            None => false,
        };
        Err(if still {
            Error::InvalidHeap
        } else {
            self.key_missing(key)
        })
    }

    /// Compares the kind and layout `entry` stored with `H`'s: [`Error::LayoutMismatch`]
    /// saying what differs, [`Error::InvalidHeap`] if they cannot be read.
    fn compare_kind_and_layout<H: Publish>(&self, key: &str, entry: &Entry) -> Result<()> {
        let stored_kind = Kind::from_bits(entry.kind).ok_or(Error::InvalidHeap)?;
        let stored_layout = self.entry_layout(entry, stored_kind)?;
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

        Ok(())
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

    /// [`Error::NotFound`] for `key`.
    fn key_missing(&self, key: &str) -> Error {
        Error::NotFound {
            name: key.to_owned(),
            kind: self.key_kind(),
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
        let Some(t) = self.read_table()? else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        // Live entries are disjoint allocations (see `Checked::rebuild`).
        let mut claimed = 0usize;
        for at in self.live_entries(&t)? {
            let e = self.read_entry(at, self.limit())?;
            claimed += ENTRY_SIZE + e.key_len + e.layout_len;
            if claimed > self.limit() - HEADER_SIZE {
                return Err(Error::InvalidHeap);
            }
            let key = self.load_bytes(e.key_at(), e.key_len);
            keys.push((e.seq, e.at, String::from_utf8_lossy(&key).into_owned()));
        }
        keys.sort_unstable_by_key(|k| std::cmp::Reverse((k.0, k.1)));
        Ok(keys.into_iter().map(|(_, _, key)| key).collect())
    }

    /// Checks every directory entry in full (for `open`).
    pub(super) fn check_directory(&self) -> Result<()> {
        self.check_all()
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
        let bytes = self.load_bytes(e.layout_at(), e.layout_len);
        codec::decode(&bytes).map(Some).ok_or(Error::InvalidHeap)
    }
}

/// One count on an object, given back when dropped unless kept.
struct Counted<'a> {
    heap: &'a Heap,
    object: usize,
    armed: std::cell::Cell<bool>,
}

impl<'a> Counted<'a> {
    /// Counts one more handle to the object at `object`, a live object of ours, for the
    /// directory.
    fn retain(heap: &'a Heap, object: usize) -> Counted<'a> {
        heap.retain_published(object);
        Counted {
            heap,
            object,
            armed: std::cell::Cell::new(true),
        }
    }

    /// The count stays (the directory or a new handle owns it now).
    fn keep(&self) {
        self.armed.set(false);
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if self.armed.get() {
            self.heap.release(self.object);
        }
    }
}

/// `len` elements of `size` bytes at `object` lie in `[HEADER_SIZE, limit)`, aligned.
pub(super) fn check_object(
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
pub(super) fn check_lock(lock: usize, limit: usize) -> Result<()> {
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
    use std::fs::File;
    use std::mem::offset_of;

    use super::entry::EntryHeader;
    use super::table::on_file::{entry_of, slot_of, slot_value};
    use super::*;
    use crate::heap::test_util::{open_damaged, put, put_u64, shm_file, u64_at, unique};
    use crate::raw::{RawArray, RawValue};
    use crate::shared::SharedType;
    use crate::sync::Lock;
    use crate::synchronized::Value;
    use crate::Process;

    fn field(entry: u64, offset: usize) -> u64 {
        entry + offset as u64
    }

    /// The entries of a heap holding "v" (a `Value<u64>`) then "lock" (a bare `Lock`).
    struct Spots {
        v: u64,
        lock: u64,
    }

    fn two_entries(heap: &Heap, f: &File) -> Spots {
        heap.publish("v", &Value::new_in(heap, 7u64).unwrap())
            .unwrap();
        heap.publish("lock", &Lock::new_in(heap).unwrap()).unwrap();
        Spots {
            v: entry_of(f, "v"),
            lock: entry_of(f, "lock"),
        }
    }

    fn invalid(edit: impl FnOnce(&File, &Spots)) -> bool {
        matches!(open_damaged(two_entries, edit), Err(Error::InvalidHeap))
    }

    #[test]
    fn an_undamaged_heap_opens() {
        let heap = open_damaged(two_entries, |_, _| {}).unwrap();
        assert_eq!(heap.keys().unwrap(), ["lock", "v"]);
        assert_eq!(heap.lookup::<Value<u64>>("v").unwrap().get(), 7);
    }

    #[test]
    fn a_damaged_entry_is_invalid() {
        let tag = offset_of!(EntryHeader, tag);
        let kind = offset_of!(EntryHeader, kind);
        let object = offset_of!(EntryHeader, object);
        let len = offset_of!(EntryHeader, len);
        let lock = offset_of!(EntryHeader, lock);
        let key_len = offset_of!(EntryHeader, key_len);
        let layout_len = offset_of!(EntryHeader, layout_len);
        assert!(invalid(|f, s| put(f, field(s.v, tag), b"XXXX")));
        // (9: the first unused shape; 0x0104: an Event with a lock.)
        for bad in [0u32, 0x0303, 9, 0x0104, 0x0300, 0x0400_0001] {
            assert!(
                invalid(|f, s| put(f, field(s.v, kind), &bad.to_ne_bytes())),
                "{bad:#x}"
            );
        }
        for bad in [0u32, 256, u32::MAX] {
            assert!(invalid(|f, s| put(
                f,
                field(s.v, key_len),
                &bad.to_ne_bytes()
            )));
        }
        for bad in [7u32, 100_000, u32::MAX] {
            assert!(invalid(|f, s| put(
                f,
                field(s.v, layout_len),
                &bad.to_ne_bytes()
            )));
        }
        // The layout's bytes: the tag of its root node.
        assert!(invalid(|f, s| put(f, s.v + ENTRY_SIZE as u64 + 1, &[9])));
        // The value: out of bounds, misaligned, overlapping the header, a value of 2.
        for bad in [1u64 << 40, 0x1001, 8, u64::MAX - 3] {
            assert!(invalid(|f, s| put_u64(f, field(s.v, object), bad)));
        }
        assert!(invalid(|f, s| put_u64(f, field(s.v, len), 2)));
        // The locks, of the value and the bare one.
        for bad in [0u64, 1 << 40, 0x1004, u64::MAX] {
            assert!(invalid(|f, s| put_u64(f, field(s.v, lock), bad)));
            assert!(invalid(|f, s| put_u64(f, field(s.lock, lock), bad)));
        }
        // A bare lock that claims an object.
        assert!(invalid(|f, s| put_u64(f, field(s.lock, object), 256)));
    }

    #[test]
    fn damage_after_open_is_caught_by_lookup() {
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        heap.publish("v", &RawArray::from_slice_in(&heap, &[1u32, 2]).unwrap())
            .unwrap();
        let opened = Heap::open(&name).unwrap();
        let file = shm_file(&name);
        let entry = entry_of(&file, "v");
        let len = field(entry, offset_of!(EntryHeader, len));
        put_u64(&file, len, 1 << 40);
        for h in [&heap, &opened] {
            let r = h.lookup::<RawArray<u32>>("v");
            assert!(matches!(r, Err(Error::InvalidHeap)));
        }
        put_u64(&file, len, 2);
        for h in [&heap, &opened] {
            assert_eq!(h.lookup::<RawArray<u32>>("v").unwrap().to_vec(), [1, 2]);
        }
        // The slot pointed at the table itself (tagged for "v", so the lookup reads it).
        let slot = slot_of(&file, entry);
        let table = super::table::on_file::table(&file).0;
        put_u64(&file, slot, slot_value(table, entry::key_hash(*b"v")));
        for h in [&heap, &opened] {
            let r = h.lookup::<RawArray<u32>>("v");
            assert!(matches!(r, Err(Error::InvalidHeap)));
            assert!(matches!(h.keys(), Err(Error::InvalidHeap)));
        }
    }

    #[test]
    fn what_this_process_published_is_known_to_its_lookups() {
        // The creator's handle never opened the heap: it checks lookups against what
        // it published itself.
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        heap.publish("a", &RawValue::new_in(&heap, 1u64).unwrap())
            .unwrap();
        let b = RawArray::from_slice_in(&heap, &[1u64, 2]).unwrap();
        heap.publish("b", &b).unwrap();
        let file = shm_file(&name);
        let (a, b_entry) = (entry_of(&file, "a"), entry_of(&file, "b"));
        let b_object = field(b_entry, offset_of!(EntryHeader, object));
        let a_object = u64_at(&file, field(a, offset_of!(EntryHeader, object)));
        for bad in [a & !7, a_object] {
            put_u64(&file, b_object, bad);
            let r = heap.lookup::<RawArray<u64>>("b");
            assert!(matches!(r, Err(Error::InvalidHeap)), "{bad}");
        }
        put_u64(&file, b_object, b.offset() as u64);
        assert_eq!(heap.lookup::<RawArray<u64>>("b").unwrap().to_vec(), [1, 2]);
    }

    #[test]
    fn a_lookup_that_cannot_take_the_record_checks_on_its_own() {
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        heap.publish("v", &RawValue::new_in(&heap, 5u64).unwrap())
            .unwrap();
        let a = RawArray::from_slice_in(&heap, &[1u64, 2]).unwrap();
        heap.publish("a", &a).unwrap();
        let held = heap.inner().checked.lock().unwrap();
        // Another thread: it gives up on the mutex and checks the whole directory.
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(heap.lookup::<RawValue<u64>>("v").unwrap().get(), 5);
            });
        });
        // A forked child, where the mutex stays locked for good (this thread held it at
        // the fork): never a hang, and still checked.
        let child = {
            let heap = heap.clone();
            Process::spawn(move || {
                assert_eq!(heap.lookup::<RawValue<u64>>("v").unwrap().get(), 5);
                let file = shm_file(heap.name().unwrap());
                let object = field(entry_of(&file, "a"), offset_of!(EntryHeader, object));
                put_u64(&file, object, entry_of(&file, "v") & !7);
                let r = heap.lookup::<RawArray<u64>>("a");
                assert!(matches!(r, Err(Error::InvalidHeap)));
                put_u64(&file, object, a.offset() as u64);
            })
            .unwrap()
        };
        child.join().unwrap();
        drop(held);
        assert_eq!(heap.lookup::<RawArray<u64>>("a").unwrap().to_vec(), [1, 2]);
    }

    /// Writes `n` bare-lock entries `stride` bytes apart (a multiple of 16), each with a
    /// 255-byte key (so with `stride < ENTRY_SIZE + 255` each key covers the next
    /// entries' fixed parts), and makes them `heap`'s directory. They lie in one internal
    /// block; each but the first has a block header of its own before it (in the key of
    /// the one before), with room for the entry, as a process that writes the heap at
    /// will could lay them out.
    fn overlapping_entries(heap: &Heap, n: usize, stride: usize) {
        use crate::heap::alloc::{Use, BLOCK_HEADER};
        use std::sync::atomic::AtomicU64;

        let lock = Lock::new_in(heap).unwrap();
        let len = ENTRY_SIZE + MAX_KEY_LEN;
        let base = heap
            .alloc_for(stride * (n - 1) + len, 8, Use::Internal)
            .unwrap();
        // The tag of the block header before the entry at `at`.
        let tag = |at: usize| -> &AtomicU64 {
            // SAFETY: 16 bytes before an entry of `base`'s block (or before that block):
            // inside the mapping, 8-aligned; an atomic, valid for any bits, living as
            // long as `heap`.
            unsafe { heap.ptr_at::<AtomicU64>(at - BLOCK_HEADER).as_ref() }
        };
        let internal = tag(base).load(Ordering::Relaxed) & 0xf;
        let mut at = Vec::new();
        for i in 0..n {
            at.push(base + i * stride);
            if i > 0 {
                let size = (len + BLOCK_HEADER).next_multiple_of(BLOCK_HEADER) as u64;
                tag(base + i * stride).store(size | internal, Ordering::Relaxed);
            }
            let h = heap.entry_header(base + i * stride);
            h.tag.store(entry::ENTRY_TAG, Ordering::Relaxed);
            let kind = Kind::new(Shape::Lock, LockKind::Lock).to_bits();
            h.kind.store(kind, Ordering::Relaxed);
            h.seq.store(i as u64, Ordering::Relaxed);
            h.object.store(0, Ordering::Relaxed);
            h.len.store(0, Ordering::Relaxed);
            h.lock.store(lock.offset() as u64, Ordering::Relaxed);
            h.key_len.store(MAX_KEY_LEN as u32, Ordering::Relaxed);
            h.layout_len.store(0, Ordering::Relaxed);
        }
        table::link_for_test(heap, &at);
    }

    #[test]
    fn overlapping_entries_exceed_the_byte_budget() {
        // 64 entries 64 bytes apart: each one in bounds, aligned and well formed, but
        // together they claim 64 * 303 bytes of a 16 KiB heap.
        let name = unique();
        let heap = Heap::create(&name, 1 << 14).unwrap();
        overlapping_entries(&heap, 64, 64);
        assert!(64 * (ENTRY_SIZE + MAX_KEY_LEN) > heap.limit() - HEADER_SIZE);
        assert!(matches!(Heap::open(&name), Err(Error::InvalidHeap)));
        assert!(matches!(heap.keys(), Err(Error::InvalidHeap)));
        // The same entries laid out apart are fine.
        let apart = Heap::new(1 << 16).unwrap();
        overlapping_entries(
            &apart,
            64,
            (ENTRY_SIZE + MAX_KEY_LEN + 16).next_multiple_of(16),
        );
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
        let value = RawValue::new_in(&heap, 2u8).unwrap();
        heap.publish("odd", &value).unwrap();
        assert_eq!(heap.lookup::<RawValue<u8>>("odd").unwrap().get(), 2);
        // An entry moved to an odd offset (as another process could write it). The
        // layouts compare equal (both say `u8`); the object is misaligned for a `Liar`
        // all the same, and is no block's object for a `u8`.
        let t = heap.read_table().unwrap().unwrap();
        let key = b"odd";
        let e = heap
            .find(&t, key, key_hash(key.iter().copied()))
            .unwrap()
            .unwrap();
        heap.entry_header(e.at)
            .object
            .store(value.offset() as u64 + 1, Ordering::Relaxed);
        assert!(matches!(
            heap.lookup::<RawValue<Liar>>("odd"),
            Err(Error::InvalidHeap)
        ));
        assert!(matches!(
            heap.lookup::<RawValue<u8>>("odd"),
            Err(Error::InvalidHeap)
        ));
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
        let file = shm_file(&name);
        let at = |entry: u64, field_at: usize| u64_at(&file, field(entry, field_at));
        let (e_v, e_a, e_lock) = (
            entry_of(&file, "v"),
            entry_of(&file, "a"),
            entry_of(&file, "lock"),
        );
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
            // Two blocks: the lock's (a 16-byte header, the lock) right before the value's.
            assert_eq!(t.o_v - t.l_v, (LOCK_SIZE + 16) as u64);
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

    #[test]
    fn keys_are_newest_first_and_leave_out_what_was_unpublished() {
        let heap = Heap::new(1 << 20).unwrap();
        for i in 0..100 {
            let v = RawValue::new_in(&heap, i as u8).unwrap();
            heap.publish(&format!("k{i}"), &v).unwrap();
        }
        for i in (0..100).step_by(3) {
            heap.unpublish(&format!("k{i}")).unwrap();
        }
        let v = RawValue::new_in(&heap, 0u8).unwrap();
        heap.publish("k0", &v).unwrap();
        let mut want: Vec<String> = (0..100)
            .rev()
            .filter(|i| i % 3 != 0)
            .map(|i| format!("k{i}"))
            .collect();
        want.insert(0, "k0".to_owned());
        assert_eq!(heap.keys().unwrap(), want);
    }

    #[test]
    fn a_known_entry_is_compared_again_with_another_handle_type() {
        let name = unique();
        let heap = Heap::create(&name, 1 << 16).unwrap();
        heap.publish("v", &Value::new_in(&heap, 1u64).unwrap())
            .unwrap();
        let opened = Heap::open(&name).unwrap();
        for h in [&heap, &opened] {
            // Known after this, with the same element type under other kinds of handle.
            assert_eq!(h.lookup::<Value<u64>>("v").unwrap().get(), 1);
            let r = h.lookup::<crate::Array<u64>>("v");
            assert!(matches!(r, Err(Error::LayoutMismatch(_))));
            let r = h.lookup::<RawValue<u64>>("v");
            assert!(matches!(r, Err(Error::LayoutMismatch(_))));
            let r = h.lookup::<Value<i64>>("v");
            assert!(matches!(r, Err(Error::LayoutMismatch(_))));
            assert_eq!(h.lookup::<Value<u64>>("v").unwrap().get(), 1);
        }
    }
}
