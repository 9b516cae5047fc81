//! Profiling aid (not a benchmark): 1M fresh `RawValue<i64>`s kept alive.
use sharedctypes::{Heap, RawValue};
fn main() {
    let n = 1_000_000;
    let heap = Heap::new(n * 32).unwrap();
    let mut v = Vec::with_capacity(n);
    let t0 = std::time::Instant::now();
    for i in 0..n as i64 {
        v.push(RawValue::new_in(&heap, std::hint::black_box(i)).unwrap());
    }
    println!(
        "{:.1} ns per allocation",
        t0.elapsed().as_nanos() as f64 / n as f64
    );
    std::mem::forget(v);
}
