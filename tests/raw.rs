//! Raw shared objects across real forked processes, bad input, and the raw parts of
//! CPython's `_TestValue`, `_TestArray` and `_TestSharedCTypes`.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{child_status, in_child};
use sharedctypes::{
    copy, copy_in, default_heap, typecode, Error, Heap, Process, RawArray, RawValue, SharedStruct,
    SharedType, Typecode,
};

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Foo {
    x: i32,
    y: f64,
    z: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C, align(64))]
struct CacheLine {
    a: u8,
    b: u64,
}

#[test]
fn child_writes_are_seen_by_the_parent() {
    let n = RawValue::new(7i32).unwrap();
    let x = RawValue::new(1.0f64 / 3.0).unwrap();
    let arr = RawArray::from_slice(&[1u16, 2, 3]).unwrap();
    let s = RawArray::from_bytes(b"hello world").unwrap();
    let big = RawValue::new(u128::MAX - 5).unwrap();
    {
        let (n, x, arr, s, big) = (n.clone(), x.clone(), arr.clone(), s.clone(), big.clone());
        in_child(move || {
            n.update(|v| v * v);
            x.update(|v| v * v);
            for e in arr.iter() {
                e.update(|v| v * 10);
            }
            s.set_value(&s.value().to_ascii_uppercase()).unwrap();
            big.set(big.get() + 5);
        });
    }
    assert_eq!(n.get(), 49);
    assert_eq!(x.get(), 1.0 / 9.0);
    assert_eq!(arr.to_vec(), [10, 20, 30]);
    assert_eq!(s.value(), b"HELLO WORLD");
    assert_eq!(big.get(), u128::MAX);
}

#[test]
fn parent_writes_after_fork_are_seen_by_the_child() {
    let v = RawValue::new(0u64).unwrap();
    let go = RawValue::new(0u8).unwrap();
    let child = {
        let (v, go) = (v.clone(), go.clone());
        Process::spawn(move || {
            while go.get() == 0 {
                std::hint::spin_loop();
            }
            assert_eq!(v.get(), 99);
        })
        .unwrap()
    };
    v.set(99);
    go.set(1);
    child.join().unwrap();
}

#[test]
fn a_child_allocation_never_overlaps_a_later_parent_allocation() {
    let heap = Heap::new(1 << 16).unwrap();
    let addr = RawValue::new_in(&heap, 0usize).unwrap();
    let (before, objects) = (heap.used(), heap.live_objects());
    {
        let (heap, addr) = (heap.clone(), addr.clone());
        in_child(move || {
            let a = RawArray::<u64>::zeroed_in(&heap, 100).unwrap();
            for e in a.iter() {
                e.set(0xAAAA_AAAA_AAAA_AAAA);
            }
            addr.set(a.as_ptr() as usize);
            // Kept alive past the child's end: dropped here, it would be freed.
            std::mem::forget(a);
        });
    }
    let with_child = heap.used();
    assert_eq!(
        heap.live_objects(),
        objects + 1,
        "the child's allocation is visible"
    );
    assert!(
        with_child >= before + 800 + 16,
        "the child's block holds its 800 bytes and a header: {before} -> {with_child}"
    );
    let child_start = addr.get();
    let b = RawArray::<u64>::zeroed_in(&heap, 100).unwrap();
    assert_eq!(
        heap.used() - with_child,
        with_child - before,
        "the same array takes the same block in either process"
    );
    let b_start = b.as_ptr() as usize;
    assert!(b_start >= child_start + 800 || b_start + 800 <= child_start);
    assert!(b.to_vec().iter().all(|&x| x == 0), "fresh memory is zero");
    // The child's array is intact.
    // SAFETY: the child allocated 100 u64 at this address in the shared heap, which is
    // mapped at the same address here (inherited across fork) and kept alive by `heap`.
    let first = unsafe { std::ptr::read_volatile(child_start as *const u64) };
    assert_eq!(first, 0xAAAA_AAAA_AAAA_AAAA);
}

