//! The operating-system calls behind heaps, in one place: anonymous shared files
//! (memfd), POSIX shared-memory objects, their shared mappings, the file-size limit
//! (`RLIMIT_FSIZE`, and the `SIGXFSZ` that passing it raises), and the namespaces that
//! locks depend on.
//!
//! Running out of room — memory, `/dev/shm` space, the file-size limit — is always
//! [`Error::OutOfMemory`] here, never another error and never a signal.

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

/// `Error::OutOfMemory` for a heap file of `len` bytes that the system refused.
fn refused(len: u64) -> Error {
    Error::OutOfMemory {
        requested: usize::try_from(len).unwrap_or(usize::MAX),
        available: 0,
    }
}

/// Whether an errno means the system has no room: memory, `/dev/shm` space, or the
/// file-size limit.
fn is_out_of_room(errno: Option<i32>) -> bool {
    matches!(errno, Some(libc::ENOMEM | libc::ENOSPC | libc::EFBIG))
}

/// Whether `r` failed with `EFBIG`, for [`without_sigxfsz`].
pub(crate) fn is_efbig<T>(r: &io::Result<T>) -> bool {
    matches!(r, Err(e) if e.raw_os_error() == Some(libc::EFBIG))
}

/// Creates an anonymous shared-memory file of `len` bytes (sparse: pages are allocated
/// when first touched).
pub(crate) fn memfd(len: u64) -> Result<File> {
    // Before any system call: a file larger than RLIMIT_FSIZE is refused with nothing
    // created.
    check_file_size(len)?;
    // SAFETY: the name is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::memfd_create(c"sharedctypes-heap".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(if is_out_of_room(e.raw_os_error()) {
            refused(len)
        } else {
            Error::os("memfd_create", e)
        });
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    without_sigxfsz(|| file.set_len(len), is_efbig).map_err(|e| {
        if is_out_of_room(e.raw_os_error()) {
            refused(len)
        } else {
            Error::os("ftruncate of the heap's memfd", e)
        }
    })?;
    Ok(file)
}

