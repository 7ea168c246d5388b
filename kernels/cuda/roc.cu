// CUDA twin of auc() in kernels/cpu/roc.cpp: the exact AUC (ties one half) by sort and search with
// Thrust: sort the negatives, then for every positive count the negatives below it and equal to it
// (two binary searches). The sum 2 * below + equal is an integer, so the result is exact and does not
// depend on the order of the reduction. Bound: the sort (N log N) at 10^7 scores and more.
#include <thrust/binary_search.h>
#include <thrust/device_vector.h>
#include <thrust/functional.h>
#include <thrust/sort.h>
#include <thrust/transform_reduce.h>

#include <cmath>

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

}  // namespace aware::cuda
