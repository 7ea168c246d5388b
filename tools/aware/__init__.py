"""aware: Anomaly Awareness in Python, on the C++ library of the `aware` command line.

Every function calls the code the command line calls, so the numbers are the CLI's, bit for bit:

    import aware
    images = aware.jet_images(pt, eta, phi, offsets, jet_eta=jet_eta, jet_phi=jet_phi)  # (N, 25, 25)
    model = aware.load("out/demo/aa.ckpt")
    scores = model.score(images)                       # (N, classes) probabilities
    result = aware.scan(scores_eft, {"top": (scores_top, 73.4), "qcd": (scores_qcd, 67600.0)})
    result["R_max"], result["best"]

Errors a user can cause are aware.Error (a ValueError) with the command line's message. docs/python.md
shows the whole path from a ROOT file to the window scan.
"""
import json
import os

import numpy as np

from ._aware import Error  # noqa: F401  (re-exported: aware.Error)
from . import _aware

__all__ = ["Error", "Model", "load", "jet_images", "scan", "lee", "roc", "auc", "run", "train"]

# aware score's chunk: the scores of the same events in the same chunks are the CLI's bit for bit.
CHUNK = 1 << 16


def _floats(x, name, dtypes=(np.float32,)):
    """x as a C-contiguous array of one of dtypes: itself when it already is (no copy), else converted once."""
    a = np.asarray(x)
    if a.dtype not in dtypes:
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise Error(f"{name}: expected numbers, got an array of {a.dtype}")
        a = a.astype(dtypes[0])
    return np.ascontiguousarray(a)


class Model:
    """A trained model (a prior.ckpt or aa.ckpt), planned on a backend, ready to score events."""

    def __init__(self, path, device="", threads=0, precision="", conv="", batch=0):
        self._path = os.fspath(path)
        self._m = _aware.Model(self._path, int(batch), device, conv, precision, int(threads))

    @property
    def classes(self):
        """The class of each score column, in order (the first is the score of the window scan)."""
        return list(self._m.classes)

    @property
    def event_shape(self):
        """The shape of one event: (25, 25) for jet images, (F,) for features."""
        return tuple(self._m.event_shape)

    @property
    def backend(self):
        return self._m.backend

    def score(self, events, chunk=CHUNK, progress=False):
        """Softmax probabilities (N, classes), float32, of events (N, *event_shape).

        A float32 C-contiguous array is read in place (no copy); anything else is converted once. The
        events go through in chunks of `chunk` (aware score's --chunk), with the GIL released, so other
        Python threads run meanwhile; progress=True shows a tqdm bar.
        """
        chunk = int(chunk)
        if chunk < 1:
            raise Error(f"score: chunk must be a positive number of events, not {chunk}")
        x = _floats(events, "score")
        if x.ndim != 1 + len(self.event_shape) or tuple(x.shape[1:]) != self.event_shape:
            raise Error(f"score: events of shape {x.shape}, the model takes events of shape (N, "
                        f"{', '.join(map(str, self.event_shape))})")
        out = np.empty((x.shape[0], len(self.classes)), dtype=np.float32)
        starts = range(0, x.shape[0], int(chunk))
        if progress:
            from tqdm import tqdm
            starts = tqdm(starts, total=len(starts), unit="chunk", desc=os.path.basename(self._path))
        for s in starts:
            self._m.score_into(x[s:s + chunk], out[s:s + chunk])
        return out

    def __repr__(self):
        return f"aware.Model({self._path!r}, classes={self.classes}, event_shape={self.event_shape}, backend={self.backend!r})"


def load(path, device="", threads=0, precision="", conv="", batch=0):
    """Loads a checkpoint as `aware score -m` does. device: cpu | cuda | auto ("" the stored config's);
    threads: CPU threads (0: all); precision: fp32 | bf16 | tf32; batch: events per forward pass (0: 64 on the CPU, 1024 on CUDA)."""
    return Model(path, device=device, threads=threads, precision=precision, conv=conv, batch=batch)


