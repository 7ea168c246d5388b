"""The Python package against the command line: the same numbers bit for bit, no copy of a large input, the
GIL released while C++ works, errors as aware.Error with the CLI's messages, jet images as make_jets.py
makes them. Run by CTest (`python`) with PYTHONPATH=build/python and AWARE_BINARY=build/aware."""
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import types

import numpy as np
import pytest

import aware

AWARE = os.path.abspath(os.environ.get("AWARE_BINARY", os.path.join(os.path.dirname(__file__), "..", "..", "build", "aware")))
# make_jets.py as the project's data were made with it (../shared/data), or its copy in scripts/ (the same
# jet_image, extended to save the constituents) where the clone has no ../shared beside it.
MAKE_JETS = next(p for p in (os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "make_jets.py"),
                             os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "make_jets.py"))
                 if os.path.exists(p))


def cli(*args):
    r = subprocess.run([AWARE, *map(str, args)], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def synthetic_classes(folder, events=120):
    """8x8 images of five classes (a, b normal; c, d aware; e unseen): a blob at each class's place plus noise."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:8, 0:8]
    for name, (cy, cx) in {"a": (2, 2), "b": (5, 5), "c": (2, 5), "d": (5, 2), "e": (4, 4)}.items():
        centres = rng.normal(0, 0.8, size=(events, 2)) + (cy, cx)
        d2 = (y[None] - centres[:, 0, None, None]) ** 2 + (x[None] - centres[:, 1, None, None]) ** 2
        images = rng.uniform(0, 0.5, size=(events, 8, 8)) + 10 * np.exp(-d2 / 2)
        np.save(folder / f"{name}.npy", images.astype(np.float32))


def config(data):
    return {"run": {"seed": 3},
            "data": {"dir": str(data), "normal": ["a", "b"], "aware": ["c", "d"], "unseen": ["e"], "n_test": 30,
                     "n_train": 60},
            "network": {"layers": [{"type": "conv", "filters": 4, "padding": 1}, {"type": "relu"}, {"type": "maxpool"},
                                   {"type": "linear", "units": 8}, {"type": "relu"}]},
            "train": {"epochs": 2, "aa_epochs": 2, "batch": 10},
            "scan": {"bins": 100, "min_background_events": 5, "sigma_fb": {"a": 1.0, "b": 10.0}}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One pipeline run through aware.run, and the same config through `aware run` on the command line."""
    root = tmp_path_factory.mktemp("run")
    synthetic_classes(root / "data")
    cfg = config(root / "data")
    summary = aware.run(cfg, out=root / "py")
    import tomli_w
    (root / "run.toml").write_text(tomli_w.dumps(cfg))
    rc, out = cli("run", root / "run.toml", "-o", root / "cli", "-q")
    assert rc == 0, out
    return root, summary


def test_run_gives_the_summary_of_the_command_line(run):
    root, summary = run
    cli_summary = json.loads((root / "cli" / "summary.json").read_text())
    for stage in ("prior", "aa"):
        assert summary["stages"][stage]["auc"] == cli_summary["stages"][stage]["auc"]
        assert summary["stages"][stage]["scan"]["e"]["R_max"] == cli_summary["stages"][stage]["scan"]["e"]["R_max"]
    assert (root / "py" / "aa.ckpt").exists()


def test_score_equals_aware_score_bit_for_bit(run):
    root, _ = run
    events = np.load(root / "data" / "e.npy")
    events = np.concatenate([events] * 700)  # 84,000 events: more than one chunk of 65,536
    np.save(root / "events.npy", events)
    rc, out = cli("score", "-m", root / "py" / "aa.ckpt", root / "events.npy", "-o", root / "scores", "-q")
    assert rc == 0, out
    model = aware.load(root / "py" / "aa.ckpt")
    assert model.classes == ["a", "b"] and model.event_shape == (8, 8)
    scores = model.score(events)
    assert scores.dtype == np.float32 and scores.shape == (len(events), 2)
    assert np.array_equal(scores, np.load(root / "scores" / "events.npy"))
    assert np.array_equal(model.score(events.astype(np.float64)), scores)  # converted once, same numbers
    assert np.array_equal(model.score(events[:5000], progress=True), scores[:5000])  # a tqdm bar on stderr


def test_a_float32_input_is_not_copied(run):
    root, _ = run
    model = aware.load(root / "py" / "aa.ckpt")
    events = np.random.default_rng(1).uniform(0, 5, size=(300_000, 8, 8)).astype(np.float32)  # 77 MB

    def peak_mb(x):
        outer = tracemalloc.is_tracing()  # PYTHONTRACEMALLOC: measure from here, leave it running
        if not outer:
            tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        model.score(x)
        peak = tracemalloc.get_traced_memory()[1] - before
        if not outer:
            tracemalloc.stop()
        return peak / 1e6

    assert peak_mb(events) < 5  # the (N, 2) output only: 2.4 MB
    assert peak_mb(events.astype(np.float64)) > 70  # a float64 input is converted: this check can fail


def test_the_gil_is_released_while_scoring(run):
    root, _ = run
    model = aware.load(root / "py" / "aa.ckpt", threads=1, device="cpu")
    events = np.random.default_rng(2).uniform(0, 5, size=(400_000, 8, 8)).astype(np.float32)
    ticks, stop = [], threading.Event()

    def count():
        while not stop.is_set():
            t = time.perf_counter()
            if not ticks or t - ticks[-1] > 1e-3:  # a tick a millisecond at most: a short list
                ticks.append(t)

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    model.score(events, chunk=len(events))  # one call into C++
    end = time.perf_counter()
    stop.set()
    t.join()
    during = [x for x in ticks if start < x < end]
    assert end - start > 0.05, "too fast to tell"
    # Holding the GIL, the counter would stop for the whole call; released, it runs throughout.
    assert len(during) > 20 and during[-1] - during[0] > 0.5 * (end - start)


def test_threads_sharing_a_model_get_their_own_scores(run):
    """One model, four Python threads scoring at once: each gets what it alone would (one call at a time)."""
    root, _ = run
    model = aware.load(root / "py" / "aa.ckpt")
    rng = np.random.default_rng(4)
    inputs = [rng.uniform(0, 5, size=(20_000, 8, 8)).astype(np.float32) for _ in range(4)]
    alone = [model.score(x) for x in inputs]
    together = [None] * 4
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, model.score(inputs[i], chunk=1000)))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        assert np.array_equal(a, b)


