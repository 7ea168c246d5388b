// Google Benchmark of the window scan: histograms of every class, prefix sums, and every window
// [lo, hi) with the fixed-width and below-threshold curves.
//   BM_ScanCpu/N/BINS   CPU (OpenMP) from host scores: issue target 10^7 scores, 10^3 bins, < 1 s on 2 cores
//   BM_ScanCuda/N/BINS  GPU from device-resident scores, timed by CUDA events: target 10^8 scores,
//                       10^4 bins, < 10 ms on an H100/H200 (skipped without a device)
//   BM_ToysCpu/TOYS/BINS   background-only pseudo-experiments (kernels/toys.h), each drawn and scanned over
//                          every eligible window: issue target 10^4 toys of 10^3 bins < 30 s on 2 cores
//   BM_ToysCuda/TOYS/BINS  the same on the GPU: target 10^5 toys of 10^3 bins < 1 s on an H100/H200
// N scores in all: 20% anomaly, 40% top, 40% qcd. Counters: scores/s, windows/s, and for the GPU the
// bytes of scores read per second (the histogram's bound); for the toys, toys/s and windows/s.
#include <benchmark/benchmark.h>

#include <array>
#include <random>
#include <vector>

#include "kernels/scan.h"
#include "kernels/toys.h"
#include "runtime/backend.h"

#if defined(AWARE_CUDA)
#include <cuda_runtime.h>

#include "bench/cuda_timing.h"
#endif

namespace aware {
namespace {

constexpr std::array<double, 3> kWidths{0.08, 0.10, 0.12};  // Fig. 10's

std::vector<float> peaked(size_t n, double mode, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(float(mode), 0.15f);
  std::vector<float> v(n);
  for (auto& x : v) x = std::min(1.0f, std::max(0.0f, g(rng)));
  return v;
}

struct Classes {
  std::vector<float> anomaly, top, qcd;
  explicit Classes(size_t n) : anomaly(peaked(n / 5, 0.5, 1)), top(peaked(2 * n / 5, 0.8, 2)), qcd(peaked(2 * n / 5, 0.2, 3)) {}
};

void counters(benchmark::State& state, size_t n, int bins) {
  state.counters["scores/s"] = benchmark::Counter(double(n) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["windows/s"] =
      benchmark::Counter(0.5 * bins * (bins + 1.0) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_ScanCpu(benchmark::State& state) {
  const size_t n = size_t(state.range(0));
  const int bins = int(state.range(1));
  const Classes c(n);
  ScanSettings settings;
  settings.bins = bins;
  for (auto _ : state) {
    const ScanGrid grid = make_grid(top_qcd_input({c.anomaly}, {c.top}, {c.qcd}), bins);
    benchmark::DoNotOptimize(best_window(grid, settings));
    for (double w : kWidths) benchmark::DoNotOptimize(fixed_width_curve(grid, settings, w));
    benchmark::DoNotOptimize(below_threshold_curve(grid, settings));
  }
  counters(state, n, bins);
}
BENCHMARK(BM_ScanCpu)->Args({10'000'000, 1000})->Unit(benchmark::kMillisecond)->UseRealTime();

// The toys' model: the classes' scores at 3000 fb^-1 (2 * 10^8 background events), the scan's default
// eligibility (0.02 wide, 100 simulated background events).
ToyModel toys_model(int bins) {
  const Classes c(100'000);
  ScanSettings settings;
  settings.bins = bins;
  return toy_model(make_grid(top_qcd_input({c.anomaly}, {c.top}, {c.qcd}), bins), settings, 3000);
}

void toy_counters(benchmark::State& state, const ToyModel& m, int64_t toys) {
  state.counters["toys/s"] = benchmark::Counter(double(toys) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["windows/s"] = benchmark::Counter(double(toys) * m.windows * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_ToysCpu(benchmark::State& state) {
  const ToyModel m = toys_model(int(state.range(1)));
  const int64_t toys = state.range(0);
  for (auto _ : state) benchmark::DoNotOptimize(run_toys(m, {1, 0, 0.0, 0, toys}));
  toy_counters(state, m, toys);
}
BENCHMARK(BM_ToysCpu)->Args({1'000, 1000})->Args({10'000, 1000})->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

#if defined(AWARE_CUDA)
void BM_ToysCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const ToyModel m = toys_model(int(state.range(1)));
  const int64_t toys = state.range(0);
  time_on_device(state, [&] { benchmark::DoNotOptimize(cuda::run_toys(m, {1, 0, 0.0, 0, toys})); });
  toy_counters(state, m, toys);
}
BENCHMARK(BM_ToysCuda)->Args({100'000, 1000})->Args({10'000, 1000})->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_ScanCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const size_t n = size_t(state.range(0));
  const int bins = int(state.range(1));
  const Classes c(n);
  std::vector<float*> device;
  auto upload = [&](const std::vector<float>& v) {
    float* d = nullptr;
    cudaMalloc(&d, v.size() * sizeof(float));
    cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice);
    device.push_back(d);
    return cuda::DeviceSample{d, nullptr, v.size()};
  };
  const cuda::DeviceScanInput input{upload(c.anomaly), {{"top", upload(c.top), kSigmaTtFb}, {"qcd", upload(c.qcd), kSigmaQcdFb}}};
  ScanSettings settings;
  settings.bins = bins;
  // scan_device() returns after its last copy back, so the work is done when it returns.
  time_on_device(state, [&] { benchmark::DoNotOptimize(cuda::scan_device(input, settings, kWidths, nullptr)); });
  counters(state, n, bins);
  state.counters["score GB/s"] = benchmark::Counter(4.0 * n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  for (float* d : device) cudaFree(d);
}
BENCHMARK(BM_ScanCuda)->Args({100'000'000, 10'000})->Args({10'000'000, 1000})->UseManualTime()->Unit(benchmark::kMillisecond);
#endif

}  // namespace
}  // namespace aware
