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
//! Only the stable public API (`Value::new_in`, `lock`, `get`/`set`, `synchronized_with`,
//! `Lock`/`RLock::acquire`) is used, so the same file builds against older commits of
//! the crate for a before/after comparison (see `BENCHMARKS.md`).

use std::hint::black_box;
use std::sync::Mutex;

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

fn main() {
    let n: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("usage: fastpath [N]"),
        None => 1_000_000,
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

    run_empty(n);
    run_mutex_i64(&mutex, n);
    run_value_rlock(&value, n);
    run_value_lock(&value_lock, n);
    run_lock(&lock, n);
    run_rlock(&rlock, n);

    let expected = i64::try_from(n).expect("N fits an i64");
    assert_eq!(*mutex.lock().unwrap(), expected);
    assert_eq!(value.get(), expected);
    assert_eq!(value_lock.get(), expected);
    println!("{n} operations per workload");
}
