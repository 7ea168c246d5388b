// Inverted dropout with a counter-based mask: element i is kept when
// philox_uniform(seed, stream, first + i) >= rate, and scaled by 1 / (1 - rate). `first` places the
// elements in the global batch, so that a rank of a data-parallel job draws the masks one process
// would draw for the same rows. The backward pass is the
// same call on the gradient (the mask is redrawn, so nothing is stored); the CUDA twin draws the
// identical mask.
#pragma once
#include <cstddef>
#include <cstdint>

namespace aware::cpu {

void dropout(size_t n, float rate, uint64_t seed, uint64_t stream, uint64_t first, const float* in,
             float* out);

}  // namespace aware::cpu

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/
#include <cuda_runtime_api.h>
namespace aware::cuda {
void dropout(size_t n, float rate, uint64_t seed, uint64_t stream_id, uint64_t first, const float* in, float* out,
             cudaStream_t stream);
// The same mask with the stream (step << 8) | node, the step read from device memory (step graphs).
void dropout_graph(size_t n, float rate, uint64_t seed, const uint64_t* step, uint32_t node, uint64_t first,
                   const float* in, float* out, cudaStream_t stream);
}  // namespace aware::cuda
#endif
