//! Named heaps: create/open/unlink, names, lifecycle, the directory, layout checks, and
//! unrelated processes (this test binary re-executed, not forked) sharing objects and
//! locks by name.

mod common;

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{child_status, in_child, unique};
use sharedctypes::{
    synchronized_with, Array, Error, Heap, Lock, Process, RLock, RawArray, RawValue, SharedStruct,
    Value,
};

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

fn path(name: &str) -> String {
    format!("/dev/shm{name}")
}

fn exists(name: &str) -> bool {
    fs::metadata(path(name)).is_ok()
}

/// Removes the name if a failed test left it behind.
struct Cleanup<'a>(&'a str);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = Heap::unlink(self.0);
    }
}

/// Kills and reaps a helper program when dropped: a failed assertion cannot leave one
/// that loops forever behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same for a forked child.
struct KillProcessOnDrop(Option<Process>);

impl KillProcessOnDrop {
    fn kill_and_join(&mut self) -> std::process::ExitStatus {
        let p = self.0.take().expect("not joined yet");
        p.kill().unwrap();
        p.wait().unwrap()
    }
}

impl Drop for KillProcessOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// A helper program: this test binary, executed again with HELPER_MODE set.
// ---------------------------------------------------------------------------------------

const HELPER_MODE: &str = "SHAREDCTYPES_TEST_HELPER_MODE";
const HELPER_HEAP: &str = "SHAREDCTYPES_TEST_HELPER_HEAP";
const ROUNDS: u64 = 2000;
/// The helper's exit status on success: not 0, which a harness that ran no helper at
/// all would also give.
const HELPER_OK: i32 = 42;

/// Not a test of its own: the entry point of the helper program. Does nothing unless
/// started by `helper` below.
#[test]
fn named_helper_entry() {
    let Ok(mode) = std::env::var(HELPER_MODE) else {
        return;
    };
    let name = std::env::var(HELPER_HEAP).expect("the heap's name");
    let heap = Heap::open(&name).expect("open by name");
    let code = match mode.as_str() {
        // Reads what the test wrote, writes back.
        "read-write" => {
            let p: Value<Point> = heap.lookup("point").unwrap();
            let a: Array<f64> = heap.lookup("samples").unwrap();
            let raw: RawValue<u64> = heap.lookup("raw").unwrap();
            assert_eq!(p.get(), Point { x: 1.5, y: -2.0 });
            assert_eq!(a.to_vec(), [1.0, 2.0, 3.0]);
            assert_eq!(raw.get(), 7);
            p.lock().unwrap().y.set(20.0);
            a.set(2, 30.0).unwrap();
            raw.set(99);
            HELPER_OK
        }
        // Increments a counter by an unlocked read and write under the shared lock.
        "count" => {
            let lock: Lock = heap.lookup("lock").unwrap();
            let counter: RawValue<u64> = heap.lookup("counter").unwrap();
            locked_increments(&lock, &counter);
            HELPER_OK
        }
        // Takes the lock, says so, and waits to be killed.
        "hold" => {
            let lock: Lock = heap.lookup("lock").unwrap();
            let held: RawValue<u32> = heap.lookup("held").unwrap();
            std::mem::forget(lock.acquire().unwrap());
            held.set(1);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        // Takes an RLock whose holder (another process) was killed.
        "recover" => {
            let lock: RLock = heap.lookup("rlock").unwrap();
            let code = match lock.acquire() {
                Err(died) => {
                    drop(died.into_inner());
                    assert!(lock.acquire().is_ok(), "the lock works again");
                    HELPER_OK
                }
                Ok(_) => 3,
            };
            code
        }
        other => panic!("unknown helper mode {other:?}"),
    };
    drop(heap);
    std::process::exit(code);
}

/// Starts this test binary again, as a new program, in helper `mode` on heap `name`.
fn helper(mode: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "named_helper_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_MODE, mode)
        .env(HELPER_HEAP, name)
        .stdout(Stdio::null())
        .spawn()
        .expect("exec the helper")
}

fn locked_increments(lock: &Lock, counter: &RawValue<u64>) {
    for _ in 0..ROUNDS {
        let _guard = lock.acquire().unwrap();
        let v = counter.get();
        std::thread::yield_now();
        counter.set(v + 1);
    }
}

#[test]
fn another_program_reads_and_writes_by_name() {
    let name = unique("sct-rw");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let p = Value::new_in(&heap, Point { x: 1.5, y: -2.0 }).unwrap();
    let a = Array::from_slice_in(&heap, &[1.0f64, 2.0, 3.0]).unwrap();
    let raw = RawValue::new_in(&heap, 7u64).unwrap();
    heap.publish("point", &p).unwrap();
    heap.publish("samples", &a).unwrap();
    heap.publish("raw", &raw).unwrap();

    let status = helper("read-write", &name).wait().unwrap();
    assert_eq!(status.code(), Some(HELPER_OK), "helper: {status:?}");
    assert_eq!(p.get(), Point { x: 1.5, y: 20.0 });
    assert_eq!(a.to_vec(), [1.0, 2.0, 30.0]);
    assert_eq!(raw.get(), 99);
}

#[test]
fn a_lock_excludes_across_programs() {
    let name = unique("sct-excl");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let counter = RawValue::new_in(&heap, 0u64).unwrap();
    heap.publish("lock", &lock).unwrap();
    heap.publish("counter", &counter).unwrap();

    let mut child = helper("count", &name);
    locked_increments(&lock, &counter);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(HELPER_OK), "helper: {status:?}");
    assert_eq!(counter.get(), 2 * ROUNDS);
}

