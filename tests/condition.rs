//! `Condition` across real processes: CPython's `_TestCondition` ported to forked
//! children, Python's stronger semantics (no spurious wake-ups, notify(n) wakes only
//! waiters already waiting), every guard kind, owner death while waiting, another
//! program notifying through a named heap, and a producer/consumer stress test.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::unique;
use sharedctypes::{
    Array, Condition, Heap, Lock, Process, RLock, RawArray, RawValue, SharedStruct, TryLockError,
    Value,
};

const LONG: Duration = Duration::from_secs(20);

/// Joins a child and asserts that it succeeded (its assertions ran in the child).
#[track_caller]
fn join_ok(child: Process) {
    let status = child.wait().expect("waitpid");
    assert!(status.success(), "a child failed: {status:?}");
}

/// Children that are killed if the test fails before joining them, so a failed test
/// never leaves processes waiting on a condition behind.
struct Children(Vec<Process>);

impl Children {
    fn join(mut self) {
        for child in self.0.drain(..) {
            join_ok(child);
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &self.0 {
            let _ = child.kill();
        }
    }
}

/// Polls until `f` holds, failing the test after [`LONG`].
#[track_caller]
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LONG, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `n` children that each take `lock`, count themselves in `waiting`, wait on `cond`
/// (with a long timeout) and count themselves in `woken` if notified.
fn waiters(n: usize, lock: &Lock, cond: &Condition, counts: &RawArray<u32>) -> Children {
    Children(
        (0..n)
            .map(|_| {
                let (lock, cond, counts) = (lock.clone(), cond.clone(), counts.clone());
                Process::spawn(move || {
                    let g = lock.acquire().unwrap();
                    counts[0].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (g, r) = cond.wait_timeout(g, LONG).unwrap();
                    assert!(!r.timed_out(), "never notified");
                    counts[1].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    drop(g);
                })
                .unwrap()
            })
            .collect(),
    )
}

/// Waits until all `n` waiters wait: they counted themselves under the lock, and
/// release it only inside `wait`, after registering.
fn all_waiting(n: u32, lock: &Lock, counts: &RawArray<u32>) {
    until("every child waits", || {
        let _g = lock.acquire().unwrap();
        counts[0].get() == n
    });
}

#[test]
fn notify_wakes_one_then_two_then_all() {
    // CPython's test_notify / test_notify_n / test_notify_all, with processes.
    let (lock, cond) = (Lock::new().unwrap(), Condition::new().unwrap());
    let counts = RawArray::<u32>::zeroed(2).unwrap();
    let children = waiters(6, &lock, &cond, &counts);
    all_waiting(6, &lock, &counts);

    let woken = || counts[1].get();
    {
        let _g = lock.acquire().unwrap();
        assert_eq!(cond.notify_one(), ());
    }
    until("one woke", || woken() == 1);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(woken(), 1, "notify_one woke more than one");

    assert_eq!(cond.notify(2), 2);
    until("two more woke", || woken() == 3);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(woken(), 3, "notify(2) woke more than two");

    cond.notify_all();
    until("all woke", || woken() == 6);
    children.join();
    assert_eq!(cond.notify(5), 0, "nobody is left waiting");
}

#[test]
fn a_notify_before_the_wait_wakes_nobody() {
    // No spurious wake-ups: a wait returns only when notified after it began.
    let (lock, cond) = (Lock::new().unwrap(), Condition::new().unwrap());
    cond.notify_all();
    cond.notify_one();
    let start = Instant::now();
    let (_g, r) = cond
        .wait_timeout(lock.acquire().unwrap(), Duration::from_millis(100))
        .unwrap();
    assert!(r.timed_out());
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn notify_wakes_only_waiters_already_waiting() {
    let (lock, cond) = (Lock::new().unwrap(), Condition::new().unwrap());
    let counts = RawArray::<u32>::zeroed(2).unwrap();
    let first = waiters(1, &lock, &cond, &counts);
    all_waiting(1, &lock, &counts);
    // Notify once, then let a second waiter in: it must not take the notification.
    let late = {
        let g = lock.acquire().unwrap();
        cond.notify_one();
        let (lock, cond) = (lock.clone(), cond.clone());
        drop(g);
        Process::spawn(move || {
            let g = lock.acquire().unwrap();
            let (_g, r) = cond.wait_timeout(g, Duration::from_millis(300)).unwrap();
            assert!(r.timed_out(), "a notify made before this wait woke it");
        })
        .unwrap()
    };
    join_ok(late);
    first.join();
    assert_eq!(counts[1].get(), 1);
}

#[test]
fn timeouts_return_timed_out_after_the_timeout() {
    // CPython's test_timeout.
    let (lock, cond) = (Lock::new().unwrap(), Condition::new().unwrap());
    for ms in [0, 1, 30] {
        let t = Duration::from_millis(ms);
        let start = Instant::now();
        let (g, r) = cond.wait_timeout(lock.acquire().unwrap(), t).unwrap();
        assert!(r.timed_out());
        assert!(start.elapsed() >= t);
        drop(g);
        assert!(
            lock.try_acquire().is_ok(),
            "the lock is released with the guard"
        );
    }
}

#[test]
fn wait_while_waits_for_a_predicate_changed_by_other_processes() {
    // CPython's test_waitfor: each child bumps the state, the waiter waits for 4.
    let state = Value::new(0i32).unwrap();
    let cond = Condition::new().unwrap();
    let waiter = {
        let (state, cond) = (state.clone(), cond.clone());
        Process::spawn(move || {
            let g = state.lock().unwrap();
            let g = cond.wait_while(g, |g| g.get() < 4).unwrap();
            assert_eq!(g.get(), 4);
        })
        .unwrap()
    };
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(5));
        let g = state.lock().unwrap();
        g.update(|n| n + 1);
        cond.notify_all();
    }
    join_ok(waiter);
}

