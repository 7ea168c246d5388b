// CUDA twin of kernels/cpu/conv_relu_pool.cpp: fused 3x3 convolution + bias + ReLU (+ 2x2 max pool),
// forward and backward, with the CPU version's semantics (NCHW; the pooled gradient goes to the first
// maximum of each window, compared in the same order; the ReLU mask is act > 0).
//
// Forward: one block per (image, tile of kOcTile output channels), all along the grid's x. Per input channel the block stages
// the zero-padded input rows its next kChunk output pixels need (the whole plane for the Fig. 1 layers;
// a band of rows for large images) and the tile's 3x3 weights in shared memory, each thread accumulates
// kPix output pixels x kOcTile channels in registers, adds the bias, applies the ReLU, writes the
// pre-pool activation, and, after a barrier, the block pools its own channels: one launch per layer.
// Bound: the Fig. 1 layers are small (<= 27x27 planes, <= 40 channels); at batch 100 the arithmetic
// (2 x 9 x in_c FLOPs per output) dominates the bytes (each input plane read once per channel tile).
//
// Backward, three kernels and the pre-activation gradient `dact` in the workspace:
//   dact = route(dy) * (act > 0)                    one thread per element
//   dx   = full correlation of dact with the flipped weights, blocked like the forward
//   dw, db: one block per (out channel, in channel) reducing over images and pixels in a fixed order
//           (deterministic, as the CPU's).
#include "kernels/bf16.h"
#include "kernels/conv_relu_pool.h"
#include "kernels/cuda/common.cuh"

namespace aware::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kOcTile = 8;  // output channels per block (forward) / input channels per block (dx)
constexpr int kPix = 4;     // output pixels per thread and pass

constexpr int kChunk = kThreads * kPix;  // output pixels a block computes per pass

// Tiles of kOcTile channels; a layer's grid is (tiles x batch) blocks along x, which holds 2^31 - 1
// (y holds 65535 only: the batch there failed to launch from 65536 events on).
__host__ __device__ inline int tiles_of(int channels) { return (channels + kOcTile - 1) / kOcTile; }

// A pass over output pixels [base, base + kChunk) of rows [first, last] reads padded source rows
// [first, last + 2]: the band staged in shared memory (the whole plane when it is small, as in Fig. 1).
// Rows of the band at most, for output planes ow wide and oh high:
__host__ __device__ inline int band_rows(int oh, int ow) { return min(oh, (kChunk - 1) / ow + 2) + 2; }

// Shared floats for the band of a padded plane of h x w with `pad` zeros around, and kOcTile x 9 weights.
size_t shared_floats(int h, int w, int pad) {
  const int ph = h + 2 * pad, pw = w + 2 * pad;
  return size_t(band_rows(ph - 2, pw - 2)) * pw + kOcTile * 9;
}
constexpr size_t kMaxShared = 48 * 1024;  // without the opt-in for more

// The saved activations: FP32, or BF16 when s.bf16_act (kernels/bf16.h: rounded once when stored,
// widened when read; the pool and the backward pass both see the stored values).
struct Act {
  void* base;
  bool bf16_storage;
  __device__ float load(size_t i) const {
    return bf16_storage ? from_bf16(static_cast<const bf16*>(base)[i]) : static_cast<const float*>(base)[i];
  }
  __device__ void store(size_t i, float v) const {
    if (bf16_storage)
      static_cast<bf16*>(base)[i] = to_bf16(v);
    else
      static_cast<float*>(base)[i] = v;
  }
};

// Index (within the plane starting at element `plane` of act) of the first maximum of the 2x2 window
// at pooled (py, px).
__device__ __forceinline__ int pool_argmax(const Act& act, size_t plane, int w, int py, int px) {
  int best = 2 * py * w + 2 * px;
  const int k1 = best + 1, k2 = best + w, k3 = best + w + 1;
  float m = act.load(plane + best);
  if (const float v = act.load(plane + k1); v > m) best = k1, m = v;
  if (const float v = act.load(plane + k2); v > m) best = k2, m = v;
  if (const float v = act.load(plane + k3); v > m) best = k3;
  return best;
}

