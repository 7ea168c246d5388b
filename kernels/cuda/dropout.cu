// CUDA twin of kernels/cpu/dropout.cpp: the same counter-based Philox mask (kernels/philox.h), so the
// same seed, stream and element index keep or drop the same element on both backends.
// Bound: bytes (read and write each element once); Philox's 10 rounds are cheap beside them.
#include "kernels/cuda/common.cuh"
#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace aware::cuda {
namespace {

// The stream of the mask: `stream_id`, or in a captured step graph (step != null) (*step << 8) | node,
// the step read from device memory since the graph is replayed unchanged.
__global__ void dropout_kernel(size_t n, float rate, uint64_t seed, uint64_t stream_id, const uint64_t* __restrict__ step,
                               uint64_t first, const float* __restrict__ in, float* __restrict__ out) {
  const uint64_t stream = step ? (*step << 8) | (stream_id & 0xFF) : stream_id;
  const float keep_scale = 1.0f / (1.0f - rate);
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = philox_uniform(seed, stream, first + i) >= rate ? in[i] * keep_scale : 0.0f;
}

void launch(size_t n, float rate, uint64_t seed, uint64_t stream_id, const uint64_t* step, uint64_t first,
            const float* in, float* out, cudaStream_t stream) {
  if (n == 0) return;
  AWARE_LAUNCH(dropout_kernel, std::min(blocks_for(n, 256), 65535), 256, 0, stream)(n, rate, seed, stream_id, step, first, in, out);
  AWARE_CUDA_LAUNCHED();
}

}  // namespace

void dropout_graph(size_t n, float rate, uint64_t seed, const uint64_t* step, uint32_t node, uint64_t first,
                   const float* in, float* out, cudaStream_t stream) {
  launch(n, rate, seed, node, step, first, in, out, stream);
}

void dropout(size_t n, float rate, uint64_t seed, uint64_t stream_id, uint64_t first, const float* in, float* out,
             cudaStream_t stream) {
  launch(n, rate, seed, stream_id, nullptr, first, in, out, stream);
}

}  // namespace aware::cuda
