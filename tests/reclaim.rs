//! Memory that is given back (issue 12): objects are counted in shared memory, freed when
//! their last handle goes (in any process), and their memory is reused by later
//! allocations from any process — also after processes were killed at random instants.
//!
//! Nothing here asserts how many bytes one object takes (not part of the contract): only
//! that `Heap::used()` and `Heap::live_objects()` return to earlier readings, and bounds.
//!
//! Scale (defaults keep the file well under a minute in a debug build):
//! - `SHAREDCTYPES_CHURN`: allocate-and-drop pairs of the churn tests (default 200,000;
//!   the run is `SHAREDCTYPES_CHURN=10000000 cargo test --release --test reclaim`);
//! - `SHAREDCTYPES_KILLS`: children killed by the SIGKILL storm (default 100);
//! - `SHAREDCTYPES_SEED`: the random seed (by default one from the clock, printed, so a
//!   failure can be replayed).

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{env_u64, finish, join_within, scramble, seed, unique, Rng};
use sharedctypes::{
    copy_in, synchronized, synchronized_with, Array, Barrier, BoundedSemaphore, Condition, Error,
    Event, Heap, Lock, Process, RLock, RawArray, RawValue, Semaphore, Value,
};

// ---------------------------------------------------------------------------------------
// Scale, randomness, deadlines
// ---------------------------------------------------------------------------------------

/// Allocate-and-drop pairs per churn test.
fn churn_pairs() -> u64 {
    env_u64("SHAREDCTYPES_CHURN", 200_000)
}

/// How long a child doing `pairs` churn steps may take before it counts as hung: far
/// more than it needs in a debug build on a busy machine, so only a hang trips it.
fn deadline_for(pairs: u64) -> Duration {
    Duration::from_secs(120) + Duration::from_micros(200) * u32::try_from(pairs).unwrap()
}

