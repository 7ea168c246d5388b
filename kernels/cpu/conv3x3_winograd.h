// Winograd F(2x2, 3x3) forward convolution (stride 1) of one image, for the CPU conv kernel. Each
// 2x2 block of outputs comes from a 4x4 block of input ("tile"): with the input tile transformed,
// V = B^T d B, and the weights, U = G w G^T, the 16 products U[e] V[e] replace the 36 multiply-adds of
// the direct sum, and the output is Y = A^T M A (Lavin & Gray, arXiv:1509.09308). Per channel pair
// the 16 products are sums over the input channels: 16 small matrix products M[e] = U[e] (O x C) times
// V[e] (C x tiles), which is where the time goes (2.25x fewer multiplies than the direct sum at the
// same register blocking as conv3x3_direct.h: kBlock output channels x up to kMaxVectors vectors of
// tiles). The transforms are adds only (G's halves are exact) and vectorised over the tiles of one
// tile row: the padded input is split into its even and odd columns, so the 4 columns of tile tx are
// E[tx], O[tx], E[tx + 1], O[tx + 1], all read at unit stride.
//
// Arithmetic is FP32, but not the direct sum's: each output differs from it by a few rounding errors
// of the partial sums (|error| ~ 1e-7 of the largest |input x weight| sum; checked against a double
// reference in tests/test_kernels.cpp). Every output is computed the same way whatever the threads.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/conv3x3_direct.h"

namespace aware::cpu::winograd {

using direct::broadcast;
using direct::kRegLanes;
using direct::load;
using direct::round_up;
using direct::store;
using direct::vec;

#if defined(__AVX512F__)
constexpr int kBlock = 8;       // output channels per register block of the products
constexpr int kMaxVectors = 3;  // vectors of tiles per block: 24 accumulators
#else
constexpr int kBlock = 5;       // AVX2: 10 accumulators of the 16 registers
constexpr int kMaxVectors = 2;
#endif

// A row length of V and M at least ts whose 16 planes (C or O rows each) do not start 4 KiB apart or
// nearly so: the input transform stores to all 16 at once, and planes that fall into the same L1 sets
// evict each other (conv3's pooled tiles, ts = 128 and 40 rows, ran 20% slower).
inline int skewed(int ts, int C, int O) {
  auto apart = [](size_t floats) {
    const size_t r = floats % 1024;
    return r >= 128 && r <= 1024 - 128;
  };
  for (int extra = 0; extra < 64 * kRegLanes; extra += kRegLanes)  // (none helps when 64 divides C and O)
    if (apart(size_t(C) * (ts + extra)) && apart(size_t(O) * (ts + extra))) return ts + extra;
  return ts;
}

// The sizes of one layer's transform buffers (per image), all in floats.
struct Geometry {
  int C, O, H, W, pad;  // C input planes of H x W, zero-padded by pad; O output planes
  int in_ld;            // floats from one input row to the next (W for dense planes)
  size_t in_plane;      // floats from one input plane to the next (H x W for dense planes)
  int OH, OW;           // the output planes
  bool pooled;          // followed by the 2x2 max pool, only the pooled outputs wanted: a tile is a window
  int th, tw, T;        // tile rows and columns (ceil(OH / 2), ceil(OW / 2); pooled: floor) and tiles
  int ts;               // floats per channel row of V and M: the tiles in whole vectors, + one vector
                        // for the last tile row's overflowing store
  int hw;               // floats per half row (even or odd columns) of the split input
  int rows;             // rows of the split input: 2 th + 2

