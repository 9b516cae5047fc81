//! [`Process`]: run a closure in a forked child (Python's `Process(target=f)`).
//!
//! [`Process::spawn`] forks; the child runs the closure and exits with what its result
//! says, as `main` does: `()` is status 0, `Err(e)` prints `Error: {e:?}` on standard
//! error and is status 1, an [`ExitCode`] is its own number, a panic is status
//! [`PANIC_EXIT_CODE`] (101). [`Process::join`] is thread-like (`Err` unless the child
//! exited 0); [`Process::wait`], [`try_wait`](Process::try_wait) and
//! [`wait_timeout`](Process::wait_timeout) are process-like (any exit is an answer).
//!
//! # Forking a process that has threads
//!
//! `fork` copies only the calling thread. Any lock another thread held at that instant
//! stays held, forever, in the child. What this crate does about it:
//!
//! - glibc's `malloc` is fork-safe (glibc takes its arena locks around `fork`), so the
//!   child may allocate;
//! - Rust's `stdout` and `stderr` locks: `spawn` forks from a helper thread that first
//!   takes both (and flushes `stdout`, so buffered output is not printed twice). The
//!   child's copy of that thread owns them and releases them before running the
//!   closure, so `print!`/`eprintln!` work in the child, from any of its threads;
//! - so the closure runs on the helper thread's copy, not on a copy of the thread that
//!   called `spawn` (as `std::thread::spawn` runs a closure on a fresh thread): the
//!   caller's thread-locals are not seen, and `cargo test`'s output capture does not
//!   apply, so what the child prints, an `Err` included, reaches the real descriptors
//!   1 and 2. The stack is a POSIX thread's default size (`ulimit -s`, usually 8 MiB,
//!   as a main thread's);
//! - `spawn` never blocks on those locks, though. If the helper has not got them within
//!   a quarter of a second — another thread holds one, perhaps while it waits for the
//!   thread calling `spawn` (holding `io::stdout().lock()` while calling a
//!   [`Value`](crate::Value)'s `get`, say), or the calling thread holds one itself —
//!   `spawn` forks from the calling thread without them, and the closure runs on that
//!   copy (later `spawn`s fork at once while the helper still waits). In such a child,
//!   a stream whose lock the calling thread held stays usable by the closure's thread
//!   (not by threads it starts); a stream whose lock **another thread held is locked
//!   for good: `print!`/`println!` (or `eprint!`/`eprintln!`) on it block forever**, and
//!   so does `std::process::exit`, which flushes `stdout`. The crate's own child-side
//!   code stays safe: it reports panics on descriptor 2 directly, and bounds what it
//!   does through the stream locks — reporting the result and flushing `stdout` at the
//!   end — to one second unless it saw the locks free; if an `Err` could not be
//!   printed, the child writes a note on descriptor 2 instead and still exits 1. And if
//!   the calling thread runs a test, `cargo test`'s capture of that thread's output
//!   applies in the child: what it prints through std, an `Err` included, is not
//!   shown. To print from children without these risks, do not hold Rust's standard
//!   stream locks across `spawn`, nor while waiting for another thread;
//! - a panic in the child is reported by a panic hook that writes straight to file
//!   descriptor 2 (no lock), then the child exits with status 101;
//! - the crate's own state (heap handles, locks, the thread-identity cache) needs no
//!   lock in the child, and the [default heap](crate::default_heap) is created before
//!   the fork (so it is never half-initialised by another thread in the child, and
//!   objects a child allocates with plain `new` are shared with the parent).
//!
//! What remains your responsibility in the closure: do not take a lock of your own that
//! another thread of the parent may have held at the fork (a `std::sync::Mutex` shared
//! with other threads, for example), and do not start threads that rely on such state.
//! One such lock is std's: **the environment lock**. A child that reads the environment
//! (`std::env::var`, `std::env::vars`, `Command::spawn`, …) while a thread of the parent
//! was inside `std::env::set_var` or `remove_var` at the fork blocks forever (with a
//! thread changing a variable in a loop, 3 to 9 children of 10 hung in our tries): std
//! offers no way to hold that lock across the fork. Do not change the environment
//! while other threads may fork; read what a child needs from it before `spawn`.
//! Process-shared [`Lock`](crate::Lock)s are fine: they are designed to be taken in
//! children.
//!
//! The child never returns into the parent's code: after the closure it leaves with
//! `_exit`, so no destructors of the parent's state and no `atexit` handlers run twice.
//! (`std::process::exit` in the closure does run the parent's `atexit` handlers; return
//! an [`ExitCode`] instead.)
//!
//! ```
//! use sharedctypes::{Process, RawValue};
//!
//! struct Counted(RawValue<u32>);
//! impl Drop for Counted {
//!     fn drop(&mut self) {
//!         self.0.update(|n| n + 1);
//!     }
//! }
//!
//! let drops = RawValue::new(0u32)?;
//! let parent_state = Counted(drops.clone());
//! let child = Process::spawn(|| {})?;
//! child.join()?;
//! assert_eq!(drops.get(), 0); // the child dropped none of the parent's state
//! drop(parent_state);
//! assert_eq!(drops.get(), 1);
//! # Ok::<(), sharedctypes::Error>(())
//! ```
//!
//! # Reaping, and signalling the right process
//!
//! A `Process` is the only one that reaps its child. It holds a *pidfd* (Linux 5.3 or
//! later) that names exactly that child, so [`kill`](Process::kill) can never signal
//! another process that reused the pid; once the child has been reaped, `kill` does
//! nothing. Without a pidfd (an older kernel, or a sandbox that refuses `pidfd_open`)
//! it falls back to the pid, which is still exact as long as nothing else reaps the
//! child; [`wait_timeout`](Process::wait_timeout) then polls, from every millisecond up
//! to every 50. A program that ignores `SIGCHLD` or calls `waitpid(-1, …)` elsewhere
//! takes its children away from `Process`: waiting then fails with `ECHILD`.

