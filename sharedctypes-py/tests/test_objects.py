"""Objects, types, the buffer protocol, lookup's rebuilt types, locks and the
coordination objects across fork processes."""

import ctypes
import threading
import time
import warnings

import numpy as np
import pytest

import sharedctypes_rs as sc


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


class Padded(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_uint8), ("v", ctypes.c_double), ("n", ctypes.c_int16 * 3)]


class Outer(ctypes.Structure):
    _fields_ = [("p", Point), ("ids", ctypes.c_int32 * 2)]


TYPECODES = {
    "b": (np.int8, -5), "B": (np.uint8, 250), "h": (np.int16, -300), "H": (np.uint16, 60000),
    "i": (np.int32, -70000), "I": (np.uint32, 4_000_000_000), "l": (np.int64, -(2**40)),
    "L": (np.uint64, 2**63), "q": (np.int64, -(2**62)), "Q": (np.uint64, 2**64 - 1),
    "f": (np.float32, 1.5), "d": (np.float64, -2.25),
}


@pytest.mark.parametrize("code", sorted(TYPECODES))
def test_every_typecode_round_trips_and_views(heap, code):
    dtype, x = TYPECODES[code]
    a = heap.RawArray(code, [x, 0, x])
    assert a[0] == x and a[2] == x
    view = np.asarray(a)
    assert view.dtype == dtype and list(view) == [x, 0, x]
    m = memoryview(a)
    assert m.format == code and m.itemsize == np.dtype(dtype).itemsize and m.shape == (3,)
    view[1] = x
    assert a[1] == x
    v = heap.Value(code, x)
    assert v.value == x


def test_c_arrays(heap):
    s = heap.RawArray("c", b"hello")
    assert memoryview(s).format == "c" and bytes(memoryview(s)) == b"hello"
    assert s[1] == b"e" and s[::2] == b"hlo" and list(s) == [b"h", b"e", b"l", b"l", b"o"]
    s[0] = b"j"
    s[1:3] = b"EL"
    assert s.value == b"jELlo"
    s.value = b"hi"
    assert s.raw == b"hi\x00lo" and s.value == b"hi"
    s.raw = b"xy"
    assert s.raw == b"xy\x00lo"


def test_structs_have_a_structured_dtype(heap):
    a = heap.RawArray(Padded, [(1, 2.5, (1, 2, 3)), (4, 5.5, (4, 5, 6))])
    assert ctypes.sizeof(Padded) == 24
    view = np.asarray(a)
    assert view.dtype.itemsize == 24
    assert view.dtype.names == ("tag", "v", "n")
    assert view.dtype.fields["v"][1] == 8 and view.dtype.fields["n"][1] == 16
    assert view["v"].tolist() == [2.5, 5.5]
    assert view["n"].tolist() == [[1, 2, 3], [4, 5, 6]]
    view["v"][1] = -1.0
    assert a[1].v == -1.0
    a[0].n[2] = 9
    assert list(a[0].n) == [1, 2, 9] and view["n"][0][2] == 9
    nested = heap.Value(Outer, (1.0, 2.0), (7, 8))
    assert nested.p.y == 2.0 and list(nested.ids) == [7, 8]
    nested.p.x = 3.0
    nested.ids = [1, 2]
    assert nested.p.x == 3.0 and list(nested.ids) == [1, 2]
    copy = nested.value
    assert isinstance(copy, Outer) and copy.p.x == 3.0


