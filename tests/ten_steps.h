// Ten training steps with dropout on one backend from the config's initial weights, zero momentum and a
// fixed batch schedule; the weights after them. Shared by the CUDA tests that compare two runs bit for
// bit (graphs against direct launches; two thread orders under the CUDA emulation).
#pragma once
#include <vector>

#include "model/train.h"
#include "runtime/backend.h"
#include "tools/pipeline.h"

namespace aware::testing {

inline std::vector<float> weights_after_ten_steps(Backend& backend, const RunConfig& cfg, const Events& events,
                                                  bool graphs) {
  auto m = make_model(backend, cfg, events.normal_train.event_shape, events.normaliser);
  m->use_step_graphs(graphs);
  m->set_params(initial_params(m->graph(), cfg.seed));
  m->set_momentum(std::vector<float>(m->graph().param_count(), 0.0f));
  const int B = cfg.train.batch;
  const DeviceEvents normal = m->upload(events.normal_train);
  std::vector<int64_t> index(B);
  std::vector<int32_t> label(B);
  std::vector<float> weight(B, 1.0f / B);
  for (int step = 0; step < 10; ++step) {
    for (int i = 0; i < B; ++i) {
      index[i] = (step * 13 + i * 7) % events.normal_train.rows();
      label[i] = events.normal_train.label[size_t(index[i])];
    }
    m->gather(normal, index.data(), B, 0);
    m->train_step(Pass{B, true, cfg.seed, uint64_t(step)}, label.data(), weight.data(), 0.01f, 0.9f, 0.0f, nullptr, 0);
  }
  return m->params();
}

}  // namespace aware::testing
