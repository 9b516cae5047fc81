//! Helpers shared by the cross-process tests.
#![allow(dead_code)]

use std::process::ExitStatus;
use std::time::Duration;

use sharedctypes::Process;

/// Runs `f` in a forked child and returns how the child ended.
pub fn child_status(f: impl FnOnce() + Send + 'static) -> ExitStatus {
    Process::spawn(f).expect("fork").wait().expect("wait")
}

/// Runs `f` in a forked child and asserts that it finished without panicking
/// (assertions inside `f` run in the child; a failed one shows up here).
#[track_caller]
pub fn in_child(f: impl FnOnce() + Send + 'static) {
    let status = child_status(f);
    assert!(status.success(), "the child failed: {status:?}");
}

/// A unique name for this process and call.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "/{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes the 64-bit `word` at `offset` in the named heap `name`'s file, as another
/// process of the same user could.
pub fn write_word(name: &str, offset: u64, word: u64) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{name}"))
        .unwrap()
        .write_all_at(&word.to_ne_bytes(), offset)
        .unwrap();
}

/// Thread `tid`'s start time as `/proc/<tid>/stat` shows it to the caller.
pub fn start_time(tid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{tid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_ascii_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

/// The owner bits thread `tid` writes into a lock word or a condition slot (see the
/// `sync` module docs): TID in bits 0..=29, start time mod 2^24 (0 mapped to 1) in
/// bits 40..=63.
pub fn owner_word(tid: u32, start: u64) -> u64 {
    let start = match start & 0xff_ffff {
        0 => 1,
        s => s,
    };
    u64::from(tid) | start << 40
}

// --- Shared by the allocator suites (tests/reclaim.rs, tests/alloc_attack.rs) ---

/// `name`'s value as a number, or `default` when it is not set.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        Err(_) => default,
    }
}

/// A seed from `SHAREDCTYPES_SEED`, or from the clock; printed (shown when the test
/// fails) so that a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = env_u64(
        "SHAREDCTYPES_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    eprintln!("{test}: SHAREDCTYPES_SEED={seed}");
    seed
}

/// splitmix64's finaliser: a bijection of `u64` that scatters every input bit.
pub fn scramble(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        scramble(self.0)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Waits for `p` at most `within`; a child still running then is killed and the test
/// fails (so a bug cannot hang the suite).
#[track_caller]
pub fn finish(mut p: Process, within: Duration, what: &str) -> ExitStatus {
    match p.wait_timeout(within) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = p.kill();
            let _ = p.wait();
            panic!("{what}: still running after {within:?}, killed")
        }
        Err(e) => panic!("{what}: waiting failed: {e}"),
    }
}

/// [`finish`], and the child must have exited with status 0.
#[track_caller]
pub fn join_within(p: Process, within: Duration, what: &str) {
    let status = finish(p, within, what);
    assert!(
        status.success(),
        "{what} failed: {status:?} (its message, if any, is on stderr above)"
    );
}