use std::fmt;
use std::io::{self, Write};
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::{ExitCode, ExitStatus, Termination};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A forked child process running a closure.
///
/// ```
/// use sharedctypes::{Process, RawValue};
///
/// let n = RawValue::new(7i32)?;
/// let child = {
///     let n = n.clone();
///     Process::spawn(move || { n.update(|x| x * x); })?
/// };
/// child.join()?; // `Err(ChildFailed)` had the child panicked
/// assert_eq!(n.get(), 49);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// Dropping a `Process` without waiting neither waits for nor kills the child (as with
/// `std::process::Child`); it stays a zombie until this process exits. Dropping closes
/// the pidfd.
///
/// # The closure's handles
///
/// The closure and everything it captured belong to the child: the parent's copy is
/// kept, untouched, until the child has been reaped ([`join`](Process::join),
/// [`wait`](Process::wait), or [`try_wait`](Process::try_wait) /
/// [`wait_timeout`](Process::wait_timeout) returning its status), and dropped then,
/// in the parent. So a shared object moved into the closure stays alive, counted
/// once, for as long as the child can use it, even if the parent drops every other
/// handle to it; and its memory is given back once the child is done and reaped (see
/// [Memory that is given back](crate#memory-that-is-given-back)). Inside the child, the
/// inherited copies are used as they are and not counted again (a clone made there
/// is). The whole closure is kept, not only the handles in it, because a handle may be
/// reached through anything it captured (an `Arc`, a `Vec`): so a file or a pipe's
/// write end it captured also stays open in the parent until the child is reaped — a
/// parent that reads such a pipe to its end before joining must drop its copy some
/// other way (pass the child a descriptor number instead, or close it in the parent
/// before spawning). A `Process` dropped while its child still runs keeps the
/// parent's copy forever (the objects it captured are never freed, and anything else
/// it captured is never dropped in the parent): wait for your children. (Dropped after
/// the child exited — or after other code reaped it — it drops the copy then.)
///
/// ```
/// use sharedctypes::{Heap, Process, RawArray};
///
/// let heap = Heap::new(1 << 20)?;
/// let data = RawArray::<u8>::zeroed_in(&heap, 100_000)?;
/// let child = Process::spawn(move || data[0].set(1))?; // `data` is the child's now
/// assert!(heap.used() > 100_000); // kept for the child
/// child.join()?;
/// assert_eq!(heap.used(), 0); // given back once the child is reaped
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub struct Process {
    pid: libc::pid_t,
    target: Target,
    /// How the child ended, once reaped.
    status: Option<ExitStatus>,
    /// The parent's copy of the closure, dropped once the child is reaped (see "The
    /// closure's handles"). In a mutex only to keep `Process` `Sync`: nothing locks it
    /// but `&mut self` methods.
    kept: Mutex<Option<ChildMain>>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("target", &self.target)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.status.is_none() && !self.has_ended() {
            // The child may still use what the closure captured: keep it counted.
            let kept = self.kept.get_mut().unwrap_or_else(PoisonError::into_inner);
            mem::forget(kept.take());
        }
    }
}

impl Process {
    /// Whether the child can no longer run: it has exited (a zombie; left unreaped) or
    /// was reaped by other code (`waitpid` on its pid). Never reaps.
    fn has_ended(&self) -> bool {
        let peeked = match &self.target {
            Target::Pidfd(fd) => peek(libc::P_PIDFD, fd.as_raw_fd() as libc::id_t),
            Target::Pid => peek(libc::P_PID, self.pid as libc::id_t),
            Target::Gone => return true,
        };
        match peeked {
            Ok(exited) => exited,
            // ECHILD: not (or no longer) a child of ours, so reaped already. Anything
            // else: unknown, so assume it still runs.
            Err(e) => e.raw_os_error() == Some(libc::ECHILD),
        }
    }
}

/// How [`Process`] reaches its child.
#[derive(Debug)]
enum Target {
    /// A pidfd: names this child and no other process, even after its pid is reused.
    Pidfd(OwnedFd),
    /// No pidfd (`pidfd_open` unavailable): the pid, ours until we reap it.
    Pid,
    /// Reaped by someone else before we could open a pidfd (`SIGCHLD` ignored).
    Gone,
}

