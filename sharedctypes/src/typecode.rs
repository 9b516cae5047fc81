//! Python's one-character typecodes: [`typecode!`](crate::typecode!) at compile time,
//! [`Typecode`] at run time.

use std::fmt;

use crate::error::Error;

/// Expands a typecode to its Rust type, so `RawArray::<typecode!('h')>::zeroed(7)` is
/// Python's `RawArray('h', 7)`.
///
/// | code | type | code | type |
/// |---|---|---|---|
/// | `'c'` | `u8` (a byte) | `'l'` | `c_long` |
/// | `'b'` | `i8` | `'L'` | `c_ulong` |
/// | `'B'` | `u8` | `'q'` | `i64` |
/// | `'h'` | `i16` | `'Q'` | `u64` |
/// | `'H'` | `u16` | `'f'` | `f32` |
/// | `'i'` | `i32` | `'d'` | `f64` |
/// | `'I'` | `u32` | | |
///
/// ```
/// use sharedctypes::{typecode, RawArray, RawValue};
///
/// let a = RawArray::<typecode!('h')>::zeroed(7)?;
/// let x = RawValue::<typecode!('d')>::new(2.4)?;
/// let _: &i16 = &a[0].get();
/// assert_eq!(x.get(), 2.4);
///
/// // 'c' is a byte, `u8` on every platform: Python's `RawArray('c', b"hi")`.
/// let s: RawArray<u8> = RawArray::<typecode!('c')>::from_bytes(b"hi")?;
/// assert_eq!(s.value(), b"hi");
/// # Ok::<(), sharedctypes::Error>(())
/// ```
///
/// An unknown code does not compile:
///
/// ```compile_fail
/// type Nope = sharedctypes::typecode!('z');
/// ```
#[macro_export]
macro_rules! typecode {
    ('c') => {
        u8
    };
    ('b') => {
        i8
    };
    ('B') => {
        u8
    };
    ('h') => {
        i16
    };
    ('H') => {
        u16
    };
    ('i') => {
        i32
    };
    ('I') => {
        u32
    };
    ('l') => {
        ::core::ffi::c_long
    };
    ('L') => {
        ::core::ffi::c_ulong
    };
    ('q') => {
        i64
    };
    ('Q') => {
        u64
    };
    ('f') => {
        f32
    };
    ('d') => {
        f64
    };
    ($other:tt) => {
        ::core::compile_error!(
            "unknown typecode; valid typecodes are 'c' (u8, a byte), 'b' (i8), 'B' (u8), \
             'h' (i16), 'H' (u16), 'i' (i32), 'I' (u32), 'l' (c_long), 'L' (c_ulong), \
             'q' (i64), 'Q' (u64), 'f' (f32), 'd' (f64)"
        )
    };
}

/// A typecode at run time: `Typecode::try_from('d')`.
///
/// ```
/// use sharedctypes::{Error, Typecode};
///
/// let d = Typecode::try_from('d')?;
/// assert_eq!((d.size(), d.as_char()), (8, 'd'));
/// assert!(matches!(Typecode::try_from('z'), Err(Error::UnknownTypecode('z'))));
/// # Ok::<(), sharedctypes::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum Typecode {
    /// `'c'`: `u8`, a byte of a byte string (Python's `c_char`, which holds `bytes`).
    Char,
    /// `'b'`: `i8`.
    I8,
    /// `'B'`: `u8`.
    U8,
    /// `'h'`: `i16`.
    I16,
    /// `'H'`: `u16`.
    U16,
    /// `'i'`: `i32`.
    I32,
    /// `'I'`: `u32`.
    U32,
    /// `'l'`: `c_long`.
    Long,
    /// `'L'`: `c_ulong`.
    ULong,
    /// `'q'`: `i64`.
    I64,
    /// `'Q'`: `u64`.
    U64,
    /// `'f'`: `f32`.
    F32,
    /// `'d'`: `f64`.
    F64,
}

