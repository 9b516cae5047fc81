//! The fuzz targets' checks on stable, without a fuzzer: every input in the committed
//! corpus (`fuzz/corpus/<target>/`) and every input with which a fuzzer found a bug
//! (`tests/fuzz_regressions/`, one test each) goes through the same harness the target
//! runs (`fuzz/harness/<target>.rs`), which panics when a property breaks.
//!
//! The fuzzers themselves run on nightly only: see the README, "Fuzzing".

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/harness/heap_alloc.rs"]
mod heap_alloc;
#[path = "../fuzz/harness/heap_size.rs"]
mod heap_size;
#[path = "../fuzz/harness/layout_decode.rs"]
mod layout_decode;
#[path = "../fuzz/harness/open_lookup.rs"]
mod open_lookup;

/// The inputs in `dir`, sorted by name.
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs every input of `target`'s corpus through `run`, naming the one that fails;
/// returns each input's file name and what `run` returned for it.
fn replay_corpus<R>(target: &str, run: fn(&[u8]) -> R) -> Vec<(String, R)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let all = inputs(&dir);
    assert!(!all.is_empty(), "{}: no corpus", dir.display());
    all.into_iter()
        .map(|(path, bytes)| {
            let r = std::panic::catch_unwind(|| run(&bytes))
                .unwrap_or_else(|_| panic!("{} fails its fuzz target's checks", path.display()));
            let name = path.file_name().expect("a file").to_string_lossy();
            (name.into_owned(), r)
        })
        .collect()
}

/// An input a fuzzer found a bug with.
fn finding(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn open_lookup_corpus() {
    // Every seed but the empty heap reaches its objects. After a change of the heap's
    // format they no longer open: make them afresh (README, "Fuzzing") rather than
    // test nothing. The harness also checks that no object handed out aliases the
    // header, a directory entry or a lock (issue 9, item 4).
    for (name, reached) in replay_corpus("open_lookup", open_lookup::run) {
        if name.starts_with("seed-") && !name.ends_with("-empty") {
            assert!(
                reached.found > 0,
                "{name} reaches no object: run make_seeds"
            );
        }
    }
}

#[test]
fn heap_alloc_corpus() {
    // Every seed opens and runs its script; all but the empty heap's find what they
    // look up, and all but the one whose allocator lock this thread holds allocate.
    for (name, reached) in replay_corpus("heap_alloc", heap_alloc::run) {
        if name.starts_with("seed-") {
            assert!(
                reached.opened && reached.ops > 0,
                "{name} does not run its script ({reached:?}): run make_seeds"
            );
            assert!(
                name.ends_with("-empty") || reached.found > 0,
                "{name} finds nothing ({reached:?}): run make_seeds"
            );
            assert!(
                reached.allocated > 0,
                "{name} allocates nothing ({reached:?}): run make_seeds"
            );
        }
    }
}

#[test]
fn layout_decode_corpus() {
    replay_corpus("layout_decode", layout_decode::run);
}

#[test]
fn heap_size_corpus() {
    replay_corpus("heap_size", heap_size::run);
}

/// An `RLock` that this thread holds (by its id and start time, as another process of
/// the same user can write them into the heap) with its recursion count at `u32::MAX`:
/// `try_acquire` panicked ("RLock recursion depth overflow"); now it is
/// `Err(WouldBlock)`, as std's `ReentrantLock::try_lock` gives `None`. Made by
/// `fuzz/seeds/make_seeds.rs`.
#[test]
fn rlock_count_at_max() {
    let reached = open_lookup::run(&finding("rlock-count-at-max"));
    assert!(
        reached.found >= 3,
        "the input no longer reaches its locks ({reached:?})"
    );
}

/// Issue 9, item 4: a directory entry whose array lies over the entry itself. `open`
/// and `lookup` accepted it, and writing the array then destroyed the directory; now
/// `open` refuses the heap. The segment it was made from (the `raw-bytes` seed) opens
/// and reaches its array. Made by `fuzz/seeds/make_seeds.rs`.
#[test]
fn object_over_its_entry() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/open_lookup");
    let (_, base) = inputs(&corpus)
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().ends_with("-raw-bytes"))
        .expect("the raw-bytes seed");
    let reached = open_lookup::run(&base);
    assert!(
        reached.opened && reached.found >= 1,
        "the seed the finding was made from no longer reaches its array ({reached:?}): \
         run make_seeds"
    );
    let reached = open_lookup::run(&finding("object-over-its-entry"));
    assert!(
        !reached.opened,
        "a heap with an object over its entry opens"
    );
}

