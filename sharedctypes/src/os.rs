//! The operating-system calls behind heaps, in one place: anonymous shared files
//! (memfd), POSIX shared-memory objects, and their shared mappings.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Error, Result};

/// The identity of a shared-memory file: the same in every process that maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
}

pub(crate) fn file_id(file: &File) -> Result<FileId> {
    let meta = file
        .metadata()
        .map_err(|e| Error::os("fstat of the heap's file", e))?;
    Ok(FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// Creates an anonymous shared-memory file of `len` bytes (sparse: pages are allocated
/// when first touched).
pub(crate) fn memfd(len: u64) -> Result<File> {
    // SAFETY: the name is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::memfd_create(c"sharedctypes-heap".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os("memfd_create"));
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(len)
        .map_err(|e| Error::os("ftruncate of the heap's memfd", e))?;
    Ok(file)
}

/// Maps `len` bytes of `file` shared and writable (`MAP_SHARED`: every process that
/// maps the file, or inherits the mapping across `fork`, sees the same pages).
pub(crate) fn map_shared(file: &File, len: usize) -> Result<MmapRaw> {
    MmapOptions::new().len(len).map_raw(file).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOMEM) {
            Error::OutOfMemory {
                requested: len,
                available: 0,
            }
        } else {
            Error::os("mmap of the heap", e)
        }
    })
}

/// A POSIX shared-memory name, already validated.
pub(crate) fn shm_name(name: &str) -> Result<CString> {
    let bytes = name.as_bytes();
    let rest = bytes.strip_prefix(b"/").ok_or(Error::InvalidName)?;
    if rest.is_empty()
        || rest.len() > 255
        || rest.contains(&b'/')
        || rest.contains(&0)
        || rest == b"."
        || rest == b".."
    {
        return Err(Error::InvalidName);
    }
    CString::new(bytes).map_err(|_| Error::InvalidName)
}

/// `shm_open` with `flags`, mode 0600.
pub(crate) fn shm_open(name: &CString, flags: libc::c_int) -> io::Result<File> {
    // SAFETY: `name` is NUL-terminated; flags and mode are plain integers.
    let fd = unsafe { libc::shm_open(name.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `shm_unlink`.
pub(crate) fn shm_unlink(name: &CString) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    if unsafe { libc::shm_unlink(name.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reserves `len` bytes of backing store now, so that running out of `/dev/shm` is an
/// error here rather than a `SIGBUS` on first touch.
pub(crate) fn fallocate(file: &File, len: u64) -> Result<()> {
    let len_off = libc::off_t::try_from(len).map_err(|_| Error::OutOfMemory {
        requested: usize::MAX,
        available: 0,
    })?;
    let rc = loop {
        // SAFETY: the fd is valid for the lifetime of `file`; offsets are in range.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len_off) };
        // A signal may interrupt a long allocation; what was allocated stays, and the
        // retry allocates the rest.
        if rc != libc::EINTR {
            break rc;
        }
    };
    match rc {
        0 => Ok(()),
        libc::ENOSPC | libc::EFBIG => Err(Error::OutOfMemory {
            requested: usize::try_from(len).unwrap_or(usize::MAX),
            available: 0,
        }),
        e => Err(Error::os(
            "posix_fallocate of the heap",
            io::Error::from_raw_os_error(e),
        )),
    }
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf with a valid name has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// This process's PID namespace: the inode of `/proc/self/ns/pid`, 0 if unknown.
pub(crate) fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}
