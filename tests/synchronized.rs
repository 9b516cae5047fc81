//! Synchronized objects (`Value`, `Array`, `synchronized`) across real processes, and
//! the synchronized parts of CPython's `_TestValue`, `_TestArray` and
//! `_TestSharedCTypes`.

mod common;

use std::time::Duration;

use common::{child_status, in_child, unique};
use sharedctypes::{
    copy, default_heap, synchronized, synchronized_with, typecode, Array, Error, Heap, Lock,
    Process, RLock, RawArray, RawValue, SharedStruct, Value,
};

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Foo {
    x: i32,
    y: f64,
}

#[test]
fn value_get_set_update_and_guard() {
    let v = Value::new(7i32).unwrap();
    assert_eq!(v.get(), 7);
    v.set(8);
    assert_eq!(v.update(|x| x * 2), 16);
    {
        let g = v.lock().unwrap();
        g.set(g.get() + 1);
        // The RLock is re-entrant: per-call access still works while we hold it.
        assert_eq!(v.get(), 17);
    }
    let heap = Heap::new(4096).unwrap();
    let w = Value::new_in(&heap, Foo { x: 1, y: 2.0 }).unwrap();
    assert!(w.get_obj().heap() == &heap);
    assert!(w.get_lock().heap() == &heap);
    w.lock().unwrap().y.set(3.5);
    assert_eq!(w.get(), Foo { x: 1, y: 3.5 });
}

#[test]
fn per_call_locking_makes_update_atomic_across_processes() {
    let v = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let v = v.clone();
            Process::spawn(move || {
                for _ in 0..10_000 {
                    v.update(|x| x + 1);
                }
            })
            .unwrap()
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(v.get(), 40_000);
}

#[test]
fn objects_sharing_one_lock() {
    let lock = Lock::new().unwrap();
    let a = Value::with_lock(1u8, lock.clone()).unwrap();
    let s: Array<u8, Lock> = Array::from_bytes_with_lock(b"abc", lock.clone()).unwrap();
    let b = Array::from_slice_with_lock(&[1.0f32, 2.0], lock.clone()).unwrap();
    let z = Array::<u16, _>::zeroed_with_lock(3, lock.clone()).unwrap();
    assert!(a.get_lock() == &lock && s.get_lock() == &lock);
    assert!(b.get_lock() == z.get_lock());
    let g = lock.acquire().unwrap();
    {
        let (a, b) = (a.clone(), b.clone());
        in_child(move || {
            assert!(a.get_lock().try_acquire().is_err());
            assert!(b
                .get_lock()
                .acquire_timeout(Duration::from_millis(20))
                .is_err());
        });
    }
    drop(g);
    {
        let (a, s, b, z) = (a.clone(), s.clone(), b.clone(), z.clone());
        in_child(move || {
            a.set(2);
            s.set_value(b"xyz").unwrap();
            b.set(1, 5.0).unwrap();
            z.copy_from_slice(&[1, 2, 3]).unwrap();
        });
    }
    assert_eq!(a.get(), 2);
    assert_eq!(s.value(), b"xyz");
    assert_eq!(b.to_vec(), [1.0, 5.0]);
    assert_eq!(z.to_vec(), [1, 2, 3]);
}

#[test]
fn array_index_errors_change_nothing() {
    let a = Array::from_slice(&[1i64, 2, 3]).unwrap();
    assert_eq!(a.len(), 3);
    let err = a.get(3).unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 3, len: 3 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("index 3"));
    assert!(a.set(usize::MAX, 9).is_err());
    assert!(matches!(
        a.copy_from_slice(&[1]),
        Err(Error::LengthMismatch { .. })
    ));
    assert_eq!(a.to_vec(), [1, 2, 3]);
    let empty = Array::<u8>::zeroed(0).unwrap();
    assert!(empty.get(0).is_err());
    assert_eq!(empty.len(), 0);
}

