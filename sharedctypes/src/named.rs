//! Named heaps: POSIX shared-memory objects that unrelated processes open by name.

use std::ffi::CString;

/// What a heap reached by name remembers about its name.
pub(crate) struct NamedState {
    name: CString,
}

impl NamedState {
    pub(crate) fn name(&self) -> &str {
        self.name.to_str().unwrap_or("<non-UTF-8 name>")
    }
}
