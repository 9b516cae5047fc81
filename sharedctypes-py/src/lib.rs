//! `sharedctypes_rs`: Python's `multiprocessing.sharedctypes` on the `sharedctypes`
//! crate, so that Python programs share typed values, arrays and structs with forked
//! children and with Rust programs (through named heaps), with locks that survive
//! their holder's death.
//!
//! Everything is the crate's: heaps, allocation, the directory and its layout checks,
//! locks and the coordination objects. This crate only turns Python types into
//! layouts (typecodes, `ctypes` types) and back, and Python calls into the crate's.
//!
//! ```python
//! import sharedctypes_rs as sc
//!
//! heap = sc.Heap.create("/demo", 1 << 20)
//! counter = heap.Value("q", 0)
//! with counter.get_lock():
//!     counter.value += 1
//! heap.publish("counter", counter)
//! ```

mod errors;
mod heap;
mod locks;
mod objects;
mod types;

use pyo3::prelude::*;

/// The module.
#[pymodule]
fn sharedctypes_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    locks::register_atfork();
    m.add(
        "InvalidHeapError",
        py.get_type::<errors::InvalidHeapError>(),
    )?;
    m.add(
        "LayoutMismatchError",
        py.get_type::<errors::LayoutMismatchError>(),
    )?;
    m.add(
        "OwnerDiedWarning",
        py.get_type::<errors::OwnerDiedWarning>(),
    )?;
    m.add_class::<heap::PyHeap>()?;
    m.add_class::<objects::RawValue>()?;
    m.add_class::<objects::RawArray>()?;
    m.add_class::<objects::Value>()?;
    m.add_class::<objects::Array>()?;
    m.add_class::<objects::StructView>()?;
    m.add_class::<locks::PyLock>()?;
    m.add_class::<locks::PyRLock>()?;
    m.add_class::<locks::PyCondition>()?;
    m.add_class::<locks::PyEvent>()?;
    m.add_class::<locks::PySemaphore>()?;
    m.add_class::<locks::PyBoundedSemaphore>()?;
    m.add_class::<locks::PyBarrier>()?;
    m.add_function(wrap_pyfunction!(heap::default_heap, m)?)?;
    m.add("TYPECODES", types::TYPECODES)?;
    Ok(())
}
