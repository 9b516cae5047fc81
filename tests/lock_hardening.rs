//! The lock word's hardening: poisoning on panic, takeover at once for a waiter with a
//! deadline, words that name a process that is not their owner, and namespaces.
//!
//! Scenarios that could hang run in a forked child with a deadline, so a regression
//! fails the test instead of hanging the runner.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use common::{child_status, in_child, owner_word, start_time, unique, write_word};
use sharedctypes::sync::CHECK_INTERVAL;
use sharedctypes::{Error, Heap, Lock, Process, RLock, TryLockError, Value};

/// Runs `f` in a child and fails the test if it has not finished within `limit`.
#[track_caller]
fn finishes_within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let child = Process::spawn(f).expect("fork");
    let pid = child.pid() as libc::pid_t;
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; `pid` is our unreaped child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            let status = std::process::ExitStatus::from_raw(status);
            assert!(status.success(), "the child failed: {status:?}");
            return;
        }
        if start.elapsed() > limit {
            // SAFETY: kill has no memory-safety preconditions; `pid` is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("the child did not finish within {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_child_that_panics_under_a_value_guard_poisons_it() {
    let v = Value::new(0i64).unwrap();
    let status = {
        let v = v.clone();
        child_status(move || {
            let g = v.lock().unwrap();
            g.set(-1); // half-done work
            panic!("this test's child panics inside the critical section on purpose");
        })
    };
    assert_eq!(status.code(), Some(101));
    let Err(died) = v.lock() else {
        panic!("a panic inside the critical section went unnoticed")
    };
    assert_eq!(
        died.get_ref().get(),
        -1,
        "the half-written value is there to repair"
    );
    died.into_inner().set(0);
    assert!(v.lock().is_ok(), "reported once, then normal service");
}

#[test]
fn a_thread_that_panics_under_a_guard_poisons_lock_and_rlock() {
    let lock = Lock::new().unwrap();
    let rlock = RLock::new().unwrap();
    std::thread::scope(|s| {
        let r = s
            .spawn(|| {
                let _g = lock.acquire().unwrap();
                let _h = rlock.acquire().unwrap();
                panic!("this test's thread panics holding two guards on purpose");
            })
            .join();
        assert!(r.is_err());
    });
    assert!(matches!(
        lock.try_acquire(),
        Err(TryLockError::OwnerDied(_))
    ));
    assert!(lock.try_acquire().is_ok(), "one report per failed holder");
    assert!(rlock.acquire().is_err());
    assert!(rlock.acquire().is_ok());
}

#[test]
fn an_rlock_guard_dropped_while_unwinding_at_depth_two_poisons_the_lock() {
    let rlock = RLock::new().unwrap();
    let outer = rlock.acquire().unwrap();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let _inner = rlock.acquire().unwrap();
        panic!("this test panics at depth two on purpose");
    }));
    assert!(caught.is_err());
    drop(outer); // released normally, but the critical section did not finish
    let rlock2 = rlock.clone();
    in_child(move || {
        assert!(rlock2.acquire().is_err(), "the nested panic went unnoticed");
        assert!(
            rlock2.acquire().is_ok(),
            "nested: still held, no second report"
        );
    });
    assert!(rlock.acquire().is_ok(), "one report only");
}

#[test]
fn a_guard_dropped_normally_in_a_panicking_child_is_not_a_failure() {
    // The guard goes out of scope before the panic: the section finished.
    let v = Value::new(1u8).unwrap();
    let status = {
        let v = v.clone();
        child_status(move || {
            v.set(2);
            panic!("this test's child panics after its critical section on purpose");
        })
    };
    assert_eq!(status.code(), Some(101));
    assert!(v.lock().is_ok());
    assert_eq!(v.get(), 2);
}

/// Dies holding `lock`, leaving a zombie (`reap == false`) or nothing.
fn die_holding(lock: &Lock, reap: bool) -> Option<Process> {
    let child = {
        let lock = lock.clone();
        Process::spawn(move || std::mem::forget(lock.acquire())).unwrap()
    };
    // Wait until it is dead without reaping it.
    let pid = child.pid() as libc::pid_t;
    let mut info: libc::siginfo_t = unsafe_zeroed_siginfo();
    // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child reapable.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as u32,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(rc, 0);
    if reap {
        child.join().unwrap();
        None
    } else {
        Some(child)
    }
}

