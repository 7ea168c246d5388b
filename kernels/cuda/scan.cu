// CUDA twin of the window scan of kernels/cpu/scan.cpp (semantics in kernels/scan.h).
//
//   1. histogram_kernel: per class, a block-private histogram in shared memory (counts, and the weights
//      and squared weights when the class is weighted), flushed to global memory with atomics. Integer
//      counts are exact whatever the order; weighted sums may differ from the CPU's in the last bits.
//   2. prefix_kernel: one block per (class, array) scans the bins, each thread a contiguous chunk, chunk
//      totals through a block scan: deterministic, and exact for counts and unit weights.
//   3. windows_kernel: one block per lower edge lo, threads over the upper edges hi, every window once:
//      the eligible window of largest R (ties to the smallest (lo, hi), as the CPU), and R of the windows
//      on the fixed-width curves and the below-threshold curve, all from the same launch.
//   4. best_kernel: one block reduces the per-lo candidates.
// The statistics of the winning window are then the CPU's window_at() on the same prefix sums, so the two
// backends report the same numbers for the same window.
//
// Bounds: the histograms read 4 bytes a score (8 with weights): 10^8 scores are 0.4 GB, about 0.15 ms of
// H100 HBM3 bandwidth; the windows are bins^2 / 2 evaluations of ~12 FP64 operations from L2-resident
// prefix sums (5 * 10^7 at 10^4 bins).
#include <cmath>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/scan.h"

namespace aware::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBackground = 8;

// Device prefix sums of every class: class 0 the anomaly, 1.. the backgrounds; each array bins + 1 long.
struct DevicePrefix {
  int bins = 0, classes = 0;
  double* weight = nullptr;
  double* weight2 = nullptr;
  long long* count = nullptr;
  __host__ __device__ size_t at(int c, int i) const { return size_t(c) * (bins + 1) + i; }
};

struct ScanConstants {
  int bins, backgrounds, narrowest;
  long long min_events;
  double sigma[kMaxBackground];
  double sigma_b;
};

__device__ __forceinline__ int bin_of(float p, int bins) {
  const double x = fmin(fmax(double(p), 0.0), 1.0);  // NaN is rejected on the host
  return min(int(x * bins), bins - 1);
}

__global__ void histogram_kernel(const float* __restrict__ scores, const float* __restrict__ weights, size_t n,
                                 DevicePrefix prefix, int cls, bool shared_ok) {
  AWARE_DYNAMIC_SHARED(unsigned char, smem_raw);
  const int bins = prefix.bins;
  unsigned int* counts = reinterpret_cast<unsigned int*>(smem_raw);
  double* w_sum = reinterpret_cast<double*>(smem_raw + ((size_t(bins) * 4 + 15) / 16) * 16);
  double* w2_sum = w_sum + bins;
  // Global histogram lives in the prefix arrays at offset 1 (entry 0 stays 0 for the scan).
  long long* g_count = prefix.count + prefix.at(cls, 1);
  double* g_w = prefix.weight + prefix.at(cls, 1);
  double* g_w2 = prefix.weight2 + prefix.at(cls, 1);
  if (shared_ok) {
    for (int i = threadIdx.x; i < bins; i += blockDim.x) {
      counts[i] = 0;
      if (weights) w_sum[i] = w2_sum[i] = 0.0;
    }
    __syncthreads();
  }
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int k = bin_of(scores[i], bins);
    if (shared_ok) {
      atomicAdd(&counts[k], 1u);
      if (weights) {
        const double w = weights[i];
        atomicAdd(&w_sum[k], w);
        atomicAdd(&w2_sum[k], w * w);
      }
    } else {
      atomicAdd(reinterpret_cast<unsigned long long*>(&g_count[k]), 1ull);
      if (weights) {
        const double w = weights[i];
        atomicAdd(&g_w[k], w);
        atomicAdd(&g_w2[k], w * w);
      }
    }
  }
  if (!shared_ok) return;
  __syncthreads();
  for (int i = threadIdx.x; i < bins; i += blockDim.x) {
    if (counts[i]) atomicAdd(reinterpret_cast<unsigned long long*>(&g_count[i]), (unsigned long long)counts[i]);
    if (weights && counts[i]) {
      atomicAdd(&g_w[i], w_sum[i]);
      atomicAdd(&g_w2[i], w2_sum[i]);
    }
  }
}

