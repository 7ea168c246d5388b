#include "kernels/roc.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>

#include "kernels/error.h"

namespace aware {
namespace {

std::vector<float> sorted_descending(std::span<const float> scores, const char* what) {
  check(!scores.empty(), std::string("auc: no ") + what + " events");
  for (float s : scores) check(!std::isnan(s), std::string("auc: NaN score among the ") + what + " events");
  std::vector<float> out(scores.begin(), scores.end());
  std::sort(out.begin(), out.end(), std::greater<>());
  return out;
}

// Walks the distinct score values from high to low, calling step(value, new_pos, new_neg) with the number
// of events of each class at that value. Both classes sorted once: O(n log n).
template <class Step>
void walk_thresholds(std::span<const float> pos, std::span<const float> neg, Step&& step) {
  const std::vector<float> p = sorted_descending(pos, "positive");
  const std::vector<float> n = sorted_descending(neg, "negative");
  size_t i = 0, j = 0;
  while (i < p.size() || j < n.size()) {
    const float value = i == p.size() ? n[j] : j == n.size() ? p[i] : std::max(p[i], n[j]);
    int64_t new_pos = 0, new_neg = 0;
    for (; i < p.size() && p[i] == value; ++i) ++new_pos;
    for (; j < n.size() && n[j] == value; ++j) ++new_neg;
    step(value, new_pos, new_neg);
  }
}

}  // namespace

double auc(std::span<const float> pos, std::span<const float> neg) {
  // Twice the Mann-Whitney U in integers: each group of new_neg negatives at a value pairs with the positives
  // above it (count 1) and the new_pos positives at it (count 1/2) -- the trapezoid in count units.
  int64_t tp = 0, twice_u = 0;
  walk_thresholds(pos, neg, [&](float, int64_t new_pos, int64_t new_neg) {
    twice_u += new_neg * (2 * tp + new_pos);
    tp += new_pos;
  });
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(pos.size()) * static_cast<double>(neg.size()));
}

RocCurve roc_curve(std::span<const float> pos, std::span<const float> neg) {
  RocCurve curve;
  curve.threshold.push_back(std::numeric_limits<double>::infinity());
  curve.tpr.push_back(0);
  curve.fpr.push_back(0);
  const double n_pos = static_cast<double>(pos.size()), n_neg = static_cast<double>(neg.size());
  int64_t tp = 0, fp = 0, twice_u = 0;
  walk_thresholds(pos, neg, [&](float value, int64_t new_pos, int64_t new_neg) {
    twice_u += new_neg * (2 * tp + new_pos);
    tp += new_pos;
    fp += new_neg;
    curve.threshold.push_back(value);
    curve.tpr.push_back(static_cast<double>(tp) / n_pos);
    curve.fpr.push_back(static_cast<double>(fp) / n_neg);
  });
  curve.auc = static_cast<double>(twice_u) / (2.0 * n_pos * n_neg);
  return curve;
}

double trapezoid_area(std::span<const double> fpr, std::span<const double> tpr) {
  check(fpr.size() == tpr.size(), "trapezoid_area: fpr and tpr differ in length");
  double area = 0;
  for (size_t k = 1; k < fpr.size(); ++k) area += (fpr[k] - fpr[k - 1]) * (tpr[k] + tpr[k - 1]) / 2;
  return area;
}

}  // namespace aware
