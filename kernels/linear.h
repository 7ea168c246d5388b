// Dense layer y = x W^T + b, optional ReLU. x: [batch][in], W: [out][in], y: [batch][out].
#pragma once

namespace aware::cpu {

void linear_forward(int batch, int in, int out, bool relu, const float* x, const float* w,
                    const float* b, float* y);

// dy is the gradient of y and is overwritten by the gradient of the pre-activation (ReLU masked).
// dx may be null. dw, db are overwritten.
void linear_backward(int batch, int in, int out, bool relu, const float* x, const float* w,
                     const float* y, float* dy, float* dx, float* dw, float* db);

}  // namespace aware::cpu

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/
#include <cublas_v2.h>
namespace aware::cuda {
void linear_forward(cublasHandle_t handle, int batch, int in, int out, bool relu, const float* x, const float* w,
                    const float* b, float* y, cudaStream_t stream);
void linear_backward(cublasHandle_t handle, int batch, int in, int out, bool relu, const float* x, const float* w,
                     const float* y, float* dy, float* dx, float* dw, float* db, cudaStream_t stream);
}  // namespace aware::cuda
#endif
