// The network as a whole: shapes and parameter count of Fig. 1, config parsing and its errors, and
// finite-difference gradient checks of every layer inside the graph and of the whole network.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>

#include "kernels/softmax_xent.h"
#include "model/config.h"
#include "model/network.h"
#include "runtime/backend.h"
#include "kernels/error.h"

namespace aware {
namespace {

TEST(Network, PaperCnnHasTheShapesAndParametersOfFigure1) {
  auto backend = make_backend("cpu");
  auto g = build_graph(*backend, paper_cnn(), {25, 25}, 2, 4);
  g->plan();
  // conv1 30x23x23, conv2 40x23x23, conv3+pool 30x10x10, conv4+pool 40x5x5, dropout 1000, 300, 2.
  std::vector<size_t> sizes;
  for (const auto& n : g->nodes()) sizes.push_back(n->out_size);
  EXPECT_EQ(sizes, (std::vector<size_t>{30 * 23 * 23, 40 * 23 * 23, 30 * 10 * 10, 40 * 5 * 5, 1000, 300, 2}));
  const size_t params = (30 * 9 + 30) + (40 * 270 + 40) + (30 * 360 + 30) + (40 * 270 + 40) +
                        (1000 * 300 + 300) + (300 * 2 + 2);
  EXPECT_EQ(g->param_count(), params);
  // About 24 MFLOP per image forward (method.md).
  EXPECT_NEAR(g->flops_per_row() / 1e6, 24.0, 1.0);
}

TEST(Config, DefaultsAreThePapers) {
  const RunConfig c = parse_config("[data]\ndir = \"d\"\n", "minimal.toml");
  EXPECT_EQ(c.train.batch, 100);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.01);
  EXPECT_DOUBLE_EQ(c.train.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.train.lambda, 0.5);
  EXPECT_EQ(c.data.normal, (std::vector<std::string>{"top", "qcd"}));
  EXPECT_EQ(c.network.layers.size(), paper_cnn().layers.size());
}

TEST(Config, ParsesLayersAndSettings) {
  const RunConfig c = parse_config(R"(
[data]
dir = "d"
[train]
epochs = 3
lambda = 0.8
[network]
layers = [{ type = "conv", filters = 8, padding = 1 }, { type = "relu" }, { type = "maxpool" },
          { type = "dropout", rate = 0.25 }, { type = "linear", units = 16 }, { type = "relu" }]
[scan.sigma_fb]
top = 80.0
)", "x.toml");
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_DOUBLE_EQ(c.train.lambda, 0.8);
  ASSERT_EQ(c.network.layers.size(), 6u);
  EXPECT_EQ(c.network.layers[0].filters, 8);
  EXPECT_FLOAT_EQ(c.network.layers[3].rate, 0.25f);
  EXPECT_DOUBLE_EQ(c.scan.sigma_fb.at("top"), 80.0);
  EXPECT_DOUBLE_EQ(c.scan.sigma_fb.at("qcd"), 67600.0);
}

TEST(Config, SetOverridesTheFileAndTheStoredTextSaysSo) {
  const std::string file = "[data]\ndir = \"d\"\naware = [\"w\", \"r2\"]\n[train]\nlambda = 0.5\n";
  const RunConfig c = parse_config(file, "base.toml", ".", {"train.lambda=0.3", "data.aware=[\"eft\"]", "data.unseen=[\"w\"]", "run.seed=7"});
  EXPECT_DOUBLE_EQ(c.train.lambda, 0.3);
  EXPECT_EQ(c.data.aware, std::vector<std::string>{"eft"});
  EXPECT_EQ(c.seed, 7u);
  // The stored text is the merged config: parsed again it gives the same run.
  const RunConfig again = parse_config(c.text, "stored.toml");
  EXPECT_DOUBLE_EQ(again.train.lambda, 0.3);
  EXPECT_EQ(again.data.aware, c.data.aware);
  EXPECT_NE(c.text.find("--set train.lambda=0.3"), std::string::npos) << c.text;
  EXPECT_EQ(parse_config(file, "base.toml").text, file);  // without overrides: the file as written

  for (const auto& [bad, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"train.lambda", "SECTION.KEY=VALUE"}, {"lambda=0.3", "SECTION.KEY=VALUE"},
           {"data.aware=[w]", "not TOML"}, {"train.lamda=0.3", "unknown key 'lamda'"}}) {
    try {
      parse_config(file, "base.toml", ".", {bad});
      FAIL() << "no error for --set " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
}

// `text` with the one required key (data.dir) added, so that the error is the one under test.
std::string with_data_dir(const std::string& text) {
  const auto at = text.find("[data]\n");
  if (at != std::string::npos) return std::string(text).insert(at + 7, "dir = \"d\"\n");
  return text + "\n[data]\ndir = \"d\"\n";
}

void expect_error(const std::string& text, const std::string& fragment) {
  try {
    parse_config(with_data_dir(text), "bad.toml");
    FAIL() << "no error for: " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.toml"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Config, BadInputGivesOneClearError) {
  expect_error("[train]\nepoch = 3\n", "unknown key 'epoch'");
  expect_error("[train]\nepochs = \"ten\"\n", "train.epochs must be an integer");
  expect_error("[trian]\n", "unknown section [trian]");
  expect_error("[train\n", "bad.toml:1");
  expect_error("[network]\nlayers = [{ type = \"convolution\" }]\n", "unknown layer type 'convolution'");
  expect_error("[network]\nlayers = [{ type = \"conv\", filters = 4, kernel = 5 }]\n", "3x3");
  expect_error("[data]\nnormalisation = \"zscore\"\n", "zscore");
  expect_error("[data]\nnormal = [\"top\", \"zz\"]\n", "no cross-section for the normal class 'zz'");
  expect_error("[network]\npreset = 3\n", "network.preset must be a string");
  // Values of the right type that are out of range: refused when read, before any training.
  expect_error("[train]\nbatch = 4294967396\n", "train.batch must be an integer from");
  expect_error("[train]\nepochs = 4294967297\n", "train.epochs must be an integer from");
  expect_error("[run]\nseed = -1\n", "run.seed must be an integer from 0");
  expect_error("[run]\nthreads = -4\n", "run.threads must be 0 (all cores)");
  expect_error("[run]\nthreads = 100000\n", "run.threads must be 0 (all cores)");
  expect_error("[run]\ndevice = \"gpu\"\n", "run.device must be cpu, cuda or auto (got 'gpu')");
  expect_error("[train]\nmomentum = -3\n", "train.momentum must be in [0, 1)");
  expect_error("[train]\nlr = inf\n", "train.lr must be a finite number");
  expect_error("[train]\nlambda = inf\n", "train.lambda must be a finite number");
  expect_error("[train]\nlambda = nan\n", "train.lambda must be a finite number");
  expect_error("[data]\nn_test = 0\n", "n_test and n_train must be positive");
  expect_error("[data]\nscale = 0.0\n", "data.scale must be positive");
  expect_error("[scan]\nwidths = [0.1, 1.5]\n", "scan.widths must be in (0, 1]");
  expect_error("[scan]\nluminosities = [100, inf]\n", "scan.luminosities must be an array of finite numbers");
  expect_error("[data]\nnormal = [\"top\", \"qcd\", \"w\", \"eft\"]\n", "data.normal takes two or three classes (got 4)");
  expect_error("[scan]\ntoys = -1\n", "scan.toys must be 0 (none) to 2^32");
  expect_error("[scan]\ninjected_toys = 0\n", "scan.injected_toys must be 1 to 2^32");
  expect_error("[scan]\nfixed_window = [0.7, 0.3]\n", "scan.fixed_window must be [lo, hi] with 0 <= lo < hi <= 1");
  expect_error("[scan]\ninject_fb = [1.0, -2.0]\n", "scan.inject_fb must be positive cross-sections (fb)");
  expect_error("[data]\nnormal = [\"top\", \"qcd\"]\naware = [\"w\", \"qcd\"]\n", "class 'qcd' stands twice");
  // A class that data.dir does not hold: named as such (not as a missing cross-section), with the
  // classes it does hold; for a normal class as the config is read, for every class when a run loads it.
  const auto dir = std::filesystem::temp_directory_path() / ("aware_classes_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "data");
  for (const char* c : {"top", "qcd", "w", "r2", "r3", "r4", "eft"}) std::ofstream(dir / "data" / (std::string(c) + ".npy.gz"));
  const std::string data = "[data]\ndir = \"data\"\n";
  for (const auto& [text, fragment] : std::vector<std::pair<std::string, std::string>>{
           {data + "normal = [\"top\", \"qcdd\"]\n", "data.normal: no class 'qcdd' in "},
           {data + "aware = [\"ww\"]\n", "data.aware: no class 'ww' in "},
           {data + "unseen = [\"eftx\"]\n", "data.unseen: no class 'eftx' in "}}) {
    std::ofstream(dir / "run.toml") << text;
    try {
      load_config(dir / "run.toml");
      ADD_FAILURE() << "no error for: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("it holds eft, qcd, r2, r3, r4, top, w)"), std::string::npos) << e.what();
    }
  }
  std::ofstream(dir / "run.toml") << "[data]\ndir = \"none\"\n";
  EXPECT_THROW(load_config(dir / "run.toml"), Error);
  std::filesystem::remove_all(dir);
  try {
    parse_config("[train]\nepochs = 1\n", "nodata.toml");
    FAIL() << "data.dir is required";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.dir is required"), std::string::npos) << e.what();
  }
}

TEST(Network, MaxpoolMustFollowAConv) {
  auto backend = make_backend("cpu");
  NetworkSpec spec{{{"linear", 0, 0, 8}, {"maxpool"}}};
  EXPECT_THROW(build_graph(*backend, spec, {6}, 2, 2), Error);
}

// ---- gradient checks through the graph ----------------------------------------------------------

struct Fixture {
  std::unique_ptr<Backend> backend = make_backend("cpu");
  std::unique_ptr<Graph> graph;
  std::vector<float> x, weight;
  std::vector<int32_t> label;
  int batch = 5, classes = 3;

  Fixture(const NetworkSpec& spec, std::vector<int64_t> shape) {
    graph = build_graph(*backend, spec, shape, classes, batch);
    graph->plan();
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    x.resize(graph->input_size() * batch);
    for (auto& v : x) v = u(gen);
    const auto p = initial_params(*graph, 3);
    std::copy(p.begin(), p.end(), graph->params());
    // Two hard labels, the rest the uniform target (an AA batch), with the loss weights of method.md.
    label = {0, 2, kUniformTarget, kUniformTarget, 1};
    weight = {1.0f / 3, 1.0f / 3, 0.25f, 0.25f, 1.0f / 3};
  }
  // Loss at the current parameters, same dropout mask every time (same seed and step).
  double loss() {
    std::copy(x.begin(), x.end(), graph->input());
    const Pass pass{batch, true, 11, 5};
    graph->forward(pass);
    return cpu::softmax_xent(batch, classes, graph->output(), label.data(), weight.data(), graph->output_grad(), nullptr);
  }
  std::vector<float> gradient() {
    loss();
    graph->backward(Pass{batch, true, 11, 5});
    return {graph->grads(), graph->grads() + graph->param_count()};
  }
};

void check_gradients(Fixture& f) {
  const std::vector<float> g = f.gradient();
  float* p = f.graph->params();
  // Every layer: a few parameters of each node, by central differences in float.
  for (const auto& node : f.graph->nodes()) {
    const size_t n = node->param_count();
    for (size_t k = 0; k < n; k += std::max<size_t>(1, n / 5)) {
      const size_t i = node->param_offset + k;
      const float keep = p[i], h = 1e-2f;
      p[i] = keep + h;
      const double up = f.loss();
      p[i] = keep - h;
      const double down = f.loss();
      p[i] = keep;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(g[i], numeric, 2e-3 + 2e-2 * std::abs(numeric)) << node->describe() << " parameter " << k;
    }
  }
  // The whole network: the directional derivative along random directions.
  std::mt19937 gen(5);
  std::normal_distribution<float> nd;
  const std::vector<float> base(p, p + f.graph->param_count());
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<float> d(base.size());
    double gd = 0, norm = 0;
    for (size_t i = 0; i < d.size(); ++i) d[i] = nd(gen), norm += double(d[i]) * d[i];
    for (size_t i = 0; i < d.size(); ++i) d[i] /= float(std::sqrt(norm)), gd += double(g[i]) * d[i];
    const double h = 1e-2;
    for (size_t i = 0; i < d.size(); ++i) p[i] = base[i] + float(h) * d[i];
    const double up = f.loss();
    for (size_t i = 0; i < d.size(); ++i) p[i] = base[i] - float(h) * d[i];
    const double down = f.loss();
    std::copy(base.begin(), base.end(), p);
    EXPECT_NEAR(gd, (up - down) / (2 * h), 1e-3 + 2e-2 * std::abs(gd)) << "direction " << trial;
  }
}

TEST(GradientCheck, SmallCnnEveryLayerAndWholeNetwork) {
  NetworkSpec spec{{{"conv", 4, 1}, {"relu"}, {"conv", 5, 0}, {"relu"}, {"maxpool"}, {"conv", 3, 1},
                    {"dropout", 0, 0, 0, 0.3f}, {"linear", 0, 0, 7}, {"relu"}}};
  Fixture f(spec, {9, 9});
  check_gradients(f);
}

TEST(GradientCheck, MlpOfAppendixB) {
  Fixture f(paper_mlp(), {6});
  check_gradients(f);
}

}  // namespace
}  // namespace aware
