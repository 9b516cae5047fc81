use std::sync::Mutex;

use sharedctypes::Value;

fn guarded(_v: Value<i32, Mutex<()>>) {}

fn main() {}
