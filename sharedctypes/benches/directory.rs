//! Lookup in a heap's directory holding 100,000 published keys, against a lookup in a
//! `HashMap<String, u64>` of the same keys.
//!
//! Both sides look the keys up in one fixed pseudo-random order, so that neither walks
//! its memory in the order it was built. The lookup builds a working handle
//! (`RawValue<u64>`, which clones the heap's `Arc`), and checks the entry it reads
//! (bounds, alignment, kind, stored layout); the map returns a reference. Every key is
//! looked up once before measuring: a `Heap` handle checks an entry against the rest of
//! the directory the first time it uses it (O(log n)), and only compares it with what it
//! checked after that, which is the steady state measured here.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sharedctypes::{Heap, RawValue};

const N: usize = 100_000;

/// `0..N` in a fixed pseudo-random order (xorshift, Fisher–Yates).
fn shuffled() -> Vec<usize> {
    let mut order: Vec<usize> = (0..N).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..N).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

fn lookup(c: &mut Criterion) {
    let keys: Vec<String> = (0..N).map(|i| format!("key-{i}")).collect();
    let order = shuffled();
    let heap = Heap::new(64 << 20).unwrap();
    for (i, k) in keys.iter().enumerate() {
        let v = RawValue::new_in(&heap, i as u64).unwrap();
        heap.publish(k, &v).unwrap();
    }
    let map: HashMap<String, u64> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i as u64))
        .collect();
    for k in &keys {
        heap.lookup::<RawValue<u64>>(k).unwrap();
    }

    let mut g = c.benchmark_group("lookup_100k_keys");
    // Baseline.
    g.bench_function("HashMap_String_u64", |b| {
        let mut i = 0;
        b.iter(|| {
            let k = &keys[order[i % N]];
            i += 1;
            black_box(map.get(black_box(k.as_str())))
        })
    });
    g.bench_function("Heap_lookup_RawValue_u64", |b| {
        let mut i = 0;
        b.iter(|| {
            let k = &keys[order[i % N]];
            i += 1;
            black_box(heap.lookup::<RawValue<u64>>(black_box(k)).unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = lookup
}
criterion_main!(benches);
