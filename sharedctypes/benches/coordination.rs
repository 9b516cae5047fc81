//! Waiting for another process (issue 11), each beside its pthread/POSIX baseline over
//! the same kind of shared memory (`MAP_SHARED`, `PTHREAD_PROCESS_SHARED`):
//!
//! - `condition_ping_pong_2proc_x_10k`: two forked processes hand a turn back and
//!   forth 10,000 times (20,000 hand-offs) through a `Value<u64>` (its default lock, an
//!   `RLock`) and a [`Condition`]: each holds the lock, bumps the counter, notifies,
//!   and waits until the other has bumped it. Baseline: the same with a process-shared
//!   `pthread_mutex_t` and `pthread_cond_t` guarding a counter.
//! - `semaphore_ping_pong_2proc_x_10k`: the same hand-offs through two [`Semaphore`]s
//!   (ping releases `a` and takes `b`, pong takes `a` and releases `b`). Baseline: two
//!   POSIX `sem_t` made with `sem_init(pshared = 1)`.
//! - `barrier_4proc_x_10k`: four forked processes pass one [`Barrier`] 10,000 times.
//!   Baseline: a `pthread_barrier_t` made with `PTHREAD_PROCESS_SHARED`.
//!
//! Every run forks its children with `Process::spawn`; they wait at a start line in
//! shared memory and the time runs from the parent's "go" until the last child has
//! finished its loop (`CLOCK_MONOTONIC` in every process), so `fork` and exit are left
//! out, identically for both contenders. Every run checks its result (the counter
//! reached 20,000; every hand-off saw the other side's; one leader per barrier round).
//!
//! Both sides sleep in the kernel when they must: the crate's primitives spin for a
//! few microseconds first, glibc's do not. With 2 processes on 2 cores a hand-off can
//! then complete without a system call; with 4 processes on 2 cores a spinning waiter
//! takes a core from a party that has yet to arrive. Both effects are part of what is
//! measured.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use sharedctypes::{Barrier, Condition, Heap, RawArray, RawValue, Semaphore, Value};

/// Round trips per ping-pong run.
const ROUNDS: u64 = 10_000;
/// Parties and rounds of the barrier benchmark.
const PARTIES: usize = 4;
const BARRIER_ROUNDS: u64 = 10_000;

/// Short groups: every sample forks its processes.
fn group_config(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
}

/// Asserts a pthread/POSIX call succeeded.
#[track_caller]
fn ok(rc: libc::c_int, what: &str) {
    assert_eq!(rc, 0, "{what}: {}", std::io::Error::from_raw_os_error(rc));
}

/// A raw pointer to field `$field` of the `$ty` at `$base` (no dereference: safe).
macro_rules! field {
    ($base:expr, $ty:ty, $field:ident) => {
        $base
            .cast::<u8>()
            .wrapping_add(std::mem::offset_of!($ty, $field))
            .cast()
    };
}

// --- Condition ping-pong -----------------------------------------------------------

/// A process-shared pthread mutex and condition variable guarding a counter, in a
/// shared mapping of their own.
#[repr(C)]
struct PthreadCondShared {
    mutex: libc::pthread_mutex_t,
    cond: libc::pthread_cond_t,
    counter: AtomicU64,
}

/// A handle to it (the mapping is never unmapped).
#[derive(Clone, Copy)]
struct PthreadCond(*mut PthreadCondShared);

// SAFETY: the pointee lives in a shared mapping that is never unmapped; the pthread
// objects are process-shared (and so thread-safe), the counter is atomic.
unsafe impl Send for PthreadCond {}
// SAFETY: as above.
unsafe impl Sync for PthreadCond {}

