// The run config: one TOML file (docs/config.md is the reference), parsed by toml++.
// Every key is optional and has the default of method.md; an unknown key is an error.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kernels/scan.h"
#include "model/network.h"

namespace aware {

struct DataConfig {
  std::filesystem::path dir;  // CLASS.npy or CLASS.npy.gz per class (required)
  std::vector<std::string> normal{"top", "qcd"};
  std::vector<std::string> aware{"w", "r2", "r3", "r4"};
  std::vector<std::string> unseen{"eft"};
  int64_t n_test = 5000;    // per class
  int64_t n_train = 15000;  // per normal class
  int64_t n_aware = 0;      // per aware class; 0: n_train * normal / aware (balanced)
  std::string normalisation = "sum-std";  // sum-std | sum | none | scale | standardise
  double scale = 1.0;                     // the fixed scale of "scale"
};

struct TrainConfig {
  int epochs = 10;      // prior run
  int aa_epochs = 10;   // Anomaly Awareness run
  int batch = 100;      // normal events per step
  double lr = 0.01, momentum = 0.9, weight_decay = 0.0;
  double lambda = 0.5;  // weight of the uniform-target loss
  double ratio = 1.0;   // anomalies per normal event in a step
};

struct ScanConfig {
  ScanSettings settings;  // bins, bins_2d, min_background_events, min_width (kernels/scan.h)
  std::vector<double> widths{0.08, 0.10, 0.12};
  std::vector<double> luminosities{100, 300, 1000, 3000};  // fb^-1
  // Cross-sections after the selection (fb) of the background classes (the normal classes):
  // ../shared/data/jets/README.md.
  std::map<std::string, double> sigma_fb{{"top", kSigmaTtFb}, {"qcd", kSigmaQcdFb}, {"w", kSigmaWFb}};
  // The look-elsewhere effect (tools/lee.h), per stage and anomaly class; off when toys = 0.
  int64_t toys = 0;                  // background-only pseudo-experiments
  int64_t injected_toys = 200;       // per injected cross-section
  double toys_luminosity = 3000;     // fb^-1
  std::vector<double> inject_fb;     // injected cross-sections (empty: 13 around Eq. 8's reach)
  std::vector<double> fixed_window;  // [lo, hi] of the score, fixed in advance (empty: none)
};

constexpr int kMaxThreads = 1024;  // run.threads and --threads: more is a typo, not a machine

struct RunConfig {
  DataConfig data;
  NetworkSpec network = paper_cnn();
  TrainConfig train;
  ScanConfig scan;
  uint64_t seed = 1;
  std::string device = "cpu";
  std::string conv = "fused";      // fused (ours), direct (CPU: ours, no Winograd) or cudnn (CUDA)
  std::string precision = "fp32";  // fp32, tf32 (CUDA) or bf16 (storage; runtime/backend.h)
  int threads = 0;          // 0: OpenMP's default
  std::string text;         // the config as written (stored in checkpoints)
};

// `base` resolves relative data paths (the config file's directory). `overrides` are "section.key=VALUE"
// with a TOML value (`train.lambda=0.3`, `data.aware=["w","r4"]`), applied over the file; with overrides
// the stored text is the merged config, written back by toml++, so a checkpoint still says what ran.
RunConfig parse_config(const std::string& text, const std::string& name,
                       const std::filesystem::path& base = ".", const std::vector<std::string>& overrides = {});
// The settings of a config file that change a training stage's result and that a resumed stage must
// share: [data] (but dir, as the same files may move, and unseen, which only scoring reads), [network],
// [train] (but the epoch counts: a run may be extended); for the prior stage, not what only the AA
// stage reads (data.aware, data.n_aware, train.lambda, train.ratio). One "section.key: A vs B" line for
// each that differs between `was` and `now`.
std::vector<std::string> result_settings_differ(const RunConfig& was, const RunConfig& now, const std::string& stage);

// A config file to run: parse_config, then every class file checked to be there.
RunConfig load_config(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});
// The same from a config's text (the Python package's dicts), `name` standing for the file in messages.
RunConfig config_to_run(const std::string& text, const std::string& name, const std::filesystem::path& base,
                        const std::vector<std::string>& overrides = {});

}  // namespace aware
