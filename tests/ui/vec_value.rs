// A `Vec` cannot be a shared value: its buffer lives in this process's heap.
use sharedctypes::RawValue;

fn share_a_vec() {
    let _v = RawValue::new(vec![1u8, 2, 3]);
}

fn main() {}
