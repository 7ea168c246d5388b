#!/usr/bin/env python3
"""The side-by-side table of docs/results.md: aware runs (one output directory per seed, from
`aware run`) beside the PyTorch anchor's result files (torch_reference.py --out, one per seed).

  python3 scripts/compare_anchor.py --aware out/s1 out/s2 out/s3 \
      --anchor ../shared/anchors/result-seed{1,2,3}.json

For a like-for-like window scan, each aware run's eft scores are also scanned with the anchor's rule
(200 bins, at least 10 background events, no minimum width) by `aware scan`, into RUN/anchor_rule_STAGE/.
Standard library only.
"""
import argparse, json, math, pathlib, statistics, subprocess

CLASSES = ["top", "qcd", "w", "r2", "r3", "r4", "eft"]


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} +- {statistics.stdev(values):.2g}"


def anchor_rule_scan(aware, run, stage):
    out = run / f"anchor_rule_{stage}"
    s = run / "scores" / stage
    subprocess.run([aware, "scan", "--anomaly", str(s / "eft.npy"), "--background", f"{s / 'top.npy'}:73.4",
                    "--background", f"{s / 'qcd.npy'}:67600", "--bins", "200", "--min-background", "10",
                    "--min-width", "0", "--luminosities", "3000", "-o", str(out)], check=True, capture_output=True)
    r = json.loads((out / "eft_scan.json").read_text())
    return r["R_max"], r["reach"][0]["sigma_min"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aware", nargs="+", type=pathlib.Path, required=True, help="aware run directories")
    ap.add_argument("--anchor", nargs="+", type=pathlib.Path, required=True, help="anchor result JSON files")
    ap.add_argument("--binary", default="build/aware")
    a = ap.parse_args()
    runs = [json.loads((r / "summary.json").read_text())["stages"] for r in a.aware]
    anchors = [json.loads(p.read_text()) for p in a.anchor]
    rows = []

    def row(label, ours, theirs):
        rows.append(f"| {label} | {mean_sd(theirs('prior'))} | {mean_sd(ours('prior'))} | "
                    f"{mean_sd(theirs('aa'))} | {mean_sd(ours('aa'))} |")

    row("AUC top vs qcd", lambda st: [r[st]["auc"] for r in runs], lambda st: [x[st]["auc"] for x in anchors])
    for c in CLASSES:
        row(f"fraction 0.3 < P(top) < 0.7: {c}", lambda st: [r[st]["central_fraction"][c] for r in runs],
            lambda st: [x[st]["central_fraction"][c] for x in anchors])
    scans = {st: [anchor_rule_scan(a.binary, d, st) for d in a.aware] for st in ("prior", "aa")}
    row("eft R_max, anchor's rule (200 bins, >= 10 bkg)", lambda st: [s[0] for s in scans[st]],
        lambda st: [x[st]["scan"]["eft"]["R_max"] for x in anchors])
    row("eft sigma_min at 3000 fb^-1, anchor's rule (fb)", lambda st: [s[1] for s in scans[st]],
        lambda st: [x[st]["scan"]["eft"]["sigma_min_3000"] for x in anchors])
    row("eft R_max, aware's rule (1000 bins, >= 100 bkg, width >= 0.02)",
        lambda st: [r[st]["scan"]["eft"]["R_max"] for r in runs], lambda st: [])
    row("eft R_max statistical error, aware's rule", lambda st: [r[st]["scan"]["eft"]["R_max_error"] for r in runs],
        lambda st: [])
    row("eft sigma_min at 3000 fb^-1, aware's rule (fb)",
        lambda st: [r[st]["scan"]["eft"]["reach"][-1]["sigma_min"] for r in runs], lambda st: [])
    row("training time (s)", lambda st: [r[st]["train_seconds"] for r in runs],
        lambda st: [x[st]["train_seconds"] for x in anchors])
    print(f"{len(runs)} aware run(s), {len(anchors)} anchor run(s); mean +- standard deviation over seeds\n")
    print("| | anchor prior | aware prior | anchor AA | aware AA |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    naive = 5 * math.sqrt((67600 + 73.4) / 3000)
    print(f"\nnaive sigma_min at 3000 fb^-1: {naive:.1f} fb")


if __name__ == "__main__":
    main()
