use sharedctypes::RawValue;

fn share(p: *const u8) {
    let _v = RawValue::new(p);
}

fn main() {}
