//! `Heap`: named or anonymous shared memory, Python's `sharedctypes` constructors on
//! it, and `publish`/`lookup`.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyTuple};
use sharedctypes::erased::{self, AnyLock, Handle, Object};
use sharedctypes::{Barrier, BoundedSemaphore, Condition, Event, Heap, Lock, RLock, Semaphore};

use crate::errors::err;
use crate::locks::{
    lock_object, lock_of, LockCore, PyBarrier, PyBoundedSemaphore, PyCondition, PyEvent, PyLock,
    PyRLock, PySemaphore,
};
use crate::objects::{store, Array, RawArray, RawValue, Value};
use crate::types::{self, ElemKind, ElemType};

/// The key a `Condition`'s lock is published under, beside the condition's own.
fn lock_key(key: &str) -> String {
    format!("{key}.lock")
}

/// A region of shared memory that objects are allocated in: anonymous (`Heap(size)`,
/// shared with forked children) or named (`Heap.create`, `Heap.open`: shared with any
/// process, Rust programs included, through `publish` and `lookup`).
#[pyclass(module = "sharedctypes_rs", name = "Heap", frozen)]
pub struct PyHeap {
    pub heap: Heap,
}

/// A raw value of `ty` in `heap`, initialised Python's way from `args`: one value, or
/// (a struct, a `ctypes` array type) its fields or elements in order.
fn new_raw_value(
    py: Python<'_>,
    heap: &Heap,
    ty: Arc<ElemType>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<RawValue> {
    let mem = Arc::new(Object::value_in(heap, ty.layout.clone()).map_err(err)?);
    match &ty.kind {
        ElemKind::Struct(_) => {
            if !args.is_empty() {
                store(&mem, 0, &ty, args.as_any())?;
            }
        }
        ElemKind::Array { elem, len } => {
            if args.len() > *len {
                return Err(PyTypeError::new_err(format!(
                    "too many initializers: {} for an array of {len}",
                    args.len()
                )));
            }
            for (i, a) in args.iter().enumerate() {
                store(&mem, i * elem.size(), elem, &a)?;
            }
        }
        ElemKind::Prim { .. } => match args.len() {
            0 => {}
            1 => store(&mem, 0, &ty, &args.get_item(0)?)?,
            n => {
                return Err(PyTypeError::new_err(format!(
                    "a value of a simple type takes one initializer, not {n}"
                )))
            }
        },
    }
    let _ = py;
    Ok(RawValue { mem, ty })
}

/// A raw array of `ty` in `heap`: `init` is a size (zeroed) or a sequence of initial
/// elements (`bytes` for a byte array).
fn new_raw_array(heap: &Heap, ty: Arc<ElemType>, init: &Bound<'_, PyAny>) -> PyResult<RawArray> {
    let new = |len: usize| -> PyResult<Arc<Object>> {
        Ok(Arc::new(
            Object::array_in(heap, ty.layout.clone(), len).map_err(err)?,
        ))
    };
    if init.is_instance_of::<PyInt>() && !init.is_instance_of::<PyBool>() {
        let len: isize = init.extract()?;
        let len = usize::try_from(len).map_err(|_| {
            PyValueError::new_err(format!("an array size cannot be negative: {len}"))
        })?;
        return RawArray::view(new(len)?, 0, ty, len, true);
    }
    if let Ok(b) = init.downcast::<PyBytes>() {
        if ty.is_byte() {
            let bytes = b.as_bytes();
            let mem = new(bytes.len())?;
            let cells = mem
                .block()
                .cells::<u8>(0, bytes.len())
                .ok_or_else(|| PyValueError::new_err("a byte array of the wrong size"))?;
            erased::set_bytes_raw(cells, bytes).map_err(err)?;
            return RawArray::view(mem, 0, ty, bytes.len(), true);
        }
    }
    let items = init
        .try_iter()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "size_or_initializer must be an int or a sequence, not {}",
                init.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
        .collect::<PyResult<Vec<_>>>()?;
    let mem = new(items.len())?;
    for (i, item) in items.iter().enumerate() {
        store(&mem, i * ty.size(), &ty, item)?;
    }
    RawArray::view(mem, 0, ty, items.len(), true)
}

/// Python's `lock` argument: `True` or `None` → a fresh `RLock` in `heap`; `False` →
/// no lock; a `Lock` or `RLock` of this module → that lock.
fn lock_arg(
    py: Python<'_>,
    heap: &Heap,
    lock: &Bound<'_, PyAny>,
) -> PyResult<Option<(Py<PyAny>, Arc<LockCore>)>> {
    if lock.is_none() || lock.is(PyBool::new(py, true)) {
        let obj = Py::new(py, PyRLock::new(RLock::new_in(heap).map_err(err)?))?;
        let core = obj.get().core.clone();
        return Ok(Some((obj.into_any(), core)));
    }
    if lock.is(PyBool::new(py, false)) {
        return Ok(None);
    }
    match lock_of(lock) {
        Some(core) => Ok(Some((lock.clone().unbind(), core))),
        None => Err(PyTypeError::new_err(format!(
            "lock must be True, False, None, or a Lock or RLock of sharedctypes_rs, not {}",
            lock.repr()?
        ))),
    }
}

impl PyHeap {
    fn wrap_lookup(&self, py: Python<'_>, key: &str, h: Handle) -> PyResult<Py<PyAny>> {
        Ok(match h {
            Handle::Raw(o) => raw_object(py, o)?,
            Handle::Synchronized(o, lock) => {
                let is_array = o.is_array();
                let raw = raw_object(py, o)?;
                let core = Arc::new(LockCore(lock.clone()));
                let lock = match lock {
                    AnyLock::Lock(_) => Py::new(py, PyLock { core: core.clone() })?.into_any(),
                    AnyLock::RLock(_) => Py::new(py, PyRLock { core: core.clone() })?.into_any(),
                };
                if is_array {
                    let raw = raw.bind(py).downcast::<RawArray>()?.clone().unbind();
                    Py::new(py, Array { raw, lock, core })?.into_any()
                } else {
                    let raw = raw.bind(py).downcast::<RawValue>()?.clone().unbind();
                    Py::new(py, Value { raw, lock, core })?.into_any()
                }
            }
            Handle::Lock(l) => Py::new(py, PyLock::new(l))?.into_any(),
            Handle::RLock(l) => Py::new(py, PyRLock::new(l))?.into_any(),
            Handle::Event(event) => Py::new(py, PyEvent { event })?.into_any(),
            Handle::Semaphore(sem) => Py::new(py, PySemaphore { sem })?.into_any(),
            Handle::BoundedSemaphore(sem) => Py::new(py, PyBoundedSemaphore { sem })?.into_any(),
            Handle::Barrier(barrier) => Py::new(
                py,
                PyBarrier {
                    barrier,
                    timeout: None,
                },
            )?
            .into_any(),
            Handle::Condition(cond) => {
                let lock = match erased::lookup(&self.heap, &lock_key(key)) {
                    Ok(Handle::Lock(l)) => Some(lock_object(py, AnyLock::Lock(l))?),
                    Ok(Handle::RLock(l)) => Some(lock_object(py, AnyLock::RLock(l))?),
                    _ => None,
                };
                Py::new(py, PyCondition { cond, lock })?.into_any()
            }
        })
    }
}

/// A Python raw object for an object found in a heap.
fn raw_object(py: Python<'_>, o: Object) -> PyResult<Py<PyAny>> {
    let ty = types::from_layout(py, o.layout())?;
    let is_array = o.is_array();
    let len = o.len();
    let mem = Arc::new(o);
    Ok(if is_array {
        Py::new(py, RawArray::view(mem, 0, ty, len, true)?)?.into_any()
    } else {
        Py::new(py, RawValue { mem, ty })?.into_any()
    })
}

/// The handle a Python object of this module publishes as.
fn handle_of(obj: &Bound<'_, PyAny>) -> PyResult<Handle> {
    let whole = |a: &RawArray| -> PyResult<()> {
        if a.whole {
            Ok(())
        } else {
            Err(PyValueError::new_err(
                "only whole objects can be published, not a field of one",
            ))
        }
    };
    if let Ok(v) = obj.downcast::<RawValue>() {
        return Ok(Handle::Raw((*v.get().mem).clone()));
    }
    if let Ok(a) = obj.downcast::<RawArray>() {
        whole(a.get())?;
        return Ok(Handle::Raw((*a.get().mem).clone()));
    }
    if let Ok(v) = obj.downcast::<Value>() {
        let v = v.get();
        return Ok(Handle::Synchronized(
            (*v.raw.get().mem).clone(),
            v.core.0.clone(),
        ));
    }
    if let Ok(a) = obj.downcast::<Array>() {
        let a = a.get();
        whole(a.raw.get())?;
        return Ok(Handle::Synchronized(
            (*a.raw.get().mem).clone(),
            a.core.0.clone(),
        ));
    }
    if let Some(core) = lock_of(obj) {
        return Ok(match &core.0 {
            AnyLock::Lock(l) => Handle::Lock(l.clone()),
            AnyLock::RLock(l) => Handle::RLock(l.clone()),
        });
    }
    if let Ok(e) = obj.downcast::<PyEvent>() {
        return Ok(Handle::Event(e.get().event.clone()));
    }
    if let Ok(s) = obj.downcast::<PySemaphore>() {
        return Ok(Handle::Semaphore(s.get().sem.clone()));
    }
    if let Ok(s) = obj.downcast::<PyBoundedSemaphore>() {
        return Ok(Handle::BoundedSemaphore(s.get().sem.clone()));
    }
    if let Ok(b) = obj.downcast::<PyBarrier>() {
        return Ok(Handle::Barrier(b.get().barrier.clone()));
    }
    if let Ok(c) = obj.downcast::<PyCondition>() {
        return Ok(Handle::Condition(c.get().cond.clone()));
    }
    Err(PyTypeError::new_err(format!(
        "cannot publish {}: only objects of sharedctypes_rs (RawValue, RawArray, Value, \
         Array, Lock, RLock, Condition, Event, Semaphore, BoundedSemaphore, Barrier)",
        obj.get_type().name()?
    )))
}

#[pymethods]
impl PyHeap {
    /// An anonymous heap of `size` bytes: shared with children forked after it is made
    /// (`multiprocessing` with the `fork` start method), not with other programs.
    #[new]
    fn new(size: usize) -> PyResult<PyHeap> {
        Ok(PyHeap {
            heap: Heap::new(size).map_err(err)?,
        })
    }

    /// Creates the named heap `name` (`"/name"`, in `/dev/shm`) of `size` bytes:
    /// `FileExistsError` if it exists. The name goes when the last object of this
    /// heap in this process goes, unless `persist()`ed.
    #[staticmethod]
    fn create(name: &str, size: usize) -> PyResult<PyHeap> {
        Ok(PyHeap {
            heap: Heap::create(name, size).map_err(err)?,
        })
    }

    /// Opens the named heap `name`: `FileNotFoundError` if there is none;
    /// `InvalidHeapError` if it is not a sharedctypes heap.
    #[staticmethod]
    fn open(name: &str) -> PyResult<PyHeap> {
        Ok(PyHeap {
            heap: Heap::open(name).map_err(err)?,
        })
    }

    /// Removes the name `name` (processes that mapped it keep their mapping).
    #[staticmethod]
    fn unlink(name: &str) -> PyResult<()> {
        Heap::unlink(name).map_err(err)
    }

    /// Keeps the name after this process's objects are gone (until `Heap.unlink`).
    fn persist(&self) {
        self.heap.persist();
    }

    /// The heap's name (`None` for an anonymous heap).
    #[getter]
    fn name(&self) -> Option<String> {
        self.heap.name().map(str::to_owned)
    }

    /// Bytes for objects, in all.
    #[getter]
    fn capacity(&self) -> usize {
        self.heap.capacity()
    }

    /// Bytes in use.
    #[getter]
    fn used(&self) -> usize {
        self.heap.used()
    }

    /// Bytes free.
    #[getter]
    fn available(&self) -> usize {
        self.heap.available()
    }

    /// A value without a lock (Python's `RawValue`).
    #[pyo3(name = "RawValue", signature = (typecode_or_type, *args))]
    fn raw_value(
        &self,
        py: Python<'_>,
        typecode_or_type: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<RawValue> {
        new_raw_value(py, &self.heap, types::from_python(typecode_or_type)?, args)
    }

    /// An array without a lock (Python's `RawArray`): a size (zeroed) or a sequence.
    #[pyo3(name = "RawArray")]
    fn raw_array(
        &self,
        typecode_or_type: &Bound<'_, PyAny>,
        size_or_initializer: &Bound<'_, PyAny>,
    ) -> PyResult<RawArray> {
        new_raw_array(
            &self.heap,
            types::from_python(typecode_or_type)?,
            size_or_initializer,
        )
    }

    /// A value behind a lock (Python's `Value`): `lock=True` (or `None`) a fresh
    /// `RLock`, `lock=False` a `RawValue`, or a given `Lock` or `RLock`.
    #[pyo3(name = "Value", signature = (typecode_or_type, *args, lock = None))]
    fn value(
        &self,
        py: Python<'_>,
        typecode_or_type: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        lock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let ty = types::from_python(typecode_or_type)?;
        let lock = match lock {
            Some(l) => lock_arg(py, &self.heap, l)?,
            None => lock_arg(py, &self.heap, &py.None().into_bound(py))?,
        };
        let raw = new_raw_value(py, &self.heap, ty, args)?;
        Ok(match lock {
            None => Py::new(py, raw)?.into_any(),
            Some((lock, core)) => Py::new(
                py,
                Value {
                    raw: Py::new(py, raw)?,
                    lock,
                    core,
                },
            )?
            .into_any(),
        })
    }

    /// An array behind a lock (Python's `Array`); `lock` as for `Value`.
    #[pyo3(name = "Array", signature = (typecode_or_type, size_or_initializer, *, lock = None))]
    fn array(
        &self,
        py: Python<'_>,
        typecode_or_type: &Bound<'_, PyAny>,
        size_or_initializer: &Bound<'_, PyAny>,
        lock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let ty = types::from_python(typecode_or_type)?;
        let lock = match lock {
            Some(l) => lock_arg(py, &self.heap, l)?,
            None => lock_arg(py, &self.heap, &py.None().into_bound(py))?,
        };
        let raw = new_raw_array(&self.heap, ty, size_or_initializer)?;
        Ok(match lock {
            None => Py::new(py, raw)?.into_any(),
            Some((lock, core)) => Py::new(
                py,
                Array {
                    raw: Py::new(py, raw)?,
                    lock,
                    core,
                },
            )?
            .into_any(),
        })
    }

    /// A lock (not recursive) that survives its holder's death.
    #[pyo3(name = "Lock")]
    fn lock(&self) -> PyResult<PyLock> {
        Ok(PyLock::new(Lock::new_in(&self.heap).map_err(err)?))
    }

    /// A recursive lock that survives its holder's death.
    #[pyo3(name = "RLock")]
    fn rlock(&self) -> PyResult<PyRLock> {
        Ok(PyRLock::new(RLock::new_in(&self.heap).map_err(err)?))
    }

    /// A condition variable with `lock` (a fresh `RLock` by default).
    #[pyo3(name = "Condition", signature = (lock = None))]
    fn condition(&self, py: Python<'_>, lock: Option<&Bound<'_, PyAny>>) -> PyResult<PyCondition> {
        let lock = match lock {
            None => Py::new(py, PyRLock::new(RLock::new_in(&self.heap).map_err(err)?))?.into_any(),
            Some(l) if lock_of(l).is_some() => l.clone().unbind(),
            Some(l) => {
                return Err(PyTypeError::new_err(format!(
                    "a Condition's lock must be a Lock or RLock of sharedctypes_rs, not {}",
                    l.repr()?
                )))
            }
        };
        Ok(PyCondition {
            cond: Condition::new_in(&self.heap).map_err(err)?,
            lock: Some(lock),
        })
    }

    /// An event.
    #[pyo3(name = "Event")]
    fn event(&self) -> PyResult<PyEvent> {
        Ok(PyEvent {
            event: Event::new_in(&self.heap).map_err(err)?,
        })
    }

    /// A counting semaphore with `value` permits.
    #[pyo3(name = "Semaphore", signature = (value = 1))]
    fn semaphore(&self, value: i64) -> PyResult<PySemaphore> {
        let value = u32::try_from(value).map_err(|_| {
            PyValueError::new_err(format!(
                "a semaphore's value is 0 to 2**32 - 1, not {value}"
            ))
        })?;
        Ok(PySemaphore {
            sem: Semaphore::new_in(&self.heap, value).map_err(err)?,
        })
    }

    /// A semaphore whose value never passes `value`.
    #[pyo3(name = "BoundedSemaphore", signature = (value = 1))]
    fn bounded_semaphore(&self, value: i64) -> PyResult<PyBoundedSemaphore> {
        let value = u32::try_from(value).map_err(|_| {
            PyValueError::new_err(format!(
                "a semaphore's value is 0 to 2**32 - 1, not {value}"
            ))
        })?;
        Ok(PyBoundedSemaphore {
            sem: BoundedSemaphore::new_in(&self.heap, value).map_err(err)?,
        })
    }

    /// A barrier for `parties` processes or threads; `timeout` is `wait`'s default.
    /// (`action` is not supported: it would have to run in one process while the
    /// others wait.)
    #[pyo3(name = "Barrier", signature = (parties, action = None, timeout = None))]
    fn barrier(
        &self,
        parties: usize,
        action: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<PyBarrier> {
        if action.is_some_and(|a| !a.is_none()) {
            return Err(PyValueError::new_err(
                "a shared Barrier has no action: run it in the process whose wait() returns 0",
            ));
        }
        Ok(PyBarrier {
            barrier: Barrier::new_in(&self.heap, parties).map_err(err)?,
            timeout,
        })
    }

    /// Python's `copy(obj)`: a new raw object in this heap with `obj`'s type and
    /// contents (`obj`: an object of this module, in any heap, or a `ctypes` instance).
    fn copy(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let bytes_in = |mem: &Arc<Object>, offset: usize, len: usize| -> PyResult<Vec<u8>> {
            let cells = mem
                .block()
                .cells::<u8>(offset, len)
                .ok_or_else(|| PyValueError::new_err("an object outside its memory"))?;
            Ok(erased::bytes_raw(cells))
        };
        let (ty, array_len, bytes) =
            if let Ok(v) = obj.downcast::<Value>() {
                let raw = v.get().raw.get();
                let _g = v.get().core.lock_for_access(py)?;
                (raw.ty.clone(), None, bytes_in(&raw.mem, 0, raw.ty.size())?)
            } else if let Ok(v) = obj.downcast::<RawValue>() {
                let raw = v.get();
                (raw.ty.clone(), None, bytes_in(&raw.mem, 0, raw.ty.size())?)
            } else if let Ok(a) = obj.downcast::<Array>() {
                let raw = a.get().raw.get();
                let _g = a.get().core.lock_for_access(py)?;
                let (offset, len) = raw.span();
                let bytes = bytes_in(&raw.mem, offset, len * raw.elem.size())?;
                (raw.elem.clone(), Some(len), bytes)
            } else if let Ok(a) = obj.downcast::<RawArray>() {
                let raw = a.get();
                let (offset, len) = raw.span();
                let bytes = bytes_in(&raw.mem, offset, len * raw.elem.size())?;
                (raw.elem.clone(), Some(len), bytes)
            } else {
                let ty =
                    types::from_python(&obj.get_type().into_any()).map_err(|_| {
                        PyTypeError::new_err(format!(
                    "copy() takes an object of sharedctypes_rs or a ctypes instance, not {}",
                    obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))
                    })?;
                let bytes: Vec<u8> = py
                    .import("builtins")?
                    .getattr("bytes")?
                    .call1((obj,))?
                    .extract()?;
                (ty, None, bytes)
            };
        let mem = Arc::new(
            match array_len {
                Some(len) => Object::array_in(&self.heap, ty.layout.clone(), len),
                None => Object::value_in(&self.heap, ty.layout.clone()),
            }
            .map_err(err)?,
        );
        let cells = mem
            .block()
            .cells::<u8>(0, bytes.len())
            .ok_or_else(|| PyValueError::new_err("a copy of another size"))?;
        erased::set_bytes_raw(cells, &bytes).map_err(err)?;
        Ok(match array_len {
            Some(len) => Py::new(py, RawArray::view(mem, 0, ty, len, true)?)?.into_any(),
            None => Py::new(py, RawValue { mem, ty })?.into_any(),
        })
    }

    /// Python's `synchronized(obj, lock=None)`: a `Value` or `Array` over the raw
    /// object `obj`, with `lock` (a fresh `RLock` in this heap by default).
    #[pyo3(signature = (obj, lock = None))]
    fn synchronized(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        lock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let lock = match lock {
            Some(l) if !l.is(PyBool::new(py, false)) => lock_arg(py, &self.heap, l)?,
            Some(_) => return Err(PyValueError::new_err("synchronized() needs a lock")),
            None => lock_arg(py, &self.heap, &py.None().into_bound(py))?,
        };
        let (lock, core) =
            lock.ok_or_else(|| PyValueError::new_err("synchronized() needs a lock"))?;
        if let Ok(v) = obj.downcast::<RawValue>() {
            return Ok(Py::new(
                py,
                Value {
                    raw: v.clone().unbind(),
                    lock,
                    core,
                },
            )?
            .into_any());
        }
        if let Ok(a) = obj.downcast::<RawArray>() {
            return Ok(Py::new(
                py,
                Array {
                    raw: a.clone().unbind(),
                    lock,
                    core,
                },
            )?
            .into_any());
        }
        Err(PyTypeError::new_err(
            "synchronized() takes a RawValue or a RawArray",
        ))
    }

    /// Publishes `obj` under `key` for `lookup` by any process that opens this heap:
    /// `ValueError` if the key is taken. A `Condition`'s lock is published too, under
    /// `key + ".lock"`.
    fn publish(&self, py: Python<'_>, key: &str, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let handle = handle_of(obj)?;
        erased::publish(&self.heap, key, &handle).map_err(err)?;
        if let Ok(c) = obj.downcast::<PyCondition>() {
            if let Some(lock) = &c.get().lock {
                let lock = handle_of(lock.bind(py))?;
                if let Err(e) = erased::publish(&self.heap, &lock_key(key), &lock) {
                    let _ = self.heap.unpublish(key);
                    return Err(err(e));
                }
            }
        }
        Ok(())
    }

    /// The object published under `key`, rebuilt from the type the heap stores (a
    /// struct as a `ctypes.Structure` subclass): `KeyError` if there is none.
    fn lookup(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        let h = erased::lookup(&self.heap, key).map_err(err)?;
        self.wrap_lookup(py, key, h)
    }

    /// Removes `key` from the directory (`KeyError` if it is not there).
    fn unpublish(&self, key: &str) -> PyResult<()> {
        self.heap.unpublish(key).map_err(err)
    }

    /// The published keys, newest first.
    fn keys(&self) -> PyResult<Vec<String>> {
        self.heap.keys().map_err(err)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<PyHeap>()
            .is_ok_and(|o| o.get().heap == self.heap)
    }

    fn __repr__(&self) -> String {
        match self.heap.name() {
            Some(n) => format!("Heap.open({n:?})"),
            None => format!("Heap({})", self.heap.capacity()),
        }
    }
}

/// The default heap (created on first use; shared with forked children).
#[pyfunction]
pub fn default_heap() -> PyResult<PyHeap> {
    Ok(PyHeap {
        heap: erased::try_default_heap().map_err(err)?.clone(),
    })
}