#[test]
fn wait_timeout_while_times_out_with_the_predicate_still_true() {
    // CPython's test_waitfor_timeout.
    let state = Value::new(0i32).unwrap();
    let cond = Condition::new().unwrap();
    let bumper = {
        let (state, cond) = (state.clone(), cond.clone());
        Process::spawn(move || {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(5));
                state.update(|n| n + 1);
                cond.notify_all();
            }
        })
        .unwrap()
    };
    let start = Instant::now();
    let (g, r) = cond
        .wait_timeout_while(state.lock().unwrap(), Duration::from_millis(300), |g| {
            g.get() < 10
        })
        .unwrap();
    assert!(r.timed_out());
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(g.get() < 10);
    drop(g);
    join_ok(bumper);
    // And one that comes true in time says so.
    let (g, r) = cond
        .wait_timeout_while(state.lock().unwrap(), LONG, |g| g.get() < 3)
        .unwrap();
    assert!(!r.timed_out());
    assert_eq!(g.get(), 3);
}

#[test]
fn an_rlock_held_twice_is_released_completely_while_waiting_and_restored_after() {
    let (rlock, cond) = (RLock::new().unwrap(), Condition::new().unwrap());
    let flag = RawValue::new(0u32).unwrap();
    let waiter = {
        let (rlock, cond, flag) = (rlock.clone(), cond.clone(), flag.clone());
        Process::spawn(move || {
            let outer = rlock.acquire().unwrap();
            let inner = rlock.acquire().unwrap();
            flag.set(1);
            let inner = cond.wait_while(inner, |_| flag.get() != 2).unwrap();
            // Both levels are held again: dropping one leaves the lock held.
            drop(inner);
            flag.set(3);
            std::thread::sleep(Duration::from_millis(50));
            drop(outer);
        })
        .unwrap()
    };
    until("the child holds the lock twice", || flag.get() == 1);
    // Free while the child waits at depth two.
    let g = rlock.acquire_timeout(LONG).expect("released while waiting");
    flag.set(2);
    cond.notify_all();
    drop(g);
    until("the child dropped one level", || flag.get() == 3);
    assert!(
        matches!(rlock.try_acquire(), Err(TryLockError::WouldBlock)),
        "the depth was not restored"
    );
    join_ok(waiter);
    assert!(rlock.try_acquire().is_ok());
}

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Ring {
    head: u64,
    tail: u64,
    slots: [u64; 8],
}

