//! Atomics on `Shared<u64>` against std's `AtomicU64`:
//!
//! - `fetch_add_4_workers_x_1M`: four forked processes each doing 1,000,000
//!   `fetch_add(1, Relaxed)` on one `RawValue<u64>`, beside its hardware baseline, one
//!   `AtomicU64` hit by four threads of one process (issue 11's target: ≤ 1.2×). Each
//!   counter sits alone on its cache line (the `RawValue` is the first object of a heap of
//!   its own, the `AtomicU64` is aligned to 128 bytes). The workers wait at a start line,
//!   a shared atomic they spin on; the time runs from the "go" until the last worker has
//!   finished its loop (`CLOCK_MONOTONIC`, one clock for all processes), so `fork`,
//!   thread creation and exit are left out of both.
//! - `fetch_add_uncontended`: one `fetch_add` per call in one thread, to show that the
//!   `Shared` method costs what std's does.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use sharedctypes::{Heap, Process, RawArray, RawValue};

const WORKERS: usize = 4;
const PER_WORKER: u64 = 1_000_000;
const TOTAL: u64 = WORKERS as u64 * PER_WORKER;

/// Waits at the start line: spins (yielding, since there may be fewer cores than
/// workers) until `go` is set.
#[inline]
fn wait_for_go(go: impl Fn() -> u64) {
    while go() == 0 {
        std::thread::yield_now();
    }
}

/// Four forked processes × `PER_WORKER` `fetch_add`s on `counter`; `slots[0]` is the
/// start line, `slots[1 + i]` worker `i`'s finishing time.
fn in_processes(counter: &RawValue<u64>, slots: &RawArray<u64>) -> Duration {
    for slot in slots.iter() {
        slot.set(0);
    }
    let children: Vec<Process> = (0..WORKERS)
        .map(|i| {
            let (counter, slots) = (counter.clone(), slots.clone());
            Process::spawn(move || {
                wait_for_go(|| slots[0].load(Acquire));
                for _ in 0..PER_WORKER {
                    counter.fetch_add(1, Relaxed);
                }
                slots[1 + i].store(common::monotonic_ns(), Release);
            })
            .expect("fork")
        })
        .collect();
    let go = common::monotonic_ns();
    slots[0].store(go, Release);
    for child in children {
        child.join().expect("a child failed");
    }
    let end = slots.iter().skip(1).map(|s| s.get()).max().unwrap();
    assert_eq!(counter.swap(0, Relaxed), TOTAL, "lost increments");
    Duration::from_nanos(end - go)
}

/// A std atomic alone on its cache line (and the adjacent-line prefetcher's pair).
#[repr(align(128))]
struct Line(AtomicU64);

/// The baseline: four threads × `PER_WORKER` `fetch_add`s on `counter`.
fn in_threads(counter: &Line) -> Duration {
    let go = Line(AtomicU64::new(0));
    let ends: [AtomicU64; WORKERS] = Default::default();
    let start = std::thread::scope(|s| {
        for end in &ends {
            let go = &go;
            s.spawn(move || {
                wait_for_go(|| go.0.load(Acquire));
                for _ in 0..PER_WORKER {
                    counter.0.fetch_add(1, Relaxed);
                }
                end.store(common::monotonic_ns(), Release);
            });
        }
        let start = common::monotonic_ns();
        go.0.store(start, Release);
        start
    });
    let end = ends.iter().map(|e| e.load(Acquire)).max().unwrap();
    assert_eq!(counter.0.swap(0, Relaxed), TOTAL, "lost increments");
    Duration::from_nanos(end - start)
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_add_4_workers_x_1M");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(TOTAL));

    let line = Box::new(Line(AtomicU64::new(0)));
    g.bench_function("AtomicU64_4_threads", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| in_threads(&line)).sum())
    });

    // The counter first in a heap of its own: offset 128 of a page-aligned mapping.
    let counter_heap = Heap::new(4096).unwrap();
    let counter = RawValue::new_in(&counter_heap, 0u64).unwrap();
    let slots = RawArray::<u64>::zeroed(1 + WORKERS).unwrap();
    g.bench_function("RawValue_u64_4_processes", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| in_processes(&counter, &slots)).sum())
    });
    g.finish();
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_add_uncontended");
    let atomic = AtomicU64::new(0);
    g.bench_function("AtomicU64", |b| {
        b.iter(|| black_box(&atomic).fetch_add(1, Relaxed))
    });
    let heap = Heap::new(4096).unwrap();
    let raw = RawValue::new_in(&heap, 0u64).unwrap();
    g.bench_function("RawValue_u64", |b| {
        b.iter(|| black_box(&raw).fetch_add(1, Relaxed))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = contended, uncontended
}
criterion_main!(benches);