// Unit weights: the weight and squared-weight histograms are the counts.
__global__ void unit_weights_kernel(DevicePrefix prefix, int cls) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < prefix.bins; i += gridDim.x * blockDim.x) {
    const size_t k = prefix.at(cls, i + 1);
    prefix.weight[k] = prefix.weight2[k] = double(prefix.count[k]);
  }
}

// In-place inclusive scan of entries 1..n of `v` (entry 0 is 0): one block of kThreads, contiguous
// chunks per thread; thread t's offset is the chunk totals of threads 0..t-1 added in order (256 shared
// reads, once per array: simpler than a tree scan). Exact for counts and unit weights; weighted sums
// are grouped by chunks, so they may differ from a sequential scan in the last bits.
template <class T>
__device__ void block_prefix(T* v, int n) {
  AWARE_SHARED(T, totals, kThreads);
  const int chunk = (n + kThreads - 1) / kThreads, begin = 1 + threadIdx.x * chunk, end = min(begin + chunk, n + 1);
  T local = 0;
  for (int i = begin; i < end; ++i) local += v[i];
  totals[threadIdx.x] = local;
  __syncthreads();
  T offset = 0;
  for (unsigned t = 0; t < threadIdx.x; ++t) offset += totals[t];
  for (int i = begin; i < end; ++i) v[i] = offset += v[i];
  __syncthreads();  // totals may be reused by a next call
}

// Block (c, a): class c, array a (0 weight, 1 squared weight, 2 count).
__global__ void prefix_kernel(DevicePrefix prefix) {
  const int c = blockIdx.x, a = blockIdx.y;
  if (a == 0) block_prefix(prefix.weight + prefix.at(c, 0), prefix.bins);
  if (a == 1) block_prefix(prefix.weight2 + prefix.at(c, 0), prefix.bins);
  if (a == 2) block_prefix(prefix.count + prefix.at(c, 0), prefix.bins);
}

struct Candidate {
  double R;
  int lo, hi;  // hi < 0: none
};

// Larger R wins; equal R goes to the smaller (lo, hi), so the result does not depend on the schedule.
__device__ __forceinline__ bool better(const Candidate& a, const Candidate& b) {
  if (a.hi < 0) return false;
  if (b.hi < 0) return true;
  if (a.R != b.R) return a.R > b.R;
  return a.lo != b.lo ? a.lo < b.lo : a.hi < b.hi;
}

__device__ Candidate block_best(Candidate mine) {
  AWARE_SHARED(Candidate, all, kThreads);
  all[threadIdx.x] = mine;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride && better(all[threadIdx.x + stride], all[threadIdx.x]))
      all[threadIdx.x] = all[threadIdx.x + stride];
    __syncthreads();
  }
  const Candidate best = all[0];
  __syncthreads();
  return best;
}

// R, b and the raw background count of window [lo, hi), in the CPU's order of operations.
__device__ __forceinline__ double window_R(const DevicePrefix& p, const ScanConstants& k, int lo, int hi, double& b,
                                           long long& n) {
  b = 0.0;
  n = 0;
  for (int c = 0; c < k.backgrounds; ++c) {
    const double* w = p.weight + p.at(c + 1, 0);
    const double e = __ddiv_rn(__dsub_rn(w[hi], w[lo]), w[k.bins]);
    b = __dadd_rn(b, __dmul_rn(k.sigma[c], e));
    n += p.count[p.at(c + 1, hi)] - p.count[p.at(c + 1, lo)];
  }
  const double* a = p.weight;
  const double e_an = __ddiv_rn(__dsub_rn(a[hi], a[lo]), a[k.bins]);
  return b > 0.0 ? __ddiv_rn(__dmul_rn(sqrt(k.sigma_b), e_an), sqrt(b)) : nan("");
}

