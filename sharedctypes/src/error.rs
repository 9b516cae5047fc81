//! The crate's one error type.

use std::fmt;
use std::io;

/// Everything that can go wrong in this crate.
///
/// Bad input never changes shared state: when a call returns an `Err`, the heap, the
/// object and the lock are exactly as they were before the call. (One exception:
/// [`Heap::publish`](crate::Heap::publish) that loses a race for its key to another
/// process keeps its unlinked directory entry's bytes allocated.)
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
        /// Bytes still free in the heap (0 when the heap itself could not be created:
        /// the system refused the memory, the `/dev/shm` space, or the file-size limit
        /// `RLIMIT_FSIZE` — never a signal).
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
    AlreadyExists {
        /// The heap's name, or the key.
        name: String,
        /// Which of the two `name` is.
        kind: NameKind,
    },
    /// A named heap or a published key that does not exist (a heap still being created
    /// counts as missing).
    NotFound {
        /// The heap's name, or the key.
        name: String,
        /// Which of the two `name` is.
        kind: NameKind,
    },
    /// A heap name that is not `/` followed by 1–255 bytes without `/` or NUL (nor `.`
    /// or `..`), or a directory key that is not 1–255 bytes.
    InvalidName {
        /// The name or key as given.
        name: String,
        /// Which of the two `name` is.
        kind: NameKind,
        /// Which rule it breaks, e.g. "it does not start with '/'".
        reason: &'static str,
    },
    /// The [`SHAREDCTYPES_HEAP_SIZE`](crate::HEAP_SIZE_ENV) environment variable is not a
    /// size (or not UTF-8), so the default heap was not created.
    InvalidHeapSize {
        /// The variable's value (non-UTF-8 bytes replaced by `U+FFFD`).
        value: String,
    },
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
    /// A lock in a named heap created in another PID namespace (or where either side's
    /// namespace cannot be read): locks identify their owners by thread id, which means
    /// nothing across PID namespaces.
    ForeignPidNamespace,
    /// A lock in a named heap created in another time namespace (or where either side's
    /// namespace cannot be read): lock owners are told apart from strangers with a
    /// reused thread id by their start time, which a time namespace shifts, so such
    /// locks could be taken over while their owner is alive.
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

/// What the name in an [`Error::AlreadyExists`], [`Error::NotFound`] or
/// [`Error::InvalidName`] names.
///
/// ```
/// use sharedctypes::{Error, Heap, NameKind, RawValue};
///
/// let name = format!("/doc-name-kind-{}", std::process::id());
/// let heap = Heap::create(&name, 4096)?;
/// let err = heap.lookup::<RawValue<u8>>("nothing").unwrap_err();
/// let Error::NotFound { name: key, kind: NameKind::Key { heap: Some(in_heap) } } = &err else {
///     panic!("{err:?}")
/// };
/// assert_eq!((key.as_str(), in_heap.as_str()), ("nothing", name.as_str()));
/// assert!(err.to_string().starts_with(&format!("key \"nothing\" not found in heap {name:?}")));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameKind {
    /// The name of a named heap ([`Heap::create`](crate::Heap::create),
    /// [`open`](crate::Heap::open), [`unlink`](crate::Heap::unlink)).
    Heap,
    /// A key in a heap's directory ([`Heap::publish`](crate::Heap::publish),
    /// [`lookup`](crate::Heap::lookup)).
    Key {
        /// The heap's name; `None` for an anonymous heap.
        heap: Option<String>,
    },
}

impl NameKind {
    /// `in heap "/jobs"`, `in an anonymous heap`.
    fn where_key(heap: &Option<String>) -> String {
        match heap {
            Some(h) => format!("in heap {h:?}"),
            None => "in an anonymous heap".to_owned(),
        }
    }
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

    pub(crate) fn heap_not_found(name: &str) -> Self {
        Error::NotFound {
            name: name.to_owned(),
            kind: NameKind::Heap,
        }
    }

    pub(crate) fn invalid_heap_name(name: &str, reason: &'static str) -> Self {
        Error::InvalidName {
            name: name.to_owned(),
            kind: NameKind::Heap,
            reason,
        }
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
                         SHAREDCTYPES_HEAP_SIZE for the default heap (when a heap itself \
                         cannot be created, the system refused the memory: check the \
                         file-size limit `ulimit -f`, the space in /dev/shm, and the \
                         address-space limit `ulimit -v`)"
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
            Error::AlreadyExists {
                name,
                kind: NameKind::Heap,
            } => write!(
                f,
                "heap {name:?} already exists; pick another name, open it with Heap::open, \
                 or remove it with Heap::unlink (a heap whose creator died stays until \
                 removed: see the `heaps` example)"
            ),
            Error::AlreadyExists {
                name,
                kind: NameKind::Key { heap },
            } => write!(
                f,
                "key {name:?} already exists {}; publish under another key",
                NameKind::where_key(heap)
            ),
            Error::NotFound {
                name,
                kind: NameKind::Heap,
            } => write!(
                f,
                "heap {name:?} not found (a heap still being created counts as missing); \
                 check the name, or create it first with Heap::create"
            ),
            Error::NotFound {
                name,
                kind: NameKind::Key { heap },
            } => write!(
                f,
                "key {name:?} not found {}; check the key, or publish it first",
                NameKind::where_key(heap)
            ),
            Error::InvalidName {
                name,
                kind: NameKind::Heap,
                reason,
            } => write!(
                f,
                "invalid heap name {name:?}: {reason}; a heap name is '/' followed by 1 to \
                 255 bytes with no '/' or NUL, and not \".\" or \"..\" (for example \
                 \"/my-heap\")"
            ),
            Error::InvalidName {
                name,
                kind: NameKind::Key { heap },
                reason,
            } => write!(
                f,
                "invalid key {name:?} {}: {reason}; a key is 1 to {} bytes",
                NameKind::where_key(heap),
                crate::named::MAX_KEY_LEN
            ),
            Error::InvalidHeapSize { value } => write!(
                f,
                "{}={value:?} is not a size; use bytes or a number with a K, M, G or T \
                 suffix (e.g. 16G), or unset it for the default",
                crate::heap::HEAP_SIZE_ENV
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
                "the heap was created in another PID namespace (or one side's namespace \
                 cannot be read: no /proc), where this process's thread ids mean nothing, \
                 so its locks cannot work here; run both programs in one PID namespace \
                 (e.g. shareProcessNamespace in Kubernetes) with /proc mounted, or share \
                 only raw objects",
            ),
            Error::ForeignTimeNamespace => f.write_str(
                "the heap was created in another time namespace (or one side's namespace \
                 cannot be read: no /proc), where thread start times differ, so its locks \
                 cannot tell a live owner from a dead one here; run both programs in one \
                 time namespace with /proc mounted, or share only raw objects",
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
