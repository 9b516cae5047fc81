//! Contended locking across processes: 4 forked children × 250,000 locked increments of
//! one shared counter, with sharedctypes' futex lock (`Value<i64>`) and, as the
//! hardware anchor, a robust process-shared pthread mutex over the same kind of memory
//! (`pthread_mutexattr_setpshared` + `setrobust`, in a `MAP_SHARED` mapping).
//!
//! Each measured run forks the children with `Process::spawn`; they wait at a start
//! line in shared memory, and the time runs from the parent's "go" until the last child
//! has finished its loop (both read `CLOCK_MONOTONIC`), so the cost of `fork` and of
//! process exit is left out, identically for every contender.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use sharedctypes::{synchronized_with, Heap, Lock, Process, RawArray, RawValue, Value};

const PROCS: usize = 4;
const PER_PROC: i64 = 250_000;
const TOTAL: i64 = PROCS as i64 * PER_PROC;

/// Forks `PROCS` children that each run `work` once, all released at the same moment;
/// returns the time from the release until the last child finished `work`.
fn race<F>(slots: &RawArray<u64>, work: F) -> Duration
where
    F: Fn() + Clone + Send + 'static,
{
    for slot in slots.iter() {
        slot.set(0);
    }
    let children: Vec<Process> = (0..PROCS)
        .map(|i| {
            let (slots, work) = (slots.clone(), work.clone());
            Process::spawn(move || {
                while slots[0].get() == 0 {
                    std::thread::yield_now();
                }
                work();
                slots[1 + i].set(common::monotonic_ns());
            })
            .expect("fork")
        })
        .collect();
    let go = common::monotonic_ns();
    slots[0].set(go);
    for child in children {
        child.join().expect("the child failed");
    }
    let end = slots.iter().skip(1).map(|s| s.get()).max().unwrap();
    Duration::from_nanos(end - go)
}

/// A robust, process-shared pthread mutex and a counter, in their own `MAP_SHARED`
/// anonymous mapping (inherited across `fork`).
#[derive(Clone, Copy)]
struct PthreadCounter {
    mutex: *mut libc::pthread_mutex_t,
    counter: *mut i64,
}

/// The layout of the mapping.
#[repr(C)]
struct PthreadShared {
    mutex: libc::pthread_mutex_t,
    counter: i64,
}

// SAFETY: the pointees live in a shared mapping that is never unmapped (the bench leaks
// it), and the counter is only touched while the process-shared mutex is held.
unsafe impl Send for PthreadCounter {}
// SAFETY: as above.
unsafe impl Sync for PthreadCounter {}

impl PthreadCounter {
    fn new() -> PthreadCounter {
        let base = common::shared_mapping::<PthreadShared>().cast::<u8>();
        let this = PthreadCounter {
            mutex: base
                .wrapping_add(std::mem::offset_of!(PthreadShared, mutex))
                .cast(),
            counter: base
                .wrapping_add(std::mem::offset_of!(PthreadShared, counter))
                .cast(),
        };
        // SAFETY: zeroed is a valid bit pattern for the attribute object, which
        // pthread_mutexattr_init then initialises.
        let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is valid for writes.
        let rc = unsafe { libc::pthread_mutexattr_init(&mut attr) };
        assert_eq!(rc, 0);
        // SAFETY: `attr` was initialised above.
        let rc =
            unsafe { libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED) };
        assert_eq!(rc, 0);
        // SAFETY: as above.
        let rc =
            unsafe { libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST) };
        assert_eq!(rc, 0);
        // SAFETY: `mutex` points into a fresh, page-aligned mapping, aligned and large
        // enough for a pthread_mutex_t.
        let rc = unsafe { libc::pthread_mutex_init(this.mutex, &attr) };
        assert_eq!(rc, 0);
        // SAFETY: `attr` was initialised and is no longer needed.
        unsafe { libc::pthread_mutexattr_destroy(&mut attr) };
        this
    }

    #[inline]
    fn increment(&self) {
        // SAFETY: the mutex was initialised in `new` and its mapping is never unmapped.
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex) };
        if rc == libc::EOWNERDEAD {
            // Never happens here (no child dies holding it); handled as a robust-mutex
            // user must, so that the measured code is what such a user would write.
            // SAFETY: we hold the mutex after EOWNERDEAD.
            unsafe { libc::pthread_mutex_consistent(self.mutex) };
        } else {
            debug_assert_eq!(rc, 0);
        }
        // SAFETY: the counter is aligned, in the mapping, and only accessed while the
        // mutex is held.
        unsafe { *self.counter += 1 };
        // SAFETY: we hold the mutex.
        unsafe { libc::pthread_mutex_unlock(self.mutex) };
    }

    /// The count so far; resets it to 0.
    fn take(&self) -> i64 {
        // SAFETY: no child is running, so nobody else touches the counter.
        unsafe { std::ptr::replace(self.counter, 0) }
    }
}

fn contended(c: &mut Criterion) {
    let heap = Heap::new(1 << 20).unwrap();
    let slots = RawArray::<u64>::zeroed_in(&heap, 1 + PROCS).unwrap();

    let mut g = c.benchmark_group("contended_4proc_x_250k_increments");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(TOTAL as u64));

    // The hardware anchor.
    let pthread = PthreadCounter::new();
    g.bench_function("pthread_mutex_robust_pshared", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = race(&slots, move || {
                        for _ in 0..PER_PROC {
                            pthread.increment();
                        }
                    });
                    assert_eq!(pthread.take(), TOTAL);
                    t
                })
                .sum()
        })
    });

    // `Value::new_in`: the default lock, an RLock.
    let value = Value::new_in(&heap, 0i64).unwrap();
    g.bench_function("Value_i64_RLock", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let v = value.clone();
                    let t = race(&slots, move || {
                        for _ in 0..PER_PROC {
                            let guard = v.lock().unwrap();
                            guard.set(guard.get() + 1);
                        }
                    });
                    assert_eq!(value.get_obj().replace(0), TOTAL);
                    t
                })
                .sum()
        })
    });

    let value = synchronized_with(
        RawValue::new_in(&heap, 0i64).unwrap(),
        Lock::new_in(&heap).unwrap(),
    );
    g.bench_function("Value_i64_Lock", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let v = value.clone();
                    let t = race(&slots, move || {
                        for _ in 0..PER_PROC {
                            let guard = v.lock().unwrap();
                            guard.set(guard.get() + 1);
                        }
                    });
                    assert_eq!(value.get_obj().replace(0), TOTAL);
                    t
                })
                .sum()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = contended
}
criterion_main!(benches);