__global__ void windows_kernel(DevicePrefix p, ScanConstants k, const int* __restrict__ widths, int n_widths,
                               double* __restrict__ curves, double* __restrict__ below, Candidate* __restrict__ per_lo) {
  const int lo = blockIdx.x;
  double b;
  long long n;
  Candidate mine{0.0, lo, -1};
  for (int hi = lo + k.narrowest + threadIdx.x; hi <= k.bins; hi += blockDim.x) {
    const double R = window_R(p, k, lo, hi, b, n);
    if (n >= k.min_events && b > 0.0 && (mine.hi < 0 || R > mine.R)) mine = {R, lo, hi};  // hi increases: first kept
  }
  const Candidate best = block_best(mine);
  if (threadIdx.x == 0) per_lo[lo] = best;
  // The curves: thread j of block lo evaluates width j's window at lo; block 0 the windows [0, hi).
  for (int j = threadIdx.x; j < n_widths; j += blockDim.x)
    if (lo + widths[j] <= k.bins) curves[size_t(j) * k.bins + lo] = window_R(p, k, lo, lo + widths[j], b, n);
  if (lo == 0)
    for (int hi = 1 + threadIdx.x; hi <= k.bins; hi += blockDim.x) below[hi - 1] = window_R(p, k, 0, hi, b, n);
}

__global__ void best_kernel(const Candidate* __restrict__ per_lo, int count, Candidate* __restrict__ out) {
  Candidate mine{0.0, 0, -1};
  for (int i = threadIdx.x; i < count; i += blockDim.x)
    if (better(per_lo[i], mine)) mine = per_lo[i];
  const Candidate best = block_best(mine);
  if (threadIdx.x == 0) *out = best;
}


// ---- 2-D: rectangles in (p1, p2) ------------------------------------------------------------------

// Cell (i, j) is accumulated at (i + 1, j + 1) of the (bins + 1)^2 prefix array of its class.
__global__ void histogram_2d_kernel(const float* __restrict__ p1, const float* __restrict__ p2,
                                    const float* __restrict__ weights, size_t n, DevicePrefix prefix, int cls) {
  const int bins = prefix.bins;
  const size_t stride = size_t(bins) + 1, base = size_t(cls) * stride * stride;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const size_t at = base + (bin_of(p1[i], bins) + 1) * stride + bin_of(p2[i], bins) + 1;
    atomicAdd(reinterpret_cast<unsigned long long*>(&prefix.count[at]), 1ull);
    if (weights) {
      atomicAdd(&prefix.weight[at], double(weights[i]));
      atomicAdd(&prefix.weight2[at], double(weights[i]) * weights[i]);
    }
  }
}

// Unit weights, then prefix sums along rows (pass 0) or columns (pass 1): one thread per line, in order.
__global__ void prefix_2d_kernel(DevicePrefix prefix, int cls, bool unit, int pass) {
  const int line = blockIdx.x * blockDim.x + threadIdx.x, bins = prefix.bins;
  if (line >= bins) return;
  const size_t stride = size_t(bins) + 1, base = size_t(cls) * stride * stride;
  const size_t first = pass == 0 ? base + (line + 1) * stride + 1 : base + stride + line + 1;
  const size_t step = pass == 0 ? 1 : stride;
  double w = 0, w2 = 0;
  long long c = 0;
  for (int k = 0; k < bins; ++k) {
    const size_t at = first + k * step;
    if (unit && pass == 0) prefix.weight[at] = prefix.weight2[at] = double(prefix.count[at]);
    prefix.weight[at] = w += prefix.weight[at];
    prefix.weight2[at] = w2 += prefix.weight2[at];
    prefix.count[at] = c += prefix.count[at];
  }
}

struct Pair {
  int lo, hi;
};

