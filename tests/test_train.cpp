// Training: the loss of method.md on a real step, reproducibility (same seed, same weights; a killed
// and resumed run ends bit for bit where an uninterrupted one does), and checkpoint integrity.
#include <gtest/gtest.h>

#include <limits>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "kernels/softmax_xent.h"
#include "model/train.h"
#include "kernels/error.h"
#include "synthetic.h"
#include "ten_steps.h"
#include "tools/pipeline.h"

namespace aware {
namespace {

struct TrainingRun {
  RunConfig cfg;
  Events events;
  std::unique_ptr<Backend> backend = make_backend("cpu");

  explicit TrainingRun(const std::filesystem::path& data, int seed = 3)
      : cfg(parse_config(testing::synthetic_config(data, seed), "synthetic.toml")), events(load_events(cfg)) {}

  std::unique_ptr<Model> model() { return make_model(*backend, cfg, events.normal_train.event_shape, events.normaliser); }

  // Trains a stage with `model`, optionally stopping (as if killed) after `stop_after` epochs.
  void stage(Model& m, const std::string& name, const std::filesystem::path& dir, bool resume, int stop_after = -1) {
    StageOptions o;
    o.stage = name;
    o.epochs = name == "prior" ? cfg.train.epochs : cfg.train.aa_epochs;
    o.checkpoint = dir / (name + ".ckpt");
    o.log = dir / "log.jsonl";
    o.resume = resume;
    o.stop_after = stop_after;
    o.progress = false;
    train_stage(m, cfg, events.normal_train, name == "aa" ? &events.anomalies : nullptr, events.normal_test, o,
                checkpoint_base(cfg, events));
  }

