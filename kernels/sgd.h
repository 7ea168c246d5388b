// SGD with momentum and weight decay over the flat parameter buffer, PyTorch's convention:
// g += weight_decay * w;  v = momentum * v + g;  w -= lr * v.
#pragma once
#include <cstddef>

namespace aware::cpu {

void sgd_update(size_t n, float lr, float momentum, float weight_decay, float* w, const float* g,
                float* v);

}  // namespace aware::cpu

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/
#include <cuda_runtime_api.h>
namespace aware::cuda {
void sgd_update(size_t n, float lr, float momentum, float weight_decay, float* w, const float* g, float* v,
                cudaStream_t stream);
}  // namespace aware::cuda
#endif
