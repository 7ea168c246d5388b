#!/usr/bin/env bash
# Scoring throughput (forward pass + softmax) of aware against PyTorch's forward pass on this machine,
# in turn (aware, anchor, aware, anchor, ...), both at batches of 2 x BATCH events from memory:
# aware_throughput's score_images_per_s against scripts/anchor_score.py --batch (inference mode).
#   scripts/compare_scoring.sh [RUNS=5] [THREADS=2] [BATCH=100] [compile]
# `compile` runs the anchor's network through torch.compile.
# AWARE_THROUGHPUT: another build of aware_throughput; the anchor inherits the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5} threads=${2:-2} batch=${3:-100}
anchor_args=(); [ "${4:-}" = compile ] && anchor_args=(--compile)
aware=() anchor=()
for _ in $(seq "$runs"); do
  aware+=("$("${AWARE_THROUGHPUT:-./build/aware_throughput}" --threads "$threads" --batch "$batch" --seconds 6 |
             python3 -c 'import json,sys; print(json.load(sys.stdin)["score_images_per_s"])')")
  anchor+=("$(.venv-anchor/bin/python3 scripts/anchor_score.py --events 30000 --threads "$threads" \
                --batch "$((2 * batch))" "${anchor_args[@]}" 2>/dev/null |
              python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["events_per_s"])')")
done
python3 scripts/median_ratio.py events/s "${aware[*]}" "${anchor[*]}"