def jet_images(pt, eta, phi, offsets, jet_eta=None, jet_phi=None, pixels=25, half_width=1.0, centre="axis",
               rotate=False, flip=False, normalise=False, out=None):
    """Jet images (N, pixels, pixels), float32, from constituents laid out as an awkward array's.

    pt, eta, phi: every jet's constituents, one flat array each (float64 or float32, read in place);
    offsets: N + 1 int64 entries, jet j = entries offsets[j]:offsets[j + 1] (ak.Array.layout.offsets).
    jet_eta, jet_phi: the jet axes (centre="axis", the default, as ../shared/data/make_jets.py makes the
    data set's images, bit for bit). centre="centroid": the pT-weighted centroid. rotate: the principal
    axis along d_eta (the rows); flip: the harder side to positive d_phi and d_eta; normalise: unit sum.
    out: a float32 C-contiguous (N, pixels, pixels) array to fill and return (reused across chunks, it saves
    the new memory's page faults, which cost about as much as making the images).
    """
    given = [a for a in (pt, eta, phi, jet_eta, jet_phi) if a is not None]
    # All float32: read in place as float32; anything else: float64 (never a double narrowed to float32).
    dtype = np.float32 if all(np.asarray(a).dtype == np.float32 for a in given) else np.float64
    arrays = [_floats(a, n, (dtype,)) for a, n in ((pt, "pt"), (eta, "eta"), (phi, "phi"))]
    axes = [None if a is None else _floats(a, n, (dtype,)) for a, n in ((jet_eta, "jet_eta"), (jet_phi, "jet_phi"))]
    offs = np.asarray(offsets)
    if not np.issubdtype(offs.dtype, np.integer):
        raise Error(f"offsets: expected integers, got {offs.dtype}")
    offs = np.ascontiguousarray(offs, dtype=np.int64)
    for a, n in zip(arrays + [offs] + axes, ("pt", "eta", "phi", "offsets", "jet_eta", "jet_phi")):
        if a is not None and a.ndim != 1:
            raise Error(f"{n}: expected a flat (1-D) array, got shape {a.shape}")
    if out is not None and not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.c_contiguous
                                and out.flags.writeable):
        raise Error(f"jet_images: out must be a float32 C-contiguous array of shape ({len(offs) - 1}, {pixels}, {pixels})")
    return _aware.jet_images(*arrays, offs, *axes, int(pixels), float(half_width), centre, bool(rotate),
                             bool(flip), bool(normalise), out)


def _column(scores, column, name):
    """The score column of an (N, classes) array, or a 1-D array as it is: float32, C order."""
    a = np.asarray(scores)
    if a.ndim == 2:
        if not 0 <= column < a.shape[1]:
            raise Error(f"{name}: no column {column} in scores of shape {a.shape}")
        a = a[:, column]
    elif a.ndim != 1:
        raise Error(f"{name}: expected scores (N,) or (N, classes), got shape {a.shape}")
    return _floats(a, name)


def _backgrounds(backgrounds, column):
    if not backgrounds:
        raise Error("backgrounds: at least one {name: (scores, sigma_fb)}")
    names, arrays, sigmas = [], [], []
    for name, value in backgrounds.items():
        try:
            scores, sigma = value
        except (TypeError, ValueError):
            raise Error(f"backgrounds[{name!r}]: expected (scores, sigma_fb)") from None
        if not (isinstance(sigma, (int, float, np.floating, np.integer)) and np.isfinite(sigma) and sigma > 0):
            raise Error(f"backgrounds[{name!r}]: {sigma!r} is not a cross-section in fb (a positive number)")
        names.append(str(name)), arrays.append(_column(scores, column, f"backgrounds[{name!r}]")), sigmas.append(float(sigma))
    return names, arrays, sigmas