#[test]
fn concurrent_allocation_from_parent_and_children_never_overlaps() {
    let heap = Heap::new(1 << 20).unwrap();
    // The block one `[u8; 16]` takes (header and size class included), measured.
    let block = {
        let probe = RawValue::new_in(&heap, [0u8; 16]).unwrap();
        let block = heap.used();
        drop(probe);
        assert_eq!(heap.used(), 0);
        block
    };
    // Each process keeps 1000 objects and, between them, allocates and drops as many
    // (so blocks are freed and reused by every process at once).
    let churn = |heap: &Heap, pattern: u8| -> Vec<RawValue<[u8; 16]>> {
        (0..1000)
            .map(|_| {
                let temp = RawValue::new_in(heap, [!pattern; 16]).unwrap();
                let kept = RawValue::new_in(heap, [pattern; 16]).unwrap();
                assert_eq!(temp.get(), [!pattern; 16]);
                kept
            })
            .collect()
    };
    let children: Vec<_> = (0..3u8)
        .map(|id| {
            let heap = heap.clone();
            Process::spawn(move || {
                let kept = churn(&heap, id + 1);
                assert!(
                    kept.iter().all(|v| v.get() == [id + 1; 16]),
                    "nobody overwrote the child's objects"
                );
                // Left alive for the parent to count.
                std::mem::forget(kept);
            })
            .unwrap()
        })
        .collect();
    let mine = churn(&heap, 0xF0);
    for c in children {
        c.join().unwrap();
    }
    assert!(
        mine.iter().all(|v| v.get() == [0xF0; 16]),
        "nobody overwrote us"
    );
    assert_eq!(heap.live_objects(), 4 * 1000);
    assert_eq!(heap.used(), 4 * 1000 * block);
}

#[test]
fn exhaustion_is_an_error_and_consumes_nothing() {
    // A block is its object plus a 16-byte header, in 16-byte steps (blocks between the
    // size classes, up to 32 KiB, and the page-granular ones, from 64 KiB, are exact).
    let heap = Heap::new(48 << 10).unwrap();
    let cap = heap.capacity();
    let a = RawArray::<u8>::zeroed_in(&heap, cap - 16 - 32).unwrap();
    assert_eq!(heap.used(), cap - 32);
    assert_eq!(heap.available(), 32);
    // 24 bytes take a 48-byte block: one more than there is.
    let err = RawArray::<u64>::zeroed_in(&heap, 3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfMemory {
                requested: 24,
                available: 32
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("24 bytes requested"), "{err}");
    assert_eq!(heap.available(), 32, "a failed allocation consumes nothing");
    assert_eq!(heap.live_objects(), 1);
    let b = RawValue::new_in(&heap, 1u64);
    assert!(b.is_ok(), "the rest is still usable: {b:?}");
    assert_eq!(heap.available(), 0);
    assert!(RawValue::new_in(&heap, 1u8).is_err());
    assert_eq!(a.len(), cap - 48);
}

#[test]
fn overflowing_sizes_are_errors_not_panics() {
    let heap = Heap::new(4096).unwrap();
    for len in [usize::MAX, usize::MAX / 2, usize::MAX / 8 + 1] {
        let err = RawArray::<u64>::zeroed_in(&heap, len).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory { .. }), "{err:?}");
    }
    assert!(matches!(
        RawArray::<[u8; 1 << 20]>::zeroed_in(&heap, usize::MAX / 1000),
        Err(Error::OutOfMemory { .. })
    ));
    assert_eq!(heap.used(), 0);
    assert!(Heap::new(usize::MAX).is_err());
    assert!(Heap::new(usize::MAX - 4096).is_err());
}

