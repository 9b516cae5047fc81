//! Process-shared locks across real processes: exclusion, timeouts, and recovery from
//! a holder that died (killed, exited, or a thread that ended) — plus CPython's
//! `_TestLock`.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{child_status, in_child};
use sharedctypes::{Error, Heap, Lock, LockType, Process, RLock, RawValue, TryLockError};

/// Spins until `flag` is non-zero (set by another process).
fn wait_for(flag: &RawValue<u32>) {
    while flag.get() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn counter_under_lock<L: LockType>(lock: L) {
    let heap = Heap::new(1 << 16).unwrap();
    let counter = RawValue::new_in(&heap, 0u64).unwrap();
    const PROCS: u64 = 4;
    const ITERS: u64 = 20_000;
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            let (lock, counter) = (lock.clone(), counter.clone());
            Process::spawn(move || {
                for _ in 0..ITERS {
                    let _g = lock.acquire().unwrap();
                    // Deliberately not atomic: only the lock makes it correct.
                    let v = counter.get();
                    counter.set(v + 1);
                }
            })
            .unwrap()
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(counter.get(), PROCS * ITERS);
}

#[test]
fn lock_excludes_across_processes() {
    counter_under_lock(Lock::new().unwrap());
}

#[test]
fn rlock_excludes_across_processes() {
    counter_under_lock(RLock::new().unwrap());
}

#[test]
fn lock_excludes_across_threads() {
    let lock = Lock::new().unwrap();
    let counter = RawValue::new(0u64).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20_000 {
                    let _g = lock.acquire().unwrap();
                    counter.set(counter.get() + 1);
                }
            });
        }
    });
    assert_eq!(counter.get(), 80_000);
}

#[test]
fn a_killed_holder_is_recovered_and_reported_once() {
    let lock = Lock::new().unwrap();
    let held = RawValue::new(0u32).unwrap();
    let child = {
        let (lock, held) = (lock.clone(), held.clone());
        Process::spawn(move || {
            let _g = lock.acquire().unwrap();
            held.set(1);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap()
    };
    wait_for(&held);
    assert!(lock.try_acquire().is_err(), "held by a live child");
    child.kill().unwrap();
    // Not joined yet: the holder is a zombie, which must count as dead.
    let guard = match lock.acquire() {
        Ok(_) => panic!("the owner's death was not reported"),
        Err(died) => died.into_inner(),
    };
    drop(guard);
    // Told once; then normal service.
    let g = lock.acquire().expect("normal after the report");
    drop(g);
    assert!(lock.try_acquire().is_ok());
    assert!(!child.wait().unwrap().success());
}

#[test]
fn an_rlock_held_recursively_by_an_exited_child_is_recovered() {
    let lock = RLock::new().unwrap();
    let status = {
        let lock = lock.clone();
        child_status(move || {
            let a = lock.acquire().unwrap();
            let b = lock.acquire().unwrap();
            std::mem::forget((a, b)); // exits holding it, twice
        })
    };
    assert!(status.success());
    let died = lock.acquire().expect_err("the owner died holding it");
    let g = died.into_inner();
    // The recursion depth starts afresh at one for the new owner.
    let inner = lock.acquire().unwrap();
    drop(inner);
    drop(g);
    // Fully released: another process can take it.
    let lock2 = lock.clone();
    in_child(move || {
        assert!(lock2.try_acquire().is_ok());
    });
}

#[test]
fn try_acquire_and_timeouts_from_another_process() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap();
    {
        let lock = lock.clone();
        in_child(move || {
            assert!(lock.try_acquire().is_err());
            assert!(lock.acquire_timeout(Duration::from_millis(50)).is_err());
        });
    }
    drop(g);
    {
        let lock = lock.clone();
        in_child(move || {
            assert!(lock.try_acquire().is_ok());
            assert!(lock.acquire_timeout(Duration::from_millis(50)).is_ok());
        });
    }
}

#[test]
fn a_waiter_is_woken_by_a_release_in_another_process() {
    let lock = Lock::new().unwrap();
    let flag = RawValue::new(0u32).unwrap();
    let g = lock.acquire().unwrap();
    let child = {
        let (lock, flag) = (lock.clone(), flag.clone());
        Process::spawn(move || {
            flag.set(1);
            let g = lock.acquire().expect("no death");
            flag.set(2);
            drop(g);
        })
        .unwrap()
    };
    wait_for(&flag);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(flag.get(), 1, "still waiting while we hold it");
    drop(g);
    child.join().unwrap();
    assert_eq!(flag.get(), 2);
}

#[test]
fn try_acquire_and_acquire_timeout_recover_a_dead_owner() {
    for use_timeout in [false, true] {
        let lock = Lock::new().unwrap();
        let status = {
            let lock = lock.clone();
            child_status(move || std::mem::forget(lock.acquire()))
        };
        assert!(status.success());
        let r = if use_timeout {
            lock.acquire_timeout(Duration::from_secs(30))
        } else {
            lock.try_acquire()
        };
        assert!(
            matches!(r, Err(TryLockError::OwnerDied(_))),
            "OwnerDied expected"
        );
        drop(r);
        assert!(lock.try_acquire().is_ok());
    }
}

#[test]
fn exactly_one_of_many_waiters_is_told_of_a_death() {
    let heap = Heap::new(1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let held = RawValue::new_in(&heap, 0u32).unwrap();
    let reports = RawValue::new_in(&heap, 0u32).unwrap();
    let done = RawValue::new_in(&heap, 0u32).unwrap();
    let holder = {
        let (lock, held) = (lock.clone(), held.clone());
        Process::spawn(move || {
            std::mem::forget(lock.acquire());
            held.set(1);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap()
    };
    wait_for(&held);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (lock, reports, done) = (lock.clone(), reports.clone(), done.clone());
            Process::spawn(move || {
                let g = match lock.acquire() {
                    Ok(g) => g,
                    Err(died) => {
                        reports.set(reports.get() + 1); // under the lock
                        died.into_inner()
                    }
                };
                done.set(done.get() + 1);
                drop(g);
            })
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    holder.kill().unwrap();
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!((reports.get(), done.get()), (1, 3));
    assert!(!holder.wait().unwrap().success());
}

#[test]
fn a_thread_that_ends_holding_the_lock_is_recovered() {
    let lock = Lock::new().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(lock.acquire()));
    });
    assert!(lock.acquire().is_err());
    assert!(lock.acquire().is_ok());
}

#[test]
fn owner_died_converts_into_error() {
    fn take(lock: &Lock) -> sharedctypes::Result<()> {
        let _g = lock.acquire()?;
        Ok(())
    }
    let lock = Lock::new().unwrap();
    let l2 = lock.clone();
    assert!(child_status(move || std::mem::forget(l2.acquire())).success());
    let err = take(&lock).unwrap_err();
    assert!(matches!(err, Error::OwnerDied));
    assert!(err.to_string().contains("died"));
    // That call used up the report (and released the lock when `_g` dropped).
    assert!(take(&lock).is_ok());
    // OwnerDied is Debug + Display + Error for any guard type.
    fn is_error<E: std::error::Error>() {}
    is_error::<sharedctypes::OwnerDied<sharedctypes::LockGuard<'static>>>();
}

#[test]
fn a_lock_is_not_reentrant_and_says_so() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap();
    assert!(lock.try_acquire().is_err());
    assert!(lock.acquire_timeout(Duration::from_millis(5)).is_err());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = lock.acquire();
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("RLock"), "{msg}");
    drop(g);
}

