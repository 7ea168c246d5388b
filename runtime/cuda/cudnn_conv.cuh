// The cuDNN path for the convolutions (--conv cudnn): the same fused operation as
// kernels/cuda/conv_relu_pool.cu -- 3x3 convolution + bias + ReLU (+ 2x2 max pool) and its backward --
// assembled from cuDNN's legacy calls, to check our kernels against a second implementation and to race
// them. Descriptors and algorithms are chosen once per shape (cuDNN's heuristics, deterministic
// algorithms for the backward pass) and cached.
#pragma once
#include <cudnn.h>

#include <map>
#include <string>
#include <tuple>

#include "kernels/conv_relu_pool.h"
#include "kernels/error.h"

namespace aware::cuda {

inline void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS) throw Error(std::string("cuDNN: ") + what + ": " + cudnnGetErrorString(status));
}
#define AWARE_CUDNN_CHECK(call) ::aware::cuda::check_cudnn((call), #call)

class CudnnConv {
 public:
  CudnnConv(cudaStream_t stream, bool tf32) : tf32_(tf32) {
    AWARE_CUDNN_CHECK(cudnnCreate(&handle_));
    AWARE_CUDNN_CHECK(cudnnSetStream(handle_, stream));
  }
  ~CudnnConv() {
    for (auto& [key, p] : plans_) p.destroy();
    cudnnDestroy(handle_);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  // The first call for a shape is the graph's plan at its largest batch: it chooses the algorithms and
  // fixes the workspace; smaller batches reuse those algorithms and must fit the same workspace.
  size_t workspace_bytes(const ConvShape& s) {
    const Plan& p = plan(s);
    size_t& planned = algos_.at(shape_key(s)).planned_bytes;
    planned = std::max(planned, p.algo_bytes);
    return scratch_floats(s) * sizeof(float) + p.algo_bytes;
  }

  void forward(const ConvShape& s, const float* x, const float* w, const float* b, float* act, float* y, void* ws) {
    const Plan& p = runnable(s);
    const float one = 1.0f, zero = 0.0f;
    AWARE_CUDNN_CHECK(cudnnConvolutionForward(handle_, &one, p.x, x, p.w, w, p.conv, p.fwd, algo_space(s, ws),
                                              p.algo_bytes, &zero, p.act, act));
    AWARE_CUDNN_CHECK(cudnnAddTensor(handle_, &one, p.bias, b, &one, p.act, act));
    if (s.relu) AWARE_CUDNN_CHECK(cudnnActivationForward(handle_, p.relu, &one, p.act, act, &zero, p.act, act));
    if (s.pool)
      AWARE_CUDNN_CHECK(cudnnPoolingForward(handle_, p.pool, &one, p.act, act, &zero, p.y, y));
    else if (y != act)  // the contract: y may differ from act without pool
      check(cudaMemcpyAsync(y, act, s.batch * s.act_size() * sizeof(float), cudaMemcpyDeviceToDevice, stream()) ==
                cudaSuccess, "cuDNN path: copy of act to y failed");
  }

  void backward(const ConvShape& s, const float* x, const float* w, const float* act, const float* dy, float* dx,
                float* dw, float* db, void* ws) {
    const Plan& p = runnable(s);
    const float one = 1.0f, zero = 0.0f;
    float* dact = static_cast<float*>(ws);
    if (s.pool) {
      // cuDNN's pooling backward wants the pooled output: recomputed (cheap) rather than kept.
      float* pooled = dact + aligned(s.batch * s.act_size());
      AWARE_CUDNN_CHECK(cudnnPoolingForward(handle_, p.pool, &one, p.act, act, &zero, p.y, pooled));
      AWARE_CUDNN_CHECK(cudnnPoolingBackward(handle_, p.pool, &one, p.y, pooled, p.y, dy, p.act, act, &zero, p.act, dact));
    } else {
      check(cudaMemcpyAsync(dact, dy, s.batch * s.act_size() * sizeof(float), cudaMemcpyDeviceToDevice,
                            stream()) == cudaSuccess, "cuDNN path: copy of dy failed");
    }
    if (s.relu)
      AWARE_CUDNN_CHECK(cudnnActivationBackward(handle_, p.relu, &one, p.act, act, p.act, dact, p.act, act, &zero,
                                                p.act, dact));
    AWARE_CUDNN_CHECK(cudnnConvolutionBackwardBias(handle_, &one, p.act, dact, &zero, p.bias, db));
    AWARE_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle_, &one, p.x, x, p.act, dact, p.conv, p.bwd_filter,
                                                     algo_space(s, ws), p.algo_bytes, &zero, p.w, dw));
    if (dx)
      AWARE_CUDNN_CHECK(cudnnConvolutionBackwardData(handle_, &one, p.w, w, p.act, dact, p.conv, p.bwd_data,
                                                     algo_space(s, ws), p.algo_bytes, &zero, p.x, dx));
  }

 private:
  struct Plan {
    cudnnTensorDescriptor_t x{}, act{}, y{}, bias{};
    cudnnFilterDescriptor_t w{};
    cudnnConvolutionDescriptor_t conv{};
    cudnnActivationDescriptor_t relu{};
    cudnnPoolingDescriptor_t pool{};
    cudnnConvolutionFwdAlgo_t fwd{};
    cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
    cudnnConvolutionBwdDataAlgo_t bwd_data{};
    size_t algo_bytes = 0;
    void destroy() {
      cudnnDestroyTensorDescriptor(x), cudnnDestroyTensorDescriptor(act), cudnnDestroyTensorDescriptor(y);
      cudnnDestroyTensorDescriptor(bias), cudnnDestroyFilterDescriptor(w), cudnnDestroyConvolutionDescriptor(conv);
      cudnnDestroyActivationDescriptor(relu), cudnnDestroyPoolingDescriptor(pool);
    }
  };

  struct Algos {
    cudnnConvolutionFwdAlgo_t fwd{};
    cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
    cudnnConvolutionBwdDataAlgo_t bwd_data{};
    size_t planned_bytes = 0;  // the largest workspace planned for (workspace_bytes() at planning)
  };

  // The fastest usable algorithm cuDNN's heuristics rank first; deterministic ones for the backward pass.
  Algos choose(const Plan& p) {
    Algos a;
    int found = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[8];
    AWARE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p.x, p.w, p.conv, p.act, 8, &found, fwd));
    int usable = 0;  // the first ranked algorithm whose status is a success
    while (usable < found && fwd[usable].status != CUDNN_STATUS_SUCCESS) ++usable;
    check(usable < found, "cuDNN: no usable forward algorithm for this convolution");
    a.fwd = fwd[usable].algo;
    cudnnConvolutionBwdFilterAlgoPerf_t bf[8];
    AWARE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p.x, p.act, p.conv, p.w, 8, &found, bf));
    a.bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    for (int i = found - 1; i >= 0; --i)
      if (bf[i].status == CUDNN_STATUS_SUCCESS && bf[i].determinism == CUDNN_DETERMINISTIC) a.bwd_filter = bf[i].algo;
    cudnnConvolutionBwdDataAlgoPerf_t bd[8];
    AWARE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p.w, p.act, p.conv, p.x, 8, &found, bd));
    a.bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    for (int i = found - 1; i >= 0; --i)
      if (bd[i].status == CUDNN_STATUS_SUCCESS && bd[i].determinism == CUDNN_DETERMINISTIC) a.bwd_data = bd[i].algo;
    return a;
  }

  static std::tuple<int, int, int, int, int, int, bool, bool> shape_key(const ConvShape& s) {
    return std::make_tuple(0, s.in_c, s.in_h, s.in_w, s.out_c, s.pad, s.relu, s.pool);
  }
  // A plan whose algorithms fit the workspace planned for its shape (a batch never planned for, larger
  // than any planned one, could need more).
  const Plan& runnable(const ConvShape& s) {
    const Plan& p = plan(s);
    const size_t planned = algos_.at(shape_key(s)).planned_bytes;
    check(p.algo_bytes <= planned, "cuDNN path: a batch of " + std::to_string(s.batch) +
                                       " needs more workspace than was planned for this layer");
    return p;
  }

  cudaStream_t stream() const {
    cudaStream_t s = nullptr;
    cudnnGetStream(handle_, &s);
    return s;
  }
  // Floats before cuDNN's own workspace: the pre-activation gradient, and the recomputed pooled output,
  // each starting on a 256-byte boundary (the graph's buffers are 256-byte aligned; cuDNN's algorithms
  // may assume aligned workspaces).
  static size_t aligned(size_t floats) { return (floats + 63) / 64 * 64; }
  static size_t scratch_floats(const ConvShape& s) {
    return aligned(s.batch * s.act_size()) + aligned(s.batch * s.out_size());
  }
  void* algo_space(const ConvShape& s, void* ws) const { return static_cast<float*>(ws) + scratch_floats(s); }

  const Plan& plan(const ConvShape& s) {
    const auto key = std::make_tuple(s.batch, s.in_c, s.in_h, s.in_w, s.out_c, s.pad, s.relu, s.pool);
    if (auto it = plans_.find(key); it != plans_.end()) return it->second;
    Plan p;
    AWARE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
    AWARE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.act));
    AWARE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
    AWARE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias));
    AWARE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
    AWARE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
    AWARE_CUDNN_CHECK(cudnnCreateActivationDescriptor(&p.relu));
    AWARE_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&p.pool));
    const auto nchw = CUDNN_TENSOR_NCHW;
    AWARE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.x, nchw, CUDNN_DATA_FLOAT, s.batch, s.in_c, s.in_h, s.in_w));
    AWARE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.act, nchw, CUDNN_DATA_FLOAT, s.batch, s.out_c, s.conv_h(), s.conv_w()));
    AWARE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.y, nchw, CUDNN_DATA_FLOAT, s.batch, s.out_c, s.out_h(), s.out_w()));
    AWARE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.bias, nchw, CUDNN_DATA_FLOAT, 1, s.out_c, 1, 1));
    AWARE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, nchw, s.out_c, s.in_c, 3, 3));
    // Cross-correlation, as PyTorch's and ours.
    AWARE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p.conv, s.pad, s.pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                                      CUDNN_DATA_FLOAT));
    AWARE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, tf32_ ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    AWARE_CUDNN_CHECK(cudnnSetActivationDescriptor(p.relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    AWARE_CUDNN_CHECK(cudnnSetPooling2dDescriptor(p.pool, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN, 2, 2,
                                                  0, 0, 2, 2));
    // Algorithms: chosen once per shape at the first (largest, planned) batch and kept for the others,
    // whose workspace must then fit in what was planned.
    const auto shape = shape_key(s);
    auto chosen = algos_.find(shape);
    if (chosen == algos_.end()) chosen = algos_.emplace(shape, choose(p)).first;
    const Algos& a = chosen->second;
    p.fwd = a.fwd, p.bwd_filter = a.bwd_filter, p.bwd_data = a.bwd_data;
    size_t fb = 0, bb = 0, db = 0;
    AWARE_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.w, p.conv, p.act, p.fwd, &fb));
    AWARE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p.x, p.act, p.conv, p.w, p.bwd_filter, &bb));
    AWARE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p.w, p.act, p.conv, p.x, p.bwd_data, &db));
    p.algo_bytes = std::max({fb, bb, db});
    return plans_.emplace(key, p).first->second;
  }

  cudnnHandle_t handle_ = nullptr;
  bool tf32_;
  std::map<std::tuple<int, int, int, int, int, int, bool, bool>, Plan> plans_;
  std::map<std::tuple<int, int, int, int, int, int, bool, bool>, Algos> algos_;
};

}  // namespace aware::cuda