  Geometry(int C_, int O_, int H_, int W_, int pad_, int in_ld_ = 0, size_t in_plane_ = 0, bool pooled_ = false)
      : C(C_), O(O_), H(H_), W(W_), pad(pad_), in_ld(in_ld_ ? in_ld_ : W_),
        in_plane(in_plane_ ? in_plane_ : size_t(H_) * W_), OH(H_ + 2 * pad_ - 2), OW(W_ + 2 * pad_ - 2),
        pooled(pooled_) {
    th = pooled ? OH / 2 : (OH + 1) / 2, tw = pooled ? OW / 2 : (OW + 1) / 2, T = th * tw;
    ts = skewed(round_up(T, kRegLanes) + kRegLanes, C, O);
    hw = round_up(std::max(tw + 1, (W + 2 * pad + 1) / 2), kRegLanes);  // the whole padded row fits
    rows = 2 * th + 2;
  }
  // + kRegLanes: the last vector of the last half row reads one float beyond it.
  size_t split_size() const { return size_t(C) * rows * 2 * hw + kRegLanes; }
  size_t v_size() const { return size_t(16) * C * ts; }
  size_t m_size() const { return size_t(16) * O * ts; }
  size_t scratch_size() const { return split_size() + v_size() + m_size() + 2 * hw; }
};

// Floats of the transformed weights: [16][O / kBlock][C][kBlock], zero-padded to whole blocks.
inline size_t packed_size(int O, int C) { return size_t(16) * round_up(O, kBlock) * C; }

// U[e] = G w G^T of w[O][C][3][3] for each (o, c), computed in double and rounded once. flip: of the
// transposed convolution's weights instead (w is [C][O][3][3], rotated by 180 degrees), as
// direct::pack_weights.
inline void pack_weights(const float* w, int O, int C, float* packed, bool flip = false) {
  std::fill(packed, packed + packed_size(O, C), 0.0f);
  const int blocks = round_up(O, kBlock) / kBlock;
  for (int o = 0; o < O; ++o)
    for (int c = 0; c < C; ++c) {
      float g[9];
      for (int k = 0; k < 9; ++k) g[k] = flip ? w[(size_t(c) * O + o) * 9 + (8 - k)] : w[(size_t(o) * C + c) * 9 + k];
      double gt[4][3];  // G g: rows of G times the kernel's columns
      for (int x = 0; x < 3; ++x) {
        const double a = g[x], b = g[3 + x], d = g[6 + x];
        gt[0][x] = a, gt[1][x] = 0.5 * (a + b + d), gt[2][x] = 0.5 * (a - b + d), gt[3][x] = d;
      }
      for (int i = 0; i < 4; ++i) {
        const double a = gt[i][0], b = gt[i][1], d = gt[i][2];
        const double u[4] = {a, 0.5 * (a + b + d), 0.5 * (a - b + d), d};
        for (int j = 0; j < 4; ++j)
          packed[((size_t(i * 4 + j) * blocks + o / kBlock) * C + c) * kBlock + o % kBlock] = float(u[j]);
      }
    }
}

// The even and odd lanes of the 2 kRegLanes floats at p (the inverse of interleave()).
inline void deinterleave(const float* p, vec& even, vec& odd) {
#if defined(__AVX512F__)
  const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
  even = vec(_mm512_permutex2var_ps(a, even_idx, b));
  odd = vec(_mm512_permutex2var_ps(a, odd_idx, b));
#else
  float e[kRegLanes], o[kRegLanes];
  for (int i = 0; i < kRegLanes; ++i) e[i] = p[2 * i], o[i] = p[2 * i + 1];
  even = load(e), odd = load(o);
#endif
}

// x [C][H][W] (strides in_plane, in_ld) -> split[C][rows][2][hw]: row r of the zero-padded plane, its even columns then its odd.
// row: 2 hw floats of scratch.
inline void split_input(const Geometry& g, const float* x, float* split, float* row) {
  const size_t row_floats = size_t(2) * g.hw;
  direct::zero_floats(row, row_floats);
  for (int c = 0; c < g.C; ++c) {
    float* plane = split + size_t(c) * g.rows * row_floats;
    direct::zero_floats(plane, size_t(g.pad) * row_floats);
    const int copied = std::min(g.H, g.rows - g.pad);  // a pooled layer's tiles may end before the image
    for (int y = 0; y < copied; ++y) {
      direct::copy_floats(row + g.pad, x + c * g.in_plane + size_t(y) * g.in_ld, g.W);  // row's padding stays zero
      float* out = plane + size_t(y + g.pad) * row_floats;
      for (int u = 0; u < g.hw; u += kRegLanes) {
        vec even, odd;
        deinterleave(row + 2 * u, even, odd);
        store(out + u, even);
        store(out + g.hw + u, odd);
      }
    }
    direct::zero_floats(plane + size_t(copied + g.pad) * row_floats, size_t(g.rows - copied - g.pad) * row_floats);
  }
  direct::zero_floats(split + size_t(g.C) * g.rows * row_floats, kRegLanes);
}

// The 4 column vectors d0..d3 of one input row for the tiles tx0 .. tx0 + kRegLanes - 1: dj holds
// column 2 tx + j of the zero-padded row. With AVX-512 they come straight from the image row (masked
// loads do the padding, two permutes per vector split the even and odd columns); otherwise from the
// split input.
struct RowColumns {
  vec d[4];
};

#if defined(__AVX512F__)
// Lanes l of a load at padded column k that fall inside the image row: pad <= k + l < pad + W.
inline __mmask16 inside(int k, int pad, int W) {
  const int lo = std::clamp(pad - k, 0, 16), hi = std::clamp(pad + W - k, 0, 16);
  return hi > lo ? __mmask16((1u << hi) - (1u << lo)) : __mmask16(0);
}

// The masks of row_columns()'s three loads for the tiles from tx0 (the same for every row).
struct RowMasks {
  __mmask16 m[3] = {};
  RowMasks() = default;
  RowMasks(const Geometry& g, int tx0) {
    for (int i = 0; i < 3; ++i) m[i] = inside(2 * tx0 + 16 * i, g.pad, g.W);
  }
};

inline RowColumns row_columns(const Geometry& g, const RowMasks& masks, const float* x_row, int tx0) {
  const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const int k = 2 * tx0;  // the first padded column; image column k - pad (masked where outside)
  // The address of padded column k + 16 i: formed as an integer, since it may lie before the row.
  auto at = [&](int i) { return reinterpret_cast<const float*>(uintptr_t(x_row) + intptr_t(k + 16 * i - g.pad) * 4); };
  const __m512 a = _mm512_maskz_loadu_ps(masks.m[0], at(0));
  const __m512 b = _mm512_maskz_loadu_ps(masks.m[1], at(1));
  const __m512 c = _mm512_maskz_loadu_ps(masks.m[2], at(2));
  const __m512i shift2 = _mm512_setr_epi32(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17);
  const __m512 a2 = _mm512_permutex2var_ps(a, shift2, b), b2 = _mm512_permutex2var_ps(b, shift2, c);  // from k + 2
  return {{vec(_mm512_permutex2var_ps(a, even_idx, b)), vec(_mm512_permutex2var_ps(a, odd_idx, b)),
           vec(_mm512_permutex2var_ps(a2, even_idx, b2)), vec(_mm512_permutex2var_ps(a2, odd_idx, b2))}};
}
#endif

// Stores the first n lanes of v at p (n <= kRegLanes).
inline void store_first(float* p, const vec& v, int n) {
  if (n >= kRegLanes) return store(p, v);
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), __m512(v));
#elif defined(__AVX2__)
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes), __m256(v));
#else
  float f[kRegLanes];
  store(f, v);
  for (int i = 0; i < n; ++i) p[i] = f[i];