def test_errors_are_aware_errors_with_the_command_lines_messages(run, tmp_path):
    root, _ = run
    model = aware.load(root / "py" / "aa.ckpt")
    with pytest.raises(aware.Error, match=r"events of shape \(5, 7, 7\), the model takes events of shape \(N, 8, 8\)"):
        model.score(np.zeros((5, 7, 7), np.float32))
    with pytest.raises(aware.Error, match="nowhere.ckpt: cannot open the checkpoint"):
        aware.load(tmp_path / "nowhere.ckpt")
    assert issubclass(aware.Error, ValueError)
    # A config error: the message the command line prints.
    bad = config(root / "data")
    bad["train"]["lr"] = -1.0
    (tmp_path / "bad.toml").write_text(__import__("tomli_w").dumps(bad))
    rc, out = cli("run", tmp_path / "bad.toml", "-o", tmp_path / "o", "-q")
    assert rc == 2
    with pytest.raises(aware.Error) as e:
        aware.run(tmp_path / "bad.toml", out=tmp_path / "o")
    assert str(e.value) in out


def test_scan_lee_and_roc_equal_the_command_line(run, tmp_path):
    root, _ = run
    s = root / "cli" / "scores" / "aa"
    a, b, e = (np.load(s / f"{c}.npy") for c in "abe")
    rc, out = cli("scan", "--anomaly", s / "e.npy", "--background", f"{s / 'a.npy'}:1", "--background",
                  f"{s / 'b.npy'}:10", "--bins", 100, "--min-background", 5, "--device", "cpu", "-o", tmp_path,
                  "--toys", 100, "--injected-toys", 5, "--window", "0.3:0.7")
    assert rc == 0, out
    got = aware.scan(e, {"a": (a, 1.0), "b": (b, 10.0)}, bins=100, min_background=5, device="cpu")
    assert got == json.loads((tmp_path / "e_scan.json").read_text())
    lee = aware.lee(e, {"a": (a, 1.0), "b": (b, 10.0)}, toys=100, injected_toys=5, bins=100, min_background=5,
                    window=(0.3, 0.7), device="cpu")
    assert lee == json.loads((tmp_path / "e_lee.json").read_text())
    # AUC: the exact pairwise fraction, ties one half.
    pos, neg = a[:, 0], b[:, 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert aware.auc(pos, neg) == pytest.approx(pairs, abs=1e-12)
    assert aware.auc(a, b) == aware.auc(pos, neg)  # (N, classes): column 0, not the flattened array
    with pytest.raises(aware.Error, match="is not a cross-section in fb"):
        aware.scan(e, {"a": (a, -1.0)})


def test_train_runs_one_stage(run, tmp_path):
    root, _ = run
    logs = aware.train(config(root / "data"), stage="prior", out=tmp_path, epochs=1)
    assert [l["epoch"] for l in logs] == [0] and logs[0]["stage"] == "prior"  # epochs count from 0
    aa = aware.train(config(root / "data"), stage="aa", out=tmp_path, init=tmp_path / "prior.ckpt", epochs=1)
    assert aa[0]["stage"] == "aa" and (tmp_path / "aa.ckpt").exists()
    with pytest.raises(aware.Error, match="needs --init"):
        aware.train(config(root / "data"), stage="aa", out=tmp_path / "x")


def random_jets(n=500, seed=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 60, size=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    jet_eta, jet_phi = rng.uniform(-2, 2, n), rng.uniform(-np.pi, np.pi, n)
    total = offsets[-1]
    which = np.repeat(np.arange(n), counts)
    deta = rng.uniform(-1.2, 1.2, total)
    deta[::5] = np.round(deta[::5] / 0.08) * 0.08  # on the pixel edges
    eta = jet_eta[which] + deta
    phi = np.mod(jet_phi[which] + rng.uniform(-1.2, 1.2, total) + np.pi, 2 * np.pi) - np.pi
    pt = rng.exponential(20, total)
    return [a.astype(dtype) for a in (pt, eta, phi)] + [offsets] + [a.astype(dtype) for a in (jet_eta, jet_phi)]


def histogram2d_images(pt, eta, phi, offsets, jet_eta, jet_phi):
    """make_jets.py's jet_image, jet by jet, in numpy."""
    edges = np.linspace(-1.0, 1.0, 26)
    out = []
    for j in range(len(offsets) - 1):
        s = slice(offsets[j], offsets[j + 1])
        deta = eta[s] - jet_eta[j]
        dphi = phi[s] - jet_phi[j]
        dphi = (dphi + np.pi) % (2 * np.pi) - np.pi
        out.append(np.histogram2d(deta, dphi, bins=(edges, edges), weights=pt[s])[0].astype(np.float32))
    return np.stack(out)


def test_jet_images_on_the_pixel_edges_and_the_phi_seam():
    """Every pixel edge and its float64 neighbours, in d_eta and d_phi; phi around -pi, pi, 3 pi and far away."""
    edges = np.linspace(-1.0, 1.0, 26)
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    seam = np.array([np.pi, -np.pi, 3 * np.pi, -3 * np.pi, 2 * np.pi, 4 * np.pi, 0.0, -0.0, 100.0, -1e4, 7 * np.pi + 0.5])
    seam = np.concatenate([seam, np.nextafter(seam, -np.inf), np.nextafter(seam, np.inf)])
    d_eta = np.concatenate([near, np.zeros(len(near)), np.zeros(len(seam))])
    d_phi = np.concatenate([np.zeros(len(near)), near, seam])
    n = len(d_eta)  # a jet a constituent, the axis at (0, 0): d = the coordinates themselves
    args = (np.ones(n), d_eta, d_phi, np.arange(n + 1, dtype=np.int64), np.zeros(n), np.zeros(n))
    assert np.array_equal(aware.jet_images(*args[:4], jet_eta=args[4], jet_phi=args[5]), histogram2d_images(*args))
    # and around a jet axis near the seam
    args = (np.ones(n), d_eta + 0.3, d_phi + np.pi - 1e-9, np.arange(n + 1, dtype=np.int64), np.full(n, 0.3),
            np.full(n, np.pi - 1e-9))
    assert np.array_equal(aware.jet_images(*args[:4], jet_eta=args[4], jet_phi=args[5]), histogram2d_images(*args))


def test_jet_images_equal_numpys_histogram2d():
    pt, eta, phi, offsets, jet_eta, jet_phi = random_jets()
    got = aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi)
    assert got.shape == (500, 25, 25) and got.dtype == np.float32
    assert np.array_equal(got, histogram2d_images(pt, eta, phi, offsets, jet_eta, jet_phi))


def test_jet_images_equal_the_generators_images_of_pythia_jets():
    """data/sample/constituents: Pythia jets whose constituents scripts/make_jets.py saved beside its images."""
    import gzip
    import io
    folder = os.path.join(os.path.dirname(__file__), "..", "..", "data", "sample", "constituents")
    load = lambda cls, n: np.load(io.BytesIO(gzip.open(os.path.join(folder, cls, f"{n}.npy.gz")).read()))
    for cls in ("top", "qcd", "eft"):
        pt, eta, phi, offsets, jet_eta, jet_phi, images = (load(cls, n) for n in
                                                           ("pt", "eta", "phi", "offsets", "jet_eta", "jet_phi", "images"))
        assert len(images) == 300 and len(pt) > 300 * 20
        assert np.array_equal(aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi), images), cls


