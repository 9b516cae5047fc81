//! Atomics on `Shared<T>` (issue 11): exact counting by real forked processes on a
//! `RawValue`, array elements and derived-struct fields; compare-exchange and
//! `fetch_update` loops across processes; Release/Acquire publication between
//! processes; and, for every integer type of at most 64 bits, every method compared
//! with std's atomic of the same type on the same values (results, wrap-around and
//! the panics on invalid orderings).

mod common;

use std::sync::atomic::Ordering::{self, AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::time::Instant;

use common::in_child;
use sharedctypes::{Process, RawArray, RawValue, Shared, SharedStruct};

const ORDERINGS: [Ordering; 5] = [Relaxed, Release, Acquire, AcqRel, SeqCst];
/// The orderings a compare-exchange accepts for its failure load.
const FAILURE_ORDERINGS: [Ordering; 3] = [Relaxed, Acquire, SeqCst];

/// Forks `n` children that each run `work(i)` once, released together by a spinning
/// start flag (so they really contend), and asserts that all of them succeeded.
fn race<F>(n: usize, work: F)
where
    F: Fn(usize) + Clone + Send + 'static,
{
    let go = RawValue::new(0u32).expect("allocate the start flag");
    let children: Vec<Process> = (0..n)
        .map(|i| {
            let (go, work) = (go.clone(), work.clone());
            Process::spawn(move || {
                while go.load(Acquire) == 0 {
                    std::thread::yield_now();
                }
                work(i);
            })
            .expect("fork")
        })
        .collect();
    go.store(1, Release);
    for child in children {
        let status = child.wait().expect("waitpid");
        assert!(status.success(), "a child failed: {status:?}");
    }
}

#[test]
fn four_processes_a_million_fetch_adds_each_on_one_raw_value_are_exact() {
    const PROCS: usize = 4;
    const PER_PROC: u64 = 1_000_000;
    const TOTAL: u64 = PROCS as u64 * PER_PROC;
    let hits = RawValue::new(0u64).unwrap();
    // Each child adds up the previous values its `fetch_add`s returned: the returns of
    // all children together must be 0, 1, …, TOTAL - 1, each exactly once.
    let seen = RawArray::<u64>::zeroed(PROCS).unwrap();
    let start = Instant::now();
    {
        let (hits, seen) = (hits.clone(), seen.clone());
        race(PROCS, move |i| {
            let (mut sum, mut last) = (0u64, None);
            for _ in 0..PER_PROC {
                let prev = hits.fetch_add(1, Relaxed);
                // One location has one modification order, which each process sees
                // in order: its own increments return increasing values.
                assert!(last < Some(prev), "{prev} returned after {last:?}");
                last = Some(prev);
                sum += prev;
            }
            seen[i].set(sum);
        });
    }
    eprintln!(
        "{PROCS} processes x {PER_PROC} fetch_add: {:?} (including fork and exit)",
        start.elapsed()
    );
    assert_eq!(hits.get(), TOTAL);
    assert_eq!(
        seen.to_vec().iter().sum::<u64>(),
        TOTAL * (TOTAL - 1) / 2,
        "some fetch_add returned a value twice"
    );
}

#[test]
fn fetch_add_on_array_elements_across_processes_is_exact() {
    const PROCS: usize = 4;
    const ROUNDS: usize = 32_000; // a multiple of 16
    let counts = RawArray::<u32>::zeroed(16).unwrap();
    let fixed = RawValue::new([1000i64, 0, -7, 0]).unwrap();
    {
        let (counts, fixed) = (counts.clone(), fixed.clone());
        race(PROCS, move |i| {
            for round in 0..ROUNDS {
                // Child i hits the elements with its own stride: neighbours are shared
                // by all children, and every element gets the same total.
                counts[(round * (2 * i + 1)) % 16].fetch_add(1, Relaxed);
                fixed[0].fetch_sub(1, Relaxed);
                fixed[2].fetch_add(2, Relaxed);
            }
            fixed[1 + 2 * (i % 2)].fetch_add(1 << i, Relaxed);
        });
    }
    let per_element = (PROCS * ROUNDS / 16) as u32;
    assert_eq!(counts.to_vec(), vec![per_element; 16]);
    let total = (PROCS * ROUNDS) as i64;
    assert_eq!(fixed.get(), [1000 - total, 0b0101, -7 + 2 * total, 0b1010]);
}

#[derive(Clone, Copy, Debug, PartialEq, SharedStruct)]
#[repr(C)]
struct Stats {
    tag: u16,
    flags: u8,
    low: i16,
    peak: u32,
    hits: u64,
    bytes: i64,
    untouched: [u8; 3],
}

#[test]
fn atomics_on_derived_struct_fields_across_processes_are_exact() {
    const PROCS: usize = 4;
    const ROUNDS: i64 = 50_000;
    let stats = RawValue::new(Stats {
        tag: 0xbeef,
        flags: 0,
        low: 0,
        peak: 0,
        hits: 0,
        bytes: 0,
        untouched: [0xaa, 0xbb, 0xcc],
    })
    .unwrap();
    {
        let stats = stats.clone();
        race(PROCS, move |i| {
            for round in 0..ROUNDS {
                stats.hits.fetch_add(1, Relaxed);
                stats.bytes.fetch_sub(3, Relaxed);
                stats
                    .peak
                    .fetch_max((round as u32) * (i as u32 + 1), Relaxed);
                stats
                    .low
                    .fetch_min(-((round % 1000) as i16) - i as i16, Relaxed);
            }
            stats.flags.fetch_or(1 << i, Relaxed);
        });
    }
    let rounds = ROUNDS as u32;
    assert_eq!(
        stats.get(),
        Stats {
            tag: 0xbeef,
            flags: 0b1111,
            low: -999 - (PROCS as i16 - 1),
            peak: (rounds - 1) * PROCS as u32,
            hits: PROCS as u64 * ROUNDS as u64,
            bytes: -3 * PROCS as i64 * ROUNDS,
            untouched: [0xaa, 0xbb, 0xcc],
        },
        "an atomic on one field changed another, or lost an update"
    );
}

#[test]
fn compare_exchange_loops_count_exactly_across_processes() {
    const PROCS: usize = 4;
    const PER_PROC: u64 = 100_000;
    let strong = RawValue::new(0u64).unwrap();
    let weak = RawValue::new(0i32).unwrap();
    {
        let (strong, weak) = (strong.clone(), weak.clone());
        race(PROCS, move |_| {
            for _ in 0..PER_PROC {
                let mut old = strong.load(Relaxed);
                while let Err(actual) = strong.compare_exchange(old, old + 1, AcqRel, Acquire) {
                    old = actual;
                }
                let mut old = weak.get();
                while let Err(actual) = weak.compare_exchange_weak(old, old - 1, Relaxed, Relaxed) {
                    old = actual;
                }
            }
        });
    }
    assert_eq!(strong.get(), PROCS as u64 * PER_PROC);
    assert_eq!(weak.get(), -((PROCS as u64 * PER_PROC) as i32));
}

#[test]
fn exactly_one_process_wins_each_compare_exchange() {
    const PROCS: usize = 4;
    const SLOTS: usize = 2000;
    let owners = RawArray::<u8>::zeroed(SLOTS).unwrap();
    let wins = RawArray::<usize>::zeroed(PROCS).unwrap();
    {
        let (owners, wins) = (owners.clone(), wins.clone());
        race(PROCS, move |i| {
            let me = i as u8 + 1;
            for slot in owners.iter() {
                match slot.compare_exchange(0, me, Acquire, Relaxed) {
                    Ok(0) => {
                        wins[i].fetch_add(1, Relaxed);
                    }
                    Ok(other) => panic!("Ok({other}) though 0 was expected"),
                    Err(owner) => assert!(owner != 0 && owner != me, "Err({owner})"),
                }
            }
        });
    }
    let owners = owners.to_vec();
    assert!(owners.iter().all(|&o| o != 0), "an unclaimed slot");
    for (i, won) in wins.to_vec().into_iter().enumerate() {
        let owned = owners.iter().filter(|&&o| o == i as u8 + 1).count();
        assert_eq!(won, owned, "process {i} won {won} slots but owns {owned}");
    }
}

#[test]
fn fetch_update_across_processes_stops_exactly_at_its_cap() {
    const PROCS: usize = 4;
    const TRIES: u32 = 30_000;
    const CAP: u32 = 100_000;
    let n = RawValue::new(0u32).unwrap();
    let granted = RawArray::<u32>::zeroed(PROCS).unwrap();
    let refused = RawArray::<u32>::zeroed(PROCS).unwrap();
    {
        let (n, granted, refused) = (n.clone(), granted.clone(), refused.clone());
        race(PROCS, move |i| {
            for _ in 0..TRIES {
                match n.fetch_update(AcqRel, Acquire, |x| (x < CAP).then_some(x + 1)) {
                    Ok(prev) => {
                        assert!(prev < CAP);
                        granted[i].fetch_add(1, Relaxed);
                    }
                    Err(prev) => {
                        assert_eq!(prev, CAP);
                        refused[i].fetch_add(1, Relaxed);
                    }
                }
            }
        });
    }
    assert_eq!(n.get(), CAP);
    assert_eq!(granted.to_vec().iter().sum::<u32>(), CAP);
    assert_eq!(
        refused.to_vec().iter().sum::<u32>(),
        PROCS as u32 * TRIES - CAP
    );
}

#[derive(Clone, Copy, SharedStruct)]
#[repr(C)]
struct Mailbox {
    turn: u64,
    payload: [u64; 8],
}

/// Round `r`'s payload from `writer` (0: parent, 1: child).
fn payload(r: u64, writer: u64) -> [u64; 8] {
    std::array::from_fn(|k| (r << 16) ^ (writer << 8) ^ k as u64)
}

#[test]
fn release_store_and_acquire_load_publish_relaxed_writes_across_processes() {
    const ROUNDS: u64 = 2000;
    let mailbox = RawValue::new(Mailbox {
        turn: 0,
        payload: [0; 8],
    })
    .unwrap();
    // Odd turns: the parent has written; even turns: the child has answered.
    let wait_for = |mailbox: &RawValue<Mailbox>, turn: u64| {
        let mut spins = 0u32;
        while mailbox.turn.load(Acquire) != turn {
            spins += 1;
            if spins % 64 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    };
    let child = {
        let mailbox = mailbox.clone();
        Process::spawn(move || {
            for r in 0..ROUNDS {
                wait_for(&mailbox, 2 * r + 1);
                assert_eq!(mailbox.payload.get(), payload(r, 0), "round {r}");
                mailbox.payload.set(payload(r, 1));
                mailbox.turn.store(2 * r + 2, Release);
            }
        })
        .unwrap()
    };
    for r in 0..ROUNDS {
        for (k, word) in payload(r, 0).into_iter().enumerate() {
            mailbox.payload[k].set(word);
        }
        mailbox.turn.store(2 * r + 1, Release);
        wait_for(&mailbox, 2 * r + 2);
        assert_eq!(mailbox.payload.get(), payload(r, 1), "round {r}");
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the child failed: {status:?}");
}

#[test]
fn atomics_and_get_set_mix_on_one_location() {
    let v = RawValue::new([5u64, 6]).unwrap();
    v[0].set(10);
    assert_eq!(v[0].fetch_add(1, Relaxed), 10);
    assert_eq!(v[0].get(), 11);
    v[1].store(42, Release);
    assert_eq!(v.get(), [11, 42]);
    assert_eq!(v[1].replace(7), 42);
    assert_eq!(v[1].swap(8, SeqCst), 7);
    assert_eq!(v[1].update(|x| x * 2), 16);
    assert_eq!(v[1].load(Acquire), 16);
    v.set([1, 2]);
    assert_eq!((v[0].load(Relaxed), v[1].load(Relaxed)), (1, 2));
}

#[test]
fn signed_and_unsigned_arithmetic_wraps_around_like_std() {
    let v = RawValue::new(i8::MAX).unwrap();
    assert_eq!(v.fetch_add(1, Relaxed), i8::MAX);
    assert_eq!(v.get(), i8::MIN);
    assert_eq!(v.fetch_sub(1, Relaxed), i8::MIN);
    assert_eq!(v.get(), i8::MAX);

    let v = RawValue::new(i64::MIN).unwrap();
    assert_eq!(v.fetch_add(-1, Relaxed), i64::MIN);
    assert_eq!(v.get(), i64::MAX);

    let v = RawValue::new(0u16).unwrap();
    assert_eq!(v.fetch_sub(1, Relaxed), 0);
    assert_eq!(v.get(), u16::MAX);

    let v = RawValue::new(isize::MAX - 1).unwrap();
    assert_eq!(v.fetch_add(3, Relaxed), isize::MAX - 1);
    assert_eq!(v.get(), isize::MIN + 1);

    // max/min compare as signed for signed types, unsigned for unsigned ones.
    let v = RawValue::new(-1i32).unwrap();
    assert_eq!(v.fetch_max(1, Relaxed), -1);
    assert_eq!(v.get(), 1);
    let v = RawValue::new(u32::MAX).unwrap();
    assert_eq!(v.fetch_max(1, Relaxed), u32::MAX);
    assert_eq!(v.get(), u32::MAX);
}

/// The payload of a caught panic, as text.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => s.to_string(),
            Err(_) => "<not a string>".to_string(),
        },
    }
}

