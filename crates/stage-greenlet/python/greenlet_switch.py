"""Stage 3's listings in CPython with python-greenlet, timed here: f1 and
f2 back to back against the same loops switching on every iteration, and
one switch round trip, as stage-greenlet runs them in Rust.

Usage: python3 greenlet_switch.py switching|switch-cost N RUNS
Exits with status 3 when greenlet is not installed (pip install greenlet).
Prints one JSON object (see harness::cpython): for switching, keys
"in-turn" and "switching" (two loops of N iterations: 2N operations); for
switch-cost, "round-trip" (N switches there and back, a value passed each
way). Seconds are
medians of RUNS timed runs after one untimed warm-up.
"""
import json
import platform
import statistics
import sys
import time

try:
    import greenlet
except ImportError:
    print("python3 has no module greenlet (pip install greenlet)", file=sys.stderr)
    sys.exit(3)


def in_turn(n):
    add = 1
    for i in range(n):
        add += i
    mul = 1
    for i in range(n):
        mul *= i
    return add + mul


def switching(n):
    def adder():
        add = 1
        for i in range(n):
            add += i
            multiplier.switch()
        return add

    def multiplier_body():
        mul = 1
        for i in range(n):
            mul *= i
            first.switch()

    first = greenlet.greenlet(adder)
    multiplier = greenlet.greenlet(multiplier_body)
    return first.switch()


def round_trips(n):
    def echo(value):
        while True:
            value = main.switch(value + 1)

    main = greenlet.getcurrent()
    other = greenlet.greenlet(echo)
    value = 0
    for _ in range(n):
        value = other.switch(value)
    return value


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
    if listing == "switching":
        cases = {
            "in-turn": {"seconds": median_seconds(in_turn, n, runs), "ops": 2 * n},
            "switching": {"seconds": median_seconds(switching, n, runs), "ops": 2 * n},
        }
    else:
        cases = {"round-trip": {"seconds": median_seconds(round_trips, n, runs), "ops": n}}
    print(json.dumps({"python": platform.python_version(),
                      "modules": {"greenlet": greenlet.__version__},
                      "runs": runs, "cases": cases}))


if __name__ == "__main__":
    main()
