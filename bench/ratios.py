#!/usr/bin/env python3
"""Prints every benchmark beside its baseline, as a ratio, from criterion's results.

    cargo bench -p sharedctypes          # or: cargo bench -p sharedctypes --bench lock
    python3 bench/ratios.py              # reads $CARGO_TARGET_DIR/criterion or target/criterion

Times are criterion's median estimates (robust against the odd slow sample on a busy
machine); a ratio is ours / baseline from the same `cargo bench` run, lower is better.
Standard library only. No timing assertions: this only reports.
"""
import json
import os
import sys

# group -> (baseline, [(benchmark, target ratio or None)]). Targets are the latest
# issue's: issue 9 (uncontended and contended locking <= 1.0x), issue 11 (waiting:
# ping-pongs and barrier <= 1.0x, fetch_add <= 1.2x); the bulk and allocation ones are
# the original issue's.
GROUPS = {
    "uncontended_lock_increment": ("std_Mutex_i64", [
        ("Value_i64_RLock", 1.0), ("Value_i64_Lock", 1.0), ("Value_i64_RLock_update", 1.0)]),
    "uncontended_lock_unlock": ("std_Mutex", [("Lock", 1.0), ("RLock", 1.0)]),
    "get": ("Cell_i64", [("AtomicI64_relaxed", None), ("RawValue_i64", None),
                         ("Value_i64_locked", None)]),
    "set": ("Cell_i64", [("AtomicI64_relaxed", None), ("RawValue_i64", None),
                         ("Value_i64_locked", None)]),
    "contended_4proc_x_250k_increments": ("pthread_mutex_robust_pshared", [
        ("Value_i64_RLock", 1.0), ("Value_i64_Lock", 1.0)]),
    "scan_10M_f64": ("Vec", [("RawArray", 1.5), ("Array_guard", 1.5)]),
    "copy_out_10M_f64": ("Vec_clone", [("RawArray_to_vec", 1.3), ("Array_to_vec", 1.3)]),
    "copy_in_10M_f64": ("memcpy", [("RawArray_copy_from_slice", 1.3),
                                   ("Array_copy_from_slice", 1.3)]),
    "new_from_slice_10M_f64": ("Vec_clone", [("RawArray_from_slice_in", 1.3)]),
    "alloc_1M_i64": ("Box_new", [("RawValue_new_in", 1.0)]),
    # Issue 12: memory that is given back.
    "new_drop_1M": ("Box_new_drop", [("RawValue_new_in_drop", 1.0)]),
    "clone_drop_1M": ("Arc_clone_drop", [("RawValue_clone_drop", 2.0)]),
    "churn_4proc_1M": ("malloc_free_4_threads", [("heap_alloc_drop_4_processes", 1.5)]),
    "create_1GiB_f64_array": ("vec_zeroed", [("Heap_new_and_RawArray_zeroed_in", None)]),
    "fetch_add_4_workers_x_1M": ("AtomicU64_4_threads", [("RawValue_u64_4_processes", 1.2)]),
    "fetch_add_uncontended": ("AtomicU64", [("RawValue_u64", None)]),
    "condition_ping_pong_2proc_x_10k": ("pthread_mutex_cond_pshared", [
        ("Condition_Value_u64", 1.0)]),
    "semaphore_ping_pong_2proc_x_10k": ("posix_sem_t_pshared", [("Semaphore", 1.0)]),
    "barrier_4proc_x_10k": ("pthread_barrier_pshared", [("Barrier", 1.0)]),
    "lookup_100k_keys": ("HashMap_String_u64", [("Heap_lookup_RawValue_u64", 20.0)]),
}


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def median_ns(root, group, bench):
    path = os.path.join(root, group, bench, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except FileNotFoundError:
        return None


def main():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target")
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "criterion")
    rows = [("group", "benchmark", "baseline", "time", "baseline time", "ratio", "target")]
    for group, (baseline, benches) in GROUPS.items():
        base = median_ns(root, group, baseline)
        for bench, goal in benches:
            ours = median_ns(root, group, bench)
            if base is None or ours is None:
                continue
            ratio = ours / base
            verdict = "" if goal is None else (f"<= {goal} ok" if ratio <= goal else f"<= {goal} MISSED")
            rows.append((group, bench, baseline, fmt(ours), fmt(base), f"{ratio:.2f}x", verdict))
    if len(rows) == 1:
        sys.exit(f"no criterion results under {root}; run `cargo bench -p sharedctypes` first")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
