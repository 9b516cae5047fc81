//! Element types: from a typecode or a `ctypes` type to a layout the crate stores and
//! checks, and back from a stored layout to a type Python can use (a struct becomes a
//! `ctypes.Structure` subclass); how elements are read, written and described to the
//! buffer protocol.

use std::collections::HashMap;
use std::ffi::c_long;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};
use sharedctypes::erased::{Block, DynField, DynKind, DynLayout};
use sharedctypes::Primitive;

use crate::errors::err;

/// What an element is, for Python.
pub enum ElemKind {
    /// A number; `chr` for typecode `'c'` (`ctypes.c_char`): one byte, read and written
    /// as `bytes` of length 1.
    Prim { prim: Primitive, chr: bool },
    /// `elem * len` (a `ctypes` array type).
    Array { elem: Arc<ElemType>, len: usize },
    /// A `ctypes.Structure`.
    Struct(Arc<StructType>),
}

/// An element type: its layout (what the heap stores and Rust compares) and how Python
/// sees it.
pub struct ElemType {
    pub layout: Arc<DynLayout>,
    pub kind: ElemKind,
    /// What `_type_` shows: the typecode (`'d'`) or the `ctypes` type.
    pub pytype: Py<PyAny>,
    /// The buffer-protocol format of one element (`"d"`, `"T{d:x:d:y:}"`, `"(3)i"`).
    pub format: String,
}

/// A struct's fields, by name.
pub struct StructType {
    pub name: String,
    pub fields: Vec<FieldType>,
    pub by_name: HashMap<String, usize>,
}

pub struct FieldType {
    pub name: String,
    pub offset: usize,
    pub ty: Arc<ElemType>,
}

impl ElemType {
    pub fn size(&self) -> usize {
        self.layout.size
    }

    /// Whether elements are bytes (`'c'`) or unsigned bytes: the arrays with `.value`
    /// and `.raw`.
    pub fn is_byte(&self) -> bool {
        matches!(
            self.kind,
            ElemKind::Prim {
                prim: Primitive::U8,
                ..
            }
        )
    }

    pub fn is_chr(&self) -> bool {
        matches!(self.kind, ElemKind::Prim { chr: true, .. })
    }

    pub fn as_struct(&self) -> Option<&Arc<StructType>> {
        match &self.kind {
            ElemKind::Struct(s) => Some(s),
            _ => None,
        }
    }
}

/// Typecodes, as Python's `array` and `multiprocessing.sharedctypes` have them on this
/// platform (`l`/`L` are C `long`s).
pub const TYPECODES: &str = "c b B h H i I l L q Q f d";

fn long_prim(signed: bool) -> Primitive {
    match (std::mem::size_of::<c_long>(), signed) {
        (8, true) => Primitive::I64,
        (8, false) => Primitive::U64,
        (_, true) => Primitive::I32,
        (_, false) => Primitive::U32,
    }
}

/// The primitive of a typecode (also `ctypes`' `_type_` codes of its simple types).
fn typecode_prim(code: char) -> Option<(Primitive, bool)> {
    Some(match code {
        'c' => (Primitive::U8, true),
        'b' => (Primitive::I8, false),
        'B' => (Primitive::U8, false),
        'h' => (Primitive::I16, false),
        'H' => (Primitive::U16, false),
        'i' => (Primitive::I32, false),
        'I' => (Primitive::U32, false),
        'l' => (long_prim(true), false),
        'L' => (long_prim(false), false),
        'q' => (Primitive::I64, false),
        'Q' => (Primitive::U64, false),
        'f' => (Primitive::F32, false),
        'd' => (Primitive::F64, false),
        _ => return None,
    })
}