#[test]
fn copy_from_slice_with_the_wrong_length_changes_nothing() {
    let a = RawArray::from_slice(&[1i32, 2, 3]).unwrap();
    let err = a.copy_from_slice(&[9, 9]).unwrap_err();
    assert!(matches!(
        err,
        Error::LengthMismatch {
            expected: 3,
            found: 2
        }
    ));
    assert!(a.copy_from_slice(&[9, 9, 9, 9]).is_err());
    assert_eq!(a.to_vec(), [1, 2, 3]);
    a.copy_from_slice(&[4, 5, 6]).unwrap();
    assert_eq!(a.to_vec(), [4, 5, 6]);
}

#[test]
fn byte_strings_follow_python() {
    let s = RawArray::from_bytes(b"hello world").unwrap();
    assert_eq!(s.len(), 11);
    assert_eq!(s.value(), b"hello world");
    // Exactly the length: no terminator needed.
    s.set_value(b"HELLO WORLD").unwrap();
    assert_eq!(s.raw(), b"HELLO WORLD");
    // Shorter: terminated, the rest left as it was.
    s.set_value(b"bye").unwrap();
    assert_eq!(s.value(), b"bye");
    assert_eq!(s.raw(), b"bye\0O WORLD");
    // Too long: an error, nothing written.
    let err = s.set_value(b"hello world!").unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLong {
                len: 12,
                capacity: 11
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.raw(), b"bye\0O WORLD");
    assert!(s.set_raw(b"0123456789AB").is_err());
    assert_eq!(s.raw(), b"bye\0O WORLD");
    // raw writes a prefix, no terminator.
    s.set_raw(b"ab").unwrap();
    assert_eq!(s.raw(), b"abe\0O WORLD");
    assert_eq!(s.value(), b"abe");
    // Python: Array('c', 20) then .value = b'hello'.
    let z = RawArray::<u8>::zeroed(20).unwrap();
    assert_eq!(z.value(), b"");
    z.set_value(b"hello").unwrap();
    assert_eq!(z.value(), b"hello");
    assert_eq!(z.raw().len(), 20);
    // Bytes above 0x7f are bytes like any other.
    let hi = RawArray::from_bytes(&[0xff, 0x80, 0x01]).unwrap();
    assert_eq!(hi.value(), [0xff, 0x80, 0x01]);
    // Empty.
    let e = RawArray::from_bytes(b"").unwrap();
    assert_eq!((e.value(), e.raw()), (vec![], vec![]));
    e.set_value(b"").unwrap();
    assert!(e.set_value(b"x").is_err());
}

#[test]
fn strings_cross_processes() {
    let s = RawArray::<u8>::zeroed(20).unwrap();
    s.set_value(b"hello").unwrap();
    {
        let s = s.clone();
        in_child(move || {
            let doubled = [s.value(), s.value()].concat();
            s.set_value(&doubled).unwrap();
        });
    }
    assert_eq!(s.value(), b"hellohello");
}

#[test]
fn typecodes() {
    let a = RawArray::<typecode!('h')>::zeroed(7).unwrap();
    let _: i16 = a[0].get();
    let _: RawValue<typecode!('c')> = RawValue::new(b'x').unwrap();
    let _: RawValue<typecode!('L')> = RawValue::new(7).unwrap();
    for (c, size) in [
        ('c', 1),
        ('b', 1),
        ('B', 1),
        ('h', 2),
        ('H', 2),
        ('i', 4),
        ('I', 4),
        ('l', std::mem::size_of::<std::ffi::c_long>()),
        ('L', std::mem::size_of::<std::ffi::c_ulong>()),
        ('q', 8),
        ('Q', 8),
        ('f', 4),
        ('d', 8),
    ] {
        let t = Typecode::try_from(c).unwrap();
        assert_eq!((t.as_char(), t.size()), (c, size));
    }
    for c in ['x', 'u', '?', 'D', ' '] {
        let err = Typecode::try_from(c).unwrap_err();
        assert!(matches!(err, Error::UnknownTypecode(x) if x == c));
        assert!(
            err.to_string().contains("'d'"),
            "the message lists the codes: {err}"
        );
    }
}

