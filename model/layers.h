// The layers of a network as graph nodes. Each calls one backend kernel forward and one backward.
#pragma once
#include <memory>

#include "kernels/conv_relu_pool.h"
#include "runtime/graph.h"

namespace aware {

// conv 3x3 + bias (+ ReLU) (+ 2x2 max pool) as one fused node. `shape.batch` is ignored.
std::unique_ptr<Node> make_conv_node(const ConvShape& shape);
// Dense layer (+ ReLU).
std::unique_ptr<Node> make_linear_node(int in, int out, bool relu);
// Inverted dropout, active only in training passes.
std::unique_ptr<Node> make_dropout_node(float rate);

}  // namespace aware
