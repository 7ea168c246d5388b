#include "kernels/dropout.h"

#include "kernels/philox.h"

namespace aware::cpu {
namespace {

void apply_mask(size_t n, float rate, uint64_t seed, uint64_t stream, const float* in, float* out) {
  const float keep_scale = 1.0f / (1.0f - rate);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i)
    out[i] = philox_uniform(seed, stream, i) >= rate ? in[i] * keep_scale : 0.0f;
}

}  // namespace

void dropout_forward(size_t n, float rate, uint64_t seed, uint64_t stream, const float* x, float* y) {
  apply_mask(n, rate, seed, stream, x, y);
}

void dropout_backward(size_t n, float rate, uint64_t seed, uint64_t stream, const float* dy, float* dx) {
  apply_mask(n, rate, seed, stream, dy, dx);
}

}  // namespace aware::cpu