/// Byte strings are `u8` on every platform (never `c_char`, which is `i8` on x86-64):
/// code written with `u8` compiles everywhere, and 'c' describes itself as `u8`.
#[test]
fn byte_strings_are_u8_everywhere() {
    let raw: RawArray<u8> = RawArray::from_bytes(b"\xffbyte").unwrap();
    let in_heap: RawArray<u8> = RawArray::from_bytes_in(default_heap(), b"x").unwrap();
    let cell: u8 = raw[0].get();
    assert_eq!((cell, in_heap.value()), (0xff, b"x".to_vec()));
    let c: RawValue<u8> = RawValue::<typecode!('c')>::new(b'c').unwrap();
    assert_eq!(c.get(), b'c');

    let t = Typecode::try_from('c').unwrap();
    assert_eq!((t.size(), t.rust_type()), (1, "u8"));
    assert_eq!(<typecode!('c') as SharedType>::LAYOUT, u8::LAYOUT);
    assert_ne!(<typecode!('c') as SharedType>::LAYOUT, i8::LAYOUT);
}

#[test]
fn panicking_and_killed_children_fail() {
    let status = child_status(|| panic!("on purpose"));
    assert!(!status.success());
    assert_eq!(status.code(), Some(sharedctypes::PANIC_EXIT_CODE));

    let child = Process::spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    })
    .unwrap();
    assert!(child.pid() > 0);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    let status = child_status(|| std::process::exit(3));
    assert_eq!(status.code(), Some(3));
    assert!(child_status(|| {}).success());
}

#[test]
fn a_child_never_runs_the_parents_remaining_code() {
    let marker = RawValue::new(0u32).unwrap();
    {
        let marker = marker.clone();
        in_child(move || marker.set(1));
    }
    // Had the child returned into this function it would have run this line too,
    // concurrently; the count shows it ran once.
    marker.update(|m| m + 10);
    assert_eq!(marker.get(), 11);
}

fn assert_aligned<T: SharedType>(heap: &Heap) {
    // Something before it, kept alive, so that the object does not start where the
    // previous test left the heap empty.
    let _before = RawValue::new_in(heap, 1u8).unwrap();
    let v = RawValue::<T>::zeroed_in(heap).unwrap();
    assert_eq!(v.as_ptr() as usize % std::mem::align_of::<T>(), 0);
    let a = RawArray::<T>::zeroed_in(heap, 3).unwrap();
    assert_eq!(a.as_ptr() as usize % std::mem::align_of::<T>(), 0);
}

#[test]
fn every_type_is_placed_aligned() {
    let heap = Heap::new(1 << 16).unwrap();
    assert_aligned::<i8>(&heap);
    assert_aligned::<u16>(&heap);
    assert_aligned::<i32>(&heap);
    assert_aligned::<f32>(&heap);
    assert_aligned::<u64>(&heap);
    assert_aligned::<f64>(&heap);
    assert_aligned::<usize>(&heap);
    assert_aligned::<isize>(&heap);
    assert_aligned::<i128>(&heap);
    assert_aligned::<u128>(&heap);
    assert_aligned::<[u16; 3]>(&heap);
    assert_aligned::<Foo>(&heap);
    assert_aligned::<CacheLine>(&heap);
    assert_eq!(std::mem::align_of::<CacheLine>(), 64);
    let v = RawValue::new_in(&heap, CacheLine { a: 1, b: 2 }).unwrap();
    assert_eq!(v.get(), CacheLine { a: 1, b: 2 });
    assert_eq!(v.b.get(), 2);
}

#[test]
fn structs_alignment_larger_than_a_page_is_an_error() {
    #[derive(Clone, Copy, SharedStruct)]
    #[repr(C, align(8192))]
    struct Huge {
        a: u8,
    }
    let heap = Heap::new(1 << 16).unwrap();
    let err = RawValue::new_in(&heap, Huge { a: 1 })
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::AlignmentTooLarge { .. }), "{err:?}");
    assert_eq!(heap.used(), 0);
}

