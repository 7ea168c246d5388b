#!/usr/bin/env python3
"""Scoring throughput of the PyTorch anchor on random events held in memory, for comparison with
`aware score` and aware_throughput's score_images_per_s (docs/performance.md).

Without --batch: the anchor's own scoring, torch_reference.score (batches of 4096, softmax, autograd
on). With --batch N: PyTorch's forward pass alone, batches of N under torch.inference_mode(), then
softmax (the fastest eager way to score); --compile runs the network through torch.compile first.

  scripts/anchor.sh is not used here: run with the anchor's environment,
  .venv-anchor/bin/python3 scripts/anchor_score.py --events 200000 --threads 2
  .venv-anchor/bin/python3 scripts/anchor_score.py --events 50000 --threads 2 --batch 200 [--compile]
"""
import argparse, json, pathlib, sys, time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "anchors"))
import torch_reference as ref  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--events", type=int, default=200000)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=0, help="forward pass alone at this batch (default: torch_reference.score)")
ap.add_argument("--compile", action="store_true", help="with --batch: the network through torch.compile")
a = ap.parse_args()
if a.compile and not a.batch:
    ap.error("--compile needs --batch")
torch.set_num_threads(a.threads)
model = ref.network(2)
x = np.random.default_rng(1).random((a.events, 25, 25), dtype=np.float32)

if a.batch:
    model.eval()
    net = torch.compile(model) if a.compile else model
    xt = torch.from_numpy(x).unsqueeze(1)

    def run(xs):
        with torch.inference_mode():
            for i in range(0, len(xs), a.batch):
                F.softmax(net(xs[i:i + a.batch]), 1)
    run(xt[:10 * a.batch])  # warm-up (and compilation)
    t0 = time.time()
    run(xt)
else:
    ref.score(model, x[:4096], torch.device("cpu"))  # warm-up
    t0 = time.time()
    ref.score(model, x, torch.device("cpu"))
dt = time.time() - t0
print(json.dumps({"events": a.events, "threads": a.threads, "batch": a.batch or 4096, "compile": a.compile,
                  "seconds": dt, "events_per_s": a.events / dt}))
