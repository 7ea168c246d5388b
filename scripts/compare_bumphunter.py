#!/usr/bin/env python3
"""aware's look-elsewhere scan against pyBumpHunter's, on the same histograms.

Reads OUT/NAME_lee.json written by `aware scan --toys N --observed FILE` (its expected and observed
events per bin, the scan's bins and narrowest window), runs pyBumpHunter's BumpHunter1D on the same
histograms (excess mode, every window of min_width_bins to bins bins, every position, N toys), and
prints and writes (--json) both: the best window, its local p-value and t = -ln p, which must agree
exactly up to floating point; and the global p-values, which agree within the toys' statistical errors
(the two draw different toys). aware's eligibility rule must be off for a one-to-one scan:
`--min-background 0` (pyBumpHunter has no such rule).

Set up: scripts/compare_bumphunter.sh makes the virtual environment with pyBumpHunter 0.5.1 and runs
the whole comparison.
"""
import argparse
import json
import math
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lee_json", help="OUT/NAME_lee.json of aware scan --toys N --observed FILE --min-background 0")
    ap.add_argument("--toys", type=int, default=None, help="pyBumpHunter's toys (default: aware's number)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the comparison here")
    args = ap.parse_args()

    import pyBumpHunter as BH  # noqa: import here so --help works without it

    with open(args.lee_json) as f:
        lee = json.load(f)
    if "observed_per_bin" not in lee:
        sys.exit(f"{args.lee_json}: no observed events (run aware scan with --observed)")
    if lee["min_background_events"] != 0:
        sys.exit(f"{args.lee_json}: written with --min-background {lee['min_background_events']}; "
                 "pyBumpHunter scans every window: rerun aware with --min-background 0")
    bins = lee["bins"]
    expected = np.asarray(lee["expected_per_bin"], dtype=float)
    observed = np.asarray(lee["observed_per_bin"], dtype=float)
    ours = lee["scanned"]["observed"]
    toys = args.toys or lee["scanned"]["background"]["toys"]

    hunter = BH.BumpHunter1D(rang=[0, 1], bins=np.linspace(0, 1, bins + 1), mode="excess",
                             width_min=lee["min_width_bins"], width_max=bins, width_step=1, scan_step=1,
                             npe=toys, nworker=1, seed=args.seed)
    hunter.bump_scan(observed, expected, is_hist=True, do_pseudo=True)
    # Index 0 holds the observed histogram's scan, 1.. the toys'.
    loc, width = int(hunter.min_loc_ar[0]), int(hunter.min_width_ar[0])
    p_local = float(hunter.min_Pval_ar[0])
    t_bh = -math.log(p_local) if p_local > 0 else math.inf
    p_global = float(hunter.global_Pval)
    p_global_err = math.sqrt(max(p_global * (1 - p_global), 0) / toys)

    ours_lo, ours_hi = ours["window_bins"]
    combined = math.hypot(p_global_err, ours["global_p_error"])
    result = {
        "bins": bins, "toys_aware": lee["scanned"]["background"]["toys"], "toys_pybumphunter": toys,
        "aware": {"window_bins": [ours_lo, ours_hi], "local_p": ours["local_p"], "t": ours["t"],
                  "global_p": ours["global_p"], "global_p_error": ours["global_p_error"]},
        "pybumphunter": {"window_bins": [loc, loc + width], "local_p": p_local, "t": t_bh,
                         "global_p": p_global, "global_p_error": p_global_err},
        "same_window": [ours_lo, ours_hi] == [loc, loc + width],
        "t_relative_difference": abs(ours["t"] - t_bh) / max(t_bh, 1e-300),
        "global_p_difference_in_errors": abs(ours["global_p"] - p_global) / combined if combined > 0 else 0.0,
    }
    print(f"{'':24s}{'aware':>22s}{'pyBumpHunter':>22s}")
    print(f"{'best window (bins)':24s}{str([ours_lo, ours_hi]):>22s}{str([loc, loc + width]):>22s}")
    print(f"{'local p':24s}{ours['local_p']:>22.6e}{p_local:>22.6e}")
    print(f"{'t = -ln p':24s}{ours['t']:>22.9f}{t_bh:>22.9f}")
    print(f"{'global p':24s}{ours['global_p']:>15.4f} +- {ours['global_p_error']:.4f}"
          f"{p_global:>15.4f} +- {p_global_err:.4f}")
    print(f"same window: {result['same_window']}; t differs by {result['t_relative_difference']:.2e} relative; "
          f"global p differ by {result['global_p_difference_in_errors']:.2f} combined errors")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    ok = result["same_window"] and result["t_relative_difference"] < 1e-9 and result["global_p_difference_in_errors"] < 3
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
