//! Review of the synchronization code: each test reproduces a hole found by reading
//! `sync/` as an attacker would, and fails without its fix.
//!
//! Where a test needs a state that safe code cannot reach on this machine (a lock word
//! or a condition slot that another process rewrote), it writes the named heap's file
//! with `std::fs`, as any process of the same user could. Scenarios that could hang run
//! in forked children with a deadline, and are killed when it passes.

mod common;

use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{owner_word, start_time, unique, write_word};
use sharedctypes::{Condition, Heap, Lock, Process, RawValue, TryLockError, Value};

// --- Helpers --------------------------------------------------------------------------

/// Bit 31 of a lock word (WAITERS) and of a condition slot (SLEEPING).
const BIT31: u64 = 1 << 31;
/// A thread id above any `pid_max` (2^22): no such thread can exist.
const DEAD_TID: u32 = 0x3fff_fffe;

fn shm(name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm{name}"))
        .unwrap()
}

/// Where the 8-aligned word `word` is in the named heap's file, if anywhere.
fn find_word(name: &str, word: u64) -> Option<u64> {
    let bytes = std::fs::read(format!("/dev/shm{name}")).unwrap();
    bytes
        .chunks_exact(8)
        .position(|w| w == word.to_ne_bytes())
        .map(|i| i as u64 * 8)
}

/// The 64-bit word at `offset` in the named heap `name`'s file.
fn read_word(name: &str, offset: u64) -> u64 {
    let mut word = [0u8; 8];
    shm(name).read_exact_at(&mut word, offset).unwrap();
    u64::from_ne_bytes(word)
}

/// Whether process `pid` sleeps in `FUTEX_WAIT` (`/proc/<pid>/syscall` names the futex
/// system call).
fn in_futex_wait(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|s| s.split_ascii_whitespace().next()?.parse::<i64>().ok())
        == Some(libc::SYS_futex)
}

/// Polls `f` every millisecond until it is true; panics after `limit`.
#[track_caller]
fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Kills (and reaps) a child when dropped, so a failing test leaves no sleeper behind.
struct Child(Option<Process>);

