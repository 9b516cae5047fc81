//! The bump allocator: objects are carved from the heap upwards, by compare-and-swap on
//! the header's cursor, from any process that maps the heap.

use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use super::{Heap, HEADER_SIZE};
use crate::error::{Error, Result};
use crate::os;

impl Heap {
    /// The cursor, clamped into the mapping (a corrupted header cannot make us read
    /// or allocate out of bounds).
    pub(crate) fn cursor(&self) -> usize {
        let c = self.header().cursor.load(Ordering::Relaxed);
        usize::try_from(c)
            .unwrap_or(usize::MAX)
            .clamp(HEADER_SIZE, self.inner.len)
    }

    /// Allocates `size` bytes aligned to `align` (a power of two up to the page size)
    /// and returns their offset from the start of the mapping. On failure nothing is
    /// consumed.
    pub(crate) fn alloc(&self, size: usize, align: usize) -> Result<usize> {
        debug_assert!(align.is_power_of_two());
        // Every page size is at least 4096, so only a larger alignment needs `sysconf`
        // (53 of the 134 instructions a small allocation took).
        if align > 4096 && align > os::page_size() {
            return Err(Error::AlignmentTooLarge {
                align,
                max: os::page_size(),
            });
        }
        let cursor = &self.header().cursor;
        let mut current = cursor.load(Ordering::Relaxed);
        loop {
            let cur = usize::try_from(current).unwrap_or(usize::MAX);
            let available = self.inner.len.saturating_sub(cur);
            let end = cur
                .checked_add(align - 1)
                .map(|x| x & !(align - 1))
                .and_then(|start| Some((start, start.checked_add(size)?)));
            let (start, end) = match end {
                Some((start, end)) if end <= self.inner.len && cur >= HEADER_SIZE => (start, end),
                _ => {
                    return Err(Error::OutOfMemory {
                        requested: size,
                        available,
                    })
                }
            };
            match cursor.compare_exchange_weak(
                current,
                end as u64,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(start),
                Err(actual) => current = actual,
            }
        }
    }

    /// Allocates room for `len` values of `T` and returns a pointer to the first.
    /// The memory is zeroed unless something wrote it before (never, for a fresh heap).
    pub(crate) fn alloc_array<T>(&self, len: usize) -> Result<NonNull<T>> {
        let size = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| Error::OutOfMemory {
                requested: usize::MAX,
                available: self.available(),
            })?;
        let offset = self.alloc(size, std::mem::align_of::<T>())?;
        Ok(self.ptr_at(offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_aligned_and_disjoint() {
        let heap = Heap::new(1 << 16).unwrap();
        let a = heap.alloc(3, 1).unwrap();
        let b = heap.alloc(8, 8).unwrap();
        let c = heap.alloc(64, 64).unwrap();
        assert_eq!(a, HEADER_SIZE);
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
        assert!(matches!(err, Error::OutOfMemory { requested, available }
            if requested == heap.capacity() + 1 && available == heap.capacity()));
        assert_eq!(heap.used(), before);
        assert!(heap.alloc(usize::MAX, 8).is_err());
        assert!(heap.alloc_array::<u64>(usize::MAX / 4).is_err());
        assert_eq!(heap.used(), before);
        assert_eq!(heap.alloc(heap.capacity(), 1).unwrap(), HEADER_SIZE);
        assert_eq!(heap.available(), 0);
    }
}