def test_lookup_rebuilds_types(heap_name):
    h = sc.Heap.create(heap_name, 1 << 20)
    h.publish("padded", h.RawArray(Padded, [(1, 2.5, (1, 2, 3))]))
    h.publish("outer", h.Value(Outer, (1.0, 2.0), (7, 8)))
    h.publish("bytes", h.Array("c", b"abc"))
    h.publish("long", h.RawValue("l", -5))
    other = sc.Heap.open(heap_name)
    padded = other.lookup("padded")
    T = padded._type_
    assert T.__name__ == "Padded" and issubclass(T, ctypes.Structure)
    assert (T.tag.offset, T.v.offset, T.n.offset, ctypes.sizeof(T)) == (0, 8, 16, 24)
    assert padded[0].n[1] == 2
    assert np.asarray(padded)["v"][0] == 2.5
    outer = other.lookup("outer")
    assert outer._type_._fields_[0][1].__name__ == "Point"
    assert outer.p.y == 2.0 and list(outer.ids) == [7, 8]
    # Looked up twice, the same rebuilt class.
    assert other.lookup("outer")._type_ is outer._type_
    b = other.lookup("bytes")
    assert b._type_ == "B" and b.value == b"abc" and b[0] == ord("a")
    assert other.lookup("long").value == -5
    # Rebuilt types can be used to make new objects, and publish again.
    again = other.RawValue(outer._type_, (5.0, 6.0), (1, 1))
    other.publish("again", again)
    assert sc.Heap.open(heap_name).lookup("again").p.x == 5.0


