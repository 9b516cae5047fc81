#!/usr/bin/env bash
# Side by side: the same workloads in Python's multiprocessing.sharedctypes and in this
# crate (examples/compare.rs), each the median of several runs, printed as one table.
#
#   bench/compare-python.sh            # RUNS=5 Python runs, RUST_RUNS=21 Rust runs
#   RUNS=9 RUST_RUNS=51 bench/compare-python.sh
#   PYTHON=python3.12 bench/compare-python.sh
#
# Needs python3 (standard library only) and cargo. Workloads:
#   - 1M locked increments of one shared counter in one process;
#   - 4 forked processes x 250k locked increments of one shared counter, timed from
#     before the first fork to after the last join;
#   - a shared array of 10M doubles from data already in memory:
#     Python RawArray('d', list) vs Rust RawArray::from_slice_in(&Heap::new(..)?, &vec)
#     (a heap per run, created inside the timed region, so every run starts from the
#     same memory footprint; Python frees its array after each run too);
#   - 2 forked processes x 10k round trips through a shared counter and a Condition on
#     its lock (Python: Value('Q') + Condition(v.get_lock()); Rust: Value<u64> +
#     Condition), each side holding the lock, bumping the counter, notifying and
#     waiting for the other's bump; timed from before the first fork to after the last
#     join;
#   - the same 10k round trips through two semaphores (Python: two
#     multiprocessing.Semaphore; Rust: two Semaphore), each hand-off checked on a
#     raw counter.
# A Rust run takes milliseconds, so it is repeated more often: on a busy machine one
# preempted run in five would otherwise move the median.
# The Python side is written the fast way: the lock and the raw object are looked up
# once, outside the loop (`with lock: obj.value += 1`, one acquisition per increment,
# as on the Rust side); the documented idiom `with v.get_lock(): v.value += 1` takes
# the RLock three times per increment and is about twice as slow.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
RUST_RUNS="${RUST_RUNS:-21}"
PYTHON="${PYTHON:-python3}"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runs per workload: Python $RUNS, Rust $RUST_RUNS (medians shown)"

cargo build --quiet --release --example compare
rust_out="$(cargo run --quiet --release --example compare -- "$RUST_RUNS")"

py_out="$("$PYTHON" - "$RUNS" <<'PY'
import multiprocessing as mp
import statistics
import sys
import time
from multiprocessing.sharedctypes import RawArray, RawValue, Value

INCREMENTS = 1_000_000
PROCS = 4
ARRAY_LEN = 10_000_000
ROUNDS = 10_000
ctx = mp.get_context("fork")


def locked_increments_1proc():
    v = Value("q", 0)
    lock, obj = v.get_lock(), v.get_obj()
    start = time.perf_counter()
    for _ in range(INCREMENTS):
        with lock:
            obj.value += 1
    secs = time.perf_counter() - start
    assert v.value == INCREMENTS
    return secs


def worker(lock, obj, n):
    for _ in range(n):
        with lock:
            obj.value += 1


def locked_increments_4proc():
    v = Value("q", 0)
    start = time.perf_counter()
    procs = [
        ctx.Process(target=worker, args=(v.get_lock(), v.get_obj(), INCREMENTS // PROCS))
        for _ in range(PROCS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    secs = time.perf_counter() - start
    assert v.value == INCREMENTS
    return secs


def rawarray_from_list():
    src = [i * 0.5 for i in range(ARRAY_LEN)]
    start = time.perf_counter()
    a = RawArray("d", src)
    secs = time.perf_counter() - start
    assert a[ARRAY_LEN - 1] == (ARRAY_LEN - 1) * 0.5
    del a
    return secs


def two_players(target, args):
    start = time.perf_counter()
    procs = [ctx.Process(target=target, args=args + (side,)) for side in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    return time.perf_counter() - start


def condition_player(v, cond, side):
    obj = v.get_obj()
    with cond:
        for _ in range(ROUNDS):
            while obj.value % 2 != side:
                cond.wait()
            obj.value += 1
            cond.notify()


def condition_ping_pong():
    v = Value("Q", 0)
    cond = ctx.Condition(v.get_lock())
    secs = two_players(condition_player, (v, cond))
    assert v.value == 2 * ROUNDS
    return secs


def semaphore_player(ping, pong, counter, side):
    for r in range(ROUNDS):
        if side == 0:
            counter.value = 2 * r + 1
            ping.release()
            pong.acquire()
            assert counter.value == 2 * r + 2
        else:
            ping.acquire()
            assert counter.value == 2 * r + 1
            counter.value = 2 * r + 2
            pong.release()


def semaphore_ping_pong():
    ping, pong = ctx.Semaphore(0), ctx.Semaphore(0)
    counter = RawValue("Q", 0)
    secs = two_players(semaphore_player, (ping, pong, counter))
    assert counter.value == 2 * ROUNDS
    return secs


runs = int(sys.argv[1])
for name, work in [
    ("locked_increments_1proc", locked_increments_1proc),
    ("locked_increments_4proc", locked_increments_4proc),
    ("rawarray_from_slice_10M_f64", rawarray_from_list),
    ("condition_ping_pong_10k", condition_ping_pong),
    ("semaphore_ping_pong_10k", semaphore_ping_pong),
]:
    times = [work() for _ in range(runs)]
    print(f"{name}\t{statistics.median(times):.6f}\t" + ",".join(f"{t:.6f}" for t in times))
PY
)"

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

"$PYTHON" - "$rust_out" "$py_out" <<'PY'
import sys

labels = {
    "locked_increments_1proc": "1M locked increments, 1 process",
    "locked_increments_4proc": "4 processes x 250k locked increments",
    "rawarray_from_slice_10M_f64": "RawArray('d', 10M) from list / from_slice",
    "condition_ping_pong_10k": "2 processes x 10k round trips, Condition + Value",
    "semaphore_ping_pong_10k": "2 processes x 10k round trips, two Semaphores",
}


def parse(text):
    out = {}
    for line in text.strip().splitlines():
        name, median, runs = line.split("\t")
        out[name] = (float(median), runs)
    return out


rust, py = parse(sys.argv[1]), parse(sys.argv[2])
rows = [("workload", "Python (s)", "Rust (s)", "speed-up")]
for name, label in labels.items():
    p, r = py[name][0], rust[name][0]
    speedup = p / r
    rows.append((label, f"{p:.4f}", f"{r:.4f}",
                 f"{speedup:.1f}x" if speedup < 10 else f"{speedup:.0f}x"))
widths = [max(len(row[i]) for row in rows) for i in range(4)]
print("| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths)) + " |")
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for row in rows[1:]:
    print("| " + row[0].ljust(widths[0]) + " | "
          + " | ".join(c.rjust(w) for c, w in zip(row[1:], widths[1:])) + " |")
print()
print("every run (s):")
for name, label in labels.items():
    print(f"  {label}: Python {py[name][1]}; Rust {rust[name][1]}")
PY
