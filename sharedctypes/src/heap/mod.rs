//! The shared heap: one `MAP_SHARED` mapping that forked children inherit, from which
//! objects are allocated, counted, and given back.
//!
//! # Layout of the mapping
//!
//! ```text
//! 0        128               HEADER_SIZE (4096)                       frontier   total_len
//! | Header | allocator state | [hdr|object] [hdr|object] [hdr|free] ... | zero ...  |
//! ```
//!
//! Everything in shared memory is an *offset* from the start of the mapping, never an
//! address, so the same heap can be mapped at different addresses by unrelated
//! processes (named heaps). Blocks (see `alloc`) tile the heap up to the frontier;
//! past it, memory is fresh and zero (the backing file starts empty), so `zeroed`
//! objects cost no writes, and freed blocks are zeroed before they are reused. In an
//! anonymous heap pages are committed only when first touched (a named heap reserves
//! its whole size at creation, see [`named`](crate::named)).
//!
//! # Where things are
//!
//! - here: the [`Heap`] handle, the header and the mapping;
//! - `alloc`: the allocator (blocks, size classes, the back end) and the counted
//!   references every handle holds (`BlockRef`);
//! - `default`: the [`default_heap`] and its size;
//! - `named`: named heaps: create, open (the header checked before mapping), the name's
//!   lifecycle;
//! - `directory`: publish, look up and unpublish by key (entries and a hash table in
//!   the heap), and the checks of what other processes wrote there;
//! - `publish`: the [`Publish`](crate::Publish) trait, implemented by every handle kind.
//!
//! None of them imports from [`crate::named`], which holds the user-facing
//! documentation of named heaps and re-exports their public items.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::os::{self, FileId};

use self::directory::Checked;
use self::named::NamedState;

pub(crate) mod alloc;
mod default;
pub(crate) mod directory;
mod named;
pub(crate) mod publish;
#[cfg(test)]
mod test_util;

pub use self::default::{default_heap, DEFAULT_HEAP_SIZE, HEAP_SIZE_ENV};
pub(crate) use self::default::{parse_size, try_default_heap};

/// Fresh copies of at least this many bytes go through the heap's file (see
/// [`Heap::copy_to_fresh`]); below it a `pwrite` costs more than the faults it saves.
const COPY_THROUGH_FILE_MIN: usize = 256 << 10;

/// `b"SHCTYPES"`: the first bytes of every heap.
pub(crate) const MAGIC: [u8; 8] = *b"SHCTYPES";
/// Bumped whenever the header or directory format changes (2: `time_namespace`; 3: the
/// directory is a hash table, `published`; 4: blocks with headers and counts, the
/// allocator's state after the header).
pub(crate) const VERSION: u32 = 4;
/// Bytes reserved for the header and the allocator's state; blocks start here.
pub(crate) const HEADER_SIZE: usize = 4096;

/// The header at offset 0 of every heap.
///
/// Every field is an atomic, even those written only once, at creation: other
/// processes map the same memory, and one that does not cooperate (of the same user: a
/// named heap is mode 0600) may write any of them at any time. A shared reference to
/// memory that changes under it is sound only if everything in it is an atomic (an
/// `UnsafeCell`), and every bit pattern of each field is a valid value. The fields that
/// decide whether and how much to map are read from the file, not from here, before
/// mapping (`named::check_header`); the cursor is clamped on every use.
#[repr(C)]
pub(crate) struct Header {
    pub magic: [AtomicU8; 8],
    pub version: AtomicU32,
    pub header_size: AtomicU32,
    /// Bytes in the whole mapping, header included.
    pub total_len: AtomicU64,
    /// The frontier hint: a block boundary at or below the first block never
    /// claimed, where fresh allocations start looking (see `alloc`).
    pub cursor: AtomicU64,
    /// Named heaps: 0 while being created, [`READY`] once usable.
    pub state: AtomicU32,
    /// Named heaps: the creating process's id (0 for anonymous heaps), so that stale
    /// heaps can be told from live ones.
    pub creator_pid: AtomicU32,
    /// Offset of the directory's current table, 0 before the first publish (see
    /// `directory`).
    pub directory: AtomicU64,
    /// The creator's PID namespace (inode of `/proc/self/ns/pid`), 0 if unknown. Locks
    /// name their owners by thread id, which means nothing in another PID namespace, so
    /// locks are not handed out there (see `named`). Read as an atomic: a process that
    /// does not cooperate could change it.
    pub pid_namespace: AtomicU64,
    /// The creator's time namespace (see `os::time_namespace`), 0 if unknown. Lock
    /// owners are told from strangers that reuse their thread id by their start time,
    /// which a time namespace shifts, so locks are not handed out there either.
    pub time_namespace: AtomicU64,
    /// Publications so far: numbers directory entries, for `keys`, newest first.
    pub published: AtomicU64,
}