#endif
}

// Zeroes lanes [n, kRegLanes) of the vector at p.
inline void zero_after(float* p, int n) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, __mmask16(~((1u << n) - 1)), _mm512_setzero_ps());
#else
  for (int i = n; i < kRegLanes; ++i) p[i] = 0.0f;
#endif
}

// The horizontal transforms d B of the input rows of one channel for the tiles tx0 .. tx0 +
// kRegLanes - 1: row(r, h) sets h[j] = (d B)[j], d the 4 columns of each tile in row r of the
// zero-padded plane.
class RowTransform {
 public:
  RowTransform(const Geometry& g, [[maybe_unused]] const float* x, [[maybe_unused]] const float* split, int c, int tx0)
      : g_(g), tx0_(tx0) {
#if defined(__AVX512F__)
    masks_ = RowMasks(g, tx0);
    plane_ = x + c * g.in_plane;
#else
    plane_ = split + size_t(c) * g.rows * 2 * g.hw;
#endif
  }
  void row(int r, vec h[4]) const {
#if defined(__AVX512F__)
    const int y = r - g_.pad;  // the image row
    RowColumns d{};
    if (y >= 0 && y < g_.H) d = row_columns(g_, masks_, plane_ + size_t(y) * g_.in_ld, tx0_);
#else
    const float* even = plane_ + size_t(r) * 2 * g_.hw + tx0_;
    const float* odd = even + g_.hw;
    const RowColumns d{{load(even), load(odd), load(even + 1), load(odd + 1)}};
#endif
    h[0] = d.d[0] - d.d[2], h[1] = d.d[1] + d.d[2], h[2] = d.d[2] - d.d[1], h[3] = d.d[1] - d.d[3];
  }