class _Particle:
    def __init__(self, pt, eta, phi):
        self._v = (pt, eta, phi)

    def pt(self):
        return self._v[0]

    def eta(self):
        return self._v[1]

    def phi(self):
        return self._v[2]


class _Jet(_Particle):
    def __init__(self, eta, phi, constituents):
        super().__init__(0.0, eta, phi)
        self._c = constituents

    def constituents(self):
        return self._c


def test_jet_images_equal_make_jets_py():
    """make_jets.py's own jet_image (its Pythia and FastJet imports stubbed: only numpy runs) on the same jets."""
    for name in ("pythia8mc", "fastjet"):
        sys.modules.setdefault(name, types.ModuleType(name))
    spec = importlib.util.spec_from_file_location("make_jets", MAKE_JETS)
    make_jets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_jets)
    pt, eta, phi, offsets, jet_eta, jet_phi = random_jets(n=200, seed=8)
    want = np.stack([make_jets.jet_image(_Jet(jet_eta[j], jet_phi[j], [_Particle(pt[i], eta[i], phi[i])
                                                                         for i in range(offsets[j], offsets[j + 1])]))
                     for j in range(len(offsets) - 1)])
    assert np.array_equal(aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi), want)


def test_jet_images_take_float32_and_check_their_input():
    pt, eta, phi, offsets, jet_eta, jet_phi = random_jets(n=50, dtype=np.float32)
    got = aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi)
    widened = [a.astype(np.float64) for a in (pt, eta, phi)]
    assert np.array_equal(got, aware.jet_images(*widened, offsets, jet_eta=jet_eta.astype(np.float64),
                                                jet_phi=jet_phi.astype(np.float64)))
    # A double among the inputs: every input read as float64, none narrowed to float32.
    mixed = aware.jet_images(pt, eta.astype(np.float64) + 1e-9, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi)
    assert np.array_equal(mixed, aware.jet_images(*[a.astype(np.float64) for a in (pt, eta)][:1],
                                                  eta.astype(np.float64) + 1e-9, phi.astype(np.float64), offsets,
                                                  jet_eta=jet_eta.astype(np.float64), jet_phi=jet_phi.astype(np.float64)))
    normalised = aware.jet_images(pt, eta, phi, offsets, centre="centroid", rotate=True, flip=True, normalise=True)
    sums = normalised.reshape(50, -1).sum(1)
    assert np.allclose(sums[sums > 0], 1, atol=1e-5)
    reused = np.full_like(got, 7.0)
    assert aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi, out=reused) is reused
    assert np.array_equal(reused, got)  # filled in place, every pixel written
    with pytest.raises(aware.Error, match=r"out must be a float32 C-contiguous array of shape \(50, 25, 25\)"):
        aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi, out=np.empty((49, 25, 25), np.float32))
    with pytest.raises(aware.Error, match="centring on the jet axis needs jet_eta and jet_phi"):
        aware.jet_images(pt, eta, phi, offsets)
    with pytest.raises(aware.Error, match="offsets decrease at jet 0"):
        aware.jet_images(pt, eta, phi, offsets[::-1].copy(), centre="centroid")
    with pytest.raises(aware.Error, match="'leading' is not a centre"):
        aware.jet_images(pt, eta, phi, offsets, centre="leading")


