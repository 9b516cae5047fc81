//! Writes the seed inputs of the three fuzz targets into `corpus/<target>/seed-*`:
//! real segments made by creating heaps and publishing objects (copied from
//! `/dev/shm`), real encoded layouts, and sizes in every accepted form; and the
//! hand-made inputs of `tests/fuzz_regressions/` (which depend on the heap's format).
//!
//! Run from `fuzz/` after a change to the heap or directory format (on stable):
//! `cargo run --features seeds --bin make_seeds`, then `cargo +nightly fuzz cmin`
//! each target.

use std::fs;
use std::path::Path;

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

/// The flags byte of `open_lookup` seeds: fix `total_len`, adopt our PID and time
/// namespaces, substitute `TID!`/`ST!`.
const FLAGS: u8 = 0b111;

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
/// `placeholders`), behind the flags byte.
fn segment(capacity: usize, placeholders: bool, fill: impl FnOnce(&Heap) -> Result<()>) -> Vec<u8> {
    let name = format!("/scfuzz-seed-{}", std::process::id());
    let heap = Heap::create(&name, capacity).expect("create a seed heap");
    fill(&heap).expect("fill a seed heap");
    let mut bytes = fs::read(format!("/dev/shm{name}")).expect("read the segment back");
    drop(heap); // removes the name

    // Keep what was allocated and a little room to allocate more: the fuzzer need not
    // mutate kilobytes of zeros. `total_len` (at 16) follows.
    let cursor = u64::from_ne_bytes(bytes[24..32].try_into().expect("8 bytes"));
    bytes.truncate(cursor as usize + 64);
    let total = bytes.len() as u64;
    bytes[16..24].copy_from_slice(&total.to_ne_bytes());
    if placeholders {
        assert!(placeholder_owners(&mut bytes) > 0);
        // The header's creator pid is this thread's id too: it becomes `TID!` as well.
        assert!(replace_all(&mut bytes, &tid().to_ne_bytes(), b"TID!") > 0);
    }
    let mut input = vec![FLAGS];
    input.extend_from_slice(&bytes);
    input
}

fn open_lookup() {
    let mut seeds = Seeds::new("open_lookup");
    seeds.add("empty", &segment(1024, false, |_| Ok(())));
    seeds.add(
        "raw-value",
        &segment(1024, false, |h| {
            h.publish("rv", &RawValue::new_in(h, 0xfeed_u32)?)
        }),
    );
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
    layout_decode();
    heap_size();
    println!("seeds written to {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
