//! The Rust half of the README's "From Python" example: a Rust program publishes a
//! `Value<Point>`, an `Array<f64>` and the `Lock` that guards both in a named heap; a
//! Python program (`sharedctypes_rs`) looks them up by key — no declarations — and
//! writes back.
//!
//! ```sh
//! cargo run --example py_writer              # creates /sharedctypes-py-demo, waits
//! python3 reader.py                          # the README's Python reader
//! # press Enter in the first terminal: it prints the point Python moved, and exits
//! ```

use std::error::Error;
use std::io::BufRead;

use sharedctypes::{Array, Heap, Lock, SharedStruct, Value};

/// Python sees it as a `ctypes.Structure` named `Point` with fields `x` and `y`.
#[derive(Clone, Copy, Debug, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/sharedctypes-py-demo".to_owned());
    let heap = Heap::create(&name, 1 << 20)?;
    let lock = Lock::new_in(&heap)?;
    let point = Value::with_lock(Point { x: 1.5, y: -2.0 }, lock.clone())?;
    let samples = Array::from_slice_with_lock(&[0.5, 1.5, 2.5, 3.5], lock.clone())?;
    heap.publish("point", &point)?;
    heap.publish("samples", &samples)?;
    heap.publish("lock", &lock)?;
    println!("ready: {name}");

    // Until a line (or end of input) comes, the Python side reads and writes.
    std::io::stdin().lock().lines().next();
    let p = point.get();
    println!("point: x = {}, y = {}", p.x, p.y);
    println!("samples: {:?}", samples.to_vec());
    Ok(())
}
