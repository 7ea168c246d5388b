// The CUDA emulation's own checks (tests/cuda_emu, docs/gpu.md), each shown to fire on a planted bug and
// to stay quiet on the corrected code; the bugs it found in aware's CUDA code, each with the test that
// now covers it; and what needs the whole stack: two MPI ranks through the NCCL path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <cublas_v2.h>

#include "kernels/conv_relu_pool.h"
#include "kernels/cuda/common.cuh"
#include "model/train.h"
#include "mpi_run.h"
#include "runtime/backend.h"
#include "synthetic.h"
#include "ten_steps.h"
#include "tools/pipeline.h"

namespace aware {
namespace {

// Each test may leave a planted fault behind: cleared here, and the thread order set back.
class Emulation : public ::testing::Test {
 protected:
  void TearDown() override {
    cudaDeviceReset();
    aware_emu::reset_order();
  }
  template <class T>
  std::vector<T> read(const T* device, size_t n) {
    std::vector<T> v(n);
    EXPECT_EQ(cudaMemcpy(v.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }
};

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

__global__ void fill_kernel(float* out, float value) { out[blockIdx.x * blockDim.x + threadIdx.x] = value; }

__global__ void dynamic_shared_kernel(float* out) {
  AWARE_DYNAMIC_SHARED(float, smem);
  smem[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = smem[blockDim.x - 1 - threadIdx.x];
}

// ---- launch limits of sm_90 ------------------------------------------------------------------------------

TEST_F(Emulation, LaunchesOutsideSm90sLimitsFailAsOnAGpu) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 1024 * sizeof(float)), cudaSuccess);
  AWARE_LAUNCH(fill_kernel, 1, 1024, 0, nullptr)(d, 1.0f);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  AWARE_LAUNCH(fill_kernel, 1, 1025, 0, nullptr)(d, 1.0f);  // planted: 1025 threads
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  AWARE_LAUNCH(fill_kernel, dim3(1, 1, 1), dim3(1, 1, 65), 0, nullptr)(d, 1.0f);  // block z over 64
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  AWARE_LAUNCH(fill_kernel, dim3(1, 65536), 1, 0, nullptr)(d, 1.0f);  // planted: gridDim.y over 65535
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  AWARE_LAUNCH(fill_kernel, 0, 32, 0, nullptr)(d, 1.0f);  // an empty grid
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  // Dynamic shared memory: 48 KB without the opt-in, up to 227 KB with it.
  AWARE_LAUNCH(dynamic_shared_kernel, 1, 32, 48 * 1024, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  AWARE_LAUNCH(dynamic_shared_kernel, 1, 32, 48 * 1024 + 4, nullptr)(d);  // planted: no opt-in
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 * 1024),
            cudaSuccess);
  AWARE_LAUNCH(dynamic_shared_kernel, 1, 32, 100 * 1024, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 * 1024),
            cudaErrorInvalidValue);
  cudaGetLastError();
  EXPECT_EQ(read(d, 32)[0], 31.0f);
  cudaFree(d);
}

// 40 KB of static shared memory, and as much dynamic as the launch gives.
__global__ void static_and_dynamic_kernel(float* out) {
  AWARE_SHARED(float, big, 10 * 1024);
  AWARE_DYNAMIC_SHARED(float, more);
  big[threadIdx.x] = more[threadIdx.x] = 1.0f;
  out[threadIdx.x] = big[threadIdx.x] + more[threadIdx.x];
}