/// Children killed and reaped when this goes out of scope, so that a failing test
/// leaves no churning process behind.
#[derive(Default)]
struct Reaper(Vec<(u64, Process)>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for (_, p) in self.0.drain(..) {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Reaper {
    /// Fails as soon as a child exits with a non-zero status (the others are killed by
    /// `Drop`), so that a child waiting for a dead partner does not stall the test
    /// until its deadline; fails after `within` if they are not all done.
    #[track_caller]
    fn join_all(&mut self, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        while !self.0.is_empty() {
            let mut i = 0;
            while i < self.0.len() {
                let (id, p) = &mut self.0[i];
                match p.try_wait() {
                    Ok(Some(status)) => {
                        assert!(
                            status.success(),
                            "{what} {id} failed: {status:?} (its message, if any, is on \
                             stderr above)"
                        );
                        self.0.swap_remove(i);
                    }
                    Ok(None) => i += 1,
                    Err(e) => panic!("{what} {id}: waiting failed: {e}"),
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {} still running after {within:?}",
                self.0.len()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Fails if a child already exited (for children that must run until told).
    #[track_caller]
    fn all_running(&mut self, what: &str) {
        for (id, p) in &mut self.0 {
            if let Some(status) = p.try_wait().unwrap() {
                panic!("{what} {id} ended before it was told to: {status:?} (see stderr)");
            }
        }
    }
}

/// Removes a named heap's name if a failed test left it behind.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Heap::unlink(&self.0);
    }
}

/// 512-byte blocks the named heap `name`'s file holds (`st_blocks`).
fn file_blocks(name: &str) -> u64 {
    std::fs::metadata(format!("/dev/shm{name}"))
        .expect("stat the heap's file")
        .blocks()
}

// ---------------------------------------------------------------------------------------
// Patterns: every live object holds words derived from its unique tag
// ---------------------------------------------------------------------------------------

/// `len` bytes of `tag`'s pattern in `buf`.
fn pattern(buf: &mut Vec<u8>, tag: u64, len: usize) {
    let word = scramble(tag).to_le_bytes();
    buf.clear();
    buf.reserve(len);
    while buf.len() + 8 <= len {
        buf.extend_from_slice(&word);
    }
    let rest = len - buf.len();
    buf.extend_from_slice(&word[..rest]);
}

/// The four words a `Value<[u64; 4]>` tagged `tag` holds.
fn quad(tag: u64) -> [u64; 4] {
    [
        scramble(tag),
        scramble(tag ^ 1 << 63),
        !scramble(tag),
        scramble(tag).rotate_left(17),
    ]
}

/// The first byte where `found` differs from `expected`, for messages.
fn first_difference(found: &[u8], expected: &[u8]) -> String {
    match found.iter().zip(expected).position(|(a, b)| a != b) {
        Some(i) => format!(
            "byte {i} of {} is {:#04x}, expected {:#04x}",
            expected.len(),
            found[i],
            expected[i]
        ),
        None => format!("length {} instead of {}", found.len(), expected.len()),
    }
}

// ---------------------------------------------------------------------------------------
// Churn: a rolling live set of mixed objects, each checked before it is dropped
// ---------------------------------------------------------------------------------------

/// The largest small array.
const SMALL_MAX: usize = 4096;
/// The occasional large array: above the 64 KiB at which blocks are page-granular.
const BIG: usize = 100 << 10;
/// What one object may take beyond twice its payload (headers, alignment, size-class
/// rounding, page rounding of large blocks): generous on purpose. A bound on one object's
/// footprint is `2 × payload + OVERHEAD`.
const OVERHEAD: u64 = 4096;

/// The shape of a churn: how many objects live at once, how many of them may be large.
#[derive(Clone, Copy, Debug)]
struct Mix {
    slots: usize,
    max_big: usize,
}

impl Mix {
    /// Payload bytes of the largest live set the churn can form: `max_big` large arrays
    /// and every other slot holding the largest small object.
    fn max_live_bytes(&self) -> usize {
        self.max_big * BIG + (self.slots - self.max_big) * SMALL_MAX
    }
}

/// One object of the churn.
enum Obj {
    Word(RawValue<u64>),
    /// A small (1..=4096 bytes) or large (`BIG`) byte array.
    Bytes(RawArray<u8>),
    /// A value and its own fresh `RLock`: two objects.
    Quad(Value<[u64; 4]>),
    Lock(Lock),
}

/// A live object and the tag its pattern derives from.
struct Live {
    tag: u64,
    obj: Obj,
}

impl Live {
    /// How many objects `live_objects` counts for it.
    fn objects(&self) -> u64 {
        match self.obj {
            Obj::Quad(_) => 2,
            _ => 1,
        }
    }

    /// Payload bytes (locks counted as 0: their size is the crate's business).
    fn payload(&self) -> u64 {
        match &self.obj {
            Obj::Word(_) => 8,
            Obj::Bytes(a) => a.len() as u64,
            Obj::Quad(_) => 32,
            Obj::Lock(_) => 0,
        }
    }

    fn is_big(&self) -> bool {
        matches!(&self.obj, Obj::Bytes(a) if a.len() >= BIG)
    }
}

/// Where a churning child keeps, in shared memory, what it holds right now: its parent
/// reads it after killing it. Three words from `at`: objects, payload bytes, steps done.
struct Record {
    words: RawArray<u64>,
    at: usize,
}

/// Allocates, fills, checks and drops objects at random in a rolling live set.
struct Churner {
    heap: Heap,
    mix: Mix,
    /// Distinguishes this process's tags from every other's.
    proc_id: u64,
    /// Index of the next object (the low 40 bits of its tag).
    next: u64,
    slots: Vec<Option<Live>>,
    bigs: usize,
    rng: Rng,
    buf: Vec<u8>,
    zeros: Vec<u8>,
    record: Option<Record>,
    held_objects: u64,
    held_bytes: u64,
    steps: u64,
}

impl Churner {
    fn new(heap: &Heap, mix: Mix, proc_id: u64, seed: u64) -> Churner {
        assert!(proc_id < 1 << 23, "proc_id {proc_id} does not fit the tag");
        Churner {
            heap: heap.clone(),
            mix,
            proc_id,
            next: 0,
            slots: (0..mix.slots).map(|_| None).collect(),
            bigs: 0,
            rng: Rng(seed ^ scramble(proc_id.wrapping_add(1))),
            buf: Vec::with_capacity(BIG),
            zeros: vec![0; BIG],
            record: None,
            held_objects: 0,
            held_bytes: 0,
            steps: 0,
        }
    }

    fn with_record(mut self, words: RawArray<u64>, at: usize) -> Churner {
        self.record = Some(Record { words, at });
        self
    }

    /// One allocate-and-drop pair: the object in a random slot is checked and dropped,
    /// and a new one of a random kind and size takes its place.
    fn step(&mut self) -> Result<(), Error> {
        let i = self.rng.below(self.slots.len() as u64) as usize;
        if let Some(old) = self.slots[i].take() {
            self.release(old);
        }
        let live = self.allocate()?;
        // Recorded after the allocation and before a drop, so a process killed at any
        // instant holds at least what it recorded and at most one object more.
        self.note(live.objects() as i64, live.payload() as i64);
        if live.is_big() {
            self.bigs += 1;
        }
        self.slots[i] = Some(live);
        self.steps += 1;
        if let Some(r) = &self.record {
            r.words[r.at + 2].store(self.steps, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Checks and drops every live object.
    fn drain(&mut self) {
        for i in 0..self.slots.len() {
            if let Some(old) = self.slots[i].take() {
                self.release(old);
            }
        }
        assert_eq!(self.held_objects, 0);
    }

    fn note(&mut self, objects: i64, bytes: i64) {
        self.held_objects = self.held_objects.checked_add_signed(objects).unwrap();
        self.held_bytes = self.held_bytes.checked_add_signed(bytes).unwrap();
        if let Some(r) = &self.record {
            r.words[r.at].store(self.held_objects, Ordering::Relaxed);
            r.words[r.at + 1].store(self.held_bytes, Ordering::Relaxed);
        }
    }

    fn release(&mut self, old: Live) {
        self.check(&old);
        self.note(-(old.objects() as i64), -(old.payload() as i64));
        if old.is_big() {
            self.bigs -= 1;
        }
        drop(old);
    }

    fn allocate(&mut self) -> Result<Live, Error> {
        let tag = self.proc_id << 40 | self.next;
        self.next += 1;
        let r = self.rng.next();
        let heap = &self.heap;
        let obj = if r >> 32 & 255 == 0 && self.bigs < self.mix.max_big {
            let a = RawArray::<u8>::zeroed_in(heap, BIG)?;
            self.check_zero(&a, tag);
            pattern(&mut self.buf, tag, BIG);
            a.copy_from_slice(&self.buf).unwrap();
            Obj::Bytes(a)
        } else {
            match r % 100 {
                0..=29 if tag & 1 == 0 => Obj::Word(RawValue::new_in(heap, scramble(tag))?),
                0..=29 => {
                    let v = RawValue::<u64>::zeroed_in(heap)?;
                    assert_eq!(
                        v.get(),
                        0,
                        "{}: a zeroed RawValue is not zero",
                        self.who(tag)
                    );
                    v.set(scramble(tag));
                    Obj::Word(v)
                }
                30..=69 => {
                    // Half of them tiny, to hit the smallest size classes hard.
                    let max = if r & 1 << 20 == 0 { 64 } else { SMALL_MAX };
                    let len = 1 + (r >> 40) as usize % max;
                    pattern(&mut self.buf, tag, len);
                    if tag & 1 == 0 {
                        Obj::Bytes(RawArray::from_slice_in(heap, &self.buf)?)
                    } else {
                        let a = RawArray::<u8>::zeroed_in(heap, len)?;
                        self.check_zero(&a, tag);
                        a.copy_from_slice(&self.buf).unwrap();
                        Obj::Bytes(a)
                    }
                }
                70..=84 => Obj::Quad(Value::new_in(heap, quad(tag))?),
                _ => {
                    let l = Lock::new_in(heap)?;
                    assert!(
                        l.try_acquire().is_ok(),
                        "{}: a new lock is not free",
                        self.who(tag)
                    );
                    Obj::Lock(l)
                }
            }
        };
        Ok(Live { tag, obj })
    }

    fn who(&self, tag: u64) -> String {
        format!(
            "process {} (pid {}), object {:#x} (tag {tag:#x})",
            self.proc_id,
            std::process::id(),
            tag & ((1 << 40) - 1)
        )
    }

    fn check_zero(&self, a: &RawArray<u8>, tag: u64) {
        let found = a.raw();
        assert!(
            found == self.zeros[..a.len()],
            "{}: a zeroed array (reused memory?) is not zero: {}",
            self.who(tag),
            first_difference(&found, &self.zeros[..a.len()])
        );
    }

    /// Panics unless `live` still holds its pattern (another object written over it, or
    /// its memory handed out twice, shows here).
    fn check(&mut self, live: &Live) {
        let tag = live.tag;
        match &live.obj {
            Obj::Word(v) => {
                let found = v.get();
                assert_eq!(found, scramble(tag), "{}: damaged RawValue", self.who(tag));
            }
            Obj::Bytes(a) => {
                pattern(&mut self.buf, tag, a.len());
                let found = a.raw();
                assert!(
                    found == self.buf,
                    "{}: damaged array: {}",
                    self.who(tag),
                    first_difference(&found, &self.buf)
                );
            }
            Obj::Quad(v) => {
                let g = v.lock().unwrap_or_else(|_| {
                    panic!("{}: a Value's own lock reports a dead owner", self.who(tag))
                });
                assert_eq!(g.get(), quad(tag), "{}: damaged Value", self.who(tag));
            }
            Obj::Lock(l) => {
                assert!(
                    l.try_acquire().is_ok(),
                    "{}: a lock nobody holds is not free (damaged?)",
                    self.who(tag)
                );
            }
        }
    }
}

/// Panics with the heap's state when a churn step fails.
#[track_caller]
fn step_or_panic(c: &mut Churner, step: u64) {
    if let Err(e) = c.step() {
        panic!(
            "{}: step {step}: {e} (used {}, available {}, capacity {}, this process holds \
             {} objects, {} payload bytes; largest live set {} bytes)",
            c.who(c.next),
            c.heap.used(),
            c.heap.available(),
            c.heap.capacity(),
            c.held_objects,
            c.held_bytes,
            c.mix.max_live_bytes()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Counting, kind by kind
// ---------------------------------------------------------------------------------------

/// Creates an object with `make`, checks that it adds `objects` live objects, that a
/// clone keeps it alive after the original is dropped, and that dropping the clone
/// gives everything back.
#[track_caller]
fn counted<H: Clone>(heap: &Heap, objects: usize, what: &str, make: impl FnOnce() -> H) {
    let (used0, live0) = (heap.used(), heap.live_objects());
    let h = make();
    let (used1, live1) = (heap.used(), heap.live_objects());
    assert!(
        used1 > used0,
        "{what}: used() did not grow ({used0} -> {used1})"
    );
    assert_eq!(live1, live0 + objects, "{what}: live objects");
    let clone = h.clone();
    drop(h);
    assert_eq!(
        heap.used(),
        used1,
        "{what}: dropping one of two handles freed memory"
    );
    assert_eq!(
        heap.live_objects(),
        live1,
        "{what}: live objects, one of two handles dropped"
    );
    drop(clone);
    assert_eq!(
        heap.used(),
        used0,
        "{what}: used() not back after the last drop"
    );
    assert_eq!(
        heap.live_objects(),
        live0,
        "{what}: live objects not back after the last drop"
    );
}

/// Every kind of object adds its objects to `live_objects()` (a `Value`/`Array` with
/// its own lock two), a clone keeps it alive after the original goes, and the last drop
/// brings `used()` and `live_objects()` back to their earlier values.
#[test]
fn every_kind_of_object_is_counted_and_given_back() {
    let heap = Heap::new(1 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let h = &heap;
    counted(h, 1, "RawValue", || RawValue::new_in(h, 7u64).unwrap());
    counted(h, 1, "RawArray", || {
        RawArray::from_slice_in(h, &[1u32, 2, 3]).unwrap()
    });
    counted(h, 1, "RawArray (large)", || {
        RawArray::<u8>::zeroed_in(h, 200 << 10).unwrap()
    });
    counted(h, 2, "Value (value + its RLock)", || {
        Value::new_in(h, [1u64; 4]).unwrap()
    });
    counted(h, 2, "Array (array + its RLock)", || {
        Array::<u16>::zeroed_in(h, 10).unwrap()
    });
    counted(h, 1, "Lock", || Lock::new_in(h).unwrap());
    counted(h, 1, "RLock", || RLock::new_in(h).unwrap());
    counted(h, 1, "Event", || Event::new_in(h).unwrap());
    counted(h, 1, "Condition", || Condition::new_in(h).unwrap());
    counted(h, 1, "Semaphore", || Semaphore::new_in(h, 3).unwrap());
    counted(h, 1, "BoundedSemaphore", || {
        BoundedSemaphore::new_in(h, 3).unwrap()
    });
    counted(h, 1, "Barrier", || Barrier::new_in(h, 2).unwrap());

    // Built from other objects: `copy_in` makes one new raw object; `synchronized`
    // one new RLock (the raw object is moved in).
    let src = RawValue::new_in(h, 9i32).unwrap();
    counted(h, 1, "copy_in", || copy_in(h, &src).unwrap());
    counted(h, 2, "synchronized(RawArray)", || {
        synchronized(RawArray::from_slice_in(h, &[5u8; 100]).unwrap()).unwrap()
    });
    drop(src);
    assert_eq!(heap.used(), used0);
    assert_eq!(heap.live_objects(), live0);
}

/// A lock shared by several synchronized objects is counted separately and goes with
/// the last of them, not before.
#[test]
fn a_shared_lock_lives_until_its_last_object_goes() {
    let heap = Heap::new(1 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let lock = Lock::new_in(&heap).unwrap();
    let v = Value::with_lock(5u64, lock.clone()).unwrap();
    let a = Array::<u32, Lock>::zeroed_with_lock(100, lock.clone()).unwrap();
    let s = synchronized_with(RawValue::new_in(&heap, 1u8).unwrap(), lock.clone());
    assert_eq!(heap.live_objects(), live0 + 4, "one lock and three values");
    drop(lock);
    assert_eq!(
        heap.live_objects(),
        live0 + 4,
        "the objects still hold the lock"
    );
    // The lock still works, and is still the one the three share.
    {
        let g = v.lock().unwrap();
        assert!(
            a.get_lock().try_acquire().is_err(),
            "a's lock is v's lock, held"
        );
        g.set(6);
    }
    assert!(v.get_lock() == a.get_lock() && a.get_lock() == s.get_lock());
    drop(v);
    assert_eq!(heap.live_objects(), live0 + 3);
    drop(a);
    assert_eq!(
        heap.live_objects(),
        live0 + 2,
        "the lock lives while s holds it"
    );
    assert_eq!(s.get(), 1);
    drop(s);
    assert_eq!(
        heap.live_objects(),
        live0,
        "the last holder took the lock with it"
    );
    assert_eq!(heap.used(), used0);
}

// ---------------------------------------------------------------------------------------
// 1. Churn in one process
// ---------------------------------------------------------------------------------------

/// `SHAREDCTYPES_CHURN` allocate-and-drop pairs of mixed sizes (values, small arrays of
/// 1..=4096 bytes, `Value`s with their locks, `Lock`s, now and then a 100 KiB array) in
/// a heap 8× the largest live set: no `OutOfMemory`, every object intact when dropped
/// (zeroed ones zero when made), `used()` and `live_objects()` back at their start.
#[test]
fn churn_in_one_process_never_runs_out_and_gives_everything_back() {
    let pairs = churn_pairs();
    let mix = Mix {
        slots: 256,
        max_big: 2,
    };
    // A heap 8× the largest live set the churn can form.
    let heap = Heap::new(8 * mix.max_live_bytes()).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let mut c = Churner::new(&heap, mix, 1, seed("churn_in_one_process"));
    for step in 0..pairs {
        step_or_panic(&mut c, step);
    }
    c.drain();
    drop(c);
    assert_eq!(
        heap.used(),
        used0,
        "used() not back at its start after {pairs} pairs"
    );
    assert_eq!(heap.live_objects(), live0);
}

// ---------------------------------------------------------------------------------------
// 2. Churn from 4 processes at once
// ---------------------------------------------------------------------------------------

/// Four processes churn in one heap at once, each writing its own pattern (process id,
/// object index) into every live object and checking it before the drop: an object
/// handed out twice, or overlapping another, shows as a damaged pattern. No
/// `OutOfMemory` in a heap 8× the four largest live sets; everything given back.
#[test]
fn churn_from_four_processes_at_once_keeps_objects_apart() {
    const PROCS: u64 = 4;
    let pairs = churn_pairs() / PROCS;
    let mix = Mix {
        slots: 128,
        max_big: 1,
    };
    let heap = Heap::new(8 * PROCS as usize * mix.max_live_bytes()).unwrap();
    // Coordination lives in a heap of its own, so the churn heap's counts are the churn's.
    let meta = Heap::new(1 << 16).unwrap();
    let start = Barrier::new_in(&meta, PROCS as usize).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let seed = seed("churn_from_four_processes");
    let mut children = Reaper::default();
    for id in 1..=PROCS {
        let (heap, start) = (heap.clone(), start.clone());
        let child = Process::spawn(move || {
            start
                .wait_timeout(Duration::from_secs(60))
                .expect("the others did not start");
            let mut c = Churner::new(&heap, mix, id, seed);
            for step in 0..pairs {
                step_or_panic(&mut c, step);
            }
            c.drain();
        })
        .unwrap();
        children.0.push((id, child));
    }
    children.join_all(deadline_for(pairs), "churning child");
    assert_eq!(
        heap.used(),
        used0,
        "used() not back at its start after the children"
    );
    assert_eq!(heap.live_objects(), live0);
}

/// Objects created in one process and freed in another (handed over through a named
/// heap's directory) are reused: the heap holds a small fraction of all the objects
/// that pass through it.
#[test]
fn objects_freed_by_another_process_are_reused() {
    const IN_FLIGHT: u64 = 16;
    let count = (churn_pairs() / 40).max(3000);
    let name = unique("reclaim-handover");
    let _unlink = Unlink(name.clone());
    // Room for a few times the objects in flight (at most 4 KiB each) and the directory;
    // `count` objects of 2 KiB on average do not fit without reuse.
    let heap = Heap::create(&name, 1 << 20).unwrap();
    assert!(count * 2048 > 4 * heap.capacity() as u64);
    // Make the directory's table before taking the start readings.
    for k in 0..IN_FLIGHT {
        heap.publish(&format!("k{k}"), &RawValue::new_in(&heap, 0u8).unwrap())
            .unwrap();
    }
    for k in 0..IN_FLIGHT {
        heap.unpublish(&format!("k{k}")).unwrap();
    }
    let meta = Heap::new(1 << 16).unwrap();
    let produced = RawValue::new_in(&meta, 0u64).unwrap();
    let consumed = RawValue::new_in(&meta, 0u64).unwrap();
    let live0 = heap.live_objects();
    let within = deadline_for(count * 4);

    let producer = {
        let (name, produced, consumed) = (name.clone(), produced.clone(), consumed.clone());
        Process::spawn(move || {
            let heap = Heap::open(&name).unwrap();
            let mut buf = Vec::new();
            let deadline = Instant::now() + within;
            for i in 0..count {
                while i - consumed.load(Ordering::Acquire) >= IN_FLIGHT {
                    assert!(Instant::now() < deadline, "the consumer stopped");
                    std::thread::yield_now();
                }
                let len = 1 + scramble(i) as usize % SMALL_MAX;
                pattern(&mut buf, i, len);
                let a = RawArray::from_slice_in(&heap, &buf)
                    .unwrap_or_else(|e| panic!("object {i}: {e}"));
                heap.publish(&format!("k{}", i % IN_FLIGHT), &a).unwrap();
                drop(a); // the directory's count keeps it
                produced.store(i + 1, Ordering::Release);
            }
        })
        .unwrap()
    };
    let consumer = {
        let (name, produced, consumed) = (name.clone(), produced.clone(), consumed.clone());
        Process::spawn(move || {
            let heap = Heap::open(&name).unwrap();
            let mut buf = Vec::new();
            let deadline = Instant::now() + within;
            for i in 0..count {
                while produced.load(Ordering::Acquire) <= i {
                    assert!(Instant::now() < deadline, "the producer stopped");
                    std::thread::yield_now();
                }
                let key = format!("k{}", i % IN_FLIGHT);
                let a: RawArray<u8> = heap.lookup(&key).unwrap();
                heap.unpublish(&key).unwrap();
                let len = 1 + scramble(i) as usize % SMALL_MAX;
                pattern(&mut buf, i, len);
                let found = a.raw();
                assert!(
                    found == buf,
                    "object {i}: {}",
                    first_difference(&found, &buf)
                );
                drop(a); // the last count: freed here, in the consumer
                consumed.store(i + 1, Ordering::Release);
            }
        })
        .unwrap()
    };
    // 1: the producer, 2: the consumer.
    Reaper(vec![(1, producer), (2, consumer)]).join_all(within, "handover child");
    assert_eq!(consumed.get(), count);
    assert_eq!(
        heap.live_objects(),
        live0,
        "every object handed over was freed"
    );
}

// ---------------------------------------------------------------------------------------
// 3. A child that drops the last handle frees memory the parent then reuses
// ---------------------------------------------------------------------------------------

/// More than half of the heap below: two at once do not fit.
const HALF_PLUS: usize = 600 << 10;

/// The parent moves its only handle into a child; once the child is joined the array is
/// freed, and an array as large (two never fit at once) can be allocated again.
#[test]
fn a_child_that_drops_the_last_handle_frees_memory_the_parent_reuses() {
    let heap = Heap::new(1 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let mut buf = Vec::new();
    pattern(&mut buf, 3, HALF_PLUS);
    let a = RawArray::from_slice_in(&heap, &buf).unwrap();
    assert!(
        matches!(
            RawArray::<u8>::zeroed_in(&heap, HALF_PLUS),
            Err(Error::OutOfMemory { .. })
        ),
        "the heap must be too small for two such arrays, or this test proves nothing"
    );
    let child = Process::spawn(move || {
        let found = a.raw();
        assert!(found == buf, "{}", first_difference(&found, &buf));
        a.set_raw(b"the child was here").unwrap();
        drop(a); // the only handle: the parent moved its own into this closure
    })
    .unwrap();
    join_within(child, Duration::from_secs(60), "child");
    assert_eq!(
        heap.used(),
        used0,
        "the child's last handle did not free the array"
    );
    assert_eq!(heap.live_objects(), live0);
    let b = RawArray::<u8>::zeroed_in(&heap, HALF_PLUS)
        .expect("the freed array's memory was not reused");
    assert!(
        b.raw().iter().all(|&x| x == 0),
        "a zeroed array on reused memory is not zero"
    );
}

/// Objects created (and cloned) in a child and dropped there are freed there: the child
/// reuses the memory round after round, and the parent after it.
#[test]
fn memory_a_child_allocates_and_frees_is_reused_by_it_and_by_the_parent() {
    let heap = Heap::new(1 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let child = {
        let heap = heap.clone();
        Process::spawn(move || {
            let (used0, live0) = (heap.used(), heap.live_objects());
            for round in 0..3u8 {
                let a = RawArray::<u8>::zeroed_in(&heap, HALF_PLUS)
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
                assert!(a.raw().iter().all(|&x| x == 0), "round {round}: not zero");
                a.copy_from_slice(&vec![round + 1; HALF_PLUS]).unwrap();
                // A clone made in the child counts like any other.
                let b = a.clone();
                drop(a);
                assert_eq!(b[HALF_PLUS - 1].get(), round + 1);
                drop(b);
                assert_eq!(heap.used(), used0, "round {round}: not freed in the child");
                assert_eq!(heap.live_objects(), live0);
            }
        })
        .unwrap()
    };
    join_within(child, Duration::from_secs(60), "child");
    assert_eq!(heap.used(), used0);
    assert_eq!(heap.live_objects(), live0);
    let a = RawArray::<u8>::zeroed_in(&heap, HALF_PLUS).expect("the child's array was not freed");
    assert!(a.raw().iter().all(|&x| x == 0));
}

// ---------------------------------------------------------------------------------------
// 4. Objects moved into `spawn` stay alive after the parent drops its copies
// ---------------------------------------------------------------------------------------

/// Handles moved into `spawn` keep their objects alive after the parent drops its own
/// copies, even while the parent allocates decoys of the same sizes: the child still
/// reads them intact, and its writes do not land in the decoys. After `join` the
/// closure's handles are released: `used()` is back at its start.
#[test]
fn objects_moved_into_spawn_outlive_the_parents_copies() {
    let heap = Heap::new(4 << 20).unwrap();
    let meta = Heap::new(1 << 16).unwrap();
    let go = Event::new_in(&meta).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());

    const SMALL: usize = 3000;
    const LARGE: usize = 300 << 10;
    let mut small = Vec::new();
    pattern(&mut small, 41, SMALL);
    let mut large = Vec::new();
    pattern(&mut large, 42, LARGE);
    let v = Value::new_in(&heap, quad(40)).unwrap();
    let a = RawArray::from_slice_in(&heap, &small).unwrap();
    let big = RawArray::from_slice_in(&heap, &large).unwrap();
    let r = RawValue::new_in(&heap, 43u64).unwrap();
    let l = Lock::new_in(&heap).unwrap();
    let (used1, live1) = (heap.used(), heap.live_objects());
    assert_eq!(live1, live0 + 6);

    let child = {
        let (v, a, big, r, l, go) = (
            v.clone(),
            a.clone(),
            big.clone(),
            r.clone(),
            l.clone(),
            go.clone(),
        );
        Process::spawn(move || {
            assert!(
                go.wait_timeout(Duration::from_secs(60)),
                "the parent never said go"
            );
            // The parent has dropped its copies and allocated decoys meanwhile.
            let check = |when: &str| {
                assert_eq!(v.get(), quad(40), "{when}: Value");
                let found = a.raw();
                assert!(
                    found == small,
                    "{when}: array: {}",
                    first_difference(&found, &small)
                );
                let found = big.raw();
                assert!(
                    found == large,
                    "{when}: large array: {}",
                    first_difference(&found, &large)
                );
                assert_eq!(r.get(), 43, "{when}: RawValue");
                assert!(l.try_acquire().is_ok(), "{when}: the lock is not free");
            };
            check("after the parent dropped its copies");
            // Clones made here count: dropping them leaves the objects alive.
            let clones = (v.clone(), a.clone(), big.clone(), r.clone(), l.clone());
            drop(clones);
            let fresh = RawArray::<u8>::zeroed_in(v.get_obj().heap(), 300 << 10).unwrap();
            fresh.copy_from_slice(&vec![0xa5; 300 << 10]).unwrap();
            check("after clones made in the child were dropped");
            // Write through them: the parent's decoys must not change.
            v.set([0; 4]);
            a.copy_from_slice(&vec![0x5a; small.len()]).unwrap();
            big.copy_from_slice(&vec![0x5a; large.len()]).unwrap();
            r.set(0);
        })
        .unwrap()
    };
    drop((v, a, big, r, l));
    assert_eq!(
        heap.used(),
        used1,
        "the child's copies must keep the objects alive"
    );
    assert_eq!(heap.live_objects(), live1);

    // Decoys of the same kinds and sizes: they would take the objects' memory had it
    // been freed, and the child's writes would then land in them.
    let dv = Value::new_in(&heap, quad(50)).unwrap();
    let da = RawArray::from_slice_in(&heap, &[0x11; SMALL]).unwrap();
    let dbig = RawArray::from_slice_in(&heap, &vec![0x22; LARGE]).unwrap();
    let dr = RawValue::new_in(&heap, 53u64).unwrap();
    go.set();
    join_within(child, Duration::from_secs(60), "child");
    assert_eq!(dv.get(), quad(50));
    assert!(da.raw().iter().all(|&x| x == 0x11));
    assert!(dbig.raw().iter().all(|&x| x == 0x22));
    assert_eq!(dr.get(), 53);
    drop((dv, da, dbig, dr));
    assert_eq!(
        heap.used(),
        used0,
        "the closure's handles were not released after join"
    );
    assert_eq!(heap.live_objects(), live0);
}

// ---------------------------------------------------------------------------------------
// 5. SIGKILL storms during churn
// ---------------------------------------------------------------------------------------

/// Words in a child's [`Record`].
const RECORD: usize = 3;

/// Spawns churning child `id`: churns until `stop` is set (or, as a backstop, `within`
/// has passed), then checks and drops everything and exits 0.
fn storm_child(
    heap: &Heap,
    mix: Mix,
    id: u64,
    seed: u64,
    records: &RawArray<u64>,
    stop: &RawValue<u32>,
    within: Duration,
) -> Process {
    let (heap, records, stop) = (heap.clone(), records.clone(), stop.clone());
    Process::spawn(move || {
        let deadline = Instant::now() + within;
        let mut c = Churner::new(&heap, mix, id, seed).with_record(records, id as usize * RECORD);
        let mut step = 0;
        while stop.get() == 0 {
            step_or_panic(&mut c, step);
            step += 1;
            if step % 1024 == 0 {
                assert!(Instant::now() < deadline, "never told to stop");
            }
        }
        c.drain();
    })
    .unwrap()
}

/// Children churn (allocate, fill, check, drop) while the parent kills them with
/// `SIGKILL` at random instants (`SHAREDCTYPES_KILLS` times), inside allocations and
/// frees included; replacements keep churning. Asserted: no child ever finds a damaged
/// object or runs out of memory; after the storm the survivors, a fresh child and this
/// process churn successfully; and what stays allocated is what the dead held, as they
/// recorded it in shared memory before each allocation and drop:
/// - live objects grew by at least the objects the dead recorded and at most 2 more per
///   kill (the object, or the `Value` and its lock, being allocated or freed);
/// - `used()` grew by at least their payload bytes, and at most twice those plus 4096
///   bytes per object plus one in-flight large array per kill
///   (`2 × payload + OVERHEAD` per object: generous for headers and rounding);
/// - so, with each child holding at most 32 slots of at most one 100 KiB array and
///   4096-byte objects otherwise, each kill leaks at most `per_kill_bytes`.
#[test]
fn sigkill_storms_during_churn_leak_a_bounded_amount_and_corrupt_nothing() {
    const RUNNING: usize = 2;
    let kills_target = env_u64("SHAREDCTYPES_KILLS", 100);
    let mix = Mix {
        slots: 32,
        max_big: 1,
    };
    // What one killed child can leave allocated, at most: everything it held (every
    // object at most `2 × payload + OVERHEAD` bytes; a Value is two objects) and the
    // one object it was allocating or freeing (a large array at most, or a Value).
    let held_objects_max = 2 * mix.slots as u64;
    let in_flight_bytes = 2 * BIG as u64 + 2 * OVERHEAD;
    let per_kill_bytes =
        2 * mix.max_live_bytes() as u64 + held_objects_max * OVERHEAD + in_flight_bytes;
    let per_kill_objects = held_objects_max + 2;
    // Room for the running children's live sets 8× over, plus every kill's leak.
    let capacity =
        8 * (RUNNING as u64 + 1) * mix.max_live_bytes() as u64 + kills_target * per_kill_bytes;
    let heap = Heap::new(capacity as usize).unwrap();
    let meta = Heap::new(1 << 20).unwrap();
    let max_children = kills_target + RUNNING as u64 + 2;
    let records = RawArray::<u64>::zeroed_in(&meta, max_children as usize * RECORD).unwrap();
    let stop = RawValue::new_in(&meta, 0u32).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let seed = seed("sigkill_storms");
    let mut rng = Rng(seed);
    let within = deadline_for(churn_pairs()) + Duration::from_secs(kills_target);

    let mut running = Reaper::default();
    let mut killed = Vec::new();
    let mut next_id = 1;
    let mut spawn = |running: &mut Reaper| {
        let id = next_id;
        next_id += 1;
        let p = storm_child(&heap, mix, id, seed, &records, &stop, within);
        running.0.push((id, p));
    };
    for _ in 0..RUNNING {
        spawn(&mut running);
    }
    let storm_started = Instant::now();
    while (killed.len() as u64) < kills_target {
        std::thread::sleep(Duration::from_micros(rng.below(15_000)));
        running.all_running("churning child");
        let victim = rng.below(running.0.len() as u64) as usize;
        let (id, p) = running.0.swap_remove(victim);
        p.kill().unwrap();
        let status = finish(p, Duration::from_secs(60), &format!("killed child {id}"));
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "child {id} ended on its own before it was killed: {status:?} \
             (101: it found a damaged object or ran out of memory; see stderr)"
        );
        killed.push(id);
        spawn(&mut running);
        assert!(storm_started.elapsed() < within, "the storm takes too long");
    }

    // The survivors go on churning after the storm: let each do 1,000 more steps, then
    // stop them; they check and drop everything they hold.
    let steps = |id: u64| records[id as usize * RECORD + 2].load(Ordering::Relaxed);
    let marks: Vec<_> = running.0.iter().map(|(id, _)| (*id, steps(*id))).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (id, mark) in marks {
        while steps(id) < mark + 1000 {
            running.all_running("surviving child");
            assert!(Instant::now() < deadline, "survivor {id} stopped churning");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    stop.set(1);
    let survivors: Vec<_> = running.0.iter().map(|(id, _)| *id).collect();
    running.join_all(Duration::from_secs(120), "surviving child");
    for id in survivors {
        let held = records[id as usize * RECORD].get();
        assert_eq!(held, 0, "survivor {id} still records {held} objects");
    }

    // A fresh child churns in the heap the dead left behind, then this process does.
    stop.set(0);
    let after = (churn_pairs() / 8).clamp(1000, 50_000);
    let fresh = {
        let heap = heap.clone();
        Process::spawn(move || {
            let mut c = Churner::new(&heap, mix, 1 << 22, seed);
            for step in 0..after {
                step_or_panic(&mut c, step);
            }
            c.drain();
        })
        .unwrap()
    };
    join_within(fresh, deadline_for(after), "fresh child after the storm");
    let mut c = Churner::new(&heap, mix, (1 << 22) + 1, seed);
    for step in 0..after {
        step_or_panic(&mut c, step);
    }
    c.drain();
    drop(c);

    // What the dead held, by their own records: at least that stays allocated, at most
    // that and the object each was moving.
    let kills = killed.len() as u64;
    let (mut objects, mut bytes) = (0, 0);
    for &id in &killed {
        objects += records[id as usize * RECORD].get();
        bytes += records[id as usize * RECORD + 1].get();
    }
    let (used, live) = (heap.used(), heap.live_objects());
    eprintln!(
        "{kills} kills: the dead held {objects} objects, {bytes} payload bytes; \
         live objects {live0} -> {live}, used {used0} -> {used}"
    );
    assert!(
        used >= used0,
        "used() fell below its start: {used0} -> {used}"
    );
    assert!(
        live >= live0,
        "live objects fell below the start: {live0} -> {live}"
    );
    let (leaked, leaked_objects) = ((used - used0) as u64, (live - live0) as u64);
    // Every object a dead child recorded is still live; beyond them, at most the one
    // it was allocating or freeing (a Value is two objects).
    assert!(
        leaked_objects >= objects && leaked_objects <= objects + 2 * kills,
        "live objects {live0} -> {live}: the dead held {objects} (plus at most 2 in flight each)"
    );
    assert!(
        leaked >= bytes,
        "used() grew by {leaked} bytes, less than the {bytes} payload bytes the dead held"
    );
    assert!(
        leaked <= 2 * bytes + objects * OVERHEAD + kills * in_flight_bytes,
        "used() grew by {leaked} bytes; the dead held {objects} objects of {bytes} payload bytes"
    );
    // The bound stated up front: each kill leaks at most what one child can hold.
    assert!(leaked <= kills * per_kill_bytes);
    assert!(leaked_objects <= kills * per_kill_objects);
}

// ---------------------------------------------------------------------------------------
// 6. Published objects survive their publisher
// ---------------------------------------------------------------------------------------

/// A child opens a named heap, creates and publishes a `Value`, an `Array` and a `Lock`,
/// and exits: they stay alive (and intact while other objects come and go). Lookups add
/// no object; `unpublish` of a key that is looked up leaves the object alive and usable
/// until the last handle goes; a published object nobody holds stays alive; unpublish
/// plus the last drop brings `used()` back; unpublishing a missing key is `NotFound`.
#[test]
fn published_objects_outlive_their_publisher_and_go_with_unpublish_and_the_last_reader() {
    let name = unique("reclaim-publish");
    let _unlink = Unlink(name.clone());
    let heap = Heap::create(&name, 4 << 20).unwrap();
    let data: Vec<u64> = (0..1000).map(|i| scramble(i + 60)).collect();
    // The directory's table is made by the first publish: make it (for these very
    // keys and kinds) before taking the start readings.
    heap.publish("v", &Value::new_in(&heap, [0u64; 4]).unwrap())
        .unwrap();
    heap.publish("a", &Array::<u64>::zeroed_in(&heap, 1000).unwrap())
        .unwrap();
    heap.publish("l", &Lock::new_in(&heap).unwrap()).unwrap();
    for key in ["v", "a", "l"] {
        heap.unpublish(key).unwrap();
    }
    let (used0, live0) = (heap.used(), heap.live_objects());

    let publisher = {
        let (name, data) = (name.clone(), data.clone());
        Process::spawn(move || {
            let heap = Heap::open(&name).unwrap();
            let v = Value::new_in(&heap, quad(61)).unwrap();
            let a = Array::from_slice_in(&heap, &data).unwrap();
            let l = Lock::new_in(&heap).unwrap();
            heap.publish("v", &v).unwrap();
            heap.publish("a", &a).unwrap();
            heap.publish("l", &l).unwrap();
            // Exits: its handles go, the directory's counts stay.
        })
        .unwrap()
    };
    join_within(publisher, Duration::from_secs(60), "publisher");
    assert_eq!(
        heap.live_objects(),
        live0 + 5,
        "the published Value (2), Array (2) and Lock (1) must outlive their publisher"
    );
    assert!(heap.used() > used0);
    // Were they freed, these would take their memory and the lookups below read them.
    for i in 0..20 {
        let d = Value::new_in(&heap, quad(70 + i)).unwrap();
        let e = RawArray::<u64>::from_slice_in(&heap, &[!0; 1000]).unwrap();
        drop((d, e));
    }

    let v: Value<[u64; 4]> = heap.lookup("v").unwrap();
    let a: Array<u64> = heap.lookup("a").unwrap();
    let l: Lock = heap.lookup("l").unwrap();
    assert_eq!(v.get(), quad(61));
    assert_eq!(a.to_vec(), data);
    assert!(l.try_acquire().is_ok());
    assert_eq!(
        heap.live_objects(),
        live0 + 5,
        "a lookup makes no new object"
    );

    // Unpublished while looked up: still alive, still intact.
    heap.unpublish("v").unwrap();
    assert!(matches!(
        heap.lookup::<Value<[u64; 4]>>("v"),
        Err(Error::NotFound { .. })
    ));
    let decoys: Vec<_> = (0..20)
        .map(|i| Value::new_in(&heap, quad(80 + i)).unwrap())
        .collect();
    assert_eq!(
        v.get(),
        quad(61),
        "a looked-up handle must keep the object alive"
    );
    v.set(quad(62));
    for (i, d) in decoys.iter().enumerate() {
        assert_eq!(
            d.get(),
            quad(80 + i as u64),
            "the unpublished Value shares memory"
        );
    }
    drop(decoys);
    assert_eq!(heap.live_objects(), live0 + 5);
    drop(v); // the last count
    assert_eq!(heap.live_objects(), live0 + 3);

    heap.unpublish("a").unwrap();
    assert_eq!(a.to_vec(), data);
    let a2 = a.clone();
    drop(a);
    assert_eq!(a2.get(999).unwrap(), data[999]);
    assert_eq!(heap.live_objects(), live0 + 3);
    drop(a2);
    assert_eq!(heap.live_objects(), live0 + 1);

    // Published, not looked up by anyone: the directory's count alone keeps it.
    drop(l);
    assert_eq!(heap.live_objects(), live0 + 1, "still published");
    let l: Lock = heap.lookup("l").unwrap();
    assert!(l.try_acquire().is_ok());
    drop(l);
    heap.unpublish("l").unwrap();
    assert_eq!(heap.live_objects(), live0);
    assert_eq!(
        heap.used(),
        used0,
        "used() not back after unpublish and the last drop"
    );

    for key in ["v", "a", "l", "never"] {
        assert!(
            matches!(heap.unpublish(key), Err(Error::NotFound { .. })),
            "unpublish of the missing key {key:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 7. A large array freed lowers the heap file's allocated blocks
// ---------------------------------------------------------------------------------------

/// A 16 MiB array, every page written, then freed: the named heap's file holds at least
/// 12 MiB fewer blocks (`st_blocks`), and a new 16 MiB array reuses the range, zeroed.
#[test]
fn a_freed_large_array_gives_its_pages_back_to_the_system() {
    const LEN: usize = 16 << 20;
    let name = unique("reclaim-blocks");
    let _unlink = Unlink(name.clone());
    let heap = Heap::create(&name, 32 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let mut buf = Vec::new();
    pattern(&mut buf, 7, LEN);
    let a = RawArray::<u8>::zeroed_in(&heap, LEN).unwrap();
    a.copy_from_slice(&buf).unwrap(); // every page touched
    let held = file_blocks(&name);
    drop(a);
    let freed = file_blocks(&name);
    // st_blocks counts 512-byte blocks; most of the 16 MiB must be gone.
    assert!(
        held >= freed + (LEN as u64 * 3 / 4) / 512,
        "the file held {held} blocks with the array, {freed} after it was freed: \
         its pages were not given back"
    );
    assert_eq!(heap.used(), used0);
    assert_eq!(heap.live_objects(), live0);
    // The hole reads as zeros and is reused.
    let b = RawArray::<u8>::zeroed_in(&heap, LEN).expect("the freed range is reusable");
    assert!(
        b.raw().iter().all(|&x| x == 0),
        "reused large block not zero"
    );
    b.copy_from_slice(&buf).unwrap();
    assert!(b.raw() == buf);
}

// ---------------------------------------------------------------------------------------
// 8. After many small objects come and go, a large one still fits
// ---------------------------------------------------------------------------------------

/// Fills `heap` with small objects of `sizes` (in turn) until it is full, then drops
/// them all, odd ones first; returns how many fitted.
fn fill_with_small_objects_and_drop(heap: &Heap, sizes: &[usize]) -> usize {
    let mut objects = Vec::new();
    loop {
        assert!(objects.len() <= heap.capacity(), "allocation never ran out");
        let size = sizes[objects.len() % sizes.len()];
        let made = match size {
            0 => Lock::new_in(heap).map(|l| (Some(l), None)),
            n => RawArray::<u8>::zeroed_in(heap, n).map(|a| (None, Some(a))),
        };
        match made {
            Ok(o) => objects.push(o),
            Err(Error::OutOfMemory { .. }) => break,
            Err(e) => panic!("allocating object {}: {e}", objects.len()),
        }
    }
    let n = objects.len();
    let mut odd = Vec::new();
    for (i, o) in objects.into_iter().enumerate() {
        if i % 2 == 1 {
            drop(o);
        } else {
            odd.push(o);
        }
    }
    drop(odd);
    n
}

/// The heap is filled to `OutOfMemory` with small objects (of one size, then of
/// several), which are all dropped: then an array of 70% of the capacity fits. Freed
/// small blocks are not stranded in lists of one size.
#[test]
fn after_many_small_objects_come_and_go_a_large_one_fits() {
    let heap = Heap::new(4 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let large = heap.capacity() * 7 / 10;
    // Size mixes (0 is a Lock): one size, then several, then others again.
    let rounds: [&[usize]; 3] = [&[16], &[8, 24, 100, 0, 500, 1000], &[48, 3000, 200, 1]];
    for sizes in rounds {
        let n = fill_with_small_objects_and_drop(&heap, sizes);
        assert!(n > 100, "only {n} objects of sizes {sizes:?} fitted");
        let a = RawArray::<u8>::zeroed_in(&heap, large).unwrap_or_else(|e| {
            panic!("after {n} objects of sizes {sizes:?} came and went, {large} bytes: {e}")
        });
        a[large - 1].set(1);
        drop(a);
        assert_eq!(heap.used(), used0, "sizes {sizes:?}: used() not back");
        assert_eq!(heap.live_objects(), live0);
    }
}

// ---------------------------------------------------------------------------------------
// 9. Copies that were never counted cannot free an object
// ---------------------------------------------------------------------------------------

/// Waits for the raw-forked `pid` at most 60 s (killing it then) and returns its exit
/// code.
fn wait_raw(pid: libc::pid_t) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a local; `pid` is our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(rc >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if rc == pid {
            assert!(
                libc::WIFEXITED(status),
                "the child did not exit: status {status:#x}"
            );
            return libc::WEXITSTATUS(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill has no memory-safety preconditions; `pid` is our child, not
            // reaped yet, so it names no other process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: a null status pointer is allowed; `pid` is our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            panic!("the raw-forked child hung");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A child made with a raw `libc::fork` drops every handle it inherited (and a clone it
/// made itself), then allocates objects of the same sizes: the parent's objects are
/// intact and `used()`/`live_objects()` unchanged after the child exits.
#[test]
fn a_raw_fork_child_dropping_inherited_handles_frees_nothing() {
    let heap = Heap::new(1 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let r = RawValue::new_in(&heap, 42u64).unwrap();
    let a = RawArray::from_slice_in(&heap, &[7u8; 5000]).unwrap();
    let v = Value::new_in(&heap, quad(90)).unwrap();
    let big = RawArray::from_slice_in(&heap, &[9u8; 200 << 10]).unwrap();
    let (used1, live1) = (heap.used(), heap.live_objects());

    // SAFETY: the child runs only the code below — no lock another thread of this
    // (multi-threaded) test process may hold: the heap's own atomics and robust locks,
    // and glibc's malloc, which is fork-safe — reports by exit code, never panics
    // (that would take the stderr lock), and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = (move || -> i32 {
            // A clone made in the child is counted: dropping it is neutral.
            drop(r.clone());
            // Copies inherited across the fork were never counted: no release.
            drop((r, a, v, big));
            // Had they been freed, these would take their memory.
            let Ok(x) = RawValue::new_in(&heap, 0u64) else {
                return 2;
            };
            let Ok(y) = RawArray::from_slice_in(&heap, &[0u8; 5000]) else {
                return 3;
            };
            let Ok(z) = Value::new_in(&heap, [0u64; 4]) else {
                return 4;
            };
            let Ok(w) = RawArray::from_slice_in(&heap, &[0u8; 200 << 10]) else {
                return 5;
            };
            drop((x, y, z, w)); // created here, counted here: freed
            if heap.used() != used1 {
                return 6;
            }
            0
        })();
        // SAFETY: `_exit` ends the child without running the parent's destructors or
        // atexit handlers.
        unsafe { libc::_exit(code) }
    }
    let code = wait_raw(pid);
    assert!(
        code != 6,
        "used() changed in the child: its own objects were not freed there, or dropping \
         inherited handles freed theirs"
    );
    assert_eq!(
        code, 0,
        "the child could not allocate (exit codes 2..=5 above)"
    );
    assert_eq!(r.get(), 42);
    assert!(a.raw().iter().all(|&x| x == 7));
    assert_eq!(v.get(), quad(90));
    assert!(big.raw().iter().all(|&x| x == 9));
    assert_eq!(
        heap.used(),
        used1,
        "a raw-forked child's drops freed memory"
    );
    assert_eq!(heap.live_objects(), live1);
    drop((r, a, v, big));
    assert_eq!(heap.used(), used0);
    assert_eq!(heap.live_objects(), live0);
}

/// A handle in a `static`, which a child made by `spawn` reaches without it being
/// captured (this test's own: no other test touches it).
static STASHED: Mutex<Option<RawArray<u64>>> = Mutex::new(None);

#[test]
fn a_spawned_child_dropping_a_handle_from_a_static_frees_nothing() {
    let heap = Heap::new(1 << 20).unwrap();
    let (used0, live0) = (heap.used(), heap.live_objects());
    let data: Vec<u64> = (0..1000).map(scramble).collect();
    *STASHED.lock().unwrap() = Some(RawArray::from_slice_in(&heap, &data).unwrap());
    let (used1, live1) = (heap.used(), heap.live_objects());
    let child = {
        let heap = heap.clone();
        Process::spawn(move || {
            let stashed = STASHED.lock().unwrap().take().expect("inherited");
            drop(stashed); // a copy inherited across the fork: never counted here
            let decoy = RawArray::from_slice_in(&heap, &[!0u64; 1000]).unwrap();
            drop(decoy);
        })
        .unwrap()
    };
    join_within(child, Duration::from_secs(60), "child");
    let stashed = STASHED.lock().unwrap().take().expect("the parent's copy");
    assert_eq!(stashed.to_vec(), data, "the child's drop freed the object");
    assert_eq!(heap.used(), used1);
    assert_eq!(heap.live_objects(), live1);
    drop(stashed);
    assert_eq!(heap.used(), used0);
    assert_eq!(heap.live_objects(), live0);
}

/// `spawn` keeps the parent's copy of the whole closure until the child is reaped (a
/// handle may be reached through anything the closure captured): a pipe's write end it
/// captured stays open in the parent until then, and is closed by the reaping.
#[test]
fn spawn_keeps_the_closure_until_the_child_is_reaped() {
    use std::io::{ErrorKind, Read, Write};
    use std::os::unix::net::UnixStream;

    let heap = Heap::new(1 << 20).unwrap();
    let value = RawValue::new_in(&heap, 5u64).unwrap();
    let (mut reader, mut writer) = UnixStream::pair().unwrap();
    let mut child = Process::spawn(move || {
        writer.write_all(&value.get().to_ne_bytes()).unwrap();
    })
    .unwrap();
    let mut got = [0u8; 8];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(got, 5u64.to_ne_bytes());
    // Wait for the child's exit without reaping it: the closure is still kept.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sharedctypes_exited(child.pid()) {
        assert!(Instant::now() < deadline, "the child did not exit");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(heap.live_objects(), 1, "the value is counted for the child");
    reader.set_nonblocking(true).unwrap();
    let mut rest = Vec::new();
    let open = reader.read_to_end(&mut rest).unwrap_err();
    assert_eq!(
        open.kind(),
        ErrorKind::WouldBlock,
        "the parent's copy is still open"
    );
    assert!(child.try_wait().unwrap().is_some());
    // Reaped: the closure is gone, the pipe at its end, the value freed.
    reader.set_nonblocking(false).unwrap();
    assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0);
    assert_eq!((heap.live_objects(), heap.used()), (0, 0));
}

/// Whether the child `pid` has exited (a zombie), without reaping it.
fn sharedctypes_exited(pid: u32) -> bool {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child unreaped.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: zero-initialised, filled in by waitid on success.
    let info = unsafe { info.assume_init() };
    // SAFETY: for SIGCHLD the pid is a valid member of the union (0 when still running).
    rc == 0 && unsafe { info.si_pid() } != 0
}

/// A `Process` dropped after its child exited (here: a zombie, never reaped through the
/// `Process`) gives the closure's counts up; one dropped while its child runs keeps
/// them, since the child may still use the objects.
#[test]
fn dropping_a_process_gives_the_closures_counts_up_once_the_child_has_ended() {
    let heap = Heap::new(1 << 20).unwrap();
    let go = RawValue::new(0u32).unwrap();
    let done = RawValue::new_in(&heap, 0u64).unwrap();
    let running = {
        let (done, go) = (done.clone(), go.clone());
        Process::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while go.get() == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            done.set(1);
        })
        .unwrap()
    };
    let pid = running.pid();
    drop(running); // still running: the clone of `done` stays counted for it
    drop(done);
    assert_eq!(heap.live_objects(), 1, "kept for the running child");
    go.set(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sharedctypes_exited(pid) {
        assert!(Instant::now() < deadline, "the child did not exit");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        heap.live_objects(),
        1,
        "a dropped Process keeps them for good"
    );

    let value = RawValue::new_in(&heap, 3u64).unwrap();
    let ended = {
        let value = value.clone();
        Process::spawn(move || assert_eq!(value.get(), 3)).unwrap()
    };
    let pid = ended.pid();
    drop(value);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sharedctypes_exited(pid) {
        assert!(Instant::now() < deadline, "the child did not exit");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(heap.live_objects(), 2);
    drop(ended); // exited, not reaped: nothing can use the value any more
    assert_eq!(
        heap.live_objects(),
        1,
        "the ended child's value is given back"
    );
}
