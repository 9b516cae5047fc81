//! Entry points for the fuzz targets in `fuzz/` and for the regression tests that
//! replay what they found. **Not API**: hidden from the docs, exempt from semver, and
//! changed whenever the internals they reach change.
//!
//! Everything a heap reads from shared memory is reachable through the public API
//! (`Heap::open`, `Heap::lookup`) except the pieces below, which are `pub(crate)`: the
//! decoder of the layouts stored in a heap's directory, and the parser of
//! [`HEAP_SIZE_ENV`](crate::HEAP_SIZE_ENV). These wrappers add nothing to them.

use std::fmt;

use crate::layout::{codec, OwnedLayout};
use crate::TypeLayout;

/// A layout as a heap's directory stores it, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedLayout(OwnedLayout);

impl DecodedLayout {
    /// Decodes a directory entry's layout bytes, as `lookup` does: `None` where
    /// `lookup` reports [`Error::InvalidHeap`](crate::Error::InvalidHeap).
    pub fn decode(bytes: &[u8]) -> Option<DecodedLayout> {
        codec::decode(bytes).map(DecodedLayout)
    }

    /// `layout` as `publish` would store it; `None` where `publish` refuses it.
    pub fn of(layout: &TypeLayout) -> Option<DecodedLayout> {
        OwnedLayout::try_from(layout).ok().map(DecodedLayout)
    }

    /// The bytes `publish` would store; `None` where it refuses the layout.
    pub fn encode(&self) -> Option<Vec<u8>> {
        codec::encode(&self.0).ok()
    }

    /// The name `lookup`'s messages use: `f64`, `[f64; 3]`, `Point`.
    pub fn short_name(&self) -> String {
        self.0.short_name()
    }

    /// What `lookup` reports when `self` is in the heap and `here` is asked for.
    pub fn differences(&self, here: &DecodedLayout) -> Vec<String> {
        self.0.differences(&here.0)
    }
}

impl fmt::Display for DecodedLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Parses a [`HEAP_SIZE_ENV`](crate::HEAP_SIZE_ENV) value as the default heap does.
pub fn parse_heap_size(s: &str) -> Option<usize> {
    crate::heap::parse_size(s)
}
