//! Fuzz target: see `harness/heap_alloc.rs`, shared with the stable regression tests
//! (`tests/fuzz_regressions.rs`), which replay the corpus and every finding.

#![no_main]

#[path = "../harness/heap_alloc.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
