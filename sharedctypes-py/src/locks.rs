//! Locks and the coordination objects, Python's way: `acquire()` and `release()` as
//! separate calls, `with`, `OwnerDiedWarning` for a lock taken over from a dead
//! holder, and the GIL released while waiting.
//!
//! The crate's locks are released by dropping their guard, in the thread that took
//! it. A Python `acquire()` returns before the matching `release()`, so the guard is
//! kept in a thread-local list until then ([`HELD`]); `release()` drops the most recent
//! guard this thread holds of that lock. A lock is therefore released by the thread
//! that acquired it (as an `RLock` always is in Python); releasing one this thread does
//! not hold is a `RuntimeError`.

use std::cell::RefCell;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use sharedctypes::erased::{try_lock_quick, try_rlock_quick, AnyLock};
use sharedctypes::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard, RLock, RLockGuard, Semaphore,
    TryLockError,
};

use crate::errors::{err, OwnerDiedWarning};

/// Longest a wait sleeps without the GIL before it checks for signals (so that Ctrl-C
/// interrupts a wait for a lock, an event or a semaphore).
const CHUNK: Duration = Duration::from_millis(50);

/// A value made inside [`Python::allow_threads`] and handed back out of it (a guard,
/// which is not `Send`).
pub struct SameThread<T>(pub T);

// SAFETY: `allow_threads` runs its closure on the calling thread and returns on it, so
// a value made or used inside the closure never reaches another thread.
unsafe impl<T> Send for SameThread<T> {}

impl<T> SameThread<T> {
    fn into_inner(self) -> T {
        self.0
    }
}

/// A `Lock` or an `RLock` of the crate.
pub struct LockCore(pub AnyLock);

/// A held `LockCore`.
pub enum Guard<'a> {
    Lock(LockGuard<'a>),
    RLock(RLockGuard<'a>),
}

impl PartialEq for LockCore {
    fn eq(&self, other: &LockCore) -> bool {
        self.0 == other.0
    }
}

/// How long an acquisition may wait.
#[derive(Clone, Copy)]
pub enum Wait {
    /// Not at all (`blocking=False`).
    No,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
}

impl Wait {
    /// Python's `blocking` and `timeout` (`None` or negative: forever).
    pub fn from_args(blocking: bool, timeout: Option<f64>) -> PyResult<Wait> {
        if !blocking {
            return Ok(Wait::No);
        }
        Ok(Wait::Until(deadline(timeout)?))
    }
}

/// The deadline `timeout` seconds from now; `None` (forever) for `None` or a negative
/// timeout.
pub fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t < 0.0 => Ok(None),
        Some(t) if t.is_nan() => Err(PyValueError::new_err("timeout is NaN")),
        Some(t) => Ok(Some(
            Instant::now() + Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX / 4),
        )),
    }
}

/// The next stretch to wait: up to [`CHUNK`], and not past `deadline`; `None` once it
/// has passed.
fn next_chunk(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(CHUNK),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (!left.is_zero()).then(|| left.min(CHUNK))
        }
    }
}

/// Issues [`OwnerDiedWarning`].
pub fn warn_owner_died(py: Python<'_>) -> PyResult<()> {
    PyErr::warn(
        py,
        &py.get_type::<OwnerDiedWarning>(),
        c"the previous holder of this lock died (or raised) while holding it: the lock is \
          yours now, but the data it protects may be half-updated",
        1,
    )
}

impl LockCore {
    fn is_lock(&self) -> bool {
        matches!(self.0, AnyLock::Lock(_))
    }

