#include "kernels/softmax_xent.h"

#include <algorithm>
#include <cmath>

namespace aware::cpu {
namespace {

// Writes softmax(z) to p and returns log-sum-exp(z), computed stably around the row maximum.
float softmax_row(int classes, const float* z, float* p) {
  const float zmax = *std::max_element(z, z + classes);
  float sum = 0.0f;
  for (int c = 0; c < classes; ++c) sum += p[c] = std::exp(z[c] - zmax);
  for (int c = 0; c < classes; ++c) p[c] /= sum;
  return zmax + std::log(sum);
}

}  // namespace

double softmax_xent(int batch, int classes, const float* logits, const int32_t* label,
                    const float* weight, float* dlogits, float* probs) {
  double total = 0.0;
  for (int n = 0; n < batch; ++n) {
    const float* z = logits + size_t(n) * classes;
    float* d = dlogits + size_t(n) * classes;  // holds softmax(z) until the last line
    const float lse = softmax_row(classes, z, d);
    if (probs) std::copy(d, d + classes, probs + size_t(n) * classes);
    float loss;
    if (label[n] == kUniformTarget) {
      float mean = 0.0f;
      for (int c = 0; c < classes; ++c) mean += z[c];
      loss = lse - mean / classes;
      for (int c = 0; c < classes; ++c) d[c] -= 1.0f / classes;
    } else {
      loss = lse - z[label[n]];
      d[label[n]] -= 1.0f;
    }
    total += double(weight[n]) * loss;
    for (int c = 0; c < classes; ++c) d[c] *= weight[n];
  }
  return total;
}

void softmax(int batch, int classes, const float* logits, float* probs) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < batch; ++n)
    softmax_row(classes, logits + size_t(n) * classes, probs + size_t(n) * classes);
}

void step_stats(int rows, int classes, const float* probs, const int32_t* label, const double* loss, double* stats) {
  int64_t correct = 0;
  for (int r = 0; r < rows; ++r) {
    const float* p = probs + size_t(r) * classes;
    int best = 0;
    for (int c = 1; c < classes; ++c)
      if (p[c] > p[best]) best = c;
    correct += best == label[r];
  }
  stats[0] += *loss;
  stats[1] += double(correct);
}

}  // namespace aware::cpu
