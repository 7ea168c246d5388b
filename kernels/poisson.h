// Poisson draws from Philox counters (kernels/philox.h), the same on the CPU and the GPU: a draw is a
// pure function of (seed, counter), and every transcendental constant of a mean is computed once, on
// the host (poisson_constants), so that the common path of a draw is exact IEEE arithmetic on both.
//   mean < 10: inversion, walking the CDF from exp(-mean) (one uniform);
//   mean >= 10: PTRS, the transformed rejection of Hoermann (1993) that NumPy uses, exact for any mean
//              (two uniforms an attempt, 1.1 attempts on average; its rare slow path calls log and lgamma).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/hd.h"
#include "kernels/philox.h"

namespace aware {

struct PoissonConstants {
  double mean = 0;
  double exp_minus_mean = 1;                 // inversion
  double a = 0, b = 0, vr = 0, log_mean = 0;  // PTRS
  double log_invalpha = 0;
};

inline PoissonConstants poisson_constants(double mean) {
  PoissonConstants c;
  c.mean = mean;
  c.exp_minus_mean = std::exp(-mean);
  if (mean >= 10) {
    const double slam = std::sqrt(mean);
    c.b = 0.931 + 2.53 * slam;
    c.a = -0.059 + 0.02483 * c.b;
    c.vr = 0.9277 - 3.6224 / (c.b - 2);
    c.log_invalpha = std::log(1.1239 + 1.1328 / (c.b - 3.4));
    c.log_mean = std::log(mean);
  }
  return c;
}

// Two uniform doubles in [0, 1) of 53 bits from one Philox block.
struct UniformPair {
  double u, v;
};
AWARE_HD UniformPair philox_uniform_pair(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
  const Philox4x32 out = philox4x32_10({{c0, c1, c2, c3}}, uint32_t(seed), uint32_t(seed >> 32));
  const double scale = 1.0 / 9007199254740992.0;  // 2^-53
  return {double(((uint64_t(out.v[0]) << 32) | out.v[1]) >> 11) * scale,
          double(((uint64_t(out.v[2]) << 32) | out.v[3]) >> 11) * scale};
}

// One draw of Poisson(c.mean): attempt j of the draw uses counter (j, c1, c2, c3) -- callers put what
// names the draw (bin, toy, stream) in c1..c3.
AWARE_HD int64_t poisson_draw(const PoissonConstants& c, uint64_t seed, uint32_t c1, uint32_t c2, uint32_t c3) {
  if (c.mean < 10) {
    const double u = philox_uniform_pair(seed, 0, c1, c2, c3).u;
    double p = c.exp_minus_mean, cdf = p;
    int64_t k = 0;
    // Past k = 1000 the CDF of a mean below 10 is 1 to the last bit: a u above it ends there.
    while (u > cdf && k < 1000) {
      ++k;
      p = p * c.mean / double(k);
      cdf = cdf + p;
    }
    return k;
  }
  for (uint32_t attempt = 0;; ++attempt) {
    const UniformPair r = philox_uniform_pair(seed, attempt, c1, c2, c3);
    const double U = r.u - 0.5, V = r.v;
    const double us = 0.5 - (U < 0 ? -U : U);
    const double k = floor((2 * c.a / us + c.b) * U + c.mean + 0.43);
    if (us >= 0.07 && V <= c.vr) return int64_t(k);
    if (k < 0 || (us < 0.013 && V > us)) continue;
    if (log(V) + c.log_invalpha - log(c.a / (us * us) + c.b) <= -c.mean + k * c.log_mean - lgamma(k + 1))
      return int64_t(k);
  }
}

}  // namespace aware
