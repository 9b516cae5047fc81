//! What can be published: the sealed [`Publish`] trait, implemented by every handle
//! kind, which says what a handle refers to and rebuilds one from a directory entry.

use super::Heap;
use crate::layout::OwnedLayout;
use crate::raw::{RawArray, RawValue};
use crate::shared::SharedType;
use crate::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
use crate::synchronized::{synchronized_with, Array, Value};
use crate::TypeLayout;

pub(crate) use self::private::{Found, Kind, LockKind, Parts, Shape};

// ---------------------------------------------------------------------------------------
// Publishable handles
// ---------------------------------------------------------------------------------------

/// Plumbing of [`Publish`], unnameable outside the crate.
mod private {
    use super::*;

    /// What a handle refers to.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Shape {
        Value = 1,
        Array = 2,
        Lock = 3,
        Event = 4,
        Semaphore = 5,
        BoundedSemaphore = 6,
        Barrier = 7,
        Condition = 8,
    }

    /// Which lock a handle carries.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum LockKind {
        None = 0,
        Lock = 1,
        RLock = 2,
    }

    /// A handle's kind, as stored in a directory entry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Kind {
        pub shape: Shape,
        pub lock: LockKind,
    }

    impl Kind {
        pub(crate) const fn new(shape: Shape, lock: LockKind) -> Kind {
            Kind { shape, lock }
        }

        pub(crate) fn to_bits(self) -> u32 {
            self.shape as u32 | (self.lock as u32) << 8
        }

        pub(crate) fn from_bits(bits: u32) -> Option<Kind> {
            let shape = match bits & 0xff {
                1 => Shape::Value,
                2 => Shape::Array,
                3 => Shape::Lock,
                4 => Shape::Event,
                5 => Shape::Semaphore,
                6 => Shape::BoundedSemaphore,
                7 => Shape::Barrier,
                8 => Shape::Condition,
                _ => return None,
            };
            let lock = match bits >> 8 {
                0 => LockKind::None,
                1 => LockKind::Lock,
                2 => LockKind::RLock,
                _ => return None,
            };
            let lock_ok = match shape {
                Shape::Value | Shape::Array => true,
                Shape::Lock => lock != LockKind::None,
                // Coordination objects carry no lock.
                _ => lock == LockKind::None,
            };
            lock_ok.then_some(Kind { shape, lock })
        }

        /// `a Value<Point> with an RLock`, `a RawArray<f64>`, `an RLock`.
        pub(crate) fn describe(self, elem: Option<&OwnedLayout>) -> String {
            let ty = elem.map_or_else(|| "?".to_owned(), OwnedLayout::short_name);
            let lock = match self.lock {
                LockKind::None => "",
                LockKind::Lock => " with a Lock",
                LockKind::RLock => " with an RLock",
            };
            match (self.shape, self.lock) {
                (Shape::Lock, LockKind::RLock) => "an RLock".to_owned(),
                (Shape::Lock, _) => "a Lock".to_owned(),
                (Shape::Value, LockKind::None) => format!("a RawValue<{ty}>"),
                (Shape::Array, LockKind::None) => format!("a RawArray<{ty}>"),
                (Shape::Value, _) => format!("a Value<{ty}>{lock}"),
                (Shape::Array, _) => format!("an Array<{ty}>{lock}"),
                (Shape::Event, _) => "an Event".to_owned(),
                (Shape::Semaphore, _) => "a Semaphore".to_owned(),
                (Shape::BoundedSemaphore, _) => "a BoundedSemaphore".to_owned(),
                (Shape::Barrier, _) => "a Barrier".to_owned(),
                (Shape::Condition, _) => "a Condition".to_owned(),
            }
        }
    }

    /// Where a handle's memory is: heap and offset of the object and of the lock.
    pub struct Parts<'a> {
        pub object: Option<(&'a Heap, usize)>,
        pub len: usize,
        pub lock: Option<(&'a Heap, usize)>,
    }

    /// Checked offsets read from a directory entry.
    pub struct Found {
        pub object: usize,
        pub len: usize,
        pub lock: usize,
    }
}

/// A handle that [`Heap::publish`] records and [`Heap::lookup`] gives back:
/// [`RawValue`], [`RawArray`], [`Value`], [`Array`], [`Lock`], [`RLock`], [`Event`],
/// [`Semaphore`], [`BoundedSemaphore`] and [`Barrier`]. Sealed.
///
/// ```
/// use sharedctypes::{Array, Heap, Lock, Publish};
///
/// fn share<H: Publish>(heap: &Heap, key: &str, h: &H) -> sharedctypes::Result<()> {
///     heap.publish(key, h)
/// }
/// let heap = Heap::new(1 << 16)?;
/// let lock = Lock::new_in(&heap)?;
/// share(&heap, "lock", &lock)?;
/// share(&heap, "a", &sharedctypes::synchronized_with(
///     sharedctypes::RawArray::<u8>::zeroed_in(&heap, 4)?, lock.clone()))?;
/// let a: Array<u8, Lock> = heap.lookup("a")?;
/// assert!(a.get_lock() == &heap.lookup::<Lock>("lock")?);
/// # Ok::<(), sharedctypes::Error>(())
/// ```
pub trait Publish: crate::sealed::Sealed + Sized {
    #[doc(hidden)]
    const __KIND: Kind;

