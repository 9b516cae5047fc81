use sharedctypes::{typecode, RawArray};

type Nope = RawArray<typecode!('z')>;

fn main() {}
