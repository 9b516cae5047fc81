//! `SHAREDCTYPES_HEAP_SIZE` parsing and `Typecode::try_from(char)` on arbitrary text.
//!
//! Properties: nothing panics; a parsed size is never 0 and survives being printed in
//! bytes and parsed again, and surrounding blanks change nothing; a typecode that
//! parses gives its own char back and a plausible size, one that does not is
//! `Error::UnknownTypecode` of that very char.

use sharedctypes::__fuzz::parse_heap_size;
use sharedctypes::{Error, Typecode};

/// Runs one input; panics on a broken property.
pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        // Environment values need not be UTF-8; the parser only ever sees a `str`.
        return;
    };
    let size = parse_heap_size(s);
    if let Some(n) = size {
        assert!(n > 0, "{s:?} parsed as 0 bytes");
        assert_eq!(parse_heap_size(&n.to_string()), Some(n), "{s:?} → {n}");
    }
    assert_eq!(
        parse_heap_size(&format!(" {s}\t")),
        size,
        "blanks around {s:?}"
    );

    for c in s.chars() {
        match Typecode::try_from(c) {
            Ok(t) => {
                assert_eq!(t.as_char(), c);
                assert_eq!(char::from(t), c);
                assert!(
                    matches!(t.size(), 1 | 2 | 4 | 8),
                    "{c:?}: size {}",
                    t.size()
                );
                assert!(!t.rust_type().is_empty());
                assert!(
                    t.to_string().starts_with(&format!("'{c}'")),
                    "{c:?} shows as {t}"
                );
            }
            Err(e @ Error::UnknownTypecode(d)) => {
                assert_eq!(d, c);
                assert!(!e.to_string().is_empty());
            }
            Err(e) => panic!("{c:?}: unexpected error {e}"),
        }
    }
}
