//! One access per call: `Value::get`/`set` (which take the lock each time, like Python's
//! `.value`) and `RawValue::get`/`set` (one relaxed atomic), against a plain `Cell` and a
//! relaxed `AtomicI64` in ordinary memory.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use criterion::{criterion_group, criterion_main, Criterion};
use sharedctypes::{Heap, RawValue, Value};

fn get(c: &mut Criterion) {
    let heap = Heap::new(1 << 16).unwrap();
    let mut g = c.benchmark_group("get");

    // Baselines.
    let cell = Cell::new(7i64);
    g.bench_function("Cell_i64", |b| b.iter(|| black_box(&cell).get()));
    let atomic = AtomicI64::new(7);
    g.bench_function("AtomicI64_relaxed", |b| {
        b.iter(|| black_box(&atomic).load(Relaxed))
    });

    let raw = RawValue::new_in(&heap, 7i64).unwrap();
    g.bench_function("RawValue_i64", |b| b.iter(|| black_box(&raw).get()));
    let value = Value::new_in(&heap, 7i64).unwrap();
    g.bench_function("Value_i64_locked", |b| b.iter(|| black_box(&value).get()));
    g.finish();
}

fn set(c: &mut Criterion) {
    let heap = Heap::new(1 << 16).unwrap();
    let mut g = c.benchmark_group("set");

    // Baselines.
    let cell = Cell::new(0i64);
    g.bench_function("Cell_i64", |b| {
        b.iter(|| black_box(&cell).set(black_box(7)))
    });
    let atomic = AtomicI64::new(0);
    g.bench_function("AtomicI64_relaxed", |b| {
        b.iter(|| black_box(&atomic).store(black_box(7), Relaxed))
    });

    let raw = RawValue::new_in(&heap, 0i64).unwrap();
    g.bench_function("RawValue_i64", |b| {
        b.iter(|| black_box(&raw).set(black_box(7)))
    });
    let value = Value::new_in(&heap, 0i64).unwrap();
    g.bench_function("Value_i64_locked", |b| {
        b.iter(|| black_box(&value).set(black_box(7)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = get, set
}
criterion_main!(benches);
