// Batch gather with the normalisation fused in:
// out[i][j] = (in[index[i]][j] * row_scale[index[i]] - col_shift[j]) * col_scale[j].
// Images: row_scale = 1 / pixel sum, col_scale = the global scale, col_shift = 0.
// Features: row_scale = 1, col_shift = mean, col_scale = 1 / standard deviation.
#pragma once
#include <cstdint>

namespace aware::cpu {

void gather_normalise(int rows, int row_size, const float* in, const int64_t* index,
                      const float* row_scale, const float* col_shift, const float* col_scale,
                      float* out);

}  // namespace aware::cpu

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/
#include <cuda_runtime_api.h>
namespace aware::cuda {
void gather_normalise(int rows, int row_size, const float* in, const int64_t* index, const float* row_scale,
                      const float* col_shift, const float* col_scale, float* out, cudaStream_t stream);
}  // namespace aware::cuda
#endif
