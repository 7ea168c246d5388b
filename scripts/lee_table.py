#!/usr/bin/env python3
"""The reach with the look-elsewhere effect, from the records of `scripts/reproduce.sh lee`.

For each anomaly class, sigma_min (fb) at 3000 fb^-1 for a median global 3 and 5 sigma: the prior run
scanned, the AA run scanned, the AA run with the window 0.3 < P < 0.7 fixed in advance, beside Eq. 8's
(no look-elsewhere effect) for the prior and the AA run; mean +- standard deviation over the seeds, as a
markdown table. A value from the toys' tail fit (beyond the global Z they measure) is marked *.
Usage: scripts/lee_table.py [RECORDS_DIR]   (default docs/runs/repro; reads lee_s*/summary.json)
"""
import glob
import json
import statistics
import sys


def cell(values, marked):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} +- {sd:.2f}{'*' if marked else ''}"


def main():
    records = sys.argv[1] if len(sys.argv) > 1 else "docs/runs/repro"
    runs = [json.load(open(p)) for p in sorted(glob.glob(f"{records}/lee_s*/summary.json"))]
    if not runs:
        sys.exit(f"{records}: no lee_s*/summary.json (run scripts/reproduce.sh lee)")
    classes = list(runs[0]["stages"]["aa"]["scan"].keys())
    print(f"{len(runs)} seeds; sigma_min in fb at {runs[0]['stages']['aa']['scan'][classes[0]]['lee']['luminosity']:.0f} fb^-1\n")
    for z in ("3", "5"):
        print(f"| class | Eq. 8 prior | Eq. 8 AA | prior scanned | AA scanned | AA fixed 0.3-0.7 |  ({z} sigma)")
        print("| --- | --- | --- | --- | --- | --- |")
        for c in classes:
            def get(stage, key):
                vals, marked = [], False
                for r in runs:
                    lee = r["stages"][stage]["scan"][c]["lee"]
                    x = lee[key][z]
                    if isinstance(x, dict):
                        marked = marked or "extrapolated" in x
                        x = x.get("value")
                    vals.append(x)
                return vals, marked
            cols = [get("prior", "eq8_sigma_min"), get("aa", "eq8_sigma_min"), get("prior", "scanned_sigma_min"),
                    get("aa", "scanned_sigma_min"), get("aa", "fixed_sigma_min")]
            print(f"| {c} | " + " | ".join(cell(v, m) for v, m in cols) + " |")
        print()
    tf = [r["stages"][s]["scan"][classes[0]]["lee"]["scanned_trials_factor_3sigma"] for r in runs for s in ("prior", "aa")]
    print(f"trials factor of the scan at a local 3 sigma: {min(tf):.0f} to {max(tf):.0f}")


if __name__ == "__main__":
    main()