// Correlates `channels` planes of src (h x w, read with `pad` zeros around) with 3x3 filters into
// out_channels planes of oh x ow: out[o][y][x] = sum_c sum_k filter(o, c, k) src[c][y + ky - pad][x + kx - pad].
// `filter(o, c, k)` reads the weight of output plane o0 + o from input plane c. Used by the forward
// pass (src = x) and by the input gradient (src = dact, flipped weights, pad 2 - pad).
template <class Filter, class Epilogue>
__device__ void correlate3x3(const float* src, int channels, int h, int w, int pad, int oh, int ow, int o0,
                             int out_channels, Filter filter, Epilogue epilogue) {
  AWARE_DYNAMIC_SHARED(float, smem);
  const int pw = w + 2 * pad, npix = oh * ow;
  float* band = smem;  // padded rows [first, last + 2] of one source plane
  float* wt = smem + band_rows(oh, ow) * pw;
  for (int base = 0; base < npix; base += kChunk) {
    const int first = base / ow, last = min(oh - 1, (base + kChunk - 1) / ow), rows = last - first + 3;
    float acc[kPix][kOcTile];
#pragma unroll
    for (int p = 0; p < kPix; ++p)
#pragma unroll
      for (int o = 0; o < kOcTile; ++o) acc[p][o] = 0.0f;
    for (int c = 0; c < channels; ++c) {
      __syncthreads();  // the previous channel's plane is no longer read
      const float* sc = src + size_t(c) * h * w;
      for (int i = threadIdx.x; i < rows * pw; i += blockDim.x) {
        const int r = first + i / pw - pad, q = i % pw - pad;
        band[i] = (r >= 0 && r < h && q >= 0 && q < w) ? sc[r * w + q] : 0.0f;
      }
      for (int i = threadIdx.x; i < kOcTile * 9; i += blockDim.x) {
        const int o = i / 9;
        wt[i] = o0 + o < out_channels ? filter(o0 + o, c, i % 9) : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int p = 0; p < kPix; ++p) {
        const int pix = base + p * blockDim.x + threadIdx.x;
        if (pix >= npix) continue;
        const int oy = pix / ow, ox = pix % ow;
        float v[9];
#pragma unroll
        for (int k = 0; k < 9; ++k) v[k] = band[(oy - first + k / 3) * pw + ox + k % 3];
#pragma unroll
        for (int o = 0; o < kOcTile; ++o) {
          float s = acc[p][o];
#pragma unroll
          for (int k = 0; k < 9; ++k) s = fmaf(wt[o * 9 + k], v[k], s);
          acc[p][o] = s;
        }
      }
    }
#pragma unroll
    for (int p = 0; p < kPix; ++p) {
      const int pix = base + p * blockDim.x + threadIdx.x;
      if (pix >= npix) continue;
#pragma unroll
      for (int o = 0; o < kOcTile; ++o)
        if (o0 + o < out_channels) epilogue(o0 + o, pix, acc[p][o]);
    }
  }
}

__global__ void forward_kernel(ConvShape s, const float* __restrict__ x, const float* __restrict__ w,
                               const float* __restrict__ b, Act act, float* y) {
  const int tiles = tiles_of(s.out_c), n = blockIdx.x / tiles, oc0 = blockIdx.x % tiles * kOcTile;
  const int ch = s.conv_h(), cw = s.conv_w(), P = ch * cw;
  const size_t an = size_t(n) * s.act_size();
  correlate3x3(
      x + size_t(n) * s.in_size(), s.in_c, s.in_h, s.in_w, s.pad, ch, cw, oc0, s.out_c,
      [&](int o, int c, int k) { return w[(size_t(o) * s.in_c + c) * 9 + k]; },
      [&](int o, int pix, float v) {
        v += b[o];
        v = s.relu ? fmaxf(v, 0.0f) : v;
        act.store(an + size_t(o) * P + pix, v);
        if (!s.pool && y != act.base) y[size_t(n) * s.out_size() + size_t(o) * P + pix] = v;  // y may differ from act
      });
  if (!s.pool) return;
  __syncthreads();  // the block's activations are written (global memory, same block)
  const int oh = s.out_h(), ow = s.out_w(), tile = min(kOcTile, s.out_c - oc0);
  float* yn = y + size_t(n) * s.out_size();
  for (int i = threadIdx.x; i < tile * oh * ow; i += blockDim.x) {
    const int o = oc0 + i / (oh * ow), q = i % (oh * ow);
    const size_t plane = an + size_t(o) * P;
    yn[size_t(o) * oh * ow + q] = act.load(plane + pool_argmax(act, plane, cw, q / ow, q % ow));
  }
}

// dact[n][c][pix]: the gradient of the pre-activation.
__global__ void route_kernel(ConvShape s, Act act, const float* __restrict__ dy, float* __restrict__ dact) {
  const int ch = s.conv_h(), cw = s.conv_w(), P = ch * cw;
  const size_t total = size_t(s.batch) * s.out_c * P;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < total; e += size_t(gridDim.x) * blockDim.x) {
    const size_t plane_index = e / P;  // n * out_c + c
    const int pix = int(e % P), oy = pix / cw, ox = pix % cw;
    const size_t plane = plane_index * P;
    float g;
    if (s.pool) {
      const int oh = s.out_h(), ow = s.out_w(), py = oy / 2, px = ox / 2;
      g = (py < oh && px < ow && pool_argmax(act, plane, cw, py, px) == pix) ? dy[plane_index * oh * ow + py * ow + px]
                                                                          : 0.0f;
    } else {
      g = dy[e];
    }
    dact[e] = (!s.relu || act.load(plane + pix) > 0.0f) ? g : 0.0f;
  }
}