  // Prior then AA, uninterrupted; the final weights.
  std::vector<float> full(const std::filesystem::path& dir) {
    auto m = model();
    m->set_params(initial_params(m->graph(), cfg.seed));
    stage(*m, "prior", dir, false);
    stage(*m, "aa", dir, false);
    return m->params();
  }
};

class TrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testing::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    testing::write_synthetic_classes(dir / "data");
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

TEST_F(TrainTest, TheSameSeedGivesTheSameWeightsAndAnotherSeedOthers) {
  const auto a = TrainingRun(dir / "data").full(dir / "a");
  const auto b = TrainingRun(dir / "data").full(dir / "b");
  const auto c = TrainingRun(dir / "data", 4).full(dir / "c");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// --conv direct: every convolution by the direct sum (the arithmetic before Winograd). Ten steps of a
// network with a second conv layer (Winograd's, forward and backward) differ from the default's only by
// rounding, and do differ: the switch reaches the kernels.
TEST_F(TrainTest, TheDirectSumTrainsAsWinogradDoesToRounding) {
  std::string text = testing::synthetic_config(dir / "data", 3);
  const std::string one_conv = R"({ type = "conv", filters = 4, padding = 1 }, { type = "relu" },)";
  ASSERT_NE(text.find(one_conv), std::string::npos);
  text.replace(text.find(one_conv), one_conv.size(),
               one_conv + R"( { type = "conv", filters = 6, padding = 1 }, { type = "relu" },)");
  const RunConfig cfg = parse_config(text, "two_convs.toml");
  const Events events = load_events(cfg);
  auto fused = make_backend("cpu", {"fused", "fp32"}), direct = make_backend("cpu", {"direct", "fp32"});
  const auto a = testing::weights_after_ten_steps(*fused, cfg, events, false);
  const auto b = testing::weights_after_ten_steps(*direct, cfg, events, false);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_NE(a, b);
  double largest = 0.0, difference = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    largest = std::max(largest, double(std::abs(a[i]))), difference = std::max(difference, double(std::abs(a[i] - b[i])));
  EXPECT_LT(difference, 1e-5 * largest);
  EXPECT_THROW(make_backend("cuda", {"direct", "fp32"}), Error);
}

TEST_F(TrainTest, AKilledAndResumedRunEndsBitForBitAsAnUninterruptedOne) {
  TrainingRun run(dir / "data");
  const auto uninterrupted = run.full(dir / "full");
  const auto killed = dir / "killed";
  {  // killed after one prior epoch
    auto m = run.model();
    m->set_params(initial_params(m->graph(), run.cfg.seed));
    run.stage(*m, "prior", killed, false, 1);
  }
  {  // a new process resumes the prior, starts AA and is killed after one AA epoch
    auto m = run.model();
    run.stage(*m, "prior", killed, true);
    run.stage(*m, "aa", killed, false, 1);
  }
  auto m = run.model();  // and another resumes AA
  run.stage(*m, "aa", killed, true);
  EXPECT_EQ(m->params(), uninterrupted);
  EXPECT_EQ(load_checkpoint(killed / "aa.ckpt").epochs_done, run.cfg.train.aa_epochs);
  // The log holds each epoch once, as the uninterrupted run's does.
  auto epochs = [](const std::filesystem::path& log) {
    std::vector<std::pair<std::string, int>> seen;
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      const auto e = nlohmann::json::parse(line);
      seen.emplace_back(e["stage"], e["epoch"]);
    }
    return seen;
  };
  EXPECT_EQ(epochs(killed / "log.jsonl"), epochs(dir / "full" / "log.jsonl"));
  EXPECT_EQ(epochs(killed / "log.jsonl").size(), size_t(run.cfg.train.epochs + run.cfg.train.aa_epochs));
}

TEST_F(TrainTest, TheStepLossIsMethodsL1PlusLambdaL2) {
  TrainingRun run(dir / "data");
  run.cfg.network.layers.erase(run.cfg.network.layers.begin() + 3);  // no dropout: train = eval forward
  auto m = run.model();
  m->set_params(initial_params(m->graph(), 5));
  const int B = run.cfg.train.batch, C = 2;
  const double lambda = run.cfg.train.lambda;
  const auto p = m->predict(run.events.normal_train.x.data(), B);
  const auto q = m->predict(run.events.anomalies.x.data(), B);
  double l1 = 0, l2 = 0;
  for (int i = 0; i < B; ++i) {
    l1 -= std::log(p[i * C + run.events.normal_train.label[i]]) / B;
    for (int c = 0; c < C; ++c) l2 -= std::log(q[i * C + c]) / C / B;  // cross-entropy to 1/C
  }
  std::vector<int64_t> index(B);
  for (int i = 0; i < B; ++i) index[i] = i;
  m->gather(m->upload(run.events.normal_train), index.data(), B, 0);
  m->gather(m->upload(run.events.anomalies), index.data(), B, B);
  std::vector<int32_t> label(2 * B, kUniformTarget);
  std::vector<float> weight(2 * B, float(lambda / B));
  for (int i = 0; i < B; ++i) label[i] = run.events.normal_train.label[i], weight[i] = 1.0f / B;
  const double loss = m->train_step(Pass{2 * B, true, 1, 0}, label.data(), weight.data(), 0.01f, 0.9f, 0.0f, nullptr, 0);
  EXPECT_NEAR(loss, l1 + lambda * l2, 1e-5 * (l1 + lambda * l2));
}

// An epoch's loss and accuracy add up where the steps run (no read per step): the same sums as the
// synchronous steps' returned losses and the host's count of correct rows, and the same weights.
TEST_F(TrainTest, EnqueuedStepsAddUpTheLossesAndAccuracyOfSynchronousSteps) {
  TrainingRun run(dir / "data");
  auto sync = run.model(), queued = run.model();
  sync->set_params(initial_params(sync->graph(), 3));
  queued->set_params(initial_params(queued->graph(), 3));
  const int B = run.cfg.train.batch, C = 2;
  std::vector<int32_t> label(B);
  std::vector<float> weight(B, 1.0f / B), probs(size_t(B) * C);
  std::vector<int64_t> index(B);
  double loss_sum = 0.0;
  int64_t correct = 0;
  queued->reset_epoch_stats();
  for (int step = 0; step < 3; ++step) {
    for (int i = 0; i < B; ++i) index[i] = (step * B + 7 * i) % run.events.normal_train.rows();
    for (int i = 0; i < B; ++i) label[i] = run.events.normal_train.label[size_t(index[i])];
    const Pass pass{B, true, 1, uint64_t(step)};
    sync->gather(sync->upload(run.events.normal_train), index.data(), B, 0);
    loss_sum += sync->train_step(pass, label.data(), weight.data(), 0.01f, 0.9f, 0.0f, probs.data(), B);
    for (int i = 0; i < B; ++i) correct += (probs[2 * i + 1] > probs[2 * i] ? 1 : 0) == label[i];
    queued->gather(queued->upload(run.events.normal_train), index.data(), B, 0);
    queued->enqueue_step(pass, label.data(), weight.data(), 0.01f, 0.9f, 0.0f, B);
  }
  const Model::EpochStats stats = queued->epoch_stats();
  EXPECT_EQ(stats.loss_sum, loss_sum);
  EXPECT_EQ(stats.correct, correct);
  EXPECT_GT(correct, 0);
  EXPECT_EQ(queued->params(), sync->params());
  queued->reset_epoch_stats();
  EXPECT_EQ(queued->epoch_stats().loss_sum, 0.0);
}

// train_stage, not a hand-made step: the aware rows of its batches carry the uniform target. (They once
// kept label 0 after the data-parallel split, which pulled them to the first class instead.)
TEST_F(TrainTest, TheAAStagePullsTheAwareClassesToTheUniformPrediction) {
  TrainingRun run(dir / "data");
  auto m = run.model();
  m->set_params(initial_params(m->graph(), run.cfg.seed));
  const EventSet& aware = run.events.anomalies;
  auto uniform_xent = [&] {  // mean cross-entropy of the aware training rows to 1/C
    const auto q = m->predict(aware.x.data(), aware.rows());
    double l = 0;
    for (float x : q) l -= std::log(double(x)) / 2.0;
    return l / double(aware.rows());
  };
  run.stage(*m, "prior", dir / "run", false);
  const double after_prior = uniform_xent();
  run.stage(*m, "aa", dir / "run", false);
  const double after_aa = uniform_xent();
  EXPECT_LT(after_aa, after_prior - 0.05) << "prior " << after_prior << ", AA " << after_aa;
  // Each AA step's loss is L1 + lambda L2 with L2 >= ln 2, so no epoch can log less than lambda ln 2.
  std::ifstream in(dir / "run" / "log.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto e = nlohmann::json::parse(line);
    if (e["stage"] == "aa") {
      EXPECT_GE(e["train_loss"].get<double>(), run.cfg.train.lambda * std::log(2.0));
    }
  }
}

TEST_F(TrainTest, CheckpointsRoundTripAndRejectCorruption) {
  Checkpoint c;
  c.config = "[run]\nseed = 1\n";
  c.stage = "aa";
  c.epochs_done = 3;
  c.epochs_total = 10;
  c.event_shape = {5, 5};
  c.classes = {"top", "qcd"};
  c.normalisation = "sum-std";
  c.col_shift.assign(25, 0.0f);
  c.col_scale.assign(25, 2.0f);
  c.params = {1.0f, -2.5f, 3.25f};
  c.momentum = {0.0f, 0.5f, 0.25f};
  const auto path = dir / "x.ckpt";
  save_checkpoint(path, c);
  const Checkpoint r = load_checkpoint(path);
  EXPECT_EQ(r.config, c.config);
  EXPECT_EQ(r.classes, c.classes);
  EXPECT_EQ(r.params, c.params);
  EXPECT_EQ(r.momentum, c.momentum);
  EXPECT_EQ(r.epochs_done, 3);
  for (const auto& f : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(f.path().string().find(".tmp"), std::string::npos) << "temporary file left behind";

  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto expect_rejected = [&](const std::string& content, const std::string& fragment) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    try {
      load_checkpoint(path);
      FAIL() << "accepted a bad checkpoint: " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos);
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 1;
  expect_rejected(flipped, "checksum");
  expect_rejected(bytes.substr(0, bytes.size() - 9), "checksum");
  expect_rejected("not a checkpoint at all", "not an aware checkpoint");

  // A valid CRC over contents no model can use: each refused, naming what is wrong.
  const auto rejected_contents = [&](auto change, const std::string& fragment) {
    Checkpoint bad = c;
    change(bad);
    save_checkpoint(path, bad);
    std::string written;
    std::ifstream in(path, std::ios::binary);
    written.assign(std::istreambuf_iterator<char>(in), {});
    expect_rejected(written, fragment);
  };
  rejected_contents([](Checkpoint& b) { b.params[1] = std::numeric_limits<float>::quiet_NaN(); }, "parameter 1 is nan");
  rejected_contents([](Checkpoint& b) { b.params[2] = std::numeric_limits<float>::infinity(); }, "parameter 2 is inf");
  rejected_contents([](Checkpoint& b) { b.normalisation = "zscore"; }, "normalisation 'zscore'");
  rejected_contents([](Checkpoint& b) { b.col_scale[3] = 0.0f; }, "normalisation column 3");
  rejected_contents([](Checkpoint& b) { b.col_shift.pop_back(); }, "24 shifts and 25 scales for events of 25 values");
  rejected_contents([](Checkpoint& b) { b.stage = "final"; }, "stage 'final'");
  rejected_contents([](Checkpoint& b) { b.classes = {"top"}; }, "fewer than two classes");
  rejected_contents([](Checkpoint& b) { b.event_shape = {0, 5}; }, "dimension of 0");
  rejected_contents([](Checkpoint& b) { b.momentum = {1.0f}; }, "momentum and parameters differ");
}

TEST_F(TrainTest, ResumingTheWrongStageIsAnError) {
  TrainingRun run(dir / "data");
  auto m = run.model();
  m->set_params(initial_params(m->graph(), 1));
  run.stage(*m, "prior", dir, false, 1);
  std::filesystem::copy_file(dir / "prior.ckpt", dir / "aa.ckpt");
  EXPECT_THROW(run.stage(*m, "aa", dir, true), Error);
}

}  // namespace
}  // namespace aware
