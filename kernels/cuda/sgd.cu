// CUDA twin of kernels/cpu/sgd.cpp: one fused SGD-momentum (+ weight decay) update over the flat
// parameter buffer, PyTorch's convention. Bound: bytes (16 per parameter: read w, g, v; write w, v).
#include "kernels/cuda/common.cuh"
#include "kernels/sgd.h"

namespace aware::cuda {
namespace {

__global__ void sgd_kernel(size_t n, float lr, float momentum, float weight_decay, float* __restrict__ w,
                           const float* __restrict__ g, float* __restrict__ v) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float grad = g[i] + weight_decay * w[i];
    v[i] = momentum * v[i] + grad;
    w[i] -= lr * v[i];
  }
}

}  // namespace

void sgd_update(size_t n, float lr, float momentum, float weight_decay, float* w, const float* g, float* v,
                cudaStream_t stream) {
  if (n == 0) return;
  AWARE_LAUNCH(sgd_kernel, std::min(blocks_for(n, 256), 4096), 256, 0, stream)(n, lr, momentum, weight_decay, w, g, v);
  AWARE_CUDA_LAUNCHED();
}

}  // namespace aware::cuda