TEST_F(Emulation, StaticSharedMemoryCountsAgainstTheLimit) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 32 * sizeof(float)), cudaSuccess);
  AWARE_LAUNCH(static_and_dynamic_kernel, 1, 32, 8 * 1024, nullptr)(d);  // 48 KB in all: fine
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  AWARE_LAUNCH(static_and_dynamic_kernel, 1, 32, 10 * 1024, nullptr)(d);  // planted: 50 KB, no opt-in
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_TRUE(has(aware_emu::last_fault(), "static")) << aware_emu::last_fault();
  cudaDeviceReset();
  ASSERT_EQ(cudaFuncSetAttribute(static_and_dynamic_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024),
            cudaSuccess);
  AWARE_LAUNCH(static_and_dynamic_kernel, 1, 32, 10 * 1024, nullptr)(d);  // with the opt-in
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(read(d, 32)[0], 2.0f);
  cudaFree(d);
}

// The bug it found: the fused conv put the batch in gridDim.y, so `aware score --batch 70000` could not
// launch. The batch now runs along x; 65,537 images, forward and backward, against the CPU twin.
TEST_F(Emulation, TheFusedConvRunsBatchesBeyondGridDimY) {
  ConvShape s;
  s.batch = 65'537, s.in_c = 1, s.in_h = 4, s.in_w = 4, s.out_c = 2, s.pad = 1, s.pool = true;
  auto cpu = make_backend("cpu"), gpu = make_backend("cuda");
  const auto x = testing::random_vector(size_t(s.batch) * s.in_size(), 1), w = testing::random_vector(s.weight_size(), 2);
  const auto b = testing::random_vector(size_t(s.out_c), 3), dy = testing::random_vector(size_t(s.batch) * s.out_size(), 4);
  std::vector<std::vector<float>> results[2];
  for (Backend* be : {cpu.get(), gpu.get()}) {
    const auto put = [&](const std::vector<float>& v) {
      void* p = be->allocate(v.size() * 4);
      be->to_device(p, v.data(), v.size() * 4);
      return static_cast<float*>(p);
    };
    float *dx_ = put(x), *dw_ = put(w), *db_ = put(b), *ddy = put(dy);
    float* act = static_cast<float*>(be->allocate(size_t(s.batch) * s.act_bytes()));
    float* y = static_cast<float*>(be->allocate(size_t(s.batch) * s.out_size() * 4));
    float* gx = static_cast<float*>(be->allocate(x.size() * 4));
    float* gw = static_cast<float*>(be->allocate(w.size() * 4));
    float* gb = static_cast<float*>(be->allocate(b.size() * 4));
    void* ws = be->allocate(be->conv_workspace_bytes(s));
    be->conv_relu_pool_forward(s, dx_, dw_, db_, act, y, ws);
    be->conv_relu_pool_backward(s, dx_, dw_, act, ddy, gx, gw, gb, ws);
    auto& r = results[be == gpu.get()];
    for (auto [p, n] : {std::pair{y, size_t(s.batch) * s.out_size()}, {gx, x.size()}, {gw, w.size()}}) {
      r.emplace_back(n);
      be->to_host(r.back().data(), p, n * 4);
    }
    for (void* p : {(void*)dx_, (void*)dw_, (void*)db_, (void*)ddy, (void*)act, (void*)y, (void*)gx, (void*)gw,
                    (void*)gb, ws})
      be->release(p);
  }
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  for (size_t k = 0; k < 3; ++k) {
    ASSERT_EQ(results[0][k].size(), results[1][k].size());
    double scale = 0;
    for (float v : results[0][k]) scale = std::max(scale, double(std::fabs(v)));
    size_t bad = 0;  // NaN (poison a block never overwrote) counts as bad
    for (size_t i = 0; i < results[0][k].size(); ++i)
      if (!(std::fabs(double(results[0][k][i]) - double(results[1][k][i])) <= 1e-5 * scale)) ++bad;
    EXPECT_EQ(bad, 0u) << "output " << k;
  }
}

// ---- a barrier or warp collective reached by part of the block -------------------------------------------

