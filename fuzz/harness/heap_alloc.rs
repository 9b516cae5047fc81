//! The allocator on an arbitrary segment: `Heap::open`, then a script of allocations,
//! drops (which free blocks), clones, publishes, lookups, unpublishes and walks of the
//! heap (`used`, `live_objects`) in it, as another process of the same user could
//! leave it: live and freed blocks, size classes' free lists, the back end's list of
//! free runs, its `dirty` flag and lock, all damaged at will.
//!
//! Input: one flags byte (as `open_lookup`'s: `segment.rs`; bit 4 pads the segment to a
//! 1 MiB heap, so that a small input has room for large blocks), one byte `n`, `n`
//! bytes of script, then the segment's bytes. The script is read as operations of one
//! byte each, most followed by an argument byte (see [`Op`]).
//!
//! Properties: nothing crashes, hangs or panics, and the walks stay inside the heap:
//! `used()` is at most `capacity()`, and counts at least 16 bytes (a block's header)
//! per object of `live_objects()`. (That an allocation never overlaps another one
//! cannot be asked of a damaged heap: a process that writes the heap at will can make
//! the allocator hand one range out twice, which the library documents.)

use sharedctypes::{
    synchronized_with, Array, Event, Heap, Lock, Publish, RLock, RawArray, RawValue, Value,
};

// Both heap harnesses include it: the regression tests load it twice, as two modules.
#[allow(clippy::duplicate_mod)]
#[path = "segment.rs"]
mod segment;

/// Most handles the script holds at once (older ones are dropped first).
const MAX_HANDLES: usize = 64;
/// Keys the script publishes under, besides those the directory lists.
const KEYS: [&str; 4] = ["a", "b", "k0", "fuzz"];

/// A handle the script holds.
enum Handle {
    Bytes(RawArray<u8>),
    Word(RawValue<u32>),
    Value(Value<i64>),
    Array(Array<u16, Lock>),
    Lock(Lock),
    RLock(RLock),
    Event(Event),
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        match self {
            Handle::Bytes(h) => Handle::Bytes(h.clone()),
            Handle::Word(h) => Handle::Word(h.clone()),
            Handle::Value(h) => Handle::Value(h.clone()),
            Handle::Array(h) => Handle::Array(h.clone()),
            Handle::Lock(h) => Handle::Lock(h.clone()),
            Handle::RLock(h) => Handle::RLock(h.clone()),
            Handle::Event(h) => Handle::Event(h.clone()),
        }
    }
}

impl Handle {
    fn publish(&self, heap: &Heap, key: &str) {
        let r = match self {
            Handle::Bytes(h) => heap.publish(key, h),
            Handle::Word(h) => heap.publish(key, h),
            Handle::Value(h) => heap.publish(key, h),
            Handle::Array(h) => heap.publish(key, h),
            Handle::Lock(h) => heap.publish(key, h),
            Handle::RLock(h) => heap.publish(key, h),
            Handle::Event(h) => heap.publish(key, h),
        };
        if let Err(e) = r {
            let _ = e.to_string();
        }
    }

    /// Writes `byte` where the handle's memory starts and ends (all of it for small
    /// objects), without blocking.
    fn touch(&self, byte: u8) {
        match self {
            Handle::Bytes(a) => {
                if let (Some(first), Some(last)) = (a.first(), a.last()) {
                    first.set(byte);
                    last.set(byte);
                }
            }
            Handle::Word(v) => v.set(u32::from_ne_bytes([byte; 4])),
            Handle::Value(v) => {
                let g = v.get_lock().try_acquire();
                v.get_obj().set(i64::from(byte));
                drop(g);
            }
            Handle::Array(a) => {
                for x in a.get_obj().iter() {
                    x.set(u16::from(byte));
                }
            }
            Handle::Lock(l) => drop(l.try_acquire()),
            Handle::RLock(l) => drop(l.try_acquire()),
            Handle::Event(e) => {
                if byte & 1 == 0 {
                    e.set();
                } else {
                    e.clear();
                }
            }
        }
    }
}

/// Looks `key` up as `H`, keeping what comes back.
fn lookup<H: Publish>(heap: &Heap, key: &str, wrap: fn(H) -> Handle) -> Option<Handle> {
    match heap.lookup::<H>(key) {
        Ok(h) => Some(wrap(h)),
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// The walks' bounds.
fn walk(heap: &Heap) {
    let (capacity, used, live) = (heap.capacity(), heap.used(), heap.live_objects());
    assert!(used <= capacity, "used() {used} > capacity() {capacity}");
    assert!(
        live.saturating_mul(16) <= used,
        "{live} live objects in {used} bytes"
    );
    let _ = heap.available();
}

/// The script's operations: byte `b` is `OPS[b % 12]`, so `op as u8` stands for `op`.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// A byte array of `8 * arg + 1` bytes: the small size classes.
    Small,
    /// A byte array of `256 * arg + 1` bytes: the larger classes, and the back end's
    /// blocks above them (32 KiB and up).
    Medium,
    /// A byte array of `(arg % 16 + 1) * 64` KiB: large, page-granular blocks.
    Large,
    /// Drops handle `arg` (freeing its blocks if it was the last).
    Drop,
    /// Clones handle `arg` (one more count).
    Clone,
    /// Publishes the newest handle under key `arg`.
    Publish,
    /// Looks key `arg` up, as the kind `arg >> 4` names.
    Lookup,
    /// Unpublishes key `arg` (the directory's counts go).
    Unpublish,
    /// Walks the heap: `used`, `live_objects`; lists the keys.
    Walk,
    /// Makes a synchronized or coordination object (two blocks for a `Value` or an
    /// `Array`), by `arg % 6`.
    Object,
    /// Writes `arg` into every handle held.
    Touch,
    /// Drops every handle held.
    DropAll,
}

const OPS: [Op; 12] = [
    Op::Small,
    Op::Medium,
    Op::Large,
    Op::Drop,
    Op::Clone,
    Op::Publish,
    Op::Lookup,
    Op::Unpublish,
    Op::Walk,
    Op::Object,
    Op::Touch,
    Op::DropAll,
];

/// How far an input got: whether the heap opened, and how many operations of the
/// script ran, allocations that worked, and handles that lookups gave out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub opened: bool,
    pub ops: usize,
    pub allocated: usize,
    pub found: usize,
}

