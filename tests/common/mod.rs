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
