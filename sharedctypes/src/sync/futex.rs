//! The shared futex: sleep until a 32-bit word in shared memory changes, and wake
//! sleepers, in any process that maps the word.
//!
//! Never `FUTEX_PRIVATE_FLAG`: a private futex is keyed by (address space, address),
//! so a waker in another process would never find the sleeper. Without the flag the
//! kernel keys the futex by the page's backing object and offset, which is the same in
//! every process mapping the heap, wherever it is mapped.

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (forever if `None`).
/// Returns on a wake, a signal, a timeout, or at once if the word differs: callers
/// always look again.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    wait_raw(word.as_ptr(), expected, timeout);
}

/// Wakes up to `n` sleepers on `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    wake_raw(word.as_ptr(), n)
}

/// The futex word of a 64-bit lock word: its low 32 bits.
///
/// Rust code only ever accesses the 64-bit atomic; this address is handed to the
/// kernel, which reads the 32-bit half atomically (as part of `FUTEX_WAIT`'s
/// compare) and never writes it.
fn low_half(word: &AtomicU64) -> *mut u32 {
    let base = word.as_ptr().cast::<u32>();
    if cfg!(target_endian = "little") {
        base
    } else {
        base.wrapping_add(1)
    }
}

/// [`wait`] on the low 32 bits of a 64-bit word.
pub(crate) fn wait_low(word: &AtomicU64, expected_low: u32, timeout: Option<Duration>) {
    wait_raw(low_half(word), expected_low, timeout);
}

/// [`wake`] on the low 32 bits of a 64-bit word.
pub(crate) fn wake_low(word: &AtomicU64, n: u32) -> usize {
    wake_raw(low_half(word), n)
}

fn wait_raw(addr: *mut u32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
    // SAFETY: `addr` is an aligned u32 inside a live atomic (the caller's reference
    // keeps it mapped for the call); the kernel only reads it. `ts_ptr` is null or a
    // valid timespec that outlives the call; the last two arguments are unused by
    // FUTEX_WAIT.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "look again". Anything
    // else (ENOSYS under a seccomp filter, say) would turn every caller into a busy
    // loop: sleep a little instead, which keeps the callers correct, only slower.
    if rc < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        if !matches!(errno, Some(libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT)) {
            std::thread::sleep(timeout.unwrap_or(Duration::from_millis(1)));
        }
    }
}

fn wake_raw(addr: *mut u32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: FUTEX_WAKE uses the address only as a key (it reads no value; an unmapped
    // address would be EFAULT, harmless); `addr` is
    // an aligned u32 in a live mapping.
    let rc = unsafe { libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAKE, n) };
    usize::try_from(rc).unwrap_or(0)
}
