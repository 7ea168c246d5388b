#!/usr/bin/env python3
"""Generate the jet-image data set of the Anomaly Awareness papers with Pythia 8 and FastJet.

../shared/data/make_jets.py, extended: with --constituents DIR it also saves each jet's constituents
(DIR/<class>/pt, eta, phi: float64, flat; offsets: int64, jets + 1; jet_eta, jet_phi: the jet axes, as
FastJet gives them), from which `aware images` and aware.jet_images make the same images bit for bit
(tests/python/test_aware.py checks it on the bundled sample data/sample/constituents). The images and
the events are the original script's: the same seed gives the same jets. Needs pythia8mc and fastjet
from PyPI (binary wheels: pip install --only-binary=:all: pythia8mc==8.317.2 fastjet==3.5.2.0).

Each class: 13 TeV pp collisions, leading anti-kT R=1.0 jet with pT > 750 GeV and
50 < mJ < 300 GeV; image = 25x25 grid of constituent pT (GeV) in (eta, phi) around the jet axis,
|d_eta|, |d_phi| < 1.0. Output: <out>/<class>.npy, float32, shape (N, 25, 25).
"""
import argparse, sys, time
import numpy as np
import pythia8mc
import fastjet

COMMON = [
    "Beams:eCM = 13000.",
    "Next:numberCount = 0", "Next:numberShowEvent = 0", "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0", "Print:quiet = on",
    "24:onMode = off", "24:onIfAny = 1 2 3 4 5",          # W -> hadrons
]
GRAVITON = ["ExtraDimensionsG*:all = on", "5100039:m0 = 3000.", "5100039:onMode = off",
            "PhaseSpace:mHatMin = 2000.", "PhaseSpace:mHatMax = 4000."]
PROCESSES = {
    "top": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "PhaseSpace:pTHatMin = 700."],
    "qcd": ["HardQCD:all = on", "PhaseSpace:pTHatMin = 700."],
    "w":   ["WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on",
            "PhaseSpace:pTHatMin = 700."],
    "r2":  GRAVITON + ["5100039:onIfAny = 23", "23:onMode = off", "23:onIfAny = 1 2 3 4 5"],
    "r3":  GRAVITON + ["5100039:onIfAny = 6"],
    "r4":  GRAVITON + ["5100039:onIfAny = 25", "25:onMode = off", "25:onIfAny = 24"],
    "eft": ["HiggsSM:ffbar2HZ = on", "PhaseSpace:pTHatMin = 700.", "25:onMode = off",
            "25:onIfAny = 5", "23:onMode = off", "23:onIfAny = 12 14 16"],
}
NPIX, HALF = 25, 1.0
EDGES = np.linspace(-HALF, HALF, NPIX + 1)


def jet_image(jet):
    cons = jet.constituents()
    pt = np.array([c.pt() for c in cons])
    deta = np.array([c.eta() for c in cons]) - jet.eta()
    dphi = np.array([c.phi() for c in cons]) - jet.phi()
    dphi = (dphi + np.pi) % (2 * np.pi) - np.pi
    img, _, _ = np.histogram2d(deta, dphi, bins=(EDGES, EDGES), weights=pt)
    return img.astype(np.float32)


def matches_w(event, jet):
    last = None
    for p in event:
        if p.idAbs() == 24:
            last = p
    if last is None:
        return False
    dphi = (last.phi() - jet.phi() + np.pi) % (2 * np.pi) - np.pi
    return (last.eta() - jet.eta()) ** 2 + dphi ** 2 < 0.6 ** 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cls", choices=sorted(PROCESSES))
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=".")
    ap.add_argument("--constituents", help="also save the constituents under this directory, per class")
    a = ap.parse_args()
    py = pythia8mc.Pythia("", False)
    for s in COMMON + PROCESSES[a.cls] + ["Random:setSeed = on", f"Random:seed = {a.seed}"]:
        py.readString(s)
    py.init()
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, 1.0)
    imgs, tried, t0 = [], 0, time.time()
    saved = {k: [] for k in ("pt", "eta", "phi", "jet_eta", "jet_phi")}
    counts = []
    while len(imgs) < a.n:
        tried += 1
        if not py.next():
            continue
        parts = []
        for p in py.event:
            if p.isFinal() and p.isVisible() and abs(p.eta()) < 2.5:
                parts.append(fastjet.PseudoJet(p.px(), p.py(), p.pz(), p.e()))
        if not parts:
            continue
        cs = fastjet.ClusterSequence(parts, jetdef)
        jets = fastjet.sorted_by_pt(cs.inclusive_jets(100.0))
        if not jets:
            continue
        j = jets[0]
        if a.cls == "w" and not matches_w(py.event, j):
            continue  # the leading jet must be the W, not the recoiling parton
        if j.pt() > 750.0 and 50.0 < j.m() < 300.0:
            imgs.append(jet_image(j))
            if a.constituents:
                cons = j.constituents()
                saved["pt"] += [c.pt() for c in cons]
                saved["eta"] += [c.eta() for c in cons]
                saved["phi"] += [c.phi() for c in cons]
                saved["jet_eta"].append(j.eta())
                saved["jet_phi"].append(j.phi())
                counts.append(len(cons))
    dt = time.time() - t0
    arr = np.stack(imgs)
    np.save(f"{a.out}/{a.cls}.npy", arr)
    if a.constituents:
        import os
        folder = os.path.join(a.constituents, a.cls)
        os.makedirs(folder, exist_ok=True)
        for name, values in saved.items():
            np.save(os.path.join(folder, f"{name}.npy"), np.array(values, dtype=np.float64))
        np.save(os.path.join(folder, "offsets.npy"), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    print(f"{a.cls}: {len(imgs)} jets from {tried} events in {dt:.0f}s, sigma={py.infoPython().sigmaGen():.4g} mb", file=sys.stderr)


if __name__ == "__main__":
    main()
