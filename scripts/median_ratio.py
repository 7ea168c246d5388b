#!/usr/bin/env python3
"""Prints two sets of runs (aware's, the anchor's) with their medians and the ratio of the medians:
    scripts/median_ratio.py UNIT "AWARE RUNS" "ANCHOR RUNS"   (runs separated by spaces)
for scripts/compare_throughput.sh and scripts/compare_scoring.sh."""
import statistics, sys

if len(sys.argv) != 4:
    sys.exit(__doc__)
unit, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
print(f"aware  {unit}:", " ".join(f"{x:.0f}" for x in a), f"(median {statistics.median(a):.0f})")
print(f"anchor {unit}:", " ".join(f"{x:.0f}" for x in b), f"(median {statistics.median(b):.0f})")
print(f"ratio of medians aware/anchor: {statistics.median(a) / statistics.median(b):.2f}")
