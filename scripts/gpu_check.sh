#!/usr/bin/env bash
# Everything a lent GPU session checks and measures, in one call of the `device` tool (30 minutes of
# device time a session: this takes about 12). Here, first: scripts/device_bundle.sh, and
#   mkdir -p anchor && cp ../shared/anchors/torch_reference.py anchor/    (the anchor, git-ignored)
# then run it there with carry ["device.tar.xz", "anchor"]:  scripts/gpu_check.sh
# It unpacks the bundle, points the loader at the machine's CUDA libraries (toolkit, and the cuDNN and
# NCCL of its Python wheels), and writes into $OUT (default out/gpu): the CUDA tests, compute-sanitizer
# memcheck and racecheck of them, the kernel benchmarks (JSON), aware's training and scoring throughput
# (fused/cudnn x fp32/tf32, fused bf16, graphs on and off, batch 100 and 4096) and the anchor's (eager, compile).
# Prints a short table last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
[[ -d device ]] || tar -xJf device.tar.xz || { echo "gpu_check: carry device.tar.xz (scripts/device_bundle.sh)"; exit 1; }
# The CUDA libraries: the toolkit's, or the ones pip installs (nvidia/*/lib under site-packages).
sites=$(python3 -c 'import site, sys; print(" ".join(p for p in site.getsitepackages() + sys.path if p.endswith("-packages")))' 2>/dev/null)
for lib in libcudnn.so.9 libnccl.so.2 libcublas.so.13 libcublasLt.so.13 libcudart.so.13; do
  dir=$(find /usr/local/cuda* /opt /usr/lib $sites -name "$lib" -print -quit 2>/dev/null | xargs -r dirname)
  if [[ -n $dir ]]; then LD_LIBRARY_PATH="$dir:${LD_LIBRARY_PATH:-}"; else echo "gpu_check: $lib not found"; fi
done
# Every CUDA test must run: one that would skip (no usable device, a driver too old for the runtime)
# fails instead, with the device query's answer.
export LD_LIBRARY_PATH AWARE_SOURCE_DIR=$PWD AWARE_REQUIRE_CUDA=1
bin=device/bin
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
ldd "$bin/aware" | grep -i "not found" && { echo "gpu_check: missing libraries"; exit 1; }

step() { echo "== $(date +%T) $*"; }
step "CUDA tests"
timeout 300 "$bin/test_cuda" 2>&1 | tee "$OUT/test_cuda.txt" | tail -3
grep -m1 "CUDA driver" "$OUT/test_cuda.txt"  # versions and the device query (CudaDevice.StatusIsReported)
tests_failed=0
grep -qE "^\[  (FAILED|SKIPPED) " "$OUT/test_cuda.txt" && tests_failed=1
grep -q "^\[  PASSED  \]" "$OUT/test_cuda.txt" || tests_failed=1
step "compute-sanitizer memcheck and racecheck (kernels, not the whole runs)"
filter='*Conv*:*Linear*:*Dropout*:*Softmax*:*Sgd*:*Scan*:*Auc*:*Rectangle*'
timeout 400 compute-sanitizer --tool memcheck --error-exitcode 1 "$bin/test_cuda" --gtest_filter="$filter" \
  > "$OUT/memcheck.txt" 2>&1; echo "memcheck exit $?" | tee -a "$OUT/memcheck.txt"
timeout 400 compute-sanitizer --tool racecheck --error-exitcode 1 "$bin/test_cuda" --gtest_filter="$filter" \
  > "$OUT/racecheck.txt" 2>&1; echo "racecheck exit $?" | tee -a "$OUT/racecheck.txt"
step "kernel benchmarks"
"$bin/bench_cuda" --benchmark_format=json --benchmark_out="$OUT/bench_cuda.json" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true > "$OUT/bench_cuda.txt" 2>&1
"$bin/bench_scan" --benchmark_format=json --benchmark_out="$OUT/bench_scan.json" > "$OUT/bench_scan.txt" 2>&1
step "training and scoring throughput"
: > "$OUT/throughput.jsonl"
for batch in 100 4096; do
  for conv in fused cudnn; do
    for precision in fp32 tf32; do
      "$bin/aware_throughput" --device cuda --batch $batch --conv $conv --precision $precision --seconds 5 \
        >> "$OUT/throughput.jsonl" 2>> "$OUT/throughput.err"
    done
  done
  "$bin/aware_throughput" --device cuda --batch $batch --conv fused --precision bf16 --seconds 5 \
    >> "$OUT/throughput.jsonl" 2>> "$OUT/throughput.err"
  "$bin/aware_throughput" --device cuda --batch $batch --graphs 0 --seconds 5 >> "$OUT/throughput.jsonl" 2>> "$OUT/throughput.err"
done
step "the anchor (PyTorch eager and torch.compile)"
: > "$OUT/anchor.jsonl"
if [[ -f anchor/torch_reference.py ]]; then
  for batch in 100 4096; do
    python3 anchor/torch_reference.py --bench --device cuda --batch $batch --seconds 5 >> "$OUT/anchor.jsonl" 2>> "$OUT/anchor.err"
    python3 anchor/torch_reference.py --bench --device cuda --batch $batch --seconds 5 --compile >> "$OUT/anchor.jsonl" 2>> "$OUT/anchor.err"
  done
fi
step "summary"
grep -E "PASSED|FAILED|SKIPPED" "$OUT/test_cuda.txt" | tail -4
tail -1 "$OUT/memcheck.txt"; tail -1 "$OUT/racecheck.txt"
[[ $tests_failed = 0 ]] || echo "gpu_check: FAILED: CUDA tests failed or skipped (see $OUT/test_cuda.txt)"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("throughput.jsonl", "anchor.jsonl"):
    for line in open(f"{out}/{name}"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        ips = r.get("train_images_per_s", r.get("images_per_s"))
        print(f"{name:18s} batch {r['batch']:5d} {r.get('device', '')[:60]:60s} graphs {r.get('step_graphs', '-')!s:5s} "
              f"compile {r.get('compile', '-')!s:5s} train {ips:12.0f} img/s  score {r.get('score_images_per_s', 0):12.0f}")
PY
exit $tests_failed