/// The typecode a stored primitive is shown with, and its buffer format.
fn prim_code(p: Primitive) -> (Option<char>, &'static str) {
    match p {
        Primitive::I8 => (Some('b'), "b"),
        Primitive::U8 => (Some('B'), "B"),
        Primitive::I16 => (Some('h'), "h"),
        Primitive::U16 => (Some('H'), "H"),
        Primitive::I32 => (Some('i'), "i"),
        Primitive::U32 => (Some('I'), "I"),
        Primitive::I64 => (Some('q'), "q"),
        Primitive::U64 => (Some('Q'), "Q"),
        Primitive::F32 => (Some('f'), "f"),
        Primitive::F64 => (Some('d'), "d"),
        Primitive::Isize => (None, "n"),
        Primitive::Usize => (None, "N"),
        // No struct-module code for 128-bit integers: sixteen bytes.
        _ => (None, "16B"),
    }
}

/// The `ctypes` type of a primitive.
fn prim_ctype<'py>(ctypes: &Bound<'py, PyModule>, p: Primitive) -> PyResult<Bound<'py, PyAny>> {
    let name = match p {
        Primitive::I8 => "c_int8",
        Primitive::U8 => "c_uint8",
        Primitive::I16 => "c_int16",
        Primitive::U16 => "c_uint16",
        Primitive::I32 => "c_int32",
        Primitive::U32 => "c_uint32",
        Primitive::I64 => "c_int64",
        Primitive::U64 => "c_uint64",
        Primitive::F32 => "c_float",
        Primitive::F64 => "c_double",
        Primitive::Isize => "c_ssize_t",
        Primitive::Usize => "c_size_t",
        _ => {
            // 128-bit integers: sixteen bytes (ctypes has no such integer).
            let b = ctypes.getattr("c_uint8")?;
            return b.mul(16);
        }
    };
    ctypes.getattr(name)
}

fn prim_type(py: Python<'_>, prim: Primitive, chr: bool, code: Option<char>) -> ElemType {
    let (shown, format) = prim_code(prim);
    let code = code.or(shown);
    let pytype = match code {
        Some(c) => PyString::new(py, &c.to_string()).into_any().unbind(),
        None => PyString::new(py, prim.name()).into_any().unbind(),
    };
    ElemType {
        layout: Arc::new(DynLayout::primitive(prim)),
        kind: ElemKind::Prim { prim, chr },
        pytype,
        format: if chr {
            "c".to_owned()
        } else {
            match code {
                Some(c @ ('l' | 'L')) => c.to_string(),
                _ => format.to_owned(),
            }
        },
    }
}

fn ctypes(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("ctypes")
}

/// Whether `t` is a subclass of `ctypes.<name>`.
fn is_ctypes_subclass(t: &Bound<'_, PyType>, name: &str) -> PyResult<bool> {
    let base = ctypes(t.py())?.getattr(name)?;
    t.is_subclass(&base)
}

/// The element type of `typecode_or_type`: a typecode string, a `ctypes` simple type,
/// array type, or `Structure` subclass.
pub fn from_python(obj: &Bound<'_, PyAny>) -> PyResult<Arc<ElemType>> {
    let py = obj.py();
    if let Ok(s) = obj.downcast::<PyString>() {
        let s = s.to_str()?;
        let mut chars = s.chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) => match typecode_prim(c) {
                Some((prim, chr)) => Ok(Arc::new(prim_type(py, prim, chr, Some(c)))),
                None => Err(PyValueError::new_err(format!(
                    "unknown typecode {s:?}: the typecodes are {TYPECODES}, or a ctypes \
                     type (a simple type, an array type or a Structure subclass)"
                ))),
            },
            _ => Err(PyValueError::new_err(format!(
                "unknown typecode {s:?}: a typecode is one character of {TYPECODES}"
            ))),
        };
    }
    let Ok(t) = obj.downcast::<PyType>() else {
        return Err(PyTypeError::new_err(format!(
            "typecode_or_type must be a typecode ({TYPECODES}) or a ctypes type, not {}",
            obj.get_type().name()?
        )));
    };
    from_ctype(t, "")
}

