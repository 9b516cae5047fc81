//! Allocation: 1M `RawValue::new_in` against 1M `Box::new`, and creating a 1 GiB
//! `RawArray` against a zeroed 1 GiB `Vec`.
//!
//! Fairness: the heap keeps every value alive until it is dropped, so the boxes are
//! kept alive too: each side pushes what it allocates (`Box<i64>` / `RawValue<i64>`
//! handle) into a `Vec` reserved *and pre-faulted* before the timed region, and
//! everything is dropped after it (`iter_batched`, one iteration per batch). The heap
//! for the `RawValue`s is created fresh for every iteration (outside the timed region),
//! so every value comes from fresh memory (the frontier, not a free list); its pages
//! are therefore first touched inside the timed region, while `malloc` reuses the
//! chunks the previous iteration freed. (Allocation with reuse: `benches/reclaim.rs`.)

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sharedctypes::{Heap, RawArray, RawValue};

const N: usize = 1_000_000;
const GIB: usize = 1 << 30;

/// A `Vec` with room for `N` items whose pages are already faulted in.
fn reserved<T>() -> Vec<T> {
    let mut v = Vec::<T>::with_capacity(N);
    // SAFETY: writes zero bytes into the Vec's own (uninitialised) capacity; `len` stays
    // 0, so no `T` is ever read from these bytes.
    unsafe {
        v.as_mut_ptr()
            .cast::<u8>()
            .write_bytes(0, N * std::mem::size_of::<T>())
    };
    v
}

fn alloc_values(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc_1M_i64");
    g.sample_size(20).throughput(Throughput::Elements(N as u64));
    // Baseline.
    g.bench_function("Box_new", |b| {
        b.iter_batched(
            reserved::<Box<i64>>,
            |mut v| {
                for i in 0..N as i64 {
                    v.push(Box::new(black_box(i)));
                }
                v
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("RawValue_new_in", |b| {
        b.iter_batched(
            // 32 bytes a value: its 16-byte header, 8 bytes, rounded to a size class.
            || (Heap::new(N * 32).unwrap(), reserved::<RawValue<i64>>()),
            |(heap, mut v)| {
                for i in 0..N as i64 {
                    v.push(RawValue::new_in(&heap, black_box(i)).unwrap());
                }
                (heap, v)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn create_1gib(c: &mut Criterion) {
    let mut g = c.benchmark_group("create_1GiB_f64_array");
    g.sample_size(20);
    // Baseline: calloc, which maps fresh zero pages lazily, as the heap does.
    g.bench_function("vec_zeroed", |b| {
        b.iter_batched(
            || (),
            |()| vec![0.0f64; black_box(GIB / 8)],
            BatchSize::PerIteration,
        )
    });
    // The heap and the array in it, both inside the timed region.
    g.bench_function("Heap_new_and_RawArray_zeroed_in", |b| {
        b.iter_batched(
            || (),
            |()| {
                // Room for the array's block header and its page alignment too.
                let heap = Heap::new(black_box(GIB + (1 << 16))).unwrap();
                let a = RawArray::<f64>::zeroed_in(&heap, GIB / 8).unwrap();
                (a, heap)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = alloc_values, create_1gib
}
criterion_main!(benches);
