#!/usr/bin/env python3
"""Python's multiprocessing.sharedctypes vs sharedctypes_rs, side by side, from Python.

    nice python3 bench/python_module.py            # RUNS=5 (median of 5 per measure)
    RUNS=3 N=100000 python3 bench/python_module.py

Needs sharedctypes_rs installed (pip install ./sharedctypes-py), numpy, and cargo
(builds examples/py_peer.rs, the Rust publisher of the 10M-element array).

Measures (each the median of RUNS runs):
  1. one process, N locked increments, the documented idiom on both sides:
     `with v.get_lock(): v.value += 1` (the RLock taken three times per increment);
  2. 4 fork processes x N locked increments of one counter, the same idiom, timed from
     before the first start to after the last join; the total is checked;
  3. numpy.asarray of an f64 array a Rust program published, at 1k and 10M elements
     (a view: the time must not grow with the size), and the copy np.array(list(a)) of
     the 10M one.
"""

import multiprocessing
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

import sharedctypes_rs as sc

RUNS = int(os.environ.get("RUNS", 5))
N = int(os.environ.get("N", 100_000))
REPO = pathlib.Path(__file__).resolve().parents[1]
ctx = multiprocessing.get_context("fork")


def median(f, runs=RUNS):
    return statistics.median(f() for _ in range(runs))


def increments(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def one_process(make):
    def run():
        v = make()
        t = time.perf_counter()
        increments(v, N)
        dt = time.perf_counter() - t
        assert v.value == N
        return dt

    return median(run)


def four_processes(make):
    def run():
        v = make()
        procs = [ctx.Process(target=increments, args=(v, N)) for _ in range(4)]
        t = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        dt = time.perf_counter() - t
        assert v.value == 4 * N, v.value
        return dt

    return median(run)


def peer():
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "py_peer"],
                   cwd=REPO, check=True)
    return str(REPO / "target" / "release" / "examples" / "py_peer")


def published_array(exe, n):
    name = f"/bench-py-{os.getpid()}-{n}"
    proc = subprocess.Popen([exe, "serve-big", name, str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc, sc.Heap.open(name).lookup("big")


def asarray_time(a, reps=10_000):
    def run():
        t = time.perf_counter()
        for _ in range(reps):
            np.asarray(a)
        return (time.perf_counter() - t) / reps

    return median(run)


def main():
    heap = sc.Heap(1 << 24)
    rows = []

    py1 = one_process(lambda: multiprocessing.Value("q", 0))
    rs1 = one_process(lambda: heap.Value("q", 0))
    rows.append(("1 process, locked increment (ns/op)", py1 / N * 1e9, rs1 / N * 1e9))

    py4 = four_processes(lambda: ctx.Value("q", 0))
    rs4 = four_processes(lambda: heap.Value("q", 0))
    rows.append((f"4 processes x {N} locked increments (ms)", py4 * 1e3, rs4 * 1e3))

    exe = peer()
    small_proc, small = published_array(exe, 1_000)
    big_proc, big = published_array(exe, 10_000_000)
    t_small = asarray_time(small)
    t_big = asarray_time(big)
    assert np.asarray(big)[9_999_999] == 9_999_999.0
    t = time.perf_counter()
    copied = np.array(list(big))
    t_copy = time.perf_counter() - t
    assert copied.shape == (10_000_000,)
    for p in (small_proc, big_proc):
        p.communicate("\n")

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, RUNS={RUNS}, N={N}")
    print(f"{'measure':48} {'multiprocessing':>16} {'sharedctypes_rs':>16} {'ratio':>7}")
    for what, py, rs in rows:
        print(f"{what:48} {py:16.1f} {rs:16.1f} {py / rs:6.1f}x")
    print(f"{'numpy.asarray, 1k f64 published by Rust (us)':48} {'':16} {t_small * 1e6:16.2f}")
    print(f"{'numpy.asarray, 10M f64 published by Rust (us)':48} {'':16} {t_big * 1e6:16.2f}"
          f" {t_big / t_small:6.2f}x of 1k")
    print(f"{'np.array(list(a)), 10M f64 (copy, us)':48} {'':16} {t_copy * 1e6:16.0f}"
          f" {t_copy / t_big:6.0f}x of asarray")


if __name__ == "__main__":
    main()