#[test]
fn value_and_array_guards_wait_too() {
    let arr = Array::<u32>::zeroed(4).unwrap();
    let cond = Condition::new().unwrap();
    let child = {
        let (arr, cond) = (arr.clone(), cond.clone());
        Process::spawn(move || {
            let g = arr.lock().unwrap();
            let g = cond.wait_while(g, |g| g[3].get() == 0).unwrap();
            assert_eq!(g[3].get(), 7);
            g[0].set(1);
        })
        .unwrap()
    };
    until("the child waits", || {
        let g = arr.lock().unwrap();
        // The child holds the lock until it waits; once we get it, it waits.
        drop(g);
        true
    });
    {
        let g = arr.lock().unwrap();
        g[3].set(7);
        cond.notify_one();
    }
    join_ok(child);
    assert_eq!(arr.get(0).unwrap(), 1);
}

#[test]
fn a_holder_that_dies_while_others_wait_is_reported_to_the_waiter() {
    let v = Value::new(0i32).unwrap();
    let cond = Condition::new().unwrap();
    let waiter = {
        let (v, cond) = (v.clone(), cond.clone());
        Process::spawn(move || {
            let g = v.lock().unwrap();
            g.set(1); // "I am waiting"
            match cond.wait_while(g, |g| g.get() != 2) {
                Ok(_) => panic!("the notifier died holding the lock, unreported"),
                Err(died) => assert_eq!(died.into_inner().get(), 2),
            }
        })
        .unwrap()
    };
    until("the waiter waits", || v.get() == 1);
    let killer = {
        let (v, cond) = (v.clone(), cond.clone());
        Process::spawn(move || {
            let g = v.lock().unwrap();
            g.set(2);
            cond.notify_all();
            std::mem::forget(g); // dies holding the lock
        })
        .unwrap()
    };
    join_ok(killer);
    join_ok(waiter);
    assert!(v.lock().is_ok(), "one report only");
}

#[test]
fn a_killed_waiter_swallows_at_most_one_notification() {
    let (lock, cond) = (Lock::new().unwrap(), Condition::new().unwrap());
    let counts = RawArray::<u32>::zeroed(2).unwrap();
    let victim = waiters(1, &lock, &cond, &counts);
    all_waiting(1, &lock, &counts);
    for child in &victim.0 {
        child.kill().unwrap();
    }
    drop(victim);
    let survivor = waiters(1, &lock, &cond, &counts);
    all_waiting(2, &lock, &counts);
    cond.notify_all();
    survivor.join();
    assert_eq!(counts[1].get(), 1);
}

