#include "kernels/gather.h"

#include <cstddef>

#include "kernels/bf16.h"

namespace aware::cpu {
namespace {

template <class T>
void gather_rows(int rows, int row_size, const T* in, const int64_t* index, const float* row_scale,
                 const float* col_shift, const float* col_scale, float* out) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; ++i) {
    const T* src = in + size_t(index[i]) * row_size;
    const float scale = row_scale[index[i]];
    float* dst = out + size_t(i) * row_size;
    for (int j = 0; j < row_size; ++j) dst[j] = (widen(src[j]) * scale - col_shift[j]) * col_scale[j];
  }
}

}  // namespace

void gather_normalise(int rows, int row_size, const void* in, bool in_bf16, const int64_t* index,
                      const float* row_scale, const float* col_shift, const float* col_scale,
                      float* out) {
  if (in_bf16)
    gather_rows(rows, row_size, static_cast<const bf16*>(in), index, row_scale, col_shift, col_scale, out);
  else
    gather_rows(rows, row_size, static_cast<const float*>(in), index, row_scale, col_shift, col_scale, out);
}

}  // namespace aware::cpu
