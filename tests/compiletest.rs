//! UI tests: what a user sees when the derive or a bound rejects their code.
//!
//! Each `tests/ui/*.rs` file shows one behaviour and ends in `fn main() {}`; the
//! `.stderr` next to it is the reviewed message. Regenerate with
//! `TRYBUILD=overwrite cargo test --test compiletest`, then read every diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
