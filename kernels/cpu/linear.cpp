// CPU twin of the dense layer: three GEMMs (OpenBLAS, threaded over the output, which keeps the
// summation order of every element fixed) and the bias/ReLU epilogue.
#include "kernels/linear.h"

#include <cblas.h>

#include <algorithm>

namespace aware::cpu {

void linear_forward(int batch, int in, int out, bool relu, const float* x, const float* w,
                    const float* b, float* y) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0f, x, in, w, in, 0.0f, y,
              out);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < batch; ++n) {
    float* row = y + size_t(n) * out;
    if (relu)
      for (int j = 0; j < out; ++j) row[j] = std::max(row[j] + b[j], 0.0f);
    else
      for (int j = 0; j < out; ++j) row[j] += b[j];
  }
}

void linear_backward(int batch, int in, int out, bool relu, const float* x, const float* w,
                     const float* y, float* dy, float* dx, float* dw, float* db) {
  if (relu)
    for (size_t i = 0; i < size_t(batch) * out; ++i) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  // db[j] = sum_n dy[n][j], summed in batch order.
  std::fill(db, db + out, 0.0f);
  for (int n = 0; n < batch; ++n)
    for (int j = 0; j < out; ++j) db[j] += dy[size_t(n) * out + j];
  // dW[out][in] = dy^T[out][batch] x[batch][in]
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, batch, 1.0f, dy, out, x, in, 0.0f,
              dw, in);
  // dx[batch][in] = dy[batch][out] W[out][in]
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, in, out, 1.0f, dy, out, w, in,
                0.0f, dx, in);
}

}  // namespace aware::cpu