 private:
  const Geometry& g_;
  int tx0_;
  const float* plane_;
#if defined(__AVX512F__)
  RowMasks masks_{};
#endif
};

// V[e][c][t] = (B^T d B)[e] of the tile t = ty * tw + tx of channel c. A vector holds the tiles
// tx0 .. tx0 + kRegLanes - 1 of one tile row. Tile rows overlap by two input rows: their horizontal
// transforms are kept for the next tile row. With one vector per tile row its lanes beyond tw land on
// the next row's first tiles, which the next row then overwrites (rows in order), or in the slack
// after the last; with more, the last vector stores only its tiles.
// x: the image [C][H][W] (strides in_plane, in_ld); split: its split_input() (read only without AVX-512).
inline void transform_input(const Geometry& g, const float* x, const float* split, float* V) {
  const size_t e_stride = size_t(g.C) * g.ts;
  for (int c = 0; c < g.C; ++c)
    for (int tx0 = 0; tx0 < g.tw; tx0 += kRegLanes) {
      const int lanes = g.tw <= kRegLanes ? kRegLanes : std::min(kRegLanes, g.tw - tx0);
      const RowTransform rows(g, x, split, c, tx0);
      vec h[4][4];  // the horizontal transforms of the tile row's 4 input rows
      rows.row(0, h[2]);
      rows.row(1, h[3]);
      for (int ty = 0; ty < g.th; ++ty) {
        for (int j = 0; j < 4; ++j) h[0][j] = h[2][j], h[1][j] = h[3][j];
        rows.row(2 * ty + 2, h[2]);
        rows.row(2 * ty + 3, h[3]);
        float* out = V + size_t(c) * g.ts + size_t(ty) * g.tw + tx0;
        for (int j = 0; j < 4; ++j) {
          store_first(out + (0 * 4 + j) * e_stride, h[0][j] - h[2][j], lanes);
          store_first(out + (1 * 4 + j) * e_stride, h[1][j] + h[2][j], lanes);
          store_first(out + (2 * 4 + j) * e_stride, h[2][j] - h[1][j], lanes);
          store_first(out + (3 * 4 + j) * e_stride, h[1][j] - h[3][j], lanes);
        }
      }
    }
  // Zero the tiles of the last vector beyond T, which the products read but no output uses.
  const int tail = g.T % kRegLanes;
  if (tail)
    for (int r = 0; r < 16 * g.C; ++r) zero_after(V + size_t(r) * g.ts + (g.T - tail), tail);
}