def scan(anomaly, backgrounds, column=0, bins=1000, min_background=100, min_width=0.02, widths=(0.08, 0.10, 0.12),
         luminosities=(100, 300, 1000, 3000), device="auto"):
    """The window scan of `aware scan`: the anomaly's scores against {name: (scores, sigma_fb)} backgrounds.

    Scores are (N,) or (N, classes) (then `column`, 0 by default: P(first normal class)). Returns the
    report that `aware scan` writes to NAME_scan.json, as a dict: R_max, R_max_error, best (the window and
    every class's counts), the fixed-width curves, and sigma_min at each luminosity (fb^-1).
    """
    names, arrays, sigmas = _backgrounds(backgrounds, column)
    text = _aware.scan(_column(anomaly, column, "anomaly"), names, arrays, sigmas, int(bins), int(min_background),
                       float(min_width), [float(w) for w in widths], [float(l) for l in luminosities], device)
    return json.loads(text)


def lee(anomaly, backgrounds, toys, column=0, bins=1000, min_background=100, min_width=0.02, injected_toys=200,
        luminosity=3000.0, seed=1, inject_fb=(), window=None, observed=None, device="auto"):
    """The look-elsewhere effect of `aware scan --toys`: background-only and signal-injected
    pseudo-experiments on the scan's grid; returns NAME_lee.json's report as a dict (global p-values and
    significances, injection curves, sigma_min with the look-elsewhere effect, for the scanned windows
    and the `window` (lo, hi) fixed in advance). observed: counts per bin of observed events."""
    names, arrays, sigmas = _backgrounds(backgrounds, column)
    text = _aware.lee(_column(anomaly, column, "anomaly"), names, arrays, sigmas, int(bins), int(min_background),
                      float(min_width), int(toys), int(injected_toys), float(luminosity), int(seed),
                      [float(x) for x in inject_fb], None if window is None else [float(w) for w in window],
                      [] if observed is None else [int(x) for x in observed], device)
    return json.loads(text)


def roc(positive, negative, max_points=500, column=0):
    """The ROC of scores of the positive against the negative class: {"auc", "fpr", "tpr", "threshold"}
    (AUC exact, ties one half; the curve thinned to max_points), as in the run's analysis files. Scores
    are (N,) or (N, classes) (then `column`: P(first class) by default)."""
    return json.loads(_aware.roc(_column(positive, column, "positive"), _column(negative, column, "negative"),
                                 int(max_points)))


def auc(positive, negative, column=0):
    """The area under the ROC curve (exact, ties one half) of (N,) or (N, classes) scores."""
    return roc(positive, negative, max_points=2, column=column)["auc"]


def _config(config):
    """(TOML text, name, base directory for relative data paths) of a config path or dict."""
    if isinstance(config, dict):
        import tomli_w
        return tomli_w.dumps(config), "config (dict)", os.getcwd()
    path = os.fspath(config)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise Error(f"{path}: cannot read the config ({e.strerror})") from None
    return text, path, os.path.dirname(os.path.abspath(path))


def _overrides(set):
    if isinstance(set, str):  # one "section.key=VALUE"
        return [set]
    if isinstance(set, dict):  # {"train.lambda": 0.3} -> "train.lambda=0.3" (the value as TOML)
        import tomli_w
        return [f"{k}={tomli_w.dumps({'v': v})[4:].strip()}" for k, v in set.items()]
    return list(set)


def run(config, out="out", set=(), resume=False, prior=None, progress=False):
    """The whole pipeline of `aware run`: prior run, AA run, scores, analysis; outputs in `out`.

    config: a TOML file's path or a dict of the same sections; set: {"section.key": value} or
    ["section.key=VALUE"] overrides (as --set). Returns summary.json's contents as a dict.
    """
    text, name, base = _config(config)
    return json.loads(_aware.run(text, name, base, _overrides(set), os.fspath(out), bool(resume),
                                 "" if prior is None else os.fspath(prior), bool(progress)))


def train(config, stage="prior", out="out", init=None, resume=False, epochs=-1, set=(), progress=False):
    """One stage of `aware train` (prior, or aa from `init`, a prior's checkpoint); STAGE.ckpt and
    log.jsonl in `out`. Returns each epoch's log as a list of dicts."""
    text, name, base = _config(config)
    return json.loads(_aware.train(text, name, base, _overrides(set), stage, os.fspath(out),
                                   "" if init is None else os.fspath(init), bool(resume), int(epochs), bool(progress)))
