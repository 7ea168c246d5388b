// CPU twin of the fused conv kernel, built on the direct 3x3 convolution of conv3x3_direct.h and the
// Winograd F(2x2, 3x3) one of conv3x3_winograd.h (no im2col buffer, no GEMM library):
// forward:  Winograd from kWinogradMinChannels input channels, bias and ReLU applied as the outputs
//           are stored, then the 2x2 max pool (scoring, with no act: the max of each tile, which is a
//           pool window); the direct sum for the first layer's single channel;
// backward: route the output gradient through the pool (to the first maximum) and the ReLU into the
//           pre-activation gradient g; then db += sum g, dW += g (x) x and dx = g padded by 2 - pad,
//           convolved with the flipped, transposed weights: both by Winograd for the layers without
//           the pool (the direct weight_grad for one input channel). With the pool, three in four
//           entries of g are zero: dW and dx come from g's nonzeros alone instead, vectors over the
//           input channels (sparse_weight_grad, sparse_input_grad).
// OpenMP over images. Determinism: images are split into a fixed number of contiguous slots (a
// function of the batch, not of the threads), each accumulating its own weight-gradient partial
// sum; the partial sums are added in slot order, so the gradients are the same bit for bit with
// any number of threads.
// BF16 activations (s.bf16_act): the forward pass convolves into FP32 scratch, rounds, stores the BF16
// values and pools the rounded ones; the backward pass widens each image's act back to FP32 scratch.
#include "kernels/conv_relu_pool.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"
#include "kernels/cpu/conv3x3_direct.h"
#include "kernels/cpu/conv3x3_winograd.h"
#include "kernels/error.h"