// M[e][o][t0 .. t0 + NV vectors) = sum_c U[e][o][c] V[e][c][t] for the kBlock channels of block ob.
template <int NV>
inline void product_block(const Geometry& g, const float* Ue, const float* Ve, int ob, int t0, float* Me) {
  vec acc[kBlock][NV] = {};
  const float* wb = Ue + size_t(ob) * g.C * kBlock;
  for (int c = 0; c < g.C; ++c) {
    vec xv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) xv[v] = load(Ve + size_t(c) * g.ts + t0 + v * kRegLanes);
    const float* wc = wb + size_t(c) * kBlock;
#pragma GCC unroll 8
    for (int r = 0; r < kBlock; ++r) {
      const vec wv = broadcast(wc + r);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[r][v] += wv * xv[v];
    }
  }
  const int outs = std::min(kBlock, g.O - ob * kBlock);
  for (int r = 0; r < outs; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) store(Me + size_t(ob * kBlock + r) * g.ts + t0 + v * kRegLanes, acc[r][v]);
}

// The 16 products, e outermost: V[e] (C x ts floats) stays in L1 while every channel block uses it.
inline void products(const Geometry& g, const float* packed, const float* V, float* M) {
  const int blocks = round_up(g.O, kBlock) / kBlock, vectors = round_up(g.T, kRegLanes) / kRegLanes;
  for (int e = 0; e < 16; ++e) {
    const float* Ue = packed + size_t(e) * blocks * g.C * kBlock;
    const float* Ve = V + size_t(e) * g.C * g.ts;
    float* Me = M + size_t(e) * g.O * g.ts;
    for (int ob = 0; ob < blocks; ++ob)
      direct::for_vector_blocks<kMaxVectors>(vectors, [&](auto nv, int v0) { product_block<nv()>(g, Ue, Ve, ob, v0 * kRegLanes, Me); });
  }
}

// Interleaves a (even columns) and b (odd columns): lo = a0 b0 a1 b1 ..., hi = the second half.
inline void interleave(const vec& a, const vec& b, vec& lo, vec& hi) {
#if defined(__AVX512F__)
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  lo = vec(_mm512_permutex2var_ps(__m512(a), lo_idx, __m512(b)));
  hi = vec(_mm512_permutex2var_ps(__m512(a), hi_idx, __m512(b)));
#elif defined(__AVX__)
  const __m256 l = _mm256_unpacklo_ps(__m256(a), __m256(b)), h = _mm256_unpackhi_ps(__m256(a), __m256(b));
  lo = vec(_mm256_permute2f128_ps(l, h, 0x20));
  hi = vec(_mm256_permute2f128_ps(l, h, 0x31));
#else
  float fa[kRegLanes], fb[kRegLanes], f[2 * kRegLanes];
  store(fa, a), store(fb, b);
  for (int i = 0; i < kRegLanes; ++i) f[2 * i] = fa[i], f[2 * i + 1] = fb[i];
  lo = load(f), hi = load(f + kRegLanes);
#endif
}

inline vec relu_of(const vec& v) {
  const vec zero = {};
  return v < zero ? zero : v;  // std::max(v, 0) of the direct path: NaN stays NaN
}
inline vec max_of(const vec& a, const vec& b) { return b > a ? b : a; }

