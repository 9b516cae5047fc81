//! Shared values and arrays, Python's way: `RawValue`, `RawArray` (also the view of an
//! array field), `Struct` (the view of a struct element or field), and the
//! synchronized `Value` and `Array`, which take their lock for each access.

use std::ffi::CString;
use std::os::raw::c_int;
use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyBufferError, PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PySlice, PySliceIndices, PyTuple};
use sharedctypes::erased::{self, Object};
use sharedctypes::Shared;

use crate::errors::err;
use crate::locks::{self, LockCore};
use crate::types::{self, ElemKind, ElemType, StructType};

/// An element of `ty` at `offset` of `mem`, for Python: a number (or `bytes` for
/// `'c'`), or a view for an array or a struct.
pub fn load<'py>(
    py: Python<'py>,
    mem: &Arc<Object>,
    offset: usize,
    ty: &Arc<ElemType>,
) -> PyResult<Bound<'py, PyAny>> {
    match &ty.kind {
        ElemKind::Prim { prim, chr } => types::load_prim(py, mem.block(), offset, *prim, *chr),
        ElemKind::Array { elem, len } => Ok(Bound::new(
            py,
            RawArray::view(mem.clone(), offset, elem.clone(), *len, false)?,
        )?
        .into_any()),
        ElemKind::Struct(_) => Ok(Bound::new(
            py,
            StructView {
                mem: mem.clone(),
                offset,
                ty: ty.clone(),
            },
        )?
        .into_any()),
    }
}

/// Writes `v` as an element of `ty` at `offset` of `mem`: a number (`bytes` of length
/// 1 for `'c'`); for an array, a sequence of its length (or `bytes` no longer than a
/// byte array); for a struct, a tuple of field values or an object with the fields as
/// attributes.
pub fn store(
    mem: &Arc<Object>,
    offset: usize,
    ty: &Arc<ElemType>,
    v: &Bound<'_, PyAny>,
) -> PyResult<()> {
    match &ty.kind {
        ElemKind::Prim { prim, chr } => types::store_prim(mem.block(), offset, *prim, *chr, v),
        ElemKind::Array { elem, len } => {
            if elem.is_byte() {
                if let Ok(b) = v.downcast::<PyBytes>() {
                    let cells = byte_cells(mem, offset, *len)?;
                    return erased::set_bytes_value(cells, b.as_bytes()).map_err(err);
                }
            }
            let items = v.try_iter()?.collect::<PyResult<Vec<_>>>()?;
            if items.len() != *len {
                return Err(PyValueError::new_err(format!(
                    "an array of {len} elements cannot be set from {} items",
                    items.len()
                )));
            }
            for (i, item) in items.iter().enumerate() {
                store(mem, offset + i * elem.size(), elem, item)?;
            }
            Ok(())
        }
        ElemKind::Struct(st) => store_struct(mem, offset, st, v),
    }
}

