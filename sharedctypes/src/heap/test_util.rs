//! Helpers for the unit tests that damage a named heap's file, as another process of
//! the same user could.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Heap;
use crate::error::Result;

/// A heap name unique to this process and call.
pub(crate) fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("/sct-unit-{}-{n}", std::process::id())
}

/// The named heap's file, for reading and writing.
pub(crate) fn shm_file(name: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm{name}"))
        .unwrap()
}

pub(crate) fn u64_at(f: &File, at: u64) -> u64 {
    let mut b = [0; 8];
    f.read_exact_at(&mut b, at).unwrap();
    u64::from_ne_bytes(b)
}

pub(crate) fn u32_at(f: &File, at: u64) -> u32 {
    let mut b = [0; 4];
    f.read_exact_at(&mut b, at).unwrap();
    u32::from_ne_bytes(b)
}

pub(crate) fn put(f: &File, at: u64, bytes: &[u8]) {
    f.write_all_at(bytes, at).unwrap();
}

pub(crate) fn put_u64(f: &File, at: u64, value: u64) {
    put(f, at, &value.to_ne_bytes());
}

/// Makes a named heap, fills it with `setup` (whose result says where things are),
/// lets `edit` damage its file after every handle is gone, then opens it.
pub(crate) fn open_damaged<S>(
    setup: impl FnOnce(&Heap, &File) -> S,
    edit: impl FnOnce(&File, &S),
) -> Result<Heap> {
    let name = unique();
    let file;
    let spots;
    {
        let heap = Heap::create(&name, 1 << 16).unwrap();
        heap.persist();
        file = shm_file(&name);
        spots = setup(&heap, &file);
    }
    edit(&file, &spots);
    let result = Heap::open(&name);
    Heap::unlink(&name).unwrap();
    result
}