/// Refuses a `ctypes` type that cannot live in shared memory, naming `what` (the field).
fn refuse(what: &str, t: &Bound<'_, PyType>, why: &str) -> PyErr {
    let name = t.name().map(|n| n.to_string()).unwrap_or_default();
    let at = if what.is_empty() {
        String::new()
    } else {
        format!("field `{what}`: ")
    };
    PyValueError::new_err(format!("{at}{name} cannot live in shared memory: {why}"))
}

fn from_ctype(t: &Bound<'_, PyType>, path: &str) -> PyResult<Arc<ElemType>> {
    let py = t.py();
    if is_ctypes_subclass(t, "Structure")? {
        return struct_from_ctype(t, path);
    }
    if is_ctypes_subclass(t, "Union")? {
        return Err(refuse(
            path,
            t,
            "a union's fields overlap; Rust programs share structs only",
        ));
    }
    if is_ctypes_subclass(t, "Array")? {
        let elem = t.getattr("_type_")?.downcast_into::<PyType>()?;
        let len: usize = t.getattr("_length_")?.extract()?;
        let elem = from_ctype(&elem, &format!("{path}[]"))?;
        let layout = DynLayout::array((*elem.layout).clone(), len).map_err(err)?;
        let format = format!("({len}){}", elem.format);
        return Ok(Arc::new(ElemType {
            layout: Arc::new(layout),
            kind: ElemKind::Array { elem, len },
            pytype: t.clone().into_any().unbind(),
            format,
        }));
    }
    if is_ctypes_subclass(t, "_SimpleCData")? {
        // A byte-swapped type (`c_int.__ctype_be__` on a little-endian machine) is not
        // what a Rust program reads.
        if let Ok(native) = t.getattr("__ctype_le__") {
            let little = cfg!(target_endian = "little");
            let swapped = if little {
                !native.is(t)
            } else {
                !t.getattr("__ctype_be__")?.is(t)
            };
            if swapped {
                return Err(refuse(path, t, "its byte order is not this machine's"));
            }
        }
        let code: String = t.getattr("_type_")?.extract()?;
        let c = code.chars().next().unwrap_or('?');
        return match typecode_prim(c) {
            Some((prim, chr)) => {
                let mut ty = prim_type(py, prim, chr, Some(c));
                ty.pytype = t.clone().into_any().unbind();
                Ok(Arc::new(ty))
            }
            None => Err(refuse(
                path,
                t,
                match c {
                    'P' | 'z' | 'Z' | 'O' => {
                        "a pointer means nothing in another process; store an index or an \
                         offset into a shared array instead"
                    }
                    '?' => "a bool has invalid bit patterns; use c_uint8 (0 or 1)",
                    _ => {
                        "it is not one of the types Rust shares (integers up to 64 bits, \
                          c_float, c_double, c_char)"
                    }
                },
            )),
        };
    }
    if is_ctypes_subclass(t, "_Pointer")? || is_ctypes_subclass(t, "_CFuncPtr")? {
        return Err(refuse(
            path,
            t,
            "a pointer means nothing in another process; store an index or an offset into \
             a shared array instead",
        ));
    }
    Err(PyTypeError::new_err(format!(
        "{}typecode_or_type must be a typecode ({TYPECODES}) or a ctypes type, not {}",
        if path.is_empty() {
            String::new()
        } else {
            format!("field `{path}`: ")
        },
        t.name()?
    )))
}

