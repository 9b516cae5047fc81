//! The Rust half of `bench/compare-python.sh`: the same workloads as its Python half,
//! each run several times, printing one line per workload:
//!
//! ```text
//! <workload>\t<median seconds>\t<every run's seconds, comma-separated>
//! ```
//!
//! Run with `cargo run --release --example compare [-- RUNS]` (default 21 runs: a run
//! takes milliseconds, so many runs cost nothing and keep a preempted run out of the
//! median on a busy machine).
//!
//! - `locked_increments_1proc`: 1M increments of a `Value<i64>` (default lock, an
//!   `RLock`, as Python's `Value('q', 0)`), each under its own lock acquisition;
//! - `locked_increments_4proc`: 4 forked processes × 250k of the same, timed from before
//!   the first fork to after the last child is reaped (as in Python);
//! - `rawarray_from_slice_10M_f64`: `RawArray::from_slice_in` of 10M `f64` already in a
//!   `Vec`, into a heap created for it (Python: `RawArray('d', list)` of a list built
//!   beforehand);
//! - `condition_ping_pong_10k`: 2 forked processes hand a turn back and forth 10k times
//!   through a `Value<u64>` and a `Condition` (Python: `Value('Q')` and a `Condition`
//!   on its lock), each holding the lock, bumping the counter, notifying and waiting
//!   for the other's bump; timed from before the first fork to after the last reap;
//! - `semaphore_ping_pong_10k`: the same 10k round trips through two `Semaphore`s
//!   (Python: two `multiprocessing.Semaphore`s), checking a raw counter at each
//!   hand-off.

use std::hint::black_box;
use std::time::Instant;

use std::sync::atomic::Ordering::Relaxed;

use sharedctypes::{Condition, Heap, Process, RawArray, RawValue, Semaphore, Value};

const INCREMENTS: i64 = 1_000_000;
const PROCS: i64 = 4;
const ARRAY_LEN: usize = 10_000_000;
const ROUNDS: u64 = 10_000;

/// 1M locked increments in this process.
fn locked_increments_1proc() -> f64 {
    let v = Value::new(0i64).expect("allocate the counter");
    let start = Instant::now();
    for _ in 0..INCREMENTS {
        let guard = v.lock().expect("nobody dies");
        guard.set(guard.get() + 1);
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(v.get(), INCREMENTS);
    secs
}

/// 4 processes × 250k locked increments of one counter.
fn locked_increments_4proc() -> f64 {
    let v = Value::new(0i64).expect("allocate the counter");
    let start = Instant::now();
    let children: Vec<Process> = (0..PROCS)
        .map(|_| {
            let v = v.clone();
            Process::spawn(move || {
                for _ in 0..INCREMENTS / PROCS {
                    let guard = v.lock().expect("nobody dies");
                    guard.set(guard.get() + 1);
                }
            })
            .expect("fork")
        })
        .collect();
    for child in children {
        child.join().expect("the child failed");
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(v.get(), INCREMENTS);
    secs
}

/// A shared array of 10M `f64` from an existing slice, in a heap of its own that is
/// created inside the timed region and freed after it (Python frees its array too):
/// with the default heap every run would keep its 80 MB, and later runs would be
/// measuring a process that has grown by gigabytes.
fn rawarray_from_slice() -> f64 {
    let src: Vec<f64> = (0..ARRAY_LEN).map(|i| i as f64 * 0.5).collect();
    let start = Instant::now();
    let heap = Heap::new(std::mem::size_of_val(&src[..])).expect("create the heap");
    let a = RawArray::from_slice_in(&heap, black_box(&src)).expect("allocate the array");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(a[ARRAY_LEN - 1].get(), (ARRAY_LEN - 1) as f64 * 0.5);
    secs
}

/// Forks one child per side (0 and 1) running `play(side)`, reaps both, and returns
/// the seconds from before the first fork to after the last reap (as in Python).
fn two_players(play: impl Fn(u64) + Clone + Send + 'static) -> f64 {
    let start = Instant::now();
    let children: Vec<Process> = (0..2)
        .map(|side| {
            let play = play.clone();
            Process::spawn(move || play(side)).expect("fork")
        })
        .collect();
    for child in children {
        child.join().expect("the child failed");
    }
    start.elapsed().as_secs_f64()
}

/// 10k round trips through a `Value<u64>` and a `Condition`: side 0 bumps the counter
/// to odd numbers, side 1 to even ones, each waiting for the other's turn.
fn condition_ping_pong() -> f64 {
    let v = Value::new(0u64).expect("allocate the counter");
    let cond = Condition::new().expect("allocate the condition");
    let secs = {
        let (v, cond) = (v.clone(), cond.clone());
        two_players(move |side| {
            let mut guard = v.lock().expect("nobody dies");
            for _ in 0..ROUNDS {
                guard = cond
                    .wait_while(guard, |g| g.get() % 2 != side)
                    .expect("nobody dies");
                guard.set(guard.get() + 1);
                cond.notify_one();
            }
        })
    };
    assert_eq!(v.get(), 2 * ROUNDS);
    secs
}

/// 10k round trips through two `Semaphore`s, each hand-off checked on a raw counter.
fn semaphore_ping_pong() -> f64 {
    let ping = Semaphore::new(0).expect("allocate a semaphore");
    let pong = Semaphore::new(0).expect("allocate a semaphore");
    let counter = RawValue::new(0u64).expect("allocate the counter");
    let secs = {
        let (ping, pong, counter) = (ping.clone(), pong.clone(), counter.clone());
        two_players(move |side| {
            for round in 0..ROUNDS {
                if side == 0 {
                    counter.store(2 * round + 1, Relaxed);
                    ping.release().expect("below the limit");
                    pong.acquire();
                    assert_eq!(counter.load(Relaxed), 2 * round + 2);
                } else {
                    ping.acquire();
                    assert_eq!(counter.load(Relaxed), 2 * round + 1);
                    counter.store(2 * round + 2, Relaxed);
                    pong.release().expect("below the limit");
                }
            }
        })
    };
    assert_eq!(counter.get(), 2 * ROUNDS);
    secs
}

/// A workload's name and the function that runs it once, returning seconds.
type Workload = (&'static str, fn() -> f64);

fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn main() {
    let runs: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("usage: compare [RUNS]"),
        None => 21,
    };
    assert!(runs > 0, "RUNS must be at least 1");
    // Create the default heap before timing anything (Python's heap is set up lazily
    // too, but by its first object, which is made outside the timed region).
    sharedctypes::default_heap();
    let workloads: [Workload; 5] = [
        ("locked_increments_1proc", locked_increments_1proc),
        ("locked_increments_4proc", locked_increments_4proc),
        ("rawarray_from_slice_10M_f64", rawarray_from_slice),
        ("condition_ping_pong_10k", condition_ping_pong),
        ("semaphore_ping_pong_10k", semaphore_ping_pong),
    ];
    for (name, work) in workloads {
        let times: Vec<f64> = (0..runs).map(|_| work()).collect();
        let all: Vec<String> = times.iter().map(|t| format!("{t:.6}")).collect();
        println!("{name}\t{:.6}\t{}", median(&times), all.join(","));
    }
}