// out[o][2 ty + i][2 tx + j] = (A^T M A)[i][j] + bias (ReLU if asked) of each tile, the outputs
// beyond OH x OW dropped. Pooled geometry: out[o][ty][tx] = the largest of the tile's four instead.
inline void transform_output(const Geometry& g, const float* M, const float* bias, bool relu, float* out) {
  const size_t e_stride = size_t(g.O) * g.ts;
  for (int o = 0; o < g.O; ++o) {
    const vec b = vec{} + (bias ? bias[o] : 0.0f);
    float* plane = out + size_t(o) * (g.pooled ? size_t(g.th) * g.tw : size_t(g.OH) * g.OW);
    for (int ty = 0; ty < g.th; ++ty)
      for (int tx0 = 0; tx0 < g.tw; tx0 += kRegLanes) {
        const float* m = M + size_t(o) * g.ts + size_t(ty) * g.tw + tx0;
        vec z[2][4];  // A^T M: the tile's two output rows before the horizontal transform
        for (int j = 0; j < 4; ++j) {
          const vec m0 = load(m + (0 * 4 + j) * e_stride), m1 = load(m + (1 * 4 + j) * e_stride),
                    m2 = load(m + (2 * 4 + j) * e_stride), m3 = load(m + (3 * 4 + j) * e_stride);
          z[0][j] = m0 + m1 + m2, z[1][j] = m1 - m2 - m3;
        }
        if (g.pooled) {  // bias and ReLU commute with the max
          vec y = max_of(max_of(z[0][0] + z[0][1] + z[0][2], z[0][1] - z[0][2] - z[0][3]),
                         max_of(z[1][0] + z[1][1] + z[1][2], z[1][1] - z[1][2] - z[1][3])) + b;
          if (relu) y = relu_of(y);
          store_first(plane + size_t(ty) * g.tw + tx0, y, std::min(kRegLanes, g.tw - tx0));
          continue;
        }
        const int cols = g.OW - 2 * tx0;  // outputs of this row segment inside the plane
        for (int i = 0; i < 2 && 2 * ty + i < g.OH; ++i) {
          vec even = z[i][0] + z[i][1] + z[i][2] + b, odd = z[i][1] - z[i][2] - z[i][3] + b;
          if (relu) even = relu_of(even), odd = relu_of(odd);
          vec lo, hi;
          interleave(even, odd, lo, hi);
          float* row = plane + size_t(2 * ty + i) * g.OW + 2 * tx0;
          store_first(row, lo, std::min(cols, kRegLanes));
          if (cols > kRegLanes) store_first(row + kRegLanes, hi, std::min(cols - kRegLanes, kRegLanes));
        }
      }
  }
}

// out[o][oy][ox] = bias[o] + sum_{c, ky, kx} w[o][c][ky][kx] xpad[c][oy + ky][ox + kx], ReLU if asked
// (pooled geometry: out [O][OH / 2][OW / 2], the 2x2 max pool of those):
// x [C][H][W] (strides g.in_plane, g.in_ld), packed from pack_weights(), bias may be null, scratch: g.scratch_size() floats.
inline void conv(const Geometry& g, const float* x, const float* packed, const float* bias, bool relu, float* out,
                 float* scratch) {
  float* split = scratch;
  float* V = split + g.split_size();
  float* M = V + g.v_size();
  [[maybe_unused]] float* row = M + g.m_size();
#if !defined(__AVX512F__)
  split_input(g, x, split, row);
#endif
  transform_input(g, x, split, V);
  products(g, packed, V, M);
  transform_output(g, M, bias, relu, out);
}

// ---- The weight gradient ------------------------------------------------------------------------
// dW[o][c][k] = sum_p g[o][p] xpad[c][p + k] over the outputs p. Per tile of 2x2 outputs this is the
// gradient of Y = A^T [(G w) . (B^T d B)] A with respect to w: G^T [(A g A^T) . (B^T d B)] G, so the
// 16 products per (o, c) are summed over every tile of every image in the transformed domain, and
// transformed back to the 9 weights once per batch (2.25x fewer multiplies than the direct sum). The
// sums over the tiles are long, the channel counts short: the products run in vectors over the input
// channels, of a channels-last copy of the padded input (as the sparse backward's), with the
// transformed gradient broadcast from memory.

// The sizes of the weight gradient's transforms for a layer of C input and O output channels whose
// (pre-pool) output planes are OH x OW; the padded input planes have rows of ld = OW + 2.
struct GradGeometry {
  int C, O, OH, OW;
  int cpad;        // input channels in whole vectors
  int opad;        // output channels in whole register blocks (the extra rows of Gt zero)
  int ld;          // row length of the padded input
  int th, tw, T;   // tile rows, columns, tiles
  int ts;          // floats per (e, o) row of Gt: the tiles in whole vectors + one for the overflow
  GradGeometry(int C_, int O_, int OH_, int OW_)
      : C(C_), O(O_), OH(OH_), OW(OW_), cpad(round_up(C_, kRegLanes)), opad(round_up(O_, kBlock)), ld(OW_ + 2) {
    th = (OH + 1) / 2, tw = (OW + 1) / 2, T = th * tw;
    ts = round_up(T, kRegLanes) + kRegLanes;
  }
  // Rows of the channels-last padded input the tiles read: OH + 2, and two more (zero) for the last
  // tile row of an odd OH, whose gradient row is zero.
  int input_rows() const { return OH + 4; }
  size_t v_size() const { return size_t(16) * T * cpad; }        // Vcl[e][t][cpad]
  size_t g_size() const { return size_t(16) * opad * ts; }       // Gt[e][o][ts]
  size_t scratch_size() const { return v_size() + g_size(); }
  size_t partial_size() const { return size_t(16) * O * cpad; }  // the sums [e][o][cpad]
};