#[test]
fn a_killed_holder_in_another_program_is_recovered_here() {
    let name = unique("sct-kill");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let held = RawValue::new_in(&heap, 0u32).unwrap();
    heap.publish("lock", &lock).unwrap();
    heap.publish("held", &held).unwrap();

    let mut child = KillOnDrop(helper("hold", &name));
    while held.get() == 0 {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the helper ended before taking the lock: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(lock.try_acquire().is_err(), "the helper holds it");
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let guard = match lock.acquire() {
        Err(died) => died.into_inner(),
        Ok(_) => panic!("the holder's death was not reported"),
    };
    drop(guard);
    assert!(lock.acquire().is_ok());
}

#[test]
fn a_holder_killed_here_is_recovered_in_another_program() {
    let name = unique("sct-recover");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let rlock = RLock::new_in(&heap).unwrap();
    let held = RawValue::new_in(&heap, 0u32).unwrap();
    heap.publish("rlock", &rlock).unwrap();

    let mut holder = KillProcessOnDrop(Some({
        let (rlock, held) = (rlock.clone(), held.clone());
        Process::spawn(move || {
            std::mem::forget(rlock.acquire().unwrap());
            held.set(1);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap()
    }));
    while held.get() == 0 {
        std::thread::yield_now();
    }
    holder.kill_and_join();

    let status = helper("recover", &name).wait().unwrap();
    assert_eq!(
        status.code(),
        Some(HELPER_OK),
        "the helper did not see the owner's death"
    );
}

// ---------------------------------------------------------------------------------------
// Layout and kind mismatches
// ---------------------------------------------------------------------------------------

/// `Point` as one program has it …
mod v1 {
    #[derive(Clone, Copy, Debug, PartialEq, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Point {
        pub x: f64,
        pub y: f64,
    }

    #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Segment {
        pub from: Point,
        pub to: Point,
    }
}

/// … and as programs built from other sources have it.
mod changed_type {
    #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Point {
        pub x: f64,
        pub y: f32,
    }

    #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Segment {
        pub from: super::v1::Point,
        pub to: Point,
    }
}

mod changed_order {
    #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Point {
        pub y: f64,
        pub x: f64,
    }
}

mod changed_name {
    #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Point {
        pub x: f64,
        pub z: f64,
    }
}

mod added_field {
    #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Point {
        pub x: f64,
        pub y: f64,
        pub z: f64,
    }
}

mod renamed_struct {
    #[derive(Clone, Copy, sharedctypes::SharedStruct)]
    #[repr(C)]
    pub struct Vec2 {
        pub x: f64,
        pub y: f64,
    }
}

fn mismatch<T>(r: Result<T, Error>) -> String {
    match r {
        Err(Error::LayoutMismatch(why)) => why,
        Err(e) => panic!("expected a layout mismatch, got {e:?}"),
        Ok(_) => panic!("expected a layout mismatch, got a handle"),
    }
}

#[test]
fn a_changed_struct_is_a_readable_mismatch() {
    let heap = Heap::new(1 << 16).unwrap();
    let p = Value::new_in(&heap, v1::Point { x: 1.0, y: 2.0 }).unwrap();
    heap.publish("p", &p).unwrap();
    let s = RawValue::<v1::Segment>::zeroed_in(&heap).unwrap();
    heap.publish("segment", &s).unwrap();

    assert_eq!(heap.lookup::<Value<v1::Point>>("p").unwrap().get().y, 2.0);
    assert_eq!(
        mismatch(heap.lookup::<Value<changed_type::Point>>("p")),
        "key \"p\" (a Value<Point> with an RLock): \
         field `y`: f64 at offset 8 in the heap, f32 at offset 8 here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Value<changed_order::Point>>("p")),
        "key \"p\" (a Value<Point> with an RLock): \
         field 0: `x` (f64 at offset 0) in the heap, `y` (f64 at offset 0) here; \
         field 1: `y` (f64 at offset 8) in the heap, `x` (f64 at offset 8) here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Value<changed_name::Point>>("p")),
        "key \"p\" (a Value<Point> with an RLock): \
         field 1: `y` (f64 at offset 8) in the heap, `z` (f64 at offset 8) here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Value<added_field::Point>>("p")),
        "key \"p\" (a Value<Point> with an RLock): \
         size 16 align 8 in the heap, size 24 align 8 here; \
         field `z`: missing in the heap, f64 at offset 16 here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Value<renamed_struct::Vec2>>("p")),
        "key \"p\" (a Value<Point> with an RLock): \
         struct `Point` in the heap, struct `Vec2` here"
    );
    assert_eq!(
        mismatch(heap.lookup::<RawValue<changed_type::Segment>>("segment")),
        "key \"segment\" (a RawValue<Segment>): \
         field `to.y`: f64 at offset 8 in the heap, f32 at offset 8 here"
    );
}

#[test]
fn primitives_and_arrays_mismatch_by_kind_and_length() {
    let heap = Heap::new(1 << 16).unwrap();
    heap.publish("n", &RawValue::new_in(&heap, 1u64).unwrap())
        .unwrap();
    heap.publish("a", &Array::<f64>::zeroed_in(&heap, 3).unwrap())
        .unwrap();
    heap.publish("m", &RawValue::new_in(&heap, [[0u8; 4]; 2]).unwrap())
        .unwrap();

    assert_eq!(
        mismatch(heap.lookup::<RawValue<usize>>("n")),
        "key \"n\" (a RawValue<u64>): u64 in the heap, usize here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Array<f32>>("a")),
        "key \"a\" (an Array<f64> with an RLock): f64 in the heap, f32 here"
    );
    assert_eq!(
        mismatch(heap.lookup::<RawValue<[[u8; 4]; 3]>>("m")),
        "key \"m\" (a RawValue<[[u8; 4]; 2]>): [[u8; 4]; 2] in the heap, [[u8; 4]; 3] here"
    );
    assert_eq!(
        mismatch(heap.lookup::<RawValue<[[i8; 4]; 2]>>("m")),
        "key \"m\" (a RawValue<[[u8; 4]; 2]>): field `[][]`: u8 in the heap, i8 here"
    );
    // `c_long` is `i64` here, so it matches.
    heap.publish("l", &RawValue::new_in(&heap, 5i64).unwrap())
        .unwrap();
    assert_eq!(
        heap.lookup::<RawValue<std::ffi::c_long>>("l")
            .unwrap()
            .get(),
        5
    );
}

