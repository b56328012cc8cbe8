"""Stage 4's first listing in CPython with gevent, timed here: naps of 2 s,
3 s and 5 s (times SCALE) in three greenlets, time.sleep made cooperative by
gevent's monkey patch, as stage-hub's sleepers listing does in Rust.

Usage: python3 gevent_naps.py SCALE RUNS
Exits with status 3 when gevent is not installed (pip install gevent).
Prints one JSON object (see harness::cpython) with key "naps" (3
operations: the naps); seconds are the median of RUNS runs, with no
warm-up beyond starting gevent's hub (a wait needs none).
"""
import json
import platform
import statistics
import sys

try:
    from gevent import monkey
    monkey.patch_all()
    import gevent
except ImportError:
    print("python3 has no module gevent (pip install gevent)", file=sys.stderr)
    sys.exit(3)

import time


def nap(seconds):
    time.sleep(seconds)  # patched: this greenlet waits, the others run


def three_naps(scale):
    start = time.perf_counter()
    gevent.joinall([gevent.spawn(nap, s * scale) for s in (2, 3, 5)])
    return time.perf_counter() - start


def main():
    scale, runs = float(sys.argv[1]), int(sys.argv[2])
    gevent.joinall([gevent.spawn(nap, 0)])  # start gevent's hub before timing
    seconds = statistics.median(three_naps(scale) for _ in range(runs))
    print(json.dumps({"python": platform.python_version(),
                      "modules": {"gevent": gevent.__version__},
                      "runs": runs, "cases": {"naps": {"seconds": seconds, "ops": 3}}}))


if __name__ == "__main__":
    main()