#[test]
fn rlock_is_recursive_only_for_its_owner() {
    let lock = RLock::new().unwrap();
    let a = lock.acquire().unwrap();
    let b = lock.try_acquire().unwrap();
    let c = lock.acquire_timeout(Duration::from_millis(1)).unwrap();
    {
        let lock = lock.clone();
        in_child(move || assert!(lock.try_acquire().is_err(), "another process"));
    }
    std::thread::scope(|s| {
        s.spawn(|| assert!(lock.try_acquire().is_err(), "another thread"));
    });
    drop((c, b));
    {
        let lock = lock.clone();
        in_child(move || assert!(lock.try_acquire().is_err(), "still held once"));
    }
    drop(a);
    {
        let lock = lock.clone();
        in_child(move || assert!(lock.try_acquire().is_ok(), "released"));
    }
}

#[test]
fn handles_compare_by_identity() {
    let a = Lock::new().unwrap();
    let b = Lock::new().unwrap();
    assert!(a == a.clone());
    assert!(a != b);
    let r = RLock::new().unwrap();
    assert!(r == r.clone());
    assert!(format!("{a:?}").starts_with("Lock"));
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Lock>();
    send_sync::<RLock>();
}

#[test]
fn a_child_of_a_holder_does_not_own_the_lock() {
    // The parent holds an RLock and forks: the child is a different thread.
    let lock = RLock::new().unwrap();
    let g = lock.acquire().unwrap();
    {
        let lock = lock.clone();
        in_child(move || {
            assert!(lock.try_acquire().is_err());
            assert!(lock.acquire_timeout(Duration::from_millis(30)).is_err());
        });
    }
    drop(g);
}

#[test]
fn locks_work_in_a_heap_of_their_own_and_run_out_cleanly() {
    let heap = Heap::new(32).unwrap();
    let mut locks = Vec::new();
    let err = loop {
        match Lock::new_in(&heap) {
            Ok(l) => locks.push(l),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::OutOfMemory { .. }));
    assert!(!locks.is_empty());
    for l in &locks {
        assert!(l.acquire().is_ok());
    }
}

// ---- CPython Lib/test/_test_multiprocessing.py, _TestLock ----

