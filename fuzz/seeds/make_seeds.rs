//! Writes the seed inputs of the four fuzz targets into `corpus/<target>/seed-*`:
//! real segments made by creating heaps and publishing objects (copied from
//! `/dev/shm`), real encoded layouts, and sizes in every accepted form; and the
//! hand-made inputs of `tests/fuzz_regressions/` (which depend on the heap's format).
//!
//! Run from `fuzz/` after a change to the heap or directory format (on stable):
//! `cargo run --features seeds --bin make_seeds`, then `cargo +nightly fuzz cmin`
//! each target.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sharedctypes::__fuzz::DecodedLayout;
use sharedctypes::{
    synchronized_with, Array, Barrier, BoundedSemaphore, Condition, Event, Heap, Lock, Process,
    RLock, RawArray, RawValue, Result, Semaphore, SharedStruct, SharedType, TypeLayout, Value,
};

// The same types as in `fuzz_targets/open_lookup.rs` and `layout_decode.rs`.
#[derive(Clone, Copy, Debug, Default, SharedStruct)]
#[repr(C)]
struct Inner {
    id: u16,
    flags: [u8; 2],
}

#[derive(Clone, Copy, Debug, Default, SharedStruct)]
#[repr(C)]
struct Record {
    x: f64,
    y: f32,
    count: u32,
    inner: Inner,
    tags: [[i8; 3]; 2],
}

/// A later version of `Record`: one field changed type, one renamed, one added.
#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct RecordV2 {
    x: f32,
    y: f32,
    total: u32,
    inner: Inner,
    tags: [[i8; 3]; 2],
    extra: u64,
}

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Pair(u8, i64);

/// The flags byte of heap seeds (`harness/segment.rs`): fix `total_len`, adopt our PID
/// and time namespaces, substitute `TID!`/`ST!`, pad to 1 MiB (the seeds leave out the
/// zeros their segment ends with).
const FLAGS: u8 = 0b1_0111;

/// The heap seeds' segments are made in heaps of this many bytes (header included):
/// what the padding makes of them again.
const SEGMENT_LEN: usize = 1 << 20;

/// Where the allocator's shared state is (`heap/alloc.rs`, `AllocState` at
/// `ALLOC_STATE_AT`): the lock's word, `dirty`, `runs`, then the classes' heads.
const ALLOC_LOCK_AT: usize = 128;
const DIRTY_AT: usize = 144;
const RUNS_AT: usize = 160 - 8;
const CLASSES_AT: usize = 160;
/// Stacks per class (`alloc::SHARDS`): `SHARDS` rows of `CLASSES` heads.
const SHARDS: usize = 8;
/// `heap::HEADER_SIZE`.
const HEADER_BYTES: usize = 4096;
const CLASSES: usize = 43;

#[path = "../harness/heap_alloc.rs"]
#[allow(dead_code)]
mod heap_alloc;
use heap_alloc::Op;

const RECORD: Record = Record {
    x: 1.5,
    y: -2.0,
    count: 7,
    inner: Inner {
        id: 0xabcd,
        flags: [1, 2],
    },
    tags: [[1, -1, 2], [3, -3, 4]],
};

