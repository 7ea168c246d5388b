// The CUDA backend: device memory and the kernels of kernels/cuda/, all on one stream, so that the
// order of the calls is the order of the work (the graph runtime's contract) and a whole training step
// can be captured as one CUDA graph. Host copies are asynchronous on the stream; to_host(), to_device()
// and softmax_xent() outside a graph (which returns the loss) wait for it; upload() (a step's indices,
// labels and weights, through page-locked staging) does not.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <cstring>
#include <limits>
#include <set>
#include <string>

#include "kernels/conv_relu_pool.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dropout.h"
#include "kernels/gather.h"
#include "kernels/linear.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "runtime/backend.h"
#if defined(AWARE_CUDA_EMULATION)
namespace aware::cuda {  // cuDNN is not emulated (docs/gpu.md): --conv cudnn is refused there
struct CudnnConv {
  size_t workspace_bytes(const ConvShape&) { return 0; }
  void forward(const ConvShape&, const float*, const float*, const float*, float*, float*, void*) {}
  void backward(const ConvShape&, const float*, const float*, const float*, const float*, float*, float*, float*, void*) {}
};
}  // namespace aware::cuda
#else
#include "runtime/cuda/cudnn_conv.cuh"
#endif
#include "runtime/cuda/nccl.cuh"

namespace aware {
std::string cuda_device_report();
namespace {

// One GPU per local rank: the launcher's local rank (OpenMPI, Slurm, or none) modulo the devices.
int local_device(int devices) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"})
    if (const char* v = std::getenv(name)) return std::atoi(v) % devices;
  return 0;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& options) : options_(options) {
#if defined(AWARE_CUDA_EMULATION)  // before anything is made: a throwing constructor frees nothing
    check(options.conv != "cudnn", "--conv cudnn: cuDNN is not part of the CUDA emulation (only a GPU runs it)");
#endif
    precision_ = options.precision;
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError();
      throw Error("--device cuda: no usable CUDA device (" + cuda_device_report() + ")");
    }
    device_ = local_device(devices);
    AWARE_CUDA_CHECK(cudaSetDevice(device_));
    AWARE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    AWARE_CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
    AWARE_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
    AWARE_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
    AWARE_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    AWARE_CUDA_CHECK(cudaEventCreateWithFlags(&before_copy_, cudaEventDisableTiming));
    AWARE_CUDA_CHECK(cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming));
    check(cublasCreate(&cublas_) == CUBLAS_STATUS_SUCCESS, "cuBLAS: cannot create a handle");
    // Exact FP32 by default: no TF32 tensor-core rounding unless asked for.
    const bool tf32 = options.precision == "tf32";
    check(cublasSetMathMode(cublas_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH) == CUBLAS_STATUS_SUCCESS,
          "cuBLAS: cannot set the math mode");
#if !defined(AWARE_CUDA_EMULATION)
    if (options.conv == "cudnn") cudnn_ = std::make_unique<cuda::CudnnConv>(stream_, tf32);
