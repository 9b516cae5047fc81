//! UI tests: what a user sees when the derive or a bound rejects their code.
//!
//! Each `tests/ui/*.rs` file shows one behaviour and ends in `fn main() {}`; the
//! `.stderr` next to it is the reviewed message. Regenerate with
//! `TRYBUILD=overwrite cargo test --test compiletest`, then read every diff.
//!
//! `tests/ui-build/` holds the cases that only a full build reports: the layout checks
//! of a generic struct run when an instantiation is monomorphized, which `cargo check`
//! (trybuild's mode for a suite of `compile_fail` tests only) never does. The `pass`
//! test in that suite makes trybuild build instead of check.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

#[test]
fn ui_build() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui-build/pass_*.rs");
    t.compile_fail("tests/ui-build/fail_*.rs");
}
