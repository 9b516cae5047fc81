//! Helpers shared by the cross-process tests.
#![allow(dead_code)]

use std::process::ExitStatus;

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
