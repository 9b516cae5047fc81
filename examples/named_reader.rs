//! The reading half of the named-heap demo: attaches to the heap that
//! `named_writer` created, by name, looks up its objects and prints what it sees.
//!
//! ```sh
//! cargo run --example named_writer &                 # or in another terminal
//! cargo run --example named_reader                   # /sharedctypes-demo, 5 readings
//! cargo run --example named_reader -- /my-heap 20    # another name, 20 readings
//! ```

use std::time::Duration;

use sharedctypes::{Array, Error, Heap, SharedStruct, Value};

/// The same definition as the writer's.
#[derive(Clone, Copy, Debug, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

const DEFAULT_NAME: &str = "/sharedctypes-demo";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| DEFAULT_NAME.to_owned());
    let readings: u32 = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("not a number of readings: {s:?}"))?,
        None => 5,
    };

    let heap = match Heap::open(&name) {
        Err(Error::NotFound { .. }) => {
            return Err(format!(
                "no heap named {name}: start the writer first \
                 (`cargo run --example named_writer -- {name}`)"
            )
            .into())
        }
        other => other?,
    };
    let point: Value<Point> = heap.lookup("point")?;
    let samples: Array<f64> = heap.lookup("samples")?;
    println!(
        "reader {}: opened {name} (created by process {}), keys {:?}",
        std::process::id(),
        heap.creator_pid().map_or("?".to_owned(), |p| p.to_string()),
        heap.keys()?
    );
    for i in 0..readings {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(250));
        }
        let p = point.get();
        let s = samples.to_vec();
        println!(
            "point = ({:+.3}, {:+.3})  samples = [{}]",
            p.x,
            p.y,
            s.iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
