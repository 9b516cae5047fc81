//! Named heaps: POSIX shared-memory objects that unrelated processes open by name, and
//! the directory through which they find each other's objects.
//!
//! ```
//! use sharedctypes::{Heap, SharedStruct, Value};
//!
//! #[derive(Clone, Copy, SharedStruct)]
//! #[repr(C)]
//! struct Point { x: f64, y: f64 }
//!
//! let name = format!("/doc-named-{}", std::process::id());
//! // One program creates the heap and publishes an object under a key …
//! let heap = Heap::create(&name, 1 << 20)?;
//! let p = Value::new_in(&heap, Point { x: 1.0, y: 2.0 })?;
//! heap.publish("point", &p)?;
//!
//! // … another (here: the same one) opens it by name and looks the object up.
//! let other = Heap::open(&name)?;
//! let q: Value<Point> = other.lookup("point")?;
//! q.lock()?.x.set(5.0);
//! assert_eq!(p.get().x, 5.0);
//! # Ok::<(), sharedctypes::Error>(())
//! ```
//!
//! # Lifecycle
//!
//! - [`Heap::create`] makes the name (`O_CREAT | O_EXCL`, mode `0600`) and reserves the
//!   whole capacity in `/dev/shm` at once, so a full `/dev/shm` is
//!   [`Error::OutOfMemory`] there and then, never a `SIGBUS` later. Unlike an anonymous
//!   [`Heap::new`], a named heap's memory is therefore committed from the start.
//! - **The creating process owns the name.** When it drops the last handle derived from
//!   that `create` — the `Heap` and its clones, and every object or lock allocated in it
//!   or looked up through it (each holds the heap) — the name is removed, provided it
//!   still refers to the same segment (device and inode are compared, so a heap that
//!   someone else re-created under the same name is left alone).
//! - Processes that [`open`](crate::Heap::open) the heap, and children forked from the creator,
//!   never remove the name (the creator's pid is recorded and compared).
//! - Removing the name does not disturb processes that have the heap open: the memory
//!   stays until the last of them unmaps it; only new `open`s fail.
//! - [`persist`](crate::Heap::persist) keeps the name after the creator is gone, until
//!   [`Heap::unlink`] or a reboot.
//! - Destructors that never run remove nothing: the name also stays (see below) when a
//!   handle lives in a `static` or a `OnceLock`, is leaked (`std::mem::forget`,
//!   `Box::leak`, a reference cycle), or is held by a thread still running when `main`
//!   returns (the process ends without dropping what other threads hold).
//!
//! # After a crash
//!
//! A creator that never runs its destructors — killed, aborted, leaving through
//! `std::process::exit`, or a [`Process`](crate::Process) child (which leaves with
//! `_exit`) that did not drop its handles first, or one whose handle sits in a `static`,
//! was leaked, or belongs to a thread still running at the end of `main` — leaves the
//! name behind: a *stale* heap,
//! holding its memory in `/dev/shm` until removed. A later `create` of that name is
//! [`Error::AlreadyExists`]. [`Heap::creator_pid`] tells whose it was; the `heaps`
//! example (`cargo run --example heaps`, `-- --remove` to clean up) lists the
//! sharedctypes heaps in `/dev/shm` and removes stale ones. A creator that dies in the
//! middle of `create` may leave an empty segment, which `open` reports as
//! [`Error::NotFound`] (still being created) and `Heap::unlink` removes.
//!
//! # What is checked, and what cannot be
//!
//! A segment's contents come from other processes. [`Heap::open`] checks that the name is
//! a regular file (anyone may put a FIFO or a directory in `/dev/shm`; names are opened
//! with `O_NONBLOCK`, so a FIFO never blocks), then the header (magic, format version,
//! header size, the file's real size against the recorded one and against the largest
//! heap there can be, 16 TiB, the frontier hint)
//! *before* mapping, and then the
//! directory: its table (bounds, alignment, size, every slot), every entry (bounds,
//! alignment, kind, stored layout) and that the memory the entries name does not alias:
//! no object or lock overlaps the header, the table, a directory entry, a lock or
//! another object (one object or lock may be named whole by several entries). A
//! foreign, truncated or corrupted segment is an
//! [`Error::InvalidHeap`], never a crash, a hang or an out-of-bounds access. The *values*
//! in objects need no check: every bit pattern of a [`SharedType`] is valid.
//!
//! [`lookup`](crate::Heap::lookup) reads one or two table slots and one entry, and checks
//! them again — bounds and alignment every time, so a handle never reaches outside the
//! heap whatever was written since. It does not check the aliasing of the whole
//! directory again, which would make every lookup cost time proportional to the
//! directory: each `Heap` handle (shared by its clones, in this process) remembers what
//! it has checked — every entry when it was opened, and since then every entry this
//! process published or looked up through it — and checks an entry against that, the
//! first time it uses it and whenever the entry's bytes changed since. Entries that
//! other processes published after the heap was opened, and that this handle never
//! looked up, are not among them: they are checked against the others when they are
//! looked up. This costs about 220 bytes of this process's memory per entry it knows,
//! for each `Heap::open` (and `Heap::create`) of the heap.
//!
//! Aliasing is checked only against what the directory names: an entry pointed at a
//! lock or object that was never published (a `Value`'s lock kept private, say) cannot
//! be told from a legitimate one, since the heap keeps no record of its allocations.
//!
//! One thing cannot be checked: a process of the same user (the segment is mode `0600`)
//! may shrink the segment *after* it was opened, with `ftruncate` on
//! `/dev/shm/<name>`. Touching memory past the new end then raises `SIGBUS`, which kills
//! the process; the kernel gives no way to prevent this short of a signal handler. Do not
//! truncate heaps that are in use. Holes in the segment are not checked at `open`: the
//! heap makes them itself, where a freed block of 64 KiB or more gives its pages back,
//! and commits the pages again (`MADV_POPULATE_WRITE`, an `OutOfMemory` error when
//! `/dev/shm` is full) before it reuses them. A hole punched by someone else, in memory
//! the heap thinks is committed, raises `SIGBUS` on the first write if `/dev/shm` is
//! full.
//!
//! # Locks, PID namespaces and time namespaces
//!
//! A [`Lock`] names its owner by kernel thread id and checks a waiting
//! owner's liveness by that id, which means nothing in another PID namespace (two
//! containers sharing `/dev/shm` but not their processes, say). It tells a live owner
//! from a stranger that got the same id later by the thread's start time, which a time
//! namespace shifts (`unshare -T --boottime …`, a process restored by CRIU): a waiter in
//! another time namespace would take a live owner for a stranger and take the lock over.
//! The heap records its creator's PID and time namespaces, and [`publish`](crate::Heap::publish)
//! and [`lookup`](crate::Heap::lookup) of anything holding a lock (`Lock`, `RLock`, `Value`,
//! `Array`) from another namespace are [`Error::ForeignPidNamespace`] or
//! [`Error::ForeignTimeNamespace`]. The check fails closed: a namespace that cannot be
//! read (no `/proc`), on either side, counts as another one. Raw objects and the
//! coordination objects (`Event`, `Semaphore`, `BoundedSemaphore`, `Barrier`,
//! `Condition`, which name no owner) are shared across namespaces freely.
//!
//! # The directory
//!
//! [`publish`](crate::Heap::publish) records a handle under a key;
//! [`lookup`](crate::Heap::lookup) gives it back, in any process, as a working handle;
//! [`unpublish`](crate::Heap::unpublish) removes the key, which may then be published
//! again. The directory lives in the heap itself and refers to everything by offset,
//! never by address: one entry per publication (the key, the handle's kind, the offsets
//! of its object and lock, its element type's layout), and a hash table of entry
//! offsets that the header's `directory` word names.
//!
//! Nothing is locked: a publisher writes its entry completely, then claims an empty slot
//! of the table with a compare-and-swap, so of concurrent publishes of one key exactly
//! one succeeds and the others get [`Error::AlreadyExists`]; unpublishing marks the slot
//! deleted, also with a compare-and-swap. A table about to pass three quarters full is
//! replaced by a larger one (or one of the same size, when most of its slots were
//! unpublished), into which every process that publishes or unpublishes helps copy the
//! entries; lookups read the old table until the copy is complete. A process killed at
//! any instant, in any of this, leaves the directory consistent: at worst its entry, or
//! a table it was making, stays allocated where nothing reaches it. Lookups, publishes
//! and unpublishes take constant time (a copy is paid for by the publishes that filled
//! the table), from any process and any PID namespace.
//!
//! **The directory itself only grows**: a published object is counted by the directory
//! and given back after [`unpublish`](crate::Heap::unpublish) and the last handle to it
//! (see [Memory that is given back](crate#memory-that-is-given-back)), but the
//! unpublished entry stays allocated (a lookup in another process may be reading it:
//! entries are never reused), and so do tables that were replaced (together at most
//! the size of the current one) and the entries of publishes that lost a race.
//! Publishing and unpublishing a key over and over costs the heap about 100 bytes each
//! time (a short key, a primitive type).
//!
//! Everything read from the directory is checked before use (see
//! [what is checked](#what-is-checked-and-what-cannot-be)), every loop over it is
//! bounded by its size, and the bytes all entries claim must fit in the heap's
//! allocated part, so even a maliciously written directory ends in
//! [`Error::InvalidHeap`] after work proportional to the heap's allocated size.
//!
//! [`Heap::create`]: crate::Heap::create
//! [`Heap::creator_pid`]: crate::Heap::creator_pid
//! [`Heap::new`]: crate::Heap::new
//! [`Heap::open`]: crate::Heap::open
//! [`Heap::unlink`]: crate::Heap::unlink
//! [`Error::AlreadyExists`]: crate::Error::AlreadyExists
//! [`Error::ForeignPidNamespace`]: crate::Error::ForeignPidNamespace
//! [`Error::ForeignTimeNamespace`]: crate::Error::ForeignTimeNamespace
//! [`Error::InvalidHeap`]: crate::Error::InvalidHeap
//! [`Error::NotFound`]: crate::Error::NotFound
//! [`Error::OutOfMemory`]: crate::Error::OutOfMemory
//! [`Lock`]: crate::Lock
//! [`SharedType`]: crate::SharedType

pub use crate::heap::directory::MAX_KEY_LEN;
pub use crate::heap::publish::Publish;