#[test]
fn cpython_test_lock() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap(); // lock.acquire() == True
    assert!(lock.try_acquire().is_err()); // lock.acquire(False) == False
    drop(g); // lock.release()
    assert!(lock.try_acquire().is_ok());
}

#[test]
fn cpython_test_rlock() {
    let lock = RLock::new().unwrap();
    let guards: Vec<_> = (0..3).map(|_| lock.acquire().unwrap()).collect();
    drop(guards);
    let lock2 = lock.clone();
    in_child(move || assert!(lock2.try_acquire().is_ok()));
}

#[test]
fn cpython_test_lock_context() {
    let lock = Lock::new().unwrap();
    {
        let _with = lock.acquire().unwrap();
    }
    assert!(lock.try_acquire().is_ok());
}

#[test]
fn many_threads_and_processes_contend_without_losing_wakeups() {
    // Two processes, each with three threads, hammer one lock; a lost wake-up would
    // hang (the harness would time out), a broken exclusion would miscount.
    let lock = Lock::new().unwrap();
    let counter = RawValue::new(0u64).unwrap();
    static SPINS: AtomicU32 = AtomicU32::new(0);
    let work = {
        let (lock, counter) = (lock.clone(), counter.clone());
        move || {
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        for i in 0..5_000 {
                            let _g = lock.acquire().unwrap();
                            counter.set(counter.get() + 1);
                            if i % 1000 == 0 {
                                SPINS.fetch_add(1, Ordering::Relaxed);
                                std::thread::yield_now();
                            }
                        }
                    });
                }
            });
        }
    };
    let child = Process::spawn(work.clone()).unwrap();
    work();
    child.join().unwrap();
    assert_eq!(counter.get(), 2 * 3 * 5_000);
}

#[test]
fn killing_holders_under_load_never_breaks_exclusion() {
    // Workers hammer one lock; the parent SIGKILLs workers at random moments, often
    // inside the critical section. `inside` must be 0 on every clean acquisition; a
    // worker told of a death repairs it. A violation makes a worker exit with 2.
    let heap = Heap::new(1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let inside = RawValue::new_in(&heap, 0u32).unwrap();
    let entries = RawValue::new_in(&heap, 0u64).unwrap();
    let repairs = RawValue::new_in(&heap, 0u64).unwrap();
    let spawn_worker = || {
        let (lock, inside, entries, repairs) = (
            lock.clone(),
            inside.clone(),
            entries.clone(),
            repairs.clone(),
        );
        Process::spawn(move || loop {
            let g = match lock.acquire() {
                Ok(g) => {
                    if inside.get() != 0 {
                        std::process::exit(2);
                    }
                    g
                }
                Err(died) => {
                    repairs.set(repairs.get() + 1);
                    died.into_inner()
                }
            };
            inside.set(1);
            entries.set(entries.get() + 1);
            for _ in 0..50 {
                std::hint::spin_loop();
            }
            inside.set(0);
            drop(g);
        })
        .unwrap()
    };
    let mut workers: Vec<Process> = (0..3).map(|_| spawn_worker()).collect();
    let mut kills = 0u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // `SHAREDCTYPES_STRESS_KILLS=9000 cargo test --release --test locks killing_holders`
    // for the long run; 40 keeps the suite fast.
    let rounds: u64 = std::env::var("SHAREDCTYPES_STRESS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for _ in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(2_000 + seed % 8_000));
        let victim = workers.swap_remove((seed % workers.len() as u64) as usize);
        victim.kill().unwrap();
        let status = victim.wait().unwrap();
        assert_ne!(status.code(), Some(2), "a worker saw a broken exclusion");
        kills += 1;
        workers.push(spawn_worker());
    }
    for w in workers {
        w.kill().unwrap();
        assert_ne!(w.wait().unwrap().code(), Some(2));
    }
    // Whoever gets the lock now either finds it clean or repairs it.
    let g = lock.acquire().unwrap_or_else(|died| died.into_inner());
    inside.set(0);
    drop(g);
    assert!(entries.get() > 0);
    eprintln!(
        "kills {kills}, entries {}, repairs {}",
        entries.get(),
        repairs.get()
    );
    assert!(repairs.get() <= kills + 3);
}

#[test]
fn a_guard_copied_into_a_raw_forked_child_does_not_release_the_parents_lock() {
    for recursive in [false, true] {
        let lock = Lock::new().unwrap();
        let rlock = RLock::new().unwrap();
        let (g, rg) = if recursive {
            (None, Some(rlock.acquire().unwrap()))
        } else {
            (Some(lock.acquire().unwrap()), None)
        };
        // SAFETY: the child only drops the copied guards and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop((g, rg));
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0);
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let (holds_lock, holds_rlock) = (g.is_some(), rg.is_some());
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(lock.try_acquire().is_err() || !holds_lock);
                assert!(rlock.try_acquire().is_err() || !holds_rlock);
            });
        });
        drop((g, rg));
    }
}
