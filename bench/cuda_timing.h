// Manual timing of GPU work for Google Benchmark: each iteration's time is the host's wall clock around
// `work`, which returns only when its device work is done (it synchronizes). The benchmark must be
// registered with UseManualTime(). (Events on the legacy stream would not bracket work that runs on
// the backend's non-blocking streams; the clock around a synchronized call does, launches included.)
#pragma once
#include <benchmark/benchmark.h>

#include <chrono>

namespace aware {

template <class Work>
void time_on_device(benchmark::State& state, Work&& work) {
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    work();
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

}  // namespace aware