fn store_struct(
    mem: &Arc<Object>,
    offset: usize,
    st: &StructType,
    v: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if let Ok(t) = v.downcast::<PyTuple>() {
        let items: Vec<_> = t.iter().collect();
        return store_fields(mem, offset, st, &items);
    }
    if let Ok(l) = v.downcast::<PyList>() {
        let items: Vec<_> = l.iter().collect();
        return store_fields(mem, offset, st, &items);
    }
    for f in &st.fields {
        let value = v.getattr(f.name.as_str()).map_err(|_| {
            PyTypeError::new_err(format!(
                "a {} is set from a tuple of its fields or an object with fields {}",
                st.name,
                st.fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        store(mem, offset + f.offset, &f.ty, &value)?;
    }
    Ok(())
}

/// Python's `Structure(*args)`: the first fields, in order.
fn store_fields(
    mem: &Arc<Object>,
    offset: usize,
    st: &StructType,
    args: &[Bound<'_, PyAny>],
) -> PyResult<()> {
    if args.len() > st.fields.len() {
        return Err(PyTypeError::new_err(format!(
            "too many initializers: {} has {} fields, {} were given",
            st.name,
            st.fields.len(),
            args.len()
        )));
    }
    for (f, a) in st.fields.iter().zip(args) {
        store(mem, offset + f.offset, &f.ty, a)?;
    }
    Ok(())
}

fn byte_cells(mem: &Arc<Object>, offset: usize, len: usize) -> PyResult<&[Shared<u8>]> {
    mem.block().cells::<u8>(offset, len).ok_or_else(|| {
        crate::errors::InvalidHeapError::new_err("a byte array lies outside its object")
    })
}

/// Reads the bytes of one element (for a copy as a `ctypes` object).
fn element_bytes(mem: &Arc<Object>, offset: usize, size: usize) -> PyResult<Vec<u8>> {
    Ok(erased::bytes_raw(byte_cells(mem, offset, size)?))
}

/// A struct element's fields by name.
fn field<'a>(st: &'a StructType, name: &str) -> PyResult<&'a types::FieldType> {
    st.by_name.get(name).map(|&i| &st.fields[i]).ok_or_else(|| {
        PyAttributeError::new_err(format!("struct {} has no field {name:?}", st.name))
    })
}

/// `Point(x=1.0, y=2.0)`.
fn struct_repr(
    py: Python<'_>,
    mem: &Arc<Object>,
    offset: usize,
    st: &StructType,
) -> PyResult<String> {
    let mut parts = Vec::new();
    for f in &st.fields {
        let v = load(py, mem, offset + f.offset, &f.ty)?;
        parts.push(format!("{}={}", f.name, v.repr()?));
    }
    Ok(format!("{}({})", st.name, parts.join(", ")))
}

/// `.value` of an element: the number, or for a struct a `ctypes` copy, for an array
/// the view.
fn element_value<'py>(
    py: Python<'py>,
    mem: &Arc<Object>,
    offset: usize,
    ty: &Arc<ElemType>,
) -> PyResult<Bound<'py, PyAny>> {
    match &ty.kind {
        ElemKind::Struct(_) => {
            let bytes = element_bytes(mem, offset, ty.size())?;
            ty.pytype
                .bind(py)
                .call_method1("from_buffer_copy", (PyBytes::new(py, &bytes),))
        }
        _ => load(py, mem, offset, ty),
    }
}

// ---------------------------------------------------------------------------------------
// RawValue
// ---------------------------------------------------------------------------------------

/// One shared element without a lock (Python's `RawValue`): `.value`, and a
/// struct's fields as attributes.
#[pyclass(module = "sharedctypes_rs", name = "RawValue", frozen)]
pub struct RawValue {
    pub mem: Arc<Object>,
    pub ty: Arc<ElemType>,
}

impl RawValue {
    pub fn get_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        element_value(py, &self.mem, 0, &self.ty)
    }

    pub fn set_value(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        store(&self.mem, 0, &self.ty, v)
    }

    pub fn get_attr<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.ty.as_struct() {
            Some(st) => {
                let f = field(st, name)?;
                load(py, &self.mem, f.offset, &f.ty)
            }
            None => Err(PyAttributeError::new_err(format!(
                "'RawValue' object has no attribute {name:?}"
            ))),
        }
    }

    pub fn set_attr(&self, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
        if name == "value" {
            return self.set_value(v);
        }
        match self.ty.as_struct() {
            Some(st) => {
                let f = field(st, name)?;
                store(&self.mem, f.offset, &f.ty, v)
            }
            None => Err(PyAttributeError::new_err(format!(
                "'RawValue' object has no attribute {name:?}"
            ))),
        }
    }

    fn repr_inner(&self, py: Python<'_>) -> PyResult<String> {
        match self.ty.as_struct() {
            Some(st) => struct_repr(py, &self.mem, 0, st),
            None => Ok(self.get_value(py)?.repr()?.to_string()),
        }
    }
}

#[pymethods]
impl RawValue {
    /// The value (a number; `bytes` of length 1 for `'c'`; a `ctypes` copy of a
    /// struct).
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get_value(py)
    }

    /// The typecode or `ctypes` type.
    #[getter]
    fn _type_(&self, py: Python<'_>) -> Py<PyAny> {
        self.ty.pytype.clone_ref(py)
    }

    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.get_attr(py, name)
    }

    fn __setattr__(&self, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_attr(name, v)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("RawValue({})", self.repr_inner(py)?))
    }
}

// ---------------------------------------------------------------------------------------
// Struct views
// ---------------------------------------------------------------------------------------

/// A struct in shared memory: an element of an array of structs, or a field. Its
/// fields are attributes; writes go to shared memory (no lock).
#[pyclass(module = "sharedctypes_rs", name = "Struct", frozen)]
pub struct StructView {
    mem: Arc<Object>,
    offset: usize,
    ty: Arc<ElemType>,
}

impl StructView {
    fn st(&self) -> &StructType {
        self.ty
            .as_struct()
            .expect("a struct view has a struct type")
    }
}

