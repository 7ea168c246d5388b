// CUDA twin of kernels/cpu/linear.cpp: y = x W^T + b (+ ReLU). The products go through cuBLAS (the
// right tool for a 1440 x 300 GEMM); bias, ReLU and the bias gradient are small kernels of ours.
// Row-major arrays seen by column-major cuBLAS are their transposes, hence the operand order below.
// Bound: FLOPs of the GEMMs at large batch (2 x in x out per row), launches at batch 100.
#include <cublas_v2.h>

#include "kernels/cuda/common.cuh"
#include "kernels/linear.h"

namespace aware::cuda {
namespace {

const char* cublas_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
  }
}
#define AWARE_CUBLAS_CHECK(call)                                                                       \
  do {                                                                                                 \
    const cublasStatus_t status_ = (call);                                                             \
    check(status_ == CUBLAS_STATUS_SUCCESS, std::string("cuBLAS: ") + #call + ": " + cublas_name(status_)); \
  } while (0)

__global__ void bias_relu_kernel(int batch, int out, bool relu, const float* __restrict__ b, float* __restrict__ y) {
  const size_t total = size_t(batch) * out;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const float v = y[i] + b[i % out];
    y[i] = relu ? fmaxf(v, 0.0f) : v;
  }
}

__global__ void relu_mask_kernel(size_t n, const float* __restrict__ y, float* __restrict__ dy) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    if (!(y[i] > 0.0f)) dy[i] = 0.0f;
}

// db[j] = sum over rows of dy[row][j], rows in order: one thread per column, deterministic.
__global__ void bias_grad_kernel(int batch, int out, const float* __restrict__ dy, float* __restrict__ db) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= out) return;
  float s = 0.0f;
  for (int r = 0; r < batch; ++r) s += dy[size_t(r) * out + j];
  db[j] = s;
}

}  // namespace

void linear_forward(cublasHandle_t handle, int batch, int in, int out, bool relu, const float* x, const float* w,
                    const float* b, float* y, cudaStream_t stream) {
  const float one = 1.0f, zero = 0.0f;
  AWARE_CUBLAS_CHECK(cublasSetStream(handle, stream));
  // y^T [out x batch] = W [out x in] x^T: column-major W^T is W's row-major storage.
  AWARE_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, batch, in, &one, w, in, x, in, &zero, y, out));
  const size_t n = size_t(batch) * out;
  AWARE_LAUNCH(bias_relu_kernel, std::min(blocks_for(n, 256), 4096), 256, 0, stream)(batch, out, relu, b, y);
  AWARE_CUDA_LAUNCHED();
}

void linear_backward(cublasHandle_t handle, int batch, int in, int out, bool relu, const float* x, const float* w,
                     const float* y, float* dy, float* dx, float* dw, float* db, cudaStream_t stream) {
  const float one = 1.0f, zero = 0.0f;
  AWARE_CUBLAS_CHECK(cublasSetStream(handle, stream));
  const size_t n = size_t(batch) * out;
  if (relu) {
    AWARE_LAUNCH(relu_mask_kernel, std::min(blocks_for(n, 256), 4096), 256, 0, stream)(n, y, dy);
    AWARE_CUDA_LAUNCHED();
  }
  AWARE_LAUNCH(bias_grad_kernel, blocks_for(size_t(out), 128), 128, 0, stream)(batch, out, dy, db);
  AWARE_CUDA_LAUNCHED();
  // dW [out][in] = dy^T x: column-major [in x out] = x^T (col [in x batch]) times dy (col [out x batch])^T.
  AWARE_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, in, out, batch, &one, x, in, dy, out, &zero, dw, in));
  // dx [batch][in] = dy W: column-major [in x batch] = W^T (col [in x out]) times dy^T (col [out x batch]).
  if (dx)
    AWARE_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, in, batch, out, &one, w, in, dy, out, &zero, dx, in));
}

}  // namespace aware::cuda
