// CPU twin of the fused conv kernel.
// Forward: a direct 3x3 convolution of the zero-padded image (conv3x3_direct.h), with bias and ReLU
// applied as the register tiles are stored, then the 2x2 max pool.
// Backward: the pre-activation gradient (routed through the pool to the first maximum, masked by the
// ReLU); the weight gradient as one GEMM (OpenBLAS, on the calling thread) against the unfolded input
// (im2col) of a group of images; the input gradient as the direct convolution of the padded
// pre-activation gradient with the flipped, transposed weights.
//
// Determinism: images are split into a fixed number of contiguous slots (a function of the batch,
// not of the threads), each accumulating its own weight-gradient partial sum; the partial sums are
// added in slot order, so the gradients are the same bit for bit with any number of threads.
#include "kernels/conv_relu_pool.h"

#include "kernels/cpu/conv3x3_direct.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

namespace aware::cpu {
namespace {

constexpr int kSlots = 16;        // weight-gradient partial sums
constexpr size_t kGroupFloats = 1 << 17;  // im2col group of about 512 KiB (measured best: bench_kernels)

int slot_count(int batch) { return std::max(1, std::min(batch, kSlots)); }
int slot_begin(int slot, int slots, int batch) { return int(int64_t(slot) * batch / slots); }
int plane(const ConvShape& s) { return s.conv_h() * s.conv_w(); }
int group_size(const ConvShape& s) {
  return int(std::max<size_t>(1, kGroupFloats / (size_t(s.patch()) * plane(s))));
}

// Unfolds images x[0, g) into col[(c*9 + ky*3 + kx)][j*plane + oy*conv_w + ox] (zero padding).
void im2col(const ConvShape& s, const float* x, int g, float* col) {
  const int oh = s.conv_h(), ow = s.conv_w(), ld = g * oh * ow;
  for (int c = 0; c < s.in_c; ++c)
    for (int ky = 0; ky < 3; ++ky)
      for (int kx = 0; kx < 3; ++kx) {
        float* row = col + size_t((c * 3 + ky) * 3 + kx) * ld;
        const int ox_lo = std::max(0, s.pad - kx), ox_hi = std::min(ow, s.in_w + s.pad - kx);
        for (int j = 0; j < g; ++j) {
          const float* image = x + size_t(j) * s.in_size() + size_t(c) * s.in_h * s.in_w;
          for (int oy = 0; oy < oh; ++oy) {
            float* out = row + size_t(j) * oh * ow + oy * ow;
            const int iy = oy + ky - s.pad;
            if (iy < 0 || iy >= s.in_h) {
              std::fill(out, out + ow, 0.0f);
              continue;
            }
            std::fill(out, out + ox_lo, 0.0f);
            std::memcpy(out + ox_lo, image + iy * s.in_w + ox_lo + kx - s.pad, sizeof(float) * (ox_hi - ox_lo));
            std::fill(out + ox_hi, out + ow, 0.0f);
          }
        }
      }
}

// Index (within one channel plane) of the first maximum of the 2x2 window at pooled (py, px).
inline int pool_argmax(const float* plane, int w, int py, int px) {
  int best = 2 * py * w + 2 * px;
  for (int k : {best + 1, best + w, best + w + 1})
    if (plane[k] > plane[best]) best = k;
  return best;
}

// Padded-plane row lengths of the direct convolutions: the forward pass reads the input padded by
// `pad`; the input gradient reads the pre-activation gradient padded by 2 - pad.
int forward_ld(const ConvShape& s) { return s.conv_w() + 2; }
int backward_ld(const ConvShape& s) { return s.in_w + 2; }
size_t pad_floats(const ConvShape& s) {
  return std::max(direct::padded_size(s.in_c, s.conv_h() + 2, forward_ld(s)),
                  direct::padded_size(s.out_c, s.in_h + 2, backward_ld(s)));
}
size_t wide_floats(const ConvShape& s) {
  return std::max(direct::wide_size(s.out_c, s.conv_h(), forward_ld(s)), direct::wide_size(s.in_c, s.in_h, backward_ld(s)));
}

// Workspace: the packed weights (shared), then per thread an im2col buffer, a GEMM-layout matrix and
// a padded-plane buffer, then per slot a weight-gradient partial sum.
struct Scratch {
  float* col;     // [patch][group * plane]
  float* mat;     // [out_c][group * plane]: the pre-activation gradient, as the GEMM wants it
  float* padded;  // zero-padded planes for the direct convolution
  float* wide;    // its output before the extra columns are dropped
};

size_t packed_floats(const ConvShape& s) {
  return direct::packed_size(s.out_c, s.in_c) + direct::packed_size(s.in_c, s.out_c);
}
size_t thread_floats(const ConvShape& s) {
  return size_t(group_size(s)) * plane(s) * (s.patch() + s.out_c) + pad_floats(s) + wide_floats(s);
}

Scratch thread_scratch(const ConvShape& s, float* workspace) {
  float* base = workspace + packed_floats(s) + size_t(omp_get_thread_num()) * thread_floats(s);
  const size_t g = size_t(group_size(s)) * plane(s);
  float* padded = base + g * (s.patch() + s.out_c);
  return {base, base + g * s.patch(), padded, padded + pad_floats(s)};
}

}  // namespace

size_t conv_relu_pool_workspace(const ConvShape& s, int threads) {
  return packed_floats(s) + size_t(std::max(threads, 1)) * thread_floats(s) +
         size_t(slot_count(s.batch)) * (s.weight_size() + s.out_c);
}

void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b,
                            float* act, float* y, float* workspace, int threads) {
  float* packed = workspace;
  direct::pack_weights(w, s.out_c, s.in_c, false, packed);
  const int P = plane(s), ld = forward_ld(s);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int n = 0; n < s.batch; ++n) {
    const Scratch t = thread_scratch(s, workspace);
    direct::pad_planes(x + size_t(n) * s.in_size(), s.in_c, s.in_h, s.in_w, size_t(s.in_h) * s.in_w, s.pad, ld,
                       t.padded);
    float* a = act + size_t(n) * s.act_size();
    direct::conv(t.padded, s.in_c, ld, packed, s.out_c, s.conv_h(), b, s.relu, a, t.wide);
    if (!s.pool) {
      if (y != act) std::memcpy(y + size_t(n) * s.out_size(), a, s.act_size() * sizeof(float));
      continue;
    }
    const int oh = s.out_h(), ow = s.out_w(), cw = s.conv_w();
    for (int c = 0; c < s.out_c; ++c) {
      const float* ac = a + size_t(c) * P;
      float* yc = y + size_t(n) * s.out_size() + size_t(c) * oh * ow;
      for (int py = 0; py < oh; ++py)
        for (int px = 0; px < ow; ++px) yc[py * ow + px] = ac[pool_argmax(ac, cw, py, px)];
    }
  }
}

