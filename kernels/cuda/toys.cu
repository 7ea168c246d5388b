// CUDA twin of the pseudo-experiments of kernels/cpu/toys.cpp (semantics in kernels/toys.h), a batch of
// toys at a time:
//   1. draw_kernel: one block per toy draws every bin (kernels/poisson.h, the host's constants per bin:
//      the same counts as the CPU) and sums them into the toy's prefix counts;
//   2. rows_kernel: one thread per (toy, lo) walks the row's windows: q(N) of each excess, the row's
//      largest (ties to the smallest hi);
//   3. top_kernel: one block per toy: the top window (ties to the smallest lo) and the pruning threshold;
//   4. candidates_kernel: the rows that reach the threshold walk again and append each window that does
//      to the toy's candidates (at most kMaxCandidates; a toy with more is scanned on the host instead).
// The host then takes the exact t of each candidate (local_statistic, the CPU's function) and keeps the
// largest, ties to the smallest (lo, hi): the CPU's result. q on the device may differ from the host's
// in the last bits; the threshold's slack keeps the true maximum among the candidates either way.
//
// Bounds: rows_kernel is bins^2 / 2 evaluations a toy of a division and a log1p in FP64 (about 30 FP64
// operations) from L1/L2-resident prefix sums: 10^5 toys of 10^3 bins are 1.5 * 10^12 FP64 operations,
// about 0.05 s of an H100's 34 TFLOP/s FP64 (non-tensor). Every other step is O(toys * bins).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/poisson.h"
#include "kernels/toys.h"

namespace aware::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxCandidates = 64;

struct Candidate {
  int lo, hi;
  long long observed;
  double expected;
};

// A device array freed with its holder.
template <class T>
struct DeviceArray {
  T* p = nullptr;
  explicit DeviceArray(size_t n) {
    AWARE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(1, n) * sizeof(T)));
  }
  DeviceArray(DeviceArray&& other) noexcept : p(other.p) { other.p = nullptr; }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (p) cudaFree(p);
  }
};

template <class T>
DeviceArray<T> upload(const std::vector<T>& v) {
  DeviceArray<T> d(v.size());
  if (!v.empty()) AWARE_CUDA_CHECK(cudaMemcpy(d.p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

__global__ void draw_kernel(const PoissonConstants* __restrict__ constants, int bins, unsigned long long seed,
                            unsigned stream, long long first_toy, long long* __restrict__ prefix) {
  const long long toy = blockIdx.x;
  long long* n = prefix + toy * (bins + 1);
  for (int k = threadIdx.x; k < bins; k += blockDim.x)
    n[k + 1] = poisson_draw(constants[k], seed, unsigned(k), unsigned(first_toy + toy), stream);
  __syncthreads();
  if (threadIdx.x == 0) {  // integers: any order is exact; one thread keeps it simple
    n[0] = 0;
    for (int k = 0; k < bins; ++k) n[k + 1] += n[k];
  }
}

__global__ void rows_kernel(const long long* __restrict__ prefix, const double* __restrict__ background_prefix,
                            const int* __restrict__ first_hi, const int* __restrict__ last_hi, int bins,
                            long long toys, double* __restrict__ row_q, int* __restrict__ row_hi) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= toys * bins) return;
  const long long toy = i / bins;
  const int lo = int(i % bins);
  const long long* n = prefix + toy * (bins + 1);
  double best = -HUGE_VAL;
  int best_hi = -1;
  for (int hi = first_hi[lo]; hi <= last_hi[lo]; ++hi) {
    const double observed = double(n[hi] - n[lo]), expected = background_prefix[hi] - background_prefix[lo];
    if (!(observed > expected)) continue;
    const double q = excess_q(observed, expected);
    if (q > best) best = q, best_hi = hi;
  }
  row_q[i] = best;
  row_hi[i] = best_hi;
}

__global__ void top_kernel(const long long* __restrict__ prefix, const double* __restrict__ background_prefix,
                           const double* __restrict__ row_q, const int* __restrict__ row_hi, int bins,
                           double* __restrict__ threshold) {
  AWARE_SHARED(double, best_q, kThreads);
  AWARE_SHARED(int, best_lo, kThreads);
  const long long toy = blockIdx.x;
  double q = -HUGE_VAL;
  int lo = -1;
  for (int l = threadIdx.x; l < bins; l += blockDim.x)  // increasing l: strict > keeps the smallest
    if (row_q[toy * bins + l] > q) q = row_q[toy * bins + l], lo = l;
  best_q[threadIdx.x] = q;
  best_lo[threadIdx.x] = lo;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      const double oq = best_q[threadIdx.x + half];
      const int ol = best_lo[threadIdx.x + half];
      if (oq > best_q[threadIdx.x] || (oq == best_q[threadIdx.x] && ol >= 0 && (best_lo[threadIdx.x] < 0 || ol < best_lo[threadIdx.x])))
        best_q[threadIdx.x] = oq, best_lo[threadIdx.x] = ol;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const int top_lo = best_lo[0];
    if (top_lo < 0 || best_q[0] == -HUGE_VAL) {
      threshold[toy] = HUGE_VAL;  // no excess: no candidate
    } else {
      const int top_hi = row_hi[toy * bins + top_lo];
      const long long* n = prefix + toy * (bins + 1);
      threshold[toy] = candidate_threshold(n[top_hi] - n[top_lo], background_prefix[top_hi] - background_prefix[top_lo]);
    }
  }
}