impl Typecode {
    /// Every typecode, in Python's order.
    ///
    /// ```
    /// use sharedctypes::Typecode;
    ///
    /// let chars: String = Typecode::ALL.iter().map(|t| t.as_char()).collect();
    /// assert_eq!(chars, "cbBhHiIlLqQfd");
    /// ```
    pub const ALL: [Typecode; 13] = [
        Typecode::Char,
        Typecode::I8,
        Typecode::U8,
        Typecode::I16,
        Typecode::U16,
        Typecode::I32,
        Typecode::U32,
        Typecode::Long,
        Typecode::ULong,
        Typecode::I64,
        Typecode::U64,
        Typecode::F32,
        Typecode::F64,
    ];

    /// The code's character.
    ///
    /// ```
    /// use sharedctypes::Typecode;
    ///
    /// assert_eq!(Typecode::F64.as_char(), 'd');
    /// assert_eq!(Typecode::try_from('d')?, Typecode::F64); // and back
    /// # Ok::<(), sharedctypes::Error>(())
    /// ```
    pub const fn as_char(self) -> char {
        match self {
            Typecode::Char => 'c',
            Typecode::I8 => 'b',
            Typecode::U8 => 'B',
            Typecode::I16 => 'h',
            Typecode::U16 => 'H',
            Typecode::I32 => 'i',
            Typecode::U32 => 'I',
            Typecode::Long => 'l',
            Typecode::ULong => 'L',
            Typecode::I64 => 'q',
            Typecode::U64 => 'Q',
            Typecode::F32 => 'f',
            Typecode::F64 => 'd',
        }
    }

    /// The element's size in bytes (as `std::mem::size_of` of the
    /// [`typecode!`](crate::typecode!) type).
    ///
    /// ```
    /// use sharedctypes::{typecode, Typecode};
    ///
    /// assert_eq!(Typecode::I16.size(), 2);
    /// assert_eq!(Typecode::Long.size(), std::mem::size_of::<typecode!('l')>());
    /// ```
    pub const fn size(self) -> usize {
        use std::mem::size_of;
        match self {
            Typecode::Char | Typecode::I8 | Typecode::U8 => 1,
            Typecode::I16 | Typecode::U16 => 2,
            Typecode::I32 | Typecode::U32 | Typecode::F32 => 4,
            Typecode::Long => size_of::<crate::typecode!('l')>(),
            Typecode::ULong => size_of::<crate::typecode!('L')>(),
            Typecode::I64 | Typecode::U64 | Typecode::F64 => 8,
        }
    }

    /// The Rust type's name, e.g. `"f64"` or `"c_long"`.
    ///
    /// ```
    /// use sharedctypes::Typecode;
    ///
    /// assert_eq!(Typecode::F64.rust_type(), "f64");
    /// assert_eq!(Typecode::Char.rust_type(), "u8"); // a byte on every platform
    /// ```
    pub const fn rust_type(self) -> &'static str {
        match self {
            Typecode::Char => "u8",
            Typecode::I8 => "i8",
            Typecode::U8 => "u8",
            Typecode::I16 => "i16",
            Typecode::U16 => "u16",
            Typecode::I32 => "i32",
            Typecode::U32 => "u32",
            Typecode::Long => "c_long",
            Typecode::ULong => "c_ulong",
            Typecode::I64 => "i64",
            Typecode::U64 => "u64",
            Typecode::F32 => "f32",
            Typecode::F64 => "f64",
        }
    }
}

impl TryFrom<char> for Typecode {
    type Error = Error;

    fn try_from(c: char) -> Result<Self, Error> {
        Typecode::ALL
            .into_iter()
            .find(|t| t.as_char() == c)
            .ok_or(Error::UnknownTypecode(c))
    }
}

impl From<Typecode> for char {
    fn from(t: Typecode) -> char {
        t.as_char()
    }
}

impl fmt::Display for Typecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' ({})", self.as_char(), self.rust_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips() {
        for t in Typecode::ALL {
            assert_eq!(Typecode::try_from(t.as_char()).unwrap(), t);
        }
        assert_eq!(Typecode::try_from('c').unwrap().size(), 1);
        assert_eq!(Typecode::Char.rust_type(), "u8");
        assert_eq!(Typecode::Char.to_string(), "'c' (u8)");
        assert_eq!(Typecode::try_from('l').unwrap().size(), 8);
        for c in ['x', 'u', 'D', '\0', 'é'] {
            assert!(matches!(Typecode::try_from(c), Err(Error::UnknownTypecode(x)) if x == c));
        }
    }
}