static_assertions::const_assert!(std::mem::size_of::<Header>() <= HEADER_SIZE);

/// [`Header::state`] of a heap ready for use.
pub(crate) const READY: u32 = 0x5245_4459;

/// A region of shared memory from which shared objects are allocated.
///
/// Child processes inherit a heap across `fork` (see [`Process`](crate::Process)), and
/// everything allocated in it, before or after the fork, by the parent or a child, is
/// shared between them. Each object is counted in the heap: when its last handle, in
/// any process, is dropped, its memory goes back to the heap for later allocations
/// (see [Memory that is given back](crate#memory-that-is-given-back)). The heap itself
/// goes when the last process unmaps it (drops its last handle to the heap or to an
/// object in it). Cloning a `Heap` is cheap and gives the same heap.
///
/// Most code never names a heap: every constructor without `_in` uses the
/// [`default_heap`]. Use your own heap to bound memory or to keep objects apart.
///
/// A *named* heap ([`Heap::create`], [`Heap::open`]) is shared by processes that are not
/// forked from each other, which find its objects through its directory
/// ([`Heap::publish`], [`Heap::lookup`], [`Heap::unpublish`]); see
/// [`named`](crate::named).
///
/// ```
/// use sharedctypes::{Heap, RawValue};
///
/// let heap = Heap::new(1 << 20)?;
/// let v = RawValue::new_in(&heap, 42u64)?;
/// assert_eq!(v.get(), 42);
/// assert_eq!(heap.live_objects(), 1);
/// drop(v);
/// assert_eq!((heap.used(), heap.live_objects()), (0, 0));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone)]
pub struct Heap {
    inner: Arc<HeapInner>,
}

pub(crate) struct HeapInner {
    /// Declared before `_map` on purpose: fields drop in declaration order, so a
    /// creator's `NamedState::drop` compares the name's device and inode with ours, and
    /// unlinks it, while this process still maps the segment. Mapped, our segment cannot
    /// be freed, so its inode number cannot be reused by a segment someone else created
    /// under the same name meanwhile (which the comparison would then take for ours).
    pub(crate) named: Option<NamedState>,
    /// The mapping, held for its `Drop`: unmapped when the last handle in this process
    /// is dropped. Accessed only through `base`.
    _map: MmapRaw,
    base: NonNull<u8>,
    len: usize,
    id: FileId,
    /// The heap's file, when known: large fresh copies are written through it (see
    /// [`Heap::copy_to_fresh`]).
    file: Option<File>,
    /// What this process has checked of the directory (see `directory`).
    pub(crate) checked: Mutex<Checked>,
}

