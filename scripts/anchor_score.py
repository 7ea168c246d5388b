#!/usr/bin/env python3
"""Scoring throughput of the PyTorch anchor (torch_reference.score: batches of 4096, softmax), on
random events held in memory, for comparison with `aware score` (docs/performance.md).

  scripts/anchor.sh is not used here: run with the anchor's environment,
  .venv-anchor/bin/python3 scripts/anchor_score.py --events 200000 --threads 2
"""
import argparse, json, pathlib, sys, time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "anchors"))
import torch_reference as ref  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--events", type=int, default=200000)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
model = ref.network(2)
x = np.random.default_rng(1).random((a.events, 25, 25), dtype=np.float32)
ref.score(model, x[:4096], torch.device("cpu"))  # warm-up
t0 = time.time()
ref.score(model, x, torch.device("cpu"))
dt = time.time() - t0
print(json.dumps({"events": a.events, "threads": a.threads, "seconds": dt, "events_per_s": a.events / dt}))
