//! A hostile environment: a file-size limit (`ulimit -f`, whose `SIGXFSZ` would kill
//! the process), an address-space limit, a malformed `SHAREDCTYPES_HEAP_SIZE`. Running
//! out of room must be `Err(OutOfMemory)`, never a signal; a bad size is an error.
//!
//! Every scenario runs in a child process, so that a `SIGXFSZ` kills the child, not the
//! test harness. Scenarios about the *default* heap need a process that has not created
//! it yet (a forked child inherits its parent's): they run in this test binary executed
//! again (`helper`), with the environment variable set before it starts.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, ExitStatus};

use common::{child_status, unique};
use sharedctypes::{
    default_heap, Array, Error, Heap, RawArray, RawValue, DEFAULT_HEAP_SIZE, HEAP_SIZE_ENV,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Sets this process's soft file-size limit to `bytes`.
fn limit_file_size(bytes: u64) {
    set_soft_limit(libc::RLIMIT_FSIZE, bytes);
}

fn set_soft_limit(resource: libc::__rlimit_resource_t, bytes: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut lim) }, 0);
    lim.rlim_cur = bytes.min(lim.rlim_max);
    // SAFETY: `lim` is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(resource, &lim) }, 0);
}

/// Whether `SIGXFSZ` is pending for this thread or process, or blocked by this thread.
fn sigxfsz_pending_or_blocked() -> (bool, bool) {
    // SAFETY: all-zero is a valid `sigset_t`; the calls fill them.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid, writable sets.
    assert_eq!(unsafe { libc::sigpending(&mut pending) }, 0);
    // SAFETY: a null new set only reads the mask.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) };
    assert_eq!(rc, 0);
    // SAFETY: the sets were filled above.
    let is_pending = unsafe { libc::sigismember(&pending, libc::SIGXFSZ) } == 1;
    // SAFETY: as above.
    let is_blocked = unsafe { libc::sigismember(&mask, libc::SIGXFSZ) } == 1;
    (is_pending, is_blocked)
}

fn is_out_of_memory<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::OutOfMemory { .. }))
}

// ---------------------------------------------------------------------------------------
// Forked children: explicit heaps under a file-size limit.
// ---------------------------------------------------------------------------------------

#[test]
fn heaps_past_a_file_size_limit_are_out_of_memory() {
    let name = unique("sct-fsize");
    let name2 = name.clone();
    let status = child_status(move || {
        limit_file_size(MIB);
        assert!(is_out_of_memory(&Heap::new(4 * MIB as usize)));
        assert!(is_out_of_memory(&Heap::create(&name2, 4 * MIB as usize)));
        assert!(
            fs::metadata(format!("/dev/shm{name2}")).is_err(),
            "nothing left in /dev/shm"
        );
        // Below the limit, all is well.
        let small = Heap::new(64 << 10).unwrap();
        assert_eq!(RawValue::new_in(&small, 5u8).unwrap().get(), 5);
        let named = Heap::create(&name2, 64 << 10).unwrap();
        assert_eq!(RawValue::new_in(&named, 6u8).unwrap().get(), 6);
        drop(named);
        // No SIGXFSZ was left pending or blocked.
        assert_eq!(sigxfsz_pending_or_blocked(), (false, false));
    });
    assert!(
        status.success(),
        "the child failed (exit 153 or signal 25 is SIGXFSZ): {status:?}"
    );
    assert!(fs::metadata(format!("/dev/shm{name}")).is_err());
}

