// BF16 storage (--precision bf16): the upper 16 bits of an IEEE float, rounded to nearest even.
// Arithmetic stays FP32: values are widened on load and rounded once on store. The same two
// functions on the host and the device, so the CPU and CUDA twins round identically.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>

#include "kernels/hd.h"

namespace aware {

using bf16 = uint16_t;  // storage only; never computed with

#if defined(__CUDA_ARCH__)
AWARE_HD uint32_t float_bits(float f) { return __float_as_uint(f); }
AWARE_HD float bits_float(uint32_t u) { return __uint_as_float(u); }
#else
AWARE_HD uint32_t float_bits(float f) { return std::bit_cast<uint32_t>(f); }
AWARE_HD float bits_float(uint32_t u) { return std::bit_cast<float>(u); }
#endif

AWARE_HD bf16 to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16((u >> 16) | 0x40u);  // NaN stays a (quiet) NaN
  return bf16((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);                 // ties to even
}

AWARE_HD float from_bf16(bf16 h) { return bits_float(uint32_t(h) << 16); }

// A stored value as FP32, whichever the storage (the gather kernels read both).
AWARE_HD float widen(float v) { return v; }
AWARE_HD float widen(bf16 v) { return from_bf16(v); }

// The value a float keeps through BF16 storage.
AWARE_HD float round_bf16(float f) { return from_bf16(to_bf16(f)); }

// n floats to BF16 (host: events before they go to a backend with bf16 storage).
inline void to_bf16(const float* in, size_t n, bf16* out) {
  for (size_t i = 0; i < n; ++i) out[i] = to_bf16(in[i]);
}

}  // namespace aware