/// A `ctypes.Structure` subclass: its fields (inherited ones first), offsets and sizes
/// as `ctypes` laid them out.
fn struct_from_ctype(t: &Bound<'_, PyType>, path: &str) -> PyResult<Arc<ElemType>> {
    let py = t.py();
    let ct = ctypes(py)?;
    if is_ctypes_subclass(t, "BigEndianStructure")? && cfg!(target_endian = "little") {
        return Err(refuse(path, t, "its byte order is not this machine's"));
    }
    let name: String = t.getattr("__name__")?.extract()?;
    let size: usize = ct.getattr("sizeof")?.call1((t,))?.extract()?;
    let align: usize = ct.getattr("alignment")?.call1((t,))?.extract()?;
    // Fields of base classes come first, as ctypes lays them out.
    let mut declared = Vec::new();
    let mro = t.getattr("__mro__")?.downcast_into::<PyTuple>()?;
    for cls in mro.iter().rev() {
        let dict = cls.getattr("__dict__")?;
        if let Ok(fields) = dict.get_item("_fields_") {
            for f in fields.try_iter()? {
                declared.push(f?);
            }
        }
    }
    let mut fields = Vec::new();
    let mut dyn_fields = Vec::new();
    for f in declared {
        let f = f.downcast_into::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!("{name}._fields_ must hold (name, type) tuples"))
        })?;
        let fname: String = f.get_item(0)?.extract()?;
        let fpath = if path.is_empty() {
            fname.clone()
        } else {
            format!("{path}.{fname}")
        };
        if f.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "field `{fpath}` of {name} is a bit field: Rust structs have none"
            )));
        }
        let ftype = f.get_item(1)?.downcast_into::<PyType>().map_err(|_| {
            PyTypeError::new_err(format!("field `{fpath}` of {name}: not a ctypes type"))
        })?;
        let descriptor = t.getattr(fname.as_str())?;
        let offset: usize = descriptor.getattr("offset")?.extract()?;
        let fsize: usize = descriptor.getattr("size")?.extract()?;
        let ty = from_ctype(&ftype, &fpath)?;
        if fsize != ty.size() {
            return Err(PyValueError::new_err(format!(
                "field `{fpath}` of {name}: ctypes gives it {fsize} bytes, its type has {}",
                ty.size()
            )));
        }
        dyn_fields.push(DynField {
            name: fname.clone(),
            offset,
            layout: (*ty.layout).clone(),
        });
        fields.push(FieldType {
            name: fname,
            offset,
            ty,
        });
    }
    let layout = DynLayout::structure(&name, size, align, dyn_fields).map_err(|e| {
        // `_pack_` misaligns fields; a name that is no identifier cannot be stored.
        PyValueError::new_err(format!("{name} cannot be shared: {e}"))
    })?;
    Ok(Arc::new(struct_type(
        layout,
        name,
        fields,
        t.clone().into_any().unbind(),
    )))
}

fn struct_type(
    layout: DynLayout,
    name: String,
    fields: Vec<FieldType>,
    pytype: Py<PyAny>,
) -> ElemType {
    let mut format = String::from("T{");
    let mut end = 0;
    for f in &fields {
        if f.offset > end {
            format.push_str(&format!("{}x", f.offset - end));
        }
        format.push_str(&f.ty.format);
        format.push(':');
        format.push_str(&f.name);
        format.push(':');
        end = f.offset + f.ty.size();
    }
    if layout.size > end {
        format.push_str(&format!("{}x", layout.size - end));
    }
    format.push('}');
    let by_name = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.clone(), i))
        .collect();
    ElemType {
        layout: Arc::new(layout),
        kind: ElemKind::Struct(Arc::new(StructType {
            name,
            fields,
            by_name,
        })),
        pytype,
        format,
    }
}

/// Types rebuilt from stored layouts, by layout: the same layout gives the same type
/// (and the same `ctypes.Structure` subclass) every time.
static REBUILT: Mutex<Option<HashMap<String, Arc<ElemType>>>> = Mutex::new(None);

/// The element type for a layout stored in a heap (published by Rust or Python).
pub fn from_layout(py: Python<'_>, layout: &DynLayout) -> PyResult<Arc<ElemType>> {
    let key = format!("{layout:?}");
    if let Some(t) = REBUILT
        .lock()
        .ok()
        .and_then(|m| m.as_ref().and_then(|m| m.get(&key).cloned()))
    {
        return Ok(t);
    }
    let t = Arc::new(rebuild(py, layout)?);
    if let Ok(mut m) = REBUILT.lock() {
        m.get_or_insert_with(HashMap::new).insert(key, t.clone());
    }
    Ok(t)
}