#[test]
fn constructors_and_conversions() {
    let z = RawValue::<f64>::zeroed().unwrap();
    assert_eq!(z.get(), 0.0);
    assert_eq!(z.replace(2.5), 0.0);
    assert_eq!(z.update(|x| x * 2.0), 5.0);
    let a = RawArray::try_from_iter((0..10u32).map(|i| i * i)).unwrap();
    assert_eq!(a.len(), 10);
    assert_eq!(a[3].get(), 9);
    assert_eq!(a[2..4].iter().map(|x| x.get()).collect::<Vec<_>>(), [4, 9]);
    let empty = RawArray::<u64>::from_slice(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.to_vec(), Vec::<u64>::new());
    assert!(empty.copy_from_slice(&[]).is_ok());
    let zero = RawArray::<u8>::zeroed(0).unwrap();
    assert_eq!(zero.len(), 0);
    let arrays = RawValue::new([[1u8, 2], [3, 4]]).unwrap();
    arrays[1][0].set(30);
    assert_eq!(arrays.get(), [[1, 2], [30, 4]]);
}

#[test]
fn handles_clone_to_the_same_object_and_compare_by_identity() {
    let a = RawValue::new(1i64).unwrap();
    let b = a.clone();
    let c = RawValue::new(1i64).unwrap();
    b.set(5);
    assert_eq!(a.get(), 5);
    assert!(a == b);
    assert!(a != c);
    let x = RawArray::from_slice(&[1u8]).unwrap();
    assert!(x == x.clone());
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<RawValue<Foo>>();
    send_sync::<RawArray<f32>>();
    send_sync::<Heap>();
}

#[test]
fn debug_shows_the_contents() {
    assert_eq!(
        format!("{:?}", RawValue::new(7i32).unwrap()),
        "RawValue<i32>(7)"
    );
    assert_eq!(
        format!("{:?}", RawArray::from_slice(&[9i32, 2, 8]).unwrap()),
        "RawArray<i32>([9, 2, 8])"
    );
    assert_eq!(
        format!("{:?}", RawValue::new(Foo { x: 1, y: 2.0, z: 3 }).unwrap()),
        "RawValue<Foo>(Foo { x: 1, y: 2.0, z: 3 })"
    );
}

#[test]
fn copy_makes_an_independent_object() {
    // CPython's test_copy.
    let foo = RawValue::new(Foo {
        x: 2,
        y: 5.0,
        z: 1 << 33,
    })
    .unwrap();
    let bar = copy(&foo).unwrap();
    foo.set(Foo { x: 0, y: 0.0, z: 0 });
    assert_eq!(
        bar.get(),
        Foo {
            x: 2,
            y: 5.0,
            z: 1 << 33
        }
    );
    let heap = Heap::new(4096).unwrap();
    let arr = RawArray::from_slice(&[1.5f32, 2.5]).unwrap();
    let arr2 = copy_in(&heap, &arr).unwrap();
    assert!(arr2.heap() == &heap);
    arr[0].set(0.0);
    assert_eq!(arr2.to_vec(), [1.5, 2.5]);
    // A full heap: no room for another block of the copy's size.
    let tiny = Heap::new(256).unwrap();
    let mut fill = Vec::new();
    while let Ok(v) = RawArray::<f32>::zeroed_in(&tiny, 2) {
        fill.push(v);
    }
    let used = tiny.used();
    assert!(matches!(
        copy_in(&tiny, &arr),
        Err(Error::OutOfMemory { .. })
    ));
    assert_eq!(tiny.used(), used, "the failed copy took nothing");
    fill.pop();
    assert_eq!(copy_in(&tiny, &arr).unwrap().to_vec(), [0.0, 2.5]);
}