    /// Without waiting and without a system call: free, or an RLock this thread holds.
    #[inline]
    fn quick(&self) -> Option<Guard<'_>> {
        match &self.0 {
            AnyLock::Lock(l) => try_lock_quick(l).map(Guard::Lock),
            AnyLock::RLock(l) => try_rlock_quick(l).map(Guard::RLock),
        }
    }

    /// One attempt, waiting up to `timeout` (`None`: not at all, but a dead holder is
    /// taken over): the guard and whether its holder died, or `None` if busy.
    fn attempt(&self, timeout: Option<Duration>) -> Option<(Guard<'_>, bool)> {
        fn done<'a, G>(
            r: Result<G, TryLockError<G>>,
            wrap: fn(G) -> Guard<'a>,
        ) -> Option<(Guard<'a>, bool)> {
            match r {
                Ok(g) => Some((wrap(g), false)),
                Err(TryLockError::OwnerDied(d)) => Some((wrap(d.into_inner()), true)),
                Err(TryLockError::WouldBlock) => None,
            }
        }
        match (&self.0, timeout) {
            (AnyLock::Lock(l), None) => done(l.try_acquire(), Guard::Lock),
            (AnyLock::Lock(l), Some(t)) => done(l.acquire_timeout(t), Guard::Lock),
            (AnyLock::RLock(l), None) => done(l.try_acquire(), Guard::RLock),
            (AnyLock::RLock(l), Some(t)) => done(l.acquire_timeout(t), Guard::RLock),
        }
    }

    /// Waits for the lock without a deadline.
    fn wait_forever(&self) -> (Guard<'_>, bool) {
        match &self.0 {
            AnyLock::Lock(l) => match l.acquire() {
                Ok(g) => (Guard::Lock(g), false),
                Err(d) => (Guard::Lock(d.into_inner()), true),
            },
            AnyLock::RLock(l) => match l.acquire() {
                Ok(g) => (Guard::RLock(g), false),
                Err(d) => (Guard::RLock(d.into_inner()), true),
            },
        }
    }

    /// Takes the lock as `wait` allows: the guard and whether its last holder died;
    /// `None` if it was not taken in time. The GIL is released while waiting.
    pub fn take(&self, py: Python<'_>, wait: Wait) -> PyResult<Option<(Guard<'_>, bool)>> {
        if let Some(g) = self.quick() {
            return Ok(Some((g, false)));
        }
        let deadline = match wait {
            Wait::No => return Ok(self.attempt(None)),
            Wait::Until(d) => d,
        };
        if deadline.is_none() && self.is_lock() && held_here(self) {
            return Err(PyRuntimeError::new_err(
                "this thread already holds this Lock, which is not re-entrant: waiting for \
                 it would never end (use an RLock, or release it first)",
            ));
        }
        if deadline.is_none() {
            // Without a deadline, the crate's own wait: it looks at /proc only after a
            // check interval, where a wait with a deadline (however far) looks at once,
            // which would cost every contended acquisition a read of /proc. Such a wait
            // is not interrupted by signals (Ctrl-C is seen once the lock is taken).
            let got = py
                .allow_threads(|| SameThread(self.wait_forever()))
                .into_inner();
            py.check_signals()?;
            return Ok(Some(got));
        }
        loop {
            let Some(chunk) = next_chunk(deadline) else {
                return Ok(None);
            };
            let got = py
                .allow_threads(|| SameThread(self.attempt(Some(chunk))))
                .into_inner();
            if got.is_some() {
                return Ok(got);
            }
            py.check_signals()?;
        }
    }

    /// Takes the lock for one access (a `Value`'s `.value`, an `Array`'s item),
    /// warning if its holder died.
    #[inline]
    pub fn lock_for_access(&self, py: Python<'_>) -> PyResult<Guard<'_>> {
        if let Some(g) = self.quick() {
            return Ok(g);
        }
        self.lock_slow(py)
    }

    #[cold]
    fn lock_slow(&self, py: Python<'_>) -> PyResult<Guard<'_>> {
        let (g, died) = self
            .take(py, Wait::Until(None))?
            .ok_or_else(|| PyRuntimeError::new_err("a lock wait without a deadline ended"))?;
        if died {
            warn_owner_died(py)?;
        }
        Ok(g)
    }
}

// ---------------------------------------------------------------------------------------
// Guards held between acquire() and release()
// ---------------------------------------------------------------------------------------

/// A guard held by this thread for Python, with the lock it borrows.
struct Held {
    /// Declared first, so dropped first: it borrows from `core`'s heap mapping.
    guard: Guard<'static>,
    core: Arc<LockCore>,
}

thread_local! {
    /// The guards this thread holds for Python, oldest first.
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// Forgets (without releasing) the guards a forked child inherits from the thread that
/// forked: the locks are the parent's.
extern "C" fn forget_inherited_guards() {
    let _ = HELD.try_with(|h| {
        if let Ok(mut h) = h.try_borrow_mut() {
            for held in h.drain(..) {
                // Dropping would be harmless once the crate has noticed the fork, but
                // this handler may run before the crate's own: never release here.
                std::mem::forget(held);
            }
        }
    });
}

static ATFORK: Once = Once::new();

/// Registers [`forget_inherited_guards`] (once per process).
pub fn register_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: registers a plain function with no captured state; the child handler
        // only touches this thread's thread-local list.
        unsafe { libc::pthread_atfork(None, None, Some(forget_inherited_guards)) };
    });
}