#endif
    AWARE_CUDA_CHECK(cudaMalloc(&loss_device_, sizeof(double)));
    AWARE_CUDA_CHECK(cudaMalloc(&step_device_, sizeof(uint64_t)));
    AWARE_CUDA_CHECK(cudaMallocHost(&loss_host_, sizeof(double)));
    for (Ring* ring : {&upload_ring_, &prefetch_ring_})
      for (Staging& slot : ring->slots) AWARE_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(copy_stream_);
    cudaStreamSynchronize(comm_stream_);
    cudaStreamSynchronize(stream_);
    if (graph_) cudaGraphExecDestroy(graph_);  // before the NCCL communicator its nodes use
    graph_ = nullptr;
    nccl_.reset();
    cudnn_.reset();
    for (Ring* ring : {&upload_ring_, &prefetch_ring_})
      for (Staging& slot : ring->slots) {
        if (slot.host) cudaFreeHost(slot.host);
        cudaEventDestroy(slot.done);
      }
    cudaFree(step_device_);
    cudaFreeHost(loss_host_);
    cudaFree(loss_device_);
    cublasDestroy(cublas_);
    cudaEventDestroy(fork_);
    cudaEventDestroy(join_);
    cudaEventDestroy(before_copy_);
    cudaEventDestroy(copied_);
    cudaStreamDestroy(copy_stream_);
    cudaStreamDestroy(comm_stream_);
    cudaStreamDestroy(stream_);
  }
  std::string name() const override {
    cudaDeviceProp p{};
    cudaGetDeviceProperties(&p, device_);
    return std::string("cuda:") + std::to_string(device_) + " (" + p.name + ", conv " + options_.conv + ", " +
           options_.precision + ")";
  }

  void* allocate(size_t bytes) override {
    void* p = nullptr;
    const size_t rounded = bytes == 0 ? 256 : bytes;
    const cudaError_t status = cudaMalloc(&p, rounded);
    check(status == cudaSuccess, "out of GPU memory allocating " + std::to_string(bytes) + " bytes (" +
                                     cudaGetErrorString(status) + ")");
    AWARE_CUDA_CHECK(cudaMemsetAsync(p, 0, rounded, stream_));
    return p;
  }
  void release(void* p) override {
    cudaStreamSynchronize(copy_stream_);
    cudaStreamSynchronize(stream_);
    cudaFree(p);
  }
  // Page-locked when the system grants it, else plain memory (slower copies, same results).
  void* allocate_host(size_t bytes) override {
    void* p = nullptr;
    if (cudaMallocHost(&p, bytes == 0 ? 64 : bytes) != cudaSuccess) {
      cudaGetLastError();
      p = std::malloc(bytes == 0 ? 64 : bytes);
      check(p != nullptr, "out of host memory allocating " + std::to_string(bytes) + " bytes");
    } else {
      pinned_.insert(p);
    }
    std::memset(p, 0, bytes);
    return p;
  }
  void release_host(void* p) override {
    if (pinned_.erase(p))
      cudaFreeHost(p);
    else
      std::free(p);
  }
  // Pageable host memory: a copy to or from it returns only when done, so it would block inside the
  // runtime behind a collective whose peer died; waiting first (a wait that polls NCCL and times out)
  // leaves nothing ahead of the copy.
  void to_device(void* dst, const void* src, size_t bytes) override {
    check(!graph_mode_, "CUDA graph step: a host copy inside the step");
    wait();
    AWARE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    wait();  // a later host write must not race a copy from page-locked memory, as with the CPU's memcpy
  }
  void to_host(void* dst, const void* src, size_t bytes) override {
    check(!graph_mode_, "CUDA graph step: a host copy inside the step");
    wait();
    AWARE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    wait();
  }
  // A step's indices, labels and weights, through upload_ring_: the host waits only when it is
  // kStagingSlots uploads (several steps) ahead of the device.
  void upload(void* dst, const void* src, size_t bytes) override {
    check(!graph_mode_, "CUDA graph step: a host copy inside the step");
    Staging* slot = stage(upload_ring_, src, bytes);
    if (!slot) return to_device(dst, src, bytes);  // no page-locked memory: copy and wait
    AWARE_CUDA_CHECK(cudaMemcpyAsync(dst, slot->host, bytes, cudaMemcpyHostToDevice, stream_));
    AWARE_CUDA_CHECK(cudaEventRecord(slot->done, stream_));
    slot->in_flight = true;
  }
  // Scoring's next batch, on the copy stream after the work so far, through page-locked staging (a
  // copy from pageable memory would hold the host until it is done: no overlap).
  void prefetch(void* dst, const void* src, size_t bytes) override {
    check(!graph_mode_, "CUDA graph step: a host copy inside the step");
    Staging* slot = stage(prefetch_ring_, src, bytes);
    AWARE_CUDA_CHECK(cudaEventRecord(before_copy_, stream_));  // after what reads dst so far
    AWARE_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, before_copy_, 0));
    AWARE_CUDA_CHECK(cudaMemcpyAsync(dst, slot ? slot->host : src, bytes, cudaMemcpyHostToDevice, copy_stream_));
    if (slot) {
      AWARE_CUDA_CHECK(cudaEventRecord(slot->done, copy_stream_));
      slot->in_flight = true;
    }
    AWARE_CUDA_CHECK(cudaEventRecord(copied_, copy_stream_));
    prefetched_ = true;
  }
  void await_prefetch() override {
    if (prefetched_) AWARE_CUDA_CHECK(cudaStreamWaitEvent(stream_, copied_, 0));
    prefetched_ = false;
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    AWARE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  void synchronize() override { wait(); }

  bool supports_graphs() const override { return true; }
  void begin_graph_step(bool capture) override {
    check(!graph_mode_, "CUDA graph step: already in one");
    if (capture) {
      if (graph_) AWARE_CUDA_CHECK(cudaGraphExecDestroy(graph_));
      graph_ = nullptr;
      AWARE_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    }
    graph_mode_ = true;
    capturing_ = capture;
  }
  uint64_t end_graph_step() override {
    const bool captured = capturing_;
    graph_mode_ = capturing_ = false;
    if (!captured) return 0;
    cudaGraph_t graph = nullptr;
    AWARE_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    const cudaError_t status = cudaGraphInstantiate(&graph_, graph, 0);
    cudaGraphDestroy(graph);
    if (status != cudaSuccess) graph_ = nullptr;
    AWARE_CUDA_CHECK(status);
    return ++graph_id_;
  }
  void abort_graph_step() override {
    if (pending_reduce_) all_reduce_wait();  // the comm stream joins back before the capture ends
    if (capturing_) {
      cudaGraph_t partial = nullptr;
      cudaStreamEndCapture(stream_, &partial);  // whatever the error, the stream leaves capture mode
      if (partial) cudaGraphDestroy(partial);
      cudaGetLastError();
    }
    graph_mode_ = capturing_ = false;
  }
  void replay(uint64_t id) override {
    check(graph_ != nullptr && id == graph_id_, "CUDA graph: replay of a graph that is not the captured one");
    AWARE_CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
  }
  void set_step(uint64_t step) override { cuda::set_value(step_device_, step, stream_); }
  double read_loss() override {
    AWARE_CUDA_CHECK(cudaMemcpyAsync(loss_host_, loss_device_, sizeof(double), cudaMemcpyDeviceToHost, stream_));
    wait();
    return *loss_host_;
  }

  size_t conv_workspace_bytes(const ConvShape& s) override {
    return cudnn_ ? cudnn_->workspace_bytes(s) : cuda::conv_relu_pool_workspace(s) * sizeof(float);
  }
  // The cuDNN path stores FP32 activations only (make_backend refuses --conv cudnn with bf16).
  void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b, void* act,
                              float* y, void* workspace) override {
    if (cudnn_)
      cudnn_->forward(s, x, w, b, static_cast<float*>(act), y, workspace);
    else
      cuda::conv_relu_pool_forward(s, x, w, b, act, y, stream_);
  }
  void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const void* act, const float* dy,
                               float* dx, float* dw, float* db, void* workspace) override {
    if (cudnn_)
      cudnn_->backward(s, x, w, static_cast<const float*>(act), dy, dx, dw, db, workspace);
    else
      cuda::conv_relu_pool_backward(s, x, w, act, dy, dx, dw, db, static_cast<float*>(workspace), stream_);
  }
  void linear_forward(int batch, int in, int out, bool relu, const float* x, const float* w, const float* b,
                      float* y) override {
    cuda::linear_forward(cublas_, batch, in, out, relu, x, w, b, y, stream_);
  }
  void linear_backward(int batch, int in, int out, bool relu, const float* x, const float* w, const float* y,
                       float* dy, float* dx, float* dw, float* db) override {
    cuda::linear_backward(cublas_, batch, in, out, relu, x, w, y, dy, dx, dw, db, stream_);
  }
  void dropout(size_t n, float rate, uint64_t seed, uint64_t stream_id, uint64_t first, const float* in,
               float* out) override {
    if (graph_mode_)  // the step comes from set_step() at each replay; the node is the low byte
      cuda::dropout_graph(n, rate, seed, step_device_, uint32_t(stream_id & 0xFF), first, in, out, stream_);
    else
      cuda::dropout(n, rate, seed, stream_id, first, in, out, stream_);
  }
  double softmax_xent(int batch, int classes, const float* logits, const int32_t* label, const float* weight,
                      float* dlogits, float* probs) override {
    cuda::softmax_xent(batch, classes, logits, label, weight, dlogits, probs, loss_device_, stream_);
    if (graph_mode_) return std::numeric_limits<double>::quiet_NaN();  // read_loss() after the step
    return read_loss();
  }
  void softmax(int batch, int classes, const float* logits, float* probs) override {
    cuda::softmax(batch, classes, logits, probs, stream_);
  }
  void step_stats(int rows, int classes, const float* probs, const int32_t* label, double* stats) override {
    cuda::step_stats(rows, classes, probs, label, loss_device_, stats, stream_);
  }
  void sgd_update(size_t n, float lr, float momentum, float weight_decay, float* w, const float* g,
                  float* v) override {
    cuda::sgd_update(n, lr, momentum, weight_decay, w, g, v, stream_);
  }
  void all_reduce_sum(float* data, size_t n, Communicator& comm) override { nccl(comm).sum(data, n, stream_); }
  // Bucketed: the comm stream waits for the gradients so far, then all-reduces while the main stream
  // runs the earlier layers' backward; all_reduce_wait() joins the two before the update. (A fork and
  // join of streams by events, which a CUDA graph capture records as such.)
  void all_reduce_start(float* data, size_t n, Communicator& comm) override {
    AWARE_CUDA_CHECK(cudaEventRecord(fork_, stream_));
    AWARE_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, fork_, 0));
    nccl(comm).sum(data, n, comm_stream_);
    pending_reduce_ = true;
  }
  void all_reduce_wait() override {
    if (!pending_reduce_) return;
    AWARE_CUDA_CHECK(cudaEventRecord(join_, comm_stream_));
    AWARE_CUDA_CHECK(cudaStreamWaitEvent(stream_, join_, 0));
    pending_reduce_ = false;
  }
  void gather_normalise(int rows, int row_size, const void* in, bool in_bf16, const int64_t* index,
                        const float* row_scale, const float* col_shift, const float* col_scale, float* out) override {
    cuda::gather_normalise(rows, row_size, in, in_bf16, index, row_scale, col_shift, col_scale, out, stream_);
  }

 private:
  // Waits for the stream. With NCCL in use, a collective whose peer died would wait forever: the wait
  // polls, fails on NCCL's asynchronous error, and gives up after AWARE_COLLECTIVE_TIMEOUT seconds
  // (default 600), naming this rank; the caller's error handler then ends the whole job.
  void wait() {
    if (!nccl_) {
      AWARE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      return;
    }
    poll([this] { return cudaStreamQuery(stream_); });
  }
  // Waits for an event recorded on the stream, the same way.
  void wait_for(cudaEvent_t event) {
    if (!nccl_) {
      AWARE_CUDA_CHECK(cudaEventSynchronize(event));
      return;
    }
    poll([event] { return cudaEventQuery(event); });
  }
  template <class Query>
  void poll(Query query) {
    static const double timeout = [] {
      const char* v = std::getenv("AWARE_COLLECTIVE_TIMEOUT");
      const double t = v ? std::atof(v) : 600.0;
      check(t > 0, "AWARE_COLLECTIVE_TIMEOUT must be a positive number of seconds");
      return t;
    }();
    const auto start = std::chrono::steady_clock::now();
    for (int polls = 0;; ++polls) {
      const cudaError_t status = query();
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady) AWARE_CUDA_CHECK(status);
      if (const ncclResult_t e = nccl_->async_error(); e != ncclSuccess && e != ncclInProgress) {
        nccl_->abort();
        cuda::check_nccl(e, "a collective failed (a peer rank died?)", nccl_->rank());
      }
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout) {
        const int rank = nccl_->rank();
        nccl_->abort();
        throw Error("rank " + std::to_string(rank) + ": no progress for " + std::to_string(int(timeout)) +
                    " s (a collective waiting for a rank that failed?); set AWARE_COLLECTIVE_TIMEOUT to change");
      }
      if (polls < 1000)
        std::this_thread::yield();  // a step's wait is short: stay responsive
      else
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  struct Staging {         // a page-locked slot of a ring
    void* host = nullptr;  // page-locked
    size_t bytes = 0;
    cudaEvent_t done = nullptr;  // recorded after the copy from it
    bool in_flight = false;
  };
  static constexpr int kStagingSlots = 16;  // a step uploads 4 (2 index sets, labels, weights)
  struct Ring {
    Staging slots[kStagingSlots];
    int next = 0;
  };
  // The ring's next slot, holding a copy of src, once the copy from it kStagingSlots uses ago has run;
  // nullptr when the system grants no page-locked memory.
  Staging* stage(Ring& ring, const void* src, size_t bytes) {
    Staging& slot = ring.slots[ring.next];
    ring.next = (ring.next + 1) % kStagingSlots;
    if (slot.in_flight) wait_for(slot.done);
    slot.in_flight = false;
    if (slot.bytes < bytes) {
      if (slot.host) AWARE_CUDA_CHECK(cudaFreeHost(slot.host));
      slot.host = nullptr;
      slot.bytes = 0;
      if (cudaMallocHost(&slot.host, bytes) != cudaSuccess) {
        cudaGetLastError();
        slot.host = nullptr;
        return nullptr;
      }
      slot.bytes = bytes;
    }
    std::memcpy(slot.host, src, bytes);
    return &slot;
  }

  cuda::Nccl& nccl(Communicator& comm) {
    if (!nccl_) nccl_ = std::make_unique<cuda::Nccl>(comm);
    check(nccl_->size() == comm.size(), "NCCL: the communicator changed size");
    return *nccl_;
  }

  BackendOptions options_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaStream_t comm_stream_ = nullptr;  // the bucketed all-reduces
  cudaStream_t copy_stream_ = nullptr;  // prefetch(): scoring's host-to-device copies
  cudaEvent_t before_copy_ = nullptr, copied_ = nullptr;
  bool prefetched_ = false;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  bool pending_reduce_ = false;
  std::set<void*> pinned_;  // allocate_host's page-locked blocks
  cublasHandle_t cublas_ = nullptr;
  double* loss_device_ = nullptr;
  double* loss_host_ = nullptr;  // pinned
  std::unique_ptr<cuda::Nccl> nccl_;  // made at the first all-reduce
  std::unique_ptr<cuda::CudnnConv> cudnn_;  // --conv cudnn
  bool graph_mode_ = false, capturing_ = false;
  cudaGraphExec_t graph_ = nullptr;  // the captured step
  uint64_t* step_device_ = nullptr;  // the step of the replay, for dropout
  uint64_t graph_id_ = 0;            // of the captured graph
  Ring upload_ring_, prefetch_ring_;  // page-locked staging of upload() and prefetch()
};

}  // namespace

std::string cuda_device_report() {
  const auto version = [](int v) { return v ? std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10) : "none"; };
  int driver = 0, runtime = 0, devices = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const cudaError_t status = cudaGetDeviceCount(&devices);
  cudaGetLastError();
  std::string report = "CUDA driver " + version(driver) + ", runtime " + version(runtime) + ": ";
  if (status != cudaSuccess) return report + "device query failed: " + cudaGetErrorName(status) + ", " + cudaGetErrorString(status);
  report += std::to_string(devices) + (devices == 1 ? " device" : " devices");
  if (devices > 0) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) report += std::string(", the first ") + p.name;
  }
  return report;
}

bool cuda_device_present() {
  int devices = 0;
  return cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
}

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace aware
