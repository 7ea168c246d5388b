// The CUDA runtime API as the CUDA emulation provides it (tests/cuda_emu, docs/gpu.md): the subset of
// types, enums and calls that aware's CUDA sources use, with CUDA's names and numeric values, and the
// device-side built-ins (threadIdx, __syncthreads, shuffles, atomics) that the kernels use. The CUDA
// sources compile against this header as host C++ (g++) when AWARE_CUDA_EMULATION is set; the nvcc
// build never sees it.
#pragma once
#include <math.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <source_location>
#include <string>
#include <type_traits>

// ---- types and enums (numeric values as in CUDA 13's driver_types.h) ---------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorUnknown = 999,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
constexpr unsigned cudaStreamDefault = 0x00, cudaStreamNonBlocking = 0x01;
constexpr unsigned cudaEventDefault = 0x00, cudaEventDisableTiming = 0x02;

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int warpSize;
  int multiProcessorCount;
  int major, minor;
};
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
typedef struct CUgraph_st* cudaGraph_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;

// ---- host API (tests/cuda_emu/runtime.cpp) ------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
template <class T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
template <class T>
cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

// CUDA takes the kernel's address; the emulation keys a kernel by its name, as the launch does
// (AWARE_LAUNCH in kernels/cuda/common.cuh), so this is a macro.
#define cudaFuncSetAttribute(kernel, attr, value) ::aware_emu::set_function_attribute(#kernel, attr, value)

// ---- the emulation's own interface (tests/cuda_emu/threads.cpp, runtime.cpp) --------------------------
namespace aware_emu {

// The launch (AWARE_LAUNCH): the configuration, and the kernel with its arguments copied, as CUDA
// copies them at the launch.
struct LaunchSite {
  const char* kernel;
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
  std::source_location where;
};
void launch(const LaunchSite& site, std::function<void()> body);
template <class Body>
struct BoundLaunch {
  LaunchSite site;
  Body body;
  template <class... Args>
  void operator()(Args... args) const {
    launch(site, [body = body, args...]() { body(args...); });
  }
};
struct LaunchStart {
  LaunchSite site;
  template <class Body>
  BoundLaunch<Body> operator%(Body body) const {
    return {site, body};
  }
};
cudaError_t set_function_attribute(const char* kernel, cudaFuncAttribute attr, int value);

// The running thread's coordinates: the scheduler switches them with the fiber.
struct ThreadCoordinates {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};
extern ThreadCoordinates* current;

// Shared memory of the running block: dynamic (the launch's size), and each static declaration
// (`key`: the address of a static local, one per declaration and template instantiation).
void* dynamic_shared();
void* static_shared(const void* key, size_t bytes);

void sync_threads(std::source_location where);
void sync_warp(unsigned mask, std::source_location where);
// The 32 lanes of a warp meet: every lane in `mask` gives 8 bytes and receives the bytes of lane
// `source(lane)` (its own where the source is out of range).
uint64_t warp_exchange(unsigned mask, uint64_t value, int source, std::source_location where);
unsigned warp_ballot(unsigned mask, bool predicate, std::source_location where);

// For tests: what the emulation has found (the message of the last fault of a kernel), and the device
// memory in use.
std::string last_fault();
size_t device_allocations();
size_t device_bytes();
size_t live_handles();  // streams and events not destroyed
// Host-to-device cudaMemcpyAsync calls from pageable memory so far: on a GPU they hold the host until
// the copy is done, so they overlap nothing.
size_t pageable_async_copies();
// Thread orders the scheduler runs a block's threads (and the blocks) in; AWARE_EMU_ORDER=reverse sets it for a whole process.
enum class Order { forward, reverse };
void set_order(Order order);
void reset_order();  // to AWARE_EMU_ORDER's
bool is_device_pointer(const void* p, size_t bytes);

}  // namespace aware_emu