fn unsafe_zeroed_siginfo() -> libc::siginfo_t {
    // SAFETY: siginfo_t is a plain C struct for which all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

#[test]
fn acquire_timeout_shorter_than_the_check_interval_recovers_a_dead_owner() {
    for reap in [false, true] {
        let lock = Lock::new().unwrap();
        let zombie = die_holding(&lock, reap);
        let r = lock.acquire_timeout(CHECK_INTERVAL / 10);
        assert!(
            matches!(r, Err(TryLockError::OwnerDied(_))),
            "a timeout shorter than CHECK_INTERVAL must still recover (reaped: {reap})"
        );
        drop(r);
        if let Some(z) = zombie {
            z.wait().unwrap();
        }
    }
}

#[test]
fn rlock_try_acquire_takes_over_a_dead_owner() {
    let rlock = RLock::new().unwrap();
    let status = {
        let rlock = rlock.clone();
        child_status(move || std::mem::forget(rlock.acquire()))
    };
    assert!(status.success());
    assert!(matches!(
        rlock.try_acquire(),
        Err(TryLockError::OwnerDied(_))
    ));
    assert!(rlock.try_acquire().is_ok());
}

#[test]
fn try_lock_errors_convert_with_the_question_mark() {
    fn busy(lock: &Lock) -> sharedctypes::Result<()> {
        let _g = lock.try_acquire()?;
        Ok(())
    }
    let lock = Lock::new().unwrap();
    let held = lock.acquire().unwrap();
    let err = busy(&lock).unwrap_err();
    assert!(matches!(err, Error::WouldBlock), "{err:?}");
    assert!(err.to_string().contains("held by another"), "{err}");
    drop(held);
    assert!(busy(&lock).is_ok());
}

// --- Lock words written by somebody else -------------------------------------------

/// The offset of `v`'s lock word in its named heap's file. `v` (set to a unique
/// marker) is a `Value<u64>` just made in a fresh heap: its value's block follows its
/// RLock's (the lock's 16 bytes, then the value's 16-byte block header), so the value
/// is 32 bytes after the lock word. Checked: holding the lock writes this thread's id
/// there.
fn lock_word_offset(name: &str, v: &Value<u64>, marker: u64) -> u64 {
    let read = || std::fs::read(format!("/dev/shm{name}")).unwrap();
    let at = read()
        .windows(8)
        .position(|w| w == marker.to_ne_bytes())
        .expect("the marker is in the segment")
        - 32;
    let word = |bytes: Vec<u8>| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap());
    let held = {
        let _g = v.lock().unwrap();
        word(read())
    };
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u64;
    assert_eq!(held & 0x3fff_ffff, me, "the lock word names its holder");
    assert_eq!(word(read()) & 0x3fff_ffff, 0, "and no owner once released");
    at as u64
}

const WAITERS: u64 = 1 << 31;

/// Kills a process when dropped, so a failing test leaves no sleeper behind (one
/// would keep the runner's output pipe open).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is a child or
        // grandchild of this test that nobody but us and init reaps.
        unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
    }
}

/// A child that sleeps until killed: a live process that holds no lock.
fn bystander() -> (Process, KillOnDrop) {
    let p = Process::spawn(|| loop {
        std::thread::sleep(Duration::from_secs(1));
    })
    .unwrap();
    let pid = p.pid();
    (p, KillOnDrop(pid))
}