/// Runs each read-modify-write `method` on `shared` and on `std`, both holding `init`,
/// and compares the returned and the stored values.
macro_rules! check_rmw {
    ($shared:ident, $std:ident, $init:ident, $val:ident, $order:ident, $checked:ident:
     $($method:ident)*) => {$(
        $shared.set($init);
        $std.store($init, Relaxed);
        let got = $shared.$method($val, $order);
        let want = $std.$method($val, $order);
        assert_eq!(
            (got, $shared.get()),
            (want, $std.load(Relaxed)),
            "{:#x}.{}({:#x}, {:?})",
            $init, stringify!($method), $val, $order,
        );
        $checked += 1;
    )*};
}

/// For every integer type: the signatures, results and panics of every method equal
/// std's for the matching atomic type.
macro_rules! per_type {
    ($($m:ident: $t:ident, $atomic:ident;)*) => {$(
        mod $m {
            use super::*;
            use std::panic::{catch_unwind, AssertUnwindSafe};
            use std::sync::atomic::$atomic;

            type T = $t;

            /// Edge values and bit patterns of `T`, each once.
            fn values() -> Vec<T> {
                let mut v: Vec<T> = [
                    0u64,
                    1,
                    2,
                    3,
                    0x7f,
                    0x80,
                    0xff,
                    0x8001,
                    0x5a5a_5a5a_5a5a_5a5a,
                    0xa5a5_a5a5_a5a5_a5a5,
                    0x0123_4567_89ab_cdef,
                    u64::MAX,
                ]
                .into_iter()
                .map(|x| x as T)
                .chain([T::MAX, T::MIN, T::MAX - 1, T::MIN + 1])
                .collect();
                v.sort_unstable();
                v.dedup();
                v
            }

            #[test]
            fn signatures_are_std_s() {
                // Each line fails to compile if a method is missing or its signature
                // differs from std's.
                let _: (fn(&Shared<T>, Ordering) -> T, fn(&$atomic, Ordering) -> T) =
                    (Shared::<T>::load, $atomic::load);
                let _: (fn(&Shared<T>, T, Ordering), fn(&$atomic, T, Ordering)) =
                    (Shared::<T>::store, $atomic::store);
                type Rmw = fn(&Shared<T>, T, Ordering) -> T;
                type StdRmw = fn(&$atomic, T, Ordering) -> T;
                let _: [(Rmw, StdRmw); 9] = [
                    (Shared::<T>::swap, $atomic::swap),
                    (Shared::<T>::fetch_add, $atomic::fetch_add),
                    (Shared::<T>::fetch_sub, $atomic::fetch_sub),
                    (Shared::<T>::fetch_and, $atomic::fetch_and),
                    (Shared::<T>::fetch_nand, $atomic::fetch_nand),
                    (Shared::<T>::fetch_or, $atomic::fetch_or),
                    (Shared::<T>::fetch_xor, $atomic::fetch_xor),
                    (Shared::<T>::fetch_max, $atomic::fetch_max),
                    (Shared::<T>::fetch_min, $atomic::fetch_min),
                ];
                type Cas = fn(&Shared<T>, T, T, Ordering, Ordering) -> Result<T, T>;
                type StdCas = fn(&$atomic, T, T, Ordering, Ordering) -> Result<T, T>;
                let _: [(Cas, StdCas); 2] = [
                    (Shared::<T>::compare_exchange, $atomic::compare_exchange),
                    (Shared::<T>::compare_exchange_weak, $atomic::compare_exchange_weak),
                ];
                type F = fn(T) -> Option<T>;
                #[allow(deprecated)] // std's name for it until `try_update` replaces it
                let _: (
                    fn(&Shared<T>, Ordering, Ordering, F) -> Result<T, T>,
                    fn(&$atomic, Ordering, Ordering, F) -> Result<T, T>,
                ) = (Shared::<T>::fetch_update::<F>, $atomic::fetch_update::<F>);
            }

            #[test]
            fn read_modify_writes_match_std() {
                let shared = RawValue::<T>::new(0).unwrap();
                let std = $atomic::new(0);
                let mut checked = 0;
                for &init in &values() {
                    for &val in &values() {
                        for order in ORDERINGS {
                            check_rmw!(shared, std, init, val, order, checked:
                                swap fetch_add fetch_sub fetch_and fetch_nand fetch_or
                                fetch_xor fetch_max fetch_min);
                        }
                    }
                }
                assert_eq!(checked, values().len().pow(2) * ORDERINGS.len() * 9);
            }

            #[test]
            fn loads_and_stores_match_std() {
                let shared = RawValue::<T>::new(0).unwrap();
                for &val in &values() {
                    for order in [Relaxed, Release, SeqCst] {
                        shared.store(val, order);
                        assert_eq!(shared.get(), val);
                    }
                    for order in [Relaxed, Acquire, SeqCst] {
                        assert_eq!(shared.load(order), val);
                    }
                    shared.set(!val);
                    assert_eq!(shared.load(Relaxed), !val);
                }
            }

            #[test]
            fn compare_exchanges_match_std() {
                let shared = RawValue::<T>::new(0).unwrap();
                let std = $atomic::new(0);
                for &init in &values() {
                    for &current in &[init, init.wrapping_add(1), !init] {
                        for success in ORDERINGS {
                            for failure in FAILURE_ORDERINGS {
                                let new: T = init.rotate_left(3) ^ 0x55;
                                shared.set(init);
                                std.store(init, Relaxed);
                                let got = shared.compare_exchange(current, new, success, failure);
                                let want = std.compare_exchange(current, new, success, failure);
                                assert_eq!((got, shared.get()), (want, std.load(Relaxed)));

                                // The weak form may fail spuriously (`Err` with the
                                // expected value): retry those, as a caller would.
                                // (The value is `init`, so `Err(current)` is spurious.)
                                let weak = |cas: &dyn Fn() -> Result<T, T>| loop {
                                    match cas() {
                                        Err(actual) if actual == current => continue,
                                        other => break other,
                                    }
                                };
                                shared.set(init);
                                std.store(init, Relaxed);
                                let got = weak(&|| shared.compare_exchange_weak(current, new, success, failure));
                                let want = weak(&|| std.compare_exchange_weak(current, new, success, failure));
                                assert_eq!((got, shared.get()), (want, std.load(Relaxed)));
                            }
                        }
                    }
                }
            }

            #[test]
            fn fetch_updates_match_std() {
                let shared = RawValue::<T>::new(0).unwrap();
                let std = $atomic::new(0);
                for &init in &values() {
                    for f in [
                        (|x: T| Some(x.wrapping_mul(3))) as fn(T) -> Option<T>,
                        |x| (x % 2 == 0).then_some(x / 2),
                        |_| None,
                    ] {
                        shared.set(init);
                        std.store(init, Relaxed);
                        let (mut calls, mut std_calls) = (0, 0);
                        let got = shared.fetch_update(AcqRel, Acquire, |x| { calls += 1; f(x) });
                        #[allow(deprecated)]
                        let want = std.fetch_update(AcqRel, Acquire, |x| { std_calls += 1; f(x) });
                        assert_eq!((got, shared.get()), (want, std.load(Relaxed)));
                        assert!(calls >= 1 && std_calls >= 1);
                    }

                    // Another writer changes the value between `f`'s load and its
                    // compare-exchange: `f` runs again on the new value.
                    shared.set(init);
                    let other = shared.clone();
                    let mut seen = Vec::new();
                    let got = shared.fetch_update(SeqCst, SeqCst, |x| {
                        if seen.is_empty() {
                            other.fetch_add(1, Relaxed);
                        }
                        seen.push(x);
                        Some(x.wrapping_add(10))
                    });
                    assert_eq!(got, Ok(init.wrapping_add(1)));
                    assert_eq!(shared.get(), init.wrapping_add(11));
                    assert_eq!(seen[0], init);
                    assert_eq!(*seen.last().unwrap(), init.wrapping_add(1), "{seen:?}");
                }
            }

            #[test]
            fn invalid_orderings_panic_as_std_does() {
                // In a child, so that silencing the panic messages does not hide other
                // tests' failures.
                in_child(|| {
                    // (The hook `Process::spawn` installed writes to fd 2, past the
                    // test harness's capture: keep it for the assertions below.)
                    let reporting = std::panic::take_hook();
                    std::panic::set_hook(Box::new(|_| {}));
                    let shared = RawValue::<T>::new(1).unwrap();
                    let std = $atomic::new(1);
                    let mut results = Vec::new();
                    let mut both = |what: &str, ours: &dyn Fn(), theirs: &dyn Fn()| {
                        let ours = catch_unwind(AssertUnwindSafe(ours)).map_err(panic_message);
                        let theirs = catch_unwind(AssertUnwindSafe(theirs)).map_err(panic_message);
                        results.push((what.to_string(), ours, theirs));
                    };
                    for order in [Release, AcqRel] {
                        both("load", &|| { shared.load(order); }, &|| { std.load(order); });
                        both(
                            "compare_exchange",
                            &|| { let _ = shared.compare_exchange(1, 2, SeqCst, order); },
                            &|| { let _ = std.compare_exchange(1, 2, SeqCst, order); },
                        );
                        both(
                            "compare_exchange_weak",
                            &|| { let _ = shared.compare_exchange_weak(1, 2, SeqCst, order); },
                            &|| { let _ = std.compare_exchange_weak(1, 2, SeqCst, order); },
                        );
                        #[allow(deprecated)]
                        both(
                            "fetch_update",
                            &|| { let _ = shared.fetch_update(SeqCst, order, |x| Some(x)); },
                            &|| { let _ = std.fetch_update(SeqCst, order, |x| Some(x)); },
                        );
                    }
                    for order in [Acquire, AcqRel] {
                        both("store", &|| shared.store(1, order), &|| std.store(1, order));
                    }
                    std::panic::set_hook(reporting);
                    for (what, ours, theirs) in results {
                        assert!(theirs.is_err(), "std's {what} did not panic");
                        assert_eq!(ours, theirs, "{what}");
                    }
                });
            }

            #[test]
            fn counts_across_processes() {
                const PER_PROC: u32 = 20_000;
                let n = RawValue::<T>::new(0).unwrap();
                {
                    let n = n.clone();
                    race(2, move |_| {
                        for _ in 0..PER_PROC {
                            n.fetch_add(1, Relaxed);
                        }
                    });
                }
                // `as` truncates: wrap-around, for the 8- and 16-bit types.
                assert_eq!(n.get(), (2 * PER_PROC) as T);
            }
        }
    )*};
}

per_type! {
    t_u8: u8, AtomicU8;
    t_u16: u16, AtomicU16;
    t_u32: u32, AtomicU32;
    t_u64: u64, AtomicU64;
    t_usize: usize, AtomicUsize;
    t_i8: i8, AtomicI8;
    t_i16: i16, AtomicI16;
    t_i32: i32, AtomicI32;
    t_i64: i64, AtomicI64;
    t_isize: isize, AtomicIsize;
}
