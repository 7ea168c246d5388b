// Google Benchmark of the CPU kernels at the shapes of the Fig. 1 network and a training batch of
// 200 images (100 normal + 100 anomalies). Counters: GFLOP/s and bytes/s of the arrays touched.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <random>
#include <vector>

#include "kernels/conv_relu_pool.h"
#include "kernels/linear.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"

namespace aware {
namespace {

std::vector<float> random_vector(size_t n) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(gen);
  return v;
}

const ConvShape kLayers[] = {{200, 1, 25, 25, 30, 0, true, false}, {200, 30, 23, 23, 40, 1, true, false},
                             {200, 40, 23, 23, 30, 0, true, true}, {200, 30, 10, 10, 40, 1, true, true}};

void BM_ConvForward(benchmark::State& state) {
  ConvShape s = kLayers[state.range(0)];
  s.batch = int(state.range(1));
  const int threads = omp_get_max_threads();
  auto x = random_vector(s.batch * s.in_size()), w = random_vector(s.weight_size()), b = random_vector(s.out_c);
  std::vector<float> act(s.batch * s.act_size()), y(s.batch * s.out_size()), ws(cpu::conv_relu_pool_workspace(s, threads));
  // Third argument: 0 the default choice, 1 the direct sum, 2 Winograd (GFLOP/s counts the direct sum's FLOPs).
  const auto algorithm = cpu::ConvAlgorithm(state.range(2));
  float* out = s.pool ? y.data() : act.data();  // without the pool y is act, as in the network
  for (auto _ : state)
    cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), out, ws.data(), threads, algorithm);
  state.counters["GFLOP/s"] = benchmark::Counter(s.forward_flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["img/s"] = benchmark::Counter(double(s.batch) * state.iterations(), benchmark::Counter::kIsRate);
}

// Scoring's forward pass of a pooled layer: no activations kept for a backward pass (act null), the
// pooled outputs straight from the Winograd tiles.
void BM_ConvForwardScoring(benchmark::State& state) {
  ConvShape s = kLayers[state.range(0)];
  s.batch = int(state.range(1));
  const int threads = omp_get_max_threads();
  auto x = random_vector(s.batch * s.in_size()), w = random_vector(s.weight_size()), b = random_vector(s.out_c);
  std::vector<float> y(s.batch * s.out_size()), ws(cpu::conv_relu_pool_workspace(s, threads));
  for (auto _ : state) cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), nullptr, y.data(), ws.data(), threads);
  state.counters["GFLOP/s"] = benchmark::Counter(s.forward_flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["img/s"] = benchmark::Counter(double(s.batch) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_ConvBackward(benchmark::State& state) {
  ConvShape s = kLayers[state.range(0)];
  s.batch = int(state.range(1));
  const int threads = omp_get_max_threads();
  const bool first = state.range(0) == 0;  // the first layer needs no input gradient
  auto x = random_vector(s.batch * s.in_size()), w = random_vector(s.weight_size()), b = random_vector(s.out_c);
  std::vector<float> act(s.batch * s.act_size()), y(s.batch * s.out_size()), ws(cpu::conv_relu_pool_workspace(s, threads));
  cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), y.data(), ws.data(), threads);
  auto dy = random_vector(s.batch * s.out_size());
  std::vector<float> dx(x.size()), dw(w.size()), db(b.size());
  for (auto _ : state)
    cpu::conv_relu_pool_backward(s, x.data(), w.data(), act.data(), dy.data(), first ? nullptr : dx.data(), dw.data(),
                                 db.data(), ws.data(), threads);
  const double flops = s.forward_flops() * (first ? 1 : 2);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_Linear(benchmark::State& state) {
  const int B = int(state.range(0)), I = 1000, O = 300;
  auto x = random_vector(B * I), w = random_vector(O * I), b = random_vector(O), g = random_vector(B * O);
  std::vector<float> y(B * O), dx(B * I), dw(O * I), db(O);
  for (auto _ : state) {
    cpu::linear_forward(B, I, O, true, x.data(), w.data(), b.data(), y.data());
    auto dy = g;
    cpu::linear_backward(B, I, O, true, x.data(), w.data(), y.data(), dy.data(), dx.data(), dw.data(), db.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(6.0 * B * I * O * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_SoftmaxXent(benchmark::State& state) {
  const int B = int(state.range(0)), C = 2;
  auto z = random_vector(B * C);
  std::vector<int32_t> label(B);
  std::vector<float> w(B, 1.0f / B), d(B * C);
  for (int i = 0; i < B; ++i) label[i] = i % 2 ? kUniformTarget : 0;
  for (auto _ : state) benchmark::DoNotOptimize(cpu::softmax_xent(B, C, z.data(), label.data(), w.data(), d.data(), nullptr));
  state.counters["rows/s"] = benchmark::Counter(double(B) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_Sgd(benchmark::State& state) {
  const size_t n = 333712;  // the Fig. 1 network's parameters
  auto w = random_vector(n), g = random_vector(n), v = random_vector(n);
  for (auto _ : state) cpu::sgd_update(n, 0.01f, 0.9f, 0.0f, w.data(), g.data(), v.data());
  state.counters["bytes/s"] = benchmark::Counter(16.0 * n * state.iterations(), benchmark::Counter::kIsRate);
}

// The machine's attainable FP32 rate: a large square SGEMM (OpenBLAS), the roofline's ceiling.
void BM_SgemmPeak(benchmark::State& state) {
  const int n = int(state.range(0));
  auto a = random_vector(size_t(n) * n), b = random_vector(size_t(n) * n);
  std::vector<float> c(size_t(n) * n);
  for (auto _ : state)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_SgemmPeak)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ConvForward)->ArgsProduct({{0, 1, 2, 3}, {200}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ConvForwardScoring)->ArgsProduct({{2, 3}, {200}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ConvBackward)->ArgsProduct({{0, 1, 2, 3}, {200}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Linear)->Arg(200)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SoftmaxXent)->Arg(200)->UseRealTime();
BENCHMARK(BM_Sgd)->UseRealTime();

}  // namespace
}  // namespace aware
