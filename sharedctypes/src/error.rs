//! The crate's one error type.

use std::fmt;
use std::io;

/// Everything that can go wrong in this crate.
///
/// Bad input never changes shared state: when a call returns an `Err`, the heap, the
/// object and the lock are exactly as they were before the call.
///
/// ```
/// use sharedctypes::{Error, Heap, RawArray};
///
/// let heap = Heap::new(4096)?;
/// let err = RawArray::<u64>::zeroed_in(&heap, 1 << 20).unwrap_err();
/// assert!(matches!(err, Error::OutOfMemory { .. }));
/// assert_eq!(heap.used(), 0); // nothing was consumed
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The heap has no room for the allocation; nothing was allocated.
    OutOfMemory {
        /// Bytes asked for (`usize::MAX` when the size itself overflowed).
        requested: usize,
        /// Bytes still free in the heap.
        available: usize,
    },
    /// A character that is not one of the typecodes `c b B h H i I l L q Q f d`.
    UnknownTypecode(char),
    /// A slice's length differs from the array's.
    LengthMismatch {
        /// The array's length.
        expected: usize,
        /// The slice's length.
        found: usize,
    },
    /// A byte string is longer than the byte (`u8`) array it is written to.
    TooLong {
        /// The byte string's length.
        len: usize,
        /// The array's length.
        capacity: usize,
    },
    /// An index past the end of an array.
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// A lock's previous holder died while holding it (see [`OwnerDied`](crate::OwnerDied)).
    OwnerDied,
    /// A named heap or a published key that already exists.
    AlreadyExists,
    /// A named heap or a published key that does not exist (or is still being created).
    NotFound,
    /// A heap name that is not `/` followed by 1–255 bytes without `/` or NUL (nor `.`
    /// or `..`), or a directory key that is not 1–255 bytes.
    InvalidName,
    /// A shared-memory segment that is not a valid sharedctypes heap: foreign, truncated
    /// or corrupted.
    InvalidHeap,
    /// A published object's layout or kind differs from the one asked for; the message
    /// says what differs. Also the error of [`Heap::publish`](crate::Heap::publish) (and
    /// [`lookup`](crate::Heap::lookup)) for a type whose layout a heap's directory cannot
    /// describe (too large, nested too deeply, or with a name it cannot store); the
    /// message then says why.
    LayoutMismatch(String),
    /// A handle used with a heap it does not belong to.
    WrongHeap,
    /// A type whose alignment exceeds the page size, which a heap cannot honour.
    AlignmentTooLarge {
        /// The type's alignment.
        align: usize,
        /// The largest alignment a heap honours (the page size).
        max: usize,
    },
    /// A lock in a named heap created in another PID namespace: locks identify their
    /// owners by thread id, which means nothing across PID namespaces.
    ForeignPidNamespace,
    /// A lock in a named heap created in another time namespace: lock owners are told
    /// apart from strangers with a reused thread id by their start time, which a time
    /// namespace shifts, so such locks could be taken over while their owner is alive.
    ForeignTimeNamespace,
    /// A lock was busy (or did not come free within the timeout); see
    /// [`TryLockError::WouldBlock`](crate::TryLockError::WouldBlock).
    WouldBlock,
    /// A child process did not exit with status 0: it returned an error, panicked
    /// (status 101), was killed by a signal, or exited with another code.
    ChildFailed {
        /// The child's process id.
        pid: u32,
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// A semaphore's value would pass its limit (`u32::MAX`, or a
    /// `BoundedSemaphore`'s initial value); nothing changed.
    SemaphoreOverflow,
    /// A barrier was broken (aborted, reset, or timed out) while waiting on it, or before.
    BrokenBarrier,
    /// A [`Barrier`](crate::Barrier) for 0 parties (it could never be passed), or for
    /// more than [`Barrier::MAX_PARTIES`](crate::Barrier::MAX_PARTIES).
    InvalidParties {
        /// The number of parties asked for.
        parties: usize,
    },
    /// The operating system refused a call.
    Os {
        /// What the crate was doing.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// Part of every [`Error::LayoutMismatch`] message about a type whose layout a heap's
/// directory cannot describe.
pub(crate) const UNDESCRIBABLE: &str = "cannot be described in a heap's directory";

/// `Result<T, sharedctypes::Error>`.
///
/// ```
/// use sharedctypes::{RawValue, Result};
///
/// fn counter(start: u32) -> Result<RawValue<u32>> {
///     RawValue::new(start) // the error type defaults to `sharedctypes::Error`
/// }
/// assert_eq!(counter(3)?.get(), 3);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps the current `errno` as an [`Error::Os`].
    pub(crate) fn last_os(op: &'static str) -> Self {
        Error::Os {
            op,
            source: io::Error::last_os_error(),
        }
    }

    pub(crate) fn os(op: &'static str, source: io::Error) -> Self {
        Error::Os { op, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfMemory {
                requested,
                available,
            } => {
                if *requested == usize::MAX {
                    write!(
                        f,
                        "out of shared memory: the requested size overflows usize \
                         ({available} bytes available); ask for fewer elements"
                    )
                } else {
                    write!(
                        f,
                        "out of shared memory: {requested} bytes requested, {available} \
                         available; create a larger heap with Heap::new, or raise \
                         SHAREDCTYPES_HEAP_SIZE for the default heap"
                    )
                }
            }
            Error::UnknownTypecode(c) => write!(
                f,
                "unknown typecode {c:?}; valid typecodes are \
                 'c' 'b' 'B' 'h' 'H' 'i' 'I' 'l' 'L' 'q' 'Q' 'f' 'd'"
            ),
            Error::LengthMismatch { expected, found } => write!(
                f,
                "length mismatch: the array has {expected} elements but the slice has \
                 {found}; pass a slice of exactly {expected} elements"
            ),
            Error::TooLong { len, capacity } => write!(
                f,
                "byte string too long: {len} bytes do not fit in a byte array of \
                 {capacity}; shorten it or allocate a larger array"
            ),
            Error::IndexOutOfRange { index, len } => write!(
                f,
                "index out of range: index {index} in an array of length {len}"
            ),
            Error::OwnerDied => f.write_str(
                "the lock's previous holder died while holding it; the shared data it \
                 protected may be inconsistent: check it, then continue",
            ),
            Error::AlreadyExists => f.write_str(
                "already exists: a heap or key of that name is taken; pick another name, \
                 open the existing one, or remove it with Heap::unlink",
            ),
            Error::NotFound => f.write_str(
                "not found: no heap or key of that name (a heap still being created \
                 counts as missing); check the name, or create it first",
            ),
            Error::InvalidName => f.write_str(
                "invalid name: a heap name is '/' followed by 1 to 255 bytes with no '/' \
                 or NUL, and not \".\" or \"..\" (for example \"/my-heap\"); a key \
                 published in a heap is 1 to 255 bytes",
            ),
            Error::InvalidHeap => f.write_str(
                "invalid heap: the shared-memory segment is not a sharedctypes heap, or \
                 it is truncated or corrupted; check the name, or unlink it and create it \
                 again",
            ),
            // Rebuilding would not help a type the directory cannot describe at all.
            Error::LayoutMismatch(what) if what.contains(UNDESCRIBABLE) => {
                write!(f, "layout too large: {what}")
            }
            Error::LayoutMismatch(what) => write!(
                f,
                "layout mismatch: {what}; rebuild both programs with the same type \
                 definition"
            ),
            Error::WrongHeap => f.write_str(
                "the handle's memory lives in another heap; publish it in the heap that \
                 allocated it",
            ),
            Error::AlignmentTooLarge { align, max } => write!(
                f,
                "alignment {align} is larger than the page size {max}, the largest a \
                 heap can honour; lower the type's #[repr(align)]"
            ),
            Error::ForeignPidNamespace => f.write_str(
                "the heap was created in another PID namespace, where this process's thread \
                 ids mean nothing, so its locks cannot work here; run both programs in one \
                 PID namespace (e.g. shareProcessNamespace in Kubernetes), or share only raw \
                 objects",
            ),
            Error::ForeignTimeNamespace => f.write_str(
                "the heap was created in another time namespace, where thread start times \
                 differ, so its locks cannot tell a live owner from a dead one here; run both \
                 programs in one time namespace, or share only raw objects",
            ),
            Error::WouldBlock => f.write_str(
                "the lock is held by another thread or process (or did not come free within \
                 the timeout); try again later, or wait with acquire()",
            ),
            Error::ChildFailed { pid, status } => {
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(101), _) => write!(
                        f,
                        "child process {pid} panicked (exit status 101); its panic message \
                         is on standard error"
                    ),
                    (Some(code), _) => write!(
                        f,
                        "child process {pid} failed with exit status {code}; an `Err` it \
                         returned is printed on standard error"
                    ),
                    (None, Some(sig)) => {
                        write!(f, "child process {pid} was killed by signal {sig}")
                    }
                    _ => write!(f, "child process {pid} failed: {status}"),
                }
            }
            Error::SemaphoreOverflow => f.write_str(
                "semaphore released too many times: its value would pass its limit \
                 (u32::MAX, or a BoundedSemaphore's initial value); nothing was changed",
            ),
            Error::BrokenBarrier => f.write_str(
                "the barrier is broken (aborted, reset, or a waiter timed out); call reset() \
                 to use it again",
            ),
            Error::InvalidParties { parties } => write!(
                f,
                "a barrier needs 1 to {} parties, not {parties}",
                crate::Barrier::MAX_PARTIES
            ),
            Error::Os { op, source } => write!(f, "{op} failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}
