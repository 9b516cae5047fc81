//! The uncontended lock's fast path, for counting instructions with callgrind: each
//! workload is one `#[inline(never)]` function running `N` operations (default
//! 1,000,000), so callgrind's *inclusive* cost of that function divided by `N` is the
//! cost of one operation, loop included (the `empty` workload shows what the loop alone
//! costs).
//!
//! ```sh
//! cargo build --release --example fastpath
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/fastpath.out \
//!     target/release/examples/fastpath
//! callgrind_annotate --inclusive=yes /tmp/fastpath.out | grep 'fastpath::run_'
//! ```
//!
//! `fastpath time [ROUNDS]` times the same workloads instead, *interleaved*: each round
//! runs every workload for 100,000 operations, one after the other, and the program
//! prints per workload the median over the rounds (default 201) of nanoseconds per
//! operation and of the ratio to the `Mutex<i64>` of the same round. On a shared
//! machine whose speed changes from second to second this compares like with like
//! better than timing one workload for seconds and then the next.
//!
//! Only the stable public API (`Value::new_in`, `lock`, `get`/`set`, `synchronized_with`,
//! `Lock`/`RLock::acquire`) is used, so the same file builds against older commits of
//! the crate for a before/after comparison (see `BENCHMARKS.md`).

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

use sharedctypes::{synchronized_with, Heap, Lock, RLock, RawValue, Value};

/// The loop alone.
#[inline(never)]
fn run_empty(n: u64) {
    for i in 0..n {
        black_box(i);
    }
}

/// The baseline: `std::sync::Mutex<i64>` lock + increment + unlock.
#[inline(never)]
fn run_mutex_i64(m: &Mutex<i64>, n: u64) {
    for _ in 0..n {
        let mut guard = black_box(m).lock().unwrap();
        *guard += 1;
    }
}

/// `Value<i64>` (its default lock, an `RLock`) lock + get + set + unlock.
#[inline(never)]
fn run_value_rlock(v: &Value<i64>, n: u64) {
    for _ in 0..n {
        let guard = black_box(v).lock().unwrap();
        guard.set(guard.get() + 1);
    }
}

/// `Value<i64, Lock>` the same.
#[inline(never)]
fn run_value_lock(v: &Value<i64, Lock>, n: u64) {
    for _ in 0..n {
        let guard = black_box(v).lock().unwrap();
        guard.set(guard.get() + 1);
    }
}

/// `Lock` acquire + release alone.
#[inline(never)]
fn run_lock(l: &Lock, n: u64) {
    for _ in 0..n {
        drop(black_box(l).acquire().unwrap());
    }
}

/// `RLock` acquire + release alone.
#[inline(never)]
fn run_rlock(l: &RLock, n: u64) {
    for _ in 0..n {
        drop(black_box(l).acquire().unwrap());
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fastpath [N] | fastpath time [ROUNDS]";
    let (timed, n, rounds) = match args.first().map(String::as_str) {
        Some("time") => {
            let rounds = args.get(1).map_or(201, |a| a.parse().expect(usage));
            (true, 100_000u64, rounds)
        }
        Some(arg) => (false, arg.parse().expect(usage), 1),
        None => (false, 1_000_000, 1),
    };
    let heap = Heap::new(1 << 16).expect("create a heap");

    let mutex = Mutex::new(0i64);
    let value = Value::new_in(&heap, 0i64).expect("allocate");
    let value_lock = synchronized_with(
        RawValue::new_in(&heap, 0i64).expect("allocate"),
        Lock::new_in(&heap).expect("allocate"),
    );
    let lock = Lock::new_in(&heap).expect("allocate");
    let rlock = RLock::new_in(&heap).expect("allocate");

    // Warm up: the first acquisition fills the thread-identity cache (a `gettid` and a
    // read of /proc), which is not the fast path.
    drop(value.lock());
    drop(value_lock.lock());
    drop(lock.acquire());
    drop(rlock.acquire());

    let workloads: [(&str, &dyn Fn()); 6] = [
        ("empty loop", &|| run_empty(n)),
        ("Mutex<i64> lock + increment", &|| run_mutex_i64(&mutex, n)),
        ("Value<i64> (RLock) lock + increment", &|| {
            run_value_rlock(&value, n)
        }),
        ("Value<i64, Lock> lock + increment", &|| {
            run_value_lock(&value_lock, n)
        }),
        ("Lock acquire + release", &|| run_lock(&lock, n)),
        ("RLock acquire + release", &|| run_rlock(&rlock, n)),
    ];
    let mut ns = vec![Vec::new(); workloads.len()];
    for _ in 0..rounds {
        for (i, (_, work)) in workloads.iter().enumerate() {
            let start = Instant::now();
            work();
            ns[i].push(start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    if timed {
        println!("{rounds} interleaved rounds of {n} operations per workload (medians)");
        let mutex_ns = ns[1].clone();
        for ((name, _), times) in workloads.iter().zip(&mut ns) {
            let mut ratios: Vec<f64> = times.iter().zip(&mutex_ns).map(|(t, m)| t / m).collect();
            println!(
                "{name:38} {:7.2} ns  {:5.2}x Mutex",
                median(times),
                median(&mut ratios)
            );
        }
    }

    let expected = i64::try_from(n * rounds).expect("N fits an i64");
    assert_eq!(*mutex.lock().unwrap(), expected);
    assert_eq!(value.get(), expected);
    assert_eq!(value_lock.get(), expected);
    if !timed {
        println!("{n} operations per workload");
    }
}