#[test]
fn a_wrong_handle_kind_is_a_readable_mismatch() {
    let heap = Heap::new(1 << 16).unwrap();
    let p = Value::new_in(&heap, v1::Point { x: 1.0, y: 2.0 }).unwrap();
    heap.publish("p", &p).unwrap();
    heap.publish("rlock", &RLock::new_in(&heap).unwrap())
        .unwrap();

    assert_eq!(
        mismatch(heap.lookup::<Array<v1::Point>>("p")),
        "key \"p\": a Value<Point> with an RLock in the heap, an Array<Point> with an RLock here"
    );
    assert_eq!(
        mismatch(heap.lookup::<RawValue<v1::Point>>("p")),
        "key \"p\": a Value<Point> with an RLock in the heap, a RawValue<Point> here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Value<v1::Point, Lock>>("p")),
        "key \"p\": a Value<Point> with an RLock in the heap, a Value<Point> with a Lock here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Lock>("p")),
        "key \"p\": a Value<Point> with an RLock in the heap, a Lock here"
    );
    assert_eq!(
        mismatch(heap.lookup::<Lock>("rlock")),
        "key \"rlock\": an RLock in the heap, a Lock here"
    );
    assert_eq!(
        mismatch(heap.lookup::<RawArray<changed_type::Point>>("p")),
        "key \"p\": a Value<Point> with an RLock in the heap, a RawArray<Point> here; \
         field `y`: f64 at offset 8 in the heap, f32 at offset 8 here"
    );
    // The error reads as a sentence.
    let err = heap
        .lookup::<Array<v1::Point>>("p")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("layout mismatch: key \"p\": a Value<Point>"),
        "{err}"
    );
}

/// `A0 { a: u8, b: u8 }`, `A1 { a: A0, b: A0 }`, …: each level doubles the tree the
/// layout describes (`A20` has 2^21 leaves) while the types grow by one.
macro_rules! doubling {
    ($leaf:ty; $($name:ident)*) => { doubling!(@ $leaf; $($name)*); };
    (@ $prev:ty; $name:ident $($rest:ident)*) => {
        #[derive(Clone, Copy, sharedctypes::SharedStruct)]
        #[repr(C)]
        pub struct $name {
            pub a: $prev,
            pub b: $prev,
        }
        doubling!(@ $name; $($rest)*);
    };
    (@ $prev:ty;) => {};
}

mod dag {
    doubling!(u8; A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12 A13 A14 A15 A16 A17 A18 A19 A20);
}

mod dag2 {
    doubling!(i8; A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12 A13 A14 A15 A16 A17 A18 A19 A20);
}

#[test]
fn a_type_too_large_to_describe_is_refused_not_expanded() {
    use sharedctypes::SharedType;

    let heap = Heap::new(1 << 16).unwrap();
    // No elements: the array is one small block; its element type's description would
    // be huge.
    let big = RawArray::<dag::A20>::zeroed_in(&heap, 0).unwrap();
    let used = heap.used();
    let err = heap.publish("big", &big).unwrap_err();
    let Error::LayoutMismatch(why) = &err else {
        panic!("expected the too-large error, got {err:?}")
    };
    assert!(
        why.starts_with(
            "`A20` cannot be described in a heap's directory: its description takes more than"
        ),
        "{why}"
    );
    assert!(why.ends_with("so it cannot be published"), "{why}");
    let shown = err.to_string();
    assert!(shown.starts_with("layout too large: `A20`"), "{shown}");
    assert!(!shown.contains("rebuild"), "{shown}");
    assert_eq!(heap.used(), used, "a refused publish allocates nothing");
    assert!(heap.keys().unwrap().is_empty());

    // Looked up as such a type: a mismatch that says why, not an expansion.
    heap.publish("small", &RawValue::new_in(&heap, 1u8).unwrap())
        .unwrap();
    let why = mismatch(heap.lookup::<RawValue<dag::A20>>("small"));
    assert!(
        why.starts_with("key \"small\": `A20` cannot be described in a heap's directory"),
        "{why}"
    );
    assert!(matches!(
        heap.lookup::<RawValue<dag::A20>>("none"),
        Err(Error::NotFound { .. })
    ));
    // A smaller level is described, published and looked up as usual.
    let a8 = RawValue::<dag::A8>::zeroed_in(&heap).unwrap();
    heap.publish("a8", &a8).unwrap();
    assert!(heap.lookup::<RawValue<dag::A8>>("a8").unwrap() == a8);
    let why = mismatch(heap.lookup::<RawValue<dag2::A8>>("a8"));
    assert!(why.ends_with("… (more differences not listed)"), "{why}");

    // Comparing the static layouts is bounded too.
    let d = dag::A20::LAYOUT.differences(&dag2::A20::LAYOUT);
    assert_eq!(d.len(), 33, "{d:?}");
}

// ---------------------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------------------

#[test]
fn every_handle_kind_round_trips() {
    let name = unique("sct-kinds");
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let rlock = RLock::new_in(&heap).unwrap();
    let rv = RawValue::new_in(&heap, Point { x: 1.0, y: 2.0 }).unwrap();
    let ra = RawArray::from_slice_in(&heap, &[1u16, 2, 3]).unwrap();
    let empty = RawArray::<u64>::zeroed_in(&heap, 0).unwrap();
    let v = synchronized_with(RawValue::new_in(&heap, 5i8).unwrap(), lock.clone());
    let a = Array::from_slice_in(&heap, &[[1u8, 2], [3, 4]]).unwrap();
    heap.publish("lock", &lock).unwrap();
    heap.publish("rlock", &rlock).unwrap();
    heap.publish("rv", &rv).unwrap();
    heap.publish("ra", &ra).unwrap();
    heap.publish("empty", &empty).unwrap();
    heap.publish("v", &v).unwrap();
    heap.publish("a", &a).unwrap();
    assert_eq!(
        heap.keys().unwrap(),
        ["a", "v", "empty", "ra", "rv", "rlock", "lock"]
    );

    // Looked up through a second mapping of the same segment: equal handles.
    let opened = Heap::open(&name).unwrap();
    assert_eq!(opened, heap);
    assert_eq!(opened.lookup::<Lock>("lock").unwrap(), lock);
    assert_eq!(opened.lookup::<RLock>("rlock").unwrap(), rlock);
    assert_eq!(opened.lookup::<RawValue<Point>>("rv").unwrap(), rv);
    assert_eq!(opened.lookup::<RawArray<u16>>("ra").unwrap(), ra);
    assert_eq!(opened.lookup::<RawArray<u64>>("empty").unwrap().len(), 0);
    let v2: Value<i8, Lock> = opened.lookup("v").unwrap();
    assert!(v2.get_lock() == &lock && v2.get_obj() == v.get_obj());
    let a2: Array<[u8; 2], RLock> = opened.lookup("a").unwrap();
    assert!(a2.get_lock() == a.get_lock());
    assert_eq!(a2.to_vec(), [[1, 2], [3, 4]]);

    // The same lock, reached two ways, excludes itself.
    let g = lock.acquire().unwrap();
    assert!(opened
        .lookup::<Lock>("lock")
        .unwrap()
        .try_acquire()
        .is_err());
    drop(g);
    // Writes through one mapping show through the other.
    v2.set(-3);
    assert_eq!(v.get(), -3);
}

