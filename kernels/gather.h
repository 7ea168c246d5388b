// Batch gather with the normalisation fused in:
// out[i][j] = (in[index[i]][j] * row_scale[index[i]] - col_shift[j]) * col_scale[j].
// Images: row_scale = 1 / pixel sum, col_scale = the global scale, col_shift = 0.
// Features: row_scale = 1, col_shift = mean, col_scale = 1 / standard deviation.
// `in` holds floats, or BF16 values when in_bf16 (--precision bf16: the events stored in half the
// bytes, widened here; the normalisation factors stay FP32, computed from the full-precision events).
#pragma once
#include <cstdint>

namespace aware::cpu {

void gather_normalise(int rows, int row_size, const void* in, bool in_bf16, const int64_t* index,
                      const float* row_scale, const float* col_shift, const float* col_scale,
                      float* out);

}  // namespace aware::cpu

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/
#include <cuda_runtime_api.h>
namespace aware::cuda {
void gather_normalise(int rows, int row_size, const void* in, bool in_bf16, const int64_t* index, const float* row_scale,
                      const float* col_shift, const float* col_scale, float* out, cudaStream_t stream);
}  // namespace aware::cuda
#endif
