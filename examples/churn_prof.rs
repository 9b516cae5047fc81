//! Profiling aid (not a benchmark): one process allocating and dropping 64-byte objects.
use sharedctypes::{Heap, RawValue};
fn main() {
    let heap = Heap::new(64 << 20).unwrap();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4_000_000);
    let mut window: Vec<Option<RawValue<[u64; 8]>>> = (0..16).map(|_| None).collect();
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let v = RawValue::<[u64; 8]>::zeroed_in(&heap).unwrap();
        window[i % 16] = Some(std::hint::black_box(v));
    }
    drop(window);
    println!(
        "{:.1} ns per pair",
        t0.elapsed().as_nanos() as f64 / n as f64
    );
}
