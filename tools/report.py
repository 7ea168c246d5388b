#!/usr/bin/env python3
"""aware report: the papers' figures and the results tables from the outputs of `aware run`.

Reads RUNS/NAME_sSEED/ as written by `aware run` (scripts/reproduce.sh): summary.json (the numbers and each
class's histogram of the score; enough for every table and density plot), and where present analysis/*.json
and *_curves.csv (ROC, window curves) and scores/STAGE/CLASS.npy (used for runs whose summary predates the
histograms). Writes PNG plots, results.json and tables.md (markdown) into OUT. A figure is drawn whole from
the runs that exist or not at all; tables.md lists what was not drawn and why.

  aware report RUNS... -o OUT [--jets DIR]   (or: python3 tools/report.py RUNS... -o OUT)

Run names (scripts/reproduce.sh): paper (aware of w, r2, r3, r4; eft unseen), loo_X (X left out),
lambda_L, aware_A_B (aware of A, B), three (three normal classes), kin, kin_loo_X, fashion, ratio_R,
epochs10 (paper's AA from the prior run `prior`), epochs20, lee (paper with `scan.toys`).
"""
import argparse
import json
import math
import os
import re
import sys
import tomllib

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
except ImportError as e:
    sys.exit(f"aware report: {e.name} is missing for {sys.executable}: scripts/setup.sh installs Debian's "
             "python3-matplotlib and python3-numpy (or set AWARE_PYTHON to a python3 that has them)")

JET_ANOMALIES = ["w", "r2", "r3", "r4", "eft"]
COLOURS = {"top": "tab:red", "qcd": "tab:blue", "w": "tab:green", "r2": "tab:purple", "r3": "tab:brown",
           "r4": "tab:pink", "eft": "black", "ggf": "tab:red", "vbf": "tab:blue", "zh": "tab:green",
           "wh": "tab:purple", "graviton": "black"}
SCORES = ["p0_centre", "max_softmax", "entropy"]


class Runs:
    """The runs of RUNS/, by configuration name and seed."""

    def __init__(self, roots):
        self.root = ", ".join(roots)
        self.by_name = {}
        for root in roots:  # a later root's NAME_sSEED replaces an earlier one's
            for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
                m = re.fullmatch(r"(.+)_s(\d+)", entry)
                if m and os.path.exists(os.path.join(root, entry, "summary.json")):
                    self.by_name.setdefault(m.group(1), {})[int(m.group(2))] = os.path.join(root, entry)

    def seeds(self, name):
        return sorted(self.by_name.get(name, {}))

    def dir(self, name, seed=None):
        runs = self.by_name.get(name, {})
        if not runs:
            return None
        return runs[seed if seed is not None else min(runs)]

    def summaries(self, name):
        return [json.load(open(os.path.join(d, "summary.json"))) for _, d in sorted(self.by_name.get(name, {}).items())]


def scores(run_dir, stage, cls):
    path = os.path.join(run_dir, "scores", stage, cls + ".npy")
    return np.load(path) if os.path.exists(path) else None


def histograms(summary, stage):
    """The stage's event counts per class in bins of P(c0) (and cells of (P(c0), P(c2))) from summary.json."""
    return summary["stages"].get(stage, {}).get("histograms")


def classes_of(run_dir, summary, stage="prior"):
    h = histograms(summary, stage)
    if h:
        return sorted(h["counts"])
    folder = os.path.join(run_dir, "scores", stage)
    return sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".npy")) if os.path.isdir(folder) else []


def density_1d(run_dir, summary, stage, cls, bins=50):
    """(bin edges, density) of P(c0) for cls: the summary's counts, else the scores file; None without either."""
    h = histograms(summary, stage)
    if h and cls in h["counts"]:
        counts = np.array(h["counts"][cls], dtype=float)
    else:
        p = scores(run_dir, stage, cls)
        if p is None:
            return None
        counts = np.histogram(np.clip(p[:, 0], 0, 1), bins=bins, range=(0, 1))[0].astype(float)
    edges = np.linspace(0, 1, len(counts) + 1)
    return edges, counts * len(counts) / max(counts.sum(), 1)


def counts_2d(run_dir, summary, stage, cls, bins=40):
    """bins x bins event counts of cls in (P(c0), P(c2)), row = P(c0); None without the summary's or scores."""
    h = histograms(summary, stage)
    if h and cls in h.get("counts_2d", {}):
        n = h["bins_2d"]
        return np.array(h["counts_2d"][cls], dtype=float).reshape(n, n)
    p = scores(run_dir, stage, cls)
    if p is None:
        return None
    return np.histogram2d(np.clip(p[:, 0], 0, 1), np.clip(p[:, 2], 0, 1), bins=bins, range=[[0, 1], [0, 1]])[0]


def order(names, normal):
    """Normal classes first, then the anomalies in the paper's order."""
    known = normal + [a for a in JET_ANOMALIES + ["zh", "wh", "graviton"] if a not in normal]
    return sorted(names, key=lambda n: (known.index(n) if n in known else len(known), n))


