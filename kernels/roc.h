// ROC and AUC of the normal task: positives (top) against negatives (qcd), score P(Top).
// Ties count one half (Mann-Whitney), as in the PyTorch anchor's rank formula.
#pragma once
#include <span>
#include <vector>

namespace aware {

// Exact AUC = P(pos > neg) + P(pos == neg) / 2 over all (pos, neg) pairs, in O(n log n).
// Throws aware::Error for an empty class or a NaN score.
double auc(std::span<const float> pos, std::span<const float> neg);

// The ROC curve, one point per distinct score value, from (0, 0) to (1, 1).
// Point i selects the events with score >= threshold[i]; point 0 has threshold +infinity (nothing selected).
// Tied scores of both classes make a single diagonal step, so the trapezoid area equals auc() exactly.
struct RocCurve {
  std::vector<double> threshold, tpr, fpr;
  double auc = 0;
};
RocCurve roc_curve(std::span<const float> pos, std::span<const float> neg);

// Trapezoid area under (fpr, tpr): equals RocCurve::auc for an unthinned curve.
double trapezoid_area(std::span<const double> fpr, std::span<const double> tpr);

}  // namespace aware

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/roc.cu
namespace aware::cuda {
// The same AUC on the GPU (Thrust sort and binary searches); exact, as the CPU's.
double auc(std::span<const float> pos, std::span<const float> neg);
// The ROC curve on the GPU (sort, scans, one point per distinct score): the CPU's points and AUC.
RocCurve roc_curve(std::span<const float> pos, std::span<const float> neg);
}  // namespace aware::cuda
#endif
