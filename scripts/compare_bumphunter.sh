#!/usr/bin/env bash
# aware's look-elsewhere scan against pyBumpHunter 0.5.1 (PyPI) on the same histograms: the background
# expectation of the demo's prior scores (tests/data/demo_prior_scores: top and qcd at their
# cross-sections) and an observed sample drawn from it with eft events added, at several bin counts,
# luminosities and seeds. Each case must give the same best window and local p-value, and global
# p-values within 3 combined errors of the toys (scripts/compare_bumphunter.py). The virtual environment
# (.venv-bumphunter) is made on first use. Writes out/bumphunter/summary.json; exit 1 if a case disagrees.
# Usage: scripts/compare_bumphunter.sh [TOYS]   (2000 by default)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
toys=${1:-2000}
venv="${AWARE_BUMPHUNTER_VENV:-$here/.venv-bumphunter}"
if [ ! -x "$venv/bin/python3" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyBumpHunter==0.5.1
fi
aware=${AWARE_BINARY:-build/aware}
[ -n "${AWARE_BINARY:-}" ] || scripts/build.sh
scores=tests/data/demo_prior_scores
out=out/bumphunter
mkdir -p "$out"
status=0
cases=()
for spec in "50 0.05 120 1" "100 0.05 120 2" "100 0.2 300 3" "40 1.0 0 4"; do
  read -r bins lumi signal seed <<< "$spec"
  name="b${bins}_L${lumi}_s${signal}_seed${seed}"
  # The observed sample: Poisson numbers of qcd and top events (resampled from their scores) at this
  # luminosity, plus `signal` eft events.
  "$venv/bin/python3" - "$scores" "$lumi" "$signal" "$seed" "$out/$name.npy" <<'PY'
import sys, numpy as np
scores, lumi, signal, seed, path = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = np.random.default_rng(seed)
parts = []
for name, sigma in (("qcd", 67600.0), ("top", 73.4)):
    s = np.load(f"{scores}/{name}.npy")
    parts.append(s[rng.integers(0, len(s), rng.poisson(sigma * lumi))])
e = np.load(f"{scores}/eft.npy")
parts.append(e[rng.integers(0, len(e), signal)])
np.save(path, np.concatenate(parts).astype(np.float32))
PY
  "$aware" scan --anomaly "$scores/eft.npy" --background "$scores/top.npy:73.4" --background "$scores/qcd.npy:67600" \
    --min-background 0 --bins "$bins" --toys "$toys" --injected-toys 10 --inject 1000 --toys-luminosity "$lumi" \
    --toys-seed "$seed" --observed "$out/$name.npy" --device cpu -o "$out/$name" > "$out/$name.log"
  echo "== $name"
  "$venv/bin/python3" scripts/compare_bumphunter.py "$out/$name/eft_lee.json" --seed "$seed" --json "$out/$name.json" \
    | grep -v "^Generating\|^SCAN\|values of width\|^Global p-value\|^Significance" || status=1
  cases+=("$out/$name.json")
done
python3 -c 'import json, sys; json.dump({p: json.load(open(p)) for p in sys.argv[2:]}, open(sys.argv[1], "w"), indent=1)' \
  "$out/summary.json" "${cases[@]}"
exit $status
