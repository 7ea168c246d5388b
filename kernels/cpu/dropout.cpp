#include "kernels/dropout.h"

#include "kernels/philox.h"

namespace aware::cpu {

void dropout(size_t n, float rate, uint64_t seed, uint64_t stream, uint64_t first, const float* in,
             float* out) {
  const float keep_scale = 1.0f / (1.0f - rate);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i)
    out[i] = philox_uniform(seed, stream, first + i) >= rate ? in[i] * keep_scale : 0.0f;
}

}  // namespace aware::cpu