/// Keeps `guard` of `core` until [`release_held`].
fn hold(core: &Arc<LockCore>, guard: Guard<'_>) {
    // SAFETY: the guard borrows the lock's state in its heap's mapping, which `core`
    // keeps mapped; `Held` keeps a clone of `core` and drops the guard first. The
    // lifetime is only widened for storage: the guard never outlives `core`.
    let guard = unsafe { std::mem::transmute::<Guard<'_>, Guard<'static>>(guard) };
    HELD.with(|h| {
        h.borrow_mut().push(Held {
            guard,
            core: core.clone(),
        })
    });
}

/// Takes the most recent guard this thread holds of `core` out of the list.
fn take_held(core: &LockCore) -> Option<Held> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let i = h.iter().rposition(|held| *held.core == *core)?;
        Some(h.remove(i))
    })
}

/// Whether this thread holds `core` for Python.
fn held_here(core: &LockCore) -> bool {
    HELD.with(|h| h.borrow().iter().any(|held| *held.core == *core))
}

/// Python's `acquire(blocking, timeout)`: true if taken (warning if its holder died).
pub fn acquire(
    py: Python<'_>,
    core: &Arc<LockCore>,
    blocking: bool,
    timeout: Option<f64>,
) -> PyResult<bool> {
    let Some((guard, died)) = core.take(py, Wait::from_args(blocking, timeout)?)? else {
        return Ok(false);
    };
    if died {
        if let Err(e) = warn_owner_died(py) {
            // Warnings are errors here: the error is the report; the lock is not kept.
            drop(guard);
            return Err(e);
        }
    }
    hold(core, guard);
    Ok(true)
}

