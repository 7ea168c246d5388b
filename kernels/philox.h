// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Counter-based: the random numbers of element i are a pure function of (key, counter), so dropout
// needs no stored mask, any element can be drawn in any order, and the CPU and CUDA backends draw
// the same stream. Header-only and usable from device code.
#pragma once
#include <cstdint>

#include "kernels/hd.h"

namespace aware {

struct Philox4x32 {
  uint32_t v[4];
};

AWARE_HD Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kMul0) * ctr.v[0];
    const uint64_t p1 = uint64_t(kMul1) * ctr.v[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    ctr = {{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return ctr;
}

// A uniform float in [0, 1) from the top 24 bits of a 32-bit word (exactly representable).
AWARE_HD float uniform_from_bits(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

// The stream: seed -> key; (stream id, index / 4) -> counter; word index % 4 of the block.
// `stream` separates independent uses (a dropout layer at a step, weight init, shuffles).
AWARE_HD float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t block = index >> 2;
  const Philox4x32 ctr{{uint32_t(block), uint32_t(block >> 32), uint32_t(stream), uint32_t(stream >> 32)}};
  const Philox4x32 out = philox4x32_10(ctr, uint32_t(seed), uint32_t(seed >> 32));
  return uniform_from_bits(out.v[index & 3]);
}

}  // namespace aware
