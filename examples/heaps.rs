//! Lists the sharedctypes heaps in `/dev/shm` and removes stale ones.
//!
//! ```sh
//! cargo run --example heaps                        # list them
//! cargo run --example heaps -- --remove            # remove those whose creator has exited
//! cargo run --example heaps -- --remove /a /b      # remove these (any state)
//! ```
//!
//! A named heap's name is removed when its creator drops it; a creator that was killed
//! (or never ran its destructors) leaves it behind, holding its memory in `/dev/shm`.
//! Heaps are recognised by the magic bytes at the start of the segment. A heap whose
//! creator has exited is either stale or was deliberately kept with `Heap::persist`:
//! `--remove` without names removes both, so name the ones to remove when some must stay.

use std::fs::File;
use std::io::Read;

use sharedctypes::{Error, Heap};

const SHM: &str = "/dev/shm";
const MAGIC: &[u8; 8] = b"SHCTYPES";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let remove = args.first().is_some_and(|a| a == "--remove");
    let chosen = if remove { &args[1..] } else { &args[..] };
    if !remove && !chosen.is_empty() {
        return Err("usage: heaps [--remove [NAME...]]".into());
    }

    if !chosen.is_empty() {
        for name in chosen {
            match Heap::unlink(name) {
                Ok(()) => println!("removed {name}"),
                Err(e) => println!("{name}: {e}"),
            }
        }
        return Ok(());
    }

    let mut found = 0;
    for entry in std::fs::read_dir(SHM)? {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !has_magic(&entry.path()) {
            continue;
        }
        found += 1;
        let name = format!("/{file_name}");
        let (description, creator_gone) = describe(&name);
        if remove && creator_gone {
            match Heap::unlink(&name) {
                Ok(()) => println!("removed {name}  ({description})"),
                Err(e) => println!("{name}: not removed: {e}"),
            }
        } else {
            println!("{name}  {description}");
        }
    }
    if found == 0 {
        println!("no sharedctypes heaps in {SHM}");
    }
    Ok(())
}

/// Whether the file starts with a heap's magic bytes.
fn has_magic(path: &std::path::Path) -> bool {
    let mut magic = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == MAGIC)
}

/// A one-line description, and whether the heap's creator is gone (or the heap is
/// unusable), which makes it a candidate for removal.
fn describe(name: &str) -> (String, bool) {
    let heap = match Heap::open(name) {
        Ok(heap) => heap,
        Err(Error::NotFound { .. }) => return ("being created".to_owned(), false),
        Err(e) => return (format!("unusable: {e}"), true),
    };
    let (creator, gone) = match heap.creator_pid() {
        Some(pid) if alive(pid) => (format!("creator {pid} running"), false),
        Some(pid) => (format!("creator {pid} exited"), true),
        None => ("creator unknown".to_owned(), true),
    };
    let keys = heap.keys().map_or_else(
        |e| format!("directory unreadable: {e}"),
        |k| format!("keys {k:?}"),
    );
    (
        format!(
            "{creator}, {} of {} bytes used, {keys}",
            heap.used(),
            heap.capacity()
        ),
        gone,
    )
}

/// Whether process `pid` exists (a zombie counts as exited).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
