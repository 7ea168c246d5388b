// The compute backend: where buffers live and which twin of each kernel runs. The CPU backend is
// the reference; a CUDA backend implements the same calls with the same semantics.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/conv_relu_pool.h"
#include "runtime/communicator.h"

namespace aware {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Memory: one zeroed block per call; the graph asks once for its whole arena.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual void to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void synchronize() {}
  // to_device() for a step's small host data (batch indices, labels, loss weights) without waiting: the
  // backend copies `src` into its own page-locked staging first, so the caller may rewrite it at once.
  // Stream-ordered like to_device(); not in graph mode.
  virtual void upload(void* dst, const void* src, size_t bytes) { to_device(dst, src, bytes); }
  // Copy-compute overlap for scoring (CUDA: a second stream). prefetch() copies host memory to the
  // device after the work enqueued so far and alongside the work enqueued next; await_prefetch() makes
  // the work enqueued after it wait for every prefetch so far. The source must stay unchanged until the
  // next wait for the device (page-locked for a copy that does not block the host). Elsewhere: to_device().
  virtual void prefetch(void* dst, const void* src, size_t bytes) { to_device(dst, src, bytes); }
  virtual void await_prefetch() {}
  // Host memory for transfers: page-locked on CUDA (copies run at full bus speed, asynchronously),
  // plain on the CPU. Zeroed.
  virtual void* allocate_host(size_t bytes) { return allocate(bytes); }
  virtual void release_host(void* p) { release(p); }

  // Step graphs (CUDA). Between begin_graph_step() and end_graph_step() the backend is in graph mode:
  // nothing may copy to or from the host, softmax_xent() returns NaN (read_loss() gives the loss
  // afterwards) and dropout() draws its stream's step from set_step(), since the step changes between
  // replays and the graph does not. With capture = true the kernels are recorded, not run, and
  // replay() runs them; with capture = false they run at once (a warm-up: libraries make their handles
  // and plans outside any capture). abort_graph_step() leaves graph mode after an error. Backends
  // without graphs run every call directly (supports_graphs() false).
  virtual bool supports_graphs() const { return false; }
  // Whether conv_relu_pool_forward takes a null act with the pool (no backward pass follows).
  virtual bool pools_without_act() const { return false; }
  // Events per forward pass when scoring, unless the caller says: large enough to fill a GPU; on the
  // CPU small enough that a batch's activations stay in the caches between layers.
  virtual int score_batch() const { return 1024; }
  virtual void begin_graph_step(bool /*capture*/) {}
  // Returns the captured graph's id (0 when nothing was captured); replay(id) runs that graph and
  // refuses another's (a backend holds one graph; two models on it must not replay each other's).
  virtual uint64_t end_graph_step() { return 0; }
  virtual void abort_graph_step() {}
  virtual void replay(uint64_t /*id*/) {}
  virtual void set_step(uint64_t) {}
  virtual double read_loss() { return 0.0; }

  // Kernels (see kernels/*.h for their exact semantics).
  virtual size_t conv_workspace_bytes(const ConvShape& s) = 0;
  virtual void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w,
                                      const float* b, void* act, float* y, void* workspace) = 0;
  virtual void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w,
                                       const void* act, const float* dy, float* dx, float* dw,
                                       float* db, void* workspace) = 0;
  virtual void linear_forward(int batch, int in, int out, bool relu, const float* x, const float* w,
                              const float* b, float* y) = 0;
  virtual void linear_backward(int batch, int in, int out, bool relu, const float* x,
                               const float* w, const float* y, float* dy, float* dx, float* dw,
                               float* db) = 0;
  // Forward on activations, backward on their gradients: the same mask.
  virtual void dropout(size_t n, float rate, uint64_t seed, uint64_t stream, uint64_t first,
                       const float* in, float* out) = 0;
  // Returns the weighted loss sum (see kernels/softmax_xent.h).
  virtual double softmax_xent(int batch, int classes, const float* logits, const int32_t* label,
                              const float* weight, float* dlogits, float* probs) = 0;
  virtual void softmax(int batch, int classes, const float* logits, float* probs) = 0;
  // Adds the last softmax_xent()'s loss and the correct rows among the first `rows` to stats[0, 2)
  // (kernels/softmax_xent.h, step_stats), in backend memory.
  virtual void step_stats(int rows, int classes, const float* probs, const int32_t* label, double* stats) = 0;
  virtual void sgd_update(size_t n, float lr, float momentum, float weight_decay, float* w,
                          const float* g, float* v) = 0;
  // Sums n floats of device memory over the ranks of `comm`, in place (data parallelism): the CPU
  // backend through comm itself (MPI), the CUDA backend through NCCL on its stream.
  virtual void all_reduce_sum(float* data, size_t n, Communicator& comm) = 0;
  // The same for one bucket of gradients while the backward pass goes on: the sum may still be in
  // flight when the call returns, and all_reduce_wait() orders every started sum before the next
  // kernel. The CPU backend sums at once (blocking MPI); the CUDA backend on a second stream.
  virtual void all_reduce_start(float* data, size_t n, Communicator& comm) { all_reduce_sum(data, n, comm); }
  virtual void all_reduce_wait() {}
  virtual void gather_normalise(int rows, int row_size, const void* in, bool in_bf16, const int64_t* index,
                                const float* row_scale, const float* col_shift,
                                const float* col_scale, float* out) = 0;

  // --precision bf16: events and the pooled layers' saved activations are stored as BF16 (half the
  // bytes), all arithmetic and every other buffer FP32. Both backends do it, the CPU as the reference.
  bool bf16_storage() const { return precision_ == "bf16"; }

 protected:
  std::string precision_ = "fp32";
};

// How a backend computes: conv "fused" (our kernels; on the CPU Winograd where it is faster), "direct"
// (CPU: our kernels with the direct sum everywhere, the arithmetic of aware before session 9) or
// "cudnn" (CUDA); precision "fp32" (exact), "tf32" (CUDA: tensor cores in cuBLAS and cuDNN; our fused
// kernels stay FP32) or "bf16" (BF16 storage, FP32 arithmetic: Backend::bf16_storage(); our kernels
// only; CPU and CUDA).
struct BackendOptions {
  std::string conv = "fused";
  std::string precision = "fp32";
};

// "cpu", "cuda" or "auto" (CUDA when this build has it and a device is present).
std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options = {});

// True when this build has the CUDA backend and a CUDA device is present (tests skip otherwise).
bool cuda_available();
// What the CUDA runtime says of the devices: driver and runtime versions, and the device count or the
// query's error ("this build has no CUDA backend" without one). For messages and the GPU check.
std::string cuda_device_status();

// Sets the OpenMP thread count of the CPU backend (0: leave OpenMP's default).
void set_cpu_threads(int threads);

}  // namespace aware