namespace aware::cpu {
namespace {

constexpr int kSlots = 16;  // weight-gradient partial sums

int slot_count(int batch) { return std::max(1, std::min(batch, kSlots)); }
int slot_begin(int slot, int slots, int batch) { return int(int64_t(slot) * batch / slots); }
int plane(const ConvShape& s) { return s.conv_h() * s.conv_w(); }

// Index (within one channel plane) of the first maximum of the 2x2 window at pooled (py, px).
inline int pool_argmax(const float* plane, int w, int py, int px) {
  int best = 2 * py * w + 2 * px;
  for (int k : {best + 1, best + w, best + w + 1})
    if (plane[k] > plane[best]) best = k;
  return best;
}

// The sparse and Winograd backward passes' input channels, in whole vectors.
int channels_padded(const ConvShape& s) { return direct::round_up(s.in_c, direct::kRegLanes); }

// Row lengths of the flat padded planes: the input padded by `pad` (read by the forward pass and
// the weight gradient), and the pre-activation gradient padded by 2 - pad (read by the input
// gradient).
int input_ld(const ConvShape& s) { return s.conv_w() + 2; }
int grad_ld(const ConvShape& s) { return s.in_w + 2; }

winograd::Geometry winograd_geometry(const ConvShape& s) {
  return winograd::Geometry(s.in_c, s.out_c, s.in_h, s.in_w, s.pad);
}
// The input gradient of a layer without the pool as a forward convolution: of the pre-activation
// gradient g (out_c planes in the wide layout, padded by 2 - pad) with the flipped weights.
winograd::Geometry winograd_input_grad_geometry(const ConvShape& s) {
  return winograd::Geometry(s.out_c, s.in_c, s.conv_h(), s.conv_w(), 2 - s.pad, input_ld(s),
                            direct::grad_plane(s.conv_h(), input_ld(s)));
}

// The weight gradient of a layer without the pool, by Winograd.
winograd::GradGeometry winograd_grad_geometry(const ConvShape& s) {
  return winograd::GradGeometry(s.in_c, s.out_c, s.conv_h(), s.conv_w());
}

// Per-thread scratch, in this order after the shared packed weights. The Winograd transforms share
// the room of g_pad and wide, which they replace.
struct Scratch {
  float* input;     // padded input planes
  float* g;         // the forward pass's FP32 result before it is stored as BF16 [out_c][conv_h][conv_w]
  float* g_wide;    // the pre-activation gradient, in the wide layout of weight_grad()
  float* g_pad;     // the same, padded for the input gradient of the layers without the pool
  float* wide;      // output of conv() before the extra columns are dropped
  float* winograd;  // the Winograd transforms (at g_pad)
  float* xcl;       // the padded input channels-last (sparse and Winograd weight gradients)
  float* dxcl;      // the sparse input gradient, channels-last and padded
  float* nz_val;    // the nonzeros of the pooled layers' g, channel by channel
  int* nz_pos;      // their positions in the wide layout
  int* nz_begin;    // where each channel's start, out_c + 1
};

struct Sizes {
  size_t input, g, g_wide, g_pad, wide, winograd, xcl, dxcl, nz, nz_begin;
  explicit Sizes(const ConvShape& s)
      : input(direct::padded_size(s.in_c, s.conv_h() + 2, input_ld(s))),
        g(s.act_size()),
        g_wide(size_t(s.out_c) * direct::grad_plane(s.conv_h(), input_ld(s))),
        g_pad(direct::padded_size(s.out_c, s.in_h + 2, grad_ld(s))),
        wide(std::max(direct::wide_size(s.out_c, s.conv_h(), input_ld(s)), direct::wide_size(s.in_c, s.in_h, grad_ld(s)))),
        winograd(std::max({winograd_geometry(s).scratch_size(), winograd_input_grad_geometry(s).scratch_size(),
                            winograd_grad_geometry(s).scratch_size()})),
        xcl(size_t(winograd_grad_geometry(s).input_rows()) * input_ld(s) * channels_padded(s)),
        dxcl(size_t(s.conv_h() + 2) * input_ld(s) * channels_padded(s)),
        nz(size_t(s.out_c) * s.out_h() * s.out_w()),
        nz_begin(size_t(s.out_c) + 1) {}
  // The nonzeros' values, positions and channel starts (ints in float-sized slots) come last.
  size_t thread() const {
    return input + g + g_wide + std::max(g_pad + wide, winograd) + xcl + dxcl + 2 * nz + nz_begin;
  }
};

// The shared packed weights: the direct forward pass's, the flipped ones of the input gradient, and
// the same two transformed for Winograd.
size_t packed_floats(const ConvShape& s) {
  return direct::packed_size(s.out_c, s.in_c) + direct::packed_size(s.in_c, s.out_c) +
         winograd::packed_size(s.out_c, s.in_c) + winograd::packed_size(s.in_c, s.out_c) +
         size_t(s.out_c) * 9 * channels_padded(s);  // and the sparse path's channels-last weights
}
float* packed_winograd(const ConvShape& s, float* workspace) {
  return workspace + direct::packed_size(s.out_c, s.in_c) + direct::packed_size(s.in_c, s.out_c);
}
float* packed_winograd_flipped(const ConvShape& s, float* workspace) {
  return packed_winograd(s, workspace) + winograd::packed_size(s.out_c, s.in_c);
}
float* packed_channels_last(const ConvShape& s, float* workspace) {
  return packed_winograd_flipped(s, workspace) + winograd::packed_size(s.in_c, s.out_c);
}

Scratch thread_scratch(const ConvShape& s, float* workspace) {
  const Sizes z(s);
  float* p = workspace + packed_floats(s) + size_t(omp_get_thread_num()) * z.thread();
  Scratch t;
  t.input = p;
  t.g = t.input + z.input;
  t.g_wide = t.g + z.g;
  t.g_pad = t.g_wide + z.g_wide;
  t.wide = t.g_pad + z.g_pad;
  t.winograd = t.g_pad;
  t.xcl = t.g_pad + std::max(z.g_pad + z.wide, z.winograd);
  t.dxcl = t.xcl + z.xcl;
  t.nz_val = t.dxcl + z.dxcl;
  t.nz_pos = reinterpret_cast<int*>(t.nz_val + z.nz);  // ints only: never read as floats
  t.nz_begin = t.nz_pos + z.nz;
  return t;
}

// Whether a convolution over `channels` input channels runs by Winograd.
bool use_winograd(int channels, ConvAlgorithm algorithm) {
  if (algorithm == ConvAlgorithm::automatic) return channels >= kWinogradMinChannels;
  return algorithm == ConvAlgorithm::winograd;
}

// The weight gradient of a pooled layer from the nonzeros of the pre-activation gradient alone: a 2x2
// max pool routes each output's gradient to one of four positions, so three quarters of g are zero and
// the dense weight_grad() spends three quarters of its products on them. Per output channel o and
// nonzero g at position p: dW[o][k][c] += g * x[c][p + off(k)] for the 9 taps k, vectors over the input
// channels c of the channels-last padded input xcl[q][c] (cpad channels, the extra ones zero). part is
// [out_c][9][cpad]; first: written rather than added to. Each weight sums its products in the order of
// the nonzeros (row by row of the pooled output), image by image.
template <int V>
void sparse_weight_grad_block(const float* xcl, int cpad, int c0, int ld, const int* pos, const float* val, int count,
                              float* part, bool first) {
  using direct::vec;
  vec acc[9][V] = {};
  for (int i = 0; i < count; ++i) {
    const vec g = vec{} + val[i];
    const float* base = xcl + size_t(pos[i]) * cpad + c0;
#pragma GCC unroll 9
    for (int k = 0; k < 9; ++k) {
      const float* xk = base + size_t((k / 3) * ld + k % 3) * cpad;
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[k][v] += g * direct::load(xk + v * direct::kRegLanes);
    }
  }
  for (int k = 0; k < 9; ++k)
    for (int v = 0; v < V; ++v) {
      float* d = part + size_t(k) * cpad + c0 + v * direct::kRegLanes;
      direct::store(d, first ? acc[k][v] : direct::load(d) + acc[k][v]);
    }
}

// Vectors of input channels per register block: 9 x V accumulators in the register file.
constexpr int kSparseVectors = direct::kRegLanes == 16 ? 3 : 1;

// Calls block(std::integral_constant<int, V>, c0) for the register blocks of kSparseVectors vectors of
// input channels that make up cpad (the last one may have fewer), c0 a block's first channel.
template <class Block>
void for_channel_blocks(int cpad, Block&& block) {
  direct::for_vector_blocks<kSparseVectors>(cpad / direct::kRegLanes,
                                            [&](auto vectors, int v0) { block(vectors, v0 * direct::kRegLanes); });
}

void sparse_weight_grad(const float* xcl, int cpad, int ld, const int* pos, const float* val, int count,
                        float* part, bool first) {
  for_channel_blocks(cpad, [&](auto vectors, int c0) {
    sparse_weight_grad_block<vectors()>(xcl, cpad, c0, ld, pos, val, count, part, first);
  });
}

// The input gradient of a pooled layer from the same nonzeros: the forward pass reads xpad[c][p + off(k)]
// for output p, so dxpad[c][p + off(k)] += W[o][c][k] g[o][p], scattered into a channels-last padded
// plane dxcl[q][c] (cpad channels), vectors over c with the weights of channel o held in registers.
// wcl: [out_c][9][cpad], the weights channels-last. Each element sums in the order (o, nonzero, k).
template <int V>
void sparse_input_grad_block(const float* wcl, int cpad, int c0, int ld, const int* pos, const float* val, int count,
                             float* dxcl) {
  using direct::vec;
  vec wr[9][V];
  for (int k = 0; k < 9; ++k)
    for (int v = 0; v < V; ++v) wr[k][v] = direct::load(wcl + size_t(k) * cpad + c0 + v * direct::kRegLanes);
  for (int i = 0; i < count; ++i) {
    const vec g = vec{} + val[i];
    float* base = dxcl + size_t(pos[i]) * cpad + c0;
#pragma GCC unroll 9
    for (int k = 0; k < 9; ++k) {
      float* dk = base + size_t((k / 3) * ld + k % 3) * cpad;
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) direct::store(dk + v * direct::kRegLanes, direct::load(dk + v * direct::kRegLanes) + g * wr[k][v]);
    }
  }
}

void sparse_input_grad(const float* wcl, int cpad, int ld, const int* pos, const float* val, int count, float* dxcl) {
  for_channel_blocks(cpad, [&](auto vectors, int c0) {
    sparse_input_grad_block<vectors()>(wcl, cpad, c0, ld, pos, val, count, dxcl);
  });
}

void pad_input(const ConvShape& s, const float* x, float* out) {
  direct::pad_planes(x, s.in_c, s.in_h, s.in_w, size_t(s.in_h) * s.in_w, s.in_w, s.pad, input_ld(s), out);
}

}  // namespace