def normal_classes(summary):
    """The normal classes in the config's order: the first is the class of the 1-D score P(c0)."""
    try:
        return tomllib.loads(summary["config"])["data"]["normal"]
    except (tomllib.TOMLDecodeError, KeyError):
        cf = summary["stages"]["prior"]["central_fraction"]
        return [c for c in cf if c not in summary["stages"]["prior"].get("scan", {})]


def unseen_classes(summary):
    """The config's unseen anomalies (those AA never saw), or [] where the summary has no config."""
    try:
        return tomllib.loads(summary["config"])["data"].get("unseen", [])
    except (tomllib.TOMLDecodeError, KeyError):
        return []


def r_max(summary, stage, cls):
    """R_max of cls at stage, or None where the run has no such stage or class."""
    return summary["stages"].get(stage, {}).get("scan", {}).get(cls, {}).get("R_max")


def mean_std(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None, 0
    a = np.array(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0, len(a)


def fmt(m, s, n, digits=3, style="f"):
    if m is None:
        return "-"
    if style == "g":  # significant digits, trailing zeros kept: 16.0 +- 0.58
        return f"{m:#.{digits}g}" if n < 2 else f"{m:#.{digits}g} ± {s:#.2g}"
    return f"{m:.{digits}f}" if n < 2 else f"{m:.{digits}f} ± {s:.{digits}f}"


class Report:
    def __init__(self, runs, out):
        self.runs, self.out = runs, out
        self.results = {}
        self.tables = []
        self.figures = []
        self.skipped = []
        os.makedirs(out, exist_ok=True)

    def save(self, fig, name, caption):
        path = os.path.join(self.out, name)
        fig.savefig(path + ".tmp.png", dpi=110, bbox_inches="tight")
        os.replace(path + ".tmp.png", path)  # atomic
        plt.close(fig)
        self.figures.append((name, caption))

    def skip(self, name, why):
        """Records a figure not drawn; an earlier report's file of that name stays, and the note says so."""
        kept = name.endswith(".png") and os.path.exists(os.path.join(self.out, name))
        self.skipped.append(f"{name}: {why}" + ("; the file there is an earlier report's" if kept else ""))

    def need(self, what, *names):
        missing = [n for n in names if not self.runs.dir(n)]
        if missing:
            self.skip(what, f"no runs {', '.join(missing)} in {self.runs.root}")
        return not missing

    # Figs. 4, 6, 7: the P(first normal class) densities of every class.
    def densities(self, panels, name, title):
        drawable, missing = [], []
        for label, run, stage in panels:
            d = self.runs.dir(run)
            summary = json.load(open(os.path.join(d, "summary.json"))) if d else None
            if d and classes_of(d, summary, stage):
                drawable.append((label, d, summary, stage))
            else:
                missing.append(f"'{label}' ({run}: no histograms or scores of {stage})")
        if missing:  # a figure is drawn whole or not at all
            self.skip(name, "panels " + ", ".join(missing))
            return
        fig, axes = plt.subplots(1, len(drawable), figsize=(4.2 * len(drawable), 3.6), squeeze=False, sharey=True)
        for ax, (label, d, summary, stage) in zip(axes[0], drawable):
            normal = normal_classes(summary)
            for i, cls in enumerate(order(classes_of(d, summary, stage), normal)):
                edges, density = density_1d(d, summary, stage, cls)
                ax.stairs(density, edges, lw=1.4, color=COLOURS.get(cls, plt.cm.tab20(i % 20)),
                          label=cls + (" (normal)" if cls in normal else ""))
            ax.set_yscale("log")
            ax.set_xlabel(f"P({normal[0]})")
            ax.set_title(label, fontsize=10)
        axes[0][0].set_ylabel("density")
        axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(title)
        self.save(fig, name, title)

    # Fig. 5: ROC of the normal task, prior against AA.
    def roc(self, run, name, title):
        if not self.need(name, run):
            return
        d = self.runs.dir(run)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        summary = json.load(open(os.path.join(d, "summary.json")))
        drawn = 0
        for stage, style in (("prior", "--"), ("aa", "-")):
            path = os.path.join(d, "analysis", stage + ".json")
            if os.path.exists(path):
                roc = json.load(open(path))["roc"]
            elif "roc" in summary["stages"].get(stage, {}):
                roc = summary["stages"][stage]["roc"]  # 101 points, enough to draw
            else:
                continue
            drawn += 1
            ax.plot(roc["fpr"], roc["tpr"], style, label=f"{stage}: AUC {roc['auc']:.4f}")
        if not drawn:
            plt.close(fig)
            self.skip(name, f"{run} has no ROC (analysis/*.json or summary.json)")
            return
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.legend()
        ax.set_title(title, fontsize=10)
        self.save(fig, name, title)

    # Figs. 8-9: 2-D densities in (P(c0), P(c2)) for three normal classes.
    def densities_2d(self, run, name):
        if not self.need(name, run):
            return
        d = self.runs.dir(run)
        summary = json.load(open(os.path.join(d, "summary.json")))
        normal = normal_classes(summary)
        classes = order(classes_of(d, summary), normal)
        counts = {(stage, cls): counts_2d(d, summary, stage, cls) for stage in ("prior", "aa") for cls in classes}
        if not any(c is not None and c.sum() > 0 for c in counts.values()):
            self.skip(name, f"{run} has no 2-D histograms or scores")
            return
        fig, axes = plt.subplots(2, len(classes), figsize=(2.6 * len(classes), 5.2), squeeze=False)
        for row, stage in enumerate(("prior", "aa")):
            for col, cls in enumerate(classes):
                ax = axes[row][col]
                c = counts[(stage, cls)]
                if c is None or c.sum() == 0:
                    ax.axis("off")
                    continue
                # Row = P(c0) on x, column = P(c2) on y; empty cells left white on the log scale.
                ax.imshow(np.ma.masked_equal(c.T, 0), origin="lower", extent=(0, 1, 0, 1), aspect="auto",
                          cmap="viridis", norm=matplotlib.colors.LogNorm())
                ax.set_title(f"{cls}, {stage}", fontsize=9)
                ax.set_xlabel(f"P({normal[0]})", fontsize=8)
                if col == 0:
                    ax.set_ylabel(f"P({normal[2]})", fontsize=8)
        title = f"Three normal classes ({', '.join(normal)}): prior (top) and AA (bottom)"
        fig.suptitle(title)
        fig.tight_layout()
        self.save(fig, name, title)

    # Fig. 10: R against the window centre for the fixed widths, and below threshold.
    def window_curves(self, run, cls, name):
        if not self.need(name, run):
            return
        d = self.runs.dir(run)
        scanned = list(self.runs.summaries(run)[0]["stages"]["prior"].get("scan", {}))
        if cls not in scanned:
            if not scanned:
                self.skip(name, f"{run} has no anomaly scan")
                return
            cls = scanned[-1]
        paths = [(stage, os.path.join(d, "analysis", f"{stage}_{cls}_curves.csv")) for stage in ("prior", "aa")]
        if not all(os.path.exists(path) for _, path in paths):
            self.skip(name, f"{run} has no analysis/*_{cls}_curves.csv")
            return
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
        for ax, (stage, path) in zip(axes, paths):
            rows = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
            for width in sorted(set(rows["width"])):
                sel = (rows["width"] == width) & (rows["eligible"] == 1)
                x = rows["hi"][sel] if width == "below" else rows["centre"][sel]
                ax.plot(x, rows["R"][sel], label="below threshold (x = p)" if width == "below" else f"width {width}")
            ax.axhline(1, color="grey", lw=0.8)
            ax.set_xlabel("window centre")
            ax.set_title(f"{cls}, {stage}", fontsize=10)
        axes[0].set_ylabel("R = (N_An / N_An,tot) / sqrt(N_SM / N_SM,tot)")
        axes[1].legend(fontsize=8)
        self.save(fig, name, f"R against the window position for {cls}")

    # Fig. 11: sigma_min(L) from each seed's R_max, prior and AA, against the naive reach.
    def reach(self, name_run, cls, name, sigma_b):
        if not self.need(name, name_run):
            return
        lumi = np.logspace(1, math.log10(3000), 60)
        fig, ax = plt.subplots(figsize=(5, 4))
        for stage, colour in (("prior", "tab:blue"), ("aa", "tab:red")):
            r = [x for x in (r_max(s, stage, cls) for s in self.runs.summaries(name_run)) if x is not None]
            if not r:
                continue
            curves = np.array([5 * math.sqrt(sigma_b) / (x * np.sqrt(lumi)) for x in r])
            ax.plot(lumi, curves.mean(0), color=colour, label=f"{stage} (R_max {np.mean(r):.3f}, {len(r)} seeds)")
            if len(r) > 1:
                ax.fill_between(lumi, curves.min(0), curves.max(0), color=colour, alpha=0.2)
        ax.plot(lumi, 5 * np.sqrt(sigma_b / lumi), "k--", label="naive 5 sqrt(sigma_B / L)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("L (fb$^{-1}$)")
        ax.set_ylabel(f"sigma_min of {cls} (fb)")
        ax.legend(fontsize=8)
        self.save(fig, name, f"Reach for {cls}: sigma_min against luminosity")

    # Figs. 2-3: the average image of every class (jets: each image divided by its pixel sum first).
    def average_images(self, data_dir, names, name, per_image_sum=True, title="Average jet image"):
        import gzip
        paths = []
        for n in names:
            plain, packed = os.path.join(data_dir, n + ".npy"), os.path.join(data_dir, n + ".npy.gz")
            paths.append(plain if os.path.exists(plain) else packed)
        if not all(os.path.exists(p) for p in paths):
            self.skip(name, f"the class files are not in {data_dir}")
            return
        fig, axes = plt.subplots(1, len(names), figsize=(2.3 * len(names), 2.6))
        for ax, n, p in zip(axes, names, paths):
            x = np.load(gzip.open(p) if p.endswith(".gz") else p).astype(np.float64)
            if per_image_sum:
                x /= np.maximum(x.sum(axis=(1, 2), keepdims=True), 1e-12)
                ax.imshow(x.mean(0), norm=matplotlib.colors.LogNorm(vmin=1e-5, vmax=0.2), cmap="magma")
            else:
                ax.imshow(x.mean(0), cmap="gray")
            ax.set_title(f"{n} ({len(x):,})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(title + (" (each image divided by its pixel sum), log colour scale" if per_image_sum else ""))
        self.save(fig, name, title + " of every class")

    # The leave-one-out table: for each run, its unseen classes prior against AA.
    def unseen_table(self, key, title, configs):
        rows, data = [], {}
        for label, run, cls in configs:
            sums = [s for s in self.runs.summaries(run) if cls in s["stages"]["prior"].get("scan", {})]
            if not sums:
                continue
            entry = {"run": run, "class": cls, "seeds": len(sums)}
            for stage in ("prior", "aa"):
                st = [s["stages"][stage] for s in sums if stage in s["stages"]]
                if not st:
                    continue
                e = {"auc": mean_std([s["auc"] for s in st]),
                     "central_fraction": mean_std([s["central_fraction"][cls] for s in st]),
                     "R_max": mean_std([s["scan"][cls]["R_max"] for s in st]),
                     "R_max_error": mean_std([s["scan"][cls]["R_max_error"] for s in st]),
                     "sigma_min_3000": mean_std([s["scan"][cls]["reach"][-1]["sigma_min"] for s in st]),
                     "sigma_min_naive_3000": mean_std([s["scan"][cls]["reach"][-1]["sigma_min_naive"] for s in st])}
                for score in SCORES:
                    if all("anomaly_scores" in s for s in st):
                        e["auroc_" + score] = mean_std([s["anomaly_scores"][cls][score]["auroc"] for s in st])
                        e["fpr95_" + score] = mean_std([s["anomaly_scores"][cls][score]["fpr_at_95_tpr"] for s in st])
                entry[stage] = e
            data[label] = entry
            for stage in ("prior", "aa"):
                if stage not in entry:
                    continue
                e = entry[stage]
                cells = [label if stage == "prior" else "", stage, str(entry["seeds"]), fmt(*e["auc"], 4),
                         fmt(*e["central_fraction"]), fmt(*e["R_max"]), fmt(*e["sigma_min_3000"], 3, "g")]
                for score in SCORES:
                    cells.append(fmt(*e["auroc_" + score]) + " / " + fmt(*e["fpr95_" + score], 2)
                                 if "auroc_" + score in e else "-")
                rows.append(cells)
        if not rows:
            self.skipped.append(f"{key}: no runs")
            return
        head = ["unseen (run)", "stage", "seeds", "normal AUC", "central fraction", "R_max", "sigma_min at 3000 fb^-1 (fb)"]
        if all(r[-3] == r[-2] == r[-1] for r in rows):
            # Two classes: 0.5 - |P - 0.5|, 1 - max P and the entropy order events alike; one column says it.
            rows = [r[:-2] for r in rows]
            head.append("anomaly score AUROC / FPR at 95% (the three scores agree)")
        else:
            head += [f"{s}: AUROC / FPR at 95%" for s in SCORES]
        self.tables.append((title, head, rows))
        self.results[key] = data

    def r_max_points(self, cls, points, name):
        """(x, mean, spread) of R_max over the seeds of each (x, run, stage) with runs; None if fewer than two."""
        xs, ms, ss = [], [], []
        for x, run, stage in points:
            m, s, n = mean_std([r_max(summary, stage, cls) for summary in self.runs.summaries(run)])
            if m is not None:
                xs.append(x), ms.append(m), ss.append(s)
        if len(xs) < 2:
            self.skip(name, "fewer than two of its runs")
            return None
        return xs, ms, ss

    # Leave-one-out: R_max and sigma_min of each class when it is the unseen one, prior against AA.
    def leave_one_out(self, configs, name, title):
        labels, prior, aa = [], [], []
        for label, run, cls in configs:
            sums = self.runs.summaries(run)
            p = mean_std([r_max(s, "prior", cls) for s in sums])
            a = mean_std([r_max(s, "aa", cls) for s in sums])
            if p[0] is not None and a[0] is not None:
                labels.append(f"{label}\n({a[2]} seeds)"), prior.append(p), aa.append(a)
        if not labels:
            self.skip(name, "no runs")
            return
        x = np.arange(len(labels))
        fig, ax = plt.subplots(figsize=(1.3 * len(labels) + 2, 3.8))
        ax.bar(x - 0.2, [p[0] for p in prior], 0.4, yerr=[p[1] for p in prior], capsize=3, label="prior", color="tab:blue")
        ax.bar(x + 0.2, [a[0] for a in aa], 0.4, yerr=[a[1] for a in aa], capsize=3, label="AA (aware of the others)",
               color="tab:red")
        ax.axhline(1, color="grey", lw=0.8)
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("R_max of the unseen class")
        ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
        self.save(fig, name, title)

    # Saturation: R_max of one unseen class against the number of aware types.
    def saturation(self, curves, name):
        """curves: (unseen class, [(number of aware types, run)]); k = 0 is that run's prior stage."""
        drawn = []
        for cls, steps in curves:
            points = self.r_max_points(cls, [(k, run, "prior" if k == 0 else "aa") for k, run in steps],
                                       f"{name} ({cls})")
            if points is not None:
                drawn.append((cls, points))
                xs, ms, ss = points
                self.results["saturation_" + cls] = {"types": xs, "R_max_mean": ms, "R_max_std": ss}
        if not drawn:
            return
        fig, ax = plt.subplots(figsize=(4.8, 3.8))
        for i, (cls, (xs, ms, ss)) in enumerate(drawn):
            ax.errorbar(np.array(xs) + 0.04 * i, ms, yerr=ss, marker="o", capsize=3, label=f"unseen {cls}",
                        color=COLOURS.get(cls))
        ax.set_xlabel("number of aware anomaly types (0: prior)")
        ax.set_ylabel("R_max of the unseen class")
        ax.set_xticks(sorted({x for _, (xs, _, _) in drawn for x in xs}))
        ax.legend(fontsize=8)
        classes = ", ".join(cls for cls, _ in drawn)
        self.save(fig, name, f"Awareness saturation: R_max of {classes} against the number of aware types "
                             "(mean and spread over seeds)")

    # A setting (lambda, ratio) against R_max of the unseen class, prior as reference.
    def setting_scan(self, cls, label, points, name):
        found = self.r_max_points(cls, [(x, run, "aa") for x, run in points], name)
        if found is None:
            return
        xs, ms, ss = found
        prior = mean_std([r_max(s, "prior", cls) for s in self.runs.summaries(points[0][1])])
        fig, ax = plt.subplots(figsize=(4.5, 3.6))
        ax.errorbar(xs, ms, yerr=ss, marker="o", capsize=3, label="after AA")
        if prior[0] is not None:
            ax.axhline(prior[0], color="grey", ls="--", label="prior")
        ax.set_xlabel(label)
        ax.set_ylabel(f"R_max of unseen {cls}")
        ax.legend(fontsize=8)
        self.save(fig, name, f"R_max of {cls} against {label}")
        self.results[name[:-4]] = {"x": xs, "R_max_mean": ms, "R_max_std": ss}

    # The look-elsewhere effect (`aware scan --toys`, scripts/reproduce.sh lee): sigma_min with and without it.
    def lee_table(self, run):
        sums = [s for s in self.runs.summaries(run) if "lee" in next(iter(s["stages"]["aa"]["scan"].values()), {})]
        if not sums:
            self.skipped.append(f"lee: no runs {run} with toys (scripts/reproduce.sh lee)")
            return
        classes = order(list(sums[0]["stages"]["aa"]["scan"]), normal_classes(sums[0]))
        columns = [("Eq. 8 prior", "prior", "eq8_sigma_min"), ("Eq. 8 AA", "aa", "eq8_sigma_min"),
                   ("prior scanned", "prior", "scanned_sigma_min"), ("AA scanned", "aa", "scanned_sigma_min"),
                   ("AA fixed", "aa", "fixed_sigma_min")]
        data = {}
        lumi = sums[0]["stages"]["aa"]["scan"][classes[0]]["lee"]["luminosity"]
        for z in ("3", "5"):
            rows = []
            for cls in classes:
                cells = [cls]
                for label, stage, key in columns:
                    values, extrapolated = [], False
                    for s in sums:
                        x = s["stages"][stage]["scan"][cls]["lee"].get(key, {}).get(z)
                        if isinstance(x, dict):  # scanned and fixed: {"value", and why it is what it is}
                            extrapolated = extrapolated or "extrapolated" in x
                            x = x.get("value")
                        values.append(x)
                    m = mean_std(values)
                    data.setdefault(cls, {}).setdefault(z, {})[label] = {"mean_std_n": m, "extrapolated": extrapolated}
                    cells.append(fmt(*m, 2) + ("*" if extrapolated and m[0] is not None else ""))
                rows.append(cells)
            self.tables.append((f"The reach with the look-elsewhere effect: sigma_min (fb) for a median global {z} "
                                f"sigma at {lumi:.0f} fb^-1 ({run}, {len(sums)} seeds; * from the toys' tail fit)",
                                ["class"] + [c[0] for c in columns], rows))
        tf = [s["stages"][st]["scan"][c]["lee"]["scanned_trials_factor_3sigma"]
              for s in sums for st in ("prior", "aa") for c in classes]
        tf = [x for x in tf if x is not None]  # None: too few toys to measure it
        data["trials_factor_3sigma"] = [min(tf), max(tf)] if tf else None
        self.results["lee"] = data

    def lee_file(self, run, seed, stage, cls):
        """A class's full look-elsewhere report (`aware run`: analysis/; the records: beside summary.json)."""
        d = self.runs.dir(run, seed)
        for path in (os.path.join(d, "analysis", f"{stage}_{cls}_lee.json"), os.path.join(d, f"{stage}_{cls}_lee.json")):
            if os.path.exists(path):
                return json.load(open(path))
        return None

    # The toys' distribution of the largest local statistic, with the thresholds (and an observed value).
    def lee_statistic(self, run, cls, name):
        if not self.need(name, run):
            return
        seed = self.runs.seeds(run)[0]
        reports = {st: self.lee_file(run, seed, st, cls) for st in ("prior", "aa")}
        if not all(reports.values()):
            self.skip(name, f"no {cls}_lee.json in {self.runs.dir(run, seed)}")
            return
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        panels = [(axes[0], "scanned", [("prior", "tab:blue"), ("aa", "tab:red")]),
                  (axes[1], "fixed", [("prior", "tab:blue"), ("aa", "tab:red")])]
        for ax, kind, stages in panels:
            for stage, colour in stages:
                part = reports[stage].get(kind, {})
                if "background" not in part:  # no fixed window, or one without background (its note says)
                    continue
                h = part["background"]["t_histogram"]
                edges, counts = np.array(h["edges"]), np.array(h["counts"], dtype=float)
                ax.stairs(counts / counts.sum(), edges, color=colour,
                          label=f"{stage}: {part['background']['toys']} background-only toys")
                ax.axvline(part["background"]["t_quantiles"]["0.99865"], color=colour, ls=":",
                           label=f"{stage}: global 3 sigma")
                if "observed" in part:
                    ax.axvline(part["observed"]["t"], color=colour, lw=2, label=f"{stage}: observed")
            for z, ls in ((3, "--"), (5, "-.")):  # t of a local z sigma: -ln of its one-sided p-value
                ax.axvline(-math.log(0.5 * math.erfc(z / math.sqrt(2))), color="grey", ls=ls, label=f"local {z} sigma")
            ax.set_yscale("log")
            ax.set_xlabel("t = -ln p_local of the best window" if kind == "scanned" else
                          f"t = -ln p_local of the window {reports['aa'].get('fixed', {}).get('window', '(none)')}")
            windows = reports["aa"].get(kind, {}).get("windows", 0)
            ax.set_title(f"{'every window scanned' if kind == 'scanned' else 'window fixed in advance'} "
                         f"({windows} window{'s' if windows != 1 else ''})", fontsize=9)
            ax.legend(fontsize=7)
        axes[0].set_ylabel("fraction of toys")
        fig.suptitle(f"The look-elsewhere effect on the {cls} scan at {reports['aa']['luminosity']:.0f} fb$^{{-1}}$ "
                     f"(seed {seed})")
        self.save(fig, name, f"The toys' largest local statistic for the {cls} scan, prior and AA, scanned and fixed")

    # Signal injection: the global significance and the discovery probability against sigma_S.
    def lee_injection(self, run, cls, name):
        if not self.need(name, run):
            return
        series = [("prior scanned", "prior", "scanned", "tab:blue"), ("AA scanned", "aa", "scanned", "tab:red"),
                  ("prior fixed", "prior", "fixed", "tab:cyan"), ("AA fixed", "aa", "fixed", "tab:orange")]
        z_of = lambda points, key: [np.nan if p[key] is None else p[key] for p in points]  # None: p = 1, Z = -inf
        fig, (ax_z, ax_p) = plt.subplots(1, 2, figsize=(10, 3.8))
        drawn = 0
        for seed in self.runs.seeds(run):
            for label, stage, kind, colour in series:
                report = self.lee_file(run, seed, stage, cls)
                if report is None or "injection" not in report.get(kind, {}):
                    continue
                points = report[kind]["injection"]
                x = [p["signal_fb"] for p in points]
                first = seed == self.runs.seeds(run)[0]
                ax_z.plot(x, z_of(points, "median_global_z"), color=colour, marker=".", lw=1,
                          label=label if first else None)
                if first:
                    ax_z.fill_between(x, z_of(points, "global_z_16"), z_of(points, "global_z_84"),
                                      color=colour, alpha=0.15)
                ax_p.plot(x, [p["p_global_z_3"] for p in points], color=colour, marker=".", lw=1,
                          label=label + ", global Z >= 3" if first else None)
                ax_p.plot(x, [p["p_global_z_5"] for p in points], color=colour, ls="--", lw=1,
                          label=label + ", global Z >= 5" if first else None)
                drawn += 1
        if not drawn:
            plt.close(fig)
            self.skip(name, f"no {cls}_lee.json in the runs {run}")
            return
        for z in (3, 5):
            ax_z.axhline(z, color="grey", ls=":")
        ax_z.set_xlabel(f"injected sigma_S of {cls} (fb)")
        ax_z.set_ylabel("median global Z (band: 16-84% of the first seed)")
        ax_p.set_xlabel(f"injected sigma_S of {cls} (fb)")
        for ax in (ax_z, ax_p):
            ax.set_xscale("log")
        ax_z.set_ylim(-1.5, 8)  # the range between no signal and a discovery: 5 sigma is what sigma_min asks for
        ax_p.set_ylabel("discovery probability")
        ax_z.legend(fontsize=7)
        ax_p.legend(fontsize=6)
        fig.suptitle(f"{cls} injected into background-only toys ({len(self.runs.seeds(run))} seeds, a line each)")
        self.save(fig, name, f"The global significance of injected {cls} against its cross-section, prior and AA, "
                             "scanned and fixed")

    # Three normal classes: the 1-D scan of P(c0) against rectangles in (P(c0), P(c2)), per anomaly class.
    def scan_1d_2d_table(self, run, title):
        sums = self.runs.summaries(run)
        if not sums or "scan_2d" not in sums[0]["stages"]["prior"]:
            self.skipped.append(f"{title}: no runs {run} with a 2-D scan")
            return
        rows = []
        for cls in sums[0]["stages"]["prior"]["scan_2d"]:
            cells = [cls]
            for stage in ("prior", "aa"):
                st = [s["stages"][stage] for s in sums if stage in s["stages"]]
                cells.append(fmt(*mean_std([x["scan"][cls]["R_max"] for x in st])))
                cells.append(fmt(*mean_std([x["scan_2d"][cls]["R_max"] for x in st])))
            rows.append(cells)
        self.tables.append((title, ["anomaly", "prior R_max 1-D", "prior R_max 2-D", "AA R_max 1-D", "AA R_max 2-D"], rows))

    def provenance(self):
        """(device with its precision, machine) -> the run names computed there, from each summary.json."""
        where = {}
        for name in sorted(self.runs.by_name):
            for summary in self.runs.summaries(name):
                machine = summary.get("machine", {})
                cpu = machine.get("cpu", "not recorded") + (f" ({machine['simd']})" if "simd" in machine else "")
                device = summary.get("device", "cpu")
                device += "" if "(" in device else " (fp32)"  # the CPU names only its non-default modes
                names = where.setdefault((device, cpu), [])
                if name not in names:
                    names.append(name)
        return sorted(where.items())

    def write(self):
        with open(os.path.join(self.out, "results.json.tmp"), "w") as f:
            json.dump(self.results, f, indent=1)
        os.replace(os.path.join(self.out, "results.json.tmp"), os.path.join(self.out, "results.json"))
        lines = ["<!-- written by aware report; every number from the runs in " + self.runs.root + " -->", ""]
        for title, head, rows in self.tables:
            lines += [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
        lines += ["### Where each number was computed", "",
                  "| runs | device (precision) | machine |", "| --- | --- | --- |"]
        lines += [f"| {', '.join(names)} | {device} | {machine} |" for (device, machine), names in self.provenance()]
        lines.append("")
        lines += ["### Figures", ""] + [f"- `{n}`: {c}" for n, c in self.figures]
        if self.skipped:
            lines += ["", "### Not drawn", ""] + [f"- {s}" for s in self.skipped]
        with open(os.path.join(self.out, "tables.md.tmp"), "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(os.path.join(self.out, "tables.md.tmp"), os.path.join(self.out, "tables.md"))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="directories of NAME_sSEED run outputs (scripts/reproduce.sh: "
                        "out/repro; their records: docs/runs/repro); a later one's NAME_sSEED replaces an earlier one's")
    parser.add_argument("-o", "--out", default="report", help="output directory (PNG, tables.md, results.json)")
    parser.add_argument("--jets", default=os.path.join(here, "..", "..", "shared", "data", "jets"),
                        help="directory of the jet class files, for the average images")
    parser.add_argument("--fashion", default=os.path.join(here, "..", "data", "fashion"),
                        help="directory of the Fashion-MNIST class files (scripts/make_fashion.py)")
    args = parser.parse_args()
    for root in args.runs:
        if not os.path.isdir(root):
            sys.exit(f"aware report: {root}: no such directory")
    runs = Runs(args.runs)
    if not runs.by_name:
        sys.exit(f"aware report: {', '.join(args.runs)}: no runs (directories NAME_sSEED with a summary.json)")
    rep = Report(runs, args.out)

    rep.average_images(args.jets, ["top", "qcd"] + JET_ANOMALIES, "fig02_average_jets.png")
    rep.densities([("prior (Top vs QCD)", "paper", "prior")], "fig04_prior_densities.png",
                  "P(Top) of every class after the prior run")
    rep.roc("paper", "fig05_roc.png", "Top vs QCD: prior and AA (aware of w, r2, r3, r4)")
    rep.densities([("prior", "aware_w", "prior"), ("aware of {w}", "aware_w", "aa"),
                   ("aware of {w, r4}", "aware_w_r4", "aa"), ("aware of {w, r3, r4}", "aware_w_r3_r4", "aa")],
                  "fig06_07_aa_densities.png", "P(Top) after AA with awareness of growing sets (eft unseen)")
    rep.densities([("prior", "paper", "prior"), ("AA, aware of w, r2, r3, r4", "paper", "aa")],
                  "fig_eft_unseen_densities.png", "P(Top) before and after AA, eft unseen")
    rep.densities_2d("three", "fig08_09_three_classes.png")
    rep.window_curves("paper", "eft", "fig10_window_curves.png")
    sigma_b = 73.4 + 67600.0
    rep.reach("paper", "eft", "fig11_reach.png", sigma_b)
    rep.densities([(f"lambda {l}", run, "aa") for l, run in (("0.3", "lambda_0.3"), ("0.5", "paper"),
                                                                ("0.8", "lambda_0.8"))],
                  "fig12_lambda_densities.png", "P(Top) after AA for lambda 0.3, 0.5, 0.8")
    rep.setting_scan("eft", "lambda", [(0.3, "lambda_0.3"), (0.5, "paper"), (0.8, "lambda_0.8")], "lambda_scan.png")
    rep.setting_scan("eft", "anomalies per normal event", [(0.5, "ratio_0.5"), (1.0, "paper"), (2.0, "ratio_2")],
                     "ratio_scan.png")
    # eft and r2 are unseen in every set: aware of {w}, {w, r4}, {w, r3, r4}, then the four others.
    rep.saturation([(cls, [(0, "aware_w"), (1, "aware_w"), (2, "aware_w_r4"), (3, "aware_w_r3_r4"),
                           (4, "paper" if cls == "eft" else "loo_" + cls)]) for cls in ("eft", "r2")],
                   "saturation.png")
    loo = [(cls, "paper" if cls == "eft" else "loo_" + cls, cls) for cls in JET_ANOMALIES]
    rep.leave_one_out(loo, "leave_one_out.png", "Jets: each anomaly unseen in turn, AA aware of the other four")
    rep.unseen_table("leave_one_out", "Jets: leave-one-out awareness (aware of the four other anomalies)", loo)
    rep.unseen_table("lambda", "Jets: eft unseen, lambda", [(f"eft, lambda {l}", run, "eft") for l, run in
                                                            (("0.3", "lambda_0.3"), ("0.5", "paper"), ("0.8", "lambda_0.8"))])
    rep.unseen_table("ratio", "Jets: eft unseen, anomalies per normal event",
                     [(f"eft, ratio {r}", run, "eft") for r, run in (("0.5", "ratio_0.5"), ("1", "paper"), ("2", "ratio_2"))])
    for cls, last in (("eft", ("w, r2, r3, r4", "paper")), ("r2", ("w, eft, r3, r4", "loo_r2"))):
        rep.unseen_table("saturation_" + cls, f"Jets: {cls} unseen, aware of growing sets",
                         [(f"{cls}, aware of {a}", run, cls) for a, run in
                          (("w", "aware_w"), ("w, r4", "aware_w_r4"), ("w, r3, r4", "aware_w_r3_r4"), last)])
    rep.unseen_table("epochs", "Jets: eft unseen, 10 + 10 against 20 + 20 epochs",
                     [("eft, 10 + 10 epochs", "epochs10", "eft"), ("eft, 20 + 20 epochs", "epochs20", "eft")])
    rep.unseen_table("three_classes", "Jets: three normal classes (top, qcd, w), eft unseen", [("eft", "three", "eft")])
    rep.scan_1d_2d_table("three", "Jets, three normal classes: the window scan in P(top) against rectangles in (P(top), P(w))")

    rep.lee_table("lee")
    lee_unseen = (unseen_classes(runs.summaries("lee")[0]) if runs.dir("lee") else []) or ["eft"]
    rep.lee_statistic("lee", lee_unseen[0], "lee_statistic.png")
    rep.lee_injection("lee", lee_unseen[0], "lee_injection.png")

    # Appendix B: kinematics.
    rep.densities([("prior", "kin", "prior"), ("AA, aware of zh, wh", "kin", "aa")], "appB_densities.png",
                  "Kinematics (Appendix B): P(ggf) before and after AA")
    rep.roc("kin", "appB_roc.png", "ggf vs vbf: prior and AA")
    rep.leave_one_out([("graviton", "kin", "graviton"), ("zh", "kin_loo_zh", "zh"), ("wh", "kin_loo_wh", "wh")],
                      "appB_leave_one_out.png", "Kinematics: each anomaly unseen in turn")
    rep.unseen_table("kinematics_leave_one_out", "Kinematics (Appendix B): leave-one-out awareness",
                     [("graviton", "kin", "graviton"), ("zh", "kin_loo_zh", "zh"), ("wh", "kin_loo_wh", "wh")])
    # Appendix C: Fashion-MNIST.
    rep.densities([("prior", "fashion", "prior"), ("AA", "fashion", "aa")], "appC_densities.png",
                  "Fashion-MNIST (Appendix C): P(T-shirt) before and after AA")
    fashion_unseen = ["coat", "shirt", "sneaker", "boot", "inverted"]
    rep.average_images(args.fashion, ["tshirt", "trouser", "pullover", "dress", "sandal", "bag"] + fashion_unseen,
                       "appC_average_images.png", per_image_sum=False, title="Fashion-MNIST: average image")
    rep.unseen_table("fashion", "Fashion-MNIST (Appendix C): aware of pullover, dress, sandal, bag",
                     [(c, "fashion", c) for c in fashion_unseen])
    rep.write()
    print(f"aware report: {len(rep.figures)} figures and {len(rep.tables)} tables in {args.out} "
          f"(tables.md, results.json){'; not drawn: ' + str(len(rep.skipped)) if rep.skipped else ''}")


if __name__ == "__main__":
    main()