__global__ void partial_barrier_kernel(float* out, int reaching) {
  if (int(threadIdx.x) < reaching) __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void partial_shuffle_kernel(float* out, int lanes) {
  float v = float(threadIdx.x);
  if (int(threadIdx.x % 32) < lanes) v = __shfl_down_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

TEST_F(Emulation, ABarrierReachedByPartOfTheBlockFaults) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 64 * sizeof(float)), cudaSuccess);
  AWARE_LAUNCH(partial_barrier_kernel, 1, 64, 0, nullptr)(d, 64);  // every thread: fine
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  AWARE_LAUNCH(partial_barrier_kernel, 1, 64, 0, nullptr)(d, 16);  // planted: 16 of 64
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_TRUE(has(aware_emu::last_fault(), "only part of the block")) << aware_emu::last_fault();
  EXPECT_TRUE(has(aware_emu::last_fault(), "partial_barrier_kernel")) << aware_emu::last_fault();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure) << "the fault is sticky, as a GPU's";
  cudaDeviceReset();
  cudaFree(d);
}

TEST_F(Emulation, AShuffleReachedByPartOfItsMaskFaults) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 64 * sizeof(float)), cudaSuccess);
  AWARE_LAUNCH(partial_shuffle_kernel, 1, 64, 0, nullptr)(d, 32);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const auto v = read(d, 64);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[31], 31.0f);  // past the warp's end: its own value
  EXPECT_EQ(v[32], 33.0f);
  AWARE_LAUNCH(partial_shuffle_kernel, 1, 64, 0, nullptr)(d, 16);  // planted: 16 lanes of a full mask
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_TRUE(has(aware_emu::last_fault(), "warp collective")) << aware_emu::last_fault();
  cudaDeviceReset();
  AWARE_LAUNCH(partial_shuffle_kernel, 1, 48, 0, nullptr)(d, 32);  // planted: a full mask, 16-thread warp
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_TRUE(has(aware_emu::last_fault(), "lanes that do not exist")) << aware_emu::last_fault();
  cudaDeviceReset();
  cudaFree(d);
}

// Even and odd lanes shuffle among themselves at once (disjoint masks, legal from sm_70 on); then a
// butterfly sum over each half-warp (__shfl_xor_sync with width 16).
__global__ void split_mask_kernel(float* out) {
  const unsigned lane = threadIdx.x % 32, mask = lane % 2 ? 0xaaaaaaaau : 0x55555555u;
  float v = __shfl_sync(mask, float(threadIdx.x), int(lane % 2), 32);  // lane 0 or lane 1 of the warp
  float sum = float(lane);
  for (int offset = 8; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset, 16);
  out[threadIdx.x] = v * 1000.0f + sum;
}

TEST_F(Emulation, DisjointMasksAndWidthsFollowCuda) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 32 * sizeof(float)), cudaSuccess);
  AWARE_LAUNCH(split_mask_kernel, 1, 32, 0, nullptr)(d);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << aware_emu::last_fault();
  const auto v = read(d, 32);
  for (int lane = 0; lane < 32; ++lane)
    EXPECT_EQ(v[lane], float(lane % 2) * 1000.0f + (lane < 16 ? 120.0f : 376.0f)) << lane;  // 0+..+15, 16+..+31
  cudaFree(d);
}

// ---- races: results that depend on the thread order --------------------------------------------------------

// Each thread writes its slot, then reads its neighbour's: without the barrier, a race.
template <bool kBarrier>
__global__ void neighbour_kernel(float* out) {
  AWARE_SHARED(float, slot, 64);
  slot[threadIdx.x] = float(threadIdx.x);
  if (kBarrier) __syncthreads();
  out[threadIdx.x] = slot[(threadIdx.x + 1) % 64];
}

template <bool kBarrier>
std::vector<uint32_t> neighbour_bits(aware_emu::Order order) {
  aware_emu::set_order(order);
  float* d = nullptr;
  cudaMalloc(&d, 64 * sizeof(float));
  AWARE_LAUNCH(neighbour_kernel<kBarrier>, 1, 64, 0, nullptr)(d);
  std::vector<uint32_t> bits(64);
  cudaMemcpy(bits.data(), d, sizeof(float) * 64, cudaMemcpyDeviceToHost);
  cudaFree(d);
  return bits;
}

