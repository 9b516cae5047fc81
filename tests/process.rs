//! `Process` with real forks: how a child's result becomes its exit status and reaches
//! standard error, `join` against `wait`, `try_wait`/`wait_timeout`, a `kill` that never
//! hits a process that reused the pid, and `spawn` never blocking on Rust's stdio locks.
//!
//! Every wait on a child that could hang goes through `finish`, which kills the child
//! after a generous timeout: the test fails instead of hanging the runner.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, ExitStatus, Termination};
use std::sync::mpsc;
use std::time::Duration;

use sharedctypes::{Error, Process, RawValue, Value, PANIC_EXIT_CODE};

/// Long enough for any child here on a loaded machine; only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// Waits for `child` at most [`HANG`]; kills it and fails the test if it is still
/// running by then.
#[track_caller]
fn finish(mut child: Process, what: &str) -> ExitStatus {
    match child.wait_timeout(HANG).expect("wait_timeout") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the child hung (killed after {HANG:?})");
        }
    }
}

/// The read end of a pipe that a child put on one of its descriptors.
struct Captured(OwnedFd);

impl Captured {
    /// Everything written so far (call after the child exited). Reads without waiting
    /// for end-of-file: children other tests fork meanwhile inherit the write end.
    fn text(&self) -> String {
        let fd = self.0.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: `buf` is valid for its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Spawns `f` in a child whose descriptor `target` (1 or 2) is a pipe the test reads.
fn spawn_capturing<F, R>(target: RawFd, f: F) -> (Process, Captured)
where
    F: FnOnce() -> R + Send + 'static,
    R: Termination,
{
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as for `read`.
    let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    let w = write.as_raw_fd();
    let child = Process::spawn(move || {
        // SAFETY: dup2 between two open descriptors of this (child) process.
        unsafe { libc::dup2(w, target) };
        f()
    })
    .expect("spawn");
    drop(write);
    (child, Captured(read))
}

#[track_caller]
fn expect_child_failed(result: sharedctypes::Result<()>, pid: u32) -> ExitStatus {
    match result {
        Err(Error::ChildFailed { pid: p, status }) => {
            assert_eq!(p, pid, "ChildFailed names the child");
            status
        }
        other => panic!("expected Err(ChildFailed), got {other:?}"),
    }
}

#[derive(Debug)]
struct Refused {
    #[allow(dead_code)] // read through Debug, in the child's message
    code: u32,
}

#[test]
fn diverging_closures_compile_and_exit_as_they_say() {
    // These two only compile because `spawn` takes std's `Termination` (for which `!`
    // and `()` both work), not a trait of the crate's own.
    let panics = Process::spawn(|| panic!("this test's child panics on purpose")).unwrap();
    let exits = Process::spawn(|| std::process::exit(3)).unwrap();
    assert_eq!(finish(panics, "panic").code(), Some(PANIC_EXIT_CODE));
    assert_eq!(finish(exits, "exit(3)").code(), Some(3));
}

#[test]
fn a_panicking_child_fails_join_with_status_101_and_its_message() {
    let (child, stderr) = spawn_capturing(2, || panic!("the answer is {}", 6 * 7));
    let pid = child.pid();
    let status = expect_child_failed(child.join(), pid);
    assert_eq!(status.code(), Some(101));
    let text = stderr.text();
    assert!(
        text.contains("the answer is 42"),
        "the panic message reaches descriptor 2: {text:?}"
    );
}

#[test]
fn a_child_returning_err_fails_join_with_status_1_and_prints_the_error() {
    let (child, stderr) = spawn_capturing(2, || Err::<(), _>(Refused { code: 42 }));
    let pid = child.pid();
    let status = expect_child_failed(child.join(), pid);
    assert_eq!(status.code(), Some(1));
    let text = stderr.text();
    assert!(
        text.contains("Error: Refused { code: 42 }"),
        "std's report of the Err reaches descriptor 2, not cargo test's capture: {text:?}"
    );
}

#[test]
fn question_mark_works_in_the_closure() {
    let (child, stderr) = spawn_capturing(2, || -> Result<(), std::num::ParseIntError> {
        let n: u8 = "300".parse()?;
        assert_eq!(n, 0, "not reached");
        Ok(())
    });
    let pid = child.pid();
    assert_eq!(expect_child_failed(child.join(), pid).code(), Some(1));
    assert!(stderr.text().contains("Error: ParseIntError"));
}

#[test]
fn successful_results_join_ok() {
    Process::spawn(|| {}).unwrap().join().unwrap();
    Process::spawn(|| Ok::<(), String>(()))
        .unwrap()
        .join()
        .unwrap();
    Process::spawn(|| ExitCode::SUCCESS)
        .unwrap()
        .join()
        .unwrap();
    Process::spawn(|| Ok::<_, String>(ExitCode::from(0)))
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn an_exit_code_is_the_childs_status() {
    for code in [7u8, 1, 2, 100, 255] {
        let status = Process::spawn(move || ExitCode::from(code))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(status.code(), Some(i32::from(code)));
    }
    let child = Process::spawn(|| ExitCode::from(7)).unwrap();
    let pid = child.pid();
    assert_eq!(expect_child_failed(child.join(), pid).code(), Some(7));
    // Nested: `Ok(code)` is the code.
    let child = Process::spawn(|| Ok::<_, String>(ExitCode::from(9))).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(9));
}

#[test]
fn what_a_child_prints_reaches_descriptor_1_from_any_of_its_threads() {
    let (child, stdout) = spawn_capturing(1, || {
        println!("from the child's thread");
        // The child's threads print too: the stdio locks are free in the child.
        std::thread::spawn(|| {
            let mut out = io::stdout().lock();
            writeln!(out, "from a thread the child started").unwrap();
        })
        .join()
        .unwrap();
        print!("unterminated, flushed at exit");
    });
    assert!(finish(child, "printing child").success());
    let text = stdout.text();
    assert!(
        text.contains("from the child's thread\n")
            && text.contains("from a thread the child started\n")
            && text.ends_with("unterminated, flushed at exit"),
        "all of it reaches descriptor 1, not cargo test's capture: {text:?}"
    );
}

/// Blocks (in a child) until `go` is set by the test.
fn wait_for_go(go: RawValue<u8>, code: u8) -> ExitCode {
    while go.get() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    ExitCode::from(code)
}

#[test]
fn try_wait_sees_a_running_child_as_none_then_its_status() {
    let go = RawValue::new(0u8).unwrap();
    let mut child = {
        let go = go.clone();
        Process::spawn(move || wait_for_go(go, 5)).unwrap()
    };
    assert!(child.try_wait().unwrap().is_none(), "it waits for `go`");
    assert!(child.try_wait().unwrap().is_none());
    go.set(1);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(status.code(), Some(5));
    // Reaped: every later answer is the status already seen.
    assert_eq!(child.try_wait().unwrap(), Some(status));
    assert_eq!(child.wait_timeout(Duration::ZERO).unwrap(), Some(status));
    assert_eq!(child.wait().unwrap(), status);
}

#[test]
fn join_after_try_wait_returns_the_status_already_seen() {
    let mut child = Process::spawn(|| ExitCode::from(6)).unwrap();
    let pid = child.pid();
    let status = child.wait_timeout(HANG).unwrap().expect("exited");
    assert_eq!(status.code(), Some(6));
    assert_eq!(expect_child_failed(child.join(), pid), status);

    let mut child = Process::spawn(|| {}).unwrap();
    assert!(child.wait_timeout(HANG).unwrap().expect("exited").success());
    child.join().unwrap();
}

#[test]
fn wait_timeout_returns_none_on_timeout_then_the_status() {
    let go = RawValue::new(0u8).unwrap();
    let mut child = {
        let go = go.clone();
        Process::spawn(move || wait_for_go(go, 0)).unwrap()
    };
    // It cannot exit before `go` is set, so every one of these times out.
    for ms in [0, 1, 20] {
        assert_eq!(child.wait_timeout(Duration::from_millis(ms)).unwrap(), None);
    }
    go.set(1);
    let status = child.wait_timeout(HANG).unwrap().expect("exited");
    assert!(status.success());
}

#[test]
fn wait_timeout_sees_a_killed_child() {
    let mut child = Process::spawn(|| loop {
        std::thread::park();
    })
    .unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(5)).unwrap(), None);
    child.kill().unwrap();
    let status = child.wait_timeout(HANG).unwrap().expect("killed");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let pid = child.pid();
    assert_eq!(expect_child_failed(child.join(), pid), status);
}

