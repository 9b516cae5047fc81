//! A Rust peer for the Python module's tests (`sharedctypes-py/tests`): each
//! subcommand is one side of a cross-language test, run by pytest as a separate
//! program that shares a named heap with Python.
//!
//! ```sh
//! py_peer serve NAME          # publish "point" (Value<Point, Lock>), "samples"
//!                             # (Array<f64, Lock>, 1000 elements: i / 2), "lock";
//!                             # print "ready", wait for a line, print the point
//! py_peer serve-big NAME N    # publish "big": RawArray<f64> of N elements (i as f64)
//! py_peer increment NAME N    # N times: take "lock", point.x += 1
//! py_peer hold NAME           # take "lock", print "held", sleep (to be killed)
//! py_peer acquire NAME        # take "lock": print "owner-died" or "clean"
//! py_peer lookup-point NAME KEY
//!                             # lookup::<Value<Point>>(KEY): print "x y" and add 1 to
//!                             # x, or print "error: <message>"
//! ```

use std::error::Error;
use std::io::BufRead;
use std::time::Duration;

use sharedctypes::{Array, Heap, Lock, RawArray, SharedStruct, Value};

#[derive(Clone, Copy, Debug, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "serve" => {
            let heap = Heap::create(arg(1), 1 << 20)?;
            let lock = Lock::new_in(&heap)?;
            let point = Value::with_lock(Point { x: 0.0, y: 0.5 }, lock.clone())?;
            let samples: Vec<f64> = (0..1000).map(|i| f64::from(i) / 2.0).collect();
            let samples = Array::from_slice_with_lock(&samples, lock.clone())?;
            heap.publish("point", &point)?;
            heap.publish("samples", &samples)?;
            heap.publish("lock", &lock)?;
            println!("ready");
            std::io::stdin().lock().lines().next();
            let p = point.get();
            println!("{} {}", p.x, p.y);
        }
        "serve-big" => {
            let n: usize = arg(2).parse()?;
            let heap = Heap::create(arg(1), n * 8 + (1 << 16))?;
            let big = RawArray::try_from_iter_in(&heap, (0..n).map(|i| i as f64))?;
            heap.publish("big", &big)?;
            println!("ready");
            std::io::stdin().lock().lines().next();
        }
        "increment" => {
            let heap = Heap::open(arg(1))?;
            let point: Value<Point, Lock> = heap.lookup("point")?;
            let n: u64 = arg(2).parse()?;
            for _ in 0..n {
                let g = point.lock().unwrap_or_else(|died| died.into_inner());
                g.x.set(g.x.get() + 1.0);
            }
        }
        "hold" => {
            let heap = Heap::open(arg(1))?;
            let lock: Lock = heap.lookup("lock")?;
            let _g = lock.acquire().unwrap_or_else(|died| died.into_inner());
            println!("held");
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        "acquire" => {
            let heap = Heap::open(arg(1))?;
            let lock: Lock = heap.lookup("lock")?;
            let said = match lock.acquire_timeout(Duration::from_secs(30)) {
                Ok(_) => "clean",
                Err(sharedctypes::TryLockError::OwnerDied(_)) => "owner-died",
                Err(sharedctypes::TryLockError::WouldBlock) => "timed-out",
            };
            println!("{said}");
        }
        "lookup-point" => {
            let heap = Heap::open(arg(1))?;
            match heap.lookup::<Value<Point>>(arg(2)) {
                Ok(p) => {
                    let v = p.get();
                    println!("{} {}", v.x, v.y);
                    p.update(|p| Point { x: p.x + 1.0, ..p });
                }
                Err(e) => println!("error: {e}"),
            }
        }
        other => return Err(format!("unknown subcommand {other:?}").into()),
    }
    Ok(())
}
