// The paper's pipeline from one config (method.md): prior run, AA run, scores of every class's test
// set after each, and the analysis (ROC/AUC, central fractions, histograms, window scans, reach).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/data.h"
#include "model/model.h"
#include "model/train.h"
#include "runtime/backend.h"
#include "runtime/checkpoint.h"

namespace aware {

// The events of a run, split and normalised as the config says.
struct Events {
  std::vector<ClassFile> files;     // normal, then aware, then unseen classes
  EventSet normal_train, anomalies, normal_test;
  Normaliser normaliser;
  std::vector<std::string> classes() const;  // every class name, in file order
  const ClassFile& file(const std::string& name) const;
};
Events load_events(const RunConfig& cfg);

// The fixed part of every checkpoint of this run.
Checkpoint checkpoint_base(const RunConfig& cfg, const Events& events);

// A model for this run's network, planned for a training step (batch + anomalies).
std::unique_ptr<Model> make_model(Backend& backend, const RunConfig& cfg, const std::vector<int64_t>& event_shape,
                                  const Normaliser& normaliser);

// Scores (softmax, [N][classes]) of each class's test set.
std::map<std::string, std::vector<float>> score_test_sets(Model& model, const Events& events);

// AUC, central fractions, histograms and window scans of one stage; the JSON report, with the CSV
// curves written to `dir` under the prefix `stage`.
nlohmann::json analyse(const RunConfig& cfg, const std::map<std::string, std::vector<float>>& scores,
                       int classes, const std::filesystem::path& dir, const std::string& stage);

struct RunOptions {
  std::filesystem::path out = "out";
  bool resume = false;
  bool progress = true;
  // A finished prior of the same data, seed and network (another run's prior.ckpt): the AA stage starts
  // from it and the prior is not trained again (leave-one-out and lambda scans share one prior).
  std::filesystem::path prior;
};

// One training stage from a config (aware train, aware.train): the prior from the seed's initial
// weights, or AA from `init` (a prior's checkpoint); STAGE.ckpt and log.jsonl in `out`.
struct TrainOptions {
  std::string stage = "prior";      // prior | aa
  std::filesystem::path out = "out";
  std::filesystem::path init;       // the checkpoint to start from (required for aa unless resuming)
  bool resume = false;              // continue out/STAGE.ckpt
  int epochs = -1;                  // -1: the config's
  bool progress = true;
};
std::vector<EpochLog> train_from_config(const RunConfig& cfg, const TrainOptions& options);

// The whole pipeline; returns summary.json's contents (also written to out/summary.json).
nlohmann::json run_pipeline(const RunConfig& cfg, const RunOptions& options);

// The summary as a plain-text table, for the terminal.
std::string summary_table(const nlohmann::json& summary);

}  // namespace aware