__device__ __forceinline__ double rect_sum(const double* v, size_t stride, Pair a, Pair b) {
  return __dadd_rn(__dsub_rn(__dsub_rn(v[a.hi * stride + b.hi], v[a.lo * stride + b.hi]), v[a.hi * stride + b.lo]),
                   v[a.lo * stride + b.lo]);
}

// One block per first-axis interval (index i of `pairs`), threads over the second-axis intervals; the
// candidate's (lo, hi) are the two pair indices, so ties go to the lexicographically smallest rectangle.
__global__ void rectangles_kernel(DevicePrefix p, ScanConstants k, const Pair* __restrict__ pairs, int n_pairs,
                                  Candidate* __restrict__ per_first) {
  const size_t stride = size_t(k.bins) + 1, cells = stride * stride;
  const Pair a = pairs[blockIdx.x];
  const double anomaly_total = p.weight[cells - 1];
  Candidate mine{0.0, int(blockIdx.x), -1};
  for (int j = threadIdx.x; j < n_pairs; j += blockDim.x) {
    const Pair b = pairs[j];
    double bg = 0.0;
    long long n = 0;
    for (int c = 0; c < k.backgrounds; ++c) {
      const double* w = p.weight + size_t(c + 1) * cells;
      bg = __dadd_rn(bg, __dmul_rn(k.sigma[c], __ddiv_rn(rect_sum(w, stride, a, b), w[cells - 1])));
      const long long* cnt = p.count + size_t(c + 1) * cells;
      n += cnt[a.hi * stride + b.hi] - cnt[a.lo * stride + b.hi] - cnt[a.hi * stride + b.lo] + cnt[a.lo * stride + b.lo];
    }
    if (n < k.min_events || !(bg > 0.0)) continue;
    const double e_an = __ddiv_rn(rect_sum(p.weight, stride, a, b), anomaly_total);
    const double R = __ddiv_rn(__dmul_rn(sqrt(k.sigma_b), e_an), sqrt(bg));
    if (mine.hi < 0 || R > mine.R) mine = {R, int(blockIdx.x), j};
  }
  const Candidate best = block_best(mine);
  if (threadIdx.x == 0) per_first[blockIdx.x] = best;
}

// Zeroed on `stream`, so that work queued on it afterwards sees the zeros.
template <class T>
T* device_alloc(size_t n, cudaStream_t stream = nullptr) {
  void* p = nullptr;
  AWARE_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  AWARE_CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(T), stream));
  return static_cast<T*>(p);
}