#[pymethods]
impl StructView {
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let f = field(self.st(), name)?;
        load(py, &self.mem, self.offset + f.offset, &f.ty)
    }

    fn __setattr__(&self, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let f = field(self.st(), name)?;
        store(&self.mem, self.offset + f.offset, &f.ty, v)
    }

    /// A `ctypes` copy of the struct.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        element_value(py, &self.mem, self.offset, &self.ty)
    }

    /// The `ctypes.Structure` class.
    #[getter]
    fn _type_(&self, py: Python<'_>) -> Py<PyAny> {
        self.ty.pytype.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        struct_repr(py, &self.mem, self.offset, self.st())
    }
}

// ---------------------------------------------------------------------------------------
// RawArray
// ---------------------------------------------------------------------------------------

/// Shared elements without a lock (Python's `RawArray`; also an array field): `len`,
/// indexing, slicing, iteration; `.value` and `.raw` for byte arrays; the buffer
/// protocol (a zero-copy `memoryview` or `numpy.asarray`).
#[pyclass(module = "sharedctypes_rs", name = "RawArray", frozen)]
pub struct RawArray {
    pub mem: Arc<Object>,
    offset: usize,
    pub elem: Arc<ElemType>,
    len: usize,
    /// Whether this is a whole object (publishable), not a field of one.
    pub whole: bool,
    format: CString,
    shape: [ffi::Py_ssize_t; 1],
    strides: [ffi::Py_ssize_t; 1],
}

/// The index `i` of `len` elements (negative from the end).
fn index(i: isize, len: usize) -> PyResult<usize> {
    let j = if i < 0 { i + len as isize } else { i };
    if j < 0 || j as usize >= len {
        return Err(PyIndexError::new_err(format!(
            "index {i} out of range for an array of {len}"
        )));
    }
    Ok(j as usize)
}

impl RawArray {
    pub fn view(
        mem: Arc<Object>,
        offset: usize,
        elem: Arc<ElemType>,
        len: usize,
        whole: bool,
    ) -> PyResult<RawArray> {
        let format = CString::new(elem.format.clone())
            .map_err(|_| PyValueError::new_err("a format with a NUL"))?;
        Ok(RawArray {
            mem,
            offset,
            len,
            format,
            shape: [len as ffi::Py_ssize_t],
            strides: [elem.size() as ffi::Py_ssize_t],
            elem,
            whole,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Where the elements are in the object: the offset and the count.
    pub fn span(&self) -> (usize, usize) {
        (self.offset, self.len)
    }

    fn at(&self, i: usize) -> usize {
        self.offset + i * self.elem.size()
    }

    fn bytes(&self) -> PyResult<&[Shared<u8>]> {
        if !self.elem.is_byte() {
            return Err(PyAttributeError::new_err(
                "only byte arrays ('c', 'B') have .value and .raw",
            ));
        }
        byte_cells(&self.mem, self.offset, self.len)
    }

    pub fn get_item<'py>(
        &self,
        py: Python<'py>,
        idx: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(s) = idx.downcast::<PySlice>() {
            let PySliceIndices {
                start,
                step,
                slicelength,
                ..
            } = s.indices(self.len as isize)?;
            if self.elem.is_chr() {
                let all = self.bytes()?;
                let picked: Vec<u8> = (0..slicelength)
                    .map(|k| all[(start + k as isize * step) as usize].get())
                    .collect();
                return Ok(PyBytes::new(py, &picked).into_any());
            }
            let list = PyList::empty(py);
            for k in 0..slicelength {
                let i = (start + k as isize * step) as usize;
                list.append(load(py, &self.mem, self.at(i), &self.elem)?)?;
            }
            return Ok(list.into_any());
        }
        let i: isize = idx
            .extract()
            .map_err(|_| PyTypeError::new_err("array indices must be integers or slices"))?;
        load(py, &self.mem, self.at(index(i, self.len)?), &self.elem)
    }

    pub fn set_item(&self, idx: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(s) = idx.downcast::<PySlice>() {
            let PySliceIndices {
                start,
                step,
                slicelength,
                ..
            } = s.indices(self.len as isize)?;
            let items: Vec<Bound<'_, PyAny>> = match v.downcast::<PyBytes>() {
                Ok(b) if self.elem.is_chr() => b
                    .as_bytes()
                    .iter()
                    .map(|&c| PyBytes::new(v.py(), &[c]).into_any())
                    .collect(),
                _ => v.try_iter()?.collect::<PyResult<_>>()?,
            };
            if items.len() != slicelength {
                return Err(PyValueError::new_err(format!(
                    "can only assign a sequence of the same size: the slice has {slicelength} \
                     elements, the value {}",
                    items.len()
                )));
            }
            for (k, item) in items.iter().enumerate() {
                let i = (start + k as isize * step) as usize;
                store(&self.mem, self.at(i), &self.elem, item)?;
            }
            return Ok(());
        }
        let i: isize = idx
            .extract()
            .map_err(|_| PyTypeError::new_err("array indices must be integers or slices"))?;
        store(&self.mem, self.at(index(i, self.len)?), &self.elem, v)
    }

    pub fn get_bytes_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &erased::bytes_value(self.bytes()?)))
    }

    pub fn set_bytes_value(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = v
            .downcast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("a byte array's .value is set from bytes"))?;
        erased::set_bytes_value(self.bytes()?, b.as_bytes()).map_err(err)
    }

    pub fn get_raw<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &erased::bytes_raw(self.bytes()?)))
    }

    pub fn set_raw(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = v
            .downcast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("a byte array's .raw is set from bytes"))?;
        erased::set_bytes_raw(self.bytes()?, b.as_bytes()).map_err(err)
    }

    pub fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for i in 0..self.len {
            list.append(load(py, &self.mem, self.at(i), &self.elem)?)?;
        }
        Ok(list)
    }

    fn typecode(&self) -> String {
        match &self.elem.kind {
            ElemKind::Prim { .. } => self.elem.format.clone(),
            _ => self.elem.format.clone(),
        }
    }
}

