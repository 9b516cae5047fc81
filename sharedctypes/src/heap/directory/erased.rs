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
use super::entry::{key_hash, to_usize};
use super::{check_lock, check_object};
use crate::error::{Error, Result, UNDESCRIBABLE};
use crate::heap::publish::{Found, Kind, LockKind, Parts, Shape};
use crate::heap::Heap;
use crate::layout::codec;
use crate::layout::OwnedLayout;

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
        self.check_key(key)?;
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
        self.publish_entry(
            key_str,
            kind,
            &layout_bytes,
            &parts,
            ERASED,
            layout.map(|l| l.size),
        )
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
        // Counts for the handles the caller makes, as `lookup` takes them.
        let object_bytes = match elem {
            Some((size, _)) => Some(found.len.checked_mul(size).ok_or(Error::InvalidHeap)?),
            None => None,
        };
        self.count_parts(key, &entry, &found, object_bytes, kind.lock)?;
        Ok(ErasedEntry {
            kind,
            layout,
            found,
        })
    }
}