#define AWARE_EMU_LAUNCH(kernel, grid, block, shared, stream)                                               \
  (::aware_emu::LaunchStart{{#kernel, dim3(grid), dim3(block), size_t(shared), (stream),                    \
                             std::source_location::current()}} %                                            \
   [](auto... aware_emu_args) { kernel(aware_emu_args...); })

// ---- device code ----------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// Shared memory goes through AWARE_SHARED / AWARE_DYNAMIC_SHARED (kernels/cuda/common.cuh): a plain
// `__shared__` would be one variable for every block.
#define __shared__ static_assert(false, "declare shared memory with AWARE_SHARED or AWARE_DYNAMIC_SHARED");

#define threadIdx (::aware_emu::current->thread)
#define blockIdx (::aware_emu::current->block)
#define blockDim (::aware_emu::current->block_dim)
#define gridDim (::aware_emu::current->grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads(std::source_location where = std::source_location::current()) {
  ::aware_emu::sync_threads(where);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location where = std::source_location::current()) {
  ::aware_emu::sync_warp(mask, where);
}

namespace aware_emu {
template <class T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  return bits;
}
template <class T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
inline int lane_id() { return int(current->thread.x + current->block_dim.x * (current->thread.y + current->block_dim.y * current->thread.z)) & 31; }
}  // namespace aware_emu

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32,
              std::source_location where = std::source_location::current()) {
  const int lane = aware_emu::lane_id(), base = lane & ~(width - 1);
  return aware_emu::from_bits<T>(aware_emu::warp_exchange(mask, aware_emu::to_bits(v), base + (src & (width - 1)), where));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                   std::source_location where = std::source_location::current()) {
  const int lane = aware_emu::lane_id(), source = (lane & (width - 1)) + int(delta) < width ? lane + int(delta) : lane;
  return aware_emu::from_bits<T>(aware_emu::warp_exchange(mask, aware_emu::to_bits(v), source, where));
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                 std::source_location where = std::source_location::current()) {
  const int lane = aware_emu::lane_id(), source = (lane & (width - 1)) >= int(delta) ? lane - int(delta) : lane;
  return aware_emu::from_bits<T>(aware_emu::warp_exchange(mask, aware_emu::to_bits(v), source, where));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                  std::source_location where = std::source_location::current()) {
  // As PTX's bfly: a source in a later group of `width` lanes gives the lane's own value.
  const int lane = aware_emu::lane_id(), source = lane ^ lane_mask;
  return aware_emu::from_bits<T>(
      aware_emu::warp_exchange(mask, aware_emu::to_bits(v), source < 32 && source <= (lane | (width - 1)) ? source : lane, where));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  return aware_emu::warp_ballot(mask, predicate != 0, where);
}
inline int __any_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  return aware_emu::warp_ballot(mask, predicate != 0, where) != 0;
}
inline int __all_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  return (aware_emu::warp_ballot(mask, predicate != 0, where) & mask) == mask;
}

// Atomics: real atomic operations (ThreadSanitizer sees them as such); blocks may run on any thread.
template <class T>
T atomicAdd(T* address, T value) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
  } else {
    std::atomic_ref<T> a(*address);
    T old = a.load(std::memory_order_relaxed);
    while (!a.compare_exchange_weak(old, old + value, std::memory_order_relaxed)) {
    }
    return old;
  }
}
inline float atomicAdd(float* address, float value) { return atomicAdd<float>(address, value); }
inline double atomicAdd(double* address, double value) { return atomicAdd<double>(address, value); }
template <class T>
T atomicMax(T* address, T value) {
  std::atomic_ref<T> a(*address);
  T old = a.load(std::memory_order_relaxed);
  while (old < value && !a.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}

// Device math that has no host spelling; the _rn operations round each step (the emulated .cu files
// are compiled with -ffp-contract=off, so nothing is fused that CUDA would not fuse).
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline unsigned __float_as_uint(float f) { return std::bit_cast<unsigned>(f); }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
