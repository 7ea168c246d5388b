#include "kernels/gather.h"

#include <cstddef>

namespace aware::cpu {

void gather_normalise(int rows, int row_size, const float* in, const int64_t* index,
                      const float* row_scale, const float* col_shift, const float* col_scale,
                      float* out) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; ++i) {
    const float* src = in + size_t(index[i]) * row_size;
    const float scale = row_scale[index[i]];
    float* dst = out + size_t(i) * row_size;
    for (int j = 0; j < row_size; ++j) dst[j] = (src[j] * scale - col_shift[j]) * col_scale[j];
  }
}

}  // namespace aware::cpu