#[test]
fn a_lock_word_naming_a_live_process_that_is_not_its_owner_is_recovered() {
    let name = unique("garbage-owner");
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let marker = 0x5eed_cafe_f00d_0001u64;
    let v = Value::new_in(&heap, marker).unwrap();
    let at = lock_word_offset(&name, &v, marker);
    let (live, _kill) = bystander();
    let pid = live.pid();
    let real = owner_word(pid, start_time(pid));
    for (what, word) in [
        ("a zero stamp", u64::from(pid)),
        ("a wrong start time", owner_word(pid, start_time(pid) + 7)),
        (
            "garbage in the upper half",
            u64::from(pid) | 0x1234_5678 << 32,
        ),
    ] {
        write_word(&name, at, word | WAITERS);
        let v = v.clone();
        finishes_within(Duration::from_secs(10), move || {
            assert!(v.lock().is_err(), "{what}: taken over, and reported");
            assert_eq!(v.get(), marker);
        });
    }
    // The bystander's exact identity is a real owner as far as anyone can tell: it is
    // waited for, not taken over.
    write_word(&name, at, real);
    assert!(matches!(
        v.get_lock().acquire_timeout(3 * CHECK_INTERVAL),
        Err(TryLockError::WouldBlock)
    ));
    live.kill().unwrap();
    live.wait().ok();
    assert!(v.lock().is_err(), "recovered once the bystander is gone");
    drop((v, heap));
}

/// `unshare(CLONE_NEWTIME)` with a boot-time offset for this process's future
/// children; `false` if the kernel refuses.
fn new_time_namespace_for_children() -> bool {
    // SAFETY: unshare has no memory-safety preconditions.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        return false;
    }
    std::fs::write("/proc/self/timens_offsets", "boottime 100000 0\n").is_ok()
}

#[test]
fn a_live_owner_in_another_time_namespace_is_not_taken_over() {
    let name = unique("timens-owner");
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let marker = 0x5eed_cafe_f00d_0002u64;
    let v = Value::new_in(&heap, marker).unwrap();
    let at = lock_word_offset(&name, &v, marker);
    // A grandchild in a new time namespace reports its own start time as it sees it,
    // then lives on: the word an owner there would write.
    let seen = sharedctypes::RawValue::new([0u64; 2]).unwrap();
    let middle = {
        let seen = seen.clone();
        Process::spawn(move || {
            if !new_time_namespace_for_children() {
                seen[1].set(u64::MAX);
                return;
            }
            let _grandchild = Process::spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() } as u32;
                seen[0].set(owner_word(tid, start_time(tid)));
                seen[1].set(1);
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .unwrap();
        })
        .unwrap()
    };
    middle.join().unwrap();
    let t0 = Instant::now();
    while seen[1].get() == 0 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    if seen[1].get() == u64::MAX {
        eprintln!("SKIPPED: this kernel refuses time namespaces (unshare(CLONE_NEWTIME))");
        return;
    }
    let word = seen[0].get();
    let tid = (word & 0x3fff_ffff) as u32;
    let _kill = KillOnDrop(tid);
    assert_ne!(
        word,
        owner_word(tid, start_time(tid)),
        "the namespace must shift the start time, or this test shows nothing"
    );
    write_word(&name, at, word);
    let r = v.get_lock().acquire_timeout(5 * CHECK_INTERVAL);
    assert!(
        matches!(r, Err(TryLockError::WouldBlock)),
        "a live owner in another time namespace was declared dead"
    );
    drop(r);
    // SAFETY: kill has no memory-safety preconditions; `tid` is our grandchild, alive
    // (it never exits by itself) and not reaped by anyone but init.
    unsafe { libc::kill(tid as libc::pid_t, libc::SIGKILL) };
    finishes_within(Duration::from_secs(10), move || {
        assert!(v.lock().is_err(), "recovered once the owner is gone");
    });
}

#[test]
fn a_child_in_another_time_namespace_cannot_take_an_inherited_lock() {
    let lock = Lock::new().unwrap();
    let outcome = sharedctypes::RawValue::new(0u32).unwrap();
    let middle = {
        let (lock, outcome) = (lock.clone(), outcome.clone());
        Process::spawn(move || {
            if !new_time_namespace_for_children() {
                outcome.set(u32::MAX);
                return;
            }
            let grandchild = Process::spawn(move || {
                let _g = lock.acquire();
            })
            .unwrap();
            let status = grandchild.wait().unwrap();
            outcome.set(status.code().map_or(1000, |c| c as u32));
        })
        .unwrap()
    };
    middle.join().unwrap();
    match outcome.get() {
        u32::MAX => eprintln!("SKIPPED: this kernel refuses time namespaces"),
        code => assert_eq!(code, 101, "the grandchild must panic, not take the lock"),
    }
    assert!(lock.try_acquire().is_ok(), "nobody holds it");
}