    /// The element type's real `size_of` and `align_of` (never taken from its
    /// `LAYOUT`); `None` for a bare lock.
    #[doc(hidden)]
    const __ELEM: Option<(usize, usize)>;

    /// The element type's layout; `None` for a bare lock.
    #[doc(hidden)]
    fn __layout() -> Option<&'static TypeLayout>;

    #[doc(hidden)]
    fn __parts(&self) -> Parts<'_>;

    /// Rebuilds a handle of this kind from a directory entry.
    ///
    /// # Safety
    ///
    /// For each part this kind uses, the offsets in `found` must be in bounds of `heap`
    /// and aligned: the object for `found.len` elements of the element type, the lock
    /// for a lock (`LOCK_SIZE` bytes, `LOCK_ALIGN`-aligned).
    #[doc(hidden)]
    unsafe fn __rebuild(heap: &Heap, found: &Found) -> Self;
}

/// `T`'s real size and alignment, for [`Publish::__ELEM`].
const fn elem<T>() -> Option<(usize, usize)> {
    Some((std::mem::size_of::<T>(), std::mem::align_of::<T>()))
}

impl<T: SharedType> Publish for RawValue<T> {
    const __KIND: Kind = Kind::new(Shape::Value, LockKind::None);
    const __ELEM: Option<(usize, usize)> = elem::<T>();

    fn __layout() -> Option<&'static TypeLayout> {
        Some(&T::LAYOUT)
    }

    fn __parts(&self) -> Parts<'_> {
        Parts {
            object: Some((self.heap(), self.offset())),
            len: 1,
            lock: None,
        }
    }

    unsafe fn __rebuild(heap: &Heap, found: &Found) -> Self {
        // SAFETY: the caller guarantees the object's offset is in bounds and aligned for `T`.
        unsafe { RawValue::from_offset(heap, found.object) }
    }
}

impl<T: SharedType> Publish for RawArray<T> {
    const __KIND: Kind = Kind::new(Shape::Array, LockKind::None);
    const __ELEM: Option<(usize, usize)> = elem::<T>();

    fn __layout() -> Option<&'static TypeLayout> {
        Some(&T::LAYOUT)
    }

    fn __parts(&self) -> Parts<'_> {
        Parts {
            object: Some((self.heap(), self.offset())),
            len: self.len(),
            lock: None,
        }
    }

    unsafe fn __rebuild(heap: &Heap, found: &Found) -> Self {
        // SAFETY: the caller guarantees `found.len` elements at the object's offset are in
        // bounds and aligned for `T`.
        unsafe { RawArray::from_offset(heap, found.object, found.len) }
    }
}

/// `Value`, `Array` and bare-lock impls for one lock type.
macro_rules! publish_with_lock {
    ($lock:ident) => {
        impl<T: SharedType> Publish for Value<T, $lock> {
            const __KIND: Kind = Kind::new(Shape::Value, LockKind::$lock);
            const __ELEM: Option<(usize, usize)> = elem::<T>();

            fn __layout() -> Option<&'static TypeLayout> {
                Some(&T::LAYOUT)
            }

            fn __parts(&self) -> Parts<'_> {
                let obj = self.get_obj();
                let lock = self.get_lock();
                Parts {
                    object: Some((obj.heap(), obj.offset())),
                    len: 1,
                    lock: Some((lock.heap(), lock.offset())),
                }
            }

            unsafe fn __rebuild(heap: &Heap, found: &Found) -> Self {
                // SAFETY: the caller guarantees the object's offset is valid for a `T`.
                let obj = unsafe { RawValue::from_offset(heap, found.object) };
                // SAFETY: the caller guarantees the lock's offset is valid for a lock.
                let lock = unsafe { $lock::from_offset(heap, found.lock) };
                synchronized_with(obj, lock)
            }
        }

        impl<T: SharedType> Publish for Array<T, $lock> {
            const __KIND: Kind = Kind::new(Shape::Array, LockKind::$lock);
            const __ELEM: Option<(usize, usize)> = elem::<T>();

            fn __layout() -> Option<&'static TypeLayout> {
                Some(&T::LAYOUT)
            }

            fn __parts(&self) -> Parts<'_> {
                let obj = self.get_obj();
                let lock = self.get_lock();
                Parts {
                    object: Some((obj.heap(), obj.offset())),
                    len: obj.len(),
                    lock: Some((lock.heap(), lock.offset())),
                }
            }

            unsafe fn __rebuild(heap: &Heap, found: &Found) -> Self {
                // SAFETY: the caller guarantees `found.len` elements of `T` at the offset.
                let obj = unsafe { RawArray::from_offset(heap, found.object, found.len) };
                // SAFETY: the caller guarantees the lock's offset is valid for a lock.
                let lock = unsafe { $lock::from_offset(heap, found.lock) };
                synchronized_with(obj, lock)
            }
        }

        impl Publish for $lock {
            const __KIND: Kind = Kind::new(Shape::Lock, LockKind::$lock);
            const __ELEM: Option<(usize, usize)> = None;

            fn __layout() -> Option<&'static TypeLayout> {
                None
            }

            fn __parts(&self) -> Parts<'_> {
                Parts {
                    object: None,
                    len: 0,
                    lock: Some((self.heap(), self.offset())),
                }
            }

            unsafe fn __rebuild(heap: &Heap, found: &Found) -> Self {
                // SAFETY: the caller guarantees the lock's offset is valid for a lock.
                unsafe { $lock::from_offset(heap, found.lock) }
            }
        }
    };
}

