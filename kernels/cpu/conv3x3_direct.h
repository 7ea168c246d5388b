// Direct 3x3 convolution (stride 1) of zero-padded planes, for the CPU conv kernel, with no im2col
// buffer. A padded plane of row length ld = OW + 2 is read as one flat array: output p = oy * ld + ox
// needs input p + ky * ld + kx, so a tile of consecutive outputs (kTileVectors vectors) spans row ends
// without a gap; only the 2 columns per row beyond OW are computed and dropped (8% of the work at 25
// columns, where tiling each row would waste 28%). Register-blocked over kBlock output channels: each
// step loads kTileVectors input vectors, broadcasts kBlock weights and does kTileVectors x kBlock fused
// multiply-adds. The forward pass uses it as is; the input gradient is the same convolution of the
// padded output gradient with the weights rotated by 180 degrees and the channel axes swapped
// (pack_weights(..., flip = true)).
//
// GCC/Clang vector extensions keep it portable. The blocking fits the register file: AVX-512 has 32
// 16-float registers, AVX2 16 of 8 floats (blocked for AVX-512 there, the accumulators spill and a
// training step runs many times slower). The results do not depend on it: every output sums its
// products in the same order (c, ky, kx), and the weight gradient always keeps kLanes = 16 partial sums
// per weight (lane l sums the positions p = l mod 16), however many registers they take.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