#[test]
fn the_default_heap_is_shared_with_children_forked_after_first_use() {
    let heap = default_heap();
    assert!(heap.capacity() >= 1 << 30);
    let v = RawValue::new(1u8).unwrap();
    assert!(v.heap() == heap);
    let addr = RawValue::new(0usize).unwrap();
    {
        let (v, addr) = (v.clone(), addr.clone());
        in_child(move || {
            let w = RawValue::new(0x5Au8).unwrap();
            v.set(w.get() - 48);
            addr.set(w.as_ptr() as usize);
            // Kept: dropped here, it would be freed (and zeroed).
            std::mem::forget(w);
        });
    }
    assert_eq!(v.get(), 42);
    // (Other tests allocate and free in the default heap meanwhile, so `used()` cannot
    // tell; the child's object itself can.)
    // SAFETY: the child allocated a u8 at this address in the default heap, which this
    // process maps at the same address and never unmaps, and never freed it.
    let seen = unsafe { std::ptr::read_volatile(addr.get() as *const u8) };
    assert_eq!(seen, 0x5A, "the child's allocation came from the same heap");
}

// ---- CPython Lib/test/_test_multiprocessing.py, raw parts ----

/// `_TestValue.test_value` / `test_rawvalue`: codes_values with values set in a child.
#[test]
fn cpython_test_rawvalue() {
    let i = RawValue::<typecode!('i')>::new(1 << 24).unwrap();
    let d = RawValue::<typecode!('d')>::new(3.625).unwrap();
    let h = RawValue::<typecode!('h')>::new(-232).unwrap();
    let q = RawValue::<typecode!('q')>::new(1 << 33).unwrap();
    let c = RawValue::<typecode!('c')>::new(b'x').unwrap();
    assert_eq!(
        (i.get(), d.get(), h.get(), q.get(), c.get()),
        (1 << 24, 3.625, -232, 1 << 33, b'x')
    );
    {
        let (i, d, h, q, c) = (i.clone(), d.clone(), h.clone(), q.clone(), c.clone());
        in_child(move || {
            i.set(-(1 << 24));
            d.set(-4.25);
            h.set(234);
            q.set(1 << 34);
            c.set(b'y');
        });
    }
    assert_eq!(
        (i.get(), d.get(), h.get(), q.get(), c.get()),
        (-(1 << 24), -4.25, 234, 1 << 34, b'y')
    );
}

/// `_TestArray.test_array` / `test_rawarray`: a child turns the array into prefix sums.
#[test]
fn cpython_test_rawarray() {
    let seq = [681i32, -35, 12, 1, 0, 42, -7, 16, 99, 3];
    let arr = RawArray::<typecode!('i')>::from_slice(&seq).unwrap();
    assert_eq!(arr.len(), seq.len());
    assert_eq!(arr[3].get(), seq[3]);
    assert_eq!(
        arr[2..5].iter().map(|x| x.get()).collect::<Vec<_>>(),
        &seq[2..5]
    );
    arr[2..5]
        .iter()
        .zip(&seq[2..5])
        .for_each(|(a, &s)| a.set(s));
    assert_eq!(arr.to_vec(), seq);
    {
        let arr = arr.clone();
        in_child(move || {
            for i in 1..arr.len() {
                arr[i].set(arr[i].get() + arr[i - 1].get());
            }
        });
    }
    let expected: Vec<i32> = seq
        .iter()
        .scan(0, |acc, &x| {
            *acc += x;
            Some(*acc)
        })
        .collect();
    assert_eq!(arr.to_vec(), expected);
}

/// `_TestArray.test_array_from_size`: zeroed arrays of a given size.
#[test]
fn cpython_test_array_from_size() {
    for size in [0usize, 1, 10, 1000] {
        let arr = RawArray::<typecode!('i')>::zeroed(size).unwrap();
        assert_eq!(arr.len(), size);
        assert_eq!(arr.to_vec(), vec![0; size]);
    }
}