impl PthreadCond {
    fn new() -> PthreadCond {
        let shared = common::shared_mapping::<PthreadCondShared>();
        let mutex = field!(shared, PthreadCondShared, mutex);
        let cond = field!(shared, PthreadCondShared, cond);
        // The calls below: `shared` is a fresh, page-aligned, zeroed mapping, large
        // enough and aligned for the mutex and the condition, which nobody else uses
        // yet; the attribute objects are valid for writes and initialised before use.
        // SAFETY: zeroed is a valid bit pattern for the attribute object, which
        // pthread_mutexattr_init then initialises.
        let mut mattr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        ok(
            unsafe { libc::pthread_mutexattr_init(&mut mattr) },
            "mutexattr_init",
        );
        ok(
            // SAFETY: see above.
            unsafe { libc::pthread_mutexattr_setpshared(&mut mattr, libc::PTHREAD_PROCESS_SHARED) },
            "mutexattr_setpshared",
        );
        // SAFETY: see above.
        ok(
            unsafe { libc::pthread_mutex_init(mutex, &mattr) },
            "mutex_init",
        );
        // SAFETY: initialised above, no longer needed.
        unsafe { libc::pthread_mutexattr_destroy(&mut mattr) };
        // SAFETY: as for the mutex attribute.
        let mut cattr: libc::pthread_condattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        ok(
            unsafe { libc::pthread_condattr_init(&mut cattr) },
            "condattr_init",
        );
        ok(
            // SAFETY: see above.
            unsafe { libc::pthread_condattr_setpshared(&mut cattr, libc::PTHREAD_PROCESS_SHARED) },
            "condattr_setpshared",
        );
        // SAFETY: see above.
        ok(
            unsafe { libc::pthread_cond_init(cond, &cattr) },
            "cond_init",
        );
        // SAFETY: initialised above, no longer needed.
        unsafe { libc::pthread_condattr_destroy(&mut cattr) };
        PthreadCond(shared)
    }

    fn counter(&self) -> &AtomicU64 {
        // SAFETY: the mapping lives forever; the counter is atomic.
        unsafe { &(*self.0).counter }
    }

    /// One side's `ROUNDS` hand-offs: side 0 bumps the counter to odd numbers, side 1
    /// to even ones; each waits until the other has taken its turn.
    fn play(&self, side: u64) {
        let mutex = field!(self.0, PthreadCondShared, mutex);
        let cond = field!(self.0, PthreadCondShared, cond);
        let counter = self.counter();
        // The calls below: the mutex and the condition were initialised in `new`
        // (process-shared) and live forever; the condition is waited on with its mutex
        // held, and the mutex is unlocked by the thread that locked it.
        // SAFETY: see above.
        ok(unsafe { libc::pthread_mutex_lock(mutex) }, "mutex_lock");
        for _ in 0..ROUNDS {
            while counter.load(Relaxed) % 2 != side {
                // SAFETY: see above.
                ok(unsafe { libc::pthread_cond_wait(cond, mutex) }, "cond_wait");
            }
            counter.store(counter.load(Relaxed) + 1, Relaxed);
            // SAFETY: see above.
            ok(unsafe { libc::pthread_cond_signal(cond) }, "cond_signal");
        }
        // SAFETY: see above.
        ok(unsafe { libc::pthread_mutex_unlock(mutex) }, "mutex_unlock");
    }
}

/// The same hand-offs through a `Value<u64>` and a `Condition`.
fn play_condition(value: &Value<u64>, cond: &Condition, side: u64) {
    let mut guard = value.lock().expect("nobody dies");
    for _ in 0..ROUNDS {
        guard = cond
            .wait_while(guard, |g| g.get() % 2 != side)
            .expect("nobody dies");
        guard.set(guard.get() + 1);
        cond.notify_one();
    }
}

fn condition_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("condition_ping_pong_2proc_x_10k");
    group_config(&mut g);
    g.throughput(Throughput::Elements(ROUNDS));
    let heap = Heap::new(1 << 16).unwrap();
    let slots = RawArray::<u64>::zeroed_in(&heap, 3).unwrap();

    let pthread = PthreadCond::new();
    g.bench_function("pthread_mutex_cond_pshared", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = common::race(2, &slots, move |i| pthread.play(i as u64));
                    assert_eq!(pthread.counter().swap(0, Relaxed), 2 * ROUNDS);
                    t
                })
                .sum()
        })
    });

    let value = Value::new_in(&heap, 0u64).unwrap();
    let cond = Condition::new_in(&heap).unwrap();
    g.bench_function("Condition_Value_u64", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (v, c) = (value.clone(), cond.clone());
                    let t = common::race(2, &slots, move |i| play_condition(&v, &c, i as u64));
                    assert_eq!(value.get_obj().replace(0), 2 * ROUNDS);
                    t
                })
                .sum()
        })
    });
    g.finish();
}

// --- Semaphore ping-pong -----------------------------------------------------------

