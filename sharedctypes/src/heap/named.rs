//! Named heaps: creating a POSIX shared-memory segment, opening one by name (checking
//! its header before mapping it), and the name's lifecycle. What users read about it is
//! in [`crate::named`].

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{total_len, Header, Heap, HEADER_SIZE, MAGIC, READY, VERSION};
use crate::error::{Error, NameKind, Result};
use crate::os::{self, FileId};

/// What `shm_open` refusing a name that passed our own checks means.
const SYSTEM_REFUSED_NAME: &str = "the system refuses it";

// ---------------------------------------------------------------------------------------
// Names and lifecycle
// ---------------------------------------------------------------------------------------

/// What a heap reached by name remembers about its name.
pub(crate) struct NamedState {
    name: CString,
    /// Set when this process created the segment: the name is its to remove.
    creator: Option<Creator>,
    persisted: AtomicBool,
}

struct Creator {
    pid: u32,
    id: FileId,
}

impl NamedState {
    fn created(name: CString, id: FileId) -> NamedState {
        NamedState {
            name,
            creator: Some(Creator {
                pid: std::process::id(),
                id,
            }),
            persisted: AtomicBool::new(false),
        }
    }

    fn opened(name: CString) -> NamedState {
        NamedState {
            name,
            creator: None,
            persisted: AtomicBool::new(false),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.name.to_str().unwrap_or("<non-UTF-8 name>")
    }

    /// The creating process's id, 0 unless this process created the heap.
    pub(crate) fn creator_pid(&self) -> u32 {
        self.creator.as_ref().map_or(0, |c| c.pid)
    }
}

impl Drop for NamedState {
    /// Removes the name when the creating process lets go of its heap.
    fn drop(&mut self) {
        let Some(creator) = &self.creator else { return };
        if self.persisted.load(Ordering::Relaxed) || creator.pid != std::process::id() {
            return;
        }
        // Errors are ignored: a destructor cannot report them, and each one (the name
        // already removed, or no longer ours to open) means there is nothing of ours left
        // to remove. Between the identity check and the unlink another process could
        // replace the name; only a process of the same user can, and it races itself.
        // O_NONBLOCK: once our name is gone, anyone may put a FIFO there (`/dev/shm` is
        // world-writable), and opening a FIFO read-only would block until a writer came.
        if let Ok(file) = os::shm_open(&self.name, libc::O_RDONLY | libc::O_NONBLOCK) {
            if os::file_id(&file).ok() == Some(creator.id) {
                let _ = os::shm_unlink(&self.name);
            }
        }
    }
}

impl Heap {
    /// Creates a named heap with room for `capacity` bytes of objects, which other
    /// processes can [`open`](Heap::open) by `name`.
    ///
    /// The name is `/` followed by 1–255 bytes with no `/` or NUL, and not `.` or `..`
    /// (anything else is [`Error::InvalidName`], before any system call). A taken name
    /// is [`Error::AlreadyExists`]. The segment is mode `0600` (this user only), and its
    /// whole size is reserved now: a full `/dev/shm`, or a size past the file-size limit
    /// (`ulimit -f`), is [`Error::OutOfMemory`] and leaves no name behind.
    ///
    /// The name is removed when this process drops the last handle derived from the
    /// returned heap, unless [`persist`](Heap::persist) was called; see the
    /// [lifecycle](crate::named#lifecycle).
    ///
    /// ```
    /// use sharedctypes::{Error, Heap};
    ///
    /// let name = format!("/doc-create-{}", std::process::id());
    /// let heap = Heap::create(&name, 1 << 16)?;
    /// assert_eq!(heap.name(), Some(name.as_str()));
    /// let taken = Heap::create(&name, 1 << 16).unwrap_err();
    /// assert!(matches!(&taken, Error::AlreadyExists { name: n, .. } if *n == name));
    /// assert!(taken.to_string().starts_with(&format!("heap {name:?} already exists")));
    /// assert!(matches!(Heap::create("no-slash", 1 << 16), Err(Error::InvalidName { .. })));
    /// drop(heap);
    /// assert!(matches!(Heap::open(&name), Err(Error::NotFound { .. }))); // removed on drop
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn create(name: &str, capacity: usize) -> Result<Heap> {
        let cname = os::shm_name(name)?;
        let total = total_len(capacity)?;
        // Past the file-size limit (`ulimit -f`) the segment could never be reserved:
        // refused before the name is made.
        os::check_file_size(total as u64)?;
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        let file = os::shm_open(&cname, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => Error::AlreadyExists {
                name: name.to_owned(),
                kind: NameKind::Heap,
            },
            Some(libc::ENAMETOOLONG | libc::EINVAL) => {
                Error::invalid_heap_name(name, SYSTEM_REFUSED_NAME)
            }
            _ => Error::os("shm_open of a new named heap", e),
        })?;
        let id = match os::file_id(&file) {
            Ok(id) => id,
            Err(e) => {
                let _ = os::shm_unlink(&cname);
                return Err(e);
            }
        };
        // From here on, dropping `named` (on any error below) removes the half-made name.
        let named = NamedState::created(cname, id);
        os::fallocate(&file, total as u64)?;
        Heap::init_fresh(&file, total, Some(named))
    }

