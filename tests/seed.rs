//! The seed's example prints exactly the seed's result.

#[allow(dead_code)]
#[path = "../examples/seed.rs"]
mod seed;

#[test]
fn seed_example_prints_the_seed_result() {
    let mut out = Vec::new();
    seed::run(&mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "49\n0.1111111111111111\nHELLO WORLD\n\
         [(3.515625, 39.0625), (33.0625, 4.0), (5.640625, 90.25)]\n"
    );
}
