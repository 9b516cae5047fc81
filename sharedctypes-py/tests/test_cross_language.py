"""Python and Rust programs sharing one named heap: what Rust publishes Python looks
up without declarations (numpy views included), what Python publishes Rust looks up
with its layout check, one counter incremented by both under one lock, and a lock
holder killed on either side recovered by the other."""

import ctypes
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import sharedctypes_rs as sc
from conftest import run


def test_python_reads_what_rust_published(peer, rust, heap_name):
    r = rust(peer, "serve", heap_name)
    r.expect("ready")
    heap = sc.Heap.open(heap_name)
    assert sorted(heap.keys()) == ["lock", "point", "samples"]

    point = heap.lookup("point")
    assert isinstance(point, sc.Value)
    Point = point._type_
    assert issubclass(Point, ctypes.Structure) and Point.__name__ == "Point"
    assert [(n, t) for n, t in Point._fields_] == [("x", ctypes.c_double), ("y", ctypes.c_double)]
    assert (Point.x.offset, Point.y.offset, ctypes.sizeof(Point)) == (0, 8, 16)
    assert isinstance(point.get_lock(), sc.Lock)
    assert point.get_lock() == heap.lookup("lock")

    samples = heap.lookup("samples")
    assert isinstance(samples, sc.Array) and len(samples) == 1000
    assert samples._type_ == "d"
    assert samples[3] == 1.5 and samples[-1] == 999 / 2
    view = np.asarray(samples.get_obj())
    assert view.dtype == np.float64 and view.shape == (1000,)
    assert np.array_equal(view, np.arange(1000) / 2)
    # Zero copy: a write through the view is a write to shared memory.
    view[7] = -1.0
    assert samples[7] == -1.0

    with heap.lookup("lock"):
        point.get_obj().x = 41.0
        point.get_obj().y += 1.0
    out = r.finish()
    assert out.split() == ["41", "1.5"]


def test_both_languages_count_under_one_lock(peer, rust, heap_name, ctx):
    r = rust(peer, "serve", heap_name)
    r.expect("ready")
    n = 5000

    def python_side():
        heap = sc.Heap.open(heap_name)
        lock = heap.lookup("lock")
        point = heap.lookup("point").get_obj()
        for _ in range(n):
            with lock:
                point.x += 1

    procs = [ctx.Process(target=python_side) for _ in range(2)]
    for p in procs:
        p.start()
    rusts = [
        subprocess.Popen([peer, "increment", heap_name, str(n)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        p.join()
        assert p.exitcode == 0
    for p in rusts:
        assert p.wait() == 0, p.stderr.read()
    assert sc.Heap.open(heap_name).lookup("point").x == 4 * n
    assert r.finish().split() == [str(4 * n), "0.5"]


def test_rust_takes_over_a_lock_held_by_a_killed_python_process(peer, rust, heap_name, ctx):
    r = rust(peer, "serve", heap_name)
    r.expect("ready")
    held = ctx.Event()

    def hold():
        lock = sc.Heap.open(heap_name).lookup("lock")
        lock.acquire()
        held.set()
        time.sleep(600)

    p = ctx.Process(target=hold)
    p.start()
    assert held.wait(30)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    assert run(peer, "acquire", heap_name).split() == ["owner-died"]
    # Reported once: the next acquirer finds a clean lock.
    assert run(peer, "acquire", heap_name).split() == ["clean"]


def test_python_takes_over_a_lock_held_by_a_killed_rust_process(peer, rust, heap_name):
    r = rust(peer, "serve", heap_name)
    r.expect("ready")
    holder = rust(peer, "hold", heap_name)
    holder.expect("held")
    lock = sc.Heap.open(heap_name).lookup("lock")
    assert lock.acquire(False) is False  # alive: busy
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait()
    with pytest.warns(sc.OwnerDiedWarning):
        assert lock.acquire(timeout=30) is True
    # The caller holds it, as after any acquire; after release it works normally.
    assert lock.acquire(False) is False  # held (by this thread): not taken again
    lock.release()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with lock:
            pass
    assert run(peer, "acquire", heap_name).split() == ["clean"]


def test_a_dead_holder_seen_through_with_and_value_access(peer, rust, heap_name):
    r = rust(peer, "serve", heap_name)
    r.expect("ready")
    heap = sc.Heap.open(heap_name)
    point = heap.lookup("point")
    holder = rust(peer, "hold", heap_name)
    holder.expect("held")
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait()
    # `.x` on the Value takes its lock (the published Lock): taken over, with the warning.
    with pytest.warns(sc.OwnerDiedWarning):
        assert point.x == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert point.y == 0.5


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


def test_rust_looks_up_a_python_structure(peer, heap_name):
    heap = sc.Heap.create(heap_name, 1 << 20)
    p = heap.Value(Point, 2.5, -1.0)
    heap.publish("p", p)
    assert run(peer, "lookup-point", heap_name, "p").split() == ["2.5", "-1"]
    assert p.x == 3.5  # Rust wrote through its handle


def test_rust_refuses_a_python_structure_that_differs(peer, heap_name):
    class Point(ctypes.Structure):  # noqa: F811 - the same name, another layout
        _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_float)]

    class Spot(ctypes.Structure):
        _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]

    heap = sc.Heap.create(heap_name, 1 << 20)
    heap.publish("p", heap.Value(Point, 2.5, -1.0))
    heap.publish("raw", heap.RawValue(Spot, 2.5, -1.0))
    heap.publish("spot", heap.Value(Spot, 2.5, -1.0))
    out = run(peer, "lookup-point", heap_name, "p")
    assert out.startswith("error: ") and "field `y`: f32 at offset 8 in the heap, f64 at offset 8 here" in out
    out = run(peer, "lookup-point", heap_name, "raw")
    assert out.startswith("error: ") and "RawValue<Spot>" in out
    out = run(peer, "lookup-point", heap_name, "spot")
    assert out.startswith("error: ") and "struct `Spot` in the heap, struct `Point` here" in out


def test_numpy_views_a_large_array_without_copying(peer, rust, heap_name):
    n = 1_000_000
    r = rust(peer, "serve-big", heap_name, str(n))
    r.expect("ready")
    big = sc.Heap.open(heap_name).lookup("big")
    view = np.asarray(big)
    assert view.shape == (n,) and view[n - 1] == n - 1
    assert view.__array_interface__["data"][0] == np.asarray(big).__array_interface__["data"][0]
    big[5] = 0.25
    assert view[5] == 0.25
    r.finish()


def test_readme_example(py_writer, rust, heap_name):
    """The README's "From Python" example: the Rust writer, then the Python reader."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## From Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "/sharedctypes-py-demo" in code
    r = rust(py_writer, heap_name)
    r.expect(f"ready: {heap_name}")
    done = subprocess.run(
        [sys.executable, "-c", code.replace("/sharedctypes-py-demo", heap_name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["Point -2.0", "16.0"]
    out = r.finish()
    assert "point: x = 2.5, y = -2" in out
    assert "samples: [1.0, 3.0, 5.0, 7.0]" in out
