// Google Benchmark of the jet-image maker (tools/jet_images.h): 25x25 images of jets of C constituents.
//   BM_JetImages/JETS/C            the default (the jet axis, as make_jets.py): issue target 10^6 jets/s
//                                  per core at C = 50 (run with OMP_NUM_THREADS=1 for the per-core rate)
//   BM_JetImagesPreprocessed/JETS/C  centroid, rotation, flip and normalisation on top
// What bounds it: per constituent a subtraction, numpy's float remainder (an fmod) for d_phi and two pixel
// lookups; per jet the 2.5 KB image zeroed and written. Counters: jets/s, constituents/s, and the image
// bytes written per second.
#include <benchmark/benchmark.h>

#include <numbers>
#include <random>
#include <vector>

#include "tools/jet_images.h"

namespace aware {
namespace {

struct Jets {
  std::vector<double> pt, eta, phi, jet_eta, jet_phi;
  std::vector<int64_t> offsets{0};
};

// Jets of C constituents spread over the image like boosted jets: most pT near the axis, some outside.
Jets make_jets(int64_t jets, int constituents) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> spread(0, 0.35);
  std::uniform_real_distribution<double> axis_eta(-2, 2), axis_phi(0, 2 * std::numbers::pi);
  std::exponential_distribution<double> pt(0.05);
  Jets j;
  for (int64_t k = 0; k < jets; ++k) {
    const double e = axis_eta(rng), p = axis_phi(rng);
    j.jet_eta.push_back(e), j.jet_phi.push_back(p);
    for (int c = 0; c < constituents; ++c)
      j.pt.push_back(pt(rng)), j.eta.push_back(e + spread(rng)), j.phi.push_back(std::fmod(p + spread(rng) + 7, 2 * std::numbers::pi));
    j.offsets.push_back(int64_t(j.pt.size()));
  }
  return j;
}

void run(benchmark::State& state, const JetImageOptions& options) {
  const int64_t jets = state.range(0);
  const Jets j = make_jets(jets, int(state.range(1)));
  std::vector<float> images(size_t(jets) * 625);
  const Constituents<double> c{j.pt, j.eta, j.phi, j.offsets, j.jet_eta, j.jet_phi};
  for (auto _ : state) {
    jet_images(c, options, images.data());
    benchmark::DoNotOptimize(images.data());
  }
  state.counters["jets/s"] = benchmark::Counter(double(jets), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["constituents/s"] =
      benchmark::Counter(double(j.pt.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["image_bytes/s"] =
      benchmark::Counter(double(images.size() * sizeof(float)), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_JetImages(benchmark::State& state) { run(state, {}); }
void BM_JetImagesPreprocessed(benchmark::State& state) {
  JetImageOptions o;
  o.centre = JetImageOptions::Centre::centroid, o.rotate = o.flip = o.normalise = true;
  run(state, o);
}

BENCHMARK(BM_JetImages)->Args({100'000, 50})->Args({100'000, 1})->Args({100'000, 100})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_JetImagesPreprocessed)->Args({100'000, 50})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace aware