TEST_F(Emulation, AMissingBarrierChangesTheResultWithTheThreadOrder) {
  using aware_emu::Order;
  const auto racy_forward = neighbour_bits<false>(Order::forward), racy_reverse = neighbour_bits<false>(Order::reverse);
  EXPECT_NE(racy_forward, racy_reverse) << "planted race: the two orders must disagree";
  const auto fixed_forward = neighbour_bits<true>(Order::forward), fixed_reverse = neighbour_bits<true>(Order::reverse);
  EXPECT_EQ(fixed_forward, fixed_reverse);
  for (int t = 0; t < 64; ++t) EXPECT_EQ(std::bit_cast<float>(fixed_forward[t]), float((t + 1) % 64));
}

// aware's own kernels in both orders: ten training steps (every training kernel: conv forward and
// backward, dropout, linear, softmax/xent, step statistics, SGD, gather) end with the same weights,
// bit for bit; a kernel with a race between barriers would not.
TEST_F(Emulation, TrainingStepsGiveTheSameBitsInBothThreadOrders) {
  const auto dir = testing::fresh_dir("emu_orders");
  testing::write_synthetic_classes(dir / "data");
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  const Events events = load_events(cfg);
  std::vector<std::vector<float>> results;
  for (auto order : {aware_emu::Order::forward, aware_emu::Order::reverse}) {
    aware_emu::set_order(order);
    auto gpu = make_backend("cuda");
    results.push_back(testing::weights_after_ten_steps(*gpu, cfg, events, true));
  }
  EXPECT_EQ(results[0], results[1]);
  std::filesystem::remove_all(dir);
}

// ---- uninitialised and out-of-bounds memory --------------------------------------------------------------

__global__ void read_unwritten_shared_kernel(float* out) {
  AWARE_DYNAMIC_SHARED(float, smem);
  out[threadIdx.x] = smem[threadIdx.x] + 1.0f;  // planted: nothing wrote smem
}

TEST_F(Emulation, MemoryNothingWroteReadsAsPoison) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 32 * sizeof(float)), cudaSuccess);
  for (float v : read(d, 32)) EXPECT_TRUE(std::isnan(v)) << "fresh device memory";
  for (int32_t v : read(reinterpret_cast<int32_t*>(d), 32)) EXPECT_EQ(v, -1);
  AWARE_LAUNCH(read_unwritten_shared_kernel, 1, 32, 32 * sizeof(float), nullptr)(d);
  for (float v : read(d, 32)) EXPECT_TRUE(std::isnan(v)) << "unwritten shared memory";
  AWARE_LAUNCH(dynamic_shared_kernel, 1, 32, 32 * sizeof(float), nullptr)(d);  // written first: fine
  EXPECT_EQ(read(d, 32)[5], 26.0f);
  cudaFree(d);
}

TEST_F(Emulation, CopiesOutsideAnAllocationFail) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 16 * sizeof(float)), cudaSuccess);
  std::vector<float> host(17, 0.0f);
  EXPECT_EQ(cudaMemcpy(d, host.data(), 16 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, host.data(), 17 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), d + 1, 16 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d, host.data(), 4, cudaMemcpyDeviceToHost), cudaErrorInvalidValue) << "kind against pointers";
  EXPECT_EQ(cudaMemsetAsync(d + 8, 0, 9 * sizeof(float)), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(d + 1), cudaErrorInvalidValue);
  cudaGetLastError();
  cudaFree(d);
}