#[pymethods]
impl RawArray {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        idx: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.get_item(py, idx)
    }

    fn __setitem__(&self, idx: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_item(idx, v)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items: Bound<'py, PyAny> = if self.elem.is_chr() {
            let raw = erased::bytes_raw(self.bytes()?);
            PyList::new(py, raw.iter().map(|&b| PyBytes::new(py, &[b])))?.into_any()
        } else {
            self.to_list(py)?.into_any()
        };
        items.try_iter().map(|i| i.into_any())
    }

    /// A byte array's bytes up to the first NUL; set: NUL-terminated when shorter,
    /// `ValueError` when longer than the array.
    #[getter(value)]
    fn py_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.get_bytes_value(py)
    }

    #[setter(value)]
    fn py_set_value(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_bytes_value(v)
    }

    /// A byte array's every byte; set: the first bytes, `ValueError` when longer.
    #[getter(raw)]
    fn py_raw<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.get_raw(py)
    }

    #[setter(raw)]
    fn py_set_raw(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_raw(v)
    }

    /// The element's typecode or `ctypes` type.
    #[getter]
    fn _type_(&self, py: Python<'_>) -> Py<PyAny> {
        self.elem.pytype.clone_ref(py)
    }

    /// The number of elements.
    #[getter]
    fn _length_(&self) -> usize {
        self.len
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let shown = if self.len <= 16 {
            if self.elem.is_chr() {
                self.get_raw(py)?.repr()?.to_string()
            } else {
                self.to_list(py)?.repr()?.to_string()
            }
        } else {
            format!("<{} elements>", self.len)
        };
        Ok(format!("RawArray({:?}, {shown})", self.typecode()))
    }

    /// Exports the array's memory, zero-copy: one dimension of `len` elements with
    /// the element's format (`T{...}` for structs). Writable; other processes may
    /// change it at any time.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("View is null"));
        }
        let this = slf.get();
        let itemsize = this.elem.size();
        let ptr = this.mem.block().as_ptr().wrapping_add(this.offset);
        let fmt = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
            this.format.as_ptr().cast_mut()
        } else {
            std::ptr::null_mut()
        };
        let nd = flags & ffi::PyBUF_ND == ffi::PyBUF_ND;
        let strided = flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES;
        let buffer = ffi::Py_buffer {
            buf: ptr.cast(),
            obj: slf.clone().into_any().into_ptr(),
            len: (this.len * itemsize) as ffi::Py_ssize_t,
            itemsize: itemsize as ffi::Py_ssize_t,
            readonly: 0,
            ndim: 1,
            format: fmt,
            shape: if nd {
                this.shape.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            },
            strides: if strided {
                this.strides.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            },
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        };
        // SAFETY: `view` is a valid, writable `Py_buffer` (checked non-null; Python
        // passes one). Every pointer stored in it stays valid while `view.obj` holds
        // `slf` (a strong reference, released by Python with the view): the memory
        // (the heap mapping `this.mem` keeps alive) and the format, shape and strides
        // (fields of the frozen object, which never move).
        unsafe { view.write(buffer) };
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

// ---------------------------------------------------------------------------------------
// Value and Array (synchronized)
// ---------------------------------------------------------------------------------------

