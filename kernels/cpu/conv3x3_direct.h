// Direct 3x3 convolution (stride 1) of zero-padded planes, for the CPU conv kernel: vectorised along
// the output row (16-float vectors) and register-blocked over kBlock output channels, so each step
// loads V vectors of one input row, broadcasts kBlock weights and does kBlock * V fused
// multiply-adds, with no im2col buffer. The forward pass uses it as is; the input gradient is the
// same convolution of the padded output gradient with the weights rotated by 180 degrees and the
// channel axes swapped (pack_weights(..., flip = true)).
//
// GCC/Clang vector extensions keep it portable: with -march=native on an AVX-512 machine each `vec`
// is one zmm register; elsewhere the compiler splits it.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace aware::cpu::direct {

constexpr int kLanes = 16;  // floats per vector
constexpr int kBlock = 8;   // output channels per register block
using vec = float __attribute__((vector_size(kLanes * sizeof(float))));

inline vec load(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A weight broadcast to all lanes, straight from memory: a register-to-register broadcast would
// compete with the FMAs for the same execution port.
inline vec broadcast(const float* p) {
#if defined(__AVX512F__)
  return vec(_mm512_set1_ps(*p));
#else
  return vec{} + *p;
#endif
}

inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

// Vectors per output-row tile, and the padded row length a tile may read: every tile reads 2
// columns beyond its own width.
inline int tile_vectors(int out_w) { return std::clamp((out_w + kLanes - 1) / kLanes, 1, 4); }
inline int padded_row(int out_w) {
  const int tile = kLanes * tile_vectors(out_w);
  return round_up(out_w, tile) + 2;
}

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

// Copies src planes [C][H][W] (channel stride src_plane) into dst [C][H + 2 pad][ld], zero around.
inline void pad_planes(const float* src, int C, int H, int W, size_t src_plane, int pad, int ld, float* dst) {
  const int rows = H + 2 * pad;
  for (int c = 0; c < C; ++c) {
    float* d = dst + size_t(c) * rows * ld;
    std::fill(d, d + size_t(pad) * ld, 0.0f);
    for (int y = 0; y < H; ++y) {
      float* row = d + size_t(y + pad) * ld;
      std::fill(row, row + pad, 0.0f);
      std::memcpy(row + pad, src + c * src_plane + size_t(y) * W, sizeof(float) * W);
      std::fill(row + pad + W, row + ld, 0.0f);
    }
    std::fill(d + size_t(H + pad) * ld, d + size_t(rows) * ld, 0.0f);
  }
}

// out[o][oy][ox] = bias[o] + sum_{c, ky, kx} W(o, c, ky, kx) in[c][oy + ky][ox + kx], ReLU if asked,
// for o < O, oy < OH, ox < OW. in: C planes of (OH + 2) rows of `ld` floats. bias may be null.
template <int V>
void conv(const float* in, int C, int ld, const float* packed, int O, int OH, int OW, const float* bias,
          bool relu, float* out) {
  constexpr int kTile = kLanes * V;
  const size_t plane = size_t(OH + 2) * ld;
  for (int ob = 0; ob < (O + kBlock - 1) / kBlock; ++ob) {
    const float* wb = packed + size_t(ob) * C * 9 * kBlock;
    const int outs = std::min(kBlock, O - ob * kBlock);
    for (int oy = 0; oy < OH; ++oy)
      for (int ox0 = 0; ox0 < OW; ox0 += kTile) {
        vec acc[kBlock][V];
#pragma GCC unroll 8
        for (int r = 0; r < kBlock; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < V; ++v) acc[r][v] = vec{} + ((bias && r < outs) ? bias[ob * kBlock + r] : 0.0f);
        for (int c = 0; c < C; ++c) {
          const float* rows = in + c * plane + size_t(oy) * ld + ox0;
          const float* wc = wb + size_t(c) * 9 * kBlock;
#pragma GCC unroll 3
          for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; ++kx) {
              vec xv[V];
#pragma GCC unroll 4
              for (int v = 0; v < V; ++v) xv[v] = load(rows + ky * ld + kx + v * kLanes);
              const float* wk = wc + (ky * 3 + kx) * kBlock;
#pragma GCC unroll 8
              for (int r = 0; r < kBlock; ++r) {
                const vec wv = broadcast(wk + r);
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) acc[r][v] += wv * xv[v];
              }
            }
        }
        const int n = std::min(kTile, OW - ox0);
        for (int r = 0; r < outs; ++r) {
          float tile[kTile];
          std::memcpy(tile, acc[r], sizeof tile);
          if (relu)
            for (int i = 0; i < n; ++i) tile[i] = std::max(tile[i], 0.0f);
          std::memcpy(out + (size_t(ob * kBlock + r) * OH + oy) * OW + ox0, tile, sizeof(float) * n);
        }
      }
  }
}

inline void conv_any(const float* in, int C, int ld, const float* packed, int O, int OH, int OW, const float* bias,
                     bool relu, float* out) {
  switch (tile_vectors(OW)) {
    case 1: return conv<1>(in, C, ld, packed, O, OH, OW, bias, relu, out);
    case 2: return conv<2>(in, C, ld, packed, O, OH, OW, bias, relu, out);
    case 3: return conv<3>(in, C, ld, packed, O, OH, OW, bias, relu, out);
    default: return conv<4>(in, C, ld, packed, O, OH, OW, bias, relu, out);
  }
}

}  // namespace aware::cpu::direct