#if defined(__SANITIZE_ADDRESS__)
__global__ void shared_overflow_kernel(float* out) {
  AWARE_DYNAMIC_SHARED(float, smem);
  smem[threadIdx.x + 1] = 1.0f;  // planted: one past the end for the last thread
  out[0] = smem[1];
}
// With AddressSanitizer (scripts/sanitize.sh): shared memory is allocated to the launch's size.
TEST_F(Emulation, AddressSanitizerCatchesASharedMemoryOverflow) {
  EXPECT_DEATH(
      {
        float* d = nullptr;
        cudaMalloc(&d, 4);
        AWARE_LAUNCH(shared_overflow_kernel, 1, 32, 32 * sizeof(float), nullptr)(d);
      },
      "heap-buffer-overflow");
}
#endif

// ---- graph capture -----------------------------------------------------------------------------------------

__global__ void add_one_kernel(float* v) { v[threadIdx.x] += 1.0f; }

TEST_F(Emulation, IllegalWorkDuringACaptureInvalidatesIt) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 4 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d, 0, 4 * sizeof(float), s), cudaSuccess);
  cudaEvent_t e = nullptr;
  cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
  // A legal capture: recorded, not run; each replay runs it.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  AWARE_LAUNCH(add_one_kernel, 1, 4, 0, s)(d);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  EXPECT_EQ(read(d, 4)[0], 0.0f);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaGraphLaunch(exec, s);
  cudaGraphLaunch(exec, s);
  EXPECT_EQ(read(d, 4)[3], 2.0f);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  // Planted: what a GPU refuses inside a capture.
  float host[4];
  void* scratch = nullptr;
  const std::vector<std::pair<const char*, std::function<cudaError_t()>>> illegal{
      {"cudaMalloc", [&] { return cudaMalloc(&scratch, 16); }},
      {"cudaMemcpy", [&] { return cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost); }},
      {"cudaStreamSynchronize", [&] { return cudaStreamSynchronize(s); }},
      {"cudaDeviceSynchronize", [&] { return cudaDeviceSynchronize(); }},
      {"cudaEventSynchronize", [&] { return cudaEventSynchronize(e); }}};
  for (const auto& [name, call] : illegal) {
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess) << name;
    cudaEventRecord(e, s);  // an event of the capture
    EXPECT_EQ(call(), cudaErrorStreamCaptureUnsupported) << name;
    EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated) << name;
    EXPECT_EQ(graph, nullptr) << name;
    cudaGetLastError();
  }
  // Legal during a capture: waiting for a stream outside it; in relaxed mode, an allocation.
  cudaStream_t side = nullptr;
  cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(side), cudaSuccess);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  cudaGraphDestroy(graph);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&scratch, 16), cudaSuccess);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  cudaGraphDestroy(graph);
  cudaFree(scratch);
  // Planted: a launch that fails inside a capture invalidates it.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  AWARE_LAUNCH(add_one_kernel, 1, 2048, 0, s)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();
  // A capture on s that forks `side` into it and gives it work.
  const auto capture_with_fork = [&] {
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    cudaEventRecord(e, s);
    cudaStreamWaitEvent(side, e, 0);
    AWARE_LAUNCH(add_one_kernel, 1, 4, 0, side)(d);
  };
  // Planted: the origin never joins the forked stream's work.
  capture_with_fork();
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureUnjoined);
  cudaGetLastError();
  // Joined back, the same is legal.
  capture_with_fork();
  cudaEvent_t join = nullptr;
  cudaEventCreateWithFlags(&join, cudaEventDisableTiming);
  cudaEventRecord(join, side);
  cudaStreamWaitEvent(s, join, 0);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  cudaGraphDestroy(graph);
  for (cudaEvent_t ev : {e, join}) cudaEventDestroy(ev);
  for (cudaStream_t st : {s, side}) cudaStreamDestroy(st);
  cudaFree(d);
}

// ---- cuBLAS's argument checks -----------------------------------------------------------------------------