#[test]
fn more_waiters_than_slots_still_all_wake() {
    let n = sharedctypes::sync::MAX_WAITERS + 4;
    let (lock, cond) = (Lock::new().unwrap(), Condition::new().unwrap());
    let done = RawValue::new(0u32).unwrap();
    let go = RawValue::new(0u32).unwrap();
    // Threads of one child, to keep the process count down.
    let child = {
        let (lock, cond, done, go) = (lock.clone(), cond.clone(), done.clone(), go.clone());
        Process::spawn(move || {
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| {
                        let g = lock.acquire().unwrap();
                        let g = cond.wait_while(g, |_| go.get() == 0).unwrap();
                        drop(g);
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    });
                }
            });
        })
        .unwrap()
    };
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    while done.get() < n as u32 {
        assert!(start.elapsed() < LONG, "only {} of {n} woke", done.get());
        {
            let _g = lock.acquire().unwrap();
            go.set(1);
            cond.notify_all();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    join_ok(child);
}

#[test]
fn producers_and_consumers_through_a_ring_in_a_struct() {
    // 2 producers and 2 consumers pass 100,000 items through an 8-slot ring guarded by
    // one Value and two conditions; every item arrives exactly once.
    const ITEMS: u64 = 100_000;
    let ring = Value::new(Ring {
        head: 0,
        tail: 0,
        slots: [0; 8],
    })
    .unwrap();
    let (not_full, not_empty) = (Condition::new().unwrap(), Condition::new().unwrap());
    let sums = RawArray::<u64>::zeroed(2).unwrap();
    let seen = RawArray::<u8>::zeroed(ITEMS as usize).unwrap();
    let mut children = Children(Vec::new());
    for p in 0..2u64 {
        let (ring, not_full, not_empty) = (ring.clone(), not_full.clone(), not_empty.clone());
        children.0.push(
            Process::spawn(move || {
                for i in (p..ITEMS).step_by(2) {
                    let g = ring.lock().unwrap();
                    let g = not_full
                        .wait_while(g, |r| r.tail.get() - r.head.get() == 8)
                        .unwrap();
                    let t = g.tail.get();
                    g.slots[(t % 8) as usize].set(i + 1);
                    g.tail.set(t + 1);
                    not_empty.notify_one();
                }
            })
            .unwrap(),
        );
    }
    for c in 0..2usize {
        let (ring, not_full, not_empty) = (ring.clone(), not_full.clone(), not_empty.clone());
        let (sums, seen) = (sums.clone(), seen.clone());
        children.0.push(
            Process::spawn(move || {
                for _ in 0..ITEMS / 2 {
                    let g = ring.lock().unwrap();
                    let g = not_empty
                        .wait_while(g, |r| r.tail.get() == r.head.get())
                        .unwrap();
                    let h = g.head.get();
                    let item = g.slots[(h % 8) as usize].get();
                    g.head.set(h + 1);
                    not_full.notify_one();
                    drop(g);
                    sums[c].fetch_add(item - 1, std::sync::atomic::Ordering::Relaxed);
                    seen[(item - 1) as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .unwrap(),
        );
    }
    children.join();
    assert_eq!(sums[0].get() + sums[1].get(), ITEMS * (ITEMS - 1) / 2);
    assert!(
        seen.to_vec().iter().all(|&n| n == 1),
        "an item was lost or duplicated"
    );
}

// --- Another program notifies through a named heap ----------------------------------

const HELPER_MODE: &str = "SHAREDCTYPES_TEST_CONDITION_HELPER";
const HELPER_HEAP: &str = "SHAREDCTYPES_TEST_CONDITION_HEAP";
/// The helper's exit status on success: not 0, which a harness that ran no helper at
/// all would also give.
const HELPER_OK: i32 = 42;

/// Not a test of its own: the entry point of the helper program.
#[test]
fn condition_helper_entry() {
    let Ok(_) = std::env::var(HELPER_MODE) else {
        return;
    };
    let name = std::env::var(HELPER_HEAP).expect("the heap's name");
    let heap = Heap::open(&name).expect("open by name");
    let v: Value<u32, Lock> = heap.lookup("state").unwrap();
    let cond: Condition = heap.lookup("cond").unwrap();
    until("the test program waits", || v.get() == 1);
    {
        let g = v.lock().unwrap();
        g.set(2);
        cond.notify_one();
    }
    drop(heap);
    std::process::exit(HELPER_OK);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn another_program_wakes_a_waiter_through_a_named_heap() {
    let name = unique("cond-named");
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let v = Value::with_lock(0u32, lock).unwrap();
    let cond = Condition::new_in(&heap).unwrap();
    heap.publish("state", &v).unwrap();
    heap.publish("cond", &cond).unwrap();
    let mut helper = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "condition_helper_entry", "--nocapture"])
            .env(HELPER_MODE, "1")
            .env(HELPER_HEAP, &name)
            .stdout(Stdio::null())
            .spawn()
            .expect("exec the helper"),
    );
    let g = v.lock().unwrap();
    g.set(1);
    let (g, r) = cond.wait_timeout_while(g, LONG, |g| g.get() != 2).unwrap();
    assert!(!r.timed_out(), "never woken by the other program");
    assert_eq!(g.get(), 2);
    drop(g);
    let status = helper.0.wait().unwrap();
    assert_eq!(status.code(), Some(HELPER_OK), "helper: {status:?}");
    // The kind is checked: a condition is not a lock.
    let opened = Heap::open(&name).unwrap();
    assert!(opened.lookup::<Lock>("cond").is_err());
    assert!(opened.lookup::<Condition>("cond").unwrap() == cond);
}