#[test]
fn keys_are_unique_and_checked() {
    let heap = Heap::new(1 << 16).unwrap();
    let x = RawValue::new_in(&heap, 1u8).unwrap();
    heap.publish("x", &x).unwrap();
    assert!(matches!(
        heap.publish("x", &x),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        heap.publish("x", &Lock::new_in(&heap).unwrap()),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        heap.lookup::<RawValue<u8>>("y"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        heap.publish("", &x),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        heap.publish(&"k".repeat(256), &x),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        heap.lookup::<RawValue<u8>>(""),
        Err(Error::InvalidName { .. })
    ));
    heap.publish(&"k".repeat(255), &x).unwrap();
    assert_eq!(heap.lookup::<RawValue<u8>>(&"k".repeat(255)).unwrap(), x);
    // Keys are bytes: no normalisation.
    heap.publish("X", &x).unwrap();
    heap.publish("x ", &x).unwrap();
}

#[test]
fn a_handle_from_another_heap_is_refused() {
    let heap = Heap::new(1 << 16).unwrap();
    let other = Heap::new(1 << 16).unwrap();
    let before = heap.used();
    let foreign = RawValue::new_in(&other, 1u32).unwrap();
    assert!(matches!(heap.publish("f", &foreign), Err(Error::WrongHeap)));
    // The value here, its lock elsewhere.
    let split = synchronized_with(
        RawValue::new_in(&heap, 1u32).unwrap(),
        Lock::new_in(&other).unwrap(),
    );
    let used = heap.used();
    assert!(matches!(heap.publish("s", &split), Err(Error::WrongHeap)));
    assert!(matches!(
        heap.publish("l", &Lock::new_in(&other).unwrap()),
        Err(Error::WrongHeap)
    ));
    assert_eq!(heap.used(), used, "a refused publish allocates nothing");
    assert!(before < used);
    assert!(heap.keys().unwrap().is_empty());
}

#[test]
fn of_concurrent_publishes_of_one_key_exactly_one_wins() {
    const CHILDREN: usize = 8;
    const WON: u8 = 1;
    const TAKEN: u8 = 2;
    for round in 0..5 {
        let heap = Heap::new(1 << 20).unwrap();
        let go = RawValue::new_in(&heap, 0u32).unwrap();
        let outcome = RawArray::<u8>::zeroed_in(&heap, CHILDREN).unwrap();
        let children: Vec<_> = (0..CHILDREN)
            .map(|i| {
                let (heap, go, outcome) = (heap.clone(), go.clone(), outcome.clone());
                Process::spawn(move || {
                    let mine = RawValue::new_in(&heap, i).unwrap();
                    while go.get() == 0 {
                        std::hint::spin_loop();
                    }
                    match heap.publish("key", &mine) {
                        Ok(()) => outcome[i].set(WON),
                        Err(Error::AlreadyExists { .. }) => outcome[i].set(TAKEN),
                        Err(e) => panic!("{e}"),
                    }
                })
                .unwrap()
            })
            .collect();
        go.set(1);
        for c in children {
            c.join().unwrap();
        }
        let outcome = outcome.to_vec();
        let winners: Vec<_> = (0..CHILDREN).filter(|&i| outcome[i] == WON).collect();
        let losers = outcome.iter().filter(|&&o| o == TAKEN).count();
        assert_eq!(
            (winners.len(), losers),
            (1, CHILDREN - 1),
            "round {round}: {outcome:?}"
        );
        let published: RawValue<usize> = heap.lookup("key").unwrap();
        assert_eq!(published.get(), winners[0]);
        assert_eq!(heap.keys().unwrap(), ["key"]);
    }
}

#[test]
fn forked_children_publish_and_look_up() {
    let heap = Heap::new(1 << 16).unwrap();
    in_child({
        let heap = heap.clone();
        move || {
            let v = Value::new_in(&heap, 41u32).unwrap();
            heap.publish("from-child", &v).unwrap();
        }
    });
    let v: Value<u32> = heap.lookup("from-child").unwrap();
    assert_eq!(v.update(|x| x + 1), 42);
    in_child(move || {
        let v: Value<u32> = heap.lookup("from-child").unwrap();
        assert_eq!(v.get(), 42);
    });
}

// ---------------------------------------------------------------------------------------
// Names, errors and segments that are not heaps
// ---------------------------------------------------------------------------------------

#[test]
fn bad_names_are_refused_before_any_system_call() {
    let long = format!("/{}", "n".repeat(256));
    for bad in [
        "", "a", "no-slash", "/", "//", "/a/b", "a/b", "/a/", &long, "/a\0b", "/.", "/..",
    ] {
        assert!(
            matches!(Heap::create(bad, 4096), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(Heap::open(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(Heap::unlink(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
    // The longest valid name: 255 bytes after the slash; dots are fine inside.
    let name = format!(
        "/{}-{}",
        std::process::id(),
        "n".repeat(254 - std::process::id().to_string().len())
    );
    assert_eq!(name.len(), 256);
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 4096).unwrap();
    assert!(Heap::open(&name).is_ok());
    drop(heap);
    assert!(!exists(&name));
    let dots = unique("sct.a..b");
    let _cleanup_dots = Cleanup(&dots);
    Heap::create(&dots, 4096).unwrap();
    assert!(!exists(&dots));
}

#[test]
fn duplicate_missing_and_permissions() {
    let name = unique("sct-dup");
    let _cleanup = Cleanup(&name);
    assert!(matches!(Heap::open(&name), Err(Error::NotFound { .. })));
    assert!(matches!(Heap::unlink(&name), Err(Error::NotFound { .. })));
    let heap = Heap::create(&name, 1 << 16).unwrap();
    assert!(matches!(
        Heap::create(&name, 1 << 16),
        Err(Error::AlreadyExists { .. })
    ));
    let meta = fs::metadata(path(&name)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // The whole capacity is reserved: the file's pages are allocated from the start.
    assert!(heap.capacity() >= 1 << 16);
    assert!(meta.len() > 1 << 16);
    assert!(meta.blocks() * 512 >= meta.len());
}

#[test]
fn more_than_dev_shm_holds_is_out_of_memory_now() {
    // SAFETY: `statvfs` is plain data, valid when zeroed; the call fills it in.
    let mut fs_stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `fs_stat` is a valid out-pointer.
    let rc = unsafe { libc::statvfs(c"/dev/shm".as_ptr(), &mut fs_stat) };
    assert_eq!(rc, 0);
    let size = fs_stat.f_blocks as usize * fs_stat.f_frsize as usize;
    if size == 0 {
        return; // an unlimited /dev/shm: nothing is "more than it holds"
    }
    let name = unique("sct-huge");
    let _cleanup = Cleanup(&name);
    let err = Heap::create(&name, 2 * size).unwrap_err();
    assert!(matches!(err, Error::OutOfMemory { .. }), "{err:?}");
    assert!(!exists(&name), "a failed create leaves no name behind");
}

/// Writes `bytes` as the segment `name`, as a foreign program would.
fn foreign_segment(name: &str, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path(name))
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn foreign_truncated_and_empty_segments() {
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: [(&str, &[u8]); 5] = [
        ("garbage", &garbage),
        (
            "text",
            b"this is not a heap, it is a text file that happens to live in /dev/shm\n",
        ),
        ("short", b"SHCTYPES\x01\0\0\0"),
        ("ones", &[0xff; 4096]),
        ("almost", &[b"SHCTYPES".as_slice(), &[0xff; 200]].concat()),
    ];
    for (what, bytes) in cases {
        let name = unique(&format!("sct-foreign-{what}"));
        let _cleanup = Cleanup(&name);
        foreign_segment(&name, bytes);
        assert!(
            matches!(Heap::open(&name), Err(Error::InvalidHeap)),
            "{what}"
        );
    }

    // A real heap, cut short by someone else.
    let name = unique("sct-truncated");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    heap.publish("v", &RawValue::new_in(&heap, 1u8).unwrap())
        .unwrap();
    heap.persist();
    drop(heap);
    for len in [(1 << 16) + 64, 4096, 100] {
        fs::OpenOptions::new()
            .write(true)
            .open(path(&name))
            .unwrap()
            .set_len(len)
            .unwrap();
        assert!(
            matches!(Heap::open(&name), Err(Error::InvalidHeap)),
            "{len}"
        );
    }

    // An empty segment is a heap still being created.
    let name = unique("sct-empty");
    let _cleanup = Cleanup(&name);
    foreign_segment(&name, b"");
    assert!(matches!(Heap::open(&name), Err(Error::NotFound { .. })));
    assert!(matches!(
        Heap::create(&name, 4096),
        Err(Error::AlreadyExists { .. })
    ));
}

/// Makes a FIFO at `/dev/shm/<name>`, as any local user may.
fn mkfifo(name: &str) {
    let c = CString::new(path(name)).unwrap();
    // SAFETY: `c` is a NUL-terminated path; mkfifo reads nothing else.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[test]
fn a_fifo_in_place_of_the_name_blocks_neither_drop_nor_open() {
    let name = unique("sct-fifo");
    let _cleanup = Cleanup(&name); // `shm_unlink` removes a FIFO too
                                   // Run where a hang can be ended: a forked child, killed if it takes far too long.
    let child = Process::spawn({
        let name = name.clone();
        move || {
            let heap = Heap::create(&name, 4096).unwrap();
            Heap::unlink(&name).unwrap();
            mkfifo(&name);
            // The creator's last handle opens the name to compare identities: a FIFO
            // opened read-only would block until a writer came.
            drop(heap);
            assert!(exists(&name), "someone else's FIFO is left alone");
            assert!(matches!(Heap::open(&name), Err(Error::InvalidHeap)));
            assert!(matches!(
                Heap::create(&name, 4096),
                Err(Error::AlreadyExists { .. })
            ));
        }
    })
    .unwrap();
    let pid = child.pid() as libc::pid_t;
    let mut child = KillProcessOnDrop(Some(child));
    // A bound for a hang, not a timing assertion: the child takes milliseconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our unreaped child; `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            child.0 = None; // reaped
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "the child failed: status {status:#x}"
            );
            break;
        }
        assert_eq!(rc, 0, "waitpid: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            let status = child.kill_and_join();
            panic!("the child hung on the FIFO: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Opened here too (inline: with the fix it returns at once).
    assert!(matches!(Heap::open(&name), Err(Error::InvalidHeap)));
}

/// Removes a path made by a test, whatever it is.
struct RemovePath(String);

impl Drop for RemovePath {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn a_directory_or_a_symbolic_link_is_not_a_heap() {
    let dir = unique("sct-dir");
    let _rm_dir = RemovePath(path(&dir));
    fs::create_dir(path(&dir)).unwrap();
    let r = Heap::open(&dir);
    assert!(matches!(r, Err(Error::InvalidHeap)), "{r:?}");

    // A link to a real heap: `shm_open` does not follow it.
    let target = unique("sct-target");
    let _cleanup = Cleanup(&target);
    let _heap = Heap::create(&target, 4096).unwrap();
    let link = unique("sct-link");
    let _rm_link = RemovePath(path(&link));
    std::os::unix::fs::symlink(path(&target), path(&link)).unwrap();
    assert!(matches!(Heap::open(&link), Err(Error::InvalidHeap)));
}

#[test]
fn a_sparse_segment_with_a_valid_header_opens() {
    // Holes are what freed large blocks leave: their pages go back to the system.
    let name = unique("sct-holes");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 20).unwrap();
    let blocks = || fs::metadata(path(&name)).unwrap().blocks();
    let reserved = blocks();
    assert!(
        reserved * 512 >= 1 << 20,
        "create reserves the whole capacity"
    );
    let big = RawArray::from_slice_in(&heap, &[0xABu8; 256 << 10]).unwrap();
    drop(big);
    let holed = blocks();
    assert!(
        holed * 512 <= reserved * 512 - (256 << 10),
        "the freed array's pages went back: {reserved} -> {holed} blocks"
    );
    // Such a heap opens, and its hole is memory like any other: zero, then reused.
    let opened = Heap::open(&name).unwrap();
    let again = RawArray::<u8>::zeroed_in(&opened, 256 << 10).unwrap();
    assert!(
        again.to_vec().iter().all(|&b| b == 0),
        "a hole reads as zero"
    );
    again[(256 << 10) - 1].set(7);
    assert_eq!(again[(256 << 10) - 1].get(), 7);
    assert!(blocks() > holed, "reused, the pages are reserved again");
    drop((again, opened, heap));

    // A real heap's bytes: a valid header, an empty directory.
    let name = unique("sct-model");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let bytes = fs::read(path(&name)).unwrap();
    drop(heap);

    // Copied in full, they are a heap …
    let full = unique("sct-full");
    let _cleanup_full = Cleanup(&full);
    foreign_segment(&full, &bytes);
    assert!(Heap::open(&full).is_ok());

    // … and with holes too: the header alone written into a file of the same size.
    let sparse = unique("sct-sparse");
    let _cleanup_sparse = Cleanup(&sparse);
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path(&sparse))
        .unwrap();
    f.set_len(bytes.len() as u64).unwrap();
    f.write_all_at(&bytes[..512], 0).unwrap();
    let meta = f.metadata().unwrap();
    assert!(meta.blocks() * 512 < meta.len(), "the file is sparse");
    let heap = Heap::open(&sparse).unwrap();
    assert_eq!((heap.capacity(), heap.used()), (1 << 16, 0));
    let v = RawValue::new_in(&heap, 0x1234_5678u64).unwrap();
    heap.publish("v", &v).unwrap();
    let seen: RawValue<u64> = Heap::open(&sparse).unwrap().lookup("v").unwrap();
    assert_eq!(seen.get(), 0x1234_5678);
}

// ---------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------

#[test]
fn the_name_goes_with_the_creators_last_handle() {
    let name = unique("sct-life");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let v = RawValue::new_in(&heap, 1u8).unwrap();
    heap.publish("v", &v).unwrap();
    let looked_up: RawValue<u8> = heap.lookup("v").unwrap();
    let opened = Heap::open(&name).unwrap();
    drop(heap);
    assert!(exists(&name), "object handles keep it");
    drop(v);
    assert!(exists(&name), "looked-up handles keep it");
    drop(opened);
    assert!(exists(&name), "an opened heap is not the creator's");
    drop(looked_up);
    assert!(!exists(&name));
}

#[test]
fn an_opened_heap_never_unlinks() {
    let name = unique("sct-opened");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 4096).unwrap();
    let opened = Heap::open(&name).unwrap();
    drop(heap);
    assert!(!exists(&name));
    // The memory stays usable after the name is gone.
    let v = RawValue::new_in(&opened, 3u16).unwrap();
    assert_eq!(v.get(), 3);
}

#[test]
fn a_child_that_creates_and_drops_removes_the_name() {
    let name = unique("sct-child");
    let _cleanup = Cleanup(&name);
    in_child({
        let name = name.clone();
        move || {
            let heap = Heap::create(&name, 1 << 16).unwrap();
            let v = Value::new_in(&heap, 1u8).unwrap();
            heap.publish("v", &v).unwrap();
            drop(v);
            drop(heap);
        }
    });
    assert!(!exists(&name));
    assert!(matches!(Heap::open(&name), Err(Error::NotFound { .. })));
}

#[test]
fn a_creator_that_dies_leaves_a_stale_heap() {
    let name = unique("sct-stale");
    let _cleanup = Cleanup(&name);
    let child = Process::spawn({
        let name = name.clone();
        move || {
            let heap = Heap::create(&name, 1 << 16).unwrap();
            heap.publish("v", &RawValue::new_in(&heap, 5u8).unwrap())
                .unwrap();
            std::mem::forget(heap); // as if killed: no destructor runs
        }
    })
    .unwrap();
    let pid = child.pid();
    child.join().unwrap();
    let stale = Heap::open(&name).unwrap();
    assert_eq!(stale.creator_pid(), Some(pid));
    assert_eq!(stale.lookup::<RawValue<u8>>("v").unwrap().get(), 5);
    Heap::unlink(&name).unwrap();
    assert!(!exists(&name));
}

#[test]
fn a_forked_child_of_the_creator_does_not_unlink() {
    let name = unique("sct-fork");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let v = RawValue::new_in(&heap, 1u8).unwrap();
    let status = child_status({
        let (heap, v) = (heap.clone(), v.clone());
        move || {
            v.set(2);
            drop(v);
            drop(heap);
        }
    });
    assert!(status.success());
    assert!(exists(&name));
    assert!(Heap::open(&name).is_ok());
    assert_eq!(v.get(), 2);
    drop((heap, v));
    assert!(!exists(&name));
}

#[test]
fn persist_keeps_and_unlink_removes() {
    let name = unique("sct-persist");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 4096).unwrap();
    heap.persist();
    drop(heap);
    assert!(exists(&name));
    let again = Heap::open(&name).unwrap();
    again.persist(); // no effect on an opened heap
    drop(again);
    Heap::unlink(&name).unwrap();
    assert!(!exists(&name));
}

#[test]
fn only_the_same_segment_is_unlinked() {
    let name = unique("sct-same");
    let _cleanup = Cleanup(&name);
    let first = Heap::create(&name, 4096).unwrap();
    Heap::unlink(&name).unwrap();
    let second = Heap::create(&name, 4096).unwrap();
    assert_ne!(first, second);
    drop(first); // the name is the second heap's now: left alone
    assert_eq!(Heap::open(&name).unwrap(), second);
    drop(second);
    assert!(!exists(&name));
}

#[test]
fn locks_are_not_handed_to_another_pid_namespace() {
    let name = unique("pidns");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    heap.publish("lock", &Lock::new_in(&heap).unwrap()).unwrap();
    heap.publish("value", &Value::new_in(&heap, 5u32).unwrap())
        .unwrap();
    heap.publish("raw", &RawValue::new_in(&heap, 7u32).unwrap())
        .unwrap();
    let name2 = name.clone();
    // The child moves its future children into a new PID namespace (needs
    // CAP_SYS_ADMIN: without it there is nothing to test, and the child says so with 77).
    let status = child_status(move || {
        // SAFETY: unshare only changes which PID namespace this process's children get.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            std::process::exit(77);
        }
        let status = child_status(move || {
            let heap = Heap::open(&name2).unwrap();
            assert!(matches!(
                heap.lookup::<Lock>("lock"),
                Err(Error::ForeignPidNamespace)
            ));
            assert!(matches!(
                heap.lookup::<Value<u32>>("value"),
                Err(Error::ForeignPidNamespace)
            ));
            assert_eq!(heap.lookup::<RawValue<u32>>("raw").unwrap().get(), 7);
            assert!(matches!(
                heap.publish("lock2", &Lock::new_in(&heap).unwrap()),
                Err(Error::ForeignPidNamespace)
            ));
        });
        assert!(status.success(), "{status:?}");
    });
    match status.code() {
        Some(77) => eprintln!("skipped: unshare(CLONE_NEWPID) is not permitted here"),
        _ => assert!(status.success(), "{status:?}"),
    }
    // Back in our own namespace, everything is handed out.
    let opened = Heap::open(&name).unwrap();
    assert!(opened.lookup::<Lock>("lock").is_ok());
}

/// Runs `f` in a forked child that first moved into new namespaces (`unshare(flags)`)
/// and then forked again, so that `f` runs in a grandchild: a new PID or time namespace
/// applies only to children created after `unshare`. Returns `false` if the kernel
/// refused `unshare` (EPERM, EINVAL: not permitted or not supported here), after saying
/// so; panics if anything else failed.
fn in_new_namespaces(
    flags: libc::c_int,
    what: &str,
    setup: fn() -> bool,
    f: impl FnOnce() + Send + 'static,
) -> bool {
    const REFUSED: i32 = 77;
    let status = child_status(move || {
        // SAFETY: unshare changes only this (single-threaded, forked) process's
        // namespaces and those of its future children.
        if unsafe { libc::unshare(flags) } != 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EPERM | libc::EINVAL | libc::ENOSPC) => std::process::exit(REFUSED),
                _ => panic!("unshare: {e}"),
            }
        }
        if !setup() {
            std::process::exit(REFUSED);
        }
        let status = child_status(f);
        assert!(status.success(), "the grandchild failed: {status:?}");
    });
    if status.code() == Some(REFUSED) {
        eprintln!("skipped: the kernel refused {what} here");
        return false;
    }
    assert!(status.success(), "{status:?}");
    true
}

/// A heap with a lock, a value (with its lock) and a raw value, for namespace tests.
fn heap_with_locks(name: &str) -> Heap {
    let heap = Heap::create(name, 1 << 16).unwrap();
    heap.publish("lock", &Lock::new_in(&heap).unwrap()).unwrap();
    heap.publish("value", &Value::new_in(&heap, 5u32).unwrap())
        .unwrap();
    heap.publish("raw", &RawValue::new_in(&heap, 7u32).unwrap())
        .unwrap();
    heap
}

/// What a process in another namespace gets: `foreign` for everything with a lock,
/// and the raw value.
fn locks_refused_as(name: &str, foreign: fn(&Error) -> bool) {
    let heap = Heap::open(name).unwrap();
    let lock = heap.lookup::<Lock>("lock").map(drop).unwrap_err();
    assert!(foreign(&lock), "{lock:?}");
    let value = heap.lookup::<Value<u32>>("value").map(drop).unwrap_err();
    assert!(foreign(&value), "{value:?}");
    assert_eq!(heap.lookup::<RawValue<u32>>("raw").unwrap().get(), 7);
    let publish = heap.publish("lock2", &Lock::new_in(&heap).unwrap());
    assert!(foreign(&publish.unwrap_err()));
}

#[test]
fn locks_are_not_handed_to_another_time_namespace() {
    let name = unique("timens");
    let _cleanup = Cleanup(&name);
    let _heap = heap_with_locks(&name);
    let name2 = name.clone();
    // A new user namespace makes a new time namespace possible without privileges
    // (`unshare -U -T`), as an unprivileged attacker would do it.
    let tested = in_new_namespaces(
        libc::CLONE_NEWUSER | libc::CLONE_NEWTIME,
        "unshare(CLONE_NEWUSER | CLONE_NEWTIME)",
        || true,
        move || {
            let ours = fs::metadata("/proc/self/ns/time").unwrap().ino();
            let parents = fs::metadata(format!(
                "/proc/{}/ns/time",
                std::os::unix::process::parent_id()
            ));
            assert_ne!(
                Some(ours),
                parents.ok().map(|m| m.ino()),
                "a new time namespace"
            );
            locks_refused_as(&name2, |e| matches!(e, Error::ForeignTimeNamespace));
        },
    );
    if tested {
        eprintln!("tested: a grandchild in a new time namespace");
    }
    // Back in our own namespaces, everything is handed out.
    let opened = Heap::open(&name).unwrap();
    assert!(opened.lookup::<Lock>("lock").is_ok());
    assert!(opened.lookup::<Value<u32>>("value").is_ok());
}

/// Hides `/proc` behind an empty file system, in this process's own mount namespace.
fn hide_proc() -> bool {
    // SAFETY: plain mount(2) calls with valid NUL-terminated strings; they change only
    // this process's private mount namespace (made private first, so nothing
    // propagates back).
    unsafe {
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return false;
        }
    }
    // SAFETY: as above.
    let rc = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/proc".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    rc == 0
}

#[test]
fn locks_are_refused_where_the_namespaces_cannot_be_read() {
    let name = unique("nsunknown");
    let _cleanup = Cleanup(&name);
    let _heap = heap_with_locks(&name);
    let name2 = name.clone();
    // Same PID and time namespaces as the creator, but no /proc to prove it with: the
    // check fails closed.
    let tested = in_new_namespaces(
        libc::CLONE_NEWUSER | libc::CLONE_NEWNS,
        "unshare(CLONE_NEWUSER | CLONE_NEWNS) and a tmpfs over /proc",
        hide_proc,
        move || {
            assert!(
                fs::metadata("/proc/self/ns/pid").is_err(),
                "/proc is hidden"
            );
            locks_refused_as(&name2, |e| matches!(e, Error::ForeignPidNamespace));
        },
    );
    if tested {
        eprintln!("tested: a grandchild without /proc");
    }
    let opened = Heap::open(&name).unwrap();
    assert!(opened.lookup::<Lock>("lock").is_ok());
}

#[test]
fn errors_name_the_heap_or_the_key() {
    use sharedctypes::NameKind;

    let name = unique("sct-names");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let named_heap = NameKind::Key {
        heap: Some(name.clone()),
    };

    // Heap names.
    let taken = Heap::create(&name, 4096).unwrap_err();
    assert!(
        matches!(&taken, Error::AlreadyExists { name: n, kind: NameKind::Heap } if *n == name),
        "{taken:?}"
    );
    assert!(taken
        .to_string()
        .starts_with(&format!("heap \"{name}\" already exists")));
    let missing = format!("{name}-missing");
    for e in [
        Heap::open(&missing).unwrap_err(),
        Heap::unlink(&missing).unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::NotFound { name: n, kind: NameKind::Heap } if *n == missing),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .starts_with(&format!("heap \"{missing}\" not found")));
    }
    let bad = Heap::open("no-slash").unwrap_err();
    assert!(matches!(
        &bad,
        Error::InvalidName { name: n, kind: NameKind::Heap, .. } if n == "no-slash"
    ));
    assert!(
        bad.to_string()
            .starts_with("invalid heap name \"no-slash\": it does not start with '/'"),
        "{bad}"
    );
    let bad = Heap::create("/a/b", 4096).unwrap_err();
    assert!(bad
        .to_string()
        .contains("\"/a/b\": it has a '/' after the first"));

    // Keys, in a named heap.
    let x = RawValue::new_in(&heap, 1u8).unwrap();
    heap.publish("x", &x).unwrap();
    let e = heap.lookup::<RawValue<u8>>("point").unwrap_err();
    assert!(
        matches!(&e, Error::NotFound { name: k, kind } if k == "point" && *kind == named_heap),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("key \"point\" not found in heap \"{name}\"")),
        "{e}"
    );
    let e = heap.publish("x", &x).unwrap_err();
    assert!(
        matches!(&e, Error::AlreadyExists { name: k, kind } if k == "x" && *kind == named_heap)
    );
    assert!(e
        .to_string()
        .starts_with(&format!("key \"x\" already exists in heap \"{name}\"")));
    let long = "k".repeat(256);
    let e = heap.publish(&long, &x).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidName { name: k, kind, .. } if *k == long && *kind == named_heap)
    );
    assert!(e.to_string().contains("it is longer than 255 bytes"));
    let e = heap.lookup::<RawValue<u8>>("").unwrap_err();
    assert!(matches!(&e, Error::InvalidName { name: k, .. } if k.is_empty()));
    assert!(e.to_string().starts_with("invalid key \"\""), "{e}");

    // Keys, in an anonymous heap.
    let anonymous = Heap::new(4096).unwrap();
    let e = anonymous.lookup::<RawValue<u8>>("jobs").unwrap_err();
    assert!(matches!(
        &e,
        Error::NotFound { name: k, kind: NameKind::Key { heap: None } } if k == "jobs"
    ));
    assert!(e
        .to_string()
        .starts_with("key \"jobs\" not found in an anonymous heap"));
}

