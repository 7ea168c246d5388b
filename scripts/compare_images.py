#!/usr/bin/env python3
"""Jet images from constituents: aware.jet_images against numpy and awkward versions of the same
pixelisation (../shared/data/make_jets.py's), on the same jets, in one process, one thread each.

  numpy, per jet      make_jets.py's own way: numpy.histogram2d jet by jet
  numpy, vectorised   every constituent at once: d_eta, d_phi, numpy.searchsorted for the pixels, one
                      numpy.bincount over (jet, pixel)
  awkward             the same on a jagged awkward array (broadcast of the jet axes, then flattened)

Every version's images are checked equal to aware's (bit for bit) before any is timed. Prints jets/s
(median of --repeats runs) and each peer's time over aware's. Usage (after scripts/build.sh):
  OMP_NUM_THREADS=1 PYTHONPATH=build/python .venv/bin/python scripts/compare_images.py [--jets N] [--constituents C]
"""
import argparse
import statistics
import time

import numpy as np

import aware

EDGES = np.linspace(-1.0, 1.0, 26)


def jets(n, c, seed=1):
    """n jets of c constituents around random axes, spread like boosted jets (as bench/bench_images.cpp)."""
    rng = np.random.default_rng(seed)
    jet_eta, jet_phi = rng.uniform(-2, 2, n), rng.uniform(0, 2 * np.pi, n)
    offsets = np.arange(n + 1, dtype=np.int64) * c
    eta = np.repeat(jet_eta, c) + rng.normal(0, 0.35, n * c)
    phi = np.mod(np.repeat(jet_phi, c) + rng.normal(0, 0.35, n * c), 2 * np.pi)
    pt = rng.exponential(20, n * c)
    return pt, eta, phi, offsets, jet_eta, jet_phi


def per_jet(pt, eta, phi, offsets, jet_eta, jet_phi):
    out = np.empty((len(offsets) - 1, 25, 25), np.float32)
    for j in range(len(offsets) - 1):
        s = slice(offsets[j], offsets[j + 1])
        dphi = (phi[s] - jet_phi[j] + np.pi) % (2 * np.pi) - np.pi
        out[j] = np.histogram2d(eta[s] - jet_eta[j], dphi, bins=(EDGES, EDGES), weights=pt[s])[0]
    return out


def bins(x):
    """numpy.histogram2d's bin of each x (searchsorted side='right', the last edge in the last bin); -1 outside."""
    k = np.searchsorted(EDGES, x, side="right") - 1
    k[x == EDGES[-1]] = 24
    k[(k < 0) | (k > 24)] = -1
    return k


def flat_images(pt, deta, dphi, jet_of, n):
    r, q = bins(deta), bins(dphi)
    inside = (r >= 0) & (q >= 0)
    index = jet_of[inside] * 625 + r[inside] * 25 + q[inside]
    return np.bincount(index, weights=pt[inside], minlength=n * 625).astype(np.float32).reshape(n, 25, 25)


def vectorised(pt, eta, phi, offsets, jet_eta, jet_phi):
    n = len(offsets) - 1
    jet_of = np.repeat(np.arange(n), np.diff(offsets))
    dphi = (phi - jet_phi[jet_of] + np.pi) % (2 * np.pi) - np.pi
    return flat_images(pt, eta - jet_eta[jet_of], dphi, jet_of, n)


def with_awkward(ak, jagged, jet_eta, jet_phi):
    n = len(jet_eta)
    deta = ak.flatten(jagged.eta - jet_eta)
    dphi = ak.flatten((jagged.phi - jet_phi + np.pi) % (2 * np.pi) - np.pi)
    jet_of = np.repeat(np.arange(n), ak.to_numpy(ak.num(jagged.pt)))
    return flat_images(ak.to_numpy(ak.flatten(jagged.pt)), ak.to_numpy(deta), ak.to_numpy(dphi), jet_of, n)


def timed(f, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jets", type=int, default=100_000)
    ap.add_argument("--constituents", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--per-jet-jets", type=int, default=5_000, help="jets for the slow per-jet histogram2d")
    a = ap.parse_args()
    pt, eta, phi, offsets, jet_eta, jet_phi = data = jets(a.jets, a.constituents)
    run_aware = lambda: aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi)
    reference = run_aware()
    few = jets(a.per_jet_jets, a.constituents)
    versions = {"numpy, vectorised": (lambda: vectorised(*data), a.jets),
                "numpy, per jet (make_jets.py)": (lambda: per_jet(*few), a.per_jet_jets)}
    try:
        import awkward as ak
        jagged = ak.zip({k: ak.unflatten(v, np.diff(offsets)) for k, v in (("pt", pt), ("eta", eta), ("phi", phi))})
        versions["awkward"] = (lambda: with_awkward(ak, jagged, jet_eta, jet_phi), a.jets)
    except ImportError:
        print("awkward is not installed: its version is left out")
    assert np.array_equal(vectorised(*data), reference), "numpy, vectorised: other images"
    assert np.array_equal(per_jet(*few), aware.jet_images(few[0], few[1], few[2], few[3], jet_eta=few[4], jet_phi=few[5]))
    if "awkward" in versions:
        assert np.array_equal(versions["awkward"][0](), reference), "awkward: other images"
    rate = a.jets / timed(run_aware, a.repeats)
    reused = np.empty_like(reference)
    into = a.jets / timed(lambda: aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi, out=reused),
                          a.repeats)
    assert np.array_equal(reused, reference)
    print(f"{a.jets} jets of {a.constituents} constituents; median of {a.repeats} runs; images equal in every version")
    print(f"| version | jets/s | time over aware's |\n| --- | --- | --- |\n| aware.jet_images | {rate:,.0f} | 1 |")
    print(f"| aware.jet_images(..., out=reused array) | {into:,.0f} | {rate / into:.2f} |")
    for name, (f, n) in versions.items():
        r = n / timed(f, a.repeats if n == a.jets else 1)
        print(f"| {name} | {r:,.0f} | {rate / r:.1f} |")


if __name__ == "__main__":
    main()
