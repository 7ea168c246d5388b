// Inverted dropout with a counter-based mask: element i of stream `stream` is kept when
// philox_uniform(seed, stream, i) >= rate, and scaled by 1 / (1 - rate). The backward pass is the
// same call on the gradient (the mask is redrawn, so nothing is stored); the CUDA twin draws the
// identical mask.
#pragma once
#include <cstddef>
#include <cstdint>

namespace aware::cpu {

void dropout(size_t n, float rate, uint64_t seed, uint64_t stream, const float* in, float* out);

}  // namespace aware::cpu