#[test]
fn objects_and_locks_published_twice_are_not_aliases() {
    let name = unique("sct-twice");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    // Two values behind one lock, the lock also published bare, a value's object
    // published raw beside it, and an array under two keys: all legitimate sharing.
    let a = synchronized_with(RawValue::new_in(&heap, 1u64).unwrap(), lock.clone());
    let b = synchronized_with(RawValue::new_in(&heap, 2u64).unwrap(), lock.clone());
    let arr = RawArray::from_slice_in(&heap, &[1u8, 2, 3]).unwrap();
    heap.publish("a", &a).unwrap();
    heap.publish("b", &b).unwrap();
    heap.publish("lock", &lock).unwrap();
    heap.publish("a-raw", a.get_obj()).unwrap();
    heap.publish("arr", &arr).unwrap();
    heap.publish("arr-again", &arr).unwrap();
    let opened = Heap::open(&name).unwrap();
    let a2: Value<u64, Lock> = opened.lookup("a").unwrap();
    let b2: Value<u64, Lock> = opened.lookup("b").unwrap();
    assert!(a2.get_lock() == b2.get_lock());
    assert_eq!(opened.lookup::<RawValue<u64>>("a-raw").unwrap().get(), 1);
    assert_eq!(
        opened.lookup::<RawArray<u8>>("arr-again").unwrap().to_vec(),
        [1, 2, 3]
    );
}