#[test]
fn array_guard_holds_the_lock_for_many_accesses() {
    let a = Array::<f64>::zeroed(100).unwrap();
    {
        let g = a.lock().unwrap();
        for (i, x) in g.iter().enumerate() {
            x.set(i as f64);
        }
        let a2 = a.clone();
        in_child(move || assert!(a2.get_lock().try_acquire().is_err()));
    }
    let sum: f64 = a.lock().unwrap().iter().map(|x| x.get()).sum();
    assert_eq!(sum, 4950.0);
}

#[test]
fn strings_under_the_lock() {
    let s: Array<u8> = Array::from_bytes(b"hello world").unwrap(); // `u8`, not `c_char`
    assert_eq!(s.value(), b"hello world");
    {
        let s = s.clone();
        in_child(move || {
            let g = s.lock().unwrap();
            let upper = g.value().to_ascii_uppercase();
            g.set_value(&upper).unwrap();
        });
    }
    assert_eq!(s.value(), b"HELLO WORLD");
    assert!(matches!(
        s.set_value(b"hello world!"),
        Err(Error::TooLong { .. })
    ));
    assert_eq!(s.raw(), b"HELLO WORLD");
    s.set_raw(b"J").unwrap();
    assert_eq!(s.value(), b"JELLO WORLD");
    let heap = Heap::new(4096).unwrap();
    let t = Array::from_bytes_in(&heap, b"").unwrap();
    assert_eq!(t.value(), b"");
    let g = s.lock().unwrap();
    assert_eq!(g.raw(), b"JELLO WORLD");
    g.set_raw(b"H").unwrap();
    assert!(g.set_value(b"too long for eleven").is_err());
    drop(g);
    assert_eq!(s.value(), b"HELLO WORLD");
}

#[test]
fn synchronized_wraps_raw_objects() {
    let heap = Heap::new(4096).unwrap();
    let raw = RawValue::new_in(&heap, 1.5f64).unwrap();
    let v = synchronized(raw.clone()).unwrap();
    assert!(v.get_obj() == &raw);
    assert!(
        v.get_lock().heap() == &heap,
        "the RLock lives in the raw object's heap"
    );
    v.set(2.5);
    assert_eq!(raw.get(), 2.5);

    let lock = RLock::new().unwrap();
    let arr = synchronized_with(RawArray::<u32>::zeroed_in(&heap, 4).unwrap(), lock.clone());
    assert!(arr.get_lock() == &lock);
    arr.set(3, 7).unwrap();
    assert_eq!(arr.to_vec(), [0, 0, 0, 7]);

    // A heap with room for the raw value, not for its RLock too.
    let full = Heap::new(4096).unwrap();
    let mut fill = Vec::new();
    while let Ok(v) = RawValue::new_in(&full, 0u64) {
        fill.push(v);
    }
    fill.pop();
    let (used, objects) = (full.used(), full.live_objects());
    let raw = RawValue::new_in(&full, 0u64).unwrap();
    assert!(RawValue::new_in(&full, 0u8).is_err(), "the heap is full");
    assert!(matches!(synchronized(raw), Err(Error::OutOfMemory { .. })));
    // The raw value went with the failed call (its only handle), and no lock stayed.
    assert_eq!((full.used(), full.live_objects()), (used, objects));
}

#[test]
fn debug_takes_the_lock_briefly_and_never_deadlocks() {
    let v = Value::new(7i32).unwrap();
    assert_eq!(format!("{v:?}"), "Value<i32>(7)");
    {
        let _g = v.lock().unwrap(); // an RLock: Debug re-enters it
        assert_eq!(format!("{v:?}"), "Value<i32>(7)");
    }
    let lock = Lock::new().unwrap();
    let a = Array::from_slice_with_lock(&[1u8, 2], lock.clone()).unwrap();
    assert_eq!(format!("{a:?}"), "Array<u8>([1, 2])");
    let g = lock.acquire().unwrap(); // a Lock held by this thread: no deadlock
    assert_eq!(format!("{a:?}"), "Array<u8>(<locked>)");
    drop(g);
    // Debug never uses up an owner-death report.
    let l2 = lock.clone();
    assert!(child_status(move || std::mem::forget(l2.acquire())).success());
    assert_eq!(format!("{a:?}"), "Array<u8>(<locked>)");
    assert!(a.lock().is_err(), "the report is still there");
}