#[test]
fn kill_after_reap_is_a_noop() {
    let mut child = Process::spawn(|| ExitCode::from(4)).unwrap();
    let status = child.wait_timeout(HANG).unwrap().expect("exited");
    child.kill().unwrap();
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), status);
    assert_eq!(status.code(), Some(4), "not killed: it exited on its own");
}

/// A process with exactly `pid`, forked raw, that waits for a signal; `None` if the
/// pid could not be had (`ns_last_pid` not writable: not root, or another process
/// took the pid first every time).
fn decoy_with_pid(pid: libc::pid_t) -> Option<libc::pid_t> {
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).ok()?;
        // SAFETY: the child only calls pause, which is async-signal-safe, until a
        // signal ends it; it runs no code of the test harness.
        let decoy = unsafe { libc::fork() };
        if decoy == 0 {
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
        assert!(decoy > 0, "fork");
        if decoy == pid {
            return Some(decoy);
        }
        end_decoy(decoy);
    }
    None
}

/// Ends a decoy with SIGTERM; returns how it ended (SIGKILL if something else killed it
/// first).
fn end_decoy(decoy: libc::pid_t) -> ExitStatus {
    // SAFETY: `decoy` is our unreaped child.
    unsafe { libc::kill(decoy, libc::SIGTERM) };
    let mut raw = 0;
    // SAFETY: `raw` is a valid out-pointer; `decoy` is our child.
    assert_eq!(unsafe { libc::waitpid(decoy, &mut raw, 0) }, decoy);
    ExitStatus::from_raw(raw)
}