/// Status a child exits with when its closure panics (Rust's own panic status).
///
/// ```
/// use sharedctypes::{Error, Process, PANIC_EXIT_CODE};
///
/// let child = Process::spawn(|| panic!("this example's child panics on purpose"))?;
/// match child.join() {
///     Err(Error::ChildFailed { status, .. }) => assert_eq!(status.code(), Some(PANIC_EXIT_CODE)),
///     other => panic!("expected ChildFailed, got {other:?}"),
/// }
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub const PANIC_EXIT_CODE: i32 = 101;

/// How long `spawn` waits for Rust's stdout and stderr locks before forking without
/// them (see the module docs).
const STDIO_LOCK_WAIT: Duration = Duration::from_millis(250);
/// In a child forked without the stdio locks: how long reporting the closure's result
/// and flushing `stdout` may take, unless the stdio locks were seen free, before the
/// child takes them for held by a thread that does not exist there, and exits.
const STDIO_PROBE_WAIT: Duration = Duration::from_secs(1);

/// Set in a child forked by [`Process::spawn`]: panics there are reported by our hook.
static IN_CHILD: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();
/// Helpers that `spawn` stopped waiting for and that still wait for the stdio locks.
/// While there is one, the locks are taken by someone who does not let go: `spawn`
/// forks without them at once rather than wait (and start another helper) again.
static ABANDONED_HELPERS: AtomicUsize = AtomicUsize::new(0);

impl Process {
    /// Forks; the child runs `f` and exits with what `f`'s result says, as `main` would:
    /// `()` and `Ok(())` are status 0; `Err(e)` prints `Error: {e:?}` on standard error
    /// (descriptor 2, even under `cargo test`'s output capture) and is status 1; an
    /// [`ExitCode`] is its number; a panic is [`PANIC_EXIT_CODE`] (the panic message
    /// goes to standard error). The child never returns into the caller's code.
    /// Handles captured by `f` keep working in the child. `spawn` never blocks on a
    /// lock another thread holds; see the [module docs](self) on forking with threads,
    /// and on what a child may print when Rust's stdio locks were busy.
    ///
    /// `?` works in the closure:
    ///
    /// ```
    /// use sharedctypes::{Error, Process};
    ///
    /// let child = Process::spawn(|| -> Result<(), std::num::ParseIntError> {
    ///     let n: u32 = "forty-two".parse()?; // fails: the child prints `Error: ParseIntError { .. }`
    ///     assert_eq!(n, 42);
    ///     Ok(())
    /// })?;
    /// match child.join() {
    ///     Err(Error::ChildFailed { status, .. }) => assert_eq!(status.code(), Some(1)),
    ///     other => panic!("expected ChildFailed, got {other:?}"),
    /// }
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    ///
    /// An exit code, a panic, or `std::process::exit`:
    ///
    /// ```
    /// use std::process::ExitCode;
    /// use sharedctypes::Process;
    ///
    /// assert_eq!(Process::spawn(|| ExitCode::from(7))?.wait()?.code(), Some(7));
    /// assert_eq!(Process::spawn(|| panic!("on purpose"))?.wait()?.code(), Some(101));
    /// assert_eq!(Process::spawn(|| std::process::exit(3))?.wait()?.code(), Some(3));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if `fork` fails (too many processes, or out of memory).
    pub fn spawn<F, R>(f: F) -> Result<Process>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Termination,
    {
        HOOK.call_once(install_child_panic_hook);
        // Make sure the default heap is not half-created by another thread at the fork
        // (the child would wait forever for that thread's `OnceLock` initialisation); as
        // a bonus, objects a child creates with plain `new` are visible to the parent.
        let _ = crate::heap::try_default_heap();
        let (pid, kept) = fork_child(Box::new(move |stdio| run_child(f, stdio)))?;
        let process = Process::adopt(pid);
        *process.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(kept);
        Ok(process)
    }