/// Runs one input; panics on a broken property.
pub fn run(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let Some((&flags, rest)) = data.split_first() else {
        return reached;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return reached;
    };
    let (script, segment) = rest.split_at(usize::from(n).min(rest.len()));
    let segment = segment::prepare(flags, segment);
    let Ok(heap) = Heap::open(&segment.name) else {
        return reached;
    };
    reached.opened = true;
    walk(&heap);
    let listed = heap.keys().unwrap_or_default();
    let key = |arg: u8| -> String {
        let i = usize::from(arg & 0xf);
        match listed.get(i) {
            Some(k) => k.clone(),
            None => KEYS[i % KEYS.len()].to_owned(),
        }
    };

    let mut held: Vec<Handle> = Vec::new();
    let mut bytes = script.iter().copied();
    while let Some(b) = bytes.next() {
        let op = OPS[usize::from(b) % OPS.len()];
        let arg = match op {
            Op::Walk | Op::DropAll => 0,
            _ => bytes.next().unwrap_or(0),
        };
        reached.ops += 1;
        let new = match op {
            Op::Small => RawArray::<u8>::zeroed_in(&heap, 8 * usize::from(arg) + 1)
                .ok()
                .map(Handle::Bytes),
            Op::Medium => RawArray::<u8>::zeroed_in(&heap, 256 * usize::from(arg) + 1)
                .ok()
                .map(Handle::Bytes),
            Op::Large => RawArray::<u8>::zeroed_in(&heap, (usize::from(arg % 16) + 1) << 16)
                .ok()
                .map(Handle::Bytes),
            Op::Object => match arg % 6 {
                0 => Value::new_in(&heap, i64::from(arg)).ok().map(Handle::Value),
                1 => RawArray::<u16>::zeroed_in(&heap, usize::from(arg))
                    .and_then(|a| Ok(synchronized_with(a, Lock::new_in(&heap)?)))
                    .ok()
                    .map(Handle::Array),
                2 => Lock::new_in(&heap).ok().map(Handle::Lock),
                3 => RLock::new_in(&heap).ok().map(Handle::RLock),
                4 => Event::new_in(&heap).ok().map(Handle::Event),
                _ => RawValue::new_in(&heap, u32::from(arg))
                    .ok()
                    .map(Handle::Word),
            },
            Op::Drop => {
                if !held.is_empty() {
                    held.remove(usize::from(arg) % held.len());
                }
                None
            }
            Op::Clone => held.get(usize::from(arg) % held.len().max(1)).cloned(),
            Op::Publish => {
                if let Some(h) = held.last() {
                    h.publish(&heap, &key(arg));
                }
                None
            }
            Op::Lookup => {
                let k = key(arg);
                let found = match arg >> 4 {
                    0..=3 => lookup(&heap, &k, Handle::Bytes),
                    4..=5 => lookup(&heap, &k, Handle::Word),
                    6..=7 => lookup(&heap, &k, Handle::Value),
                    8..=9 => lookup(&heap, &k, Handle::Array),
                    10..=11 => lookup(&heap, &k, Handle::Lock),
                    12..=13 => lookup(&heap, &k, Handle::RLock),
                    _ => lookup(&heap, &k, Handle::Event),
                };
                reached.found += usize::from(found.is_some());
                found
            }
            Op::Unpublish => {
                let _ = heap.unpublish(&key(arg));
                None
            }
            Op::Walk => {
                walk(&heap);
                let _ = heap.keys();
                None
            }
            Op::Touch => {
                held.iter().for_each(|h| h.touch(arg));
                None
            }
            Op::DropAll => {
                held.clear();
                None
            }
        };
        if let Some(h) = new {
            if matches!(op, Op::Small | Op::Medium | Op::Large | Op::Object) {
                reached.allocated += 1;
            }
            h.touch(arg);
            if held.len() == MAX_HANDLES {
                held.remove(0);
            }
            held.push(h);
        }
    }
    walk(&heap);
    drop(held);
    walk(&heap);
    let _ = format!("{heap:?}");
    reached
}
