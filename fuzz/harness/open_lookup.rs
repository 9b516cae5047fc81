//! `Heap::open` on an arbitrary segment, then `lookup` of every handle kind (data,
//! locks, coordination objects) under every key it lists, then use of whatever comes
//! back, and a publish into the damaged heap.
//!
//! Input: one flags byte, then the segment's bytes, written to a fresh file in
//! `/dev/shm` (as another process of the same user could write one). Flag bits 0, 1,
//! 2 and 4 patch the segment (`segment.rs`: `total_len`, namespaces, `TID!`/`ST!`,
//! padding); bit 3: wait for locks that are busy (`acquire_timeout` of a few liveness
//! intervals, instead of 0), so that waiters check owners and take over dead ones.
//!
//! Properties: nothing crashes, hangs or blocks (only `try_acquire` and bounded
//! timeouts; a `Value`/`Array` with an `RLock` is read through its convenience calls
//! only while this thread holds that lock; `Event`, `Semaphore` and `Condition` only
//! through calls that return at once or time out at once, a `Barrier` only through its
//! queries, `abort` and `reset`); a `Lock` this thread holds is not handed out to it a
//! second time, and is free again once released; a `Semaphore` this thread took a
//! unit from takes it back; what is published into the damaged heap reads back as
//! written.

use std::cell::Cell;
use std::fmt::Debug;
use std::time::Duration;

use sharedctypes::sync::CHECK_INTERVAL;
use sharedctypes::{
    copy_in, Array, Barrier, BoundedSemaphore, Condition, Error, Event, Heap, Lock, Publish, RLock,
    RawArray, RawValue, Semaphore, Shared, SharedStruct, SharedType, TryLockError, TryLockResult,
    Value,
};

#[derive(Clone, Copy, Debug, SharedStruct)]
#[repr(C)]
struct Inner {
    id: u16,
    flags: [u8; 2],
}

#[derive(Clone, Copy, Debug, SharedStruct)]
#[repr(C)]
struct Record {
    x: f64,
    y: f32,
    count: u32,
    inner: Inner,
    tags: [[i8; 3]; 2],
}

// Both heap harnesses include it: the regression tests load it twice, as two modules.
#[allow(clippy::duplicate_mod)]
#[path = "segment.rs"]
mod segment;

/// Most keys tried per input: every kind is looked up under each.
const MAX_KEYS: usize = 16;

/// Whether `try_acquire` took the lock (with or without an `OwnerDied` report). The
/// one place that knows what `try_acquire` returns.
fn took<G>(r: &TryLockResult<G>) -> bool {
    !matches!(r, Err(TryLockError::WouldBlock))
}

/// Overwrites `s` with a pattern (`0xa5` bytes), so that an object which aliases the
/// heap's header, a directory entry or a lock shows up as damage there.
fn scribble<T: SharedType>(s: &Shared<T>) {
    // SAFETY: `as_ptr` points to a `T` inside a mapping that `s` keeps alive, valid for
    // writes of `size_of::<T>()` bytes; every bit pattern is a valid `T` (`SharedType`);
    // no other thread of this process uses the object meanwhile.
    unsafe { std::ptr::write_bytes(s.as_ptr().cast::<u8>(), 0xa5, size_of::<T>()) };
}

fn raw_value<T: SharedType + Debug>(heap: &Heap, v: &RawValue<T>) {
    let x = v.get();
    v.set(x);
    let _ = format!("{v:?}");
    if let Ok(c) = copy_in(heap, v) {
        let _ = c.get();
    }
    scribble(v);
}

fn raw_array<T: SharedType + Debug>(heap: &Heap, a: &RawArray<T>) {
    let all = a.to_vec();
    assert_eq!(all.len(), a.len());
    for (s, x) in a.iter().zip(all) {
        s.set(x);
    }
    let _ = a.copy_from_slice(&a.to_vec());
    let _ = format!("{a:?}");
    if let Ok(c) = copy_in(heap, a) {
        assert_eq!(c.len(), a.len());
    }
    a.iter().for_each(scribble);
}

fn lock(l: &Lock) {
    let first = l.try_acquire();
    if took(&first) {
        // Mutual exclusion holds however the lock word was damaged.
        assert!(!took(&l.try_acquire()), "a Lock handed out twice");
        assert!(
            !took(&l.acquire_timeout(Duration::ZERO)),
            "a Lock handed out twice"
        );
        drop(first);
        assert!(took(&l.try_acquire()), "a released Lock is not free");
    } else {
        drop(first);
        let _ = l.acquire_timeout(patience());
    }
    let _ = format!("{l:?}");
}

fn rlock(l: &RLock) {
    let first = l.try_acquire();
    if took(&first) {
        // Recursion; refused only at the limit (`u32::MAX` levels), which a damaged
        // count may claim.
        let _ = l.try_acquire();
    }
    drop(first);
    let _ = l.acquire_timeout(patience());
    let _ = format!("{l:?}");
}