fn rebuild(py: Python<'_>, layout: &DynLayout) -> PyResult<ElemType> {
    match &layout.kind {
        DynKind::Primitive(p) => Ok(prim_type(py, *p, false, None)),
        DynKind::Array { elem, len } => {
            let elem = from_layout(py, elem)?;
            let pytype = elem_ctype(py, &elem)?.mul(*len)?.unbind();
            let format = format!("({len}){}", elem.format);
            Ok(ElemType {
                layout: Arc::new(layout.clone()),
                kind: ElemKind::Array { elem, len: *len },
                pytype,
                format,
            })
        }
        DynKind::Struct { name, fields } => {
            let mut fs = Vec::new();
            for f in fields {
                fs.push(FieldType {
                    name: f.name.clone(),
                    offset: f.offset,
                    ty: from_layout(py, &f.layout)?,
                });
            }
            let cls = structure_class(py, name, layout, &fs)?;
            Ok(struct_type(layout.clone(), name.clone(), fs, cls))
        }
    }
}

/// The `ctypes` type of an element type (a typecode's simple type).
fn elem_ctype<'py>(py: Python<'py>, t: &ElemType) -> PyResult<Bound<'py, PyAny>> {
    let pytype = t.pytype.bind(py);
    if pytype.is_instance_of::<PyType>() {
        return Ok(pytype.clone());
    }
    let ct = ctypes(py)?;
    match &t.kind {
        ElemKind::Prim { chr: true, .. } => ct.getattr("c_char"),
        ElemKind::Prim { prim, .. } => prim_ctype(&ct, *prim),
        _ => Ok(pytype.clone()),
    }
}

