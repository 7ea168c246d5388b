// Counter-based random numbers for the host side (shuffles, splits, sampling), built on the same
// Philox 4x32-10 as dropout: every draw is a pure function of (seed, stream, index), so a resumed run
// redraws exactly what the uninterrupted run drew.
#pragma once
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/philox.h"

namespace aware {

inline uint64_t philox_u64(uint64_t seed, uint64_t stream, uint64_t index) {
  const Philox4x32 ctr{{uint32_t(index), uint32_t(index >> 32), uint32_t(stream), uint32_t(stream >> 32)}};
  const Philox4x32 out = philox4x32_10(ctr, uint32_t(seed), uint32_t(seed >> 32));
  return (uint64_t(out.v[0]) << 32) | out.v[1];
}

// Uniform integer in [0, n) (multiply-shift; the bias n / 2^64 is far below anything measurable).
inline uint64_t philox_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t n) {
  return uint64_t((__uint128_t(philox_u64(seed, stream, index)) * n) >> 64);
}

// A seeded permutation of 0..n-1 (Fisher-Yates).
inline std::vector<int64_t> philox_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> p(size_t(n > 0 ? n : 0));
  std::iota(p.begin(), p.end(), int64_t(0));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[size_t(i)], p[philox_below(seed, stream, uint64_t(i), uint64_t(i + 1))]);
  return p;
}

// Stream ids: distinct high bytes keep the uses of one seed independent.
enum StreamKind : uint64_t {
  kStreamSplit = 1ull << 56,     // + class index: train/test split of a class file
  kStreamInit = 2ull << 56,      // + node index: weight initialisation
  kStreamShuffle = 3ull << 56,   // + (stage << 32) + epoch: the epoch's order of normal events
  kStreamAnomaly = 4ull << 56,   // + the global step (stage << 40 + step): the step's anomaly draw
};

}  // namespace aware
