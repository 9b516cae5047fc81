//! The crate's errors as Python exceptions, and the module's own exception classes.

use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyIndexError, PyKeyError, PyMemoryError,
    PyOSError, PyRuntimeError, PyUserWarning, PyValueError,
};
use pyo3::prelude::*;
use sharedctypes::{Error, NameKind};

create_exception!(
    sharedctypes_rs,
    InvalidHeapError,
    PyException,
    "A shared-memory segment that is not a valid sharedctypes heap: foreign, truncated or \
     corrupted (or a directory entry that names memory it may not)."
);
create_exception!(
    sharedctypes_rs,
    LayoutMismatchError,
    PyException,
    "A published object's type differs from the one this program expects; the message \
     says what differs, field by field."
);
create_exception!(
    sharedctypes_rs,
    OwnerDiedWarning,
    PyUserWarning,
    "A lock was taken over from a holder that died (was killed, crashed or exited) or \
     raised while holding it: the data it protects may be half-updated. Issued once, to \
     the acquirer that took the lock over; that acquirer holds the lock."
);

/// `threading.BrokenBarrierError`, Python's own (so `except BrokenBarrierError` works
/// for shared barriers too).
fn broken_barrier(py: Python<'_>) -> PyErr {
    match py
        .import("threading")
        .and_then(|t| t.getattr("BrokenBarrierError"))
    {
        Ok(cls) => PyErr::from_type(
            cls.downcast_into()
                .unwrap_or_else(|_| py.get_type::<PyRuntimeError>()),
            (),
        ),
        Err(e) => e,
    }
}

/// The Python exception for a crate error, with the crate's message.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
        Error::AlreadyExists {
            kind: NameKind::Heap,
            ..
        } => PyFileExistsError::new_err(msg),
        Error::NotFound {
            kind: NameKind::Heap,
            ..
        } => PyFileNotFoundError::new_err(msg),
        Error::NotFound { .. } => PyKeyError::new_err(msg),
        Error::IndexOutOfRange { .. } => PyIndexError::new_err(msg),
        Error::InvalidHeap => InvalidHeapError::new_err(msg),
        Error::LayoutMismatch(_) => LayoutMismatchError::new_err(msg),
        Error::BrokenBarrier => Python::with_gil(broken_barrier),
        Error::Os { .. } => PyOSError::new_err(msg),
        Error::AlreadyExists { .. }
        | Error::UnknownTypecode(_)
        | Error::LengthMismatch { .. }
        | Error::TooLong { .. }
        | Error::InvalidName { .. }
        | Error::InvalidHeapSize { .. }
        | Error::WrongHeap
        | Error::AlignmentTooLarge { .. }
        | Error::SemaphoreOverflow
        | Error::InvalidParties { .. } => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// `.map_err(err)?` on a crate `Result`.
pub fn err(e: Error) -> PyErr {
    to_py(e)
}
