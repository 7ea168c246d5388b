// CUDA twin of auc() in kernels/cpu/roc.cpp: the exact AUC (ties one half) by sort and search with
// Thrust: sort the negatives, then for every positive count the negatives below it and equal to it
// (two binary searches). The sum 2 * below + equal is an integer, so the result is exact and does not
// depend on the order of the reduction. Bound: the sort (N log N) at 10^7 scores and more.
#include <thrust/binary_search.h>
#include <thrust/copy.h>
#include <thrust/gather.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/fill.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>
#include <thrust/device_vector.h>
#include <thrust/functional.h>
#include <thrust/sort.h>
#include <thrust/transform_reduce.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/roc.h"

namespace aware::cuda {

double auc(std::span<const float> pos, std::span<const float> neg) {
  check(!pos.empty() && !neg.empty(), "auc (cuda): a class has no events");
  for (auto s : {pos, neg})
    for (float x : s) check(!std::isnan(x), "auc: NaN score");
  thrust::device_vector<float> d_neg(neg.begin(), neg.end()), d_pos(pos.begin(), pos.end());
  thrust::sort(d_neg.begin(), d_neg.end());
  thrust::device_vector<long long> below(pos.size()), not_above(pos.size());
  thrust::lower_bound(d_neg.begin(), d_neg.end(), d_pos.begin(), d_pos.end(), below.begin());
  thrust::upper_bound(d_neg.begin(), d_neg.end(), d_pos.begin(), d_pos.end(), not_above.begin());
  // 2 * below + equal = below + not_above.
  const long long twice = thrust::reduce(below.begin(), below.end(), 0ll) +
                          thrust::reduce(not_above.begin(), not_above.end(), 0ll);
  AWARE_CUDA_CHECK(cudaGetLastError());
  return double(twice) / (2.0 * double(pos.size()) * double(neg.size()));
}

RocCurve roc_curve(std::span<const float> pos, std::span<const float> neg) {
  check(!pos.empty() && !neg.empty(), "roc (cuda): a class has no events");
  for (auto s : {pos, neg})
    for (float x : s) check(!std::isnan(x), "roc: NaN score");
  const size_t n = pos.size() + neg.size();
  thrust::device_vector<float> score(n);
  thrust::copy(pos.begin(), pos.end(), score.begin());
  thrust::copy(neg.begin(), neg.end(), score.begin() + pos.size());
  thrust::device_vector<long long> is_pos(n, 0);  // long long: the scan counts past 2^31
  thrust::fill(is_pos.begin(), is_pos.begin() + pos.size(), 1ll);
  // Descending scores; the running counts at the last event of each distinct value are the ROC points.
  thrust::sort_by_key(score.begin(), score.end(), is_pos.begin(), thrust::greater<float>());
  thrust::device_vector<long long> tp(n), seen(n);
  thrust::inclusive_scan(is_pos.begin(), is_pos.end(), tp.begin());
  thrust::sequence(seen.begin(), seen.end(), 1ll);
  thrust::device_vector<long long> ends(n);
  const float* s = thrust::raw_pointer_cast(score.data());
  const auto last = thrust::copy_if(thrust::counting_iterator<long long>(0), thrust::counting_iterator<long long>(n),
                                    ends.begin(), [s, n] __device__(long long i) { return i + 1 == (long long)n || s[i] != s[i + 1]; });
  ends.resize(size_t(last - ends.begin()));
  thrust::device_vector<long long> tp_at(ends.size()), seen_at(ends.size());
  thrust::device_vector<float> value_at(ends.size());
  thrust::gather(ends.begin(), ends.end(), tp.begin(), tp_at.begin());
  thrust::gather(ends.begin(), ends.end(), seen.begin(), seen_at.begin());
  thrust::gather(ends.begin(), ends.end(), score.begin(), value_at.begin());
  AWARE_CUDA_CHECK(cudaGetLastError());
  const std::vector<long long> h_tp(tp_at.begin(), tp_at.end()), h_seen(seen_at.begin(), seen_at.end());
  const std::vector<float> h_value(value_at.begin(), value_at.end());

  RocCurve curve;
  curve.threshold.push_back(std::numeric_limits<double>::infinity());
  curve.tpr.push_back(0);
  curve.fpr.push_back(0);
  const double n_pos = double(pos.size()), n_neg = double(neg.size());
  long long tp_prev = 0, fp_prev = 0, twice_u = 0;
  for (size_t k = 0; k < h_tp.size(); ++k) {
    const long long fp = h_seen[k] - h_tp[k], new_pos = h_tp[k] - tp_prev, new_neg = fp - fp_prev;
    twice_u += new_neg * (2 * tp_prev + new_pos);  // the CPU's count, in the same integers
    curve.threshold.push_back(h_value[k]);
    curve.tpr.push_back(double(h_tp[k]) / n_pos);
    curve.fpr.push_back(double(fp) / n_neg);
    tp_prev = h_tp[k], fp_prev = fp;
  }
  curve.auc = double(twice_u) / (2.0 * n_pos * n_neg);
  return curve;
}

}  // namespace aware::cuda