// SAFETY: `HeapInner` owns its mapping (`_map`, itself `Send + Sync`); `base` is just
// the mapping's address, as valid in any thread as in the one that made it.
unsafe impl Send for HeapInner {}
// SAFETY: through `&HeapInner`, many threads reach the mapping at once. That is sound
// because every access to shared memory goes through atomics (`Shared<T>`, the header,
// block headers, directory entries and tables, locks), with two exceptions, both on a
// block no counted handle refers to: a block `alloc` has just handed out is initialised
// with plain writes (`init_fresh`, `RawValue::new_in`, `copy_to_fresh`) before any
// handle to it exists, and a block whose count reached zero is zeroed with plain writes
// before it goes back to a free list. `alloc` gives each block to one caller only (a
// compare-and-swap claims it at the frontier or takes it off a free list), and counts
// free a block only after its last counted handle, so no other thread, and no
// cooperating process, reaches the block during those writes. The process-local record
// of what was checked of the directory (`checked`) is behind a mutex.
//
// What this does not cover: a process that does not cooperate (of the same user) can
// write anywhere at any time, the free lists and counts included. Its writes are
// outside this process's abstract machine, like a device's; this process reads shared
// memory only through atomics, and every bit pattern is a valid value of what it reads,
// so they cannot break memory safety here (see the memory-model argument in `shared`).
// By forging a count or a free list it could make `alloc` hand a block out while a
// handle still uses it, so that the plain writes race with another thread's atomic
// accesses to the same bytes: a data race in the abstract machine that such a process
// can provoke (as it can, where ptrace is allowed, write this process's memory
// directly), harmless in practice (the writes store valid values; nothing reads a plain
// value back), and not guarded against, since a guard would add an atomic
// read-modify-write to every allocation. An uncounted copy used after its object was
// freed (against the rule in the crate docs) is the same race.
unsafe impl Sync for HeapInner {}

