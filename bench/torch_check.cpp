// Writes what scripts/torch_equivalence.py needs to train the anchor's network (PyTorch) and aware's
// from the same initial weights on the same batches (no dropout: its masks come from other random
// streams) and compare: normalised events, labels, initial weights, weights and losses after N steps.
//   aware_torch_check DATA_DIR OUT_DIR [STEPS]
#include <cstdio>
#include <string>
#include <numeric>
#include "kernels/softmax_xent.h"
#include "model/model.h"
#include "model/data.h"
#include "runtime/npy.h"

#include <cstdlib>
using namespace aware;
int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: aware_torch_check DATA_DIR OUT_DIR [STEPS]\n");
    return 2;
  }
  const std::string data = argv[1], out = argv[2];
  const int steps = argc > 3 ? std::atoi(argv[3]) : 20;
  set_cpu_threads(2);
  auto backend = make_backend("cpu");
  ClassFile top = open_class(data, "top", 1, 1), qcd = open_class(data, "qcd", 1, 1);
  EventSet raw;
  append_events(raw, top, Part::pool, 1000, 0);
  append_events(raw, qcd, Part::pool, 1000, 1);
  Normaliser norm = Normaliser::fit("sum-std", 1.0, raw);
  // normalised events, interleaved top/qcd
  const int N = 2000, P = 625;
  std::vector<float> rs = norm.row_scales(raw.x.data(), N, P);
  EventSet x; x.event_shape = {25, 25}; x.row_size = P; x.x.resize(size_t(N) * P); x.label.resize(N);
  for (int i = 0; i < N; ++i) {
    const int src = (i % 2 == 0) ? i / 2 : 1000 + i / 2;
    for (int j = 0; j < P; ++j) x.x[size_t(i) * P + j] = raw.x[size_t(src) * P + j] * rs[src] * norm.col_scale[j];
    x.label[i] = raw.label[src];
  }
  x.class_begin = {0};
  save_npy(out + "/x.npy", x.x.data(), std::vector<int64_t>{N, 25, 25});
  std::vector<float> lab(x.label.begin(), x.label.end());
  save_npy(out + "/y.npy", lab.data(), std::vector<int64_t>{N});
  NetworkSpec spec = paper_cnn();
  for (auto& l : spec.layers) if (l.type == "dropout") l.rate = 0.0f;
  Normaliser id; id.kind = "none"; id.col_shift.assign(P, 0.0f); id.col_scale.assign(P, 1.0f);
  Model m(*backend, spec, {25, 25}, 2, 100, id);
  auto p0 = initial_params(m.graph(), 1);
  m.set_params(p0);
  m.set_momentum(std::vector<float>(p0.size(), 0.0f));
  save_npy(out + "/p0.npy", p0.data(), std::vector<int64_t>{int64_t(p0.size())});
  DeviceEvents dev = m.upload(x);
  std::vector<int64_t> idx(100);
  std::vector<float> w(100, 0.01f);
  std::vector<float> losses;
  for (int s = 0; s < steps; ++s) {
    std::iota(idx.begin(), idx.end(), int64_t(s * 100));
    m.gather(dev, idx.data(), 100, 0);
    std::vector<int32_t> l(x.label.begin() + s * 100, x.label.begin() + s * 100 + 100);
    losses.push_back(float(m.train_step(Pass{100, true, 1, uint64_t(s)}, l.data(), w.data(), 0.01f, 0.9f, 0.0f, nullptr, 0)));
  }
  auto p1 = m.params();
  save_npy(out + "/p_end.npy", p1.data(), std::vector<int64_t>{int64_t(p1.size())});
  save_npy(out + "/loss.npy", losses.data(), std::vector<int64_t>{steps});
  for (float l : losses) std::printf("%.6f ", l);
  std::printf("\n");
}
