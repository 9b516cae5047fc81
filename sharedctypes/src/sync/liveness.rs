//! Is a lock owner still alive? Asked only by a waiter that has waited a while.
//!
//! A thread is dead when `/proc/<tid>/stat` is gone, or shows it as a zombie (`Z`) or
//! dead (`X`) task: a killed process that its parent has not yet reaped is a zombie, and
//! its locks must be recoverable before the parent calls `waitpid`. TIDs are reused
//! (`pid_max` may be as low as 32768), so the owner also records its start time, and a
//! live thread whose start time differs from the recorded one is a *different* thread
//! that merely got the same TID — provided both sides read start times in the same
//! time namespace ([`same_time_namespace`]): a time namespace shifts every start time
//! by the reader's boot-time offset.

/// What `/proc/<tid>/stat` says about a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    /// No such thread, or a zombie: it will never release anything.
    Dead,
    /// A live thread started at this time (clock ticks since boot).
    Alive { start: u64 },
    /// Cannot tell (e.g. `/proc` hidden); treated as alive.
    Unknown,
}

/// What is known about thread `tid`.
///
/// `/proc` is read only when it belongs to our own PID namespace (`/proc/self` names
/// our pid): a `/proc` of another namespace, or none at all, would show a live owner as
/// missing. A missing entry is never taken as proof of death on its own (`hidepid`
/// hides other users' processes): `kill(tid, 0)`, which looks the id up in our own
/// namespace, must confirm it. Without a usable `/proc`, a zombie looks alive.
pub(crate) fn task(tid: u32) -> Task {
    if proc_is_ours() {
        if let Ok(stat) = std::fs::read(format!("/proc/{tid}/stat")) {
            return parse_stat(&stat).unwrap_or(Task::Unknown);
        }
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks existence and permission.
    let rc = unsafe { libc::kill(tid as libc::pid_t, 0) };
    if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        Task::Dead
    } else {
        Task::Unknown
    }
}

/// Whether `/proc` is mounted and shows our own PID namespace.
fn proc_is_ours() -> bool {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    std::fs::read_link("/proc/self")
        .map(|target| target.as_os_str() == pid.to_string().as_str())
        .unwrap_or(false)
}

/// Whether thread `tid` lives in this process's time namespace, as far as `/proc` can
/// tell: `false` when either side cannot be read (another user's or a non-dumpable
/// process's `ns/time` needs ptrace access), except on a kernel without time
/// namespaces, where every thread shares the one clock.
///
/// `/proc/<tid>/stat` shows a start time shifted by the *reader's* boot-time offset,
/// while an owner records the start time it sees itself: two threads in different time
/// namespaces disagree about every start time, so a mismatch between them proves
/// nothing, and a live owner must never be declared dead for it.
pub(crate) fn same_time_namespace(tid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    if !proc_is_ours() {
        return false;
    }
    let theirs = std::fs::metadata(format!("/proc/{tid}/ns/time")).map(|m| (m.dev(), m.ino()));
    let ours = std::fs::metadata("/proc/self/ns/time").map(|m| (m.dev(), m.ino()));
    same_namespace(theirs, ours)
}

/// The decision of [`same_time_namespace`] from what `stat` said about both sides.
fn same_namespace(theirs: std::io::Result<(u64, u64)>, ours: std::io::Result<(u64, u64)>) -> bool {
    match (theirs, ours) {
        (Ok(a), Ok(b)) => a == b,
        // Our own `/proc` has no `ns/time` at all: the kernel has no time namespaces
        // (before 5.6, or built without CONFIG_TIME_NS), so none can explain a
        // mismatch. Failing closed here would wait on every stranger that reused a
        // dead owner's TID until it exits.
        (_, Err(e)) => e.kind() == std::io::ErrorKind::NotFound,
        (Err(_), Ok(_)) => false,
    }
}

/// The start time of thread `tid`, if it is alive.
pub(crate) fn start_time(tid: u32) -> Option<u64> {
    match task(tid) {
        Task::Alive { start } => Some(start),
        _ => None,
    }
}

/// `pid (comm) state ppid ... starttime(22) ...`; `comm` may hold spaces and parens,
/// so fields are counted from the last `)`.
fn parse_stat(stat: &[u8]) -> Option<Task> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" || state == "x" {
        return Some(Task::Dead);
    }
    // After `state` (field 3), starttime is field 22: 18 fields further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some(Task::Alive { start })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        let line = b"123 (my (weird) prog) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(line), Some(Task::Alive { start: 98765 }));
        let zombie = b"9 (x) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(zombie), Some(Task::Dead));
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn time_namespaces_compare_only_when_the_kernel_has_them() {
        use std::io::{Error, ErrorKind};
        let missing = || Err(Error::from(ErrorKind::NotFound));
        let denied = || Err(Error::from(ErrorKind::PermissionDenied));
        assert!(same_namespace(Ok((1, 7)), Ok((1, 7))));
        assert!(!same_namespace(Ok((1, 7)), Ok((1, 8))), "another namespace");
        assert!(
            !same_namespace(denied(), Ok((1, 7))),
            "cannot tell: fail closed"
        );
        assert!(!same_namespace(missing(), Ok((1, 7))), "the thread is gone");
        // A kernel without time namespaces: no `ns/time` on either side.
        assert!(
            same_namespace(missing(), missing()),
            "without time namespaces, a start-time mismatch must be believed"
        );
        assert!(!same_namespace(denied(), denied()));
    }

    #[test]
    fn knows_itself_and_the_dead() {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        assert!(matches!(task(me), Task::Alive { .. }));
        assert_eq!(task(u32::MAX >> 2), Task::Dead);
    }
}