impl Heap {
    /// Creates a heap of `capacity` bytes for objects (the heap's header is extra; each
    /// object's block takes a 16-byte header of its own, and small objects are rounded
    /// up to a size class). Memory is committed only when touched.
    /// A size the system refuses — past the address-space limit (`ulimit -v`) or the
    /// file-size limit (`ulimit -f`) — is [`Error::OutOfMemory`], never a signal.
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(10_000)?;
    /// assert_eq!(heap.capacity(), 10_000);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn new(capacity: usize) -> Result<Heap> {
        let total = total_len(capacity)?;
        let file = os::memfd(total as u64)?;
        Self::init_fresh(&file, total, None)
    }

    /// Maps a fresh, zero-filled `file` of `total` bytes and writes the header.
    pub(crate) fn init_fresh(file: &File, total: usize, named: Option<NamedState>) -> Result<Heap> {
        let map = os::map_shared(file, total)?;
        let id = os::file_id(file)?;
        let creator_pid = named.as_ref().map_or(0, NamedState::creator_pid);
        // A descriptor of our own for `copy_to_fresh`; without one, copies go through the
        // mapping (slower for large ones, otherwise the same).
        // The directory starts empty: nothing in it to check.
        let checked = Checked::empty();
        let heap = Heap::from_map_with_file(map, id, named, file.try_clone().ok(), checked)?;
        let header = Header {
            magic: MAGIC.map(AtomicU8::new),
            version: AtomicU32::new(VERSION),
            header_size: AtomicU32::new(HEADER_SIZE as u32),
            total_len: AtomicU64::new(total as u64),
            cursor: AtomicU64::new(HEADER_SIZE as u64),
            // Named heaps become visible to `open` only when this turns READY, below.
            state: AtomicU32::new(0),
            creator_pid: AtomicU32::new(creator_pid),
            directory: AtomicU64::new(0),
            pid_namespace: AtomicU64::new(os::pid_namespace()),
            time_namespace: AtomicU64::new(os::time_namespace()),
            published: AtomicU64::new(0),
        };
        // SAFETY: the mapping is at least HEADER_SIZE bytes and page-aligned, so valid and
        // aligned for a `Header`, and no reference to it exists yet in this process. The
        // file is fresh: no other process of ours reads it before `state` turns READY,
        // written last, with `Release` (a process that does not cooperate may write it
        // at any time, as it may any shared memory: see `Header`).
        unsafe { heap.header_ptr().write(header) };
        heap.header().state.store(READY, Ordering::Release);
        Ok(heap)
    }

    /// A heap mapped from an existing segment; its directory is checked before first
    /// use (`Heap::open` does it at once).
    pub(crate) fn from_map(map: MmapRaw, id: FileId, named: Option<NamedState>) -> Result<Heap> {
        Heap::from_map_with_file(map, id, named, None, Checked::unchecked())
    }

    fn from_map_with_file(
        map: MmapRaw,
        id: FileId,
        named: Option<NamedState>,
        file: Option<File>,
        checked: Checked,
    ) -> Result<Heap> {
        // Handles count their objects per fork generation (see `alloc::BlockRef`).
        crate::sync::thread_id::register_atfork();
        let len = map.len();
        // The kernel never picks address 0 for a mapping it places itself; an error
        // rather than a panic all the same.
        let base = NonNull::new(map.as_mut_ptr())
            .ok_or_else(|| Error::os("mmap of the heap", io::Error::other("mapped at 0")))?;
        Ok(Heap {
            inner: Arc::new(HeapInner {
                named,
                _map: map,
                base,
                len,
                id,
                file,
                checked: Mutex::new(checked),
            }),
        })
    }

    fn header_ptr(&self) -> *mut Header {
        self.inner.base.as_ptr().cast()
    }

    /// The header, shared with every process that maps the heap.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a `Header` (page-aligned, HEADER_SIZE bytes) that
        // lives as long as `self`, written by `init_fresh` (or by the creator, for a heap
        // opened by name) before any reference to it exists. Every field is an atomic and
        // valid for every bit pattern, so a shared reference stays sound whatever other
        // threads and processes write there.
        unsafe { &*self.header_ptr() }
    }

    /// Bytes available for objects in all (the header excluded).
    ///
    /// ```
    /// let heap = sharedctypes::Heap::new(4096)?;
    /// assert_eq!(heap.capacity(), 4096); // exactly what was asked for
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.len - HEADER_SIZE
    }

    /// Bytes taken by live objects, in every process: each object's block, with its
    /// 16-byte header and its rounding up to a size class (the heap's own directory,
    /// once something is published, is not an object and not counted). Memory given
    /// back by dropped objects
    /// does not count: after an allocation and its drop, `used()` is what it was.
    ///
    /// A walk over the heap's blocks (nothing is counted on the allocation fast path):
    /// exact when nothing allocates or frees meanwhile, and cheap for a few thousand
    /// objects, not for millions.
    ///
    /// ```
    /// use sharedctypes::{Heap, Process, RawValue};
    ///
    /// let heap = Heap::new(4096)?;
    /// assert_eq!(heap.used(), 0);
    /// let a = RawValue::new_in(&heap, 1u64)?;
    /// assert_eq!(heap.used(), 32); // 16 bytes of header, 8 of value, rounded to 32
    /// let child = {
    ///     let heap = heap.clone();
    ///     Process::spawn(move || {
    ///         std::mem::forget(RawValue::new_in(&heap, 1u64).unwrap());
    ///     })?
    /// };
    /// child.join()?;
    /// assert_eq!(heap.used(), 64); // what the child keeps counts too
    /// drop(a);
    /// assert_eq!(heap.used(), 32); // given back
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn used(&self) -> usize {
        self.live().0
    }

    /// How many objects are alive in this heap, in every process: each raw object,
    /// lock and coordination object counts one, a [`Value`](crate::Value) or
    /// [`Array`](crate::Array) with a lock of its own two (the value and the lock).
    /// For debugging leaks: like [`used`](Heap::used), a walk over the heap, exact when
    /// nothing allocates or frees meanwhile.
    ///
    /// ```
    /// use sharedctypes::{Heap, RawValue, Value};
    ///
    /// let heap = Heap::new(1 << 20)?;
    /// let a = RawValue::new_in(&heap, 1u64)?;
    /// let b = Value::new_in(&heap, 2u64)?; // the value and its RLock
    /// assert_eq!(heap.live_objects(), 3);
    /// drop((a, b));
    /// assert_eq!(heap.live_objects(), 0);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn live_objects(&self) -> usize {
        self.live().1
    }

    /// Bytes not taken by live objects: `capacity() - used()`. Free memory may be in
    /// pieces (and each block needs a 16-byte header), so an object of this size does
    /// not always fit.
    ///
    /// ```
    /// use sharedctypes::{Heap, RawArray};
    ///
    /// let heap = Heap::new(4096)?;
    /// let a = RawArray::<u8>::zeroed_in(&heap, 1000)?;
    /// assert_eq!(heap.available(), heap.capacity() - heap.used());
    /// assert!(heap.available() < 4096 - 1000);
    /// drop(a);
    /// assert_eq!(heap.available(), 4096);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn available(&self) -> usize {
        self.capacity().saturating_sub(self.used())
    }

    /// The address of `offset` in this process.
    pub(crate) fn ptr_at<T>(&self, offset: usize) -> NonNull<T> {
        // An invariant of every caller (offsets come from `alloc` or were checked), so a
        // failure is a bug in this crate, never bad input.
        assert!(offset <= self.inner.len, "heap offset out of bounds");
        // SAFETY: `offset` is within the mapping (asserted), so the result stays inside
        // the same allocation.
        unsafe { self.inner.base.add(offset) }.cast()
    }

    /// Copies `src` to `dst`: freshly allocated room in this heap that no other thread
    /// or process can reach yet.
    ///
    /// Large copies are written through the heap's file (`pwrite`) rather than the
    /// mapping. A store to a page of shared memory that was never touched takes a page
    /// fault, in which the kernel zero-fills the page that the copy then overwrites;
    /// `pwrite` fills the page cache directly, with no zeroing and no fault per page (the
    /// pages are mapped later, by fault-around, 16 at a time). 80 MB: 58 ms through the
    /// mapping, 32 ms through the file (`BENCHMARKS.md`). The mapping is `MAP_SHARED`,
    /// so it sees the bytes at once. Should a write fail, or the heap have no file, the
    /// rest is copied through the mapping.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `src.len()` `T`s inside this heap, aligned, and
    /// reachable by nobody else; it cannot overlap `src` (a borrowed slice).
    pub(crate) unsafe fn copy_to_fresh<T: Copy>(&self, dst: *mut T, src: &[T]) {
        let bytes = std::mem::size_of_val(src);
        let mut done = 0;
        let start = self.offset_of(dst, bytes);
        if let (Some(file), Some(start), true) =
            (&self.inner.file, start, bytes >= COPY_THROUGH_FILE_MIN)
        {
            // A write through the file that ends past the file-size limit (`ulimit -f`,
            // which binds `pwrite` even inside the file) would stop short or raise
            // SIGXFSZ: such copies go through the mapping, which no limit binds.
            if os::check_file_size((start + bytes) as u64).is_ok() {
                let write = || pwrite_all(file.as_raw_fd(), src, start);
                (done, _) = os::without_sigxfsz(write, |(_, e)| *e == Some(libc::EFBIG));
            }
        }
        // SAFETY: the caller guarantees `dst` is valid for `bytes` bytes and does not
        // overlap `src`; `done <= bytes`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr().cast::<u8>().wrapping_add(done),
                dst.cast::<u8>().wrapping_add(done),
                bytes - done,
            )
        };
    }

    /// The offset of `ptr` in this heap, if `[ptr, ptr + len)` lies inside it.
    pub(crate) fn offset_of<T>(&self, ptr: *const T, len: usize) -> Option<usize> {
        let base = self.inner.base.as_ptr() as usize;
        let addr = ptr as usize;
        let offset = addr.checked_sub(base)?;
        (offset.checked_add(len)? <= self.inner.len).then_some(offset)
    }

    /// Bytes mapped, header included.
    pub(crate) fn mapped_len(&self) -> usize {
        self.inner.len
    }

    pub(crate) fn inner(&self) -> &HeapInner {
        &self.inner
    }

    /// Whether `self` and `other` are the same heap (the same shared file), even if
    /// mapped twice in this process.
    pub(crate) fn same_heap(&self, other: &Heap) -> bool {
        self.inner.id == other.inner.id
    }
}