__global__ void candidates_kernel(const long long* __restrict__ prefix, const double* __restrict__ background_prefix,
                                  const int* __restrict__ first_hi, const int* __restrict__ last_hi, int bins,
                                  long long toys, const double* __restrict__ row_q, const double* __restrict__ threshold,
                                  int* __restrict__ counts, Candidate* __restrict__ candidates) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= toys * bins) return;
  const long long toy = i / bins;
  const int lo = int(i % bins);
  const double thr = threshold[toy];
  if (row_q[i] == -HUGE_VAL || row_q[i] < thr) return;
  const long long* n = prefix + toy * (bins + 1);
  for (int hi = first_hi[lo]; hi <= last_hi[lo]; ++hi) {
    const long long observed = n[hi] - n[lo];
    const double expected = background_prefix[hi] - background_prefix[lo];
    if (!(double(observed) > expected) || excess_q(double(observed), expected) < thr) continue;
    const int slot = atomicAdd(&counts[toy], 1);
    if (slot < kMaxCandidates) candidates[toy * kMaxCandidates + slot] = {lo, hi, observed, expected};
  }
}

}  // namespace

std::vector<ToyMax> run_toys(const ToyModel& m, const ToyDraws& d) {
  check(d.count >= 0 && d.first >= 0 && d.first + d.count <= (int64_t(1) << 32), "toys (cuda): toy numbers must lie in [0, 2^32)");
  check(!d.resample_background, "toys (cuda): resampling the simulated background runs on the CPU");
  const int bins = m.bins;
  const std::vector<PoissonConstants> constants = toy_constants(m, d);  // the CPU's doubles
  const auto d_constants = upload(constants);
  const auto d_background = upload(m.background_prefix);
  const auto d_first = upload(m.first_hi), d_last = upload(m.last_hi);
  // A batch's arrays: about 20 bytes per (toy, bin), at most 2^28 of them (5 GiB).
  const long long batch = std::max<long long>(1, std::min<long long>(d.count, (1ll << 28) / bins));
  DeviceArray<long long> prefix(static_cast<size_t>(batch) * (bins + 1));
  DeviceArray<double> row_q(static_cast<size_t>(batch) * bins), threshold(static_cast<size_t>(batch));
  DeviceArray<int> row_hi(static_cast<size_t>(batch) * bins), counts(static_cast<size_t>(batch));
  DeviceArray<Candidate> candidates(static_cast<size_t>(batch) * kMaxCandidates);
  std::vector<int> host_counts;
  std::vector<Candidate> host_candidates;
  std::vector<ToyMax> out(static_cast<size_t>(d.count));
  std::vector<int64_t> toy_counts(static_cast<size_t>(bins));
  for (long long first = 0; first < d.count; first += batch) {
    const long long n = std::min(batch, d.count - first);
    const int row_blocks = blocks_for(size_t(n) * bins, kThreads);
    AWARE_LAUNCH(draw_kernel, int(n), kThreads, 0, nullptr)(d_constants.p, bins, d.seed, d.stream, d.first + first, prefix.p);
    AWARE_CUDA_LAUNCHED();
    AWARE_LAUNCH(rows_kernel, row_blocks, kThreads, 0, nullptr)(prefix.p, d_background.p, d_first.p, d_last.p, bins, n,
                                                                  row_q.p, row_hi.p);
    AWARE_CUDA_LAUNCHED();
    AWARE_LAUNCH(top_kernel, int(n), kThreads, 0, nullptr)(prefix.p, d_background.p, row_q.p, row_hi.p, bins, threshold.p);
    AWARE_CUDA_LAUNCHED();
    AWARE_CUDA_CHECK(cudaMemset(counts.p, 0, size_t(n) * sizeof(int)));
    AWARE_LAUNCH(candidates_kernel, row_blocks, kThreads, 0, nullptr)(prefix.p, d_background.p, d_first.p, d_last.p, bins, n,
                                                                        row_q.p, threshold.p, counts.p, candidates.p);
    AWARE_CUDA_LAUNCHED();
    host_counts.resize(size_t(n));
    host_candidates.resize(size_t(n) * kMaxCandidates);
    AWARE_CUDA_CHECK(cudaMemcpy(host_counts.data(), counts.p, size_t(n) * sizeof(int), cudaMemcpyDeviceToHost));
    AWARE_CUDA_CHECK(cudaMemcpy(host_candidates.data(), candidates.p, host_candidates.size() * sizeof(Candidate),
                                cudaMemcpyDeviceToHost));
#pragma omp parallel for schedule(dynamic, 16) firstprivate(toy_counts)
    for (long long t = 0; t < n; ++t) {
      ToyMax& best = out[size_t(first + t)];
      const int c = host_counts[size_t(t)];
      if (c > kMaxCandidates) {  // too many near-ties: the toy again, on the host
        draw_toy(m, d, d.first + first + t, toy_counts);
        best = scan_counts(m, toy_counts);
        continue;
      }
      bool found = false;
      for (int j = 0; j < c; ++j) {
        const Candidate& w = host_candidates[size_t(t) * kMaxCandidates + size_t(j)];
        const double value = local_statistic(w.observed, w.expected);
        if (!found || value > best.t || (value == best.t && (w.lo < best.lo || (w.lo == best.lo && w.hi < best.hi))))
          best = {value, w.lo, w.hi, w.observed, w.expected}, found = true;
      }
    }
  }
  return out;
}

}  // namespace aware::cuda