/// Python's `release()`.
pub fn release(core: &LockCore) -> PyResult<()> {
    match take_held(core) {
        Some(held) => {
            drop(held);
            Ok(())
        }
        None => Err(PyRuntimeError::new_err(
            "cannot release a lock this thread does not hold (a lock is released by the \
             thread that acquired it)",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Lock and RLock
// ---------------------------------------------------------------------------------------

/// Generates a Python lock class over [`LockCore`].
macro_rules! lock_class {
    ($name:ident, $pyname:literal, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(module = "sharedctypes_rs", name = $pyname, frozen)]
        pub struct $name {
            pub core: Arc<LockCore>,
        }

        #[pymethods]
        impl $name {
            /// Takes the lock: waits (without the GIL) as long as `timeout` allows
            /// (`None` or negative: forever), or not at all with `blocking=False`.
            /// True if taken. A lock whose holder died is taken over, with an
            /// `OwnerDiedWarning`.
            #[pyo3(signature = (blocking = true, timeout = None))]
            fn acquire(
                &self,
                py: Python<'_>,
                blocking: bool,
                timeout: Option<f64>,
            ) -> PyResult<bool> {
                acquire(py, &self.core, blocking, timeout)
            }

            /// Releases the lock, which this thread must hold.
            fn release(&self) -> PyResult<()> {
                release(&self.core)
            }

            fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
                acquire(py, &self.core, true, None)
            }

            #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]
            fn __exit__(
                &self,
                _exc_type: Option<&Bound<'_, PyAny>>,
                _exc: Option<&Bound<'_, PyAny>>,
                _tb: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<bool> {
                release(&self.core)?;
                Ok(false)
            }

            fn __richcmp__(
                &self,
                other: &Bound<'_, PyAny>,
                op: CompareOp,
                py: Python<'_>,
            ) -> PyObject {
                let same = other
                    .downcast::<$name>()
                    .map(|o| *o.get().core == *self.core)
                    .ok();
                match (op, same) {
                    (CompareOp::Eq, Some(s)) => {
                        s.into_pyobject(py).unwrap().to_owned().into_any().unbind()
                    }
                    (CompareOp::Ne, Some(s)) => (!s)
                        .into_pyobject(py)
                        .unwrap()
                        .to_owned()
                        .into_any()
                        .unbind(),
                    _ => py.NotImplemented(),
                }
            }

            fn __repr__(&self) -> String {
                match &self.core.0 {
                    AnyLock::Lock(l) => format!("<sharedctypes_rs.{l:?}>"),
                    AnyLock::RLock(l) => format!("<sharedctypes_rs.{l:?}>"),
                }
            }
        }
    };
}

lock_class!(
    PyLock,
    "Lock",
    "A process-shared lock (not recursive) that survives its holder's death."
);
lock_class!(
    PyRLock,
    "RLock",
    "A process-shared recursive lock that survives its holder's death."
);

impl PyLock {
    pub fn new(lock: Lock) -> PyLock {
        PyLock {
            core: Arc::new(LockCore(AnyLock::Lock(lock))),
        }
    }
}

impl PyRLock {
    pub fn new(lock: RLock) -> PyRLock {
        PyRLock {
            core: Arc::new(LockCore(AnyLock::RLock(lock))),
        }
    }
}

/// A Python `Lock` or `RLock` object of this module, as a lock.
pub fn lock_of(obj: &Bound<'_, PyAny>) -> Option<Arc<LockCore>> {
    if let Ok(l) = obj.downcast::<PyLock>() {
        return Some(l.get().core.clone());
    }
    if let Ok(l) = obj.downcast::<PyRLock>() {
        return Some(l.get().core.clone());
    }
    None
}

/// A Python object for `lock`.
pub fn lock_object(py: Python<'_>, lock: AnyLock) -> PyResult<Py<PyAny>> {
    Ok(match lock {
        AnyLock::Lock(l) => Py::new(py, PyLock::new(l))?.into_any(),
        AnyLock::RLock(l) => Py::new(py, PyRLock::new(l))?.into_any(),
    })
}

// ---------------------------------------------------------------------------------------
// Condition
// ---------------------------------------------------------------------------------------

/// A process-shared condition variable with its lock (Python's `Condition`): `with
/// cond:` takes the lock; `wait()` releases it while waiting (an `RLock` at any depth)
/// and takes it back.
#[pyclass(module = "sharedctypes_rs", name = "Condition", frozen)]
pub struct PyCondition {
    pub cond: Condition,
    /// The lock object (a `Lock` or `RLock` of this module); `None` for a condition
    /// looked up without one.
    pub lock: Option<Py<PyAny>>,
}

impl PyCondition {
    fn core(&self, py: Python<'_>) -> PyResult<Arc<LockCore>> {
        self.lock
            .as_ref()
            .and_then(|l| lock_of(l.bind(py)))
            .ok_or_else(|| {
                PyRuntimeError::new_err(
                    "this Condition has no lock: a Condition published from Rust is looked \
                     up with the lock published under \"<key>.lock\", if any",
                )
            })
    }

    /// Waits with the most recent guard this thread holds of the lock; true unless
    /// it timed out.
    fn wait_held(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let core = self.core(py)?;
        let held = take_held(&core).ok_or_else(|| {
            PyRuntimeError::new_err(
                "cannot wait on a Condition whose lock this thread does not hold",
            )
        })?;
        let Held { guard, core } = held;
        let deadline = deadline(timeout)?;
        let cond = &self.cond;
        let guard = SameThread(guard);
        let (guard, died, notified) = py
            .allow_threads(move || {
                let guard = guard.into_inner();
                macro_rules! wait {
                    ($g:expr, $wrap:path) => {{
                        let r = match deadline {
                            None => cond.wait($g).map(|g| (g, true)).map_err(|d| {
                                let g = d.into_inner();
                                (g, true)
                            }),
                            Some(d) => {
                                let t = d.saturating_duration_since(Instant::now());
                                cond.wait_timeout($g, t)
                                    .map(|(g, r)| (g, !r.timed_out()))
                                    .map_err(|d| {
                                        let (g, r) = d.into_inner();
                                        (g, !r.timed_out())
                                    })
                            }
                        };
                        match r {
                            Ok((g, n)) => ($wrap(g), false, n),
                            Err((g, n)) => ($wrap(g), true, n),
                        }
                    }};
                }
                SameThread(match guard {
                    Guard::Lock(g) => wait!(g, Guard::Lock),
                    Guard::RLock(g) => wait!(g, Guard::RLock),
                })
            })
            .into_inner();
        HELD.with(|h| h.borrow_mut().push(Held { guard, core }));
        if died {
            warn_owner_died(py)?;
        }
        Ok(notified)
    }
}

#[pymethods]
impl PyCondition {
    /// Takes the condition's lock (see `Lock.acquire`).
    #[pyo3(signature = (blocking = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: Option<f64>) -> PyResult<bool> {
        acquire(py, &self.core(py)?, blocking, timeout)
    }

    /// Releases the condition's lock.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        release(&*self.core(py)?)
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        acquire(py, &self.core(py)?, true, None)
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        release(&*self.core(py)?)?;
        Ok(false)
    }

    /// Releases the lock, waits until notified (or `timeout` seconds pass), takes the
    /// lock back. False if it timed out. The lock must be held by this thread.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        self.wait_held(py, timeout)
    }

    /// Waits until `predicate()` is true (or `timeout` seconds pass); returns the
    /// predicate's last value.
    #[pyo3(signature = (predicate, timeout = None))]
    fn wait_for(
        &self,
        py: Python<'_>,
        predicate: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<PyObject> {
        let end = deadline(timeout)?;
        loop {
            let result = predicate.call0()?;
            if result.is_truthy()? {
                return Ok(result.unbind());
            }
            let left = match end {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(result.unbind());
                    }
                    Some(left.as_secs_f64())
                }
            };
            self.wait_held(py, left)?;
        }
    }

    /// Wakes at most `n` of the processes and threads waiting now.
    #[pyo3(signature = (n = 1))]
    fn notify(&self, n: usize) {
        self.cond.notify(n);
    }

    /// Wakes everyone waiting now.
    fn notify_all(&self) {
        self.cond.notify_all();
    }

    /// The condition's lock.
    fn get_lock(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.lock.as_ref().map(|l| l.clone_ref(py))
    }
}