TEST_F(Emulation, CublasRefusesWhatCublasRefuses) {
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  float *a = nullptr, *b = nullptr, *c = nullptr;
  cudaMalloc(&a, 6 * 4), cudaMalloc(&b, 6 * 4), cudaMalloc(&c, 4 * 4);
  const float one = 1.0f, zero = 0.0f;
  // C (2 x 2) = A (2 x 3) B (3 x 2), column-major.
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 2), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 1, b, 3, &zero, c, 2),
            CUBLAS_STATUS_INVALID_VALUE) << "planted: lda below the rows of A";
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 2),
            CUBLAS_STATUS_INVALID_VALUE) << "planted: A^T is 3 x 2 stored, lda 2 < 3";
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 4, &one, a, 2, b, 4, &zero, c, 2),
            CUBLAS_STATUS_EXECUTION_FAILED) << "planted: k = 4 reads past A's allocation";
  cudaDeviceReset();
  for (float* p : {a, b, c}) cudaFree(p);
  cublasDestroy(h);
}

// ---- device memory left behind -------------------------------------------------------------------------

// The CUDA tests compare the allocations in use before and after each test (CudaTest::TearDown); the
// count sees every allocation, and a backend that fails half-way through its construction leaves none.
TEST_F(Emulation, TheLeakCheckSeesEveryAllocation) {
  const size_t before = aware_emu::device_allocations(), handles = aware_emu::live_handles();
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 8), cudaSuccess);
  EXPECT_EQ(aware_emu::device_allocations(), before + 1) << "planted leak";
  cudaFree(p);
  EXPECT_EQ(aware_emu::device_allocations(), before);
  EXPECT_THROW(make_backend("cuda", {"cudnn", "fp32"}), Error);  // refused in its constructor
  EXPECT_EQ(aware_emu::device_allocations(), before);
  EXPECT_EQ(aware_emu::live_handles(), handles) << "streams or events of the refused backend";
  cudaStream_t forgotten = nullptr;
  cudaStreamCreate(&forgotten);
  EXPECT_EQ(aware_emu::live_handles(), handles + 1) << "planted: a stream not destroyed";
  cudaStreamDestroy(forgotten);
  {
    auto gpu = make_backend("cuda");
    gpu->release(gpu->allocate(100));
  }
  EXPECT_EQ(aware_emu::device_allocations(), before);
}

// ---- what the emulation found in the backend ----------------------------------------------------------------

// Scoring's copies of the next batch went from pageable memory, which holds the host until the copy is
// done on a GPU: no overlap. They now go through page-locked staging.
TEST_F(Emulation, ScoringPrefetchesFromPageLockedMemory) {
  const auto dir = testing::fresh_dir("emu_prefetch");
  testing::write_synthetic_classes(dir / "data");
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  const Events events = load_events(cfg);
  auto gpu = make_backend("cuda");
  auto m = make_model(*gpu, cfg, events.normal_train.event_shape, events.normaliser);
  m->set_params(initial_params(m->graph(), cfg.seed));
  const int64_t rows = std::min<int64_t>(events.normal_train.rows(), 3 * m->max_batch() + 3);
  const size_t before = aware_emu::pageable_async_copies();
  const auto p = m->predict(events.normal_train.x.data(), rows);
  EXPECT_EQ(aware_emu::pageable_async_copies(), before);
  EXPECT_EQ(p.size(), size_t(rows) * 2);
  std::filesystem::remove_all(dir);
}

// ---- many processes --------------------------------------------------------------------------------------

// `mpirun -np 2 aware train --device cuda`: the NCCL path (bucketed all-reduces on the comm stream,
// captured in the step graph) over MPI, against one process.
TEST(EmulationMpi, TwoRanksThroughNcclTrainTheWeightsOfOneProcess) {
  if (testing::mpirun().empty()) GTEST_SKIP() << "mpirun not found";
  testing::two_ranks_train_the_weights_of_one_process(AWARE_BINARY, "cuda");
}

}  // namespace
}  // namespace aware