#[test]
fn convenience_calls_carry_on_past_a_dead_owner() {
    let v = Value::new(1u32).unwrap();
    let v2 = v.clone();
    assert!(child_status(move || {
        let g = v2.lock().unwrap();
        g.set(99);
        std::mem::forget(g);
    })
    .success());
    assert_eq!(v.get(), 99, "get carries on (and uses up the report)");
    assert!(v.lock().is_ok(), "normal service afterwards");

    let a = Array::from_slice(&[1u8, 2]).unwrap();
    let a2 = a.clone();
    assert!(child_status(move || std::mem::forget(a2.lock())).success());
    match a.lock() {
        Err(died) => {
            let g = died.into_inner();
            assert_eq!(g.len(), 2);
        }
        Ok(_) => panic!("the death was not reported"),
    }
    a.set(0, 5).unwrap();
    assert_eq!(a.to_vec(), [5, 2]);
}

#[test]
fn copy_of_a_synchronized_object_is_raw() {
    let v = Value::new(Foo { x: 3, y: 1.0 }).unwrap();
    let c: RawValue<Foo> = copy(&v).unwrap();
    v.set(Foo { x: 0, y: 0.0 });
    assert_eq!(c.get(), Foo { x: 3, y: 1.0 });
    let a = Array::from_slice(&[1i16, 2]).unwrap();
    let c: RawArray<i16> = copy(&a).unwrap();
    a.set(0, 9).unwrap();
    assert_eq!(c.to_vec(), [1, 2]);
}

#[test]
fn handles_are_cheap_send_sync_clones() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Value<u8>>();
    send_sync::<Value<u8, Lock>>();
    send_sync::<Array<Foo, RLock>>();
}

// ---- CPython Lib/test/_test_multiprocessing.py ----

/// `_TestValue.test_value` with `lock=True` and `test_getobj_getlock`.
#[test]
fn cpython_test_value_and_getobj_getlock() {
    let i = Value::<typecode!('i')>::new(1 << 24).unwrap();
    let d = Value::<typecode!('d')>::new(3.625).unwrap();
    let c = Value::<typecode!('c')>::new(b'x').unwrap();
    {
        let (i, d, c) = (i.clone(), d.clone(), c.clone());
        in_child(move || {
            i.set(-(1 << 24));
            d.set(-4.25);
            c.set(b'y');
        });
    }
    assert_eq!((i.get(), d.get(), c.get()), (-(1 << 24), -4.25, b'y'));

    // val1 = Value('i', 5); val1.get_lock(); val1.get_obj()
    let val1 = Value::new(5i32).unwrap();
    let _lock: &RLock = val1.get_lock();
    let _obj: &RawValue<i32> = val1.get_obj();
    // val2 = Value('i', 5, lock=None) — a fresh lock too.
    let val2 = Value::new(5i32).unwrap();
    assert!(val1.get_lock() != val2.get_lock());
    // lock = Lock(); val3 = Value('i', 5, lock=lock); val3.get_lock() is lock
    let lock = Lock::new().unwrap();
    let val3 = Value::with_lock(5i32, lock.clone()).unwrap();
    assert!(val3.get_lock() == &lock);
    // lock=False gives the raw type: RawValue, which has no get_lock.
}