// ---------------------------------------------------------------------------------------
// Event, semaphores, barrier
// ---------------------------------------------------------------------------------------

/// Repeats `attempt` (given up to [`CHUNK`] each time, without the GIL) until it gives
/// `Some` or `deadline` passes; checks for signals between attempts.
fn wait_loop<T>(
    py: Python<'_>,
    deadline: Option<Instant>,
    attempt: impl Fn(Duration) -> Option<T> + Sync,
) -> PyResult<Option<T>>
where
    T: Send,
{
    loop {
        let Some(chunk) = next_chunk(deadline) else {
            return Ok(None);
        };
        if let Some(t) = py.allow_threads(|| attempt(chunk)) {
            return Ok(Some(t));
        }
        py.check_signals()?;
    }
}

/// A process-shared event (Python's `Event`).
#[pyclass(module = "sharedctypes_rs", name = "Event", frozen)]
pub struct PyEvent {
    pub event: Event,
}

#[pymethods]
impl PyEvent {
    /// Sets the flag and wakes every waiter.
    fn set(&self) {
        self.event.set();
    }

    /// Clears the flag.
    fn clear(&self) {
        self.event.clear();
    }

    /// Whether the flag is set.
    fn is_set(&self) -> bool {
        self.event.is_set()
    }

    /// Waits (without the GIL) until the flag is set or `timeout` seconds pass; the
    /// flag.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if self.event.is_set() {
            return Ok(true);
        }
        let ev = &self.event;
        let r = wait_loop(py, deadline(timeout)?, |t| ev.wait_timeout(t).then_some(()))?;
        Ok(r.is_some())
    }
}

