#!/usr/bin/env python3
"""aware's training step against PyTorch's, exactly: both train the Fig. 1 network (the anchor's
torch_reference.network) from the same initial weights on the same 20 batches of 100 real jets
(data/sample/jets, top and qcd, normalised as aware does), SGD lr 0.01 momentum 0.9, dropout off
(its masks come from other random streams). Prints both loss sequences and the largest weight
difference after the last step.

  .venv-anchor/bin/python3 scripts/torch_equivalence.py      (after scripts/anchor.sh made the venv)
"""
import pathlib, subprocess, sys, tempfile

import numpy as np
import torch

root = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root.parent / "shared" / "anchors"))
import torch_reference as ref  # noqa: E402

torch.set_num_threads(2)
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([str(root / "build" / "aware_torch_check"), str(root / "data" / "sample" / "jets"), tmp, "20"],
                   check=True, capture_output=True)
    load = lambda name: np.load(f"{tmp}/{name}.npy")
    x, y, p0, p_end, ours = load("x"), load("y").astype(np.int64), load("p0"), load("p_end"), load("loss")
model = ref.network(2)
model.eval()  # dropout off; gradients still flow
layers = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
offset = 0
with torch.no_grad():
    for m in layers:
        for t in (m.weight, m.bias):
            t.copy_(torch.from_numpy(p0[offset:offset + t.numel()]).reshape(t.shape))
            offset += t.numel()
assert offset == len(p0), "parameter layouts differ"
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
losses = []
for s in range(len(ours)):
    xb, yb = torch.from_numpy(x[s * 100:(s + 1) * 100]).unsqueeze(1), torch.from_numpy(y[s * 100:(s + 1) * 100])
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
flat = np.concatenate([t.detach().numpy().ravel() for m in layers for t in (m.weight, m.bias)])
print("loss, PyTorch:", " ".join(f"{v:.6f}" for v in losses))
print("loss, aware:  ", " ".join(f"{v:.6f}" for v in ours))
print(f"largest loss difference: {np.abs(np.array(losses) - ours).max():.2g}")
print(f"largest weight difference after {len(ours)} steps, relative to the largest weight: "
      f"{np.abs(flat - p_end).max() / np.abs(flat).max():.2g} (the weights moved by up to {np.abs(flat - p0).max():.3f})")
