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

/// A zeroed `MAP_SHARED | MAP_ANONYMOUS` mapping big enough for a `T`, inherited by
/// every child forked afterwards; never unmapped (a benchmark makes a handful). The
/// pthread baselines put their process-shared objects here: shared memory of the same
/// kind as a heap's (shmem), written directly with `libc`.
pub fn shared_mapping<T>() -> *mut T {
    let size = std::mem::size_of::<T>().max(1);
    // SAFETY: an anonymous shared mapping at an address of the kernel's choosing.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED, "mmap");
    // Page-aligned, so aligned for any `T` a benchmark puts there.
    addr.cast()
}

/// Forks `procs` children that each run `work(index)` once, all released at the same
/// moment from a start line in `slots[0]`; returns the time from the release until the
/// last child finished `work` (each writes its end time into `slots[1 + index]`; both
/// clocks are `CLOCK_MONOTONIC`), so `fork` and process exit are left out, identically
/// for every contender. `slots` needs `1 + procs` elements.
pub fn race<F>(procs: usize, slots: &sharedctypes::RawArray<u64>, work: F) -> Duration
where
    F: Fn(usize) + Clone + Send + 'static,
{
    assert!(
        slots.len() > procs,
        "one start line and one end time per child"
    );
    for slot in slots.iter() {
        slot.set(0);
    }
    let children: Vec<sharedctypes::Process> = (0..procs)
        .map(|i| {
            let (slots, work) = (slots.clone(), work.clone());
            sharedctypes::Process::spawn(move || {
                while slots[0].load(std::sync::atomic::Ordering::Acquire) == 0 {
                    std::thread::yield_now();
                }
                work(i);
                slots[1 + i].store(monotonic_ns(), std::sync::atomic::Ordering::Release);
            })
            .expect("fork")
        })
        .collect();
    let go = monotonic_ns();
    slots[0].store(go, std::sync::atomic::Ordering::Release);
    for child in children {
        child.join().expect("a child failed");
    }
    let end = slots
        .iter()
        .skip(1)
        .take(procs)
        .map(|s| s.get())
        .max()
        .unwrap();
    Duration::from_nanos(end - go)
}