/// Two process-shared POSIX semaphores and a hand-off counter, in a shared mapping.
#[repr(C)]
struct PosixSemShared {
    ping: libc::sem_t,
    pong: libc::sem_t,
    counter: AtomicU64,
}

#[derive(Clone, Copy)]
struct PosixSems(*mut PosixSemShared);

// SAFETY: the pointee lives in a shared mapping that is never unmapped; process-shared
// semaphores are thread-safe, the counter is atomic.
unsafe impl Send for PosixSems {}
// SAFETY: as above.
unsafe impl Sync for PosixSems {}

impl PosixSems {
    fn new() -> PosixSems {
        let shared = common::shared_mapping::<PosixSemShared>();
        for sem in [
            field!(shared, PosixSemShared, ping),
            field!(shared, PosixSemShared, pong),
        ] {
            // SAFETY: `shared` is a fresh, page-aligned mapping, large enough and
            // aligned for both semaphores, which nobody else uses yet.
            assert_eq!(unsafe { libc::sem_init(sem, 1, 0) }, 0, "sem_init");
        }
        PosixSems(shared)
    }

    fn counter(&self) -> &AtomicU64 {
        // SAFETY: the mapping lives forever; the counter is atomic.
        unsafe { &(*self.0).counter }
    }

    fn play(&self, side: usize) {
        let ping = field!(self.0, PosixSemShared, ping);
        let pong = field!(self.0, PosixSemShared, pong);
        let counter = self.counter();
        // Retries `sem_wait` after a signal, as a careful caller must.
        let wait = |sem| {
            // SAFETY: the semaphore was initialised in `new` and lives forever.
            while unsafe { libc::sem_wait(sem) } != 0 {
                let err = std::io::Error::last_os_error();
                assert_eq!(err.raw_os_error(), Some(libc::EINTR), "sem_wait: {err}");
            }
        };
        for round in 0..ROUNDS {
            if side == 0 {
                counter.store(2 * round + 1, Relaxed);
                // SAFETY: as above.
                assert_eq!(unsafe { libc::sem_post(ping) }, 0, "sem_post");
                wait(pong);
                assert_eq!(counter.load(Relaxed), 2 * round + 2, "a lost hand-off");
            } else {
                wait(ping);
                assert_eq!(counter.load(Relaxed), 2 * round + 1, "a lost hand-off");
                counter.store(2 * round + 2, Relaxed);
                // SAFETY: as above.
                assert_eq!(unsafe { libc::sem_post(pong) }, 0, "sem_post");
            }
        }
    }
}

/// The same hand-offs through two `Semaphore`s.
fn play_semaphores(ping: &Semaphore, pong: &Semaphore, counter: &RawValue<u64>, side: usize) {
    for round in 0..ROUNDS {
        if side == 0 {
            counter.store(2 * round + 1, Relaxed);
            ping.release().expect("below the limit");
            pong.acquire();
            assert_eq!(counter.load(Relaxed), 2 * round + 2, "a lost hand-off");
        } else {
            ping.acquire();
            assert_eq!(counter.load(Relaxed), 2 * round + 1, "a lost hand-off");
            counter.store(2 * round + 2, Relaxed);
            pong.release().expect("below the limit");
        }
    }
}

fn semaphore_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore_ping_pong_2proc_x_10k");
    group_config(&mut g);
    g.throughput(Throughput::Elements(ROUNDS));
    let heap = Heap::new(1 << 16).unwrap();
    let slots = RawArray::<u64>::zeroed_in(&heap, 3).unwrap();

    let posix = PosixSems::new();
    g.bench_function("posix_sem_t_pshared", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = common::race(2, &slots, move |i| posix.play(i));
                    assert_eq!(posix.counter().swap(0, Relaxed), 2 * ROUNDS);
                    t
                })
                .sum()
        })
    });

    let ping = Semaphore::new_in(&heap, 0).unwrap();
    let pong = Semaphore::new_in(&heap, 0).unwrap();
    let counter = RawValue::new_in(&heap, 0u64).unwrap();
    g.bench_function("Semaphore", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (a, b, n) = (ping.clone(), pong.clone(), counter.clone());
                    let t = common::race(2, &slots, move |i| play_semaphores(&a, &b, &n, i));
                    assert_eq!(counter.swap(0, Relaxed), 2 * ROUNDS);
                    assert_eq!((ping.value(), pong.value()), (0, 0));
                    t
                })
                .sum()
        })
    });
    g.finish();
}