def save_constituents(folder, pt, eta, phi, offsets, jet_eta, jet_phi, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in dict(pt=pt, eta=eta, phi=phi, offsets=offsets, jet_eta=jet_eta, jet_phi=jet_phi).items():
        np.save(folder / f"{name}.npy", a)
    if gz:
        import gzip
        import shutil
        for name in ("pt", "offsets"):
            with open(folder / f"{name}.npy", "rb") as f, gzip.open(folder / f"{name}.npy.gz", "wb") as g:
                shutil.copyfileobj(f, g)
            (folder / f"{name}.npy").unlink()


def test_aware_images_equals_jet_images(tmp_path):
    jets = random_jets(n=40_000, seed=4)  # more than one of the command's chunks of 16,384 jets
    save_constituents(tmp_path / "c", *jets, gz=True)
    rc, out = cli("images", tmp_path / "c", "-o", tmp_path / "images.npy", "-q")
    assert rc == 0, out
    assert np.array_equal(np.load(tmp_path / "images.npy"), aware.jet_images(*jets[:4], jet_eta=jets[4], jet_phi=jets[5]))
    # float32 constituents and int32 offsets, with the options
    small = random_jets(n=300, seed=6, dtype=np.float32)
    small[3] = small[3].astype(np.int32)
    save_constituents(tmp_path / "f", *small)
    rc, out = cli("images", tmp_path / "f", "-o", tmp_path / "f.npy", "--centre", "centroid", "--rotate", "--flip",
                  "--normalise", "--pixels", 33, "--half-width", 0.8, "-q")
    assert rc == 0, out
    want = aware.jet_images(*small[:4], jet_eta=small[4], jet_phi=small[5], centre="centroid", rotate=True, flip=True,
                            normalise=True, pixels=33, half_width=0.8)
    assert np.array_equal(np.load(tmp_path / "f.npy"), want)


def test_aware_images_errors_name_the_file(tmp_path):
    jets = random_jets(n=10)
    save_constituents(tmp_path / "c", *jets)
    np.save(tmp_path / "c" / "offsets.npy", jets[3].astype(np.float32))
    rc, out = cli("images", tmp_path / "c", "-o", tmp_path / "i.npy")
    assert rc == 2 and "offsets.npy: dtype '<f4' is not little-endian int64 or int32" in out, out
    (tmp_path / "c" / "offsets.npy").unlink()
    rc, out = cli("images", tmp_path / "c", "-o", tmp_path / "i.npy")
    assert rc == 2 and "no offsets.npy" in out, out
    np.save(tmp_path / "c" / "offsets.npy", jets[3] + 1)
    rc, out = cli("images", tmp_path / "c", "-o", tmp_path / "i.npy")
    assert rc == 2 and "is past the" in out, out
    # A bad constituent in the second chunk of jets: the first chunk is written, then removed with the rest.
    many = random_jets(n=40_000, seed=9)
    bad = next(j for j in range(30_000, 40_000) if many[3][j + 1] > many[3][j])
    many[0][many[3][bad]] = -1.0
    save_constituents(tmp_path / "m", *many)
    rc, out = cli("images", tmp_path / "m", "-o", tmp_path / "i.npy")
    assert rc == 2 and f"jet {bad - 26843}, constituent 0" in out and "of the jets from jet 26843 on" in out, out
    assert sorted(os.listdir(tmp_path)) == ["c", "m"]  # no i.npy, no temporary
    rc, out = cli("images", tmp_path / "c", "--centre", "middle")
    assert rc == 2 and "--centre: 'middle' is not a centre (axis or centroid)" in out, out