/// The pid reused by another process, in the two ways it can happen: after `try_wait`
/// reaped the child, and after other code reaped it behind the `Process`'s back (here a
/// raw `waitpid`). `kill` must signal neither decoy.
#[test]
fn kill_never_signals_a_process_that_reused_the_pid() {
    for reaped_behind_our_back in [false, true] {
        let mut child = Process::spawn(|| {}).unwrap();
        let pid = child.pid() as libc::pid_t;
        if reaped_behind_our_back {
            let mut raw = 0;
            // SAFETY: `raw` is a valid out-pointer; `pid` is our child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut raw, 0) }, pid);
        } else {
            child.wait_timeout(HANG).unwrap().expect("exited");
        }
        let Some(decoy) = decoy_with_pid(pid) else {
            eprintln!("skipped: cannot make a process reuse pid {pid} (needs root)");
            return;
        };
        let killed = child.kill();
        let decoy_status = end_decoy(decoy);
        assert_eq!(
            decoy_status.signal(),
            Some(libc::SIGTERM),
            "the decoy with the reused pid {pid} ended by our SIGTERM, not by kill() \
             (reaped behind our back: {reaped_behind_our_back})"
        );
        killed.unwrap();
    }
}

/// Issue 9 item 6: thread A holds Rust's stdout (or stderr) lock and waits for a
/// `Value` that thread B holds while B calls `spawn`. Run in a child of its own.
fn stdio_deadlock_scenario(hold_stderr: bool) -> Result<(), String> {
    let v = Value::new(0i64).map_err(|e| e.to_string())?;
    let guard = v.lock().map_err(|_| "lock: owner died")?;
    let (held_tx, held_rx) = mpsc::channel();
    let a = {
        let v = v.clone();
        std::thread::spawn(move || {
            let (out, err) = (io::stdout(), io::stderr());
            let _held: Box<dyn Write> = if hold_stderr {
                Box::new(err.lock())
            } else {
                Box::new(out.lock())
            };
            held_tx.send(()).unwrap();
            v.get() // waits for B's guard
        })
    };
    held_rx.recv().map_err(|e| e.to_string())?;
    let child = Process::spawn(|| ExitCode::from(9)).map_err(|e| e.to_string())?;
    drop(guard);
    a.join().map_err(|_| "thread A panicked")?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.code() != Some(9) {
        return Err(format!("the inner child ended with {status}"));
    }
    Ok(())
}