/// Writes as much of `src` as the file `fd` takes at offset `start`; returns the bytes
/// written and, if it stopped early on an error, the error's number.
fn pwrite_all<T: Copy>(fd: libc::c_int, src: &[T], start: usize) -> (usize, Option<i32>) {
    let bytes = std::mem::size_of_val(src);
    let mut done = 0;
    while done < bytes {
        let Ok(at) = libc::off_t::try_from(start + done) else {
            return (done, None);
        };
        // SAFETY: the kernel reads `bytes - done` bytes of `src` from offset `done`, all
        // inside `src` (padding bytes included, copied blindly as `memcpy` would), and
        // keeps no pointer to them.
        let n = unsafe {
            libc::pwrite(
                fd,
                src.as_ptr().cast::<u8>().wrapping_add(done).cast(),
                bytes - done,
                at,
            )
        };
        if n > 0 {
            done += n as usize;
        } else if n == 0 {
            return (done, None);
        } else {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return (done, e.raw_os_error());
            }
        }
    }
    (done, None)
}

impl PartialEq for Heap {
    /// Heaps are equal when they are the same shared memory, however they were reached.
    fn eq(&self, other: &Heap) -> bool {
        self.same_heap(other)
    }
}

impl Eq for Heap {}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Heap");
        if let Some(named) = &self.inner.named {
            d.field("name", &named.name());
        }
        d.field("capacity", &self.capacity())
            .field("used", &self.used())
            .finish()
    }
}

