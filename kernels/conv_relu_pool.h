// Fused 3x3 convolution (stride 1) + bias + optional ReLU + optional 2x2 max pool (stride 2, floor).
// Layout NCHW, weights [out_c][in_c][3][3]. The forward pass keeps the pre-pool activation `act`
// (after ReLU): the backward pass routes the pooled gradient to the first maximum of each 2x2 window
// and masks it by act > 0, so nothing else has to be stored.
//
// With bf16_act (--precision bf16, pooled layers only) `act` is stored as BF16 (kernels/bf16.h): the
// forward pass rounds each activation once, pools the rounded values (so y holds BF16 values in FP32)
// and the backward pass routes and masks by them; the sums stay FP32. Otherwise act is FP32.
#pragma once
#include <cstddef>

#include "kernels/hd.h"

namespace aware {

struct ConvShape {
  int batch = 0, in_c = 0, in_h = 0, in_w = 0, out_c = 0, pad = 0;
  bool relu = true, pool = false;
  bool bf16_act = false;  // act stored as BF16 (needs pool: without it act is y, the next layer's input)

  AWARE_HD int conv_h() const { return in_h + 2 * pad - 2; }
  AWARE_HD int conv_w() const { return in_w + 2 * pad - 2; }
  AWARE_HD int out_h() const { return pool ? conv_h() / 2 : conv_h(); }
  AWARE_HD int out_w() const { return pool ? conv_w() / 2 : conv_w(); }
  AWARE_HD int patch() const { return in_c * 9; }  // rows of the im2col matrix
  AWARE_HD size_t in_size() const { return size_t(in_c) * in_h * in_w; }    // per image
  AWARE_HD size_t act_size() const { return size_t(out_c) * conv_h() * conv_w(); }
  AWARE_HD size_t act_bytes() const { return act_size() * (bf16_act ? 2 : 4); }  // per image
  AWARE_HD size_t out_size() const { return size_t(out_c) * out_h() * out_w(); }
  AWARE_HD size_t weight_size() const { return size_t(out_c) * patch(); }
  AWARE_HD double forward_flops() const { return 2.0 * batch * out_c * patch() * conv_h() * conv_w(); }
};

namespace cpu {

// Floats of scratch memory the CPU kernels need for this shape when run on `threads` OpenMP threads
// (im2col buffers per thread, weight-gradient partial sums per slot of images).
size_t conv_relu_pool_workspace(const ConvShape& s, int threads);

// How the CPU forward pass sums: the direct sum (conv3x3_direct.h) or Winograd F(2x2, 3x3)
// (conv3x3_winograd.h: 2.25x fewer multiplies, FP32 with its own rounding, within ~1e-7 relative of
// the direct sum). automatic: Winograd from kWinogradMinChannels input channels (the first layer's
// single channel has too few products per transform). The backward pass is the same for both.
enum class ConvAlgorithm { automatic, direct, winograd };
constexpr int kWinogradMinChannels = 2;

// act: [batch][out_c][conv_h][conv_w], float or bf16 (s.bf16_act); y: [batch][out_c][out_h][out_w]
// (y may equal act without pool). With the pool act may be null where no backward pass follows
// (scoring): then only y is written, the same values (CPU only; the CUDA twin needs act).
void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b,
                            void* act, float* y, float* workspace, int threads,
                            ConvAlgorithm algorithm = ConvAlgorithm::automatic);

// dy is the gradient of y. dx may be null (the first layer needs no input gradient).
// dw and db are overwritten, not accumulated. The result does not depend on the thread count.
// algorithm: as the forward pass's, for the layers without the pool (the pooled ones use their sparse
// path either way).
void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const void* act,
                             const float* dy, float* dx, float* dw, float* db, float* workspace,
                             int threads, ConvAlgorithm algorithm = ConvAlgorithm::automatic);

}  // namespace cpu
}  // namespace aware

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/
#include <cuda_runtime_api.h>
namespace aware::cuda {
// Floats of workspace the CUDA backward needs (the pre-activation gradient of the batch).
size_t conv_relu_pool_workspace(const ConvShape& s);
void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b, void* act,
                            float* y, cudaStream_t stream);
void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const void* act, const float* dy,
                             float* dx, float* dw, float* db, float* workspace, cudaStream_t stream);
}  // namespace aware::cuda
#endif