/// A `ctypes.Structure` subclass named `name` with the stored fields at their stored
/// offsets: natural layout when it gives those offsets (it does for every
/// `#[repr(C)]` struct without `align(N)`), else packed with explicit padding.
fn structure_class(
    py: Python<'_>,
    name: &str,
    layout: &DynLayout,
    fields: &[FieldType],
) -> PyResult<Py<PyAny>> {
    let ct = ctypes(py)?;
    let structure = ct.getattr("Structure")?;
    let builtins = py.import("builtins")?;
    let make = |packed: bool| -> PyResult<Bound<'_, PyAny>> {
        let list = PyList::empty(py);
        let mut end = 0;
        for (i, f) in fields.iter().enumerate() {
            if packed && f.offset > end {
                let pad = ct.getattr("c_uint8")?.mul(f.offset - end)?;
                list.append((format!("_pad{i}"), pad))?;
            }
            list.append((f.name.as_str(), elem_ctype(py, &f.ty)?))?;
            end = f.offset + f.ty.size();
        }
        if packed && layout.size > end {
            let pad = ct.getattr("c_uint8")?.mul(layout.size - end)?;
            list.append(("_pad_end", pad))?;
        }
        let ns = PyDict::new(py);
        ns.set_item("_fields_", list)?;
        if packed {
            ns.set_item("_pack_", 1)?;
        }
        ns.set_item("__module__", "sharedctypes_rs.rebuilt")?;
        builtins
            .getattr("type")?
            .call1((name, (structure.clone(),), ns))
    };
    let natural = make(false)?;
    let sizeof = ct.getattr("sizeof")?;
    let fits = |cls: &Bound<'_, PyAny>| -> PyResult<bool> {
        if sizeof.call1((cls,))?.extract::<usize>()? != layout.size {
            return Ok(false);
        }
        for f in fields {
            let offset: usize = cls.getattr(f.name.as_str())?.getattr("offset")?.extract()?;
            if offset != f.offset {
                return Ok(false);
            }
        }
        Ok(true)
    };
    if fits(&natural)? {
        return Ok(natural.unbind());
    }
    let packed = make(true)?;
    if fits(&packed)? {
        Ok(packed.unbind())
    } else {
        Err(PyValueError::new_err(format!(
            "struct {name} cannot be rebuilt as a ctypes.Structure"
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Reading and writing elements
// ---------------------------------------------------------------------------------------

/// An error for memory a checked layout should never miss.
fn out_of_bounds() -> PyErr {
    crate::errors::InvalidHeapError::new_err(
        "an element lies outside its object: the object's layout is inconsistent",
    )
}

/// Reads the primitive at `offset`.
pub fn load_prim<'py>(
    py: Python<'py>,
    block: &Block,
    offset: usize,
    prim: Primitive,
    chr: bool,
) -> PyResult<Bound<'py, PyAny>> {
    macro_rules! get {
        ($t:ty) => {
            block
                .cell::<$t>(offset)
                .ok_or_else(out_of_bounds)?
                .get()
                .into_pyobject(py)?
                .into_any()
        };
    }
    Ok(match prim {
        Primitive::U8 if chr => {
            let b = block.cell::<u8>(offset).ok_or_else(out_of_bounds)?.get();
            PyBytes::new(py, &[b]).into_any()
        }
        Primitive::I8 => get!(i8),
        Primitive::U8 => get!(u8),
        Primitive::I16 => get!(i16),
        Primitive::U16 => get!(u16),
        Primitive::I32 => get!(i32),
        Primitive::U32 => get!(u32),
        Primitive::I64 => get!(i64),
        Primitive::U64 => get!(u64),
        Primitive::I128 => get!(i128),
        Primitive::U128 => get!(u128),
        Primitive::Isize => get!(isize),
        Primitive::Usize => get!(usize),
        Primitive::F32 => get!(f32),
        Primitive::F64 => get!(f64),
        _ => return Err(PyTypeError::new_err("an unknown primitive")),
    })
}

/// Writes `v` to the primitive at `offset`; `OverflowError` for an integer out of the
/// type's range, `TypeError` for a value of another kind.
pub fn store_prim(
    block: &Block,
    offset: usize,
    prim: Primitive,
    chr: bool,
    v: &Bound<'_, PyAny>,
) -> PyResult<()> {
    macro_rules! set {
        ($t:ty) => {{
            let x: $t = v.extract().map_err(|e| {
                if e.is_instance_of::<PyOverflowError>(v.py()) {
                    PyOverflowError::new_err(format!(
                        "{} does not fit in {}",
                        v.repr().map(|r| r.to_string()).unwrap_or_default(),
                        stringify!($t)
                    ))
                } else {
                    e
                }
            })?;
            block.cell::<$t>(offset).ok_or_else(out_of_bounds)?.set(x)
        }};
    }
    match prim {
        Primitive::U8 if chr => {
            let b = match v.downcast::<PyBytes>() {
                Ok(b) if b.as_bytes().len() == 1 => b.as_bytes()[0],
                Ok(_) => {
                    return Err(PyValueError::new_err(
                        "a 'c' element is one byte: a bytes object of length 1",
                    ))
                }
                Err(_) => v.extract::<u8>().map_err(|_| {
                    PyTypeError::new_err(
                        "a 'c' element is one byte: a bytes object of length 1 (or an int \
                         in 0..=255)",
                    )
                })?,
            };
            block.cell::<u8>(offset).ok_or_else(out_of_bounds)?.set(b)
        }
        Primitive::I8 => set!(i8),
        Primitive::U8 => set!(u8),
        Primitive::I16 => set!(i16),
        Primitive::U16 => set!(u16),
        Primitive::I32 => set!(i32),
        Primitive::U32 => set!(u32),
        Primitive::I64 => set!(i64),
        Primitive::U64 => set!(u64),
        Primitive::I128 => set!(i128),
        Primitive::U128 => set!(u128),
        Primitive::Isize => set!(isize),
        Primitive::Usize => set!(usize),
        Primitive::F32 => set!(f32),
        Primitive::F64 => set!(f64),
        _ => return Err(PyTypeError::new_err("an unknown primitive")),
    }
    Ok(())
}