    /// The child's process id.
    ///
    /// ```
    /// use sharedctypes::{Process, RawValue};
    ///
    /// let seen = RawValue::new(0u32)?;
    /// let child = {
    ///     let seen = seen.clone();
    ///     Process::spawn(move || seen.set(std::process::id()))?
    /// };
    /// let pid = child.pid();
    /// child.join()?;
    /// assert_eq!(seen.get(), pid); // what the child saw as its own id
    /// assert_ne!(pid, std::process::id());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Waits for the child to exit, like a thread's `join`: `Ok(())` if it exited with
    /// status 0, otherwise [`Error::ChildFailed`] with its pid and how it ended (it
    /// panicked, returned `Err`, returned a non-zero [`ExitCode`], or was killed).
    ///
    /// ```
    /// use sharedctypes::{Error, Process};
    ///
    /// Process::spawn(|| {})?.join()?;
    ///
    /// let child = Process::spawn(|| -> Result<(), String> { Err("no input".into()) })?;
    /// let pid = child.pid();
    /// match child.join() {
    ///     Err(Error::ChildFailed { pid: p, status }) => {
    ///         assert_eq!(p, pid);
    ///         assert_eq!(status.code(), Some(1));
    ///     }
    ///     other => panic!("expected ChildFailed, got {other:?}"),
    /// }
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ChildFailed`] as above; [`Error::Os`] if waiting fails (`ECHILD`: the
    /// child was reaped by other code, see the [module docs](self#reaping-and-signalling-the-right-process)).
    pub fn join(mut self) -> Result<()> {
        let status = self.reap_blocking()?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::ChildFailed {
                pid: self.pid(),
                status,
            })
        }
    }

    /// Waits for the child to exit and returns how it ended (an exit code, or the
    /// signal that killed it), like `std::process::Child::wait`: any ending is `Ok`.
    /// If [`try_wait`](Process::try_wait) or [`wait_timeout`](Process::wait_timeout)
    /// already saw it end, returns that status.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let child = sharedctypes::Process::spawn(|| std::thread::sleep(std::time::Duration::from_secs(60)))?;
    /// child.kill()?;
    /// assert_eq!(child.wait()?.signal(), Some(libc::SIGKILL));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if waiting fails (`ECHILD`: the child was reaped by other code).
    pub fn wait(mut self) -> Result<ExitStatus> {
        self.reap_blocking()
    }

    /// Returns the child's status if it has exited (reaping it), `None` if it is still
    /// running; never blocks. Once it returned `Some`, it, [`wait`](Process::wait) and
    /// [`join`](Process::join) return that same status again.
    ///
    /// ```
    /// use sharedctypes::{Process, RawValue};
    ///
    /// let go = RawValue::new(0u8)?;
    /// let mut child = {
    ///     let go = go.clone();
    ///     Process::spawn(move || while go.get() == 0 { std::thread::yield_now() })?
    /// };
    /// assert!(child.try_wait()?.is_none()); // it waits for `go`
    /// go.set(1);
    /// while child.try_wait()?.is_none() {
    ///     std::thread::yield_now();
    /// }
    /// assert!(child.try_wait()?.unwrap().success());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if waiting fails (`ECHILD`: the child was reaped by other code).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.reap(false)
    }

    /// Waits at most `timeout` for the child to exit: its status (reaping it), or
    /// `None` if it is still running — so a parent can notice a dead producer instead
    /// of waiting forever, or give up on a stuck child and [`kill`](Process::kill) it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedctypes::Process;
    ///
    /// let mut child = Process::spawn(|| std::thread::sleep(Duration::from_secs(60)))?;
    /// assert!(child.wait_timeout(Duration::from_millis(10))?.is_none());
    /// child.kill()?;
    /// assert!(child.wait_timeout(Duration::from_secs(60))?.is_some());
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if waiting fails (`ECHILD`: the child was reaped by other code).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now().checked_add(timeout);
        let mut nap = Duration::from_millis(1);
        loop {
            if let Some(status) = self.reap(false)? {
                return Ok(Some(status));
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok(None);
            }
            match &self.target {
                Target::Pidfd(fd) => poll_readable(fd, left)?,
                Target::Pid | Target::Gone => {
                    std::thread::sleep(nap.min(left));
                    nap = (nap * 2).min(Duration::from_millis(50));
                }
            }
        }
    }

    /// Kills the child with `SIGKILL` (it cannot clean up; locks it holds are
    /// recovered by their next acquirer). Wait for it afterwards to reap it. Never
    /// signals another process: the child is named by its pidfd (see the [module
    /// docs](self#reaping-and-signalling-the-right-process) for kernels without
    /// one), and once it has been
    /// reaped (by [`try_wait`](Process::try_wait) or
    /// [`wait_timeout`](Process::wait_timeout)) this does nothing and returns `Ok`;
    /// so does killing a child that already exited.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use sharedctypes::{Lock, Process, RawValue};
    ///
    /// let lock = Lock::new()?;
    /// let ready = RawValue::new(0u8)?;
    /// let child = {
    ///     let (lock, ready) = (lock.clone(), ready.clone());
    ///     Process::spawn(move || {
    ///         let _guard = lock.acquire().unwrap();
    ///         ready.set(1);
    ///         loop {
    ///             std::thread::park();
    ///         }
    ///     })?
    /// };
    /// while ready.get() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// child.kill()?;
    /// assert_eq!(child.wait()?.signal(), Some(libc::SIGKILL));
    /// assert!(lock.acquire().is_err()); // `Err(OwnerDied)`: recovered from the killed holder
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the kernel refuses the signal (it should not, for our child).
    pub fn kill(&self) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let rc = match &self.target {
            // SAFETY: pidfd_send_signal reads only its arguments; a null siginfo asks
            // for the default one; `fd` is an open pidfd we own.
            Target::Pidfd(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    ptr::null::<libc::siginfo_t>(),
                    0u32,
                )
            },
            // SAFETY: kill has no memory-safety preconditions. The pid is our child,
            // not reaped yet (`status` is `None`; nothing else reaps it, see the
            // module docs), so it names no other process.
            Target::Pid => i64::from(unsafe { libc::kill(self.pid, libc::SIGKILL) }),
            Target::Gone => return Ok(()),
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            // ESRCH: it is already gone; nothing left to kill.
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::os("kill", err));
            }
        }
        Ok(())
    }

    /// Wraps a freshly forked child: opens its pidfd at once. Only a `Process` reaps its
    /// child, so the pid still names it — unless `SIGCHLD` is ignored and the kernel
    /// reaped it already, which the checks below notice.
    fn adopt(pid: libc::pid_t) -> Process {
        // SAFETY: pidfd_open reads only its arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
        let target = if fd < 0 {
            match io::Error::last_os_error().raw_os_error() {
                // The kernel reaped it already (SIGCHLD is ignored): another process
                // may have its pid by now.
                Some(libc::ESRCH) => Target::Gone,
                // ENOSYS (before Linux 5.3), EPERM (a seccomp sandbox), EMFILE…
                _ => Target::Pid,
            }
        } else {
            // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
            if is_our_child(&fd) {
                Target::Pidfd(fd)
            } else {
                // Reaped by the kernel and the pid reused before pidfd_open: the pidfd
                // names a stranger. Keep nothing that could signal it.
                Target::Gone
            }
        };
        Process {
            pid,
            target,
            status: None,
            kept: Mutex::new(None),
        }
    }

    /// Waits until the child has exited, and reaps it.
    fn reap_blocking(&mut self) -> Result<ExitStatus> {
        loop {
            if let Some(status) = self.reap(true)? {
                return Ok(status);
            }
        }
    }

    /// Reaps the child if it has exited (waiting for that if `block`). Remembers the
    /// status, so later calls return it without asking the kernel again.
    fn reap(&mut self, block: bool) -> Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let nohang = if block { 0 } else { libc::WNOHANG };
        loop {
            let reaped = match &self.target {
                Target::Pidfd(fd) => waitid_pidfd(fd, libc::WEXITED | nohang),
                Target::Pid | Target::Gone => waitpid(self.pid, nohang),
            };
            match reaped {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    // The child is gone: the parent's copy of the closure goes too.
                    drop(
                        self.kept
                            .get_mut()
                            .unwrap_or_else(PoisonError::into_inner)
                            .take(),
                    );
                    return Ok(Some(status));
                }
                Ok(None) => return Ok(None),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(Error::os("waiting for the child", err)),
            }
        }
    }
}

