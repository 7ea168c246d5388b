// CPU twin of the fused conv kernel. A group of images is unfolded (im2col) side by side into one
// matrix col[patch][group * plane], so that each convolution is one wide GEMM (OpenBLAS, on the
// calling thread): out[out_c][group * plane] = W[out_c][patch] * col. Bias, ReLU and pooling are
// applied while scattering that result back to NCHW.
//
// Determinism: images are split into a fixed number of contiguous slots (a function of the batch,
// not of the threads), each accumulating its own weight-gradient partial sum; the partial sums are
// added in slot order, so the gradients are the same bit for bit with any number of threads.
#include "kernels/conv_relu_pool.h"

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

// The adjoint of im2col: dx[j][c][iy][ix] = sum of the col entries that read it.
void col2im(const ConvShape& s, const float* col, int g, float* dx) {
  const int oh = s.conv_h(), ow = s.conv_w(), ld = g * oh * ow;
  std::memset(dx, 0, sizeof(float) * s.in_size() * g);
  for (int c = 0; c < s.in_c; ++c)
    for (int ky = 0; ky < 3; ++ky)
      for (int kx = 0; kx < 3; ++kx) {
        const float* row = col + size_t((c * 3 + ky) * 3 + kx) * ld;
        const int ox_lo = std::max(0, s.pad - kx), ox_hi = std::min(ow, s.in_w + s.pad - kx);
        for (int j = 0; j < g; ++j) {
          float* image = dx + size_t(j) * s.in_size() + size_t(c) * s.in_h * s.in_w;
          for (int oy = 0; oy < oh; ++oy) {
            const int iy = oy + ky - s.pad;
            if (iy < 0 || iy >= s.in_h) continue;
            const float* in = row + size_t(j) * oh * ow + oy * ow;
            float* out = image + iy * s.in_w + kx - s.pad;
            for (int ox = ox_lo; ox < ox_hi; ++ox) out[ox] += in[ox];
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

struct Scratch {
  float* col;  // [patch][group * plane]
  float* mat;  // [out_c][group * plane]: GEMM output (forward) or pre-activation gradient (backward)
};

Scratch thread_scratch(const ConvShape& s, float* workspace) {
  const size_t g = size_t(group_size(s)) * plane(s);
  float* base = workspace + size_t(omp_get_thread_num()) * g * (s.patch() + s.out_c);
  return {base, base + g * s.patch()};
}

}  // namespace

size_t conv_relu_pool_workspace(const ConvShape& s, int threads) {
  const size_t g = size_t(group_size(s)) * plane(s);
  return size_t(std::max(threads, 1)) * g * (s.patch() + s.out_c) +
         size_t(slot_count(s.batch)) * (s.weight_size() + s.out_c);
}

void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b,
                            float* act, float* y, float* workspace, int threads) {
  const int P = plane(s), G = group_size(s);
  const int groups = (s.batch + G - 1) / G;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int group = 0; group < groups; ++group) {
    const Scratch t = thread_scratch(s, workspace);
    const int n0 = group * G, g = std::min(G, s.batch - n0), ld = g * P;
    im2col(s, x + size_t(n0) * s.in_size(), g, t.col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.out_c, ld, s.patch(), 1.0f, w,
                s.patch(), t.col, ld, 0.0f, t.mat, ld);
    for (int j = 0; j < g; ++j) {
      float* a = act + size_t(n0 + j) * s.act_size();
      for (int c = 0; c < s.out_c; ++c) {
        const float* m = t.mat + size_t(c) * ld + size_t(j) * P;
        float* ac = a + size_t(c) * P;
        const float bias = b[c];
        if (s.relu)
          for (int i = 0; i < P; ++i) ac[i] = std::max(m[i] + bias, 0.0f);
        else
          for (int i = 0; i < P; ++i) ac[i] = m[i] + bias;
      }
      if (!s.pool) {
        if (y != act) std::memcpy(y + size_t(n0 + j) * s.out_size(), a, s.act_size() * sizeof(float));
        continue;
      }
      const int oh = s.out_h(), ow = s.out_w(), cw = s.conv_w();
      for (int c = 0; c < s.out_c; ++c) {
        const float* ac = a + size_t(c) * P;
        float* yc = y + size_t(n0 + j) * s.out_size() + size_t(c) * oh * ow;
        for (int py = 0; py < oh; ++py)
          for (int px = 0; px < ow; ++px) yc[py * ow + px] = ac[pool_argmax(ac, cw, py, px)];
      }
    }
  }
}

void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const float* act,
                             const float* dy, float* dx, float* dw, float* db, float* workspace,
                             int threads) {
  const int slots = slot_count(s.batch), P = plane(s), G = group_size(s);
  const size_t partial_size = s.weight_size() + s.out_c;
  float* partials = workspace + size_t(std::max(threads, 1)) * size_t(G) * P * (s.patch() + s.out_c);
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
        // dcol[patch][ld] = W^T[patch][out_c] * dact[out_c][ld], then folded back onto the images.
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.patch(), ld, s.out_c, 1.0f, w,
                    s.patch(), t.mat, ld, 0.0f, t.col, ld);
        col2im(s, t.col, g, dx + size_t(n0) * s.in_size());
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