impl Child {
    fn spawn(f: impl FnOnce() + Send + 'static) -> Child {
        Child(Some(Process::spawn(f).expect("fork")))
    }

    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().pid()
    }

    /// Whether the child ended successfully within `limit` (killed otherwise).
    fn finished_ok_within(mut self, limit: Duration) -> Result<(), String> {
        let child = self.0.take().unwrap();
        let pid = child.pid() as libc::pid_t;
        let t0 = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer; `pid` is our unreaped child.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc == pid {
                let status = std::process::ExitStatus::from_raw(status);
                // Reaped above: dropping it now gives up the closure's counts.
                drop(child);
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the child failed: {status:?}"))
                };
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the child still hangs after {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// --- A stale RLock guard -------------------------------------------------------------
//
// An RLock guard releases whatever word it finds (its release CAS expects the word it
// just loaded, not the word it installed), so a guard whose lock was taken from it —
// recovered by another process because the word was rewritten to name a dead thread —
// released the *new* owner's lock: two holders again, right after a recovery (issue 9:
// "a corrupted lock may be recovered or refused, never shared"). A `Lock` guard, whose
// CAS expects its own word, was already safe.

/// A `Value<u64>` (RLock) in a fresh named heap, and its lock word's offset.
fn value_in_named_heap(prefix: &str, marker: u64) -> (String, Heap, Value<u64>, u64) {
    let name = unique(prefix);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let v = Value::new_in(&heap, marker).unwrap();
    // The value's block follows its RLock's: the lock's 16 bytes, then the value's
    // 16-byte block header.
    let at = find_word(&name, marker).expect("the marker is in the segment") - 32;
    let held = {
        let _g = v.lock().unwrap();
        read_word(&name, at)
    };
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u64;
    assert_eq!(held & 0x3fff_ffff, me, "found the held lock word");
    assert_eq!(
        read_word(&name, at) & 0x3fff_ffff,
        0,
        "and names no owner once released"
    );
    (name, heap, v, at)
}

/// A child that recovers `v`'s lock (reported), releases it, takes it again cleanly,
/// says so in `step` (1), and holds it until `step` is 2 or `hold` has passed; then it
/// checks that the lock is still its own.
fn recoverer(v: &Value<u64>, step: &RawValue<u32>, hold: Duration) -> Child {
    let (v, step) = (v.clone(), step.clone());
    Child::spawn(move || {
        assert!(v.lock().is_err(), "the dead owner is reported");
        let g = v.lock().expect("reported once");
        step.set(1);
        let t0 = Instant::now();
        while step.get() < 2 && t0.elapsed() < hold {
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let seen = format!("{:?}", v.get_lock());
        assert!(
            seen.contains(&format!("owner_tid: Some({me})")),
            "another thread took the lock while this process held it: {seen}"
        );
        drop(g);
    })
}

#[test]
fn a_stale_rlock_guard_does_not_release_the_lock_of_whoever_recovered_it() {
    let marker = 0x7e71_e700_0000_0001u64;
    let (name, heap, v, at) = value_in_named_heap("review-stale-rlock", marker);
    let step = RawValue::new(0u32).unwrap();
    let stale = v.get_lock().acquire().unwrap();
    // Another process rewrites the word: it now names a thread that does not exist.
    write_word(&name, at, owner_word(DEAD_TID, 12345) | BIT31);
    let child = recoverer(&v, &step, Duration::from_secs(20));
    until(
        "the child holds the lock again",
        Duration::from_secs(20),
        || step.get() == 1,
    );
    drop(stale); // not this thread's lock any more: must change nothing
    let taken = matches!(
        v.get_lock().try_acquire(),
        Ok(_) | Err(TryLockError::OwnerDied(_))
    );
    step.set(2);
    let child = child.finished_ok_within(Duration::from_secs(20));
    assert!(
        !taken,
        "a guard whose lock was recovered by another process released that process's hold"
    );
    child.unwrap();
    drop((v, heap));
}

#[test]
fn a_condition_wait_with_a_stale_rlock_guard_does_not_release_the_new_owner() {
    let marker = 0x7e71_e700_0000_0002u64;
    let (name, heap, v, at) = value_in_named_heap("review-stale-wait", marker);
    let step = RawValue::new(0u32).unwrap();
    let cond = Condition::new().unwrap();
    let stale = v.lock().unwrap();
    write_word(&name, at, owner_word(DEAD_TID, 12345) | BIT31);
    // The child holds the lock for up to 2 s unless told otherwise: without the bug, the
    // wait below takes the lock back only after that.
    let child = recoverer(&v, &step, Duration::from_secs(2));
    until(
        "the child holds the lock again",
        Duration::from_secs(20),
        || step.get() == 1,
    );
    let r = cond.wait_timeout(stale, Duration::from_millis(1));
    step.set(2);
    let outcome = child.finished_ok_within(Duration::from_secs(20));
    drop(r);
    outcome.expect("the waiter must not release a lock that is not its own");
    drop((v, heap));
}

#[test]
fn a_stale_lock_guard_was_already_safe() {
    // The control for the two tests above: a `Lock` guard expects its own word.
    let name = unique("review-stale-lock");
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let marker = 0x7e71_e700_0000_0003u64;
    let lock = Lock::new_in(&heap).unwrap();
    let v = Value::with_lock(marker, lock).unwrap();
    let at = find_word(&name, marker).unwrap();
    // `with_lock` allocates the value's block after the lock's: the lock's word is
    // 32 bytes before the value (the lock's 16 bytes, the value's 16-byte header).
    let lock_at = at - 32;
    let step = RawValue::new(0u32).unwrap();
    let stale = v.lock().unwrap();
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u64;
    assert_eq!(
        read_word(&name, lock_at) & 0x3fff_ffff,
        me,
        "found the held lock word"
    );
    write_word(&name, lock_at, owner_word(DEAD_TID, 12345) | BIT31);
    let child = {
        let (v, step) = (v.clone(), step.clone());
        Child::spawn(move || {
            assert!(v.lock().is_err());
            let _g = v.lock().unwrap();
            step.set(1);
            let t0 = Instant::now();
            while step.get() < 2 && t0.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    until(
        "the child holds the lock again",
        Duration::from_secs(20),
        || step.get() == 1,
    );
    drop(stale);
    let taken = v.get_lock().try_acquire().is_ok();
    step.set(2);
    child.finished_ok_within(Duration::from_secs(20)).unwrap();
    assert!(!taken);
    drop((v, heap));
}

// --- A condition slot that is no longer the waiter's -----------------------------------
//
// A waiter's slot can be taken from it while it sleeps: `reclaim_dead` frees slots whose
// owner looks dead (a waiter in another PID namespace names a TID that means something
// else here, and `Condition` does not refuse such processes), or another process
// rewrites it. The sleeper used to adopt whatever its slot held next: it took the
// NOTIFIED meant for the slot's new owner, zeroed that owner's slot, and the new owner
// slept forever.

#[test]
fn a_waiter_whose_slot_was_taken_does_not_steal_the_next_owners_notification() {
    let name = unique("review-slot");
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let cond = Condition::new_in(&heap).unwrap();
    let waiter = |lock: &Lock, cond: &Condition| {
        let (lock, cond) = (lock.clone(), cond.clone());
        Child::spawn(move || {
            let g = lock.acquire().unwrap();
            drop(cond.wait(g).unwrap());
        })
    };
    let slot_of = |child: &Child| owner_word(child.pid(), start_time(child.pid())) | BIT31;

    let a = waiter(&lock, &cond);
    let a_slot = slot_of(&a);
    let mut at = None;
    until(
        "the first waiter sleeps on its slot",
        Duration::from_secs(20),
        || {
            at = find_word(&name, a_slot);
            at.is_some() && in_futex_wait(a.pid())
        },
    );
    let at = at.unwrap();
    // Its slot is freed under it (as `reclaim_dead` does for a waiter it judges dead).
    write_word(&name, at, 0);

    let b = waiter(&lock, &cond);
    let b_slot = slot_of(&b);
    until("the second waiter sleeps", Duration::from_secs(20), || {
        find_word(&name, b_slot).is_some() && in_futex_wait(b.pid())
    });
    assert_eq!(
        find_word(&name, b_slot),
        Some(at),
        "the second waiter took the freed slot, or this test shows nothing"
    );
    assert_eq!(cond.notify(1), 1);
    b.finished_ok_within(Duration::from_secs(10))
        .expect("the notified waiter must wake");
    drop(a);
    drop((lock, cond, heap));
}
