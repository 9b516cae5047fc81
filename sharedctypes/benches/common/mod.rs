//! Shared settings and helpers for the benchmarks (not a bench target itself: cargo only
//! discovers `benches/*.rs` and `benches/*/main.rs`).

#![allow(dead_code)] // each bench target uses a different subset

use std::time::Duration;

use criterion::Criterion;

/// Small, fixed measurement budget so that `cargo bench` stays within a few minutes on
/// a 2-core machine. Groups with slow iterations lower `sample_size` further.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine, so a
/// child's timestamp can be compared with its parent's.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
