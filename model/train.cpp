#include "model/train.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "kernels/softmax_xent.h"
#include "runtime/communicator.h"
#include "kernels/error.h"
#include "runtime/progress.h"
#include "runtime/rng.h"

namespace aware {
namespace {

int argmax(const float* p, int n) { return int(std::max_element(p, p + n) - p); }

// Keeps the log's lines of other stages and of this stage's epochs before `first_epoch`: a fresh
// stage drops its old lines, a resumed one those of the epochs it will run again.
void trim_log(const std::filesystem::path& path, const std::string& stage, int first_epoch) {
  if (path.empty() || !std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto e = nlohmann::json::parse(line, nullptr, false);
    if (e.is_discarded()) continue;  // a torn last line of a killed run
    if (e.value("stage", "") != stage || e.value("epoch", 0) < first_epoch) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

void append_log(const std::filesystem::path& path, const EpochLog& e) {
  if (path.empty()) return;
  const nlohmann::json line = {{"stage", e.stage},           {"epoch", e.epoch},
                               {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                               {"test_loss", e.test_loss},   {"test_accuracy", e.test_accuracy},
                               {"seconds", e.seconds},       {"images_per_s", e.images_per_s}};
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::app);
  check(bool(out), path.string() + ": cannot append to the log");
  out << line.dump() << "\n";
  out.flush();
  check(bool(out), path.string() + ": cannot append to the log (disk full?)");
}

}  // namespace

Evaluation evaluate(Model& model, const EventSet& events) {
  const std::vector<float> p = model.predict(events.x.data(), events.rows());
  const int c = model.classes();
  double loss = 0.0;
  int64_t correct = 0;
  for (int64_t i = 0; i < events.rows(); ++i) {
    const float* row = p.data() + i * c;
    const int32_t y = events.label[size_t(i)];
    loss -= std::log(std::max(double(row[y]), 1e-30));
    correct += argmax(row, c) == y;
  }
  const double n = double(std::max<int64_t>(events.rows(), 1));
  return {loss / n, double(correct) / n};
}

void check_resumable(const Checkpoint& c, const RunConfig& cfg, const std::string& at) {
  check(c.seed == cfg.seed, at + "was written with seed " + std::to_string(c.seed) + ", this run has seed " +
                                std::to_string(cfg.seed));
  // Every setting that changes the result, not the seed alone: a resumed run is the run it continues.
  const auto differ = result_settings_differ(parse_config(c.config, at + "its stored config"), cfg, c.stage);
  if (differ.empty()) return;
  std::string list;
  for (const auto& d : differ) list += "\n  " + d;
  throw Error(at + "was written with other settings than this run's (checkpoint vs now):" + list +
              "\nrestore them, or start a new run in another output directory");
}

std::vector<EpochLog> train_stage(Model& model, const RunConfig& cfg, const EventSet& normal,
                                  const EventSet* anomalies, const EventSet& test,
                                  const StageOptions& options, const Checkpoint& base) {
  const bool aa = options.stage == "aa";
  check(options.stage == "prior" || options.stage == "aa", "train: stage must be prior or aa");
  check(!aa || (anomalies && anomalies->rows() > 0), "train: the AA stage needs aware classes");
  const TrainConfig& t = cfg.train;
  const int B = t.batch;
  const int A = aa ? int(std::lround(t.ratio * B)) : 0;
  check(B + A <= model.max_batch(), "train: the model was planned for a smaller batch");
  const int64_t steps = normal.rows() / B;  // the last partial batch is dropped, as the anchor does
  check(steps > 0, "train: fewer normal training events than one batch");
  const uint64_t stage_id = aa ? 1 : 0;

  int first_epoch = 0;
  std::vector<float> zeros(model.graph().param_count(), 0.0f);
  model.set_momentum(zeros);  // a fresh optimiser per stage, as in the anchor
  if (options.resume && std::filesystem::exists(options.checkpoint)) {
    const Checkpoint c = load_checkpoint(options.checkpoint);
    const std::string at = options.checkpoint.string() + ": ";
    check(c.stage == options.stage, at + "holds stage '" + c.stage + "', cannot resume stage '" + options.stage + "'");
    check_resumable(c, cfg, at);
    check(c.classes == base.classes && c.event_shape == base.event_shape && c.normalisation == base.normalisation,
          at + "was written for other classes, events or normalisation than this run's");
    model.set_params(c.params);
    model.set_momentum(c.momentum);
    first_epoch = int(c.epochs_done);
  }

  // Data parallel: every rank draws the same global batch and trains on its share of the normal
  // rows and of the anomaly rows; the gradients are summed (comm.sum) before the update.
  Communicator& comm = world();
  const int R = comm.size(), r = comm.rank();
  const int nb0 = r * B / R, nb = (r + 1) * B / R - nb0, na0 = r * A / R, na = (r + 1) * A / R - na0;
  if (comm.root()) trim_log(options.log, options.stage, first_epoch);
  const DeviceEvents normal_dev = model.upload(normal);
  const DeviceEvents anomaly_dev = aa ? model.upload(*anomalies) : DeviceEvents{};
  // Loss weights: the means of method.md as weighted sums, lambda folded into the anomaly rows.
  std::vector<int32_t> label(size_t(B + A), kUniformTarget);
  std::vector<float> weight(size_t(B + A), 1.0f / float(B));
  for (int j = 0; j < A; ++j) weight[size_t(B + j)] = float(t.lambda / A);
  std::vector<int64_t> index(size_t(B + A));
  std::vector<int32_t> local_label(size_t(nb + na), kUniformTarget);  // the anomaly rows keep theirs
  std::vector<float> local_weight(size_t(nb + na));
  for (int i = 0; i < nb; ++i) local_weight[size_t(i)] = weight[size_t(nb0 + i)];
  for (int j = 0; j < na; ++j) local_weight[size_t(nb + j)] = weight[size_t(B + na0 + j)];
  const int n_aware = aa ? int(anomalies->class_begin.size()) : 0;

  std::vector<EpochLog> logs;
  for (int epoch = first_epoch; epoch < options.epochs; ++epoch) {
    if (options.stop_after >= 0 && int(logs.size()) >= options.stop_after) break;
    const std::vector<int64_t> order =
        philox_permutation(normal.rows(), cfg.seed, kStreamShuffle + (stage_id << 32) + uint64_t(epoch));
    ProgressBar bar(options.stage + " epoch " + std::to_string(epoch + 1) + "/" +
                        std::to_string(options.epochs), steps * (B + A), "img", options.progress && comm.root());
    model.reset_epoch_stats();  // the loss and accuracy add up on the device: no read per step
    for (int64_t s = 0; s < steps; ++s) {
      const uint64_t step = (stage_id << 40) + uint64_t(epoch) * uint64_t(steps) + uint64_t(s);
      for (int i = 0; i < B; ++i) {
        index[size_t(i)] = order[size_t(s * B + i)];
        label[size_t(i)] = normal.label[size_t(index[size_t(i)])];
      }
      model.gather(normal_dev, index.data() + nb0, nb, 0);
      if (A > 0) {
        // Evenly over the aware classes; the class that gets the remainder rotates with the step.
        for (int j = 0; j < A; ++j) {
          const int k = int((uint64_t(j) + step) % uint64_t(n_aware));
          const int64_t begin = anomalies->class_begin[size_t(k)];
          const int64_t end = k + 1 < n_aware ? anomalies->class_begin[size_t(k + 1)] : anomalies->rows();
          index[size_t(B + j)] = begin + int64_t(philox_below(cfg.seed, kStreamAnomaly + step, uint64_t(j),
                                                              uint64_t(end - begin)));
        }
        model.gather(anomaly_dev, index.data() + B + na0, na, nb);
      }
      for (int i = 0; i < nb; ++i) local_label[size_t(i)] = label[size_t(nb0 + i)];
      Pass pass{nb + na, true, cfg.seed, step};
      pass.split = nb;
      pass.first = uint64_t(nb0);
      pass.second = uint64_t(B + na0);
      model.enqueue_step(pass, local_label.data(), local_weight.data(), float(t.lr), float(t.momentum),
                         float(t.weight_decay), nb, &comm);
      if (bar.due((s + 1) * (B + A))) {  // a terminal's bar, ~10 times a second: the one read in an epoch
        char extra[64];
        std::snprintf(extra, sizeof extra, "loss %.4f", model.epoch_stats().loss_sum / double(s + 1));
        bar.update((s + 1) * (B + A), extra);
      }
    }
    const Model::EpochStats stats = model.epoch_stats();
    double totals[2] = {stats.loss_sum, double(stats.correct)};
    comm.sum(totals, 2);
    const double loss_sum = totals[0];
    const int64_t correct = int64_t(totals[1]);
    EpochLog e;
    e.stage = options.stage;
    e.epoch = epoch;
    e.seconds = bar.seconds();
    e.images_per_s = double(steps * (B + A)) / std::max(e.seconds, 1e-9);
    e.train_loss = loss_sum / double(steps);
    e.train_accuracy = double(correct) / double(steps * B);
    // A diverged stage stops here, before its NaN weights reach a checkpoint (which would replace the
    // last good one) or the test set's evaluation.
    check(std::isfinite(e.train_loss),
          options.stage + " epoch " + std::to_string(epoch + 1) + ": the training loss is " + std::to_string(e.train_loss) +
              ": training diverged (lower train.lr; the checkpoint of the last epoch is kept)");
    const Evaluation ev = evaluate(model, test);
    e.test_loss = ev.loss;
    e.test_accuracy = ev.accuracy;
    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.4f acc %.3f | test loss %.4f acc %.3f", e.train_loss,
                  e.train_accuracy, e.test_loss, e.test_accuracy);
    bar.finish(extra);
    if (!stderr_is_terminal() && options.progress && comm.root())
      std::fprintf(stderr, "%s epoch %d/%d: %s, %.0f img/s\n", e.stage.c_str(), epoch + 1,
                   options.epochs, extra, e.images_per_s);

    if (comm.root()) {  // one writer: rank 0 (every rank holds the same weights)
      Checkpoint c = base;
      c.stage = options.stage;
      c.epochs_done = epoch + 1;
      c.epochs_total = options.epochs;
      c.seed = cfg.seed;
      c.params = model.params();
      c.momentum = model.momentum();
      append_log(options.log, e);  // first: a kill between the two repeats the epoch, losing no line
      save_checkpoint(options.checkpoint, c);
    }
    logs.push_back(e);
  }
  return logs;
}

}  // namespace aware