#[test]
fn large_copies_past_a_file_size_limit_go_through_the_mapping() {
    let name = unique("sct-fsize-copy");
    let name2 = name.clone();
    let status = child_status(move || {
        // Heaps made before the limit was lowered; copies land past it.
        let anonymous = Heap::new(16 * MIB as usize).unwrap();
        let named = Heap::create(&name2, 16 * MIB as usize).unwrap();
        limit_file_size(MIB);
        let src: Vec<u64> = (0..MIB).map(|i| i * 7 + 1).collect(); // 8 MiB
        for heap in [&anonymous, &named] {
            let _pad = RawArray::<u8>::zeroed_in(heap, 2 * MIB as usize).unwrap();
            let raw = RawArray::from_slice_in(heap, &src).unwrap();
            assert_eq!(raw.to_vec(), src);
            let locked = Array::from_slice_in(heap, &src[..MIB as usize / 2]).unwrap();
            assert_eq!(locked.to_vec(), src[..MIB as usize / 2]);
        }
        assert_eq!(sigxfsz_pending_or_blocked(), (false, false));
    });
    assert!(
        status.success(),
        "the child failed (exit 153 or signal 25 is SIGXFSZ): {status:?}"
    );
    assert!(fs::metadata(format!("/dev/shm{name}")).is_err());
}

// ---------------------------------------------------------------------------------------
// The default heap, in a fresh program.
// ---------------------------------------------------------------------------------------

const HELPER_MODE: &str = "SHAREDCTYPES_HARDENING_HELPER";
const HELPER_FSIZE: &str = "SHAREDCTYPES_HARDENING_FSIZE";
const HELPER_AS_MARGIN: &str = "SHAREDCTYPES_HARDENING_AS_MARGIN";
/// The helper's exit status when it ran to the end.
const HELPER_OK: i32 = 42;

/// What a default-heap constructor gave, in one line.
fn describe<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => format!("ok capacity={}", default_heap().capacity()),
        Err(Error::OutOfMemory { requested, .. }) => format!("out-of-memory requested={requested}"),
        Err(e @ Error::InvalidHeapSize { .. }) => format!("invalid-size {e}"),
        Err(e) => format!("other {e:?}"),
    }
}

/// This process's address-space size, from `/proc/self/status`.
fn vm_size() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// Not a test of its own: the entry point of the helper program. Does nothing unless
/// started by `helper` below.
#[test]
fn hardening_helper_entry() {
    let Ok(mode) = std::env::var(HELPER_MODE) else {
        return;
    };
    if let Ok(bytes) = std::env::var(HELPER_FSIZE) {
        limit_file_size(bytes.parse().unwrap());
    }
    if let Ok(margin) = std::env::var(HELPER_AS_MARGIN) {
        set_soft_limit(libc::RLIMIT_AS, vm_size() + margin.parse::<u64>().unwrap());
    }
    // Twice: the failure is kept and reported again, the same way.
    let (first, second) = match mode.as_str() {
        "raw-value" => (describe(RawValue::new(1u8)), describe(RawValue::new(2u8))),
        "from-slice" => {
            let big = vec![7u8; 4 * MIB as usize];
            (
                describe(RawArray::from_slice(&big)),
                describe(Array::from_slice(&big)),
            )
        }
        other => panic!("unknown helper mode {other:?}"),
    };
    println!("RESULT {first}");
    println!("RESULT {second}");
    let (pending, blocked) = sigxfsz_pending_or_blocked();
    println!("SIGXFSZ pending={pending} blocked={blocked}");
    std::process::exit(HELPER_OK);
}

/// Runs this test binary again in helper `mode`, with `SHAREDCTYPES_HEAP_SIZE` set to
/// `size` (unset if `None`) and the other variables in `env`; returns how it ended and
/// its two results.
fn helper(mode: &str, size: Option<&OsStr>, env: &[(&str, String)]) -> (ExitStatus, [String; 2]) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "hardening_helper_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(HELPER_MODE, mode)
    .env_remove(HEAP_SIZE_ENV)
    .env_remove(HELPER_FSIZE)
    .env_remove(HELPER_AS_MARGIN);
    if let Some(size) = size {
        cmd.env(HEAP_SIZE_ENV, size);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut results = stdout
        .lines()
        // libtest may have printed `test … ... ` on the same line before ours.
        .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_owned()));
    let results = [
        results.next().unwrap_or_default(),
        results.next().unwrap_or_default(),
    ];
    assert!(
        out.status.code() == Some(HELPER_OK),
        "the helper failed (exit 153 or signal 25 is SIGXFSZ): {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SIGXFSZ pending=false blocked=false"),
        "{stdout}"
    );
    (out.status, results)
}