/// A shared value behind a lock (Python's `Value`): `.value` and struct fields take
/// the lock for each access.
#[pyclass(module = "sharedctypes_rs", name = "Value", frozen)]
pub struct Value {
    pub raw: Py<RawValue>,
    pub lock: Py<PyAny>,
    pub core: Arc<LockCore>,
}

#[pymethods]
impl Value {
    /// The value, read under the lock.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().get_value(py)
    }

    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        if self.raw.get().ty.as_struct().is_none() {
            return Err(PyAttributeError::new_err(format!(
                "'Value' object has no attribute {name:?}"
            )));
        }
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().get_attr(py, name)
    }

    fn __setattr__(&self, py: Python<'_>, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().set_attr(name, v)
    }

    /// The lock (Python's `get_lock()`).
    fn get_lock(&self, py: Python<'_>) -> Py<PyAny> {
        self.lock.clone_ref(py)
    }

    /// The raw value, without the lock (Python's `get_obj()`).
    fn get_obj(&self, py: Python<'_>) -> Py<RawValue> {
        self.raw.clone_ref(py)
    }

    /// Takes the lock (see `Lock.acquire`).
    #[pyo3(signature = (blocking = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: Option<f64>) -> PyResult<bool> {
        locks::acquire(py, &self.core, blocking, timeout)
    }

    /// Releases the lock.
    fn release(&self) -> PyResult<()> {
        locks::release(&self.core)
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        locks::acquire(py, &self.core, true, None)
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        locks::release(&self.core)?;
        Ok(false)
    }

    #[getter]
    fn _type_(&self, py: Python<'_>) -> Py<PyAny> {
        self.raw.get().ty.pytype.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let _g = self.core.lock_for_access(py)?;
        Ok(format!("Value({})", self.raw.get().repr_inner(py)?))
    }
}

/// A shared array behind a lock (Python's `Array`): every access takes the lock.
#[pyclass(module = "sharedctypes_rs", name = "Array", frozen)]
pub struct Array {
    pub raw: Py<RawArray>,
    pub lock: Py<PyAny>,
    pub core: Arc<LockCore>,
}

#[pymethods]
impl Array {
    fn __len__(&self) -> usize {
        self.raw.get().len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        idx: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().get_item(py, idx)
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        idx: &Bound<'_, PyAny>,
        v: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().set_item(idx, v)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // Copied under the lock; the iterator runs over the copy.
        let items = {
            let _g = self.core.lock_for_access(py)?;
            let raw = self.raw.get();
            if raw.elem.is_chr() {
                raw.get_item(py, &PySlice::full(py))?
            } else {
                raw.to_list(py)?.into_any()
            }
        };
        if let Ok(b) = items.downcast::<PyBytes>() {
            let list = PyList::new(py, b.as_bytes().iter().map(|&c| PyBytes::new(py, &[c])))?;
            return Ok(list.try_iter()?.into_any());
        }
        Ok(items.try_iter()?.into_any())
    }

    /// A byte array's bytes up to the first NUL, under the lock.
    #[getter(value)]
    fn py_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().get_bytes_value(py)
    }

    #[setter(value)]
    fn py_set_value(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().set_bytes_value(v)
    }

    /// A byte array's every byte, under the lock.
    #[getter(raw)]
    fn py_raw<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().get_raw(py)
    }

    #[setter(raw)]
    fn py_set_raw(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let _g = self.core.lock_for_access(py)?;
        self.raw.get().set_raw(v)
    }

    /// The lock (Python's `get_lock()`).
    fn get_lock(&self, py: Python<'_>) -> Py<PyAny> {
        self.lock.clone_ref(py)
    }

    /// The raw array, without the lock (Python's `get_obj()`): `numpy.asarray` of it
    /// is a zero-copy view.
    fn get_obj(&self, py: Python<'_>) -> Py<RawArray> {
        self.raw.clone_ref(py)
    }

    /// Takes the lock (see `Lock.acquire`).
    #[pyo3(signature = (blocking = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: Option<f64>) -> PyResult<bool> {
        locks::acquire(py, &self.core, blocking, timeout)
    }

    /// Releases the lock.
    fn release(&self) -> PyResult<()> {
        locks::release(&self.core)
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        locks::acquire(py, &self.core, true, None)
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        locks::release(&self.core)?;
        Ok(false)
    }

    #[getter]
    fn _type_(&self, py: Python<'_>) -> Py<PyAny> {
        self.raw.get().elem.pytype.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let _g = self.core.lock_for_access(py)?;
        let inner = self.raw.bind(py).repr()?.to_string();
        Ok(format!(
            "Array({})",
            inner.trim_start_matches("RawArray(").trim_end_matches(')')
        ))
    }
}