publish_with_lock!(Lock);
publish_with_lock!(RLock);

// Coordination objects: their kind is a shape of its own, and their state is published
// as an object whose layout (a struct named for the type) is compared like any other, so
// programs built with different versions of the state fail the lookup.

/// The layout of a coordination object's state: a 64-bit word and two 32-bit fields
/// (`Semaphore`: word, limit; `Barrier`: word, parties), or one 32-bit word (`Event`).
macro_rules! state_layout {
    ($name:literal, $state:ty, [$($field:literal: $prim:ty => $offset:expr),*]) => {{
        const FIELDS: &[crate::layout::FieldLayout] = &[$(crate::layout::FieldLayout {
            name: $field,
            offset: $offset,
            layout: &<$prim as SharedType>::LAYOUT,
        }),*];
        const LAYOUT: TypeLayout = TypeLayout::structure(
            $name,
            std::mem::size_of::<$state>(),
            std::mem::align_of::<$state>(),
            FIELDS,
        );
        &LAYOUT
    }};
}

/// `Publish` for a coordination object, given its shape and state layout.
macro_rules! publish_state {
    ($ty:ident, $state:ty, $layout:expr) => {
        impl crate::sealed::Sealed for $ty {}

        impl Publish for $ty {
            const __KIND: Kind = Kind::new(Shape::$ty, LockKind::None);
            const __ELEM: Option<(usize, usize)> = elem::<$state>();

            fn __layout() -> Option<&'static TypeLayout> {
                Some($layout)
            }

            fn __parts(&self) -> Parts<'_> {
                Parts {
                    object: Some((self.heap(), self.offset())),
                    len: 1,
                    lock: None,
                }
            }

            unsafe fn __rebuild(heap: &Heap, found: &Found) -> Self {
                // SAFETY: the caller guarantees the object's offset is in bounds and
                // aligned for one `$state`.
                unsafe { $ty::from_offset(heap, found.object) }
            }
        }
    };
}

publish_state!(
    Event,
    crate::sync::RawEvent,
    state_layout!("Event", crate::sync::RawEvent, ["word": u32 => 0])
);
publish_state!(
    Semaphore,
    crate::sync::RawSemaphore,
    state_layout!("Semaphore", crate::sync::RawSemaphore, ["word": u64 => 0, "limit": u32 => 8, "reserved": u32 => 12])
);
publish_state!(
    BoundedSemaphore,
    crate::sync::RawSemaphore,
    state_layout!("Semaphore", crate::sync::RawSemaphore, ["word": u64 => 0, "limit": u32 => 8, "reserved": u32 => 12])
);
publish_state!(
    Barrier,
    crate::sync::RawBarrier,
    state_layout!("Barrier", crate::sync::RawBarrier, ["word": u64 => 0, "parties": u32 => 8, "reserved": u32 => 12])
);

publish_state!(
    Condition,
    crate::sync::ConditionState,
    state_layout!("Condition", crate::sync::ConditionState, [
        "high_water": u32 => 0,
        "overflow": u32 => 4,
        "overflow_seq": u32 => 8,
        "reserved": u32 => 12,
        "slots": [u64; crate::sync::MAX_WAITERS] => 16
    ])
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for shape in [Shape::Value, Shape::Array, Shape::Lock] {
            for lock in [LockKind::None, LockKind::Lock, LockKind::RLock] {
                let k = Kind::new(shape, lock);
                let back = Kind::from_bits(k.to_bits());
                if shape == Shape::Lock && lock == LockKind::None {
                    assert_eq!(back, None);
                } else {
                    assert_eq!(back, Some(k));
                }
            }
        }
    }

    #[test]
    fn coordination_kinds_round_trip_and_carry_no_lock() {
        for shape in [
            Shape::Event,
            Shape::Semaphore,
            Shape::BoundedSemaphore,
            Shape::Barrier,
            Shape::Condition,
        ] {
            let k = Kind::new(shape, LockKind::None);
            assert_eq!(Kind::from_bits(k.to_bits()), Some(k));
            for lock in [LockKind::Lock, LockKind::RLock] {
                assert_eq!(Kind::from_bits(Kind::new(shape, lock).to_bits()), None);
            }
        }
    }
}