/// `_TestArray.test_array` with a lock, and `test_getobj_getlock_obj`.
#[test]
fn cpython_test_array_and_getobj_getlock_obj() {
    let seq = [681i32, -35, 12, 1, 0, 42, -7, 16, 99, 3];
    let arr = Array::from_slice(&seq).unwrap();
    assert_eq!(arr.len(), 10);
    assert_eq!(arr.get(3).unwrap(), 1);
    {
        let arr = arr.clone();
        in_child(move || {
            let g = arr.lock().unwrap();
            for i in 1..g.len() {
                g[i].set(g[i].get() + g[i - 1].get());
            }
        });
    }
    let mut expected = seq;
    for i in 1..expected.len() {
        expected[i] += expected[i - 1];
    }
    assert_eq!(arr.to_vec(), expected);

    let arr1 = Array::<i32>::zeroed(10).unwrap();
    let _: &RLock = arr1.get_lock();
    let _: &RawArray<i32> = arr1.get_obj();
    let lock = Lock::new().unwrap();
    let arr4 = Array::<i32, Lock>::zeroed_with_lock(10, lock.clone()).unwrap();
    assert!(arr4.get_lock() == &lock);
}

/// `_TestSharedCTypes.test_sharedctypes(lock=True)`.
#[test]
fn cpython_test_sharedctypes_locked() {
    let lock = Lock::new().unwrap();
    let x = Value::with_lock(7i32, lock.clone()).unwrap();
    let y = Value::with_lock(1.0f64 / 3.0, lock.clone()).unwrap();
    let z = Value::with_lock(1i64 << 33, lock.clone()).unwrap();
    let foo = Value::with_lock(Foo { x: 3, y: 2.0 }, lock.clone()).unwrap();
    let arr =
        Array::from_slice_with_lock(&(0..10).map(f64::from).collect::<Vec<_>>(), lock.clone())
            .unwrap();
    let string = Array::<u8, _>::zeroed_with_lock(20, lock.clone()).unwrap();
    string.set_value(b"hello").unwrap();
    {
        let (x, y, z, foo, arr, string) = (
            x.clone(),
            y.clone(),
            z.clone(),
            foo.clone(),
            arr.clone(),
            string.clone(),
        );
        in_child(move || {
            x.update(|v| v * 2);
            y.update(|v| v * 2.0);
            z.update(|v| v * 2);
            {
                let f = foo.lock().unwrap();
                f.x.update(|v| v * 2);
                f.y.update(|v| v * 2.0);
            }
            let g = string.lock().unwrap();
            g.set_value(&[g.value(), g.value()].concat()).unwrap();
            drop(g);
            for i in 0..arr.len() {
                arr.set(i, arr.get(i).unwrap() * 2.0).unwrap();
            }
        });
    }
    assert_eq!(x.get(), 14);
    assert_eq!(y.get(), 2.0 / 3.0);
    assert_eq!(z.get(), 1 << 34);
    assert_eq!(foo.get(), Foo { x: 6, y: 4.0 });
    assert_eq!(
        arr.to_vec(),
        (0..10).map(|i| f64::from(i) * 2.0).collect::<Vec<_>>()
    );
    assert_eq!(string.value(), b"hellohello");
}

/// `_TestSharedCTypes.test_synchronize`: synchronized() of raw objects.
#[test]
fn cpython_test_synchronize() {
    let raw = RawValue::new(Foo { x: 2, y: 5.0 }).unwrap();
    let sync = synchronized(raw.clone()).unwrap();
    sync.lock().unwrap().x.set(10);
    assert_eq!(raw.x.get(), 10);
    let raw_arr = RawArray::from_slice(&[1i32, 2, 3]).unwrap();
    let sync_arr = synchronized(raw_arr.clone()).unwrap();
    assert!(sync_arr.get_obj() == &raw_arr);
    sync_arr.set(0, 0).unwrap();
    assert_eq!(raw_arr.to_vec(), [0, 2, 3]);
}

