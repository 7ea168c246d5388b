// The two training stages of method.md section 3 and their bookkeeping: epochs, the per-epoch
// JSON log, checkpoints after every epoch, and resuming a killed run.
//
// Prior: cross-entropy over the normal classes. AA: each step adds round(ratio * batch) anomalies,
// drawn evenly from the aware classes, with the uniform target and weight lambda:
//   L = mean_normal(-log p_y) + lambda * mean_anomaly(logsumexp(z) - mean(z)).
// Every random choice (epoch order, anomaly draw, dropout mask) is a function of (seed, stage,
// epoch, step), so a resumed run repeats the uninterrupted one bit for bit.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/data.h"
#include "model/model.h"
#include "runtime/checkpoint.h"

namespace aware {

struct EpochLog {
  std::string stage;
  int epoch = 0;
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
  double seconds = 0, images_per_s = 0;
};

struct StageOptions {
  std::string stage = "prior";           // prior | aa
  int epochs = 0;
  std::filesystem::path checkpoint;      // written after every epoch (required)
  std::filesystem::path log;             // JSON line per epoch appended (optional)
  bool resume = false;                   // continue from `checkpoint` when it holds this stage
  int stop_after = -1;                   // stop after this many epochs of this call (tests: a "kill")
  bool progress = true;
};

// Mean cross-entropy and accuracy of the model on labelled events.
struct Evaluation {
  double loss = 0, accuracy = 0;
};
Evaluation evaluate(Model& model, const EventSet& events);

// A checkpoint a run with `cfg` may resume: the same seed and every setting that changes its stage's
// result (result_settings_differ); else one error, prefixed with `at`, listing what differs.
void check_resumable(const Checkpoint& c, const RunConfig& cfg, const std::string& at);

// Trains one stage. The model holds the starting weights (the prior's for AA); `base` carries the
// checkpoint's fixed fields (config, classes, normalisation). Returns the epochs run by this call.
std::vector<EpochLog> train_stage(Model& model, const RunConfig& cfg, const EventSet& normal,
                                  const EventSet* anomalies, const EventSet& test,
                                  const StageOptions& options, const Checkpoint& base);

}  // namespace aware