fn tid() -> u32 {
    // SAFETY: `gettid` has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// The bits of a lock word that name its owner (`sync/raw_lock.rs`): the TID (bits
/// 0..=29), "start unknown" (bit 39) and the start time (bits 40..=63).
const OWNER_MASK: u64 = 0xffff_ff80_3fff_ffff;

/// As `open_lookup::me`: how a lock word records this thread as its owner.
fn owner() -> u64 {
    let stat = fs::read_to_string("/proc/thread-self/stat").expect("/proc is mounted");
    let (_, rest) = stat.rsplit_once(')').expect("a stat line");
    let start: u64 = rest
        .split_ascii_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .expect("field 22 is the start time");
    u64::from(tid()) | (start & 0xff_ffff).max(1) << 40
}

/// Makes every lock word this thread owns name `TID!` and `ST!` instead (keeping the
/// generation, in byte 4); returns how many.
fn placeholder_owners(bytes: &mut [u8]) -> usize {
    let me = owner();
    let mut count = 0;
    for word in bytes.chunks_exact_mut(8) {
        let w = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
        if w & OWNER_MASK == me {
            word[..4].copy_from_slice(b"TID!");
            word[5..].copy_from_slice(b"ST!");
            count += 1;
        }
    }
    count
}

/// Where `pattern` first occurs in `bytes`, `?` matching any byte.
fn find(bytes: &[u8], pattern: &[u8]) -> Option<usize> {
    bytes
        .windows(pattern.len())
        .position(|w| w.iter().zip(pattern).all(|(&b, &p)| p == b'?' || b == p))
}

fn replace_all(bytes: &mut [u8], pattern: &[u8], with: &[u8]) -> usize {
    let (n, mut at, mut count) = (pattern.len(), 0, 0);
    while at + n <= bytes.len() {
        if &bytes[at..at + n] == pattern {
            bytes[at..at + n].copy_from_slice(with);
            at += n;
            count += 1;
        } else {
            at += 1;
        }
    }
    count
}

struct Seeds {
    dir: std::path::PathBuf,
    n: usize,
}

impl Seeds {
    fn new(target: &str) -> Seeds {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        Seeds { dir, n: 0 }
    }

    fn add(&mut self, what: &str, bytes: &[u8]) {
        let path = self.dir.join(format!("seed-{:02}-{what}", self.n));
        fs::write(&path, bytes).expect("write a seed");
        self.n += 1;
    }
}

/// Writes an input that found a bug to `tests/fuzz_regressions/`, where a test of
/// `tests/fuzz_regressions.rs` replays it.
fn finding(name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz_regressions");
    fs::create_dir_all(&dir).expect("create tests/fuzz_regressions");
    fs::write(dir.join(name), bytes).expect("write a finding");
}

/// Creates a named heap of `capacity` bytes, lets `fill` publish into it, and returns
/// the segment's bytes (with this thread's id and stamp made placeholders when
/// `placeholders`), behind the flags byte. The zeros the segment ends with are left
/// out: the flags pad them back.
fn segment(capacity: usize, placeholders: bool, fill: impl FnOnce(&Heap) -> Result<()>) -> Vec<u8> {
    let bytes = segment_bytes(capacity, placeholders, fill);
    let mut input = vec![FLAGS];
    input.extend_from_slice(&bytes);
    input
}

/// [`segment`] without the flags byte.
fn segment_bytes(
    capacity: usize,
    placeholders: bool,
    fill: impl FnOnce(&Heap) -> Result<()>,
) -> Vec<u8> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("/scfuzz-seed-{}-{n}", std::process::id());
    let heap = Heap::create(&name, capacity).expect("create a seed heap");
    fill(&heap).expect("fill a seed heap");
    let mut bytes = fs::read(format!("/dev/shm{name}")).expect("read the segment back");
    // Handles `fill` forgot (to keep objects live in the segment) keep the heap mapped,
    // so dropping ours does not remove the name.
    drop(heap);
    let _ = Heap::unlink(&name);
    assert!(bytes.len() <= SEGMENT_LEN, "the padding would cut it");

    // Keep what was written: the fuzzer need not mutate kilobytes of zeros (free blocks'
    // objects, fresh memory), which the padding gives back.
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes.truncate(end.next_multiple_of(16));
    if placeholders {
        assert!(placeholder_owners(&mut bytes) > 0);
        // The header's creator pid is this thread's id too: it becomes `TID!` as well.
        assert!(replace_all(&mut bytes, &tid().to_ne_bytes(), b"TID!") > 0);
    }
    bytes
}

