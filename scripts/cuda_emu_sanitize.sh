#!/usr/bin/env bash
# The emulated CUDA suite (test_cuda_emu) under the sanitizers, each build in its own folder:
#   address  AddressSanitizer + UndefinedBehaviorSanitizer: accesses outside device, shared and host
#            memory, and undefined behaviour, in the CUDA kernels run on the host (build-asan/)
#   thread   ThreadSanitizer, every CUDA thread a TSan fiber ordered only by barriers, warp collectives
#            and launches: races inside a block (build-tsan/). The planted race must be reported and
#            aware's kernels must be clean.
# Usage: scripts/cuda_emu_sanitize.sh [address|thread]...  (both by default). Exit status 0: all clean.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
kinds=("$@"); [ ${#kinds[@]} -gt 0 ] || kinds=(address thread)
# MPI's own libraries are not built with the sanitizers: the two-rank test runs in the plain suite.
skip='EmulationMpi.*'
status=0
for kind in "${kinds[@]}"; do
  dir=build-${kind/address/asan}; dir=${dir/thread/tsan}
  start=$(date +%s)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAWARE_SANITIZE="$kind" -DAWARE_WITH_CUDA=OFF \
        -DAWARE_BENCH=OFF > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  cmake --build "$dir" -j"$(nproc)" --target test_cuda_emu aware_emu >> "$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
  built=$(date +%s)
  export OMP_NUM_THREADS=1
  if [ "$kind" = address ]; then
    # The fibers' stacks are switched with ASan's annotations; leaks are the suite's own check.
    ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/cuda_emu/ubsan.supp \
      "$dir/test_cuda_emu" --gtest_filter="-$skip" > "$dir/run.log" 2>&1 || status=1
  else
    # The planted race (a missing barrier) must be found ...
    TSAN_OPTIONS=exitcode=66 "$dir/test_cuda_emu" --gtest_filter='Emulation.AMissingBarrier*' > "$dir/planted.log" 2>&1 || true
    if grep -q "ThreadSanitizer: data race" "$dir/planted.log"; then echo "tsan: the planted race is reported"
    else echo "tsan: the planted race was NOT reported"; status=1; fi
    # ... and aware's kernels must have none (OpenMP's runtime is not instrumented: one thread).
    # (65,537 blocks of the grid-geometry test are left out: hours of TSan for a test of launch sizes.)
    TSAN_OPTIONS=exitcode=66 "$dir/test_cuda_emu" \
      --gtest_filter="-$skip:Emulation.AMissingBarrier*:Emulation.TheFusedConvRunsBatchesBeyondGridDimY" \
      > "$dir/run.log" 2>&1 || status=1
  fi
  end=$(date +%s)
  grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$dir/run.log" || true
  reports=$(grep -cE "ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer" "$dir/run.log" || true)
  echo "$kind: build $((built - start)) s, run $((end - built)) s, sanitizer reports: $reports (log: $dir/run.log)"
  [ "$reports" = 0 ] || status=1
done
exit $status
