//! The default heap: the one every constructor without `_in` allocates from.

use std::io;
use std::sync::OnceLock;

use super::Heap;
use crate::error::{Error, Result};

/// The environment variable that sets the default heap's size, e.g. `64G`, `512M`,
/// `1048576`.
///
/// ```
/// use sharedctypes::{default_heap, HEAP_SIZE_ENV};
///
/// // Set before the default heap's first use in this process (it is created once).
/// std::env::set_var(HEAP_SIZE_ENV, "64M");
/// assert_eq!(default_heap().capacity(), 64 << 20);
/// ```
pub const HEAP_SIZE_ENV: &str = "SHAREDCTYPES_HEAP_SIZE";

/// The default heap's address space when [`HEAP_SIZE_ENV`] is unset: 64 GiB, halved
/// (down to 1 GiB) if the system refuses to map that much.
///
/// ```
/// use sharedctypes::{default_heap, DEFAULT_HEAP_SIZE, HEAP_SIZE_ENV};
///
/// std::env::remove_var(HEAP_SIZE_ENV); // before the default heap's first use
/// let capacity = default_heap().capacity();
/// assert!(capacity <= DEFAULT_HEAP_SIZE && capacity >= 1 << 30); // address space only
/// ```
pub const DEFAULT_HEAP_SIZE: usize = 64 << 30;

static DEFAULT_HEAP: OnceLock<Result<Heap>> = OnceLock::new();

/// The heap every constructor without `_in` allocates from, created on first use.
///
/// It reserves 64 GiB of *address space* (set [`SHAREDCTYPES_HEAP_SIZE`](HEAP_SIZE_ENV),
/// e.g. `SHAREDCTYPES_HEAP_SIZE=4G`, before first use to change it); memory is
/// committed only as objects are written, so the size costs nothing until used.
///
/// Created in a process, it is inherited by every child forked afterwards.
/// [`Process::spawn`](crate::Process::spawn) creates it before forking, so a child it
/// spawns always shares the parent's default heap. **A default heap first used in a
/// child forked by other means (`libc::fork`) belongs to that child and its
/// descendants**: the parent never sees it. Touch it before forking (any `new`/`zeroed`
/// call, or `default_heap()` itself) when parent and children must share objects.
///
/// # Panics
///
/// If the heap cannot be created: the size variable is malformed
/// ([`Error::InvalidHeapSize`]), or the system refuses the memory
/// ([`Error::OutOfMemory`]: an explicit size that cannot be mapped, or not even 1 GiB
/// for the built-in default — which halves down to 1 GiB until the system agrees, under
/// `ulimit -v` or `ulimit -f`, say). The constructors without `_in` never panic for
/// this: they return the same failure as an `Err`, every time they are called.
///
/// ```
/// let heap = sharedctypes::default_heap();
/// assert!(heap.capacity() >= 1 << 30);
/// ```
pub fn default_heap() -> &'static Heap {
    match try_default_heap() {
        Ok(heap) => heap,
        Err(e) => panic!("sharedctypes: cannot create the default heap: {e}"),
    }
}

/// [`default_heap`] as a `Result`.
pub(crate) fn try_default_heap() -> Result<&'static Heap> {
    match DEFAULT_HEAP.get_or_init(create_default_heap) {
        Ok(heap) => Ok(heap),
        Err(e) => Err(duplicate(e)),
    }
}

/// A copy of one of the errors [`create_default_heap`] returns, which is kept for
/// every later call (`Error` is not `Clone`: `io::Error` is not).
fn duplicate(e: &Error) -> Error {
    match e {
        Error::OutOfMemory {
            requested,
            available,
        } => Error::OutOfMemory {
            requested: *requested,
            available: *available,
        },
        Error::InvalidHeapSize { value } => Error::InvalidHeapSize {
            value: value.clone(),
        },
        Error::Os { op, source } => Error::Os {
            op,
            source: match source.raw_os_error() {
                Some(errno) => io::Error::from_raw_os_error(errno),
                None => io::Error::new(source.kind(), source.to_string()),
            },
        },
        other => Error::os(
            "creating the default heap",
            io::Error::other(other.to_string()),
        ),
    }
}

fn create_default_heap() -> Result<Heap> {
    match std::env::var_os(HEAP_SIZE_ENV) {
        Some(value) => {
            // An explicit size is used as given: malformed (not UTF-8 included) is an
            // error, and so is a size the system refuses; no smaller fallback.
            let size =
                value
                    .to_str()
                    .and_then(parse_size)
                    .ok_or_else(|| Error::InvalidHeapSize {
                        value: value.to_string_lossy().into_owned(),
                    })?;
            Heap::new(size)
        }
        None => {
            let mut size = DEFAULT_HEAP_SIZE;
            loop {
                match Heap::new(size) {
                    Ok(heap) => return Ok(heap),
                    // Only a lack of room is worth a smaller try.
                    Err(Error::OutOfMemory { .. }) if size > MIN_DEFAULT_HEAP_SIZE => size /= 2,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// The smallest default heap [`create_default_heap`] halves down to.
const MIN_DEFAULT_HEAP_SIZE: usize = 1 << 30;

/// Parses `123`, `64K`, `512M`, `16G`, `1T` (optionally `KiB`/`KB`…), in bytes.
pub(crate) fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let num: usize = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return None,
    };
    num.checked_mul(1usize << shift).filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1t"), Some(1 << 40));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("12X"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999T"), None);
    }
}
