// The CPU backend: host memory and the kernels of kernels/cpu/.
#include <omp.h>

#include <cstdlib>
#include <cstring>

#include "kernels/dropout.h"
#include "kernels/gather.h"
#include "kernels/linear.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "runtime/backend.h"
#include "kernels/error.h"

namespace aware {
namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend(const std::string& precision, const std::string& conv)
      : threads_(omp_get_max_threads()),
        algorithm_(conv == "direct" ? cpu::ConvAlgorithm::direct : cpu::ConvAlgorithm::automatic) {
    precision_ = precision;
  }
  // The name goes into summaries and a score job's record: it tells the arithmetic apart.
  std::string name() const override {
    const bool direct = algorithm_ == cpu::ConvAlgorithm::direct;
    if (bf16_storage()) return direct ? "cpu (bf16 storage, direct sum)" : "cpu (bf16 storage)";
    return direct ? "cpu (direct sum)" : "cpu";
  }
  int score_batch() const override { return 64; }
  bool pools_without_act() const override { return true; }

  void* allocate(size_t bytes) override {
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    check(p != nullptr, "out of host memory allocating " + std::to_string(bytes) + " bytes");
    std::memset(p, 0, rounded);
    return p;
  }
  void release(void* p) override { std::free(p); }
  void to_device(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }

  size_t conv_workspace_bytes(const ConvShape& s) override {
    return cpu::conv_relu_pool_workspace(s, threads_) * sizeof(float);
  }
  void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b,
                              void* act, float* y, void* ws) override {
    cpu::conv_relu_pool_forward(s, x, w, b, act, y, static_cast<float*>(ws), threads_, algorithm_);
  }
  void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const void* act,
                               const float* dy, float* dx, float* dw, float* db, void* ws) override {
    cpu::conv_relu_pool_backward(s, x, w, act, dy, dx, dw, db, static_cast<float*>(ws), threads_, algorithm_);
  }
  void linear_forward(int batch, int in, int out, bool relu, const float* x, const float* w,
                      const float* b, float* y) override {
    cpu::linear_forward(batch, in, out, relu, x, w, b, y);
  }
  void linear_backward(int batch, int in, int out, bool relu, const float* x, const float* w,
                       const float* y, float* dy, float* dx, float* dw, float* db) override {
    cpu::linear_backward(batch, in, out, relu, x, w, y, dy, dx, dw, db);
  }
  void dropout(size_t n, float rate, uint64_t seed, uint64_t stream, uint64_t first,
               const float* in, float* out) override {
    cpu::dropout(n, rate, seed, stream, first, in, out);
  }
  double softmax_xent(int batch, int classes, const float* logits, const int32_t* label,
                      const float* weight, float* dlogits, float* probs) override {
    return last_loss_ = cpu::softmax_xent(batch, classes, logits, label, weight, dlogits, probs);
  }
  void softmax(int batch, int classes, const float* logits, float* probs) override {
    cpu::softmax(batch, classes, logits, probs);
  }
  double read_loss() override { return last_loss_; }
  void step_stats(int rows, int classes, const float* probs, const int32_t* label, double* stats) override {
    cpu::step_stats(rows, classes, probs, label, &last_loss_, stats);
  }
  void sgd_update(size_t n, float lr, float momentum, float weight_decay, float* w, const float* g,
                  float* v) override {
    cpu::sgd_update(n, lr, momentum, weight_decay, w, g, v);
  }
  void all_reduce_sum(float* data, size_t n, Communicator& comm) override { comm.sum(data, n); }
  void gather_normalise(int rows, int row_size, const void* in, bool in_bf16, const int64_t* index,
                        const float* row_scale, const float* col_shift, const float* col_scale,
                        float* out) override {
    cpu::gather_normalise(rows, row_size, in, in_bf16, index, row_scale, col_shift, col_scale, out);
  }

 private:
  int threads_;  // fixed when the backend is made: the conv workspaces are sized for it
  cpu::ConvAlgorithm algorithm_;  // --conv direct: the direct sum everywhere; fused: Winograd where it wins
  double last_loss_ = 0.0;  // softmax_xent()'s, for step_stats()
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const std::string& precision, const std::string& conv) {
  return std::make_unique<CpuBackend>(precision, conv);
}

#if defined(AWARE_CUDA)
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);  // runtime/cuda/, when built with CUDA
bool cuda_device_present();
std::string cuda_device_report();
#endif

std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options) {
  check(options.conv == "fused" || options.conv == "direct" || options.conv == "cudnn",
        "--conv: '" + options.conv + "' is not fused, direct or cudnn");
  check(options.precision == "fp32" || options.precision == "tf32" || options.precision == "bf16",
        "--precision: '" + options.precision + "' is not fp32, tf32 or bf16");
  // BF16 storage is aware's kernels' (cuDNN's legacy calls would need BF16 tensors throughout).
  check(options.precision != "bf16" || options.conv != "cudnn", "--precision bf16 needs --conv fused or direct");
  const bool cpu_capable = options.conv != "cudnn" && options.precision != "tf32";
  // direct: the CPU's direct sum only (no Winograd), as aware computed before session 9.
  check(device != "cuda" || options.conv != "direct", "--conv direct is the CPU's: use --device cpu");
  if (device == "cpu" || options.conv == "direct") {
    check(cpu_capable, "--conv cudnn and --precision tf32 need --device cuda");
    return make_cpu_backend(options.precision, options.conv);
  }
#if defined(AWARE_CUDA)
  if (device == "cuda" || (device == "auto" && cuda_device_present())) return make_cuda_backend(options);
#else
  check(device != "cuda", "--device cuda: no usable CUDA device (" + cuda_device_status() + ")");
#endif
  check(device == "auto" || device == "cuda", "--device: unknown device '" + device + "' (cpu|cuda|auto)");
  check(cpu_capable, "--conv cudnn and --precision tf32 need a CUDA device");
  return make_cpu_backend(options.precision, options.conv);
}

bool cuda_available() {
#if defined(AWARE_CUDA)
  return cuda_device_present();
#else
  return false;
#endif
}

std::string cuda_device_status() {
#if defined(AWARE_CUDA)
  return cuda_device_report();
#else
  return "this build of aware has no CUDA backend: it was built without nvcc; use --device cpu";
#endif
}

void set_cpu_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

}  // namespace aware
