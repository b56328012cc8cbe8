"""Stage 2's listings in CPython, timed here: the CPU loops run in turn and
interleaved by a generator, and the producer/consumer through a list and
through send, as stage-generator runs them in Rust.

Usage: python3 generator.py cpu|producer-consumer|switch-cost N RUNS
Prints one JSON object (see harness::cpython): for cpu and switch-cost,
keys "serial" and "yield" (two loops of N iterations: 2N operations) and
"next-overhead" (what the N switches added: yield minus serial, per next()
call); for producer-consumer, "list" and "send" (N items handed from
producer to consumer). Seconds are medians of
RUNS timed runs after one untimed warm-up.
"""
import json
import platform
import statistics
import sys
import time


def serial(n):
    total = 0
    for i in range(n):
        total += i + 1
    for i in range(n):
        total += i + 1
    return total


def interleaved(n):
    def first_loop():
        total = 0
        for i in range(n):
            total += i + 1
            yield total

    other = first_loop()
    total = 0
    for i in range(n):
        total += i + 1
        last = next(other)  # one step of the other loop, then back here
    return total + last


def through_a_list(n):
    items = [i for i in range(n)]
    total = 0
    for item in items:
        total += item
    return total


def through_send(n):
    def consumer():
        total = 0
        while True:
            item = yield total
            total += item

    c = consumer()
    next(c)  # start it: it waits at its first yield
    total = 0
    for i in range(n):
        total = c.send(i)
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
    listing, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cases = {}
    if listing in ("cpu", "switch-cost"):
        in_turn = median_seconds(serial, n, runs)
        switching = median_seconds(interleaved, n, runs)
        cases["serial"] = {"seconds": in_turn, "ops": 2 * n}
        cases["yield"] = {"seconds": switching, "ops": 2 * n}
        cases["next-overhead"] = {"seconds": max(switching - in_turn, 0.0), "ops": n}
    if listing == "producer-consumer":
        cases["list"] = {"seconds": median_seconds(through_a_list, n, runs), "ops": n}
        cases["send"] = {"seconds": median_seconds(through_send, n, runs), "ops": n}
    print(json.dumps({"python": platform.python_version(), "modules": {},
                      "runs": runs, "cases": cases}))


if __name__ == "__main__":
    main()
