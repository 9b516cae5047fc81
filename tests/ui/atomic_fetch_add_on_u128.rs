// A `u128` is accessed as two `u64` halves and std has no portable 128-bit atomic, so
// `Shared<u128>` has no `fetch_add`: take a lock, or count in a `u64`.
use std::sync::atomic::Ordering;

use sharedctypes::RawValue;

fn add(total: &RawValue<u128>) {
    total.fetch_add(1, Ordering::Relaxed);
}

fn main() {}
