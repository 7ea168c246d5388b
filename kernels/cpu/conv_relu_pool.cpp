// CPU twin of the fused conv kernel: im2col per image, then one GEMM (OpenBLAS, on the calling
// thread) for the 3x3 convolution; bias, ReLU and pooling are applied while the output is in cache.
// Images are split into a fixed number of contiguous slots (not threads), each with its own im2col
// buffer and weight-gradient partial sum; the partial sums are added in slot order, so the result
// is the same bit for bit whatever the number of OpenMP threads.
#include "kernels/conv_relu_pool.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

namespace aware::cpu {
namespace {

constexpr int kSlots = 32;

int slot_count(int batch) { return std::min(batch, kSlots); }
int slot_begin(int slot, int slots, int batch) { return int(int64_t(slot) * batch / slots); }

// col[(c*9 + ky*3 + kx)][oy*conv_w + ox] = x[c][oy + ky - pad][ox + kx - pad] (0 outside).
void im2col(const ConvShape& s, const float* x, float* col) {
  const int oh = s.conv_h(), ow = s.conv_w();
  for (int c = 0; c < s.in_c; ++c)
    for (int ky = 0; ky < 3; ++ky)
      for (int kx = 0; kx < 3; ++kx) {
        float* row = col + size_t((c * 3 + ky) * 3 + kx) * oh * ow;
        for (int oy = 0; oy < oh; ++oy) {
          const int iy = oy + ky - s.pad;
          float* out = row + oy * ow;
          if (iy < 0 || iy >= s.in_h) {
            std::fill(out, out + ow, 0.0f);
            continue;
          }
          const float* in = x + (size_t(c) * s.in_h + iy) * s.in_w;
          for (int ox = 0; ox < ow; ++ox) {
            const int ix = ox + kx - s.pad;
            out[ox] = (ix >= 0 && ix < s.in_w) ? in[ix] : 0.0f;
          }
        }
      }
}

// The adjoint of im2col: dx[c][iy][ix] += sum of the col entries that read it.
void col2im(const ConvShape& s, const float* col, float* dx) {
  const int oh = s.conv_h(), ow = s.conv_w();
  std::memset(dx, 0, s.in_size() * sizeof(float));
  for (int c = 0; c < s.in_c; ++c)
    for (int ky = 0; ky < 3; ++ky)
      for (int kx = 0; kx < 3; ++kx) {
        const float* row = col + size_t((c * 3 + ky) * 3 + kx) * oh * ow;
        for (int oy = 0; oy < oh; ++oy) {
          const int iy = oy + ky - s.pad;
          if (iy < 0 || iy >= s.in_h) continue;
          float* out = dx + (size_t(c) * s.in_h + iy) * s.in_w;
          const float* in = row + oy * ow;
          const int ox_lo = std::max(0, s.pad - kx), ox_hi = std::min(ow, s.in_w + s.pad - kx);
          for (int ox = ox_lo; ox < ox_hi; ++ox) out[ox + kx - s.pad] += in[ox];
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

}  // namespace

size_t conv_relu_pool_workspace(const ConvShape& s) {
  const size_t col = size_t(s.patch()) * s.conv_h() * s.conv_w();
  const size_t dact = s.act_size();
  const size_t partial = s.weight_size() + s.out_c;
  return size_t(slot_count(std::max(s.batch, 1))) * (col + dact + partial);
}

void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b,
                            float* act, float* y, float* workspace) {
  const int slots = slot_count(s.batch);
  const int plane = s.conv_h() * s.conv_w();
  const size_t col_size = size_t(s.patch()) * plane;
#pragma omp parallel for schedule(static)
  for (int slot = 0; slot < slots; ++slot) {
    float* col = workspace + slot * col_size;
    for (int n = slot_begin(slot, slots, s.batch); n < slot_begin(slot + 1, slots, s.batch); ++n) {
      im2col(s, x + n * s.in_size(), col);
      float* a = act + n * s.act_size();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.out_c, plane, s.patch(), 1.0f, w,
                  s.patch(), col, plane, 0.0f, a, plane);
      for (int c = 0; c < s.out_c; ++c) {
        float* ac = a + size_t(c) * plane;
        const float bias = b[c];
        if (s.relu)
          for (int i = 0; i < plane; ++i) ac[i] = std::max(ac[i] + bias, 0.0f);
        else
          for (int i = 0; i < plane; ++i) ac[i] += bias;
      }
      if (!s.pool) {
        if (y != act) std::memcpy(y + n * s.out_size(), a, s.act_size() * sizeof(float));
        continue;
      }
      const int oh = s.out_h(), ow = s.out_w(), cw = s.conv_w();
      for (int c = 0; c < s.out_c; ++c) {
        const float* ac = a + size_t(c) * plane;
        float* yc = y + n * s.out_size() + size_t(c) * oh * ow;
        for (int py = 0; py < oh; ++py)
          for (int px = 0; px < ow; ++px) yc[py * ow + px] = ac[pool_argmax(ac, cw, py, px)];
      }
    }
  }
}

void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const float* act,
                             const float* dy, float* dx, float* dw, float* db, float* workspace) {
  const int slots = slot_count(s.batch);
  const int plane = s.conv_h() * s.conv_w();
  const size_t col_size = size_t(s.patch()) * plane;
  const size_t partial_size = s.weight_size() + s.out_c;
  float* cols = workspace;
  float* dacts = cols + slots * col_size;
  float* partials = dacts + slots * s.act_size();
#pragma omp parallel for schedule(static)
  for (int slot = 0; slot < slots; ++slot) {
    float* col = cols + slot * col_size;
    float* dact = dacts + slot * s.act_size();
    float* dw_part = partials + slot * partial_size;
    float* db_part = dw_part + s.weight_size();
    std::memset(dw_part, 0, partial_size * sizeof(float));
    for (int n = slot_begin(slot, slots, s.batch); n < slot_begin(slot + 1, slots, s.batch); ++n) {
      const float* a = act + n * s.act_size();
      const float* g = dy + n * s.out_size();
      // Gradient of the pre-activation: through the pool (to the first maximum), then the ReLU.
      if (s.pool) {
        std::memset(dact, 0, s.act_size() * sizeof(float));
        const int oh = s.out_h(), ow = s.out_w(), cw = s.conv_w();
        for (int c = 0; c < s.out_c; ++c) {
          const float* ac = a + size_t(c) * plane;
          float* dc = dact + size_t(c) * plane;
          const float* gc = g + size_t(c) * oh * ow;
          for (int py = 0; py < oh; ++py)
            for (int px = 0; px < ow; ++px) dc[pool_argmax(ac, cw, py, px)] = gc[py * ow + px];
        }
      } else {
        std::memcpy(dact, g, s.act_size() * sizeof(float));
      }
      if (s.relu)
        for (size_t i = 0; i < s.act_size(); ++i) dact[i] = a[i] > 0.0f ? dact[i] : 0.0f;
      for (int c = 0; c < s.out_c; ++c) {
        const float* dc = dact + size_t(c) * plane;
        float sum = 0.0f;
        for (int i = 0; i < plane; ++i) sum += dc[i];
        db_part[c] += sum;
      }
      im2col(s, x + n * s.in_size(), col);
      // dW[out_c][patch] += dact[out_c][plane] * col[patch][plane]^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.out_c, s.patch(), plane, 1.0f, dact,
                  plane, col, plane, 1.0f, dw_part, s.patch());
      if (dx) {
        // dcol[patch][plane] = W^T[patch][out_c] * dact[out_c][plane], then scattered back.
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.patch(), plane, s.out_c, 1.0f, w,
                    s.patch(), dact, plane, 0.0f, col, plane);
        col2im(s, col, dx + n * s.in_size());
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
