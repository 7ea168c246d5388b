// cuBLAS SGEMM on the host: cuBLAS's column-major C = alpha op(A) op(B) + beta C, its arguments checked
// as cuBLAS checks them (sizes, leading dimensions, device pointers), computed by OpenBLAS when the
// stream reaches it. In TF32 mode the inputs are rounded to TF32 (10 mantissa bits, to nearest) first,
// as tensor cores read them, so the TF32 tests meet TF32's error.
#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <vector>

#include <cublas_v2.h>

#include "cuda_emu/internal.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

float to_tf32(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7f800000u) == 0x7f800000u) return f;  // Inf and NaN as they are
  u += 0x0fffu + ((u >> 13) & 1u);                 // to nearest even at bit 13
  return std::bit_cast<float>(u & 0xffffe000u);
}

// A column-major matrix of `rows` x `cols` with leading dimension ld, as a device range.
bool device_matrix(const float* p, int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return true;
  return aware_emu::is_device_pointer(p, (size_t(cols - 1) * ld + rows) * sizeof(float));
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
  const int a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
  // cuBLAS's own checks: non-negative sizes, leading dimensions at least the stored rows.
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m) ||
      !alpha || !beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  // What a GPU would fault on: an operand that is not device memory, or runs past its allocation.
  if (!device_matrix(A, a_rows, a_cols, lda) || !device_matrix(B, b_rows, b_cols, ldb) || !device_matrix(C, m, n, ldc)) {
    std::fprintf(stderr, "aware CUDA emulation: cublasSgemm: an operand is not inside one device allocation\n");
    aware_emu::kernel_fault("cublasSgemm: an operand is not inside one device allocation");
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = *alpha, b = *beta;
  const bool tf32 = handle->math == CUBLAS_TF32_TENSOR_OP_MATH;
  aware_emu::enqueue(handle->stream, [=] {
    const float *pa = A, *pb = B;
    std::vector<float> ra, rb;
    if (tf32 && k > 0) {  // every stored element of the operands, rounded
      ra.assign(A, A + size_t(a_cols - 1) * lda + a_rows);
      rb.assign(B, B + size_t(b_cols - 1) * ldb + b_rows);
      for (float& v : ra) v = to_tf32(v);
      for (float& v : rb) v = to_tf32(v);
      pa = ra.data(), pb = rb.data();
    }
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, a, pa, lda, pb,
                ldb, b, C, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}