/// This process's file-size limit (`RLIMIT_FSIZE`, the soft one: `ulimit -f`) in bytes,
/// `None` when unlimited or unknown.
pub(crate) fn file_size_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) } != 0 {
        return None;
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// `Err(OutOfMemory)` if a file of `len` bytes would pass the file-size limit (where
/// growing it would raise `SIGXFSZ`).
pub(crate) fn check_file_size(len: u64) -> Result<()> {
    match file_size_limit() {
        Some(limit) if len > limit => Err(refused(len)),
        _ => Ok(()),
    }
}

/// Runs `call`, a system call on a file that may pass the file-size limit
/// (`RLIMIT_FSIZE`), so that it fails with `EFBIG` rather than kill the process.
///
/// The kernel sends `SIGXFSZ`, whose default action kills the process, to the *calling
/// thread* along with `EFBIG`. Changing the signal's disposition would be a
/// process-wide side effect, so instead the signal is blocked for this thread only,
/// around the call; a `SIGXFSZ` the call raised is then taken off the pending set
/// (`sigtimedwait` with a zero timeout) before the old mask is restored, so it is never
/// delivered (nor is a handler the program may have installed for it called: the
/// failure is reported as an error instead). A thread that already blocks `SIGXFSZ` is
/// left exactly as it is (its pending signals are its own business). Callers check [`check_file_size`] first, so
/// this is the second line of defence, against a limit lowered by another thread in
/// between.
///
/// `efbig` tells whether the call's result is an `EFBIG` failure (the only one that
/// comes with a `SIGXFSZ`): only then is a pending `SIGXFSZ` consumed.
pub(crate) fn without_sigxfsz<T>(call: impl FnOnce() -> T, efbig: impl FnOnce(&T) -> bool) -> T {
    // SAFETY: `sigset_t` is an array of integers, for which all zeros is a valid value
    // (the empty set, on Linux; `sigemptyset` makes sure below).
    let mut xfsz: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `pthread_sigmask` overwrites it.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `xfsz` is a valid, writable signal set.
    let emptied = unsafe { libc::sigemptyset(&mut xfsz) } == 0;
    // SAFETY: as above; SIGXFSZ is a valid signal number.
    let added = emptied && unsafe { libc::sigaddset(&mut xfsz, libc::SIGXFSZ) } == 0;
    // SAFETY: both sets are valid; only this thread's mask changes.
    let blocked = added && unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &xfsz, &mut old) } == 0;
    if !blocked {
        return call();
    }
    // SAFETY: `old` was filled by `pthread_sigmask`.
    let was_blocked = unsafe { libc::sigismember(&old, libc::SIGXFSZ) } == 1;
    let result = call();
    if !was_blocked {
        if efbig(&result) {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // Standard signals do not queue: at most one SIGXFSZ is pending. EAGAIN
            // means none is; EINTR (a handled signal came first) means try again.
            loop {
                // SAFETY: `xfsz` is a valid set; a null `siginfo` is allowed; `zero` is
                // a valid timeout.
                let rc = unsafe { libc::sigtimedwait(&xfsz, std::ptr::null_mut(), &zero) };
                if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
        }
        // SAFETY: `old` is the mask this thread had; restoring it is always valid.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    }
    result
}

/// Maps `len` bytes of `file` shared and writable (`MAP_SHARED`: every process that
/// maps the file, or inherits the mapping across `fork`, sees the same pages).
pub(crate) fn map_shared(file: &File, len: usize) -> Result<MmapRaw> {
    MmapOptions::new().len(len).map_raw(file).map_err(|e| {
        if is_out_of_room(e.raw_os_error()) {
            refused(len as u64)
        } else {
            Error::os("mmap of the heap", e)
        }
    })
}

/// A POSIX shared-memory name, already validated.
pub(crate) fn shm_name(name: &str) -> Result<CString> {
    let bytes = name.as_bytes();
    let invalid = |reason| Error::invalid_heap_name(name, reason);
    let rest = bytes
        .strip_prefix(b"/")
        .ok_or_else(|| invalid("it does not start with '/'"))?;
    let reason = if rest.is_empty() {
        Some("nothing follows the '/'")
    } else if rest.len() > 255 {
        Some("it is longer than 255 bytes after the '/'")
    } else if rest.contains(&b'/') {
        Some("it has a '/' after the first")
    } else if rest.contains(&0) {
        Some("it contains a NUL byte")
    } else if rest == b"." || rest == b".." {
        Some("\".\" and \"..\" are not names")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(invalid(reason));
    }
    CString::new(bytes).map_err(|_| invalid("it contains a NUL byte"))
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
    let len_off = libc::off_t::try_from(len).map_err(|_| refused(len))?;
    check_file_size(len)?;
    let allocate = || loop {
        // SAFETY: the fd is valid for the lifetime of `file`; offsets are in range.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len_off) };
        // A signal may interrupt a long allocation; what was allocated stays, and the
        // retry allocates the rest.
        match rc {
            0 => break Ok(()),
            libc::EINTR => {}
            e => break Err(io::Error::from_raw_os_error(e)),
        }
    };
    let rc = without_sigxfsz(allocate, is_efbig);
    rc.map_err(|e| {
        if is_out_of_room(e.raw_os_error()) {
            refused(len)
        } else {
            Error::os("posix_fallocate of the heap", e)
        }
    })
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf with a valid name has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// This process's PID namespace: the inode of `/proc/self/ns/pid`, [`UNKNOWN_NAMESPACE`]
/// if it cannot be read (no `/proc`).
pub(crate) fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").map_or(UNKNOWN_NAMESPACE, |m| m.ino())
}

/// A namespace that cannot be read. Never matches anything, itself included: a check
/// that cannot tell refuses.
pub(crate) const UNKNOWN_NAMESPACE: u64 = 0;

/// [`time_namespace`] on a kernel without time namespaces (before 5.6, or built without
/// them): every process then shares the one clock, as if in one namespace. Namespace
/// inodes are 32-bit numbers, so this never names a real one.
pub(crate) const NO_TIME_NAMESPACES: u64 = u64::MAX;

/// This process's time namespace: the inode of `/proc/self/ns/time`;
/// [`NO_TIME_NAMESPACES`] if the kernel has none (`/proc/self/ns` is there, without
/// `time`); [`UNKNOWN_NAMESPACE`] if it cannot be read (no `/proc`).
pub(crate) fn time_namespace() -> u64 {
    match std::fs::metadata("/proc/self/ns/time") {
        Ok(m) => m.ino(),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && std::fs::metadata("/proc/self/ns/pid").is_ok() =>
        {
            NO_TIME_NAMESPACES
        }
        Err(_) => UNKNOWN_NAMESPACE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child (raw `fork`, `_exit`: no harness code runs there) and
    /// returns its wait status.
    fn in_child(f: impl FnOnce()) -> libc::c_int {
        // SAFETY: the child runs only `f` (which takes no lock another thread could
        // hold: no printing, no allocation-free of shared state) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
            // SAFETY: `_exit` ends the child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    fn limit_file_size(bytes: u64) {
        let lim = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: `lim` is a valid rlimit (we are raising nothing above the hard limit:
        // it stays as it was only if it was infinite, which tests assume).
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);
    }

    /// Whether SIGXFSZ is pending, and whether this thread blocks it.
    fn sigxfsz_state() -> (bool, bool) {
        // SAFETY: all-zero is a valid `sigset_t`; the calls below fill them.
        let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid, writable set.
        unsafe { libc::sigpending(&mut pending) };
        // SAFETY: a null new set only reads the mask.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) };
        // SAFETY: the sets were filled above.
        let p = unsafe { libc::sigismember(&pending, libc::SIGXFSZ) } == 1;
        // SAFETY: as above.
        let b = unsafe { libc::sigismember(&mask, libc::SIGXFSZ) } == 1;
        (p, b)
    }

    #[test]
    fn growing_past_the_limit_fails_without_a_signal() {
        let status = in_child(|| {
            let file = memfd(4096).unwrap();
            limit_file_size(1 << 20);
            // The pre-check would refuse this; the call itself is what is tested here.
            let r = without_sigxfsz(|| file.set_len(4 << 20), is_efbig);
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EFBIG));
            assert_eq!(sigxfsz_state(), (false, false), "consumed and unblocked");
            assert!(matches!(memfd(4 << 20), Err(Error::OutOfMemory { .. })));
            assert!(matches!(
                fallocate(&file, 4 << 20),
                Err(Error::OutOfMemory { .. })
            ));
            // Below the limit, the same calls work.
            without_sigxfsz(|| file.set_len(1 << 19), is_efbig).unwrap();
            fallocate(&file, 1 << 20).unwrap();
        });
        assert_eq!(status, 0, "exit status (SIGXFSZ is signal 25)");
    }

    #[test]
    fn a_thread_that_blocks_sigxfsz_keeps_its_signal() {
        let status = in_child(|| {
            let file = memfd(4096).unwrap();
            limit_file_size(1 << 20);
            // SAFETY: all-zero is a valid `sigset_t`, then filled by the calls below.
            let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
            // SAFETY: a valid, writable set.
            unsafe { libc::sigemptyset(&mut set) };
            // SAFETY: as above.
            unsafe { libc::sigaddset(&mut set, libc::SIGXFSZ) };
            // SAFETY: a valid set; only this thread's mask changes.
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
            let r = without_sigxfsz(|| file.set_len(4 << 20), is_efbig);
            assert!(is_efbig(&r));
            // The caller's own blocked signal is left to the caller.
            assert_eq!(sigxfsz_state(), (true, true));
        });
        assert_eq!(status, 0, "exit status");
    }
}