/// Whether `pidfd` names a child of this process (alive or not yet reaped):
/// `waitid` on anything else fails with `ECHILD`. Kernels before 5.4 cannot wait on
/// a pidfd (`EINVAL`); there the pidfd is trusted, as nothing has reaped our child.
fn is_our_child(pidfd: &OwnedFd) -> bool {
    match peek(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t) {
        Ok(_) => true,
        Err(e) => e.raw_os_error() != Some(libc::ECHILD),
    }
}

/// `waitid(idtype, id)` without reaping and without waiting: whether the child has
/// exited (it stays a zombie), or why the kernel refused (`ECHILD`: no such child of
/// ours, for instance because it was reaped already).
fn peek(idtype: libc::idtype_t, id: libc::id_t) -> io::Result<bool> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a valid out-pointer for one siginfo_t; WNOWAIT leaves the child
    // as it is (not reaped); WNOHANG returns at once.
    let rc = unsafe {
        libc::waitid(
            idtype,
            id,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, then filled in by a successful waitid.
    let info = unsafe { info.assume_init() };
    // SAFETY: for SIGCHLD the pid is a valid member of the union; 0 (zeroed) when the
    // child still runs (WNOHANG).
    Ok(unsafe { info.si_pid() } != 0)
}

/// `waitid(P_PIDFD)`: reaps exactly the process the pidfd names. `Ok(None)` when
/// `WNOHANG` is in `options` and it has not exited.
fn waitid_pidfd(pidfd: &OwnedFd, options: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a valid out-pointer for one siginfo_t.
    let rc = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            info.as_mut_ptr(),
            options,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, then filled in by a successful waitid.
    let info = unsafe { info.assume_init() };
    // SAFETY: for SIGCHLD (what waitid reports) the pid field is a valid member of the
    // siginfo union; a zeroed one (WNOHANG, still running) reads as 0.
    let pid = unsafe { info.si_pid() };
    // SAFETY: as for the pid: the status is the other SIGCHLD member.
    let status = unsafe { info.si_status() };
    if pid == 0 {
        return Ok(None);
    }
    // Back to the `waitpid` encoding that `ExitStatus::from_raw` takes.
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => return Ok(None), // stopped or continued: not asked for (no WSTOPPED)
    };
    Ok(Some(ExitStatus::from_raw(raw)))
}