/// Mapping length for `capacity` usable bytes: header plus capacity, in whole pages.
pub(crate) fn total_len(capacity: usize) -> Result<usize> {
    // Not rounded up to whole pages: `capacity()` is exactly what was asked for (the
    // kernel maps whole pages anyway; the tail of the last one is simply unused).
    HEADER_SIZE
        .checked_add(capacity)
        .filter(|&n| n <= alloc::MAX_HEAP)
        .ok_or(Error::OutOfMemory {
            requested: capacity,
            available: 0,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_fresh_copies_land_in_the_mapping() {
        use crate::{Array, RawArray, RawValue};
        let heap = Heap::new(16 << 20).unwrap();
        // Neighbours on the first and last page, and a start that is not page-aligned.
        let before = RawValue::new_in(&heap, 0x5555u16).unwrap();
        let src: Vec<u64> = (0..400_000u64).map(|i| i * 3 + 1).collect();
        assert!(std::mem::size_of_val(&src[..]) >= COPY_THROUGH_FILE_MIN);
        let a = RawArray::from_slice_in(&heap, &src).unwrap();
        let after = RawValue::new_in(&heap, 0x7777u16).unwrap();
        assert_eq!(a.to_vec(), src);
        assert_eq!((before.get(), after.get()), (0x5555, 0x7777));
        let b = Array::from_slice_in(&heap, &src).unwrap();
        assert_eq!(b.to_vec(), src);
        // A child sees the copy, and the parent sees the child's writes.
        let child = {
            let a = a.clone();
            crate::Process::spawn(move || {
                assert_eq!(a[399_999].get(), 399_999 * 3 + 1);
                a[0].set(42);
            })
            .unwrap()
        };
        child.join().unwrap();
        assert_eq!(a[0].get(), 42);
    }
}