def test_locked_increments_from_fork_processes(heap, ctx):
    v = heap.Value("q", 0)
    a = heap.Array("d", 4)

    def work():
        for _ in range(2000):
            with v.get_lock():
                v.value += 1
            with a.get_lock():
                a.get_obj()[0] += 1.0

    procs = [ctx.Process(target=work) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert v.value == 8000 and a[0] == 8000.0


def test_a_dead_python_holder_is_taken_over(heap, ctx):
    lock = heap.RLock()
    v = heap.Value("i", 0, lock=lock)

    def die_holding():
        lock.acquire()
        v.get_obj().value = 7
        import os

        os._exit(0)  # exits holding the lock

    p = ctx.Process(target=die_holding)
    p.start()
    p.join()
    with pytest.warns(sc.OwnerDiedWarning):
        with v.get_lock():
            assert v.value == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert v.value == 7


def test_owner_died_as_an_error_leaves_the_lock_free(heap, ctx):
    lock = heap.Lock()
    p = ctx.Process(target=lambda: (lock.acquire(), __import__("os")._exit(0)))
    p.start()
    p.join()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(sc.OwnerDiedWarning):
            lock.acquire()
    assert lock.acquire(False) is True
    lock.release()


def test_the_gil_is_released_while_waiting(heap):
    lock = heap.Lock()
    counter = []
    lock.acquire()

    def waiter():
        with lock:
            counter.append("got it")

    t = threading.Thread(target=waiter)
    t.start()
    # The waiter sleeps in the lock without the GIL: this thread keeps running.
    for i in range(1000):
        counter.append(i)
    time.sleep(0.1)
    assert counter[-1] == 999
    lock.release()
    t.join(10)
    assert counter[-1] == "got it"


def test_rlock_is_recursive_and_owned(heap):
    r = heap.RLock()
    assert r.acquire() and r.acquire()
    out = []
    t = threading.Thread(target=lambda: out.append(r.acquire(timeout=0.05)))
    t.start()
    t.join()
    assert out == [False]
    r.release()
    r.release()
    with pytest.raises(RuntimeError):
        r.release()


def test_condition_across_processes(heap, ctx):
    cond = heap.Condition()
    state = heap.RawValue("i", 0)

    def child():
        with cond:
            ok = cond.wait_for(lambda: state.value == 1, timeout=30)
            state.value = 2 if ok else -1
            cond.notify_all()

    p = ctx.Process(target=child)
    p.start()
    time.sleep(0.05)
    with cond:
        state.value = 1
        cond.notify_all()
        assert cond.wait_for(lambda: state.value != 1, timeout=30)
    p.join()
    assert state.value == 2
    with cond:
        assert cond.wait(0.01) is False  # timed out


def test_condition_with_an_rlock_held_twice(heap, ctx):
    lock = heap.RLock()
    cond = heap.Condition(lock)
    flag = heap.Event()

    def child():
        flag.wait(30)
        with cond:
            cond.notify()

    p = ctx.Process(target=child)
    p.start()
    with lock:
        with cond:
            flag.set()
            assert cond.wait(30) is True
        # still held once
        assert lock.acquire(False) is True
        lock.release()
    p.join()


def test_event_semaphore_barrier_across_processes(heap, ctx):
    ev = heap.Event()
    sem = heap.Semaphore(0)
    bsem = heap.BoundedSemaphore(2)
    barrier = heap.Barrier(3)
    seen = heap.Array("q", 3)

    def child(i):
        assert ev.wait(30)
        sem.release()
        with bsem:
            pass
        seen[i] = barrier.wait(30) + 1

    procs = [ctx.Process(target=child, args=(i,)) for i in range(2)]
    for p in procs:
        p.start()
    assert ev.is_set() is False and ev.wait(0.01) is False
    ev.set()
    assert sem.acquire(timeout=30) and sem.acquire(timeout=30)
    assert sem.acquire(False) is False
    seen[2] = barrier.wait(30) + 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert sorted(seen[:]) == [1, 2, 3]
    assert bsem.get_value() == 2
    barrier.abort()
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(1)
    barrier.reset()
    assert not barrier.broken and barrier.parties == 3 and barrier.n_waiting == 0


def test_coordination_objects_are_published(heap_name, ctx):
    h = sc.Heap.create(heap_name, 1 << 20)
    for key, obj in [("ev", h.Event()), ("sem", h.Semaphore(2)), ("bsem", h.BoundedSemaphore(1)),
                     ("bar", h.Barrier(2)), ("cond", h.Condition()), ("lock", h.Lock()),
                     ("rlock", h.RLock())]:
        h.publish(key, obj)
    o = sc.Heap.open(heap_name)
    assert isinstance(o.lookup("ev"), sc.Event)
    assert o.lookup("sem").get_value() == 2
    assert isinstance(o.lookup("bsem"), sc.BoundedSemaphore)
    assert o.lookup("bar").parties == 2
    assert isinstance(o.lookup("lock"), sc.Lock) and isinstance(o.lookup("rlock"), sc.RLock)
    cond = o.lookup("cond")
    assert isinstance(cond.get_lock(), sc.RLock)
    assert "cond.lock" in o.keys()

    def child():
        c = sc.Heap.open(heap_name).lookup("cond")
        with c:
            c.notify()

    with cond:
        p = ctx.Process(target=child)
        p.start()
        assert cond.wait(30)
    p.join()


def test_published_objects_work_from_another_process(heap_name, ctx):
    h = sc.Heap.create(heap_name, 1 << 20)
    h.publish("n", h.Value("i", 0))
    h.publish("pts", h.Array(Point, 3))

    def child():
        o = sc.Heap.open(heap_name)
        n, pts = o.lookup("n"), o.lookup("pts")
        with n.get_lock():
            n.value += 5
        pts[2].y = 9.5

    p = ctx.Process(target=child)
    p.start()
    p.join()
    assert p.exitcode == 0
    assert h.lookup("n").value == 5
    assert h.lookup("pts")[2].y == 9.5


def test_memory_is_given_back(heap_name):
    h = sc.Heap.create(heap_name, 1 << 20)
    assert h.used == 0
    v = h.Value(Point, 1.0, 2.0)
    a = h.RawArray("d", 1000)
    assert h.used > 8000
    del v, a
    assert h.used == 0
    h.publish("a", h.Array("i", 10))  # kept alive by the directory alone
    assert h.used > 0
    found = sc.Heap.open(heap_name).lookup("a")
    h.unpublish("a")
    assert found[9] == 0 and h.used > 0  # the looked-up handle keeps it
    del found
    assert h.used == 0
    # Many objects come and go in a small heap.
    small = sc.Heap(1 << 14)
    for i in range(20_000):
        small.RawArray("q", 100)[99] = i
    assert small.used == 0