#[test]
fn a_child_that_chroots_without_proc_still_uses_its_locks() {
    // The privilege-separated daemon: fork, chroot into an empty directory, work.
    let dir = std::env::temp_dir().join(format!("sharedctypes-chroot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lock = Lock::new().unwrap();
    let counter = sharedctypes::RawValue::new(0u32).unwrap();
    let held = lock.acquire().unwrap();
    let child = {
        let (lock, counter, dir) = (lock.clone(), counter.clone(), dir.clone());
        Process::spawn(move || {
            let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: chroot and chdir take valid NUL-terminated paths.
            if unsafe { libc::chroot(path.as_ptr()) } != 0 {
                counter.set(u32::MAX); // not permitted here: nothing to show
                return;
            }
            // SAFETY: as above.
            unsafe { libc::chdir(c"/".as_ptr()) };
            assert!(
                std::fs::metadata("/proc/self").is_err(),
                "no /proc in the chroot"
            );
            assert!(matches!(lock.try_acquire(), Err(TryLockError::WouldBlock)));
            counter.set(1);
            let _g = lock.acquire().unwrap();
            counter.set(2);
        })
        .unwrap()
    };
    finishes_within_or_skip(&counter, held);
    child.join().unwrap();
    std::fs::remove_dir(&dir).ok();
    if counter.get() != u32::MAX {
        assert_eq!(counter.get(), 2);
    } else {
        eprintln!("SKIPPED: chroot is not permitted here");
    }
}

/// Releases `held` once the chrooted child has shown it waits (or skipped).
fn finishes_within_or_skip(
    counter: &sharedctypes::RawValue<u32>,
    held: sharedctypes::LockGuard<'_>,
) {
    let start = Instant::now();
    while counter.get() == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(held);
}

/// The heap's own allocator lock is a lock like the others: a process in another time
/// namespace than the heap's creator never takes it. Allocations that need it are
/// `ForeignTimeNamespace` there (not `OutOfMemory`), small ones from the size classes
/// and the frontier still work, and a large block freed there stays allocated.
#[test]
fn the_allocator_lock_is_not_taken_from_another_time_namespace() {
    let heap = Heap::new(4 << 20).unwrap();
    let outcome = sharedctypes::RawValue::new([0u64; 4]).unwrap();
    let middle = {
        let (heap, outcome) = (heap.clone(), outcome.clone());
        Process::spawn(move || {
            if !new_time_namespace_for_children() {
                outcome[0].set(u64::MAX);
                return;
            }
            let report = outcome.clone();
            let grandchild = Process::spawn(move || {
                let outcome = report;
                let small = sharedctypes::RawValue::new_in(&heap, 7u64).map(|v| v.get());
                outcome[1].set(small.map_or(0, |v| v));
                let large = sharedctypes::RawArray::<u8>::zeroed_in(&heap, 1 << 20);
                let foreign = matches!(large, Err(sharedctypes::Error::ForeignTimeNamespace));
                outcome[2].set(u64::from(foreign));
            })
            .unwrap();
            outcome[3].set(u64::from(grandchild.wait().unwrap().success()));
        })
        .unwrap()
    };
    middle.join().unwrap();
    if outcome[0].get() == u64::MAX {
        eprintln!("SKIPPED: this kernel refuses time namespaces");
        return;
    }
    assert_eq!(outcome[3].get(), 1, "the grandchild did not panic");
    assert_eq!(outcome[1].get(), 7, "a small allocation works there");
    assert_eq!(
        outcome[2].get(),
        1,
        "a large one is ForeignTimeNamespace there"
    );
    // Here, in the creator's namespace, the back end works.
    assert!(sharedctypes::RawArray::<u8>::zeroed_in(&heap, 1 << 20).is_ok());
}
