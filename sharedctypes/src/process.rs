//! [`Process`]: run a closure in a forked child (Python's `Process(target=f)`).
//!
//! # Forking a process that has threads
//!
//! `fork` copies only the calling thread. Any lock another thread held at that instant
//! stays held, forever, in the child. What this crate does about it:
//!
//! - glibc's `malloc` is fork-safe (glibc takes its arena locks around `fork`), so the
//!   child may allocate;
//! - Rust's `stdout` and `stderr` locks are taken by [`Process::spawn`] around the
//!   `fork`, so the child never inherits them held by another thread, and may print;
//! - a panic in the child is reported by a panic hook that writes straight to file
//!   descriptor 2 (no lock, and past `cargo test`'s output capture, which would
//!   otherwise swallow it), then the child exits with status 101;
//! - the crate's own state (heap handles, locks, the thread-identity cache) needs no
//!   lock in the child, and the [default heap](crate::default_heap) is created before
//!   the fork (so it is never half-initialised by another thread in the child, and
//!   objects a child allocates with plain `new` are shared with the parent).
//!
//! What remains your responsibility in the closure: do not take a lock of your own that
//! another thread of the parent may have held at the fork (a `std::sync::Mutex` shared
//! with other threads, for example), and do not start threads that rely on such state.
//! Process-shared [`Lock`](crate::Lock)s are fine: they are designed to be taken in
//! children.
//!
//! The child never returns into the parent's code: after the closure it leaves with
//! `_exit`, so no destructors of the parent's state and no `atexit` handlers run twice.
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
//! assert!(child.join()?.success());
//! assert_eq!(drops.get(), 0); // the child dropped none of the parent's state
//! drop(parent_state);
//! assert_eq!(drops.get(), 1);
//! # Ok::<(), sharedctypes::Error>(())
//! ```

use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

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
/// let status = child.join()?;
/// assert!(status.success());
/// assert_eq!(n.get(), 49);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// Dropping a `Process` without [`join`](Process::join) neither waits for nor kills
/// the child (as with `std::process::Child`); it stays a zombie until this process
/// exits.
#[derive(Debug)]
pub struct Process {
    pid: libc::pid_t,
}

/// Set in a child forked by [`Process::spawn`]: panics there are reported by our hook.
static IN_CHILD: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Status a child exits with when its closure panics (Rust's own panic status).
///
/// ```
/// use sharedctypes::{Process, PANIC_EXIT_CODE};
///
/// let child = Process::spawn(|| panic!("this example's child panics on purpose"))?;
/// assert_eq!(child.join()?.code(), Some(PANIC_EXIT_CODE));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub const PANIC_EXIT_CODE: i32 = 101;

impl Process {
    /// Forks; the child runs `f` and exits with status 0, or 101 if `f` panics (the
    /// panic message goes to standard error). Handles captured by `f` keep working in
    /// the child. See the [module docs](self) on forking with threads.
    ///
    /// ```
    /// let child = sharedctypes::Process::spawn(|| panic!("boom"))?;
    /// assert_eq!(child.join()?.code(), Some(101));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn spawn<F: FnOnce() + Send + 'static>(f: F) -> Result<Process> {
        HOOK.call_once(install_child_panic_hook);
        // Make sure the default heap is not half-created by another thread at the fork
        // (the child would wait forever for that thread's `OnceLock` initialisation); as
        // a bonus, objects a child creates with plain `new` are visible to the parent.
        let _ = crate::heap::try_default_heap();
        // Hold the standard streams' locks across the fork: the child then inherits them
        // held by itself (its copy of this thread), never by a thread that does not exist
        // there. Flush first so buffered parent output is not printed twice.
        let mut out = io::stdout().lock();
        let err = io::stderr().lock();
        let _ = out.flush();
        // SAFETY: fork has no memory-safety preconditions. In the child, the crate's own
        // code takes no lock another thread could have held (the stdio locks are held by
        // this thread across the fork); `f` is the caller's, with the cautions of the
        // module docs; the child leaves with `_exit` and never returns into our caller.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop((out, err));
            run_child(f)
        }
        drop((out, err));
        if pid < 0 {
            return Err(Error::last_os("fork"));
        }
        Ok(Process { pid })
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

    /// Waits for the child to exit and returns how it ended (an exit code, or the
    /// signal that killed it).
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let child = sharedctypes::Process::spawn(|| std::thread::sleep(std::time::Duration::from_secs(60)))?;
    /// child.kill()?;
    /// assert_eq!(child.join()?.signal(), Some(libc::SIGKILL));
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn join(self) -> Result<ExitStatus> {
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid out-pointer; `self.pid` is our unreaped child.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc == self.pid {
                return Ok(ExitStatus::from_raw(status));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(Error::os("waitpid", err));
            }
        }
    }

    /// Kills the child with `SIGKILL` (it cannot clean up; locks it holds are
    /// recovered by their next acquirer). Call [`join`](Process::join) afterwards to
    /// reap it.
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
    /// assert_eq!(child.join()?.signal(), Some(libc::SIGKILL));
    /// assert!(lock.acquire().is_err()); // `Err(OwnerDied)`: recovered from the killed holder
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub fn kill(&self) -> Result<()> {
        // SAFETY: kill has no memory-safety preconditions. The pid is our child, which is
        // not reaped before `join` (unless SIGCHLD is ignored or another thread reaps
        // every child with waitpid(-1): then the pid could name another process).
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } < 0 {
            return Err(Error::last_os("kill"));
        }
        Ok(())
    }
}

/// The child's side of `spawn`: never returns.
fn run_child<F: FnOnce()>(f: F) -> ! {
    IN_CHILD.store(true, Ordering::Relaxed);
    let code = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => 0,
        Err(payload) => {
            // Dropping the payload could itself panic; the process ends anyway.
            std::mem::forget(payload);
            PANIC_EXIT_CODE
        }
    };
    let _ = io::stdout().flush();
    // SAFETY: `_exit` ends the process without running atexit handlers or destructors,
    // which belong to the parent's state.
    unsafe { libc::_exit(code) }
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