// Vcl[e][t][c] = (B^T d B)[e] of tile t of the channels-last padded input xcl[q][cpad] (input_rows()
// rows of ld), in vectors over the channels.
inline void grad_transform_input(const GradGeometry& g, const float* xcl, float* Vcl) {
  const size_t e_stride = size_t(g.T) * g.cpad, row = size_t(g.ld) * g.cpad;
  for (int ty = 0; ty < g.th; ++ty)
    for (int tx = 0; tx < g.tw; ++tx) {
      const float* base = xcl + (size_t(2 * ty) * g.ld + 2 * tx) * g.cpad;
      float* out = Vcl + (size_t(ty) * g.tw + tx) * g.cpad;
      for (int c0 = 0; c0 < g.cpad; c0 += kRegLanes) {
        vec h[4][4];
        for (int i = 0; i < 4; ++i) {
          const float* r = base + i * row + c0;
          const vec d0 = load(r), d1 = load(r + g.cpad), d2 = load(r + 2 * g.cpad), d3 = load(r + 3 * g.cpad);
          h[i][0] = d0 - d2, h[i][1] = d1 + d2, h[i][2] = d2 - d1, h[i][3] = d1 - d3;
        }
        for (int j = 0; j < 4; ++j) {
          store(out + (0 * 4 + j) * e_stride + c0, h[0][j] - h[2][j]);
          store(out + (1 * 4 + j) * e_stride + c0, h[1][j] + h[2][j]);
          store(out + (2 * 4 + j) * e_stride + c0, h[2][j] - h[1][j]);
          store(out + (3 * 4 + j) * e_stride + c0, h[1][j] - h[3][j]);
        }
      }
    }
}

// Gt[e][o][t] = (A g A^T)[e] of the 2x2 gradient block of tile t: grad holds O planes of g_plane
// floats, rows of ld (the columns from OW on zero), OH rows. Vectors over the tiles of a tile row
// (the even and odd columns split as the forward pass's input); rows in order, see transform_input.
inline void grad_transform_gradient(const GradGeometry& g, const float* grad, size_t g_plane, float* Gt) {
  const size_t e_stride = size_t(g.opad) * g.ts;
  for (int o = 0; o < g.O; ++o)
    for (int ty = 0; ty < g.th; ++ty)
      for (int tx0 = 0; tx0 < g.tw; tx0 += kRegLanes) {
        const int lanes = g.tw <= kRegLanes ? kRegLanes : std::min(kRegLanes, g.tw - tx0);
        vec v[2][2] = {};  // v[i][j]: gradient row 2 ty + i, columns 2 tx + j
        for (int i = 0; i < 2; ++i)
          if (2 * ty + i < g.OH) deinterleave(grad + o * g_plane + size_t(2 * ty + i) * g.ld + 2 * tx0, v[i][0], v[i][1]);
        const vec u[4][2] = {{v[0][0], v[0][1]},
                             {v[0][0] + v[1][0], v[0][1] + v[1][1]},
                             {v[0][0] - v[1][0], v[0][1] - v[1][1]},
                             {-v[1][0], -v[1][1]}};  // A g
        float* out = Gt + size_t(o) * g.ts + size_t(ty) * g.tw + tx0;
        for (int i = 0; i < 4; ++i) {
          const vec &a = u[i][0], &b = u[i][1];
          store_first(out + (i * 4 + 0) * e_stride, a, lanes);
          store_first(out + (i * 4 + 1) * e_stride, a + b, lanes);
          store_first(out + (i * 4 + 2) * e_stride, a - b, lanes);
          store_first(out + (i * 4 + 3) * e_stride, -b, lanes);
        }
      }
}

