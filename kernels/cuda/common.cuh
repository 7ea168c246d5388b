// Shared by the CUDA kernels: error checks and a deterministic block reduction.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "kernels/error.h"

namespace aware::cuda {

// Every CUDA call is checked; the message names the call and where it was made.
inline void check_cuda(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess)
    throw Error(std::string("CUDA error: ") + what + ": " + cudaGetErrorString(status) + " (" + file + ":" +
                std::to_string(line) + ")");
}
#define AWARE_CUDA_CHECK(call) ::aware::cuda::check_cuda((call), #call, __FILE__, __LINE__)
// After a launch: a bad configuration is reported at once, not at the next synchronisation.
#define AWARE_CUDA_LAUNCHED() ::aware::cuda::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

// One source for nvcc and the CUDA emulation (tests/cuda_emu, docs/gpu.md), which compiles these files
// as host C++: a launch, and shared memory, are spelled through these macros.
//   AWARE_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...)  is  kernel<<<...>>>(args...)
//   AWARE_SHARED(T, name, N);          is  __shared__ T name[N];   (one per block)
//   AWARE_DYNAMIC_SHARED(T, name);     is  extern __shared__ T name[];  (the launch's size)
#if defined(AWARE_CUDA_EMULATION)
#define AWARE_LAUNCH(kernel, grid, block, shared_bytes, stream) AWARE_EMU_LAUNCH(kernel, grid, block, shared_bytes, stream)
#define AWARE_SHARED(T, name, N)               \
  static const char name##_aware_emu_key = 0; \
  T(&name)[N] = *static_cast<T(*)[N]>(::aware_emu::static_shared(&name##_aware_emu_key, sizeof(T) * (N)))
#define AWARE_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::aware_emu::dynamic_shared())
#else
#define AWARE_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#define AWARE_SHARED(T, name, N) __shared__ T name[N]
#define AWARE_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

inline int blocks_for(size_t n, int threads) { return int((n + size_t(threads) - 1) / size_t(threads)); }

// Sum of one value per thread over the block (blockDim.x a multiple of 32, at most 1024), in a fixed
// order: the result does not depend on timing. Every thread of the block must call it; the total is
// returned to all of them.
template <class T>
__device__ T block_sum(T v) {
  AWARE_SHARED(T, warp_sums, 32);
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // warp_sums may still be read by a previous call
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = lane < warps ? warp_sums[lane] : T(0);
  if (warp == 0)
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  __syncthreads();  // every warp has read its slot before slot 0 is overwritten
  if (threadIdx.x == 0) warp_sums[0] = v;
  __syncthreads();
  return warp_sums[0];
}

template <class T>
__global__ void set_value_kernel(T* where, T value) {
  *where = value;
}
// Writes one value to device memory as a kernel (its argument is copied at launch: no host buffer
// has to outlive the call, and no synchronisation is needed).
template <class T>
void set_value(T* where, T value, cudaStream_t stream) {
  AWARE_LAUNCH(set_value_kernel, 1, 1, 0, stream)(where, value);
  check_cuda(cudaGetLastError(), "set_value launch", __FILE__, __LINE__);
}

}  // namespace aware::cuda
