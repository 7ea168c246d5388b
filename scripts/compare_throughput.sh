#!/usr/bin/env bash
# Training throughput of aware against the PyTorch anchor on this machine, in turn (aware, anchor,
# aware, anchor, ...) so that drift of the machine's speed hits both alike. Each figure is the
# program's own images/s (a step trains `batch` normal and `batch` anomalous images, both counted).
#   scripts/compare_throughput.sh [RUNS=3] [THREADS=2] [BATCH=100] [compile]
# `compile` runs the anchor's step through torch.compile (its --compile) instead of eagerly.
# AWARE_THROUGHPUT: another build of aware_throughput (an AVX2 build, say); the anchor inherits the
# environment (ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 hold PyTorch to AVX2 likewise).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} threads=${2:-2} batch=${3:-100}
anchor_args=(); [ "${4:-}" = compile ] && anchor_args=(--compile)
aware=() anchor=()
for _ in $(seq "$runs"); do
  aware+=("$("${AWARE_THROUGHPUT:-./build/aware_throughput}" --threads "$threads" --batch "$batch" --seconds 10 |
             python3 -c 'import json,sys; print(json.load(sys.stdin)["train_images_per_s"])')")
  anchor+=("$(scripts/anchor.sh --bench --device cpu --threads "$threads" --batch "$batch" "${anchor_args[@]}" |
              python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["images_per_s"])')")
done
python3 scripts/median_ratio.py images/s "${aware[*]}" "${anchor[*]}"
