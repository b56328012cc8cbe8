"""Stage 1's listings in CPython, timed here: the CPU loops and the
producer/consumer, one after the other, as stage-serial runs them in Rust.

Usage: python3 serial.py N RUNS
Prints one JSON object (see harness::cpython): for key "cpu", both loops of
N iterations (2N operations); for "producer-consumer", N items stored in a
list, then read back (N operations). Seconds are the median of RUNS timed
runs after one untimed warm-up.
"""
import json
import platform
import statistics
import sys
import time


def count_up(n):
    total = 0
    for i in range(n):
        total += i + 1
    return total


def loops_in_turn(n):
    return count_up(n) + count_up(n)


def store_then_read(n):
    items = []
    for i in range(n):
        items.append(i)
    total = 0
    for item in items:
        total += item
    return total


def median_seconds(work, n, runs):
    work(n)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work(n)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    n, runs = int(sys.argv[1]), int(sys.argv[2])
    cases = {
        "cpu": {"seconds": median_seconds(loops_in_turn, n, runs), "ops": 2 * n},
        "producer-consumer": {"seconds": median_seconds(store_then_read, n, runs), "ops": n},
    }
    print(json.dumps({"python": platform.python_version(), "modules": {},
                      "runs": runs, "cases": cases}))


if __name__ == "__main__":
    main()