namespace aware::cpu::direct {

#if defined(__AVX512F__)
constexpr int kRegLanes = 16;    // floats per register
constexpr int kBlock = 8;        // output channels per register block of conv()
constexpr int kTileVectors = 2;  // registers of consecutive outputs per block: 16 accumulators
constexpr int kGradBlock = 3;    // output channels per block of weight_grad()
constexpr int kGradTaps = 9;     // of the 9 taps per pass over the plane: 27 accumulators
#else
constexpr int kRegLanes = 8;
constexpr int kBlock = 5;
constexpr int kTileVectors = 2;  // 10 accumulators, 2 inputs and a weight of the 16 registers
constexpr int kGradBlock = 3;
constexpr int kGradTaps = 3;     // one kernel row per pass: 9 accumulators, 3 gradients and an input
#endif
constexpr int kLanes = 16;  // partial sums per weight of weight_grad(), on every machine
using vec = float __attribute__((vector_size(kRegLanes * sizeof(float))));

inline vec load(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, const vec& v) { std::memcpy(p, &v, sizeof v); }

// A weight broadcast to all lanes, straight from memory: a register-to-register broadcast would
// compete with the FMAs for the same execution port.
inline vec broadcast(const float* p) {
#if defined(__AVX512F__)
  return vec(_mm512_set1_ps(*p));
#elif defined(__AVX__)
  return vec(_mm256_set1_ps(*p));
#else
  return vec{} + *p;
#endif
}

inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

// Calls block(std::integral_constant<int, NV>{}, v0) for the register blocks of at most MaxVectors
// (1 to 3) vectors that make up `vectors` vectors: v0 a block's first vector, NV its vectors (the
// last block may have fewer). The kernels' accumulator counts are compile-time constants.
template <int MaxVectors, class Block>
inline void for_vector_blocks(int vectors, Block&& block) {
  static_assert(MaxVectors >= 1 && MaxVectors <= 3);
  for (int v0 = 0; v0 < vectors; v0 += MaxVectors) {
    const int n = std::min(MaxVectors, vectors - v0);
    if constexpr (MaxVectors == 3)
      if (n == 3) {
        block(std::integral_constant<int, 3>{}, v0);
        continue;
      }
    if constexpr (MaxVectors >= 2)
      if (n == 2) {
        block(std::integral_constant<int, 2>{}, v0);
        continue;
      }
    block(std::integral_constant<int, 1>{}, v0);
  }
}

// Short copies and fills (a row of 10-25 floats) inline: a call to memcpy or memset per row cost a
// tenth of the backward pass.
inline void copy_floats(float* dst, const float* src, int n) {
  int i = 0;
  for (; i + kRegLanes <= n; i += kRegLanes) store(dst + i, load(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}
inline void zero_floats(float* dst, size_t n) {
  size_t i = 0;
  for (; i + kRegLanes <= n; i += kRegLanes) store(dst + i, vec{});
  for (; i < n; ++i) dst[i] = 0.0f;
}

constexpr int kTile = kRegLanes * kTileVectors;  // outputs per register tile
static_assert(kTile >= kLanes, "padded_size's slack (kTile + 2) must also cover weight_grad's kLanes reads");

// Floats of a padded buffer of C planes of `rows` x `ld`: the last tile may read kTile + 2 beyond.
inline size_t padded_size(int C, int rows, int ld) { return size_t(C) * rows * ld + kTile + 2; }
// Floats of the wide output buffer of conv(): O planes of OH x ld, rounded up to whole tiles.
inline size_t wide_size(int O, int OH, int ld) { return size_t(O) * round_up(OH * ld, kTile); }

inline size_t packed_size(int out_c, int in_c) { return size_t(round_up(out_c, kBlock)) * in_c * 9; }

// w[out_c][in_c][3][3] -> packed[out_c / kBlock][in_c][9][kBlock], zero-padded to whole blocks.
// flip: pack the weights of the transposed convolution instead (out and in swapped, rotated 180).
inline void pack_weights(const float* w, int out_c, int in_c, bool flip, float* packed) {
  const int O = flip ? in_c : out_c, C = flip ? out_c : in_c;
  std::fill(packed, packed + packed_size(O, C), 0.0f);
  for (int o = 0; o < O; ++o)
    for (int c = 0; c < C; ++c)
      for (int k = 0; k < 9; ++k) {
        const float v = flip ? w[(size_t(c) * in_c + o) * 9 + (8 - k)] : w[(size_t(o) * in_c + c) * 9 + k];
        packed[((size_t(o / kBlock) * C + c) * 9 + k) * kBlock + o % kBlock] = v;
      }
}

// Copies src planes [C][H][W] (channel stride src_plane, row stride src_ld) into dst [C][H + 2 pad][ld],
// zero around, and zeroes the slack of padded_size() after the last plane (the tiles read it).
inline void pad_planes(const float* src, int C, int H, int W, size_t src_plane, int src_ld, int pad, int ld,
                       float* dst) {
  const int rows = H + 2 * pad;
  for (int c = 0; c < C; ++c) {
    float* d = dst + size_t(c) * rows * ld;
    zero_floats(d, size_t(rows) * ld);
    for (int y = 0; y < H; ++y) copy_floats(d + size_t(y + pad) * ld + pad, src + c * src_plane + size_t(y) * src_ld, W);
  }
  zero_floats(dst + size_t(C) * rows * ld, kTile + 2);
}

// out[o][oy][ox] = bias[o] + sum_{c, ky, kx} W(o, c, ky, kx) in[c][oy + ky][ox + kx], ReLU if asked,
// for o < O, oy < OH, ox < OW = ld - 2. in: C planes of (OH + 2) rows of ld floats (padded_size);
// bias may be null; wide: wide_size(O, OH, ld) floats of scratch.
inline void conv(const float* in, int C, int ld, const float* packed, int O, int OH, const float* bias, bool relu,
                 float* out, float* wide) {
  constexpr int V = kTileVectors;
  const int OW = ld - 2, L = OH * ld, wide_plane = round_up(L, kTile);
  const size_t plane = size_t(OH + 2) * ld;
  for (int ob = 0; ob < (O + kBlock - 1) / kBlock; ++ob) {
    const float* wb = packed + size_t(ob) * C * 9 * kBlock;
    const int outs = std::min(kBlock, O - ob * kBlock);
    for (int p0 = 0; p0 < L; p0 += kTile) {
      vec acc[kBlock][V] = {};
      for (int c = 0; c < C; ++c) {
        const float* base = in + c * plane + p0;
        const float* wc = wb + size_t(c) * 9 * kBlock;
#pragma GCC unroll 3
        for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 3
          for (int kx = 0; kx < 3; ++kx) {
            vec xv[V];
#pragma GCC unroll 3
            for (int v = 0; v < V; ++v) xv[v] = load(base + ky * ld + kx + v * kRegLanes);
            const float* wk = wc + (ky * 3 + kx) * kBlock;
#pragma GCC unroll 8
            for (int r = 0; r < kBlock; ++r) {
              const vec wv = broadcast(wk + r);
#pragma GCC unroll 3
              for (int v = 0; v < V; ++v) acc[r][v] += wv * xv[v];
            }
          }
      }
      for (int r = 0; r < outs; ++r) std::memcpy(wide + size_t(ob * kBlock + r) * wide_plane + p0, acc[r], sizeof acc[r]);
    }
  }
  // Drop the 2 extra columns of each row; bias and ReLU on the way.
  for (int o = 0; o < O; ++o) {
    const float b = bias ? bias[o] : 0.0f;
    for (int oy = 0; oy < OH; ++oy) {
      const float* src = wide + size_t(o) * wide_plane + size_t(oy) * ld;
      float* dst = out + (size_t(o) * OH + oy) * OW;
      if (relu)
        for (int ox = 0; ox < OW; ++ox) dst[ox] = std::max(src[ox] + b, 0.0f);
      else
        for (int ox = 0; ox < OW; ++ox) dst[ox] = src[ox] + b;
    }
  }
}

// Floats of one plane of the pre-activation gradient in the wide layout that weight_grad() reads.
inline size_t grad_plane(int OH, int ld) { return size_t(round_up(OH * ld, kLanes)); }

// dw[o][c][ky * 3 + kx] += sum_{p < OH * ld} g[o][p] in[c][p + ky * ld + kx]: the weight gradient over
// the same flat padded planes as conv(). g: O planes of grad_plane(OH, ld) floats, row length ld,
// the 2 extra columns of each row and the tail zero. dw holds kLanes partial sums per weight (lane l
// sums the positions p = l mod kLanes, in order): the horizontal sums are left to the caller, once per
// batch slot rather than once per image (they cost as much as the small layers' products).
// first: dw is written rather than added to (a slot's first image: no zeroing pass over the partials).
inline void weight_grad(const float* in, int C, int ld, const float* g, int O, int OH, float* dw, bool first = false) {
  const int L = OH * ld;
  const size_t plane = size_t(OH + 2) * ld, g_plane = grad_plane(OH, ld);
  for (int c = 0; c < C; ++c)
    for (int o0 = 0; o0 < O; o0 += kGradBlock) {
      const int outs = std::min(kGradBlock, O - o0);
      for (int h = 0; h < kLanes; h += kRegLanes)  // lanes [h, h + kRegLanes) of the partial sums
        for (int t0 = 0; t0 < 9; t0 += kGradTaps) {
          vec acc[kGradBlock][kGradTaps] = {};
          for (int p0 = h; p0 - h < L; p0 += kLanes) {
            vec gv[kGradBlock];
#pragma GCC unroll 3
            for (int r = 0; r < kGradBlock; ++r) gv[r] = r < outs ? load(g + (o0 + r) * g_plane + p0) : vec{};
            const float* base = in + c * plane + p0;
#pragma GCC unroll 9
            for (int t = 0; t < kGradTaps; ++t) {
              const int k = t0 + t;
              const vec xv = load(base + (k / 3) * ld + k % 3);
#pragma GCC unroll 3
              for (int r = 0; r < kGradBlock; ++r) acc[r][t] += gv[r] * xv;
            }
          }
          for (int r = 0; r < outs; ++r)
            for (int t = 0; t < kGradTaps; ++t) {
              float* d = dw + ((size_t(o0 + r) * C + c) * 9 + t0 + t) * kLanes + h;
              store(d, first ? acc[r][t] : load(d) + acc[r][t]);
            }
        }
    }
}

// The sum of one weight's kLanes partial sums, in lane order.
inline float lane_sum(const float* lanes) {
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

}  // namespace aware::cpu::direct
