// CUDA twin of kernels/cpu/gather.cpp: the batch gathered by index from the device-resident data set,
// with the per-event normalisation fused in. One block per row. Bound: bytes (one read, one write;
// BF16 events halve the read).
#include "kernels/bf16.h"
#include "kernels/cuda/common.cuh"
#include "kernels/gather.h"

namespace aware::cuda {
namespace {

template <class T>
__global__ void gather_kernel(int row_size, const T* __restrict__ in, const int64_t* __restrict__ index,
                              const float* __restrict__ row_scale, const float* __restrict__ col_shift,
                              const float* __restrict__ col_scale, float* __restrict__ out) {
  const int64_t r = index[blockIdx.x];
  const T* src = in + size_t(r) * row_size;
  const float scale = row_scale[r];
  float* dst = out + size_t(blockIdx.x) * row_size;
  for (int j = threadIdx.x; j < row_size; j += blockDim.x)
    dst[j] = (widen(src[j]) * scale - col_shift[j]) * col_scale[j];
}

}  // namespace

void gather_normalise(int rows, int row_size, const void* in, bool in_bf16, const int64_t* index, const float* row_scale,
                      const float* col_shift, const float* col_scale, float* out, cudaStream_t stream) {
  if (rows == 0) return;
  if (in_bf16)
    AWARE_LAUNCH(gather_kernel, rows, 128, 0, stream)(row_size, static_cast<const bf16*>(in), index, row_scale, col_shift,
                                            col_scale, out);
  else
    AWARE_LAUNCH(gather_kernel, rows, 128, 0, stream)(row_size, static_cast<const float*>(in), index, row_scale, col_shift,
                                            col_scale, out);
  AWARE_CUDA_LAUNCHED();
}

}  // namespace aware::cuda