// Histograms and prefix sums of every class on the device.
DevicePrefix device_prefix(const std::vector<DeviceSample>& samples, int bins, cudaStream_t stream) {
  DevicePrefix p;
  p.bins = bins;
  p.classes = int(samples.size());
  const size_t entries = size_t(p.classes) * (bins + 1);
  p.weight = device_alloc<double>(entries, stream);
  p.weight2 = device_alloc<double>(entries, stream);
  p.count = device_alloc<long long>(entries, stream);
  int device = 0, max_shared = 0, sms = 0;
  AWARE_CUDA_CHECK(cudaGetDevice(&device));
  AWARE_CUDA_CHECK(cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  AWARE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  for (int c = 0; c < p.classes; ++c) {
    const DeviceSample& s = samples[size_t(c)];
    const size_t shared = ((size_t(bins) * 4 + 15) / 16) * 16 + (s.weights ? 16 * size_t(bins) : 0);
    const bool shared_ok = shared <= size_t(max_shared);
    if (shared_ok && shared > 48 * 1024)
      AWARE_CUDA_CHECK(cudaFuncSetAttribute(histogram_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
    const int blocks = int(std::min<size_t>(size_t(sms) * 4, std::max<size_t>(1, (s.n + kThreads - 1) / kThreads)));
    if (s.n > 0)
      AWARE_LAUNCH(histogram_kernel, blocks, kThreads, shared_ok ? shared : 0, stream)(s.scores, s.weights, s.n, p, c, shared_ok);
    AWARE_CUDA_LAUNCHED();
    if (!s.weights) {
      AWARE_LAUNCH(unit_weights_kernel, blocks_for(size_t(bins), kThreads), kThreads, 0, stream)(p, c);
      AWARE_CUDA_LAUNCHED();
    }
  }
  AWARE_LAUNCH(prefix_kernel, dim3(p.classes, 3), kThreads, 0, stream)(p);
  AWARE_CUDA_LAUNCHED();
  return p;
}

void free_prefix(DevicePrefix& p) {
  cudaFree(p.weight);
  cudaFree(p.weight2);
  cudaFree(p.count);
}

// The host copy of the device prefix sums (`per_class` entries per class and array) as the grid of the
// CPU scan, and the constants of the window kernels: the backgrounds in input order, sigma_B summed in
// class order as the CPU does.
template <class Background>
ScanConstants host_grid(const DevicePrefix& p, size_t per_class, const std::vector<Background>& backgrounds,
                        const ScanSettings& settings, int bins, PrefixGrid& g, cudaStream_t stream) {
  const size_t classes = backgrounds.size() + 1;
  std::vector<double> w(classes * per_class), w2(w.size());
  std::vector<long long> n(w.size());
  AWARE_CUDA_CHECK(cudaMemcpyAsync(w.data(), p.weight, w.size() * 8, cudaMemcpyDeviceToHost, stream));
  AWARE_CUDA_CHECK(cudaMemcpyAsync(w2.data(), p.weight2, w.size() * 8, cudaMemcpyDeviceToHost, stream));
  AWARE_CUDA_CHECK(cudaMemcpyAsync(n.data(), p.count, w.size() * 8, cudaMemcpyDeviceToHost, stream));
  AWARE_CUDA_CHECK(cudaStreamSynchronize(stream));
  auto class_prefix = [&](size_t c) {
    ClassPrefix cp;
    cp.weight.assign(w.begin() + c * per_class, w.begin() + (c + 1) * per_class);
    cp.weight2.assign(w2.begin() + c * per_class, w2.begin() + (c + 1) * per_class);
    cp.count.assign(n.begin() + c * per_class, n.begin() + (c + 1) * per_class);
    check(cp.weight.back() > 0, "scan (cuda): a class has no weight");
    return cp;
  };
  g.bins = bins;
  g.anomaly = class_prefix(0);
  ScanConstants k{};
  k.bins = bins;
  k.backgrounds = int(backgrounds.size());
  k.narrowest = std::max(1, min_width_bins(settings.min_width, bins));
  k.min_events = settings.min_background_events;
  for (size_t c = 0; c < backgrounds.size(); ++c) {
    g.background.push_back(class_prefix(c + 1));
    g.background_names.push_back(backgrounds[c].name);
    g.sigma_fb.push_back(backgrounds[c].sigma_fb);
    g.sigma_b_fb += backgrounds[c].sigma_fb;
    k.sigma[c] = backgrounds[c].sigma_fb;
  }
  check(g.sigma_b_fb > 0, "scan (cuda): total background cross-section must be positive");
  k.sigma_b = g.sigma_b_fb;
  return k;
}

// Device copies of host spans, freed with the holder.
struct DeviceCopies {
  std::vector<void*> owned;
  DeviceCopies() = default;
  DeviceCopies(const DeviceCopies&) = delete;
  ~DeviceCopies() {
    for (void* q : owned) cudaFree(q);
  }
  float* copy(std::span<const float> v) {
    float* d = device_alloc<float>(v.size());
    owned.push_back(d);
    AWARE_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    return d;
  }
};

}  // namespace

GpuScan scan_device(const DeviceScanInput& input, const ScanSettings& settings, std::span<const double> widths,
                    cudaStream_t stream) {
  const int bins = settings.bins;
  check(bins >= 1, "scan (cuda): bins must be at least 1");
  check(!input.background.empty() && input.background.size() <= size_t(kMaxBackground),
        "scan (cuda): 1 to " + std::to_string(kMaxBackground) + " background classes");
  std::vector<DeviceSample> samples{input.anomaly};
  for (const auto& b : input.background) samples.push_back(b.sample);
  DevicePrefix p = device_prefix(samples, bins, stream);

  // The prefix sums come back (bins + 1 per array and class): the host keeps the exact grid.
  GpuScan out;
  const ScanConstants k = host_grid(p, size_t(bins) + 1, input.background, settings, bins, out.grid, stream);
  ScanGrid& g = out.grid;

  std::vector<int> width_bins;
  for (double width : widths) {
    const int wb = int(std::lround(width * bins));
    check(wb >= 1 && wb <= bins, "scan (cuda): width " + std::to_string(width) + " is not between one bin and the range");
    width_bins.push_back(wb);
  }
  int* d_widths = device_alloc<int>(std::max<size_t>(1, width_bins.size()), stream);
  double* d_curves = device_alloc<double>(std::max<size_t>(1, width_bins.size()) * bins, stream);
  double* d_below = device_alloc<double>(size_t(bins), stream);
  Candidate* d_per_lo = device_alloc<Candidate>(size_t(bins), stream);
  Candidate* d_best = device_alloc<Candidate>(1, stream);
  if (!width_bins.empty())
    AWARE_CUDA_CHECK(cudaMemcpyAsync(d_widths, width_bins.data(), width_bins.size() * sizeof(int),
                                     cudaMemcpyHostToDevice, stream));
  AWARE_LAUNCH(windows_kernel, bins, kThreads, 0, stream)(p, k, d_widths, int(width_bins.size()), d_curves, d_below, d_per_lo);
  AWARE_CUDA_LAUNCHED();
  AWARE_LAUNCH(best_kernel, 1, kThreads, 0, stream)(d_per_lo, bins, d_best);
  AWARE_CUDA_LAUNCHED();

  Candidate best;
  std::vector<double> curves(width_bins.size() * size_t(bins));
  out.below_threshold_R.resize(size_t(bins));
  AWARE_CUDA_CHECK(cudaMemcpyAsync(&best, d_best, sizeof best, cudaMemcpyDeviceToHost, stream));
  if (!curves.empty())
    AWARE_CUDA_CHECK(cudaMemcpyAsync(curves.data(), d_curves, curves.size() * 8, cudaMemcpyDeviceToHost, stream));
  AWARE_CUDA_CHECK(cudaMemcpyAsync(out.below_threshold_R.data(), d_below, size_t(bins) * 8, cudaMemcpyDeviceToHost, stream));
  AWARE_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (size_t j = 0; j < width_bins.size(); ++j)
    out.fixed_width_R.emplace_back(curves.begin() + j * bins, curves.begin() + j * bins + (bins - width_bins[j] + 1));
  if (best.hi >= 0) out.best = window_at(g, settings, best.lo, best.hi);
  for (void* q : {static_cast<void*>(d_widths), static_cast<void*>(d_curves), static_cast<void*>(d_below),
                  static_cast<void*>(d_per_lo), static_cast<void*>(d_best)})
    cudaFree(q);
  free_prefix(p);
  return out;
}

GpuScan scan(const ScanInput& input, const ScanSettings& settings, std::span<const double> widths) {
  // Upload each class (NaN is rejected here, as score_bin() does on the CPU), then scan on the device.
  DeviceCopies copies;
  auto upload = [&](const Sample& s, const std::string& what) {
    check(!s.scores.empty(), "scan (cuda): " + what + ": no events");
    check(s.weights.empty() || s.weights.size() == s.scores.size(), "scan (cuda): " + what + ": weights and scores differ in length");
    for (float x : s.scores) check(!std::isnan(x), "scan: NaN score");
    return DeviceSample{copies.copy(s.scores), s.weights.empty() ? nullptr : copies.copy(s.weights), s.scores.size()};
  };
  DeviceScanInput d;
  d.anomaly = upload(input.anomaly, "anomaly");
  for (const auto& b : input.background) d.background.push_back({b.name, upload(b.sample, "background " + b.name), b.sigma_fb});
  return scan_device(d, settings, widths, nullptr);
}


GpuScan2D scan_2d(const ScanInput2D& input, const ScanSettings& settings) {
  const int bins = settings.bins_2d;
  check(bins >= 1, "scan 2-D (cuda): bins must be at least 1");
  check(!input.background.empty() && input.background.size() <= size_t(kMaxBackground),
        "scan 2-D (cuda): 1 to " + std::to_string(kMaxBackground) + " background classes");
  std::vector<const Sample2D*> samples{&input.anomaly};
  for (const auto& b : input.background) samples.push_back(&b.sample);
  DevicePrefix p;
  p.bins = bins;
  p.classes = int(samples.size());
  const size_t stride = size_t(bins) + 1, cells = stride * stride;
  p.weight = device_alloc<double>(cells * samples.size());
  p.weight2 = device_alloc<double>(cells * samples.size());
  p.count = device_alloc<long long>(cells * samples.size());
  DeviceCopies copies;
  for (size_t c = 0; c < samples.size(); ++c) {
    const Sample2D& s = *samples[c];
    check(!s.p1.empty() && s.p1.size() == s.p2.size(), "scan 2-D (cuda): a class has no events or p1, p2 differ");
    for (size_t i = 0; i < s.p1.size(); ++i) check(!std::isnan(s.p1[i]) && !std::isnan(s.p2[i]), "scan: NaN score");
    const float* w = s.weights.empty() ? nullptr : copies.copy(s.weights);
    AWARE_LAUNCH(histogram_2d_kernel, std::min(blocks_for(s.p1.size(), kThreads), 1024), kThreads, 0, 0)(
        copies.copy(s.p1), copies.copy(s.p2), w, s.p1.size(), p, int(c));
    AWARE_CUDA_LAUNCHED();
    for (int pass = 0; pass < 2; ++pass) {
      AWARE_LAUNCH(prefix_2d_kernel, blocks_for(size_t(bins), 128), 128, 0, 0)(p, int(c), w == nullptr, pass);
      AWARE_CUDA_LAUNCHED();
    }
  }
  GpuScan2D out;
  ScanGrid2D& g = out.grid;
  const ScanConstants k = host_grid(p, cells, input.background, settings, bins, g, nullptr);

  std::vector<Pair> pairs;  // every interval at least `narrowest` bins wide, in (lo, hi) order
  for (int lo = 0; lo < bins; ++lo)
    for (int hi = lo + k.narrowest; hi <= bins; ++hi) pairs.push_back({lo, hi});
  if (!pairs.empty()) {
    Pair* d_pairs = device_alloc<Pair>(pairs.size());
    Candidate* d_per = device_alloc<Candidate>(pairs.size());
    Candidate* d_best = device_alloc<Candidate>(1);
    AWARE_CUDA_CHECK(cudaMemcpy(d_pairs, pairs.data(), pairs.size() * sizeof(Pair), cudaMemcpyHostToDevice));
    AWARE_LAUNCH(rectangles_kernel, int(pairs.size()), kThreads, 0, 0)(p, k, d_pairs, int(pairs.size()), d_per);
    AWARE_CUDA_LAUNCHED();
    AWARE_LAUNCH(best_kernel, 1, kThreads, 0, 0)(d_per, int(pairs.size()), d_best);
    AWARE_CUDA_LAUNCHED();
    Candidate best;
    AWARE_CUDA_CHECK(cudaMemcpy(&best, d_best, sizeof best, cudaMemcpyDeviceToHost));
    if (best.hi >= 0) {
      const Pair a = pairs[size_t(best.lo)], b = pairs[size_t(best.hi)];
      out.best = window_at_2d(g, settings, a.lo, a.hi, b.lo, b.hi);
    }
    cudaFree(d_pairs);
    cudaFree(d_per);
    cudaFree(d_best);
  }
  free_prefix(p);
  return out;
}

}  // namespace aware::cuda