/// `waitpid` on one child. `Ok(None)` when `WNOHANG` is in `options` and it has not
/// exited.
fn waitpid(pid: libc::pid_t, options: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut raw = 0;
    // SAFETY: `raw` is a valid out-pointer.
    let rc = unsafe { libc::waitpid(pid, &mut raw, options) };
    match rc {
        0 => Ok(None),
        rc if rc == pid => Ok(Some(ExitStatus::from_raw(raw))),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Waits at most `timeout` for `pidfd` to become readable (its process exited).
/// Returns early (`Ok`) on a signal; the caller checks again.
fn poll_readable(pidfd: &OwnedFd, timeout: Duration) -> Result<()> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up, so the last wait before the deadline is not a busy 0 ms one.
    let ms = timeout
        .as_nanos()
        .div_ceil(1_000_000)
        .min(libc::c_int::MAX as u128) as libc::c_int;
    // SAFETY: `pfd` is one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(Error::os("poll", err));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Forking
// ---------------------------------------------------------------------------------

/// What the child runs: the closure, its report, and the exit status to leave with.
type ChildMain = Box<dyn FnOnce(ChildStdio) -> i32 + Send>;

/// The state of Rust's stdout and stderr locks in a freshly forked child.
enum ChildStdio {
    /// This thread took both before forking, so the child's copy of it owns them.
    Held(io::StdoutLock<'static>, io::StderrLock<'static>),
    /// Forked without them: either may be held by a thread that does not exist here.
    Unknown,
}

/// Forks a child that runs `main`, and returns its pid. Never blocks on a lock that
/// another thread may hold: see the module docs.
fn fork_child(main: ChildMain) -> Result<(libc::pid_t, ChildMain)> {
    if ABANDONED_HELPERS.load(Ordering::Acquire) > 0 {
        return fork_bare(main);
    }
    let handoff = Arc::new(Handoff {
        state: Mutex::new(Stage::Ready(main)),
        changed: Condvar::new(),
    });
    let helper = {
        let handoff = Arc::clone(&handoff);
        start_thread(Box::new(move || fork_holding_stdio(&handoff)))
    };
    match helper {
        Ok(thread) => detach(thread),
        Err(_) => {
            // No thread for the helper: fork from here, without the locks.
            return match handoff.take(Stage::Abandoned) {
                Stage::Ready(main) => fork_bare(main),
                _ => Err(Error::os(
                    "fork",
                    io::Error::other("helper thread state lost"),
                )),
            };
        }
    }
    let deadline = Instant::now() + STDIO_LOCK_WAIT;
    let mut state = handoff.lock();
    loop {
        match mem::replace(&mut *state, Stage::Abandoned) {
            Stage::Forked(result) => return result.map_err(|e| Error::os("fork", e)),
            Stage::Ready(main) => {
                let now = Instant::now();
                if now >= deadline {
                    // The helper waits for a lock someone keeps (perhaps a thread that
                    // waits for ours): take the closure back and fork without the locks.
                    // Counted while the state lock is held, so the helper, which
                    // uncounts itself when it finds `Abandoned`, always comes after.
                    ABANDONED_HELPERS.fetch_add(1, Ordering::AcqRel);
                    drop(state);
                    return fork_bare(main);
                }
                *state = Stage::Ready(main);
                state = handoff
                    .changed
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            Stage::Abandoned => {
                return Err(Error::os(
                    "fork",
                    io::Error::other("helper thread state lost"),
                ))
            }
        }
    }
}

/// Between `fork_child` and its helper thread.
struct Handoff {
    state: Mutex<Stage>,
    changed: Condvar,
}

enum Stage {
    /// Not forked yet.
    Ready(ChildMain),
    /// The helper forked: the child's pid and the parent's copy of the closure, or why
    /// `fork` failed.
    Forked(io::Result<(libc::pid_t, ChildMain)>),
    /// `fork_child` stopped waiting and took the closure back.
    Abandoned,
}

impl Handoff {
    fn lock(&self) -> MutexGuard<'_, Stage> {
        // Nothing panics while holding it; if it did, the stage is still meaningful.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, replacement: Stage) -> Stage {
        mem::replace(&mut *self.lock(), replacement)
    }
}

/// The helper thread: takes Rust's stdout and stderr locks (in that order, as a thread
/// that prints to stderr while holding stdout does), then forks, unless `fork_child`
/// gave up waiting meanwhile.
fn fork_holding_stdio(handoff: &Handoff) {
    let mut out = io::stdout().lock();
    if matches!(*handoff.lock(), Stage::Abandoned) {
        // Do not also take stderr: a child being forked without the locks now would
        // find it held.
        drop(out);
        ABANDONED_HELPERS.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let err = io::stderr().lock();
    let mut state = handoff.lock();
    match mem::replace(&mut *state, Stage::Abandoned) {
        Stage::Ready(main) => {
            // Buffered output would otherwise be printed by both processes.
            let _ = out.flush();
            // SAFETY: fork has no memory-safety preconditions. The child runs only
            // `main` on this thread's copy and leaves with `_exit` (see
            // `exit_child`), never returning here; it takes no lock another thread
            // could have held: it owns the stdio locks (taken above by this thread)
            // and never touches `handoff` (whose lock this thread holds).
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                exit_child(main, ChildStdio::Held(out, err));
            }
            *state = Stage::Forked(if pid < 0 {
                Err(io::Error::last_os_error())
            } else {
                // The parent's copy goes back to `spawn`, to be kept until the child
                // is reaped.
                Ok((pid, main))
            });
            handoff.changed.notify_all();
        }
        Stage::Abandoned => {
            ABANDONED_HELPERS.fetch_sub(1, Ordering::AcqRel);
        }
        // Only this thread forks: cannot happen; leave it as it was.
        forked @ Stage::Forked(_) => *state = forked,
    }
}

/// Forks from the calling thread without taking the stdio locks; the child runs `main`
/// with them in an unknown state. A lock the calling thread holds stays usable by the
/// child's (only) thread, its copy; one another thread holds is held for good there.
fn fork_bare(main: ChildMain) -> Result<(libc::pid_t, ChildMain)> {
    // SAFETY: fork has no memory-safety preconditions. The child runs only `main` and
    // leaves with `_exit` (see `exit_child`), never returning here; in the child the
    // crate's code takes no lock another thread could have held (`ChildStdio::Unknown`
    // makes it probe the stdio locks from a thread of its own, and bound the waits on
    // them with a watchdog).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        exit_child(main, ChildStdio::Unknown);
    }
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    Ok((pid, main))
}

// ---------------------------------------------------------------------------------
// The child's side
// ---------------------------------------------------------------------------------

/// Runs the child and ends the process.
fn exit_child(main: ChildMain, stdio: ChildStdio) -> ! {
    let code = main(stdio);
    // SAFETY: `_exit` ends the process without running atexit handlers or destructors,
    // which belong to the parent's state.
    unsafe { libc::_exit(code) }
}

/// The child's side of `spawn`: runs `f`, reports its result, flushes `stdout`, and
/// returns the exit status.
fn run_child<F: FnOnce() -> R, R: Termination>(f: F, stdio: ChildStdio) -> i32 {
    IN_CHILD.store(true, Ordering::Relaxed);
    // The parent's abandoned helpers do not exist here.
    ABANDONED_HELPERS.store(0, Ordering::Relaxed);
    let probe = match stdio {
        ChildStdio::Held(out, err) => {
            // Owned by this thread (the helper's copy): let them go, so that threads
            // the closure starts may print too.
            drop((out, err));
            None
        }
        ChildStdio::Unknown => Some(StdioProbe::start()),
    };
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let watchdog = probe.map(Watchdog::arm);
    let code = match result {
        Ok(result) => match panic::catch_unwind(AssertUnwindSafe(|| result.report())) {
            Ok(code) => exit_code_number(code),
            Err(payload) => {
                mem::forget(payload);
                PANIC_EXIT_CODE
            }
        },
        Err(payload) => {
            // Dropping the payload could itself panic; the process ends anyway.
            mem::forget(payload);
            PANIC_EXIT_CODE
        }
    };
    if let Some(watchdog) = &watchdog {
        watchdog.reported(code);
    }
    let _ = io::stdout().flush();
    code
}

/// The number an [`ExitCode`] stands for. `ExitCode` is opaque on stable Rust, but on
/// Unix it is one byte and `From<u8>` makes every value, so comparing finds it.
fn exit_code_number(code: ExitCode) -> i32 {
    (0..=u8::MAX)
        .find(|&n| ExitCode::from(n) == code)
        .map_or(1, i32::from)
}

/// In a child forked without the stdio locks: a thread that takes and releases the
/// stderr lock, then the stdout lock, and says when it got both. A lock held by a
/// thread that does not exist in the child never comes free, and the probe stops
/// there. (A lock the child's own thread holds, copied from the thread that called
/// `spawn`, stops it too, although that thread may use it.)
struct StdioProbe {
    /// Set when the probe got both locks.
    free: Arc<(Mutex<bool>, Condvar)>,
}

impl StdioProbe {
    fn start() -> StdioProbe {
        let free = Arc::new((Mutex::new(false), Condvar::new()));
        let shared = Arc::clone(&free);
        let probe = start_thread(Box::new(move || {
            drop(io::stderr().lock());
            drop(io::stdout().lock());
            let (flag, changed) = &*shared;
            *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
            changed.notify_all();
        }));
        if let Ok(thread) = probe {
            detach(thread);
        }
        StdioProbe { free }
    }

    /// Whether the probe got both locks within `timeout`.
    fn wait_free(&self, timeout: Duration) -> bool {
        let (flag, changed) = &*self.free;
        let flag = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (flag, _) = changed
            .wait_timeout_while(flag, timeout, |free| !*free)
            .unwrap_or_else(PoisonError::into_inner);
        *flag
    }
}

/// In a child forked without the stdio locks: a thread that ends the child if
/// reporting the closure's result or flushing `stdout` blocks on a stdio lock held by
/// a thread that does not exist here. Once the probe got both locks, nothing can block
/// on them for good and the watchdog leaves; otherwise it waits [`STDIO_PROBE_WAIT`]
/// and then ends the process: with status 1 and a note on descriptor 2 if the report
/// (which prints an `Err`) has not returned, else with the reported status.
struct Watchdog {
    /// [`REPORTING`](Watchdog::REPORTING) until the report returned, then the status.
    status: Arc<AtomicI32>,
}

impl Watchdog {
    const REPORTING: i32 = -1;

    fn arm(probe: StdioProbe) -> Watchdog {
        let status = Arc::new(AtomicI32::new(Self::REPORTING));
        let seen = Arc::clone(&status);
        let watchdog = start_thread(Box::new(move || {
            if probe.wait_free(STDIO_PROBE_WAIT) {
                return;
            }
            let status = seen.load(Ordering::Acquire);
            if status == Self::REPORTING {
                // SAFETY: getpid has no preconditions.
                let pid = unsafe { libc::getpid() };
                let note = format!(
                    "sharedctypes: child process {pid} could not print its closure's result: \
                     Rust's stderr lock was held by another thread of the parent when \
                     Process::spawn forked (see the docs of sharedctypes::process); exiting \
                     with status 1\n"
                );
                write_stderr(note.as_bytes());
            }
            let code = if status == Self::REPORTING { 1 } else { status };
            // SAFETY: as in `exit_child`: the child's state is the parent's copy.
            unsafe { libc::_exit(code) }
        }));
        if let Ok(thread) = watchdog {
            detach(thread);
        }
        Watchdog { status }
    }

    /// The report returned `code`; what remains is flushing `stdout`.
    fn reported(&self, code: i32) {
        self.status.store(code, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------
// Threads, panics, raw output
// ---------------------------------------------------------------------------------

type Job = Box<dyn FnOnce() + Send>;

/// Starts `job` on a new POSIX thread, made with `pthread_create` rather than
/// `std::thread`: `cargo test` gives every `std` thread a test starts the test's
/// output capture (through spawn hooks), which in a child would swallow what it prints.
fn start_thread(job: Job) -> io::Result<libc::pthread_t> {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `arg` is the `Box<Job>` that `start_thread` leaked for this thread
        // alone; it is reclaimed exactly once, here.
        let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
        // Unwinding out of an `extern "C"` function would abort the process.
        let _ = panic::catch_unwind(AssertUnwindSafe(job));
        ptr::null_mut()
    }
    let arg = Box::into_raw(Box::new(job));
    let mut thread = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `thread` is a valid out-pointer; null attributes are the defaults;
    // `trampoline` has the signature pthread_create expects and takes `arg`.
    let rc = unsafe {
        libc::pthread_create(
            thread.as_mut_ptr(),
            ptr::null(),
            trampoline,
            arg.cast::<libc::c_void>(),
        )
    };
    if rc != 0 {
        // SAFETY: no thread was started, so `arg` is still ours alone.
        drop(unsafe { Box::from_raw(arg) });
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: pthread_create succeeded, so it wrote the handle.
    Ok(unsafe { thread.assume_init() })
}

/// Lets `thread` end on its own (its resources are freed when it does).
fn detach(thread: libc::pthread_t) {
    // SAFETY: `thread` was started by `start_thread` and neither joined nor detached.
    unsafe { libc::pthread_detach(thread) };
}

/// Wraps the current panic hook: in a spawned child, panics are written straight to
/// fd 2; elsewhere the previous hook runs unchanged.
fn install_child_panic_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if IN_CHILD.load(Ordering::Relaxed) {
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            let msg = format!("sharedctypes: child process {pid} {info}\n");
            write_stderr(msg.as_bytes());
        } else {
            previous(info);
        }
    }));
}

