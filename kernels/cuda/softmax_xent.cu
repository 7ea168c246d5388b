// CUDA twin of kernels/cpu/softmax_xent.cpp: fused softmax + cross-entropy (hard label or the uniform
// target, per-row weights), the loss and dlogits in one kernel. One thread per row (the classes are
// few); the weighted loss sum is reduced by a single block in a fixed order, so it is deterministic.
// Bound: launches; a batch of 200 rows x 2 classes is a few kilobytes.
#include "kernels/cuda/common.cuh"
#include "kernels/softmax_xent.h"

namespace aware::cuda {
namespace {

constexpr int kThreads = 256;

// softmax(z) into p; returns log-sum-exp(z), stably around the maximum, as the CPU twin.
__device__ float softmax_row(int classes, const float* z, float* p) {
  float zmax = z[0];
  for (int c = 1; c < classes; ++c) zmax = fmaxf(zmax, z[c]);
  float sum = 0.0f;
  for (int c = 0; c < classes; ++c) sum += p[c] = expf(z[c] - zmax);
  for (int c = 0; c < classes; ++c) p[c] /= sum;
  return zmax + logf(sum);
}

__global__ void softmax_xent_kernel(int batch, int classes, const float* __restrict__ logits,
                                    const int32_t* __restrict__ label, const float* __restrict__ weight,
                                    float* __restrict__ dlogits, float* __restrict__ probs, double* loss) {
  double local = 0.0;  // one block: thread t handles rows t, t + blockDim.x, ...
  for (int n = threadIdx.x; n < batch; n += blockDim.x) {
    const float* z = logits + size_t(n) * classes;
    float* d = dlogits + size_t(n) * classes;
    const float lse = softmax_row(classes, z, d);
    if (probs)
      for (int c = 0; c < classes; ++c) probs[size_t(n) * classes + c] = d[c];
    float l;
    if (label[n] == kUniformTarget) {
      float mean = 0.0f;
      for (int c = 0; c < classes; ++c) mean += z[c];
      l = lse - mean / classes;
      for (int c = 0; c < classes; ++c) d[c] -= 1.0f / classes;
    } else {
      l = lse - z[label[n]];
      d[label[n]] -= 1.0f;
    }
    local += double(weight[n]) * l;
    for (int c = 0; c < classes; ++c) d[c] *= weight[n];
  }
  const double total = block_sum(local);
  if (threadIdx.x == 0) *loss = total;
}

__global__ void softmax_kernel(int batch, int classes, const float* __restrict__ logits, float* __restrict__ probs) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n < batch) softmax_row(classes, logits + size_t(n) * classes, probs + size_t(n) * classes);
}

// One block: each thread counts its rows; the count is an integer, so the sum is exact in any order.
__global__ void step_stats_kernel(int rows, int classes, const float* __restrict__ probs,
                                  const int32_t* __restrict__ label, const double* loss, double* stats) {
  double correct = 0.0;
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    const float* p = probs + size_t(r) * classes;
    int best = 0;
    for (int c = 1; c < classes; ++c)
      if (p[c] > p[best]) best = c;
    correct += best == label[r] ? 1.0 : 0.0;
  }
  const double total = block_sum(correct);
  if (threadIdx.x == 0) {
    stats[0] += *loss;
    stats[1] += total;
  }
}

}  // namespace

void softmax_xent(int batch, int classes, const float* logits, const int32_t* label, const float* weight,
                  float* dlogits, float* probs, double* loss, cudaStream_t stream) {
  AWARE_LAUNCH(softmax_xent_kernel, 1, kThreads, 0, stream)(batch, classes, logits, label, weight, dlogits, probs, loss);
  AWARE_CUDA_LAUNCHED();
}

void softmax(int batch, int classes, const float* logits, float* probs, cudaStream_t stream) {
  AWARE_LAUNCH(softmax_kernel, blocks_for(size_t(batch), kThreads), kThreads, 0, stream)(batch, classes, logits, probs);
  AWARE_CUDA_LAUNCHED();
}

void step_stats(int rows, int classes, const float* probs, const int32_t* label, const double* loss, double* stats,
                cudaStream_t stream) {
  AWARE_LAUNCH(step_stats_kernel, 1, kThreads, 0, stream)(rows, classes, probs, label, loss, stats);
  AWARE_CUDA_LAUNCHED();
}

}  // namespace aware::cuda