/// `_TestSharedCTypes.test_sharedctypes` with `lock=False`: every kind of raw object,
/// doubled by a child.
#[test]
fn cpython_test_sharedctypes_raw() {
    let x = RawValue::new(7i32).unwrap();
    let y = RawValue::new(1.0f64 / 3.0).unwrap();
    let z = RawValue::new(1i64 << 33).unwrap();
    let foo = RawValue::new(Foo { x: 3, y: 2.0, z: 0 }).unwrap();
    let arr = RawArray::from_slice(&(0..10).map(f64::from).collect::<Vec<_>>()).unwrap();
    let string = RawArray::<u8>::zeroed(20).unwrap();
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
            foo.x.update(|v| v * 2);
            foo.y.update(|v| v * 2.0);
            string
                .set_value(&[string.value(), string.value()].concat())
                .unwrap();
            for a in arr.iter() {
                a.update(|v| v * 2.0);
            }
        });
    }
    assert_eq!(x.get(), 14);
    assert_eq!(y.get(), 2.0 / 3.0);
    assert_eq!(z.get(), 1 << 34);
    assert_eq!((foo.x.get(), foo.y.get()), (6, 4.0));
    assert_eq!(
        arr.to_vec(),
        (0..10).map(|i| f64::from(i) * 2.0).collect::<Vec<_>>()
    );
    assert_eq!(string.value(), b"hellohello");
}

#[test]
fn a_heap_holds_exactly_its_capacity() {
    // Capacity counts blocks: each object with its 16-byte header (rounded up to a
    // size class); a heap of capacity C holds objects whose blocks sum to at most C.
    let heap = Heap::new(4096).unwrap();
    assert_eq!(
        (heap.capacity(), heap.used(), heap.available()),
        (4096, 0, 4096)
    );
    // The largest object: its block is the whole capacity.
    let a = RawArray::<u8>::zeroed_in(&heap, 4096 - 16).unwrap();
    assert_eq!((heap.used(), heap.available()), (4096, 0));
    assert!(matches!(
        RawValue::new_in(&heap, 0u8),
        Err(Error::OutOfMemory {
            requested: 1,
            available: 0
        })
    ));
    a[4079].set(1);
    assert_eq!(a[4079].get(), 1);
    drop(a);
    assert_eq!((heap.used(), heap.available()), (0, 4096));
    assert!(
        RawArray::<u8>::zeroed_in(&heap, 4096 - 15).is_err(),
        "one byte more does not fit"
    );
    assert_eq!(heap.used(), 0);
    // Small objects fill a heap up to a block's size short of its capacity.
    let heap = Heap::new(100).unwrap();
    let mut fill = Vec::new();
    while let Ok(v) = RawValue::new_in(&heap, 0u8) {
        fill.push(v);
    }
    let block = heap.used() / fill.len();
    assert_eq!(heap.used(), fill.len() * block);
    assert!(heap.used() <= 100 && heap.available() < block);
    assert_eq!(heap.live_objects(), fill.len());
    // Every object takes a block, an empty one too.
    let empty = Heap::new(0).unwrap();
    assert_eq!(empty.capacity(), 0);
    assert!(RawValue::new_in(&empty, 0u8).is_err());
    assert!(RawArray::<u64>::zeroed_in(&empty, 0).is_err());
    let heap = Heap::new(4096).unwrap();
    let e = RawArray::<u64>::zeroed_in(&heap, 0).unwrap();
    assert!(e.is_empty());
    assert_eq!((heap.used(), heap.live_objects()), (block, 1));
}

#[test]
fn objects_a_spawned_child_creates_in_the_default_heap_are_shared() {
    let addr = RawValue::new(0usize).unwrap();
    {
        let addr = addr.clone();
        in_child(move || {
            let v = RawValue::new(0xC0FFEEu32).unwrap();
            addr.set(v.as_ptr() as usize);
            // Kept: dropped at the child's end, it would be freed (and zeroed).
            std::mem::forget(v);
        });
    }
    // The child's object lives in the heap we share, at the same address.
    // SAFETY: the child allocated a u32 there in the default heap, which this process
    // maps at the same address and never unmaps, and never freed it.
    let seen = unsafe { std::ptr::read_volatile(addr.get() as *const u32) };
    assert_eq!(seen, 0xC0FFEE);
}
