//! Profiling aid (not a benchmark): processes allocating and dropping 64-byte objects
//! in one heap. `churn_prof [PAIRS] [PROCESSES]`.
use sharedctypes::{Heap, Process, RawValue};

fn work(heap: &Heap, n: usize) {
    let mut window: Vec<Option<RawValue<[u64; 8]>>> = (0..16).map(|_| None).collect();
    for i in 0..n {
        let v = RawValue::<[u64; 8]>::zeroed_in(heap).unwrap();
        window[i % 16] = Some(std::hint::black_box(v));
    }
}

fn main() {
    let heap = Heap::new(64 << 20).unwrap();
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (n, procs) = (arg(1, 4_000_000), arg(2, 1));
    let t0 = std::time::Instant::now();
    if procs == 1 {
        work(&heap, n);
    } else {
        let children: Vec<_> = (0..procs)
            .map(|_| {
                let heap = heap.clone();
                Process::spawn(move || work(&heap, n)).unwrap()
            })
            .collect();
        for c in children {
            c.join().unwrap();
        }
    }
    let per = t0.elapsed().as_nanos() as f64 / (n * procs) as f64;
    println!("{per:.1} ns per pair (wall, {procs} processes)");
}