// --- Barrier -----------------------------------------------------------------------

/// A process-shared pthread barrier and a count of round leaders, in a shared mapping.
#[repr(C)]
struct PthreadBarrierShared {
    barrier: libc::pthread_barrier_t,
    leaders: AtomicU64,
}

#[derive(Clone, Copy)]
struct PthreadBarrier(*mut PthreadBarrierShared);

// SAFETY: the pointee lives in a shared mapping that is never unmapped; a
// process-shared barrier is thread-safe, the count is atomic.
unsafe impl Send for PthreadBarrier {}
// SAFETY: as above.
unsafe impl Sync for PthreadBarrier {}

impl PthreadBarrier {
    fn new() -> PthreadBarrier {
        let shared = common::shared_mapping::<PthreadBarrierShared>();
        let barrier = field!(shared, PthreadBarrierShared, barrier);
        // The calls below: `attr` is valid for writes and initialised before use;
        // `shared` is a fresh, page-aligned mapping large enough and aligned for the
        // barrier, which nobody else uses yet.
        // SAFETY: zeroed is a valid bit pattern for the attribute object, which
        // pthread_barrierattr_init then initialises.
        let mut attr: libc::pthread_barrierattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        ok(
            unsafe { libc::pthread_barrierattr_init(&mut attr) },
            "barrierattr_init",
        );
        ok(
            // SAFETY: see above.
            unsafe {
                libc::pthread_barrierattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED)
            },
            "barrierattr_setpshared",
        );
        ok(
            // SAFETY: see above.
            unsafe { libc::pthread_barrier_init(barrier, &attr, PARTIES as u32) },
            "barrier_init",
        );
        // SAFETY: initialised above, no longer needed.
        unsafe { libc::pthread_barrierattr_destroy(&mut attr) };
        PthreadBarrier(shared)
    }

    fn leaders(&self) -> &AtomicU64 {
        // SAFETY: the mapping lives forever; the count is atomic.
        unsafe { &(*self.0).leaders }
    }

    fn pass(&self) {
        let barrier = field!(self.0, PthreadBarrierShared, barrier);
        for _ in 0..BARRIER_ROUNDS {
            // SAFETY: the barrier was initialised in `new` (process-shared, PARTIES
            // parties) and lives forever.
            match unsafe { libc::pthread_barrier_wait(barrier) } {
                0 => {}
                libc::PTHREAD_BARRIER_SERIAL_THREAD => {
                    self.leaders().fetch_add(1, Relaxed);
                }
                rc => ok(rc, "barrier_wait"),
            }
        }
    }
}

fn pass_barrier(barrier: &Barrier, leaders: &RawValue<u64>) {
    for _ in 0..BARRIER_ROUNDS {
        if barrier.wait().expect("nobody breaks it").is_leader() {
            leaders.fetch_add(1, Relaxed);
        }
    }
}

fn barrier(c: &mut Criterion) {
    let mut g = c.benchmark_group("barrier_4proc_x_10k");
    group_config(&mut g);
    g.throughput(Throughput::Elements(BARRIER_ROUNDS));
    let heap = Heap::new(1 << 16).unwrap();
    let slots = RawArray::<u64>::zeroed_in(&heap, 1 + PARTIES).unwrap();

    let pthread = PthreadBarrier::new();
    g.bench_function("pthread_barrier_pshared", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = common::race(PARTIES, &slots, move |_| pthread.pass());
                    assert_eq!(pthread.leaders().swap(0, Relaxed), BARRIER_ROUNDS);
                    t
                })
                .sum()
        })
    });

    let barrier = Barrier::new_in(&heap, PARTIES).unwrap();
    let leaders = RawValue::new_in(&heap, 0u64).unwrap();
    g.bench_function("Barrier", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (b, l) = (barrier.clone(), leaders.clone());
                    let t = common::race(PARTIES, &slots, move |_| pass_barrier(&b, &l));
                    assert_eq!(leaders.swap(0, Relaxed), BARRIER_ROUNDS);
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
    targets = condition_ping_pong, semaphore_ping_pong, barrier
}
criterion_main!(benches);