fn open_lookup() {
    let mut seeds = Seeds::new("open_lookup");
    seeds.add("empty", &segment(1024, false, |_| Ok(())));
    let raw_value = segment(1024, false, |h| {
        h.publish("rv", &RawValue::new_in(h, 0xfeed_u32)?)
    });
    seeds.add("raw-value", &raw_value);
    // Found by `open_lookup`: the directory's table claiming more slots (2^6) than its
    // block holds (2^4), so that it reaches into fresh memory; the first allocation
    // there (`copy_in` of the value) wrote its block header into the table's slots.
    // (`TableHeader`: the tag, then `log2_slots`.)
    let mut past = raw_value.clone();
    let table = find(&past, b"SCDT").expect("a directory table");
    assert_eq!(past[table + 4], 4, "the smallest table");
    past[table + 4] = 6;
    finding("table-past-its-block", &past);

    // Found by `open_lookup`: the header's frontier hint (`cursor`, at 24) moved into the
    // directory's table, onto its first slots, which read as the zero header of fresh
    // memory: the first allocation (`copy_in` of the value) was claimed there and wrote
    // its block header into the table.
    let mut inside = raw_value.clone();
    let slots = (table - 1 + 64) as u64; // behind the flags byte; `TableHeader` is 64 bytes
    inside[1 + 24..1 + 32].copy_from_slice(&slots.to_ne_bytes());
    finding("cursor-inside-a-block", &inside);
    seeds.add(
        "raw-record",
        &segment(1024, false, |h| {
            h.publish("rrec", &RawValue::new_in(h, RECORD)?)
        }),
    );
    let raw_bytes = segment(1024, false, |h| {
        h.publish("ra", &RawArray::from_bytes_in(h, b"hello\0world")?)
    });
    seeds.add("raw-bytes", &raw_bytes);

    // Issue 9, item 4: the entry's object moved onto the entry itself, so writes to the
    // array would overwrite the directory (`open_lookup::run_checking_aliasing` notices).
    let mut aliased = raw_bytes.clone();
    let tag = find(&aliased, b"SCDE").expect("a directory entry"); // `EntryHeader::tag`
    let entry = tag as u64 - 1; // behind the flags byte
    let object = tag + 16; // `EntryHeader::object`
    aliased[object..object + 8].copy_from_slice(&entry.to_ne_bytes());
    finding("object-over-its-entry", &aliased);
    seeds.add(
        "raw-records",
        &segment(2048, false, |h| {
            h.publish("recs", &RawArray::from_slice_in(h, &[RECORD; 3])?)
        }),
    );
    seeds.add(
        "value",
        &segment(1024, false, |h| h.publish("v", &Value::new_in(h, -42i64)?)),
    );
    seeds.add(
        "value-lock",
        &segment(1024, false, |h| {
            h.publish(
                "vl",
                &synchronized_with(RawValue::new_in(h, 9u32)?, Lock::new_in(h)?),
            )
        }),
    );
    seeds.add(
        "value-record",
        &segment(1024, false, |h| {
            h.publish("rec", &Value::new_in(h, RECORD)?)
        }),
    );
    seeds.add(
        "array-lock",
        &segment(1024, false, |h| {
            h.publish(
                "a",
                &synchronized_with(RawArray::from_slice_in(h, &[1u16, 2, 3])?, Lock::new_in(h)?),
            )
        }),
    );
    seeds.add(
        "array-bytes",
        &segment(1024, false, |h| {
            h.publish("a8", &Array::from_bytes_in(h, b"abc")?)
        }),
    );
    seeds.add(
        "array-records",
        &segment(2048, false, |h| {
            h.publish(
                "arec",
                &synchronized_with(RawArray::from_slice_in(h, &[RECORD; 2])?, Lock::new_in(h)?),
            )
        }),
    );
    seeds.add(
        "lock",
        &segment(1024, false, |h| h.publish("lock", &Lock::new_in(h)?)),
    );
    seeds.add(
        "rlock",
        &segment(1024, false, |h| h.publish("rlock", &RLock::new_in(h)?)),
    );

    // Everything at once; two objects share one lock, as `with_lock` allows.
    seeds.add(
        "all",
        &segment(8192, false, |h| {
            let lock = Lock::new_in(h)?;
            h.publish("lock", &lock)?;
            h.publish("rlock", &RLock::new_in(h)?)?;
            h.publish("rv", &RawValue::new_in(h, 1u32)?)?;
            h.publish("ra", &RawArray::from_bytes_in(h, b"bytes")?)?;
            h.publish("v", &Value::new_in(h, 5i64)?)?;
            h.publish(
                "vl",
                &synchronized_with(RawValue::new_in(h, 6u32)?, lock.clone()),
            )?;
            h.publish(
                "a",
                &synchronized_with(RawArray::<u16>::zeroed_in(h, 4)?, lock.clone()),
            )?;
            h.publish("a8", &Array::from_bytes_in(h, b"xyz")?)?;
            h.publish("rec", &Value::new_in(h, RECORD)?)?;
            h.publish("rrec", &RawValue::new_in(h, RECORD)?)?;
            h.publish("recs", &RawArray::from_slice_in(h, &[RECORD; 2])?)?;
            h.publish(
                "arec",
                &synchronized_with(RawArray::from_slice_in(h, &[RECORD])?, lock),
            )
        }),
    );

    // Locks held by this thread (made placeholders: the fuzzer's own thread holds them).
    let held = segment(2048, true, |h| {
        let lock = Lock::new_in(h)?;
        let rlock = RLock::new_in(h)?;
        let value = Value::new_in(h, 3i64)?;
        std::mem::forget(lock.acquire());
        for _ in 0..3 {
            std::mem::forget(rlock.acquire());
        }
        std::mem::forget(value.lock());
        h.publish("lock", &lock)?;
        h.publish("rlock", &rlock)?;
        h.publish("v", &value)
    });
    seeds.add("held", &held);

    // Found with this harness: an RLock that this thread holds `u32::MAX` deep (its
    // count set by hand), which made `try_acquire` panic.
    // (`RawLock`: the word, then the count.)
    let mut at_max = held.clone();
    let rlock_at = find(&at_max, b"TID!?ST!\x03\0\0\0").expect("the RLock, 3 deep");
    at_max[rlock_at + 8..rlock_at + 12].copy_from_slice(&u32::MAX.to_ne_bytes());
    finding("rlock-count-at-max", &at_max);

    // Locks whose holder died holding them.
    seeds.add(
        "dead-owner",
        &segment(1024, false, |h| {
            let lock = Lock::new_in(h)?;
            let value = Value::new_in(h, 4i64)?;
            let (l, v) = (lock.clone(), value.clone());
            Process::spawn(move || {
                std::mem::forget(l.acquire());
                std::mem::forget(v.lock());
            })?
            .join()?;
            h.publish("lock", &lock)?;
            h.publish("v", &value)
        }),
    );

    // Coordination objects, one each, then all at once in a state other than new.
    seeds.add(
        "event",
        &segment(1024, false, |h| h.publish("ev", &Event::new_in(h)?)),
    );
    seeds.add(
        "semaphore",
        &segment(1024, false, |h| h.publish("sem", &Semaphore::new_in(h, 2)?)),
    );
    seeds.add(
        "bounded-semaphore",
        &segment(1024, false, |h| {
            h.publish("bsem", &BoundedSemaphore::new_in(h, 1)?)
        }),
    );

    // Found by `open_lookup`: a BoundedSemaphore whose value (7959150) lies above its
    // limit, as damaged memory may hold. (`RawSemaphore`: the value in the word's low
    // half, then the limit.)
    const LIMIT: u32 = 0x51ab;
    let mut above = segment(1024, false, |h| {
        h.publish("bsem", &BoundedSemaphore::new_in(h, LIMIT)?)
    });
    let mut state = u64::from(LIMIT).to_ne_bytes().to_vec();
    state.extend_from_slice(&LIMIT.to_ne_bytes());
    let at = find(&above, &state).expect("the semaphore's state");
    above[at..at + 8].copy_from_slice(&7_959_150u64.to_ne_bytes());
    finding("semaphore-above-limit", &above);
    seeds.add(
        "barrier",
        &segment(1024, false, |h| h.publish("bar", &Barrier::new_in(h, 3)?)),
    );
    seeds.add(
        "condition",
        &segment(4096, false, |h| h.publish("cond", &Condition::new_in(h)?)),
    );
    seeds.add(
        "coordination",
        &segment(8192, false, |h| {
            let event = Event::new_in(h)?;
            event.set();
            h.publish("ev", &event)?;
            let sem = Semaphore::new_in(h, 1)?;
            assert!(sem.try_acquire());
            h.publish("sem", &sem)?;
            let bsem = BoundedSemaphore::new_in(h, 2)?;
            assert!(bsem.try_acquire());
            h.publish("bsem", &bsem)?;
            let barrier = Barrier::new_in(h, 2)?;
            barrier.abort();
            h.publish("bar", &barrier)?;
            h.publish("cond", &Condition::new_in(h)?)?;
            h.publish("lock", &Lock::new_in(h)?)
        }),
    );

    // Keys unpublished: tombstones in the directory's table.
    seeds.add(
        "unpublished",
        &segment(2048, false, |h| {
            for i in 0..6u32 {
                h.publish(&format!("k{i}"), &RawValue::new_in(h, i)?)?;
            }
            h.unpublish("k1")?;
            h.unpublish("k4")?;
            h.publish("k1", &Value::new_in(h, 1.5f64)?)
        }),
    );

    // A long directory: more keys than the target tries.
    seeds.add(
        "many",
        &segment(8192, false, |h| {
            for i in 0..24u32 {
                h.publish(&format!("k{i}"), &RawValue::new_in(h, i)?)?;
            }
            Ok(())
        }),
    );
}

