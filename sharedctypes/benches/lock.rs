//! Uncontended locking: a `Value<i64>` lock + increment against `std::sync::Mutex<i64>`,
//! and `Lock`/`RLock` alone against `std::sync::Mutex<()>`. One thread, one process:
//! this is the fast path every locked access pays.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::Mutex;

use criterion::{criterion_group, criterion_main, Criterion};
use sharedctypes::{synchronized_with, Heap, Lock, RLock, RawValue, Value};

fn lock_increment(c: &mut Criterion) {
    let heap = Heap::new(1 << 16).unwrap();
    let mut g = c.benchmark_group("uncontended_lock_increment");

    // Baseline.
    let mutex = Mutex::new(0i64);
    g.bench_function("std_Mutex_i64", |b| {
        b.iter(|| {
            let mut guard = black_box(&mutex).lock().unwrap();
            *guard += 1;
        })
    });

    // `Value::new_in` gives the default lock, an `RLock` (Python's `lock=True`).
    let value = Value::new_in(&heap, 0i64).unwrap();
    g.bench_function("Value_i64_RLock", |b| {
        b.iter(|| {
            let guard = black_box(&value).lock().unwrap();
            guard.set(guard.get() + 1);
        })
    });

    let value = synchronized_with(
        RawValue::new_in(&heap, 0i64).unwrap(),
        Lock::new_in(&heap).unwrap(),
    );
    g.bench_function("Value_i64_Lock", |b| {
        b.iter(|| {
            let guard = black_box(&value).lock().unwrap();
            guard.set(guard.get() + 1);
        })
    });

    // The convenience call: one lock per `update`.
    let value = Value::new_in(&heap, 0i64).unwrap();
    g.bench_function("Value_i64_RLock_update", |b| {
        b.iter(|| black_box(&value).update(|x| x + 1))
    });
    g.finish();
}

fn lock_alone(c: &mut Criterion) {
    let heap = Heap::new(1 << 16).unwrap();
    let mut g = c.benchmark_group("uncontended_lock_unlock");

    // Baseline.
    let mutex = Mutex::new(());
    g.bench_function("std_Mutex", |b| {
        b.iter(|| drop(black_box(&mutex).lock().unwrap()))
    });

    let lock = Lock::new_in(&heap).unwrap();
    g.bench_function("Lock", |b| {
        b.iter(|| drop(black_box(&lock).acquire().unwrap()))
    });

    let rlock = RLock::new_in(&heap).unwrap();
    g.bench_function("RLock", |b| {
        b.iter(|| drop(black_box(&rlock).acquire().unwrap()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = lock_increment, lock_alone
}
criterion_main!(benches);
