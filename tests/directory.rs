//! The directory at scale and under contention, with real processes: many keys,
//! concurrent publishers of the same keys, unpublish, and publishers killed while the
//! table grows. (Damaged tables are tested in the crate, where their layout is known.)

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::unique;
use sharedctypes::{Error, Heap, NameKind, Process, RawArray, RawValue};

/// Removes the name if a failed test left it behind.
struct Cleanup<'a>(&'a str);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = Heap::unlink(self.0);
    }
}

fn key(i: u64) -> String {
    format!("k{i}")
}

/// The value published under `key(i)`, if any.
fn value(heap: &Heap, i: u64) -> Option<u64> {
    match heap.lookup::<RawValue<u64>>(&key(i)) {
        Ok(v) => Some(v.get()),
        Err(Error::NotFound { .. }) => None,
        Err(e) => panic!("lookup of {}: {e}", key(i)),
    }
}

fn publish_value(heap: &Heap, i: u64) -> sharedctypes::Result<()> {
    heap.publish(&key(i), &RawValue::new_in(heap, i)?)
}

#[test]
fn a_hundred_thousand_keys_from_four_processes() {
    const N: u64 = 100_000;
    const CHILDREN: u64 = 4;
    let name = unique("sct-dir-100k");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 64 << 20).unwrap();
    // Each child publishes its quarter, looking each key up as soon as it is published
    // (while the others make the table grow).
    let children: Vec<_> = (0..CHILDREN)
        .map(|c| {
            let heap = heap.clone();
            Process::spawn(move || {
                for i in (c..N).step_by(CHILDREN as usize) {
                    publish_value(&heap, i).unwrap();
                    assert_eq!(value(&heap, i), Some(i));
                }
            })
            .unwrap()
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    // Another program would open it so: every entry checked once, then each lookup
    // checks its own.
    let opened = Heap::open(&name).unwrap();
    for h in [&opened, &heap] {
        for i in 0..N {
            assert_eq!(value(h, i), Some(i));
        }
    }
    assert_eq!(value(&opened, N), None);
    let keys = opened.keys().unwrap();
    assert_eq!(keys.len(), N as usize);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), N as usize);
}