// part[e][o][c0 .. c0 + NV vectors) (+)= sum_t Gt[e][o][t] Vcl[e][t][c] for the kBlock channels of block ob.
template <int NV>
inline void grad_product_block(const GradGeometry& g, const float* Ge, const float* Ve, int ob, int c0, float* part_e,
                               bool first) {
  vec acc[kBlock][NV] = {};
  const float* gb = Ge + size_t(ob) * kBlock * g.ts;
  for (int t = 0; t < g.T; ++t) {
    vec xv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) xv[v] = load(Ve + size_t(t) * g.cpad + c0 + v * kRegLanes);
#pragma GCC unroll 8
    for (int r = 0; r < kBlock; ++r) {
      const vec gv = broadcast(gb + size_t(r) * g.ts + t);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[r][v] += gv * xv[v];
    }
  }
  const int outs = std::min(kBlock, g.O - ob * kBlock);
  for (int r = 0; r < outs; ++r)
    for (int v = 0; v < NV; ++v) {
      float* d = part_e + size_t(ob * kBlock + r) * g.cpad + c0 + v * kRegLanes;
      store(d, first ? acc[r][v] : load(d) + acc[r][v]);
    }
}

// One image's products into the slot's sums part[e][o][cpad]; first: written rather than added to.
inline void grad_products(const GradGeometry& g, const float* Vcl, const float* Gt, float* part, bool first) {
  const int blocks = g.opad / kBlock, vectors = g.cpad / kRegLanes;
  for (int e = 0; e < 16; ++e) {
    const float* Ge = Gt + size_t(e) * g.opad * g.ts;
    const float* Ve = Vcl + size_t(e) * g.T * g.cpad;
    float* part_e = part + size_t(e) * g.O * g.cpad;
    for (int ob = 0; ob < blocks; ++ob)
      direct::for_vector_blocks<kMaxVectors>(vectors, [&](auto nv, int v0) {
        grad_product_block<nv()>(g, Ge, Ve, ob, v0 * kRegLanes, part_e, first);
      });
  }
}

// The 9 weights G^T m G of one (o, c) pair's 16 summed products m[e], in double, rounded once.
inline void grad_weights(const double m[16], float dw[9]) {
  constexpr double GT[3][4] = {{1, 0.5, 0.5, 0}, {0, 0.5, -0.5, 0}, {0, 0.5, 0.5, 1}};
  double q[3][4] = {};
  for (int a = 0; a < 3; ++a)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) q[a][j] += GT[a][i] * m[i * 4 + j];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      double sum = 0.0;
      for (int j = 0; j < 4; ++j) sum += q[a][j] * GT[b][j];
      dw[a * 3 + b] = float(sum);
    }
}

// One image's weight gradient sums: xcl the channels-last padded input (input_rows() rows of ld x
// cpad), grad the pre-activation gradient (see grad_transform_gradient), scratch g.scratch_size().
inline void grad_image(const GradGeometry& g, const float* xcl, const float* grad, size_t g_plane, float* part,
                       bool first, float* scratch) {
  float* Vcl = scratch;
  float* Gt = Vcl + g.v_size();
  if (g.opad > g.O)  // the block's extra output channels: zero rows, never stored
    for (int e = 0; e < 16; ++e)
      direct::zero_floats(Gt + (size_t(e) * g.opad + g.O) * g.ts, size_t(g.opad - g.O) * g.ts);
  grad_transform_input(g, xcl, Vcl);
  grad_transform_gradient(g, grad, g_plane, Gt);
  grad_products(g, Vcl, Gt, part, first);
}

}  // namespace aware::cpu::winograd