// Per slot: the weight gradient as lane partial sums (a vector per weight), then the bias gradient;
// whole vectors, so that every slot's partial sums stay aligned.
size_t partial_floats(const ConvShape& s) {
  return size_t(direct::round_up(int(s.weight_size() * direct::kLanes + s.out_c), direct::kLanes));
}

size_t conv_relu_pool_workspace(const ConvShape& s, int threads) {
  // + kLanes: room to align the partial sums to whole vectors.
  return packed_floats(s) + size_t(std::max(threads, 1)) * Sizes(s).thread() +
         size_t(slot_count(s.batch)) * partial_floats(s) + direct::kLanes;
}

void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b,
                            void* act, float* y, float* workspace, int threads, ConvAlgorithm algorithm) {
  check(!s.bf16_act || s.pool, "conv: BF16 activations need the pool (without it act is the output y)");
  const bool pool_only = s.pool && act == nullptr;  // no backward pass follows: only y is wanted
  check(!pool_only || !s.bf16_act, "conv: BF16 activations need act");
  check(act != nullptr || s.pool, "conv: without the pool act is the output y");
  const bool fast = use_winograd(s.in_c, algorithm);
  float* packed = workspace;
  float* packed_fast = packed_winograd(s, workspace);
  if (fast)
    winograd::pack_weights(w, s.out_c, s.in_c, packed_fast);
  else
    direct::pack_weights(w, s.out_c, s.in_c, false, packed);
  const winograd::Geometry geometry = winograd_geometry(s);
  // Pool only: a Winograd tile is a pool window, the pooled outputs come straight from the tiles (and
  // the last row and column of an odd plane, which the pool drops, are not computed).
  const winograd::Geometry pooled(s.in_c, s.out_c, s.in_h, s.in_w, s.pad, 0, 0, /*pooled=*/true);
  const int P = plane(s);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int n = 0; n < s.batch; ++n) {
    const Scratch t = thread_scratch(s, workspace);
    if (fast && pool_only) {
      winograd::conv(pooled, x + size_t(n) * s.in_size(), packed_fast, b, s.relu, y + size_t(n) * s.out_size(),
                     t.winograd);
      continue;
    }
    // With BF16 storage, or no act wanted, the FP32 result goes to scratch (t.g) first.
    float* a = s.bf16_act || pool_only ? t.g : static_cast<float*>(act) + size_t(n) * s.act_size();
    if (fast) {
      winograd::conv(geometry, x + size_t(n) * s.in_size(), packed_fast, b, s.relu, a, t.winograd);
    } else {
      pad_input(s, x + size_t(n) * s.in_size(), t.input);
      direct::conv(t.input, s.in_c, input_ld(s), packed, s.out_c, s.conv_h(), b, s.relu, a, t.wide);
    }
    if (s.bf16_act) {
      bf16* stored = static_cast<bf16*>(act) + size_t(n) * s.act_size();
      for (size_t i = 0; i < s.act_size(); ++i) {
        stored[i] = to_bf16(a[i]);
        a[i] = from_bf16(stored[i]);  // pool what the backward pass will see
      }
    }
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

void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const void* act,
                             const float* dy, float* dx, float* dw, float* db, float* workspace,
                             int threads, ConvAlgorithm algorithm) {
  check(!s.bf16_act || s.pool, "conv: BF16 activations need the pool (without it act is the output y)");
  const int slots = slot_count(s.batch), P = plane(s), ld = input_ld(s), cw = s.conv_w();
  const size_t partial_size = partial_floats(s), g_plane = direct::grad_plane(s.conv_h(), ld);
  float* flipped = workspace + direct::packed_size(s.out_c, s.in_c);
  // Pooled layers scatter the input gradient from the nonzeros with the weights channels-last; the
  // others convolve the padded gradient with the flipped weights.
  const int cpad = channels_padded(s);  // the sparse path's input channels, whole vectors
  // The input gradient convolves out_c channels, the weight gradient's tiles read in_c.
  const bool fast_input_grad = !s.pool && use_winograd(s.out_c, algorithm);
  const bool fast_weight_grad = !s.pool && use_winograd(s.in_c, algorithm);
  const winograd::GradGeometry grad_geometry = winograd_grad_geometry(s);
  float* wcl = packed_channels_last(s, workspace);
  if (dx && s.pool) {
    direct::zero_floats(wcl, size_t(s.out_c) * 9 * cpad);
    for (int o = 0; o < s.out_c; ++o)
      for (int c = 0; c < s.in_c; ++c)
        for (int k = 0; k < 9; ++k) wcl[(size_t(o) * 9 + k) * cpad + c] = w[(size_t(o) * s.in_c + c) * 9 + k];
  } else if (dx && fast_input_grad) {
    winograd::pack_weights(w, s.in_c, s.out_c, packed_winograd_flipped(s, workspace), /*flip=*/true);
  } else if (dx) {
    direct::pack_weights(w, s.out_c, s.in_c, true, flipped);
  }
  const winograd::Geometry input_grad_geometry = winograd_input_grad_geometry(s);
  float* partials = workspace + packed_floats(s) + size_t(std::max(threads, 1)) * Sizes(s).thread();
  partials += (direct::kLanes - (uintptr_t(partials) / sizeof(float)) % direct::kLanes) % direct::kLanes;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int slot = 0; slot < slots; ++slot) {
    const Scratch t = thread_scratch(s, workspace);
    float* dw_part = partials + slot * partial_size;
    float* db_part = dw_part + s.weight_size() * direct::kLanes;
    std::memset(db_part, 0, s.out_c * sizeof(float));  // dw_part is written by the slot's first image
    const int first_image = slot_begin(slot, slots, s.batch);
    // Pooled layers: the nonzeros of g per output channel, and the padded input channels-last.
    int* const nz_pos = t.nz_pos;
    int* const nz_begin = t.nz_begin;
    float* const nz_val = t.nz_val;
    float* const xcl = t.xcl;
    float* const dxcl = t.dxcl;
    const int in_plane = (s.conv_h() + 2) * ld;
    const size_t dxcl_size = size_t(in_plane) * cpad;
    nz_begin[0] = 0;
    // The channels beyond in_c, and Winograd's two extra rows, stay zero.
    if (s.pool || fast_weight_grad) direct::zero_floats(xcl, size_t(grad_geometry.input_rows()) * ld * cpad);
    for (int n = first_image; n < slot_begin(slot + 1, slots, s.batch); ++n) {
      const float* a = static_cast<const float*>(act) + size_t(n) * s.act_size();
      if (s.bf16_act) {  // widened into t.wide, which the input gradient only uses after this image's routing
        const bf16* stored = static_cast<const bf16*>(act) + size_t(n) * s.act_size();
        for (size_t i = 0; i < s.act_size(); ++i) t.wide[i] = from_bf16(stored[i]);
        a = t.wide;
      }
      const float* gy = dy + size_t(n) * s.out_size();
      // The pre-activation gradient g, through the pool (to the first maximum) and the ReLU, written
      // straight into the wide layout of weight_grad() (rows of ld, the extra columns and tail zero).
      const int ch = s.conv_h();
      int nonzeros = 0;
      for (int c = 0; c < s.out_c; ++c) {
        const float* ac = a + size_t(c) * P;
        float* wide = t.g_wide + c * g_plane;
        direct::zero_floats(wide, g_plane);
        if (s.pool) {
          const int oh = s.out_h(), ow = s.out_w();
          const float* yc = gy + size_t(c) * oh * ow;
          for (int py = 0; py < oh; ++py)
            for (int px = 0; px < ow; ++px) {
              // pool_argmax's first maximum, as (row, column) in the window: no division to place it.
              const float* win = ac + 2 * py * cw + 2 * px;
              int r = 0, col = 0;
              float best = win[0];
              if (win[1] > best) best = win[1], col = 1;
              if (win[cw] > best) best = win[cw], r = 1, col = 0;
              if (win[cw + 1] > best) best = win[cw + 1], r = 1, col = 1;
              // windows do not overlap: one write a position
              const float v = !s.relu || best > 0.0f ? yc[py * ow + px] : 0.0f;
              const int at = (2 * py + r) * ld + 2 * px + col;
              wide[at] = v;
              if (v != 0.0f) nz_pos[nonzeros] = at, nz_val[nonzeros++] = v;
            }
          nz_begin[size_t(c) + 1] = nonzeros;
        } else {
          const float* gc = gy + size_t(c) * P;
          for (int oy = 0; oy < ch; ++oy)
            for (int ox = 0; ox < cw; ++ox) {
              const int k = oy * cw + ox;
              wide[oy * ld + ox] = !s.relu || ac[k] > 0.0f ? gc[k] : 0.0f;
            }
        }
        // The bias gradient in kLanes partial sums (lane l: positions l mod kLanes; the extra columns and
        // the tail add +0), then their lane-order sum: one chain of adds through the plane took longer
        // than the routing.
        float lanes[direct::kLanes] = {};
        for (size_t i = 0; i < g_plane; i += direct::kLanes)
          for (int l = 0; l < direct::kLanes; ++l) lanes[l] += wide[i + size_t(l)];
        db_part[c] += direct::lane_sum(lanes);
      }
      pad_input(s, x + size_t(n) * s.in_size(), t.input);
      if (s.pool || fast_weight_grad)  // position-major: contiguous writes, one read stream per channel (6x faster)
        for (int q = 0; q < in_plane; ++q)
          for (int c = 0; c < s.in_c; ++c) xcl[size_t(q) * cpad + c] = t.input[size_t(c) * in_plane + q];
      if (fast_weight_grad) {
        winograd::grad_image(grad_geometry, xcl, t.g_wide, g_plane, dw_part, n == first_image, t.winograd);
      } else if (s.pool) {
        for (int o = 0; o < s.out_c; ++o) {
          const int b = nz_begin[size_t(o)];
          sparse_weight_grad(xcl, cpad, ld, nz_pos + b, nz_val + b, nz_begin[size_t(o) + 1] - b,
                             dw_part + size_t(o) * 9 * cpad, n == first_image);
        }
      } else {
        direct::weight_grad(t.input, s.in_c, ld, t.g_wide, s.out_c, s.conv_h(), dw_part, n == first_image);
      }
      if (dx && s.pool) {
        direct::zero_floats(dxcl, dxcl_size);
        for (int o = 0; o < s.out_c; ++o) {
          const int b = nz_begin[size_t(o)];
          sparse_input_grad(wcl + size_t(o) * 9 * cpad, cpad, ld, nz_pos + b, nz_val + b,
                            nz_begin[size_t(o) + 1] - b, dxcl);
        }
        // The interior of the padded plane, back to [c][y][x].
        float* dxn = dx + size_t(n) * s.in_size();
        for (int c = 0; c < s.in_c; ++c)
          for (int iy = 0; iy < s.in_h; ++iy)
            for (int ix = 0; ix < s.in_w; ++ix)
              dxn[(size_t(c) * s.in_h + iy) * s.in_w + ix] = dxcl[(size_t(iy + s.pad) * ld + ix + s.pad) * cpad + c];
      } else if (dx && fast_input_grad) {
        winograd::conv(input_grad_geometry, t.g_wide, packed_winograd_flipped(s, workspace), nullptr, false,
                       dx + size_t(n) * s.in_size(), t.winograd);
      } else if (dx) {
        direct::pad_planes(t.g_wide, s.out_c, ch, cw, g_plane, ld, 2 - s.pad, grad_ld(s), t.g_pad);
        direct::conv(t.g_pad, s.out_c, grad_ld(s), flipped, s.in_c, s.in_h, nullptr, false,
                     dx + size_t(n) * s.in_size(), t.wide);
      }
    }
  }
  // Deterministic reduction of the slot partial sums: per weight, the slots' lane vectors added in slot
  // order, then the lanes in lane order; each weight on its own, so the threads share the weights (one
  // thread summing lane by lane, weight by weight, took a tenth of the backward pass).
  const int64_t weights = int64_t(s.weight_size());
  if (fast_weight_grad) {  // the transformed sums, [e][o][cpad]: per (o, c) the slots in order, then G^T m G
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < int64_t(s.out_c) * s.in_c; ++i) {
      const int64_t o = i / s.in_c, c = i % s.in_c;
      double m[16];
      for (int e = 0; e < 16; ++e) {
        const size_t at = (size_t(e) * s.out_c + size_t(o)) * cpad + size_t(c);
        float sum = partials[at];
        for (int slot = 1; slot < slots; ++slot) sum += partials[slot * partial_size + at];
        m[e] = sum;
      }
      winograd::grad_weights(m, dw + i * 9);
    }
  } else if (s.pool) {  // the sparse partials, [o][k][cpad]: per weight the slots in order
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < weights; ++i) {
      const int64_t o = i / (9 * s.in_c), c = i / 9 % s.in_c, k = i % 9;
      const size_t at = (size_t(o) * 9 + size_t(k)) * cpad + size_t(c);
      float sum = partials[at];
      for (int slot = 1; slot < slots; ++slot) sum += partials[slot * partial_size + at];
      dw[i] = sum;
    }
  } else {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < weights; ++i) {
      float lanes[direct::kLanes];
      std::memcpy(lanes, partials + size_t(i) * direct::kLanes, sizeof lanes);
      for (int slot = 1; slot < slots; ++slot) {
        const float* part = partials + slot * partial_size + size_t(i) * direct::kLanes;
        for (int l = 0; l < direct::kLanes; ++l) lanes[l] += part[l];
      }
      dw[i] = direct::lane_sum(lanes);
    }
  }
  for (int c = 0; c < s.out_c; ++c) {
    float sum = 0.0f;
    for (int slot = 0; slot < slots; ++slot) sum += partials[slot * partial_size + s.weight_size() * direct::kLanes + c];
    db[c] = sum;
  }
}

}  // namespace aware::cpu