#[test]
fn a_failed_constructor_allocates_nothing() {
    // A block is its object plus a 16-byte header, to 16 bytes (exactly so between the
    // size classes, which end at 32 KiB, and the page-granular blocks, from 64 KiB):
    // leave room for one 32-byte block.
    let heap = Heap::new(48 << 10).unwrap();
    let fill = RawArray::<u8>::zeroed_in(&heap, heap.capacity() - 16 - 32).unwrap();
    let (before, objects) = (heap.available(), heap.live_objects());
    assert_eq!(before, 32);
    // The lock (16 bytes, a 32-byte block, allocated first) would fit, the lock and the
    // value would not.
    assert!(matches!(
        Value::new_in(&heap, [0u64; 2]),
        Err(Error::OutOfMemory { .. })
    ));
    assert!(matches!(
        Array::<u32>::zeroed_in(&heap, 3),
        Err(Error::OutOfMemory { .. })
    ));
    assert!(Array::<u64>::from_slice_in(&heap, &[1, 2]).is_err());
    assert!(Array::from_bytes_in(&heap, b"0123456789").is_err());
    assert!(Array::<u8>::zeroed_in(&heap, usize::MAX).is_err());
    assert_eq!(heap.available(), before);
    assert_eq!(heap.live_objects(), objects);
    // The locks they made went back: one fits again.
    drop(RLock::new_in(&heap).unwrap());
    drop(fill);
    let v = Value::new_in(&heap, 1u32).unwrap();
    assert_eq!(v.get(), 1);
    assert!(v.get_lock().heap() == &heap);
}

#[test]
fn with_lock_constructors_allocate_in_the_locks_heap() {
    let heap = Heap::new(1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let rlock = RLock::new_in(&heap).unwrap();
    let used = heap.used();

    let v = Value::with_lock(5u32, lock.clone()).unwrap();
    let z = Array::<i16, _>::zeroed_with_lock(4, rlock.clone()).unwrap();
    let a = Array::from_slice_with_lock(&[1.5f64, 2.5], lock.clone()).unwrap();
    let s = Array::from_bytes_with_lock(b"hi", rlock.clone()).unwrap();
    let homes = [
        v.get_obj().heap(),
        z.get_obj().heap(),
        a.get_obj().heap(),
        s.get_obj().heap(),
    ];
    for (i, home) in homes.into_iter().enumerate() {
        assert!(home == &heap, "object {i} is not in its lock's heap");
        assert!(home != default_heap(), "object {i} is in the default heap");
    }
    // The lock's heap holds the four objects (4 + 8 + 16 + 2 bytes, and their blocks'
    // headers).
    assert!(heap.used() >= used + 30, "{} -> {}", used, heap.used());
    assert_eq!(
        (v.get(), z.to_vec(), a.to_vec()),
        (5, vec![0; 4], vec![1.5, 2.5])
    );
    assert_eq!(s.value(), b"hi");
}

/// Removes a named heap when dropped, so that a failed test leaves nothing behind.
struct Unlink<'a>(&'a str);

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        let _ = Heap::unlink(self.0);
    }
}

#[test]
fn a_with_lock_pair_can_be_published_in_the_locks_named_heap() {
    let name = unique("sct-with-lock");
    let _unlink = Unlink(&name);
    let heap = Heap::create(&name, 1 << 16).unwrap();
    let lock = Lock::new_in(&heap).unwrap();
    let n = Value::with_lock(7i64, lock.clone()).unwrap();
    let s = Array::from_bytes_with_lock(b"hello", lock.clone()).unwrap();
    let z = Array::<u32, _>::zeroed_with_lock(3, lock.clone()).unwrap();
    heap.publish("n", &n).unwrap();
    heap.publish("s", &s).unwrap();
    heap.publish("z", &z).unwrap();

    // Another mapping of the heap, as an unrelated program would open it.
    let opened = Heap::open(&name).unwrap();
    let n2: Value<i64, Lock> = opened.lookup("n").unwrap();
    let s2: Array<u8, Lock> = opened.lookup("s").unwrap();
    let z2: Array<u32, Lock> = opened.lookup("z").unwrap();
    assert!(n2.get_lock() == s2.get_lock() && s2.get_lock() == z2.get_lock());
    {
        let (n2, s2, z2) = (n2.clone(), s2.clone(), z2.clone());
        in_child(move || {
            n2.update(|x| x * 6);
            s2.set_value(b"HELLO").unwrap();
            z2.set(2, 9).unwrap();
        });
    }
    assert_eq!(
        (n.get(), s.value(), z.to_vec()),
        (42, b"HELLO".to_vec(), vec![0, 0, 9])
    );
}