__global__ void input_grad_kernel(ConvShape s, const float* __restrict__ dact, const float* __restrict__ w,
                                  float* __restrict__ dx) {
  const int tiles = tiles_of(s.in_c), n = blockIdx.x / tiles, ic0 = blockIdx.x % tiles * kOcTile;
  const int ch = s.conv_h(), cw = s.conv_w();
  float* dxn = dx + size_t(n) * s.in_size();
  const int P = s.in_h * s.in_w;
  // dx[c][y][x] = sum_o sum_k w[o][c][k] dact[o][y + pad - ky][x + pad - kx]: a correlation of dact
  // (padded by 2 - pad) with the weights flipped in both axes (k -> 8 - k).
  correlate3x3(
      dact + size_t(n) * s.act_size(), s.out_c, ch, cw, 2 - s.pad, s.in_h, s.in_w, ic0, s.in_c,
      [&](int c, int o, int k) { return w[(size_t(o) * s.in_c + c) * 9 + (8 - k)]; },
      [&](int c, int pix, float v) { dxn[size_t(c) * P + pix] = v; });
}

// One block per (c_in, c_out): the 9 weight gradients, and the bias gradient in the blocks of c_in 0.
__global__ void weight_grad_kernel(ConvShape s, const float* __restrict__ x, const float* __restrict__ dact,
                                   float* __restrict__ dw, float* __restrict__ db) {
  const int ci = blockIdx.x, co = blockIdx.y, ch = s.conv_h(), cw = s.conv_w(), P = ch * cw;
  float part[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  float bias = 0.0f;
  const int total = s.batch * P;
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int n = i / P, pix = i % P, oy = pix / cw, ox = pix % cw;
    const float g = dact[(size_t(n) * s.out_c + co) * P + pix];
    bias += g;
    if (g == 0.0f) continue;
    const float* xp = x + (size_t(n) * s.in_c + ci) * s.in_h * s.in_w;
#pragma unroll
    for (int k = 0; k < 9; ++k) {
      const int iy = oy + k / 3 - s.pad, ix = ox + k % 3 - s.pad;
      if (iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w) part[k] = fmaf(g, xp[iy * s.in_w + ix], part[k]);
    }
  }
  for (int k = 0; k < 9; ++k) {
    const float total_k = block_sum(part[k]);
    if (threadIdx.x == 0) dw[(size_t(co) * s.in_c + ci) * 9 + k] = total_k;
  }
  if (ci == 0) {
    const float total_b = block_sum(bias);
    if (threadIdx.x == 0) db[co] = total_b;
  }
}

void check_shape(const ConvShape& s) {
  check(s.batch > 0 && s.in_c > 0 && s.out_c > 0 && s.conv_h() > 0 && s.conv_w() > 0,
        "conv (cuda): empty shape");
  check(!s.bf16_act || s.pool, "conv (cuda): BF16 activations need the pool (without it act is the output y)");
  const size_t forward = shared_floats(s.in_h, s.in_w, s.pad), backward = shared_floats(s.conv_h(), s.conv_w(), 2 - s.pad);
  if (std::max(forward, backward) * sizeof(float) > kMaxShared)
    throw Error("conv (cuda): rows of " + std::to_string(s.in_w) +
                " pixels are too wide for the fused kernel's shared-memory band (about 3,000 fit); use --conv cudnn");
}

}  // namespace

size_t conv_relu_pool_workspace(const ConvShape& s) { return size_t(s.batch) * s.act_size(); }

void conv_relu_pool_forward(const ConvShape& s, const float* x, const float* w, const float* b, void* act,
                            float* y, cudaStream_t stream) {
  check_shape(s);
  const unsigned grid = unsigned(tiles_of(s.out_c)) * unsigned(s.batch);
  AWARE_LAUNCH(forward_kernel, grid, kThreads, shared_floats(s.in_h, s.in_w, s.pad) * sizeof(float), stream)(s, x, w, b, Act{act, s.bf16_act}, y);
  AWARE_CUDA_LAUNCHED();
}

void conv_relu_pool_backward(const ConvShape& s, const float* x, const float* w, const void* act, const float* dy,
                             float* dx, float* dw, float* db, float* workspace, cudaStream_t stream) {
  check_shape(s);
  float* dact = workspace;
  const size_t n = conv_relu_pool_workspace(s);
  AWARE_LAUNCH(route_kernel, std::min(blocks_for(n, kThreads), 65535), kThreads, 0, stream)(s, Act{const_cast<void*>(act), s.bf16_act}, dy, dact);
  AWARE_CUDA_LAUNCHED();
  AWARE_LAUNCH(weight_grad_kernel, dim3(s.in_c, s.out_c), kThreads, 0, stream)(s, x, dact, dw, db);
  AWARE_CUDA_LAUNCHED();
  if (dx) {
    const unsigned grid = unsigned(tiles_of(s.in_c)) * unsigned(s.batch);
    AWARE_LAUNCH(input_grad_kernel, grid, kThreads, shared_floats(s.conv_h(), s.conv_w(), 2 - s.pad) * sizeof(float), stream)(
        s, dact, w, dx);
    AWARE_CUDA_LAUNCHED();
  }
}

}  // namespace aware::cuda