/// The script every `heap_alloc` seed runs (the fuzzer varies it): allocations in
/// several classes, medium and large blocks, objects of two blocks, publish, lookup of
/// every kind, unpublish, drops, clones, walks.
fn alloc_script() -> Vec<u8> {
    let steps: &[(Op, u8)] = &[
        (Op::Walk, 0),
        (Op::Lookup, 0x00),
        (Op::Lookup, 0x41),
        (Op::Lookup, 0x62),
        (Op::Lookup, 0x83),
        (Op::Lookup, 0xa0),
        (Op::Lookup, 0xc1),
        (Op::Lookup, 0xe2),
        (Op::Small, 4),
        (Op::Small, 12),
        (Op::Medium, 10),
        (Op::Object, 0),
        (Op::Object, 1),
        (Op::Publish, 0),
        (Op::Lookup, 0x00),
        (Op::Drop, 0),
        (Op::Drop, 1),
        (Op::Small, 4),
        (Op::Small, 12),
        (Op::Large, 1),
        (Op::Unpublish, 1),
        (Op::Unpublish, 0),
        (Op::Clone, 0),
        (Op::Touch, 0x5a),
        (Op::Walk, 0),
        (Op::Medium, 140),
        (Op::Drop, 0xff),
        (Op::Object, 2),
        (Op::Object, 3),
        (Op::Object, 4),
        (Op::Object, 5),
        (Op::Publish, 3),
        (Op::Large, 3),
        (Op::DropAll, 0),
        (Op::Walk, 0),
        (Op::Small, 5),
    ];
    let mut script = Vec::new();
    for &(op, arg) in steps {
        script.push(op as u8);
        if !matches!(op, Op::Walk | Op::DropAll) {
            script.push(arg);
        }
    }
    script
}