void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const float* act,
                             const float* dy, float* dx, float* dw, float* db, float* workspace,
                             int threads) {
  const int slots = slot_count(s.batch), P = plane(s), G = group_size(s);
  const size_t partial_size = s.weight_size() + s.out_c;
  float* flipped = workspace + direct::packed_size(s.out_c, s.in_c);
  if (dx) direct::pack_weights(w, s.out_c, s.in_c, true, flipped);
  float* partials = workspace + packed_floats(s) + size_t(std::max(threads, 1)) * thread_floats(s);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int slot = 0; slot < slots; ++slot) {
    const Scratch t = thread_scratch(s, workspace);
    float* dw_part = partials + slot * partial_size;
    float* db_part = dw_part + s.weight_size();
    std::memset(dw_part, 0, partial_size * sizeof(float));
    const int end = slot_begin(slot + 1, slots, s.batch);
    for (int n0 = slot_begin(slot, slots, s.batch); n0 < end; n0 += G) {
      const int g = std::min(G, end - n0), ld = g * P;
      // Gradient of the pre-activation, side by side as the GEMM wants it: through the pool (to
      // the first maximum), then the ReLU.
      for (int j = 0; j < g; ++j) {
        const float* a = act + size_t(n0 + j) * s.act_size();
        const float* gy = dy + size_t(n0 + j) * s.out_size();
        for (int c = 0; c < s.out_c; ++c) {
          const float* ac = a + size_t(c) * P;
          float* dc = t.mat + size_t(c) * ld + size_t(j) * P;
          if (s.pool) {
            std::fill(dc, dc + P, 0.0f);
            const int oh = s.out_h(), ow = s.out_w(), cw = s.conv_w();
            const float* gc = gy + size_t(c) * oh * ow;
            for (int py = 0; py < oh; ++py)
              for (int px = 0; px < ow; ++px) dc[pool_argmax(ac, cw, py, px)] = gc[py * ow + px];
          } else {
            std::memcpy(dc, gy + size_t(c) * P, sizeof(float) * P);
          }
          if (s.relu)
            for (int i = 0; i < P; ++i) dc[i] = ac[i] > 0.0f ? dc[i] : 0.0f;
        }
      }
      for (int c = 0; c < s.out_c; ++c) {
        const float* dc = t.mat + size_t(c) * ld;
        float sum = 0.0f;
        for (int i = 0; i < ld; ++i) sum += dc[i];
        db_part[c] += sum;
      }
      im2col(s, x + size_t(n0) * s.in_size(), g, t.col);
      // dW[out_c][patch] += dact[out_c][ld] * col[patch][ld]^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.out_c, s.patch(), ld, 1.0f, t.mat, ld,
                  t.col, ld, 1.0f, dw_part, s.patch());
      if (dx) {
        // dx = the pre-activation gradient, padded by 2 - pad, convolved with the flipped weights.
        const int bld = backward_ld(s);
        for (int j = 0; j < g; ++j) {
          direct::pad_planes(t.mat + size_t(j) * P, s.out_c, s.conv_h(), s.conv_w(), size_t(ld), 2 - s.pad, bld,
                             t.padded);
          direct::conv(t.padded, s.out_c, bld, flipped, s.in_c, s.in_h, nullptr, false,
                       dx + size_t(n0 + j) * s.in_size(), t.wide);
        }
      }
    }
  }
  // Deterministic reduction of the slot partial sums, in slot order.
  std::memset(dw, 0, s.weight_size() * sizeof(float));
  std::memset(db, 0, s.out_c * sizeof(float));
  for (int slot = 0; slot < slots; ++slot) {
    const float* dw_part = partials + slot * partial_size;
    for (size_t i = 0; i < s.weight_size(); ++i) dw[i] += dw_part[i];
    for (int c = 0; c < s.out_c; ++c) db[c] += dw_part[s.weight_size() + c];
  }
}

}  // namespace aware::cpu
