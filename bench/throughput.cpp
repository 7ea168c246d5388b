// End-to-end throughput of aware's training step and scoring on the Fig. 1 network, measured the way
// the anchor measures itself (torch_reference.py --bench): a step trains `batch` normal and
// `batch` anomalous images; images/s counts both. Scoring runs a forward-only model, as `aware score`, at
// batches of 2 x batch events. Prints one JSON line.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <random>

#include "kernels/softmax_xent.h"
#include "model/model.h"
#include "model/network.h"
#include "runtime/backend.h"

using namespace aware;

int main(int argc, char** argv) {
  CLI::App app{"aware_throughput: training and scoring images/s of the Fig. 1 network"};
  int batch = 100, threads = 0;
  double seconds = 10.0;
  std::string device = "cpu";
  BackendOptions options;
  bool graphs = true;
  app.add_option("--batch", batch, "normal images per step (as many anomalies are added)");
  app.add_option("--threads", threads, "OpenMP threads (0: default)");
  app.add_option("--seconds", seconds, "time to measure each figure");
  app.add_option("--device", device, "cpu | cuda | auto");
  app.add_option("--conv", options.conv, "CUDA: fused | cudnn");
  app.add_option("--precision", options.precision, "fp32 | bf16 | tf32 (CUDA)");
  app.add_option("--graphs", graphs, "CUDA: replay the step as one CUDA graph (1) or launch directly (0)");
  CLI11_PARSE(app, argc, argv);
  try {
    set_cpu_threads(threads);
    auto backend = make_backend(device, options);

    const int rows = 2 * batch, pixels = 625;
    Normaliser norm;
    norm.col_shift.assign(pixels, 0.0f);
    norm.col_scale.assign(pixels, 1.0f);
    Model model(*backend, paper_cnn(), {25, 25}, 2, rows, norm);
    model.set_params(initial_params(model.graph(), 1));
    model.use_step_graphs(graphs);

    EventSet events;
    events.event_shape = {25, 25};
    events.row_size = pixels;
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    events.x.resize(size_t(rows) * pixels);
    for (auto& v : events.x) v = u(gen);
    events.label.assign(rows, 0);
    const DeviceEvents dev = model.upload(events);
    std::vector<int64_t> index(rows);
    std::vector<int32_t> label(rows, kUniformTarget);
    std::vector<float> weight(rows, 1.0f / batch);
    for (int i = 0; i < rows; ++i) index[i] = i;
    for (int i = 0; i < batch; ++i) label[i] = i % 2, weight[batch + i] = 0.5f / batch;

    auto step = [&](uint64_t s) {
      model.gather(dev, index.data(), rows, 0);
      model.train_step(Pass{rows, true, 1, s}, label.data(), weight.data(), 0.01f, 0.9f, 0.0f, nullptr, 0);
    };
    for (int s = 0; s < 3; ++s) step(s);  // warm-up
    backend->synchronize();
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    int64_t steps = 0;
    while (std::chrono::duration<double>(clock::now() - t0).count() < seconds) step(uint64_t(3 + steps++));
    backend->synchronize();
    const double train_s = std::chrono::duration<double>(clock::now() - t0).count();

    // Scoring as aware score does it: a forward-only model (no gradients, no saved activations).
    Model scorer(*backend, paper_cnn(), {25, 25}, 2, rows, norm, /*training=*/false);
    scorer.set_params(initial_params(scorer.graph(), 1));
    scorer.predict(events.x.data(), rows);  // warm-up
    t0 = clock::now();
    int64_t scored = 0;
    while (std::chrono::duration<double>(clock::now() - t0).count() < seconds / 2) {
      scorer.predict(events.x.data(), rows);
      scored += rows;
    }
    const double score_s = std::chrono::duration<double>(clock::now() - t0).count();
    const nlohmann::json out = {{"device", backend->name()},
                                {"step_graphs", model.step_graphs()},
                                {"batch", batch},
                                {"threads", threads},
                                {"steps", steps},
                                {"train_images_per_s", double(steps) * rows / train_s},
                                {"score_images_per_s", double(scored) / score_s},
                                {"gflop_per_s_train", double(steps) * rows * 3.0 * model.graph().flops_per_row() / train_s / 1e9}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aware_throughput: %s\n", e.what());
    return 2;
  }
}