    /// Opens the named heap `name`, created by this or another process, mapped wherever
    /// the system chooses (objects are found by offset, so the address does not matter).
    ///
    /// A missing name — or a heap still being created — is [`Error::NotFound`]; a
    /// segment that is not a valid sharedctypes heap (foreign, truncated, corrupted) is
    /// [`Error::InvalidHeap`]: everything is checked before it is trusted (see
    /// [what is checked](crate::named#what-is-checked-and-what-cannot-be)). Opening never
    /// makes this process responsible for removing the name.
    ///
    /// ```
    /// use sharedctypes::{Error, Heap};
    ///
    /// let name = format!("/doc-open-{}", std::process::id());
    /// let created = Heap::create(&name, 4096)?;
    /// let opened = Heap::open(&name)?;
    /// assert_eq!(opened, created); // the same shared memory
    /// assert!(matches!(Heap::open("/doc-no-such-heap"), Err(Error::NotFound { .. })));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Heap> {
        let cname = os::shm_name(name)?;
        // O_NONBLOCK: the name may be a FIFO that anyone put in `/dev/shm` (Linux opens a
        // FIFO O_RDWR without blocking anyway; POSIX leaves it undefined). It is refused
        // below, with everything else that is not a regular file.
        let flags = libc::O_RDWR | libc::O_NONBLOCK;
        let file = os::shm_open(&cname, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::heap_not_found(name),
            Some(libc::ENAMETOOLONG) => Error::invalid_heap_name(name, SYSTEM_REFUSED_NAME),
            // The name is valid (checked above), so this is no name: a directory (glibc
            // reports EISDIR as EINVAL), a symbolic link (`shm_open` does not follow
            // them), a socket.
            Some(libc::EINVAL | libc::EISDIR | libc::ELOOP | libc::ENXIO) => Error::InvalidHeap,
            _ => Error::os("shm_open of a named heap", e),
        })?;
        let total = check_header(&file).map_err(|e| match e {
            HeaderError::BeingCreated => Error::heap_not_found(name),
            HeaderError::Other(e) => e,
        })?;
        let map = os::map_shared(&file, total)?;
        let id = os::file_id(&file)?;
        let heap = Heap::from_map(map, id, Some(NamedState::opened(cname)))?;
        // The header may have changed since it was read; the mapping's length is ours,
        // and the cursor is clamped into it on every use, so that cannot mislead us.
        heap.check_directory()?;
        heap.check_frontier()?;
        Ok(heap)
    }

    /// Keeps the name after this process lets go of the heap, until [`Heap::unlink`]
    /// (or a reboot). Does nothing for a heap this process did not create.
    ///
    /// ```
    /// use sharedctypes::Heap;
    ///
    /// let name = format!("/doc-persist-{}", std::process::id());
    /// let heap = Heap::create(&name, 4096)?;
    /// heap.persist();
    /// drop(heap);
    /// assert!(Heap::open(&name).is_ok()); // still there
    /// Heap::unlink(&name)?;
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn persist(&self) {
        if let Some(named) = &self.inner().named {
            named.persisted.store(true, Ordering::Relaxed);
        }
    }

    /// Removes the name `name` (`shm_unlink`): new `open`s fail, processes that have it
    /// open keep using it. [`Error::NotFound`] if there is no such name.
    ///
    /// ```
    /// use sharedctypes::{Error, Heap};
    ///
    /// let name = format!("/doc-unlink-{}", std::process::id());
    /// let heap = Heap::create(&name, 4096)?;
    /// Heap::unlink(&name)?;
    /// assert!(matches!(Heap::open(&name), Err(Error::NotFound { .. })));
    /// assert!(matches!(Heap::unlink(&name), Err(Error::NotFound { .. })));
    /// assert!(heap.capacity() >= 4096); // still usable here
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn unlink(name: &str) -> Result<()> {
        let cname = os::shm_name(name)?;
        os::shm_unlink(&cname).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::heap_not_found(name),
            Some(libc::ENAMETOOLONG | libc::EINVAL) => {
                Error::invalid_heap_name(name, SYSTEM_REFUSED_NAME)
            }
            _ => Error::os("shm_unlink of a named heap", e),
        })
    }

    /// The name this heap was created or opened with; `None` for an anonymous heap.
    ///
    /// ```
    /// assert_eq!(sharedctypes::Heap::new(4096)?.name(), None);
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner().named.as_ref().map(NamedState::name)
    }

    /// The id of the process that created this named heap, as recorded in the heap;
    /// `None` for an anonymous heap. Tells a stale heap (its creator gone) from a live one.
    ///
    /// ```
    /// let name = format!("/doc-creator-{}", std::process::id());
    /// let heap = sharedctypes::Heap::create(&name, 4096)?;
    /// assert_eq!(heap.creator_pid(), Some(std::process::id()));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn creator_pid(&self) -> Option<u32> {
        match self.header().creator_pid.load(Ordering::Relaxed) {
            0 => None,
            pid => Some(pid),
        }
    }
}

