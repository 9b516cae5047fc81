//! Bulk work on 10M `f64` (80 MB): scanning (summing in order) through a `RawArray` and
//! through an `Array` guard against a `Vec<f64>`, and copying out (`to_vec`), in
//! (`copy_from_slice`) and into a new array (`from_slice`) against `Vec::clone` and
//! `memcpy` (`<[f64]>::copy_from_slice`).
//!
//! Results of the copying benchmarks (80 MB each) are dropped outside the timed region
//! (`iter_batched`, one iteration per batch), for the baselines too.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sharedctypes::{Array, Heap, RawArray, Shared};

const N: usize = 10_000_000;
const BYTES: usize = N * std::mem::size_of::<f64>();

fn source() -> Vec<f64> {
    (0..N).map(|i| i as f64 * 0.5).collect()
}

fn scan(c: &mut Criterion) {
    let src = source();
    let heap = Heap::new(BYTES + (1 << 16)).unwrap();
    let raw = RawArray::from_slice_in(&heap, &src).unwrap();
    let heap2 = Heap::new(BYTES + (1 << 16)).unwrap();
    let array = Array::from_slice_in(&heap2, &src).unwrap();

    let mut g = c.benchmark_group("scan_10M_f64");
    g.sample_size(20)
        .throughput(Throughput::Bytes(BYTES as u64));
    // Baseline. A sum in order: neither side may reorder float additions.
    g.bench_function("Vec", |b| b.iter(|| black_box(&src).iter().sum::<f64>()));
    g.bench_function("RawArray", |b| {
        b.iter(|| black_box(&raw).iter().map(Shared::get).sum::<f64>())
    });
    g.bench_function("Array_guard", |b| {
        b.iter(|| {
            let guard = black_box(&array).lock().unwrap();
            guard.iter().map(Shared::get).sum::<f64>()
        })
    });
    g.finish();
}

fn copy_out(c: &mut Criterion) {
    let src = source();
    let heap = Heap::new(2 * BYTES + (1 << 16)).unwrap();
    let raw = RawArray::from_slice_in(&heap, &src).unwrap();
    let array = Array::from_slice_in(&heap, &src).unwrap();

    let mut g = c.benchmark_group("copy_out_10M_f64");
    g.sample_size(10)
        .throughput(Throughput::Bytes(BYTES as u64));
    // Baseline: a new Vec holding a copy.
    g.bench_function("Vec_clone", |b| {
        b.iter_batched(|| (), |()| black_box(&src).clone(), BatchSize::PerIteration)
    });
    g.bench_function("RawArray_to_vec", |b| {
        b.iter_batched(
            || (),
            |()| black_box(&raw).to_vec(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("Array_to_vec", |b| {
        b.iter_batched(
            || (),
            |()| black_box(&array).to_vec(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn copy_in(c: &mut Criterion) {
    let src = source();
    let heap = Heap::new(2 * BYTES + (1 << 16)).unwrap();
    let raw = RawArray::<f64>::zeroed_in(&heap, N).unwrap();
    let array = Array::<f64>::zeroed_in(&heap, N).unwrap();
    let mut dst = vec![0.0f64; N];
    // `vec!` and fresh heap memory are both mapped lazily: fault every destination page
    // in before measuring, so that only the copying is timed.
    dst.copy_from_slice(&src);
    raw.copy_from_slice(&src).unwrap();
    array.copy_from_slice(&src).unwrap();

    let mut g = c.benchmark_group("copy_in_10M_f64");
    g.sample_size(10)
        .throughput(Throughput::Bytes(BYTES as u64));
    // Baseline: memcpy into an existing buffer.
    g.bench_function("memcpy", |b| {
        b.iter(|| black_box(&mut dst).copy_from_slice(black_box(&src)))
    });
    g.bench_function("RawArray_copy_from_slice", |b| {
        b.iter(|| black_box(&raw).copy_from_slice(black_box(&src)).unwrap())
    });
    g.bench_function("Array_copy_from_slice", |b| {
        b.iter(|| black_box(&array).copy_from_slice(black_box(&src)).unwrap())
    });
    g.finish();
}

fn new_from_slice(c: &mut Criterion) {
    let src = source();

    let mut g = c.benchmark_group("new_from_slice_10M_f64");
    g.sample_size(10)
        .throughput(Throughput::Bytes(BYTES as u64));
    // Baseline: allocate and copy into fresh (not yet faulted-in) memory.
    g.bench_function("Vec_clone", |b| {
        b.iter_batched(|| (), |()| black_box(&src).clone(), BatchSize::PerIteration)
    });
    // A fresh heap per iteration (created outside the timed region): its fresh pages
    // are faulted in by the copy, like the Vec's (a freed large block's pages are given
    // back to the system too, so reuse would fault them in again all the same). Room
    // for the block's header and its page alignment besides the array.
    g.bench_function("RawArray_from_slice_in", |b| {
        b.iter_batched(
            || Heap::new(BYTES + (1 << 16)).unwrap(),
            |heap| {
                let a = RawArray::from_slice_in(&heap, black_box(&src)).unwrap();
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
    targets = scan, copy_out, copy_in, new_from_slice
}
criterion_main!(benches);
