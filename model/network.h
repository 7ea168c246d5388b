// Network configs: a sequence of layers, read from a config file, turned into a graph.
//
// Layer types: conv (filters, padding; 3x3, stride 1), relu, maxpool (2x2), dropout (rate),
// linear (units). The output layer, linear to the number of classes, is appended by aware.
// conv -> relu -> maxpool run as one fused node, linear -> relu as one node.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "runtime/graph.h"

#include <toml++/toml.h>

namespace aware {

struct LayerSpec {
  std::string type;  // conv | relu | maxpool | dropout | linear
  int filters = 0, padding = 0, units = 0;
  float rate = 0.0f;
};

struct NetworkSpec {
  std::vector<LayerSpec> layers;
};

// The Fig. 1 CNN of the paper (method.md section 2), without its output layer.
NetworkSpec paper_cnn();
// Appendix B's MLP (6 -> 64 -> 64 -> classes).
NetworkSpec paper_mlp();
// From a TOML array of inline tables; `where` names the config in error messages.
NetworkSpec parse_network(const toml::array& layers, const std::string& where);

// Builds the graph (not yet planned: callers request their own buffers, then call plan()) for events of shape `event_shape` ([H, W] images or [F] features).
std::unique_ptr<Graph> build_graph(Backend& backend, const NetworkSpec& spec,
                                   const std::vector<int64_t>& event_shape, int classes,
                                   int max_batch, bool gradients = true);
// The initial parameters (host memory, PyTorch's default scheme, seeded).
std::vector<float> initial_params(const Graph& graph, uint64_t seed);

}  // namespace aware