/// Runs `f` while this thread holds `l` with room for one more level, so that `f`
/// may use the blocking calls (`Value::get`, `Array::to_vec`, …): they only recurse.
/// (Without the room, a damaged count at `u32::MAX` makes them panic, as
/// `RLock::acquire` documents.) Does nothing if `l` cannot be taken at once.
fn holding(l: &RLock, f: impl FnOnce()) {
    let g = l.try_acquire();
    if took(&g) && took(&l.try_acquire()) {
        f();
    }
}

fn value_lock<T: SharedType + Debug>(heap: &Heap, v: &Value<T, Lock>) {
    let g = v.get_lock().try_acquire();
    raw_value(heap, v.get_obj());
    drop(g);
    lock(v.get_lock());
    let _ = format!("{v:?}");
}

/// Holds the `RLock` first: the convenience calls then only recurse, never wait.
fn value_rlock<T: SharedType + Debug>(heap: &Heap, v: &Value<T, RLock>) {
    holding(v.get_lock(), || {
        v.set(v.get());
        v.update(|x| x);
        if let Ok(inner) = v.lock() {
            inner.set(inner.get());
        }
    });
    raw_value(heap, v.get_obj());
    rlock(v.get_lock());
    let _ = format!("{v:?}");
}

fn array_lock<T: SharedType + Debug>(heap: &Heap, a: &Array<T, Lock>) {
    let g = a.get_lock().try_acquire();
    raw_array(heap, a.get_obj());
    drop(g);
    lock(a.get_lock());
    let _ = format!("{a:?}");
}

fn array_rlock<T: SharedType + Debug>(heap: &Heap, a: &Array<T, RLock>) {
    holding(a.get_lock(), || {
        let all = a.to_vec();
        assert_eq!(all.len(), a.len());
        for (i, x) in all.into_iter().enumerate() {
            assert!(a.get(i).is_ok());
            a.set(i, x).expect("in range");
        }
        assert!(a.get(a.len()).is_err());
    });
    raw_array(heap, a.get_obj());
    rlock(a.get_lock());
    let _ = format!("{a:?}");
}

fn record(r: &Shared<Record>) {
    r.x.set(r.x.get() + 1.0);
    r.inner.id.update(|id| id.wrapping_add(1));
    r.tags[1][2].set(r.tags[0][0].get());
    let _ = r.get();
}

thread_local! {
    /// Handles `lookup` gave out during this thread's current input.
    static FOUND: Cell<usize> = const { Cell::new(0) };
    /// Whether this input waits for busy locks (flags bit 3).
    static WAIT: Cell<bool> = const { Cell::new(false) };
}

/// How long to wait for a lock that `try_acquire` did not get: long enough, when the
/// input asks for it, for a waiter to check the owner's liveness twice (which
/// recovers a dead owner whose id a live thread reuses); otherwise not at all.
fn patience() -> Duration {
    if WAIT.with(Cell::get) {
        3 * CHECK_INTERVAL
    } else {
        Duration::ZERO
    }
}