/// A `heap_alloc` input: the flags, the script, then the segment's bytes.
fn alloc_input(bytes: &[u8]) -> Vec<u8> {
    let script = alloc_script();
    let mut input = vec![FLAGS, u8::try_from(script.len()).expect("a short script")];
    input.extend_from_slice(&script);
    input.extend_from_slice(bytes);
    input
}

/// The whole heap's bytes for seeds of `heap_alloc`: made in a 1 MiB heap.
fn alloc_segment(placeholders: bool, fill: impl FnOnce(&Heap) -> Result<()>) -> Vec<u8> {
    segment_bytes(SEGMENT_LEN - HEADER_BYTES, placeholders, fill)
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn heap_alloc() {
    let mut seeds = Seeds::new("heap_alloc");
    seeds.add("empty", &alloc_input(&alloc_segment(false, |_| Ok(()))));

    // Free lists in several classes, two blocks each, between live blocks; some
    // published.
    let classes = alloc_segment(false, |h| {
        let mut keep = Vec::new();
        let mut free = Vec::new();
        for (i, len) in [8usize, 24, 40, 100, 200, 300, 500, 700, 1000]
            .into_iter()
            .enumerate()
        {
            for j in 0..3 {
                let a = RawArray::<u8>::zeroed_in(h, len)?;
                a[0].set((i * 3 + j) as u8 | 0x80);
                if j == 1 {
                    keep.push(a);
                } else {
                    free.push(a);
                }
            }
        }
        h.publish("a", &keep[0])?;
        h.publish("b", &Value::new_in(h, 7i64)?)?;
        h.publish("k0", &keep[3])?;
        drop(free);
        std::mem::forget(keep); // live in the segment
        Ok(())
    });
    let heads = (0..CLASSES * SHARDS)
        .filter(|c| u64_at(&classes, CLASSES_AT + 8 * c) != 0)
        .count();
    assert!(heads >= 8, "{heads} classes with free blocks");
    seeds.add("classes", &alloc_input(&classes));

    // A hang found with this harness: the first block of class 0's stack is no free
    // block of the class (its tag damaged) and links to itself. `pop` took it off,
    // found it foreign, and went on with the stack, which was that block again: for
    // ever. Then one allocation of that class (8 bytes).
    let mut cycle = classes.clone();
    // Class 0's stack in whichever shard this thread freed to.
    let head_at = (0..SHARDS)
        .map(|s| CLASSES_AT + 8 * CLASSES * s)
        .find(|&at| u64_at(&cycle, at) != 0)
        .expect("class 0 has a free block in some shard");
    let head = u64_at(&cycle, head_at);
    let block = ((head & ((1 << 40) - 1)) << 4) as usize;
    assert!(block >= HEADER_BYTES, "class 0 has a free block");
    put_u64(&mut cycle, block, 0x25); // 32 bytes, state 5: none
    put_u64(&mut cycle, block + 8, block as u64);
    let script = [Op::Small as u8, 0];
    let mut input = vec![FLAGS, script.len() as u8];
    input.extend_from_slice(&script);
    input.extend_from_slice(&cycle);
    finding("free-list-cycle", &input);

    // Runs made by the back end: a small heap filled with small blocks, most freed, then
    // an allocation that does not fit drains the classes and merges neighbours; then
    // small blocks carved from the runs.
    let runs = segment_bytes(8 << 10, false, |h| {
        let mut all = Vec::new();
        while let Ok(a) = RawArray::<u8>::zeroed_in(h, 100) {
            a[99].set(0x77);
            all.push(a);
        }
        let keep: Vec<_> = all.into_iter().step_by(20).collect();
        let big = RawArray::<u8>::zeroed_in(h, 2000)?;
        let carved: Vec<_> = (0..4)
            .map(|i| RawArray::from_slice_in(h, &[i as u8 + 1; 40]))
            .collect::<Result<_>>()?;
        h.publish("a", &big)?;
        h.publish("b", &carved[1])?;
        std::mem::forget((keep, big, carved));
        Ok(())
    });
    assert!(u64_at(&runs, RUNS_AT) != 0, "no free runs");
    seeds.add("runs", &alloc_input(&runs));

    // A freed block above the classes (the back end's list of runs), and a freed large
    // one (its pages given back), each last before the frontier.
    for (what, len) in [("medium-run", 40 << 10), ("large-run", 200 << 10)] {
        let bytes = alloc_segment(false, |h| {
            let keep = RawArray::from_slice_in(h, &[0x33u8; 300])?;
            h.publish("a", &keep)?;
            drop(RawArray::<u8>::zeroed_in(h, len)?);
            Ok(())
        });
        assert!(u64_at(&bytes, RUNS_AT) != 0, "{what}: no free run");
        seeds.add(what, &alloc_input(&bytes));
    }

    // Published, then unpublished (the directory's counts released: some objects
    // freed), then published again.
    seeds.add(
        "unpublished",
        &alloc_input(&alloc_segment(false, |h| {
            for i in 0..6u32 {
                h.publish(&format!("k{i}"), &RawValue::new_in(h, i)?)?;
            }
            h.publish("v", &Value::new_in(h, 3i64)?)?;
            h.unpublish("k1")?;
            h.unpublish("k4")?;
            h.unpublish("v")?;
            h.publish(
                "k1",
                &synchronized_with(RawArray::<u16>::zeroed_in(h, 3)?, Lock::new_in(h)?),
            )
        })),
    );

    // The back end marked dirty (its holder died mid-change), its list garbage: the
    // next holder rebuilds it.
    let mut dirty = classes.clone();
    put_u64(&mut dirty, DIRTY_AT, 1);
    put_u64(&mut dirty, RUNS_AT, 0x1230);
    seeds.add("dirty", &alloc_input(&dirty));

    // The allocator's lock held by the fuzzing thread itself (a placeholder owner), so
    // that the back end cannot be used; and held by a dead thread, taken over.
    let mut held = runs.clone();
    held[ALLOC_LOCK_AT..ALLOC_LOCK_AT + 8].copy_from_slice(b"TID!\x01ST!");
    put_u64(&mut held, DIRTY_AT, 1);
    seeds.add("alloc-lock-held", &alloc_input(&held));
    let mut dead = runs;
    put_u64(
        &mut dead,
        ALLOC_LOCK_AT,
        (1 << 29 | 4321) | 1 << 32 | 0x77 << 40,
    );
    seeds.add("alloc-lock-dead", &alloc_input(&dead));
}

fn encoded(l: &TypeLayout) -> Vec<u8> {
    DecodedLayout::of(l)
        .and_then(|d| d.encode())
        .expect("a small layout can be stored")
}

fn layout_decode() {
    let mut seeds = Seeds::new("layout_decode");
    let layouts: [(&str, &TypeLayout); 9] = [
        ("u32", &u32::LAYOUT),
        ("f64", &f64::LAYOUT),
        ("bytes", &<[u8; 3]>::LAYOUT),
        ("inner", &Inner::LAYOUT),
        ("record", &Record::LAYOUT),
        ("record-v2", &RecordV2::LAYOUT),
        ("pair", &Pair::LAYOUT),
        ("records", &<[[Record; 2]; 3]>::LAYOUT),
        ("pairs", &<[Pair; 4]>::LAYOUT),
    ];
    let pairs = [(4, 5), (4, 4), (0, 1), (2, 6), (7, 8), (3, 4)];
    for (a, b) in pairs {
        let (na, la) = layouts[a];
        let (nb, lb) = layouts[b];
        let (ea, eb) = (encoded(la), encoded(lb));
        let mut input = (ea.len() as u16).to_le_bytes().to_vec();
        input.extend_from_slice(&ea);
        input.extend_from_slice(&eb);
        seeds.add(&format!("{na}-vs-{nb}"), &input);
    }
}

fn heap_size() {
    let mut seeds = Seeds::new("heap_size");
    let sizes = [
        "64G",
        "512M",
        "1048576",
        "4KiB",
        " 16 gb ",
        "1T",
        "2mib",
        "0",
        "18446744073709551615",
        "17179869184T",
        "1.5G",
        "cbBhHiIlLqQfd",
        "x",
    ];
    for (i, s) in sizes.iter().enumerate() {
        seeds.add(&format!("size-{i}"), s.as_bytes());
    }
}

fn main() {
    open_lookup();
    heap_alloc();
    layout_decode();
    heap_size();
    println!("seeds written to {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