/// Runs `f` in a child of its own and fails if it fails or hangs: for tests that hold
/// Rust's stdio locks (which would slow other tests' `spawn`s in this process) or that
/// could deadlock.
#[track_caller]
fn isolated<R: Termination>(what: &str, f: impl FnOnce() -> R + Send + 'static) {
    let status = finish(Process::spawn(f).unwrap(), what);
    assert!(status.success(), "{what}: {status} (its message is above)");
}

#[test]
fn spawn_does_not_deadlock_with_a_thread_holding_stdout() {
    isolated("stdout scenario", || stdio_deadlock_scenario(false));
}

#[test]
fn spawn_does_not_deadlock_with_a_thread_holding_stderr() {
    isolated("stderr scenario", || stdio_deadlock_scenario(true));
}

/// A thread that keeps taking Rust's stderr lock (as a thread that logs would), so it
/// is often held at the instant of a fork; every child's `Err` must still be printed.
#[test]
fn errors_are_printed_while_another_thread_keeps_taking_stderr() {
    isolated("logger", errors_while_logging);
}

fn errors_while_logging() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let logger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let guard = io::stderr().lock();
                std::hint::black_box(&guard);
                drop(guard);
                std::thread::yield_now();
            }
        })
    };
    for i in 0..10u32 {
        let (child, stderr) = spawn_capturing(2, move || Err::<(), _>(Refused { code: i }));
        let pid = child.pid();
        let result = child.join();
        assert_eq!(expect_child_failed(result, pid).code(), Some(1));
        let text = stderr.text();
        assert!(
            text.contains(&format!("Error: Refused {{ code: {i} }}")),
            "child {i}: {text:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    logger.join().unwrap();
}

/// When the stderr lock is held for good (past `spawn`'s wait), the child cannot print
/// its `Err` through std; it says so on descriptor 2 and still exits 1. A child whose
/// result prints nothing is not affected.
#[test]
fn an_err_is_reported_even_when_another_thread_keeps_stderr_locked() {
    isolated("stderr held", err_with_stderr_held);
}

fn err_with_stderr_held() {
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = io::stderr().lock();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    locked_rx.recv().unwrap();

    let (failing, failing_err) = spawn_capturing(2, || Err::<(), _>(Refused { code: 5 }));
    let (fine, _) = spawn_capturing(2, || Ok::<(), Refused>(()));
    let failing_pid = failing.pid();
    let failing_status = finish(failing, "failing child");
    let fine_status = finish(fine, "fine child");
    release_tx.send(()).unwrap();
    holder.join().unwrap();

    assert_eq!(failing_status.code(), Some(1));
    let text = failing_err.text();
    assert!(
        text.contains(&format!(
            "child process {failing_pid} could not print its closure's result"
        )),
        "{text:?}"
    );
    assert!(fine_status.success(), "{fine_status}");
}

/// The calling thread holds Rust's stdout lock across `spawn` (as `main` doing
/// `run(&mut io::stdout().lock())` would): `spawn` does not wait for it for good, and
/// the child's thread, a copy of the caller's, may still print.
#[test]
fn a_caller_holding_stdout_can_spawn_a_child_that_prints() {
    isolated("caller holds stdout", || {
        let out = io::stdout().lock();
        let (child, stdout) = spawn_capturing(1, || println!("printed under the copied lock"));
        let status = finish(child, "printing child");
        drop(out);
        assert!(status.success(), "{status}");
        let text = stdout.text();
        assert!(text.contains("printed under the copied lock\n"), "{text:?}");
    });
}