/// Looks `key` up as `H`; if that works, `with` uses the handle.
fn try_kind<H: Publish>(heap: &Heap, key: &str, with: impl FnOnce(&H)) {
    match heap.lookup::<H>(key) {
        Ok(h) => {
            FOUND.with(|n| n.set(n.get() + 1));
            with(&h)
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn every_kind(heap: &Heap, key: &str) {
    try_kind::<RawValue<u32>>(heap, key, |v| raw_value(heap, v));
    try_kind::<RawValue<Record>>(heap, key, |v| {
        raw_value(heap, v);
        record(v);
    });
    try_kind::<RawArray<u8>>(heap, key, |a| {
        raw_array(heap, a);
        let _ = (a.value(), a.raw());
        let _ = a.set_raw(&a.raw());
        let _ = a.set_value(b"fuzz");
    });
    try_kind::<RawArray<Record>>(heap, key, |a| {
        raw_array(heap, a);
        a.iter().for_each(record);
    });
    try_kind::<Value<i64>>(heap, key, |v| value_rlock(heap, v));
    try_kind::<Value<u32, Lock>>(heap, key, |v| value_lock(heap, v));
    try_kind::<Value<Record>>(heap, key, |v| {
        value_rlock(heap, v);
        record(v.get_obj());
    });
    try_kind::<Array<u16, Lock>>(heap, key, |a| array_lock(heap, a));
    try_kind::<Array<u8>>(heap, key, |a| {
        array_rlock(heap, a);
        holding(a.get_lock(), || {
            let _ = (a.value(), a.raw());
        });
    });
    try_kind::<Array<Record, Lock>>(heap, key, |a| {
        array_lock(heap, a);
        a.get_obj().iter().for_each(record);
    });
    try_kind::<Lock>(heap, key, lock);
    try_kind::<RLock>(heap, key, rlock);
    try_kind::<Event>(heap, key, event);
    try_kind::<Semaphore>(heap, key, |s| {
        semaphore(s.try_acquire(), || s.release(), || s.value());
        let _ = format!("{s:?}");
    });
    try_kind::<BoundedSemaphore>(heap, key, |s| {
        semaphore(s.try_acquire(), || s.release(), || s.value());
        let _ = format!("{s:?}");
    });
    try_kind::<Barrier>(heap, key, barrier);
    try_kind::<Condition>(heap, key, condition);
}

fn event(e: &Event) {
    let was = e.is_set();
    // Another process may change it at any moment; none does here.
    assert_eq!(
        e.wait_timeout(Duration::ZERO),
        was,
        "wait(0) disagrees with is_set"
    );
    e.set();
    assert!(e.is_set(), "a set Event is not set");
    assert!(
        e.wait_timeout(Duration::ZERO),
        "wait on a set Event times out"
    );
    e.clear();
    assert!(!e.is_set(), "a cleared Event is set");
    assert!(
        !e.wait_timeout(Duration::ZERO),
        "wait on a cleared Event succeeds"
    );
    let _ = format!("{e:?}");
}

/// A release either adds a unit or is refused with `SemaphoreOverflow`, changing
/// nothing. (Even after a unit was taken: damaged memory may hold a value above the
/// limit, which a release then refuses.)
fn semaphore(took: bool, release: impl Fn() -> sharedctypes::Result<()>, value: impl Fn() -> u32) {
    let before = value();
    match release() {
        Ok(()) => assert_eq!(
            value(),
            before.wrapping_add(1),
            "a release did not add a unit"
        ),
        Err(Error::SemaphoreOverflow) => {
            assert_eq!(value(), before, "a refused release changed the value")
        }
        Err(e) => panic!("a release (took a unit first: {took}) failed: {e}"),
    }
}

/// Never waits: a damaged barrier may claim any number of waiters.
fn barrier(b: &Barrier) {
    let _ = (b.parties(), b.n_waiting(), b.is_broken());
    b.abort();
    assert!(b.is_broken(), "an aborted Barrier is not broken");
    assert_eq!(b.n_waiting(), 0, "a broken Barrier has waiters");
    b.reset();
    let _ = (b.n_waiting(), b.is_broken());
    let _ = format!("{b:?}");
}

/// Notifies, and waits with a zero timeout under a lock of this process's own.
fn condition(c: &Condition) {
    c.notify_all();
    c.notify_one();
    let _ = c.notify(3);
    if let Ok(lock) = Lock::new_in(c.heap()) {
        if let Ok(g) = lock.acquire() {
            match c.wait_timeout(g, Duration::ZERO) {
                Ok((g, _)) => drop(g),
                Err(died) => drop(died.into_inner()),
            }
        }
    }
    let _ = format!("{c:?}");
}

/// Allocates and publishes in the damaged heap; what was published reads back.
fn publish(heap: &Heap) {
    let _ = (heap.capacity(), heap.used(), heap.available());
    let Ok(v) = RawValue::new_in(heap, 0x5eed_u32) else {
        return;
    };
    if heap.publish("fuzz-new", &v).is_ok() {
        if let Ok(w) = heap.lookup::<RawValue<u32>>("fuzz-new") {
            assert_eq!(w, v);
            assert_eq!(w.get(), 0x5eed);
        }
    }
    if let Ok(l) = Lock::new_in(heap) {
        lock(&l);
        let _ = heap.publish("fuzz-lock", &l);
    }
}

/// How far an input got, so that a regression test can tell that an input still
/// reaches what it is about: whether the segment opened, how many keys it listed (and
/// were tried, at most [`MAX_KEYS`]) and how many handles `lookup` gave out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub opened: bool,
    pub keys: usize,
    pub found: usize,
}

/// Runs one input; panics on a broken property, among them: after every object that
/// `lookup` handed out was overwritten, the heap still has the same keys and still
/// opens (`open`/`lookup` refuse objects that overlap the header, a directory entry or
/// a lock: issue 9, item 4).
pub fn run(data: &[u8]) -> Reached {
    FOUND.with(|n| n.set(0));
    let Some((&flags, segment)) = data.split_first() else {
        return Reached::default();
    };
    WAIT.with(|w| w.set(flags & 8 != 0));
    let segment = segment::prepare(flags, segment);
    let Ok(heap) = Heap::open(&segment.name) else {
        return Reached::default();
    };
    let keys = heap.keys();
    let tried: Vec<&String> = keys.iter().flatten().take(MAX_KEYS).collect();
    for key in &tried {
        every_kind(&heap, key);
    }
    let after = heap.keys();
    assert!(
        after.as_ref().ok() == keys.as_ref().ok(),
        "writes through handles changed the directory: {keys:?}, then {after:?}"
    );
    if let Err(e) = Heap::open(&segment.name) {
        panic!("writes through handles damaged the heap: {e}");
    }
    drop(segment);
    publish(&heap);
    let _ = format!("{heap:?}");
    Reached {
        opened: true,
        keys: tried.len(),
        found: FOUND.with(Cell::get),
    }
}
