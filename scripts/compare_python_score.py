#!/usr/bin/env python3
"""Scoring throughput: aware.load(...).score in Python against `aware score` on the command line, the same
model and events, each as a whole process (start, load, score, write the scores), alternating A B A B.

The events are the bundled jet sample (data/sample/jets) repeated to --events; the model a run's
checkpoint (default out/demo/aa.ckpt: scripts/demo.sh). Prints each side's events/s (median of --pairs)
and the median of the pairs' ratios, and model.score's own rate timed inside Python, after checking that both wrote the same scores bit for bit.
Usage (after scripts/build.sh and scripts/demo.sh):
  PYTHONPATH=build/python .venv/bin/python scripts/compare_python_score.py [--events N] [--pairs P] [--threads T]
"""
import argparse
import gzip
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PYTHON_SCORE = """
import sys, time, numpy as np, aware
model = aware.load(sys.argv[1], threads=int(sys.argv[4]))
events = np.load(sys.argv[2], mmap_mode="r")
t = time.perf_counter()
scores = model.score(events)
print(time.perf_counter() - t)
np.save(sys.argv[3], scores)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "out", "demo", "aa.ckpt"))
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of both (0: all cores)")
    ap.add_argument("--aware", default=os.path.join(ROOT, "build", "aware"))
    a = ap.parse_args()
    if not os.path.exists(a.model):
        sys.exit(f"{a.model}: no such checkpoint (scripts/demo.sh writes out/demo/aa.ckpt)")
    with gzip.open(os.path.join(ROOT, "data", "sample", "jets", "top.npy.gz")) as f:
        sample = np.load(io.BytesIO(f.read()))
    events = np.resize(sample, (a.events,) + sample.shape[1:]).astype(np.float32)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.npy")
        np.save(path, events)
        commands = {
            "aware score": [a.aware, "score", "-m", a.model, path, "-o", os.path.join(tmp, "cli"), "-q",
                            "--threads", str(a.threads)],
            "python": [sys.executable, "-c", PYTHON_SCORE, a.model, path, os.path.join(tmp, "python.npy"), str(a.threads)],
        }
        seconds = {k: [] for k in commands}
        in_process = []  # model.score alone, timed inside the Python process
        for _ in range(a.pairs + 1):  # the first pair warms the page cache and is not counted
            for name, cmd in commands.items():
                t = time.perf_counter()
                r = subprocess.run(cmd, check=True, env=env, stdout=subprocess.PIPE, text=True)
                seconds[name].append(time.perf_counter() - t)
                if name == "python":
                    in_process.append(float(r.stdout.split()[-1]))
        same = np.array_equal(np.load(os.path.join(tmp, "cli", "events.npy")), np.load(os.path.join(tmp, "python.npy")))
    cli, py = seconds["aware score"][1:], seconds["python"][1:]
    ratios = [c / p for c, p in zip(cli, py)]
    print(f"{a.events} events of {events.shape[1:]}, {a.pairs} pairs, threads {a.threads or 'all'}; "
          f"the same scores bit for bit: {same}")
    print(f"aware score: {a.events / statistics.median(cli):,.0f} events/s; python: {a.events / statistics.median(py):,.0f} "
          f"events/s; python's rate over the CLI's (median of pairs): {statistics.median(ratios):.3f} "
          f"(pairs {min(ratios):.3f} to {max(ratios):.3f})")
    score_only = [c / p for c, p in zip(cli, in_process[1:])]
    print(f"model.score alone: {a.events / statistics.median(in_process[1:]):,.0f} events/s; over the whole CLI "
          f"process's rate (median of pairs): {statistics.median(score_only):.3f} (the CLI's time includes its start, "
          f"loading and writing; the Python process's start and imports are the rest of the gap above)")
    if not same:
        sys.exit("the scores differ")


if __name__ == "__main__":
    main()
