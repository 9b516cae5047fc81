//! The writing half of a named-heap demo: two programs, not forked from each other,
//! sharing a `Value<Point>` and an `Array<f64>` by name.
//!
//! ```sh
//! cargo run --example named_writer                   # creates /sharedctypes-demo, writes for 30 s
//! cargo run --example named_reader                   # in another terminal, while it runs
//! cargo run --example named_writer -- /my-heap 60    # another name, 60 s
//! ```
//!
//! The writer creates the heap, publishes `"point"` and `"samples"`, and moves the point
//! around a circle ten times a second. When it ends (its time is up, or Ctrl-C) it drops
//! the heap, which removes the name; readers that have it open keep reading the last
//! values. A writer killed with `SIGKILL` leaves the name behind:
//! `cargo run --example heaps -- --remove` cleans up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sharedctypes::{Array, Error, Heap, SharedStruct, Value};

/// The reader has the same definition; a different one would be refused by `lookup`
/// with a `LayoutMismatch` that names the difference.
#[derive(Clone, Copy, Debug, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

const DEFAULT_NAME: &str = "/sharedctypes-demo";
const SAMPLES: usize = 8;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed); // async-signal-safe: one atomic store
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| DEFAULT_NAME.to_owned());
    let seconds: u64 = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("not a number of seconds: {s:?}"))?,
        None => 30,
    };

    let heap = match Heap::create(&name, 1 << 20) {
        Err(Error::AlreadyExists { .. }) => {
            return Err(format!(
                "{name} already exists: another writer is running, or one was killed; \
                 `cargo run --example heaps -- --remove` removes stale heaps"
            )
            .into())
        }
        other => other?,
    };
    let point = Value::new_in(&heap, Point { x: 1.0, y: 0.0 })?;
    let samples = Array::<f64>::zeroed_in(&heap, SAMPLES)?;
    heap.publish("point", &point)?;
    heap.publish("samples", &samples)?;

    // Ctrl-C and `kill` end the loop, so the name is removed on the way out.
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let handler = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler) };
    }

    println!(
        "writer {}: created {name}, published \"point\" and \"samples\"; writing for {seconds} s",
        std::process::id()
    );
    println!("run `cargo run --example named_reader -- {name}` in another terminal");
    let start = Instant::now();
    let mut tick = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) && !STOP.load(Ordering::Relaxed) {
        tick += 1;
        let angle = tick as f64 / 10.0;
        {
            // One lock for both coordinates: readers never see half a move. A reader
            // that died holding the lock changed nothing, so carry on past its death.
            let p = point.lock().unwrap_or_else(|died| died.into_inner());
            p.x.set(angle.cos());
            p.y.set(angle.sin());
        }
        {
            let s = samples.lock().unwrap_or_else(|died| died.into_inner());
            for (i, cell) in s.iter().enumerate() {
                cell.set(tick as f64 + i as f64 / 10.0);
            }
        }
        if tick % 10 == 0 {
            let p = point.get();
            println!("tick {tick:4}: point = ({:+.3}, {:+.3})", p.x, p.y);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("writer: done after {tick} ticks; {name} is removed as the heap is dropped");
    Ok(())
}
