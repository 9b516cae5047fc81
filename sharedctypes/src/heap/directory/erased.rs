//! Publish and look up with the handle's kind and element layout known at run time,
//! not as a type: the way in for [`crate::erased`] (the Python module).
//!
//! These mirror [`Heap::publish`] and [`Heap::lookup`] step for step, with `H`'s
//! constants replaced by values: the same key checks, the same entries, the same
//! checks of what an entry names (bounds, alignment, aliasing, namespaces). What
//! differs is only where the layout comes from: a publish is given it, and a lookup
//! takes the stored one instead of comparing it with a type's (a caller that has a
//! layout to compare does that itself, with [`OwnedLayout::differences`]).

use super::checked::Matched;
use super::entry::{key_hash, to_usize, NewEntry};
use super::table::{Insert, MAX_STEPS};
use super::{check_lock, check_object, Counted};
use crate::error::{Error, Result, UNDESCRIBABLE};
use crate::heap::publish::{Found, Kind, LockKind, Parts, Shape};
use crate::heap::Heap;
use crate::layout::codec;
use crate::layout::OwnedLayout;
use crate::sync::LOCK_SIZE;

/// What [`Checked`](super::Checked) records for an entry matched by an erased lookup:
/// the element layout is the stored one, so the match is with any layout. (Typed
/// lookups record the address of a `static` `TypeLayout`, never 2.)
const ERASED: Matched = Matched(2);

/// A directory entry read by [`Heap::lookup_erased`], its offsets checked against its
/// own kind and layout.
pub(crate) struct ErasedEntry {
    pub kind: Kind,
    /// The element layout (`None` for a bare lock).
    pub layout: Option<OwnedLayout>,
    pub found: Found,
}

impl Heap {
    /// [`Heap::publish`] with `H::__KIND`, `H::__layout()` and the handle's parts
    /// given as values. `layout` must describe the memory in `parts.object` (its size
    /// and alignment are recorded as the element's).
    pub(crate) fn publish_erased(
        &self,
        key: &str,
        kind: Kind,
        layout: Option<&OwnedLayout>,
        parts: Parts<'_>,
    ) -> Result<()> {
        let key_str = key;
        let key = self.check_key(key)?;
        if kind.lock != LockKind::None {
            self.check_namespaces()?;
        }
        let ours = |part: Option<(&Heap, usize)>| part.map_or(true, |(h, _)| h.same_heap(self));
        if !ours(parts.object) || !ours(parts.lock) {
            return Err(Error::WrongHeap);
        }
        let layout_bytes = match layout {
            Some(l) => codec::encode(l).map_err(|_| {
                Error::LayoutMismatch(format!(
                    "`{}` {UNDESCRIBABLE}, so it cannot be published",
                    l.short_name()
                ))
            })?,
            None => Vec::new(),
        };
        let hash = key_hash(key.iter().copied());
        if let Some(t) = self.read_table()? {
            if self.find(&t, key, hash)?.is_some() {
                return Err(self.key_taken(key_str));
            }
        }
        let object = parts.object.map(|(_, o)| o);
        let lock = parts.lock.map(|(_, o)| o);
        // The directory's counts, as `publish` takes them: before the entry can be
        // seen, given back if the publish fails.
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
            layout: &layout_bytes,
        })?;
        for _ in 0..MAX_STEPS {
            let t = self.write_table(true)?.ok_or(Error::InvalidHeap)?;
            match self.insert(&t, at, key, hash)? {
                Insert::Inserted => {
                    counted
                        .0
                        .iter()
                        .chain(counted.1.iter())
                        .for_each(Counted::keep);
                    let entry = self.read_entry(at as u64, self.limit())?;
                    self.note_published(&entry, ERASED, layout.map(|l| l.size));
                    return Ok(());
                }
                Insert::Taken => return Err(self.key_taken(key_str)),
                Insert::Moved => {}
                Insert::Full => self.grow(&t)?,
            }
        }
        Err(Error::InvalidHeap)
    }

    /// [`Heap::lookup`] without a handle type: the entry's kind and layout as stored,
    /// and its offsets, checked for that kind and layout (bounds, alignment, aliasing;
    /// namespaces for a handle with a lock) exactly as a typed lookup checks them for
    /// its type.
    ///
    /// The element size and alignment checked are the stored layout's: memory accessed
    /// through the returned offsets must be accessed as bytes of that size and
    /// alignment, not as a Rust type whose layout was not compared.
    ///
    /// One count is taken on the object and one on the lock (whichever the kind has),
    /// for the caller's handles to take over (`from_offset`); a caller that makes no
    /// handle must release them.
    pub(crate) fn lookup_erased(&self, key: &str) -> Result<ErasedEntry> {
        let key_bytes = self.check_key(key)?;
        let hash = key_hash(key_bytes.iter().copied());
        let t = self.read_table()?.ok_or_else(|| self.key_missing(key))?;
        let entry = self
            .find(&t, key_bytes, hash)?
            .ok_or_else(|| self.key_missing(key))?;
        let kind = Kind::from_bits(entry.kind).ok_or(Error::InvalidHeap)?;
        let layout = self.entry_layout(&entry, kind)?;
        let elem = match (&layout, kind.shape) {
            (_, Shape::Lock) => None,
            (Some(l), _) => Some((l.size, l.align)),
            (None, _) => return Err(Error::InvalidHeap),
        };
        let object_size = elem.map(|(size, _)| size);
        let mut checked = self.checked_or_own();
        checked.follow(self, &t)?;
        let known = checked.knows(self, &entry, entry.kind, ERASED, object_size);
        let limit = self.limit();
        let found = Found {
            object: to_usize(entry.object)?,
            len: to_usize(entry.len)?,
            lock: to_usize(entry.lock)?,
        };
        if let Some((size, align)) = elem {
            check_object(found.object, found.len, size, align, kind.shape, limit)?;
        }
        if kind.lock != LockKind::None {
            check_lock(found.lock, limit)?;
        }
        if !known {
            checked.admit(self, &t, &entry, ERASED, object_size)?;
        }
        drop(checked);
        if kind.lock != LockKind::None {
            self.check_namespaces()?;
        }
        // Counts for the handles the caller makes, as `lookup` takes them: then the
        // entry must still be there (a count taken while it was published is on the
        // published object, not on whatever reused its memory).
        let object = match elem {
            Some((size, _)) => {
                let bytes = found.len.checked_mul(size).ok_or(Error::InvalidHeap)?;
                Some(self.count_found(key, &entry, found.object, bytes)?)
            }
            None => None,
        };
        let lock = if kind.lock == LockKind::None {
            None
        } else {
            Some(self.count_found(key, &entry, found.lock, LOCK_SIZE)?)
        };
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
        Ok(ErasedEntry {
            kind,
            layout,
            found,
        })
    }
}
