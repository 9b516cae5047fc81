//! The example from Python's `multiprocessing.sharedctypes` documentation, in Rust.
//!
//! ```python
//! lock = Lock()
//! n = Value('i', 7)
//! x = Value(ctypes.c_double, 1.0/3.0, lock=False)
//! s = Array('c', 'hello world', lock=lock)
//! A = Array(Point, [(1.875,-6.25), (-5.75,2.0), (2.375,9.5)], lock=lock)
//! p = Process(target=modify, args=(n, x, s, A))
//! ```
//!
//! Run with `cargo run --example seed`; it prints
//!
//! ```text
//! 49
//! 0.1111111111111111
//! HELLO WORLD
//! [(3.515625, 39.0625), (33.0625, 4.0), (5.640625, 90.25)]
//! ```

use std::io::Write;

use sharedctypes::{Array, Lock, Process, RawValue, SharedStruct, Value};

#[derive(Clone, Copy, Debug, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

/// The child's work: square the numbers and upper-case the string.
fn modify(n: &Value<i32>, x: &RawValue<f64>, s: &Array<u8, Lock>, a: &Array<Point, Lock>) {
    n.update(|n| n.pow(2));
    x.update(|x| x.powi(2));
    s.set_value(&s.value().to_ascii_uppercase())
        .expect("the same length fits");
    let points = a.lock().expect("no holder died");
    for p in points.iter() {
        p.x.update(|x| x.powi(2));
        p.y.update(|y| y.powi(2));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Not `stdout().lock()`: holding Rust's stdout lock across `Process::spawn` makes
    // it wait for the lock (a quarter of a second) and fork without it.
    run(&mut std::io::stdout())
}

/// Builds the shared objects, lets a child process modify them, and prints the
/// results to `out` (the test `tests/seed.rs` checks the exact text).
pub fn run(out: &mut impl Write) -> Result<(), Box<dyn std::error::Error>> {
    let lock = Lock::new()?;
    let n = Value::new(7)?;
    let x = RawValue::new(1.0 / 3.0)?; // lock=False
    let s = Array::from_bytes_with_lock(b"hello world", lock.clone())?;
    let a = Array::from_slice_with_lock(
        &[
            Point { x: 1.875, y: -6.25 },
            Point { x: -5.75, y: 2.0 },
            Point { x: 2.375, y: 9.5 },
        ],
        lock.clone(),
    )?;

    let p = {
        let (n, x, s, a) = (n.clone(), x.clone(), s.clone(), a.clone());
        Process::spawn(move || modify(&n, &x, &s, &a))?
    };
    p.join()?; // `Err(ChildFailed)` if the child panicked

    writeln!(out, "{}", n.get())?;
    writeln!(out, "{}", x.get())?;
    writeln!(out, "{}", String::from_utf8_lossy(&s.value()))?;
    let points: Vec<String> = a
        .to_vec()
        .iter()
        .map(|p| format!("({:?}, {:?})", p.x, p.y))
        .collect();
    writeln!(out, "[{}]", points.join(", "))?;
    Ok(())
}