/// The directory's table claiming 2^6 slots in a block made for 2^4, so that it reached
/// past its block into fresh memory: `open` and `lookup` accepted it (it lay inside the
/// mapping), and the first allocation after it (the harness's `copy_in` of the value)
/// wrote its block header into the table's slots, after which the directory was
/// `InvalidHeap`. Now a table (and an entry) must lie inside the internal block that
/// holds it, and `open` refuses the heap. The segment it was made from (the
/// `raw-value` seed) opens and reaches its value. Found by `open_lookup`; made by
/// `fuzz/seeds/make_seeds.rs`.
#[test]
fn table_past_its_block() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/open_lookup");
    let (_, base) = inputs(&corpus)
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().ends_with("-raw-value"))
        .expect("the raw-value seed");
    let reached = open_lookup::run(&base);
    assert!(
        reached.opened && reached.found >= 1,
        "the seed the finding was made from no longer reaches its value ({reached:?}): \
         run make_seeds"
    );
    let reached = open_lookup::run(&finding("table-past-its-block"));
    assert!(
        !reached.opened,
        "a heap whose table reaches past its block opens"
    );
}

/// The header's frontier hint (`cursor`) moved onto the directory table's slots, which
/// read as the zero header of fresh memory: `open` accepted it (the hint lay inside the
/// mapping), and the first allocation was claimed in the middle of the table, after
/// which the directory was `InvalidHeap`. Now `open` walks the blocks up to the hint
/// and refuses a hint that is no block boundary before the frontier. Found by
/// `open_lookup`; made by `fuzz/seeds/make_seeds.rs` from the `raw-value` seed, which
/// `table_past_its_block` checks still reaches its value.
#[test]
fn cursor_inside_a_block() {
    let reached = open_lookup::run(&finding("cursor-inside-a-block"));
    assert!(
        !reached.opened,
        "a heap whose frontier hint lies inside a block opens"
    );
}

/// A `BoundedSemaphore` whose stored value (7959150) lies above its limit, as damaged
/// memory may hold: `try_acquire` takes a unit and `release` then refuses with
/// `SemaphoreOverflow`, changing nothing (which the harness first took for a bug: the
/// library refuses bad memory with a clear error). Found by `open_lookup`.
#[test]
fn semaphore_above_limit() {
    let reached = open_lookup::run(&finding("semaphore-above-limit"));
    assert!(
        reached.found >= 1,
        "the input no longer reaches its semaphore ({reached:?})"
    );
}

/// A size class's free list whose first block is not a free block of the class (its
/// tag damaged) and links to itself: an allocation of that class popped the block,
/// found it foreign, went on with the rest of the list (the same block) and never
/// returned. Now a foreign block ends the list for that allocation, which takes fresh
/// memory instead. Made by `fuzz/seeds/make_seeds.rs`.
///
/// The harness runs on a thread of its own, so that a hang fails the test with a
/// message (after a bound far above the milliseconds the input takes) instead of
/// stalling the suite.
#[test]
fn free_list_cycle() {
    let input = finding("free-list-cycle");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(heap_alloc::run(&input));
    });
    let reached = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|e| {
            panic!("the harness did not return ({e:?}: a timeout is the allocation looping)")
        });
    assert!(
        reached.opened && reached.allocated == 1,
        "the input no longer reaches its allocation ({reached:?})"
    );
}