fn fsize(bytes: u64) -> (&'static str, String) {
    (HELPER_FSIZE, bytes.to_string())
}

#[test]
fn the_default_heap_past_a_file_size_limit_is_out_of_memory() {
    for mode in ["raw-value", "from-slice"] {
        let (_, results) = helper(mode, None, &[fsize(MIB)]);
        for r in &results {
            assert!(r.starts_with("out-of-memory"), "{mode}: {r}");
        }
    }
}

#[test]
fn the_default_heap_halves_below_a_file_size_limit() {
    // 3 GiB: 64 GiB halves to 2 GiB, the first size below the limit.
    let (_, [first, second]) = helper("raw-value", None, &[fsize(3 * GIB)]);
    let capacity: u64 = first
        .strip_prefix("ok capacity=")
        .unwrap_or_else(|| panic!("{first}"))
        .parse()
        .unwrap();
    assert!(capacity + 128 <= 3 * GIB && capacity >= GIB, "{capacity}");
    assert!((DEFAULT_HEAP_SIZE as u64 / capacity).is_power_of_two());
    assert_eq!(DEFAULT_HEAP_SIZE as u64 % capacity, 0);
    assert_eq!(second, first);
}

#[test]
fn an_explicit_size_never_falls_back() {
    // With 1.5 GiB allowed, the built-in default settles for 1 GiB, but an explicit
    // 2G is refused as out of memory, not quietly shrunk.
    let limit = [fsize(3 * GIB / 2)];
    let (_, [default, _]) = helper("raw-value", None, &limit);
    assert_eq!(default, format!("ok capacity={GIB}"));
    let (_, results) = helper("raw-value", Some(OsStr::new("2G")), &limit);
    for r in &results {
        assert!(r.starts_with("out-of-memory requested="), "{r}");
    }
    let (_, [fits, _]) = helper("raw-value", Some(OsStr::new("1G")), &limit);
    assert_eq!(fits, format!("ok capacity={GIB}"));
}

#[test]
fn an_unmappable_heap_is_out_of_memory() {
    // Less than 1 GiB of address space to spare: neither an explicit size nor the
    // built-in default (halved down to 1 GiB) can be mapped.
    let margin = [(HELPER_AS_MARGIN, (256 * MIB).to_string())];
    for size in [None, Some(OsStr::new("4G"))] {
        let (_, results) = helper("raw-value", size, &margin);
        for r in &results {
            assert!(r.starts_with("out-of-memory requested="), "{size:?}: {r}");
        }
    }
}

#[test]
fn a_malformed_heap_size_is_an_error() {
    let bad: [&[u8]; 5] = [b"12X", b"", b"0", b"-1G", b"64G\xff"];
    for value in bad {
        let (_, results) = helper("raw-value", Some(OsStr::from_bytes(value)), &[]);
        for r in &results {
            assert!(r.starts_with("invalid-size SHAREDCTYPES_HEAP_SIZE="), "{r}");
            assert!(r.contains("is not a size"), "{r}");
        }
    }
    // Non-UTF-8 is shown, not ignored.
    let (_, [r, _]) = helper("raw-value", Some(OsStr::from_bytes(b"64G\xff")), &[]);
    assert!(r.contains("\"64G\u{fffd}\""), "{r}");
    // And a good one is used.
    let (_, [r, _]) = helper("raw-value", Some(OsStr::new("64M")), &[]);
    assert_eq!(r, format!("ok capacity={}", 64 * MIB));
}
