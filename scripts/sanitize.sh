#!/usr/bin/env bash
# The test suites under the sanitizers, each build in its own folder:
#   address  the emulated CUDA suite (test_cuda_emu) under AddressSanitizer + UndefinedBehaviorSanitizer:
#            accesses outside device, shared and host memory, and undefined behaviour, in the CUDA
#            kernels run on the host (build-asan/)
#   thread   the emulated CUDA suite under ThreadSanitizer, every CUDA thread a TSan fiber ordered only by
#            barriers, warp collectives and launches: races inside a block (build-tsan/). The planted race
#            must be reported and aware's kernels must be clean.
#   cpu      every CPU suite (CTest, the aware program its tests run included) under AddressSanitizer,
#            LeakSanitizer and UndefinedBehaviorSanitizer (build-asan/)
# Usage: scripts/sanitize.sh [address|thread|cpu]...  (all three by default). Exit status 0: all clean.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
kinds=("$@"); [ ${#kinds[@]} -gt 0 ] || kinds=(address thread cpu)
# MPI's own libraries are not built with the sanitizers: the two-rank test runs in the plain suite.
skip='EmulationMpi.*'
status=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/cuda_emu/ubsan.supp
for kind in "${kinds[@]}"; do
  sanitizer=${kind/cpu/address}
  dir=build-${sanitizer/address/asan}; dir=${dir/thread/tsan}
  start=$(date +%s)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAWARE_SANITIZE="$sanitizer" -DAWARE_WITH_CUDA=OFF -DAWARE_PYTHON=OFF \
        -DAWARE_BENCH=OFF > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  targets=(--target test_cuda_emu aware_emu); [ "$kind" = cpu ] && targets=()
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}" >> "$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
  built=$(date +%s)
  export OMP_NUM_THREADS=1
  if [ "$kind" = cpu ]; then
    # The CPU suites (the emulated CUDA ones are the other kinds'; MPI's libraries are not instrumented).
    ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=0 \
      ctest --test-dir "$dir" -j"$(nproc)" --timeout 900 --output-on-failure \
      -E 'Mpi|TwoRanks|TwoMpi|reverse_order|Cuda|Emulation' > "$dir/run.log" 2>&1 || status=1
  elif [ "$kind" = address ]; then
    # The fibers' stacks are switched with ASan's annotations; leaks are the suite's own check.
    ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0 "$dir/test_cuda_emu" --gtest_filter="-$skip" > "$dir/run.log" 2>&1 || status=1
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
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests passed|tests failed" "$dir/run.log" || true
  reports=$(grep -cE "ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer" "$dir/run.log" || true)
  echo "$kind: build $((built - start)) s, run $((end - built)) s, sanitizer reports: $reports (log: $dir/run.log)"
  [ "$reports" = 0 ] || status=1
done
exit $status
