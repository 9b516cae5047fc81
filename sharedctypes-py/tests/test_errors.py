"""Bad input gives the Python exception the contract names, with a clear message, and
changes nothing; never a crash."""

import ctypes

import pytest

import sharedctypes_rs as sc
from conftest import unique_name


def test_heap_names(heap_name):
    h = sc.Heap.create(heap_name, 1 << 16)
    with pytest.raises(FileExistsError, match=heap_name):
        sc.Heap.create(heap_name, 1 << 16)
    missing = unique_name("missing")
    with pytest.raises(FileNotFoundError, match=missing):
        sc.Heap.open(missing)
    with pytest.raises(FileNotFoundError):
        sc.Heap.unlink(missing)
    for bad in ["no-slash", "/", "/a/b", "/" + "x" * 300, "/.."]:
        with pytest.raises(ValueError):
            sc.Heap.create(bad, 1 << 16)
        with pytest.raises(ValueError):
            sc.Heap.open(bad)
    assert h.name == heap_name


def test_keys(heap_name):
    h = sc.Heap.create(heap_name, 1 << 16)
    v = h.RawValue("i", 1)
    h.publish("k", v)
    with pytest.raises(ValueError, match='"k"'):
        h.publish("k", v)
    with pytest.raises(KeyError, match="nope"):
        h.lookup("nope")
    with pytest.raises(KeyError):
        h.unpublish("nope")
    for bad in ["", "k" * 256]:
        with pytest.raises(ValueError):
            h.publish(bad, v)
        with pytest.raises(ValueError):
            h.lookup(bad)
    with pytest.raises(TypeError):
        h.publish("x", 42)
    other = sc.Heap(1 << 16)
    with pytest.raises(ValueError):
        h.publish("elsewhere", other.RawValue("i", 1))
    assert h.keys() == ["k"]


def test_typecodes_and_types(heap):
    for bad in ["z", "", "dd", "u", "?"]:
        with pytest.raises(ValueError, match="typecode"):
            heap.RawValue(bad)
    for bad in [3, None, object(), int]:
        with pytest.raises(TypeError):
            heap.RawValue(bad)

    class WithPointer(ctypes.Structure):
        _fields_ = [("a", ctypes.c_int), ("next", ctypes.POINTER(ctypes.c_int))]

    class WithBool(ctypes.Structure):
        _fields_ = [("flag", ctypes.c_bool)]

    class WithBits(ctypes.Structure):
        _fields_ = [("a", ctypes.c_int, 3)]

    class Packed(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("a", ctypes.c_char), ("b", ctypes.c_double)]

    class Big(ctypes.BigEndianStructure):
        _fields_ = [("a", ctypes.c_int)]

    class U(ctypes.Union):
        _fields_ = [("a", ctypes.c_int), ("b", ctypes.c_float)]

    with pytest.raises(ValueError, match="field `next`.*pointer"):
        heap.RawValue(WithPointer)
    with pytest.raises(ValueError, match="field `flag`"):
        heap.RawValue(WithBool)
    with pytest.raises(ValueError, match="bit field"):
        heap.RawValue(WithBits)
    with pytest.raises(ValueError, match="field `b`"):
        heap.RawValue(Packed)
    with pytest.raises(ValueError, match="byte order"):
        heap.RawValue(Big)
    with pytest.raises(ValueError, match="union"):
        heap.RawValue(U)
    with pytest.raises(ValueError):
        heap.RawValue(ctypes.c_void_p)
    with pytest.raises(ValueError):
        heap.RawValue(ctypes.c_char_p)


def test_values(heap):
    v = heap.RawValue("b", 1)
    with pytest.raises(OverflowError):
        v.value = 300
    assert v.value == 1  # nothing changed
    with pytest.raises(TypeError):
        v.value = "x"
    with pytest.raises(TypeError):
        heap.RawValue("i", 1, 2)
    c = heap.RawValue("c", b"a")
    with pytest.raises(ValueError):
        c.value = b"ab"
    with pytest.raises(AttributeError):
        v.nonexistent
    with pytest.raises(AttributeError):
        v.nonexistent = 3


def test_arrays(heap):
    a = heap.Array("i", [1, 2, 3])
    with pytest.raises(IndexError):
        a[3]
    with pytest.raises(IndexError):
        a[-4] = 1
    with pytest.raises(ValueError, match="same size"):
        a[0:2] = [1, 2, 3]
    with pytest.raises(TypeError):
        a["x"]
    assert list(a) == [1, 2, 3]
    with pytest.raises(ValueError):
        heap.RawArray("d", -1)
    with pytest.raises(TypeError):
        heap.RawArray("d", 2.5)
    s = heap.Array("c", b"abc")
    with pytest.raises(ValueError, match="long"):
        s.value = b"abcd"
    with pytest.raises(ValueError, match="long"):
        s.raw = b"abcd"
    assert s.raw == b"abc"
    with pytest.raises(AttributeError):
        a.get_obj().value  # not a byte array


def test_memory(heap_name):
    h = sc.Heap.create(heap_name, 4096)
    with pytest.raises(MemoryError):
        h.RawArray("d", 10_000)
    with pytest.raises(MemoryError):
        h.RawArray("d", 2**60)
    assert h.RawArray("d", 10)[9] == 0.0  # still usable


def test_invalid_heap(heap_name):
    path = "/dev/shm" + heap_name
    with open(path, "wb") as f:
        f.write(b"not a heap at all" * 1000)
    with pytest.raises(sc.InvalidHeapError):
        sc.Heap.open(heap_name)


def test_layout_mismatch_message(heap_name):
    # A published layout whose fields differ from what another process expects is
    # refused by Rust (test_cross_language); from Python, lookup takes the stored type,
    # so a mismatch shows as the rebuilt type: its fields are the publisher's.
    class A(ctypes.Structure):
        _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_float)]

    h = sc.Heap.create(heap_name, 1 << 16)
    h.publish("a", h.Value(A, 1.0, 2.0))
    got = sc.Heap.open(heap_name).lookup("a")
    assert [f[0] for f in got._type_._fields_] == ["x", "y"]
    assert got._type_.y.size == 4
    assert issubclass(sc.LayoutMismatchError, Exception)
    assert issubclass(sc.OwnerDiedWarning, UserWarning)


def test_locks(heap):
    lock = heap.Lock()
    with pytest.raises(RuntimeError):
        lock.release()
    lock.acquire()
    with pytest.raises(RuntimeError, match="re-entrant"):
        lock.acquire()  # would wait forever in Python
    assert lock.acquire(timeout=0.01) is False
    lock.release()
    v = heap.Value("i", 0, lock=heap.Lock())
    with v.get_lock():
        with pytest.raises(RuntimeError, match="re-entrant"):
            v.value  # Python's module hangs here
    with pytest.raises(ValueError):
        heap.Semaphore(-1)
    b = heap.BoundedSemaphore(1)
    with pytest.raises(ValueError):
        b.release()
    assert b.get_value() == 1
    with pytest.raises(ValueError):
        heap.Barrier(0)
    with pytest.raises(ValueError):
        heap.Barrier(2, action=print)
    with pytest.raises(TypeError):
        heap.Condition(lock="no")
    c = heap.Condition()
    with pytest.raises(RuntimeError):
        c.wait(0.01)  # not held