/// Writes to file descriptor 2 without any lock.
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for `bytes.len()` bytes.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths taken without a pidfd (kernels before 5.3, sandboxes): waiting by pid,
    /// `wait_timeout` by polling, `kill` by pid until the child is reaped.
    #[test]
    fn without_a_pidfd_waiting_and_killing_work_by_pid() {
        let mut child = Process::spawn(|| loop {
            std::thread::park();
        })
        .unwrap();
        child.target = Target::Pid;
        assert_eq!(child.try_wait().unwrap(), None);
        assert_eq!(child.wait_timeout(Duration::from_millis(5)).unwrap(), None);
        child.kill().unwrap();
        let status = child
            .wait_timeout(Duration::from_secs(60))
            .unwrap()
            .expect("killed");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        child.kill().unwrap(); // reaped: a no-op, whatever has the pid now
        assert_eq!(child.wait().unwrap(), status);

        let mut child = Process::spawn(|| ExitCode::from(3)).unwrap();
        child.target = Target::Pid;
        let pid = child.pid();
        match child.join() {
            Err(Error::ChildFailed { pid: p, status }) => {
                assert_eq!((p, status.code()), (pid, Some(3)));
            }
            other => panic!("expected ChildFailed, got {other:?}"),
        }
    }

    #[test]
    fn exit_codes_map_to_their_numbers() {
        for n in 0..=u8::MAX {
            assert_eq!(exit_code_number(ExitCode::from(n)), i32::from(n));
        }
        assert_eq!(exit_code_number(ExitCode::SUCCESS), 0);
        assert_eq!(exit_code_number(ExitCode::FAILURE), 1);
    }
}
