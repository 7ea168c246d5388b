#include "model/network.h"

#include <toml++/toml.h>

#include <algorithm>

#include "model/layers.h"
#include "kernels/error.h"
#include "runtime/rng.h"

namespace aware {

NetworkSpec paper_cnn() {
  return {{{"conv", 30, 0}, {"relu"}, {"conv", 40, 1}, {"relu"}, {"conv", 30, 0}, {"relu"},
           {"maxpool"}, {"conv", 40, 1}, {"relu"}, {"maxpool"}, {"dropout", 0, 0, 0, 0.3f},
           {"linear", 0, 0, 300}, {"relu"}}};
}

NetworkSpec paper_mlp() {
  return {{{"linear", 0, 0, 64}, {"relu"}, {"linear", 0, 0, 64}, {"relu"}}};
}

NetworkSpec parse_network(const toml::array& layers, const std::string& where) {
  NetworkSpec spec;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string at = where + ": network.layers[" + std::to_string(i) + "]";
    const toml::table* t = layers[i].as_table();
    check(t != nullptr, at + " must be a table such as { type = \"conv\", filters = 30 }");
    LayerSpec l;
    l.type = t->get_as<std::string>("type") ? t->get_as<std::string>("type")->get() : "";
    auto integer = [&](const char* key, int fallback) {
      const auto* v = t->get_as<int64_t>(key);
      return v ? int(v->get()) : fallback;
    };
    std::vector<std::string> allowed{"type"};
    if (l.type == "conv") {
      l.filters = integer("filters", 0);
      l.padding = integer("padding", 0);
      check(l.filters > 0, at + ": conv needs filters > 0");
      check(l.padding == 0 || l.padding == 1, at + ": conv padding must be 0 or 1 (3x3 kernels)");
      check(integer("kernel", 3) == 3, at + ": only 3x3 kernels are supported");
      allowed = {"type", "filters", "padding", "kernel"};
    } else if (l.type == "linear") {
      l.units = integer("units", 0);
      check(l.units > 0, at + ": linear needs units > 0");
      allowed = {"type", "units"};
    } else if (l.type == "dropout") {
      l.rate = float(t->get("rate") ? t->get("rate")->value_or(-1.0) : -1.0);
      check(l.rate >= 0.0f && l.rate < 1.0f, at + ": dropout needs 0 <= rate < 1");
      allowed = {"type", "rate"};
    } else if (l.type == "maxpool") {
      check(integer("size", 2) == 2, at + ": only 2x2 max pooling is supported");
      allowed = {"type", "size"};
    } else {
      check(l.type == "relu", at + ": unknown layer type '" + l.type +
                                  "' (conv, relu, maxpool, dropout, linear)");
    }
    for (auto&& [key, value] : *t)
      check(std::find(allowed.begin(), allowed.end(), std::string(key.str())) != allowed.end(),
            at + ": unknown key '" + std::string(key.str()) + "' for a " + l.type + " layer");
    spec.layers.push_back(l);
  }
  return spec;
}

std::unique_ptr<Graph> build_graph(Backend& backend, const NetworkSpec& spec,
                                   const std::vector<int64_t>& event_shape, int classes,
                                   int max_batch, bool gradients) {
  check(event_shape.size() == 1 || event_shape.size() == 2,
        "network: events must be images [H, W] or feature vectors [F]");
  // Current tensor per event: c x h x w (features: f x 1 x 1 with "flat" set).
  int c = 1, h = int(event_shape[0]), w = event_shape.size() == 2 ? int(event_shape[1]) : 1;
  bool flat = event_shape.size() == 1;
  if (flat) std::swap(c, h);
  size_t input_size = size_t(c) * h * w;
  auto graph = std::make_unique<Graph>(backend, input_size, max_batch, gradients);
  const auto& L = spec.layers;
  auto next_is = [&](size_t i, const char* type) { return i + 1 < L.size() && L[i + 1].type == type; };
  for (size_t i = 0; i < L.size(); ++i) {
    const std::string at = "network layer " + std::to_string(i) + " (" + L[i].type + ")";
    if (L[i].type == "conv") {
      check(!flat, at + ": a conv cannot follow a linear layer or take feature vectors");
      ConvShape s{0, c, h, w, L[i].filters, L[i].padding, false, false};
      check(s.conv_h() > 0 && s.conv_w() > 0, at + ": the image is too small for a 3x3 conv");
      if (next_is(i, "relu")) s.relu = true, ++i;
      if (next_is(i, "maxpool")) s.pool = true, ++i;
      check(!s.pool || (s.conv_h() >= 2 && s.conv_w() >= 2), at + ": too small to pool");
      graph->add(make_conv_node(s), s.out_size());
      c = s.out_c, h = s.out_h(), w = s.out_w();
    } else if (L[i].type == "linear") {
      const int in = c * h * w;
      const bool relu = next_is(i, "relu");
      if (relu) ++i;
      graph->add(make_linear_node(in, L[i - relu].units, relu), L[i - relu].units);
      c = L[i - relu].units, h = w = 1, flat = true;
    } else if (L[i].type == "dropout") {
      graph->add(make_dropout_node(L[i].rate), size_t(c) * h * w);
    } else {
      throw Error(at + ": must follow a conv (relu, maxpool) or a linear layer (relu)");
    }
  }
  graph->add(make_linear_node(c * h * w, classes, false), classes);
  return graph;
}

std::vector<float> initial_params(const Graph& graph, uint64_t seed) {
  std::vector<float> params(graph.param_count());
  for (const auto& node : graph.nodes())
    node->init_params(params.data() + node->param_offset, seed, kStreamInit + node->index);
  return params;
}

}  // namespace aware
