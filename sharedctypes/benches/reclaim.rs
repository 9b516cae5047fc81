//! Memory that is given back (issue 12): what counting and the free lists cost.
//!
//! - `new_drop_1M`: 1M × (`RawValue::<u64>::new_in` + drop) against 1M ×
//!   (`Box::new` + drop). Each pair frees what it allocated, so both sides reuse one
//!   block (the heap from its size class's free list, `malloc` from its tcache).
//! - `clone_drop_1M`: 1M × (handle clone + drop) against `Arc` clone + drop.
//! - `churn_4proc_1M`: 4 processes × 1M allocate-and-drop of 64-byte objects
//!   (`RawValue<[u64; 8]>`) in one heap, against 4 threads × 1M `malloc(64)` + `free`
//!   (glibc, per-thread caches). Both sides keep a small rolling window of 16 live
//!   objects per worker, so that frees are not always of the block just allocated.
//!
//! Run: `cargo bench -p sharedctypes --bench reclaim`, ratios with
//! `python3 bench/ratios.py` (see BENCHMARKS.md).

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sharedctypes::{Heap, Process, RawValue};

const N: usize = 1_000_000;
const PROCS: usize = 4;
const WINDOW: usize = 16;

fn new_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_drop_1M");
    g.sample_size(20).throughput(Throughput::Elements(N as u64));
    g.bench_function("Box_new_drop", |b| {
        b.iter(|| {
            for i in 0..N as u64 {
                drop(black_box(Box::new(black_box(i))));
            }
        })
    });
    let heap = Heap::new(1 << 20).unwrap();
    g.bench_function("RawValue_new_in_drop", |b| {
        b.iter(|| {
            for i in 0..N as u64 {
                drop(black_box(RawValue::new_in(&heap, black_box(i)).unwrap()));
            }
        })
    });
    g.finish();
}

fn clone_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("clone_drop_1M");
    g.sample_size(20).throughput(Throughput::Elements(N as u64));
    let arc = Arc::new(0u64);
    g.bench_function("Arc_clone_drop", |b| {
        b.iter(|| {
            for _ in 0..N {
                drop(black_box(Arc::clone(black_box(&arc))));
            }
        })
    });
    let heap = Heap::new(1 << 20).unwrap();
    let v = RawValue::new_in(&heap, 0u64).unwrap();
    g.bench_function("RawValue_clone_drop", |b| {
        b.iter(|| {
            for _ in 0..N {
                drop(black_box(black_box(&v).clone()));
            }
        })
    });
    g.finish();
}

/// One worker's churn on the heap: `n` allocate-and-drop pairs with a rolling window.
fn heap_worker(heap: &Heap, n: usize) {
    let mut window: Vec<Option<RawValue<[u64; 8]>>> = (0..WINDOW).map(|_| None).collect();
    for i in 0..n {
        let v = RawValue::<[u64; 8]>::zeroed_in(heap).unwrap();
        window[i % WINDOW] = Some(black_box(v));
    }
}

/// The same churn with `malloc`/`free`.
fn malloc_worker(n: usize) {
    let mut window = [std::ptr::null_mut::<libc::c_void>(); WINDOW];
    for i in 0..n {
        // SAFETY: malloc has no preconditions; the pointer is freed once, below or
        // when the window slot is reused.
        let p = unsafe { libc::malloc(64) };
        black_box(p);
        let slot = &mut window[i % WINDOW];
        // SAFETY: `*slot` is null or a pointer malloc returned and nothing freed yet.
        unsafe { libc::free(*slot) };
        *slot = p;
    }
    for p in window {
        // SAFETY: as above.
        unsafe { libc::free(p) };
    }
}

fn churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn_4proc_1M");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements((PROCS * N) as u64));
    g.bench_function("malloc_free_4_threads", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                let threads: Vec<_> = (0..PROCS)
                    .map(|_| std::thread::spawn(|| malloc_worker(N)))
                    .collect();
                for t in threads {
                    t.join().unwrap();
                }
            }
            t0.elapsed()
        })
    });
    let heap = Heap::new(64 << 20).unwrap();
    g.bench_function("heap_alloc_drop_4_processes", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                let children: Vec<_> = (0..PROCS)
                    .map(|_| {
                        let heap = heap.clone();
                        Process::spawn(move || heap_worker(&heap, N)).unwrap()
                    })
                    .collect();
                for c in children {
                    c.join().unwrap();
                }
            }
            t0.elapsed()
        })
    });
    assert_eq!(heap.live_objects(), 0, "every worker gave its objects back");
    g.finish();
}

criterion_group!(benches, new_drop, clone_drop, churn);
criterion_main!(benches);
