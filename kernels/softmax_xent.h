// Fused softmax + cross-entropy over rows of logits [batch][classes], in one pass per row.
// Row n has a hard label label[n] in [0, classes), or label[n] = kUniformTarget for the uniform
// target 1/classes (the Anomaly Awareness term: loss = logsumexp(z) - mean(z)). Each row's loss is
// multiplied by weight[n]; the kernel returns sum_n weight[n] * loss_n and writes
// dlogits[n] = weight[n] * (softmax(z_n) - target_n), and, when probs is not null, softmax(z_n).
#pragma once
#include <cstdint>

namespace aware {

constexpr int32_t kUniformTarget = -1;

namespace cpu {

double softmax_xent(int batch, int classes, const float* logits, const int32_t* label,
                    const float* weight, float* dlogits, float* probs);

// Softmax only (scoring).
void softmax(int batch, int classes, const float* logits, float* probs);

// A training step's contribution to its epoch's loss and accuracy, kept where the step runs:
// stats[0] += *loss (softmax_xent's sum), stats[1] += the rows r < rows whose largest probability
// (the first on ties) is at label[r]. On CUDA part of the step graph, so an epoch needs no per-step read.
void step_stats(int rows, int classes, const float* probs, const int32_t* label, const double* loss, double* stats);

}  // namespace cpu
}  // namespace aware

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/
#include <cuda_runtime_api.h>
namespace aware::cuda {
// The loss sum is written to *loss in device memory (no host synchronisation).
void softmax_xent(int batch, int classes, const float* logits, const int32_t* label, const float* weight,
                  float* dlogits, float* probs, double* loss, cudaStream_t stream);
void softmax(int batch, int classes, const float* logits, float* probs, cudaStream_t stream);
void step_stats(int rows, int classes, const float* probs, const int32_t* label, const double* loss, double* stats,
                cudaStream_t stream);
}  // namespace aware::cuda
#endif
