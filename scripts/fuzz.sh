#!/usr/bin/env bash
# The libFuzzer harnesses of fuzz/ (docs/testing.md): each reader of outside bytes -- npy (plain and
# gzip), checkpoint (the model file as `aware score -m` loads it), hdf5, config -- fuzzed with
# AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer, in a clang build (build-fuzz/).
# Usage: scripts/fuzz.sh [SECONDS] [NAME...]   (600 s each by default; all four; as many at once as cores)
# Each corpus grows in build-fuzz/corpus/NAME, seeded by fuzz_make_seeds. A finding (crash, leak,
# undefined behaviour, timeout over 10 s, over 2 GiB, a violated property) is written to
# build-fuzz/findings/NAME/ and the script exits 1: fix it, and keep the input in fuzz/regressions/NAME/,
# which CTest replays on every change (fuzz_replay_NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}; shift || true
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(npy checkpoint hdf5 config)
scripts/setup.sh fuzz
dir=build-fuzz
start=$(date +%s)
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAWARE_FUZZ=ON -DAWARE_WITH_CUDA=OFF \
  -DAWARE_CUDA_EMULATION=OFF -DAWARE_TESTS=OFF -DAWARE_BENCH=OFF -DAWARE_WITH_MPI=OFF -DAWARE_PYTHON=OFF > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
cmake --build "$dir" -j"$(nproc)" >> "$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
echo "fuzz: build $(( $(date +%s) - start )) s"
"$dir/fuzz_make_seeds" "$dir/seeds" configs/*.toml
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run() {
  local name=$1 dict=()
  mkdir -p "$dir/corpus/$name" "$dir/findings/$name"
  [ -f "fuzz/dicts/$name.dict" ] && dict=(-dict="fuzz/dicts/$name.dict")
  # The kept regressions join the seeds: a fix that regresses shows at once.
  "$dir/fuzz_$name" "$dir/corpus/$name" "$dir/seeds/$name" $( [ -d "fuzz/regressions/$name" ] && echo "fuzz/regressions/$name" ) \
    "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$dir/findings/$name/" > "$dir/fuzz_$name.log" 2>&1 || true
}
export -f run; export dir seconds
printf '%s\n' "${names[@]}" | xargs -P "$(nproc)" -I{} bash -c 'run {}'
status=0
for name in "${names[@]}"; do
  log=$dir/fuzz_$name.log
  runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
  time=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$log" | grep -oE "in [0-9]+" | grep -oE "[0-9]+" || echo "?")
  cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$log" | tail -1 || true)
  found=$(find "$dir/findings/$name" -type f | wc -l)
  echo "fuzz $name: $runs executions in ${time} s, ${cov:-no coverage line}, corpus $(ls "$dir/corpus/$name" | wc -l), findings $found (log: $log)"
  if [ "$found" != 0 ]; then find "$dir/findings/$name" -type f | sed 's/^/  /'; status=1; fi
done
exit $status