/// Generates a semaphore class.
macro_rules! semaphore_class {
    ($name:ident, $pyname:literal, $ty:ty, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(module = "sharedctypes_rs", name = $pyname, frozen)]
        pub struct $name {
            pub sem: $ty,
        }

        #[pymethods]
        impl $name {
            /// Takes a permit: waits (without the GIL) as long as `timeout` allows
            /// (`None`: forever), or not at all with `blocking=False`. True if taken.
            #[pyo3(signature = (blocking = true, timeout = None))]
            fn acquire(
                &self,
                py: Python<'_>,
                blocking: bool,
                timeout: Option<f64>,
            ) -> PyResult<bool> {
                if self.sem.try_acquire() {
                    return Ok(true);
                }
                if !blocking {
                    return Ok(false);
                }
                let sem = &self.sem;
                let r = wait_loop(py, deadline(timeout)?, |t| {
                    sem.acquire_timeout(t).then_some(())
                })?;
                Ok(r.is_some())
            }

            /// Gives `n` permits back.
            #[pyo3(signature = (n = 1))]
            fn release(&self, n: usize) -> PyResult<()> {
                for _ in 0..n {
                    self.sem.release().map_err(err)?;
                }
                Ok(())
            }

            /// The number of permits free now.
            fn get_value(&self) -> u32 {
                self.sem.value()
            }

            fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
                self.acquire(py, true, None)
            }

            #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]
            fn __exit__(
                &self,
                _exc_type: Option<&Bound<'_, PyAny>>,
                _exc: Option<&Bound<'_, PyAny>>,
                _tb: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<bool> {
                self.release(1)?;
                Ok(false)
            }
        }
    };
}

semaphore_class!(
    PySemaphore,
    "Semaphore",
    Semaphore,
    "A process-shared counting semaphore (Python's `Semaphore`)."
);
semaphore_class!(
    PyBoundedSemaphore,
    "BoundedSemaphore",
    BoundedSemaphore,
    "A semaphore whose value never passes its initial one: a release too many is a \
     `ValueError` (Python's `BoundedSemaphore`)."
);

/// A process-shared barrier (Python's `Barrier`, without `action`).
#[pyclass(module = "sharedctypes_rs", name = "Barrier", frozen)]
pub struct PyBarrier {
    pub barrier: Barrier,
    /// The default timeout of `wait`, in seconds.
    pub timeout: Option<f64>,
}

#[pymethods]
impl PyBarrier {
    /// Waits (without the GIL) until `parties` processes or threads wait; returns this
    /// waiter's index, 0 to parties - 1. `threading.BrokenBarrierError` if the
    /// barrier is or gets broken (a timeout breaks it).
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        let timeout = timeout.or(self.timeout);
        let end = deadline(timeout)?;
        let b = &self.barrier;
        let r = py.allow_threads(|| match end {
            None => b.wait(),
            Some(d) => b.wait_timeout(d.saturating_duration_since(Instant::now())),
        });
        r.map(|r| r.index()).map_err(err)
    }

    /// Breaks the barrier: every waiter, now and later, gets `BrokenBarrierError`.
    fn abort(&self) {
        self.barrier.abort();
    }

    /// Mends the barrier (waiters now get `BrokenBarrierError`).
    fn reset(&self) {
        self.barrier.reset();
    }

    /// The number of parties.
    #[getter]
    fn parties(&self) -> usize {
        self.barrier.parties()
    }

    /// The number waiting now.
    #[getter]
    fn n_waiting(&self) -> usize {
        self.barrier.n_waiting()
    }

    /// Whether the barrier is broken.
    #[getter]
    fn broken(&self) -> bool {
        self.barrier.is_broken()
    }
}
