// Manual timing of GPU work for Google Benchmark: each iteration runs `work` between two CUDA events
// and reports the time between them (the benchmark must be registered with UseManualTime()). `work`
// returns only when its device work is done (it synchronizes), so the stop event follows it.
#pragma once
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

namespace aware {

template <class Work>
void time_on_device(benchmark::State& state, Work&& work) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (auto _ : state) {
    cudaEventRecord(start, nullptr);
    work();
    cudaEventRecord(stop, nullptr);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

}  // namespace aware
