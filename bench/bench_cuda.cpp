// Google Benchmark of the CUDA kernels, timed by CUDA events (manual time): every conv layer of Fig. 1,
// forward and backward, aware's fused kernels against the cuDNN path, at batch 100 and 4096 (a training
// step at batch 100 runs 200 rows: 100 normal + 100 anomalies). Counters: GFLOP/s (2 x 9 x in_c FLOPs
// per output, x2 more for the backward's two products) and the bytes each kernel must touch at least
// (inputs, weights, outputs once). Skipped without a device; absent from builds without CUDA.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/conv_relu_pool.h"
#include "runtime/backend.h"
#include "runtime/communicator.h"

#if defined(AWARE_CUDA)
#include <cuda_runtime.h>

#include "bench/cuda_timing.h"

namespace aware {
namespace {

const ConvShape kLayers[] = {{0, 1, 25, 25, 30, 0, true, false}, {0, 30, 23, 23, 40, 1, true, false},
                             {0, 40, 23, 23, 30, 0, true, true}, {0, 30, 10, 10, 40, 1, true, true}};

struct Buffers {
  Backend& b;
  std::vector<void*> owned;
  explicit Buffers(Backend& backend) : b(backend) {}
  ~Buffers() {
    for (void* p : owned) b.release(p);
  }
  float* random(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    float* p = zeros(n);
    b.to_device(p, v.data(), n * sizeof(float));
    return p;
  }
  float* zeros(size_t n) {
    owned.push_back(b.allocate(std::max<size_t>(n, 1) * sizeof(float)));
    return static_cast<float*>(owned.back());
  }
};

// range(0): layer, range(1): batch, range(2): 0 fused, 1 cuDNN, range(3): 0 forward, 1 backward.
void BM_ConvCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  ConvShape s = kLayers[state.range(0)];
  s.batch = int(state.range(1));
  const bool cudnn = state.range(2) == 1, backward = state.range(3) == 1;
  auto backend = make_backend("cuda", {cudnn ? "cudnn" : "fused", "fp32"});
  Buffers buf(*backend);
  float *x = buf.random(s.batch * s.in_size(), 1), *w = buf.random(s.weight_size(), 2), *bias = buf.random(s.out_c, 3);
  float *act = buf.zeros(s.batch * s.act_size()), *y = s.pool ? buf.zeros(s.batch * s.out_size()) : act;
  float *dy = buf.random(s.batch * s.out_size(), 4), *dx = buf.zeros(s.batch * s.in_size());
  float *dw = buf.zeros(s.weight_size()), *db = buf.zeros(s.out_c);
  void* ws = buf.zeros(backend->conv_workspace_bytes(s) / sizeof(float) + 1);
  backend->conv_relu_pool_forward(s, x, w, bias, act, y, ws);
  time_on_device(state, [&] {
    if (backward)
      backend->conv_relu_pool_backward(s, x, w, act, dy, dx, dw, db, ws);
    else
      backend->conv_relu_pool_forward(s, x, w, bias, act, y, ws);
    backend->synchronize();
  });
  const double flops = s.forward_flops() * (backward ? 2.0 : 1.0);
  const double bytes = 4.0 * (s.batch * (s.in_size() + s.act_size() + s.out_size()) + s.weight_size());
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["min GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(cudnn ? "cudnn" : "fused") + (backward ? " backward" : " forward"));
}
BENCHMARK(BM_ConvCuda)
    ->ArgsProduct({{0, 1, 2, 3}, {200, 4096}, {0, 1}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The gradient all-reduce through NCCL at world size 1 (one process, one GPU): its fixed cost per step.
// range(0): floats (333,712: the Fig. 1 network's parameters).
void BM_NcclAllReduce(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  auto backend = make_backend("cuda");
  Buffers buf(*backend);
  const size_t n = size_t(state.range(0));
  float* g = buf.random(n, 5);
  backend->all_reduce_sum(g, n, world());  // NCCL set up outside the timing
  backend->synchronize();
  time_on_device(state, [&] {
    backend->all_reduce_sum(g, n, world());
    backend->synchronize();
  });
  state.counters["GB/s"] = benchmark::Counter(4.0 * n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NcclAllReduce)->Arg(333'712)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace aware
#endif
