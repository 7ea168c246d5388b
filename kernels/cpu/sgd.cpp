#include "kernels/sgd.h"

namespace aware::cpu {

void sgd_update(size_t n, float lr, float momentum, float weight_decay, float* w, const float* g,
                float* v) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const float grad = g[i] + weight_decay * w[i];
    v[i] = momentum * v[i] + grad;
    w[i] -= lr * v[i];
  }
}

}  // namespace aware::cpu