/// Why [`check_header`] refused a segment.
enum HeaderError {
    /// A heap still being created: [`Error::NotFound`] with the heap's name.
    BeingCreated,
    Other(Error),
}

impl From<Error> for HeaderError {
    fn from(e: Error) -> Self {
        HeaderError::Other(e)
    }
}

/// Reads and checks a segment's header without mapping it; returns the length to map.
fn check_header(file: &File) -> Result<usize, HeaderError> {
    let meta = file
        .metadata()
        .map_err(|e| Error::os("fstat of a named heap", e))?;
    if !meta.file_type().is_file() {
        // A FIFO, a socket, a device: never a heap (and not to be read or mapped).
        return Err(Error::InvalidHeap.into());
    }
    let size = meta.len();
    if size == 0 {
        // A creator between `shm_open` and `posix_fallocate`.
        return Err(HeaderError::BeingCreated);
    }
    if size < HEADER_SIZE as u64 {
        return Err(Error::InvalidHeap.into());
    }
    let mut h = [0u8; HEADER_SIZE];
    match file.read_exact_at(&mut h, 0) {
        Ok(()) => {}
        // Shrunk since the fstat.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(Error::InvalidHeap.into()),
        Err(e) => return Err(Error::os("reading a named heap's header", e).into()),
    }
    let magic = &h[..MAGIC.len()];
    let state = read_u32(&h, std::mem::offset_of!(Header, state));
    if state != READY {
        // A header being written: each magic byte is either still zero or already ours.
        let being_written = state == 0 && magic.iter().zip(MAGIC).all(|(&b, m)| b == 0 || b == m);
        return Err(if being_written {
            HeaderError::BeingCreated
        } else {
            Error::InvalidHeap.into()
        });
    }
    let version = read_u32(&h, std::mem::offset_of!(Header, version));
    let header_size = read_u32(&h, std::mem::offset_of!(Header, header_size));
    let total = read_u64(&h, std::mem::offset_of!(Header, total_len));
    let cursor = read_u64(&h, std::mem::offset_of!(Header, cursor));
    let valid = magic == MAGIC
        && version == VERSION
        && header_size as usize == HEADER_SIZE
        && total == size
        // As `create` makes them: free lists hold offsets in 44 bits.
        && total <= super::alloc::MAX_HEAP as u64
        && (HEADER_SIZE as u64..=total).contains(&cursor);
    if !valid {
        return Err(Error::InvalidHeap.into());
    }
    // `create` reserves every block (`posix_fallocate`) before the header turns READY;
    // holes appear later, where freed large blocks gave their pages back (and the
    // allocator reserves them again before reusing them), so a file with holes is no
    // sign of a foreign segment.
    usize::try_from(total).map_err(|_| Error::InvalidHeap.into())
}

fn read_u32(h: &[u8; HEADER_SIZE], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&h[at..at + 4]);
    u32::from_ne_bytes(b)
}

fn read_u64(h: &[u8; HEADER_SIZE], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&h[at..at + 8]);
    u64::from_ne_bytes(b)
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::mem::offset_of;

    use super::*;
    use crate::heap::test_util::{open_damaged, put, unique};
    use crate::{Lock, Value};

    /// Fills a heap with two entries; returns its file's length.
    fn two_entries(heap: &Heap, f: &File) -> u64 {
        heap.publish("v", &Value::new_in(heap, 7u64).unwrap())
            .unwrap();
        heap.publish("lock", &Lock::new_in(heap).unwrap()).unwrap();
        f.metadata().unwrap().len()
    }

    fn invalid(edit: impl FnOnce(&File, &u64)) -> bool {
        matches!(open_damaged(two_entries, edit), Err(Error::InvalidHeap))
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
        assert!(invalid(|f, total| put(
            f,
            at(offset_of!(Header, total_len)),
            &(*total * 2).to_ne_bytes()
        )));
        assert!(invalid(|f, _| put(
            f,
            at(offset_of!(Header, cursor)),
            &8u64.to_ne_bytes()
        )));
        assert!(invalid(|f, total| put(
            f,
            at(offset_of!(Header, cursor)),
            &(*total + 1).to_ne_bytes()
        )));
        assert!(invalid(|f, _| put(
            f,
            at(offset_of!(Header, state)),
            &7u32.to_ne_bytes()
        )));
    }

    #[test]
    fn a_wrong_size_is_invalid() {
        assert!(invalid(|f, total| f.set_len(*total - 4096).unwrap()));
        assert!(invalid(|f, total| f.set_len(*total + 4096).unwrap()));
        assert!(invalid(|f, _| f.set_len(64).unwrap()));
        assert!(invalid(|f, _| f.set_len(HEADER_SIZE as u64 - 1).unwrap()));
    }

    #[test]
    fn a_heap_being_created_is_not_found() {
        let not_found = |edit: fn(&File, &u64)| {
            matches!(open_damaged(two_entries, edit), Err(Error::NotFound { .. }))
        };
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
}