#[test]
fn of_concurrent_publishes_of_many_keys_each_has_one_winner() {
    const N: usize = 3000;
    const CHILDREN: usize = 4;
    let heap = Heap::new(16 << 20).unwrap();
    let go = RawValue::new_in(&heap, 0u32).unwrap();
    let wins = RawArray::<u32>::zeroed_in(&heap, N).unwrap();
    let winner = RawArray::<u32>::zeroed_in(&heap, N).unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|c| {
            let (heap, go, wins, winner) = (heap.clone(), go.clone(), wins.clone(), winner.clone());
            Process::spawn(move || {
                while go.get() == 0 {
                    std::hint::spin_loop();
                }
                // Every child publishes every key, in an order of its own.
                for j in 0..N {
                    let k = if c % 2 == 0 { j } else { N - 1 - j };
                    let k = (k + c * N / CHILDREN) % N;
                    let mine = RawValue::new_in(&heap, c as u32 + 1).unwrap();
                    match heap.publish(&format!("s{k}"), &mine) {
                        Ok(()) => {
                            wins[k].fetch_add(1, Ordering::Relaxed);
                            winner[k].set(c as u32 + 1);
                        }
                        Err(Error::AlreadyExists { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
            .unwrap()
        })
        .collect();
    go.set(1);
    for c in children {
        c.join().unwrap();
    }
    for k in 0..N {
        assert_eq!(wins[k].get(), 1, "key s{k}");
        let v: RawValue<u32> = heap.lookup(&format!("s{k}")).unwrap();
        assert_eq!(v.get(), winner[k].get(), "key s{k}");
    }
    assert_eq!(heap.keys().unwrap().len(), N);
}

#[test]
fn unpublish_removes_a_key_and_frees_it() {
    let name = unique("sct-dir-unpublish");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 1 << 20).unwrap();
    let first = RawValue::new_in(&heap, 1u64).unwrap();
    heap.publish("a", &first).unwrap();
    heap.publish("b", &RawValue::new_in(&heap, 2u64).unwrap())
        .unwrap();
    let opened = Heap::open(&name).unwrap();
    let seen: RawValue<u64> = opened.lookup("a").unwrap();

    heap.unpublish("a").unwrap();
    for h in [&heap, &opened] {
        let e = h.lookup::<RawValue<u64>>("a").unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
        assert_eq!(h.keys().unwrap(), ["b"]);
    }
    // A handle looked up before keeps working: the object is still there.
    seen.set(10);
    assert_eq!(first.get(), 10);

    // Missing: the key and the heap are named, as for a lookup.
    for h in [&heap, &opened] {
        let e = h.unpublish("a").unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { name: k, kind: NameKind::Key { heap: Some(n) } }
                if k == "a" && *n == name),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("key \"a\" not found in heap \"{name}\"")),
            "{e}"
        );
    }
    let e = Heap::new(4096).unwrap().unpublish("jobs").unwrap_err();
    assert!(e
        .to_string()
        .starts_with("key \"jobs\" not found in an anonymous heap"));
    assert!(matches!(heap.unpublish(""), Err(Error::InvalidName { .. })));

    // The key is free again, through either mapping; lookups find the new object.
    opened
        .publish("a", &RawValue::new_in(&opened, 3u64).unwrap())
        .unwrap();
    for h in [&heap, &opened] {
        assert_eq!(h.lookup::<RawValue<u64>>("a").unwrap().get(), 3);
        assert_eq!(h.keys().unwrap(), ["a", "b"]);
    }
    assert_eq!(first.get(), 10);
    // The same object may be published again too.
    heap.unpublish("a").unwrap();
    heap.publish("a", &first).unwrap();
    assert_eq!(opened.lookup::<RawValue<u64>>("a").unwrap(), first);
    assert!(Heap::open(&name).is_ok());
}

#[test]
fn unpublish_publish_and_lookup_of_one_key_race_safely() {
    const CHILDREN: usize = 4;
    const ROUNDS: usize = 1500;
    let name = unique("sct-dir-churn");
    let _cleanup = Cleanup(&name);
    let heap = Heap::create(&name, 16 << 20).unwrap();
    // How many children hold the key (published, not yet unpublished): never above 1.
    let holders = RawValue::new_in(&heap, 0u32).unwrap();
    let published = RawArray::<u32>::zeroed_in(&heap, CHILDREN).unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|c| {
            let (heap, holders, published) = (heap.clone(), holders.clone(), published.clone());
            Process::spawn(move || {
                let me = c as u64 + 1;
                for _ in 0..ROUNDS {
                    // Anyone's value, or nobody's.
                    if let Some(v) = value_of(&heap) {
                        assert!((1..=CHILDREN as u64).contains(&v), "{v}");
                    }
                    match heap.publish("k", &RawValue::new_in(&heap, me).unwrap()) {
                        Ok(()) => {
                            assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0);
                            published[c].fetch_add(1, Ordering::Relaxed);
                            // Nobody else can publish or unpublish it meanwhile.
                            assert_eq!(value_of(&heap), Some(me));
                            assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1);
                            heap.unpublish("k").unwrap();
                        }
                        Err(Error::AlreadyExists { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
            .unwrap()
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    let total: u32 = published.to_vec().iter().sum();
    // How many rounds win depends on scheduling (a child that loses every race
    // publishes nothing); that some did is all this asks.
    assert!(total > 0, "{total}");
    assert_eq!(value_of(&heap), None);
    assert!(heap.keys().unwrap().is_empty());
    assert!(Heap::open(&name).unwrap().keys().unwrap().is_empty());
}

fn value_of(heap: &Heap) -> Option<u64> {
    match heap.lookup::<RawValue<u64>>("k") {
        Ok(v) => Some(v.get()),
        Err(Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn publishers_killed_while_the_table_grows_leave_it_consistent() {
    const CHILDREN: u64 = 3;
    /// Keys of child `c` are `c * SPAN + i`.
    const SPAN: u64 = 1 << 32;
    for (round, at_least) in [50u32, 400, 1500].into_iter().enumerate() {
        let name = unique("sct-dir-kill");
        let _cleanup = Cleanup(&name);
        let heap = Heap::create(&name, 32 << 20).unwrap();
        // Keys each child has published (`publish` returned), in order.
        let done = RawArray::<u32>::zeroed_in(&heap, CHILDREN as usize).unwrap();
        let children: Vec<_> = (0..CHILDREN)
            .map(|c| {
                let (heap, done) = (heap.clone(), done.clone());
                Process::spawn(move || {
                    for i in 0.. {
                        publish_value(&heap, c * SPAN + i).unwrap();
                        done[c as usize].set(i as u32 + 1);
                    }
                })
                .unwrap()
            })
            .collect();
        // Killed one after the other, at whatever instant each has reached.
        for (c, child) in children.into_iter().enumerate() {
            while done[c].get() < at_least {
                std::thread::sleep(Duration::from_micros(200));
            }
            child.kill().unwrap();
            let _ = child.wait().unwrap();
        }
        let mut expected = 0;
        for c in 0..CHILDREN {
            let n = u64::from(done[c as usize].get());
            for i in 0..n {
                assert_eq!(
                    value(&heap, c * SPAN + i),
                    Some(c * SPAN + i),
                    "round {round}"
                );
            }
            // The key it was publishing when killed: there or not, never damaged.
            let last = value(&heap, c * SPAN + n);
            assert!(last.is_none() || last == Some(c * SPAN + n));
            expected += n + u64::from(last.is_some());
            assert_eq!(value(&heap, c * SPAN + n + 1), None);
        }
        let keys = heap.keys().unwrap();
        assert_eq!(keys.len() as u64, expected, "round {round}");
        // The survivors go on: any copy left half done is finished.
        for i in 0..2000 {
            publish_value(&heap, CHILDREN * SPAN + i).unwrap();
        }
        let opened = Heap::open(&name).unwrap();
        assert_eq!(opened.keys().unwrap().len() as u64, expected + 2000);
        for i in 0..2000 {
            assert_eq!(
                value(&opened, CHILDREN * SPAN + i),
                Some(CHILDREN * SPAN + i)
            );
        }
    }
}
