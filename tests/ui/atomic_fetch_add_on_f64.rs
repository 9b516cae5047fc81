// std has no atomic float, so `Shared<f64>` has no `fetch_add`: read-modify-write a
// float under a lock, or keep its bits in a `Shared<u64>` with a compare-exchange loop.
use std::sync::atomic::Ordering;

use sharedctypes::RawValue;

fn add(total: &RawValue<f64>) {
    total.fetch_add(1.0, Ordering::Relaxed);
}

fn main() {}
