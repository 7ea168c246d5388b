"""docs/python.md's path from a ROOT file to the window scan, run as the page shows it, and its scores against
the command line's (`aware images` then `aware score`) on the same jets."""
import os
import re
import subprocess

import numpy as np
import aware

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
AWARE = os.path.abspath(os.environ.get("AWARE_BINARY", os.path.join(ROOT, "build", "aware")))
SAMPLE = os.path.abspath(os.path.join(ROOT, "data", "sample"))


def page_block():
    """The first ```python block after the heading "From a ROOT file to the window scan"."""
    text = open(os.path.join(ROOT, "docs", "python.md"), encoding="utf-8").read()
    section = text[text.index("## From a ROOT file to the window scan"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def constituents():
    """The bundled constituents (scripts/make_jets.py --constituents): pt, eta, phi, offsets, jet_eta, jet_phi."""
    folder = os.path.join(SAMPLE, "constituents", "top")
    return [_load_gz(os.path.join(folder, f"{n}.npy.gz")) for n in ("pt", "eta", "phi", "offsets", "jet_eta", "jet_phi")]


def test_the_pages_root_path_runs_and_equals_the_command_line(tmp_path, monkeypatch):
    import awkward as ak  # scripts/setup.sh installs both in .venv
    import uproot
    # A model on the bundled 25x25 jet images, small and quick.
    cfg = {"run": {"seed": 2},
           "data": {"dir": os.path.abspath(os.path.join(SAMPLE, "jets")), "normal": ["top", "qcd"], "aware": ["w"],
                    "unseen": ["eft"], "n_test": 200, "n_train": 400},
           "network": {"layers": [{"type": "conv", "filters": 4, "padding": 1}, {"type": "relu"}, {"type": "maxpool"},
                                  {"type": "linear", "units": 16}, {"type": "relu"}]},
           "train": {"epochs": 1, "aa_epochs": 1, "batch": 50},
           "scan": {"bins": 200, "min_background_events": 10}}
    aware.run(cfg, out=tmp_path / "run")
    os.link(tmp_path / "run" / "aa.ckpt", tmp_path / "aa.ckpt")
    for name in ("top", "qcd"):  # the simulated background as the page loads it
        np.save(tmp_path / f"{name}.npy", _load_gz(os.path.join(SAMPLE, "jets", f"{name}.npy.gz"))[:1000])
    # The jets as a ROOT tree with jagged constituent branches, written by uproot.
    pt, eta, phi, offsets, jet_eta, jet_phi = constituents()
    jagged = lambda flat: ak.unflatten(flat, np.diff(offsets))
    with uproot.recreate(tmp_path / "jets.root") as f:
        f["jets"] = {"pt": jagged(pt), "eta": jagged(eta), "phi": jagged(phi), "jet_eta": jet_eta, "jet_phi": jet_phi}

    monkeypatch.chdir(tmp_path)
    exec(compile(page_block(), "docs/python.md", "exec"), {})

    # The command line on the same jets: aware images, then aware score.
    folder = os.path.join(SAMPLE, "constituents", "top")
    for args in (["images", folder, "-o", tmp_path / "images.npy", "-q"],
                 ["score", "-m", tmp_path / "aa.ckpt", tmp_path / "images.npy", "-o", tmp_path / "cli", "-q"]):
        r = subprocess.run([AWARE, *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    cli_scores = np.load(tmp_path / "cli" / "images.npy")
    with uproot.open(tmp_path / "scores.root") as f:
        written = np.stack([f["scores"][name].array(library="np") for name in ("top", "qcd")], axis=1)
    assert written.shape == cli_scores.shape == (len(offsets) - 1, 2)
    assert np.array_equal(written, cli_scores)


def _load_gz(path):
    import gzip
    import io
    with gzip.open(path, "rb") as f:
        return np.load(io.BytesIO(f.read()))
