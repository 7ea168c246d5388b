#include "tools/pipeline.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "kernels/roc.h"
#include "kernels/softmax_xent.h"
#include "kernels/scan.h"
#include "model/train.h"
#include "runtime/communicator.h"
#include "kernels/error.h"
#include "tools/analysis.h"
#include "tools/lee.h"
#include "runtime/npy.h"

namespace aware {
namespace {

using json = nlohmann::json;

// Column `c` of row-major [N][classes] probabilities.
std::vector<float> column(const std::vector<float>& probs, int classes, int c) {
  std::vector<float> out(probs.size() / size_t(classes));
  for (size_t i = 0; i < out.size(); ++i) out[i] = probs[i * size_t(classes) + size_t(c)];
  return out;
}

// The event counts of every class in `bins` bins of P(c0) over [0, 1] and, with three normal classes, in
// bins_2d x bins_2d cells of (P(c0), P(c2)) (row-major, P(c0) the row). Small enough for summary.json, so
// the density plots can be redrawn from a run's summary alone (the scores files are 100x larger).
json histogram_report(const std::map<std::string, std::vector<float>>& p,
                      const std::map<std::string, std::vector<float>>& p2, int bins, int bins_2d) {
  json h = {{"bins", bins}, {"counts", json::object()}};
  for (const auto& [name, scores] : p) {
    std::vector<double> weighted(static_cast<size_t>(bins));
    std::vector<int64_t> counts(static_cast<size_t>(bins));
    histogram(scores, {}, bins, weighted, counts);
    h["counts"][name] = counts;
  }
  if (p2.empty()) return h;
  h["bins_2d"] = bins_2d;
  for (const auto& [name, scores] : p2) {
    std::vector<double> weighted(static_cast<size_t>(bins_2d * bins_2d));
    std::vector<int64_t> counts(weighted.size());
    histogram_2d(p.at(name), scores, {}, bins_2d, weighted, counts);
    h["counts_2d"][name] = counts;
  }
  return h;
}

// The ROC of the analysis at `points` false-positive rates evenly over [0, 1] (the TPR of the last
// point at or below each): enough to draw it from summary.json, a fifth of the analysis's size.
json roc_brief(const json& roc, int points) {
  const auto& fpr = roc.at("fpr");
  const auto& tpr = roc.at("tpr");
  json out_fpr = json::array(), out_tpr = json::array();
  size_t k = 0;
  for (int i = 0; i < points; ++i) {
    const double x = double(i) / double(points - 1);
    while (k + 1 < fpr.size() && fpr[k + 1].get<double>() <= x) ++k;
    out_fpr.push_back(x);
    out_tpr.push_back(tpr[k]);
  }
  return {{"auc", roc.at("auc")}, {"fpr", out_fpr}, {"tpr", out_tpr}};
}

// The CPU and the vector instructions the CPU kernels were built for. Runs on different CPUs round
// differently (OpenBLAS picks its kernels by CPU; the conv blocking follows the register file), and
// training turns rounding into different networks: a result names its machine.
json machine_json() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown";
  while (std::getline(cpuinfo, line))
    if (const size_t colon = line.find(':'); line.rfind("model name", 0) == 0 && colon != std::string::npos) {
      model = line.substr(std::min(colon + 2, line.size()));
      break;
    }
#if defined(__AVX512F__)
  const char* simd = "avx512";
#elif defined(__AVX2__)
  const char* simd = "avx2";
#else
  const char* simd = "generic";
#endif
  return {{"cpu", model}, {"simd", simd}};
}

}  // namespace

std::vector<std::string> Events::classes() const {
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  return names;
}

const ClassFile& Events::file(const std::string& name) const {
  for (const auto& f : files)
    if (f.name == name) return f;
  throw Error("no class '" + name + "' in this run");
}

Events load_events(const RunConfig& cfg) {
  const DataConfig& d = cfg.data;
  Events e;
  std::vector<std::string> names = d.normal;
  names.insert(names.end(), d.aware.begin(), d.aware.end());
  names.insert(names.end(), d.unseen.begin(), d.unseen.end());
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      check(names[i] != names[j], "data: class '" + names[i] + "' is listed twice");
  for (const auto& name : names) e.files.push_back(open_class(d.dir, name, d.n_test, cfg.seed));
  for (size_t c = 0; c < d.normal.size(); ++c) {
    append_events(e.normal_train, e.files[c], Part::pool, d.n_train, int32_t(c));
    append_events(e.normal_test, e.files[c], Part::test, d.n_test, int32_t(c));
  }
  if (!d.aware.empty()) {
    const int64_t per = d.n_aware > 0 ? d.n_aware
                                      : d.n_train * int64_t(d.normal.size()) / int64_t(d.aware.size());
    check(per > 0, "data: no training events left per aware class (n_aware)");
    for (size_t a = 0; a < d.aware.size(); ++a)
      append_events(e.anomalies, e.files[d.normal.size() + a], Part::pool, per, kUniformTarget);
  }
  check(e.normal_train.event_shape.size() == 2 || (d.normalisation != "sum" && d.normalisation != "sum-std"),
        "data.normalisation = \"" + d.normalisation + "\" divides each image by its pixel sum; the events of " +
            d.dir.string() + " are feature vectors: use \"standardise\"");
  e.normaliser = Normaliser::fit(d.normalisation, d.scale, e.normal_train);
  return e;
}

Checkpoint checkpoint_base(const RunConfig& cfg, const Events& events) {
  Checkpoint c;
  c.config = cfg.text;
  c.seed = cfg.seed;
  c.event_shape = events.normal_train.event_shape;
  c.classes = cfg.data.normal;
  c.normalisation = events.normaliser.kind;
  c.col_shift = events.normaliser.col_shift;
  c.col_scale = events.normaliser.col_scale;
  return c;
}

std::unique_ptr<Model> make_model(Backend& backend, const RunConfig& cfg, const std::vector<int64_t>& event_shape,
                                  const Normaliser& normaliser) {
  const int anomalies = cfg.data.aware.empty() ? 0 : int(std::lround(cfg.train.ratio * cfg.train.batch));
  return std::make_unique<Model>(backend, cfg.network, event_shape, int(cfg.data.normal.size()),
                                 cfg.train.batch + anomalies, normaliser);
}

std::map<std::string, std::vector<float>> score_test_sets(Model& model, const Events& events) {
  std::map<std::string, std::vector<float>> scores;
  for (const auto& f : events.files) {
    EventSet test;
    append_events(test, f, Part::test, f.n_test, 0);
    scores[f.name] = model.predict(test.x.data(), test.rows());
  }
  return scores;
}

json analyse(const RunConfig& cfg, const std::map<std::string, std::vector<float>>& scores, int classes,
             const std::filesystem::path& dir, const std::string& stage) {
  const auto& normal = cfg.data.normal;
  // The 1-D score is the probability of the first normal class (P(Top) in the paper).
  std::map<std::string, std::vector<float>> p;
  for (const auto& [name, probs] : scores) p[name] = column(probs, classes, 0);
  json report = {{"stage", stage}, {"score", "P(" + normal[0] + ")"}};
  report["roc"] = roc_report(p.at(normal[0]), p.at(normal[1]));
  report["auc"] = report["roc"]["auc"];
  for (const auto& [name, s] : p) report["central_fraction"][name] = central_fraction(s)["fraction"];
  std::vector<float> normal_probs;
  for (const auto& c : normal) normal_probs.insert(normal_probs.end(), scores.at(c).begin(), scores.at(c).end());
  for (const auto& [name, probs] : scores)
    if (std::find(normal.begin(), normal.end(), name) == normal.end())
      report["anomaly_scores"][name] = anomaly_score_report(probs, normal_probs, classes);

  // Three normal classes: also rectangles in (P(c0), P(c2)), e.g. (P(Top), P(W)).
  std::map<std::string, std::vector<float>> p2;
  std::vector<BackgroundSample2D> background_2d;
  if (classes == 3) {
    for (const auto& [name, probs] : scores) p2[name] = column(probs, classes, 2);
    for (const auto& c : normal)
      background_2d.push_back({c, Sample2D{p.at(c), p2.at(c), {}}, cfg.scan.sigma_fb.at(c)});
  }
  report["histograms"] = histogram_report(p, p2, 50, 40);
  std::vector<BackgroundSample> background;
  for (const auto& c : normal) background.push_back({c, Sample{p.at(c), {}}, cfg.scan.sigma_fb.at(c)});
  for (const auto& [name, s] : p) {
    if (std::find(normal.begin(), normal.end(), name) != normal.end()) continue;
    const ScanInput input{Sample{s, {}}, background};
    json r = scan_report(input, cfg.scan.settings, cfg.scan.widths, cfg.scan.luminosities, cfg.device);
    write_scan_csv(r, dir, stage + "_" + name);
    report["scan"][name] = r;
    if (cfg.scan.toys > 0) {  // the look-elsewhere effect of this scan
      LeeSettings lee;
      lee.toys = cfg.scan.toys;
      lee.injected_toys = cfg.scan.injected_toys;
      lee.luminosity = cfg.scan.toys_luminosity;
      lee.seed = cfg.seed;
      lee.signals_fb = cfg.scan.inject_fb;
      if (!cfg.scan.fixed_window.empty()) lee.window = std::array<double, 2>{cfg.scan.fixed_window[0], cfg.scan.fixed_window[1]};
      lee.device = cfg.device;
      const json l = lee_report(make_grid(input, cfg.scan.settings.bins), cfg.scan.settings, lee);
      write_file_atomic(dir / (stage + "_" + name + "_lee.json"), l.dump(1));
      report["lee"][name] = l;
    }
    if (classes == 3)
      report["scan_2d"][name] = scan_report_2d(ScanInput2D{Sample2D{s, p2.at(name), {}}, background_2d},
                                               cfg.scan.settings, cfg.scan.luminosities, cfg.device);
  }
  return report;
}

std::vector<EpochLog> train_from_config(const RunConfig& cfg, const TrainOptions& options) {
  check(options.stage == "prior" || options.stage == "aa", "train: the stage is prior or aa, not '" + options.stage + "'");
  const Events events = load_events(cfg);
  auto backend = make_backend(cfg.device, {cfg.conv, cfg.precision});
  auto model = make_model(*backend, cfg, events.normal_train.event_shape, events.normaliser);
  const Checkpoint base = checkpoint_base(cfg, events);
  const auto& out = options.out;
  if (!options.init.empty()) {
    const Checkpoint from = load_checkpoint(options.init);
    check(from.classes == base.classes && from.event_shape == base.event_shape,
          options.init.string() + ": was trained for other classes or events than this config's");
    model->set_params(from.params);
  } else {
    check(options.stage == "prior" || (options.resume && std::filesystem::exists(out / "aa.ckpt")),
          "train --stage aa needs --init PRIOR.ckpt (the prior run's weights)");
    model->set_params(initial_params(model->graph(), cfg.seed));
  }
  StageOptions so;
  so.stage = options.stage;
  so.epochs = options.epochs >= 0 ? options.epochs : (options.stage == "prior" ? cfg.train.epochs : cfg.train.aa_epochs);
  so.checkpoint = out / (options.stage + ".ckpt");
  so.log = out / "log.jsonl";
  so.resume = options.resume;
  so.progress = options.progress;
  std::filesystem::create_directories(out);
  return train_stage(*model, cfg, events.normal_train, options.stage == "aa" ? &events.anomalies : nullptr,
                     events.normal_test, so, base);
}

json run_pipeline(const RunConfig& cfg, const RunOptions& options) {
  using clock = std::chrono::steady_clock;
  // Under mpirun every rank trains; rank 0 alone scores, analyses and writes.
  const bool root = world().root();
  std::filesystem::create_directories(options.out);
  // A resumed run must be the run it continues: checked before its record (config.toml) is rewritten.
  if (options.resume)
    for (const char* stage : {"prior", "aa"})
      if (const auto ckpt = options.out / (std::string(stage) + ".ckpt"); std::filesystem::exists(ckpt))
        check_resumable(load_checkpoint(ckpt), cfg, ckpt.string() + ": ");
  if (root) write_file_atomic(options.out / "config.toml", cfg.text);
  const Events events = load_events(cfg);
  auto backend = make_backend(cfg.device, {cfg.conv, cfg.precision});
  auto model = make_model(*backend, cfg, events.normal_train.event_shape, events.normaliser);
  const Checkpoint base = checkpoint_base(cfg, events);
  model->set_params(initial_params(model->graph(), cfg.seed));

  // The backend's name says the device and, on CUDA, the conv path and precision behind every number.
  json summary = {{"config", cfg.text},       {"seed", cfg.seed},        {"device", backend->name()},
                  {"machine", machine_json()}, {"stages", json::object()}};
  if (!options.prior.empty()) {
    const Checkpoint c = load_checkpoint(options.prior);
    const std::string at = "--prior " + options.prior.string() + ": ";
    check(c.stage == "prior" && c.epochs_done == cfg.train.epochs,
          at + "is not a prior finished after train.epochs = " + std::to_string(cfg.train.epochs) + " epochs");
    check(c.seed == cfg.seed, at + "has seed " + std::to_string(c.seed) + ", this run " + std::to_string(cfg.seed));
    check(c.classes == base.classes && c.event_shape == base.event_shape && c.normalisation == base.normalisation &&
              c.col_shift == base.col_shift && c.col_scale == base.col_scale,
          at + "was trained on other classes, events or normalisation");
    check(c.params.size() == model->graph().param_count(), at + "holds another network");
    if (root) save_checkpoint(options.out / "prior.ckpt", c);
    world().barrier();
    summary["prior_from"] = options.prior.string();
  }
  const bool aa = !cfg.data.aware.empty() && cfg.train.aa_epochs > 0;
  for (const std::string stage : {"prior", "aa"}) {
    if (stage == "aa" && !aa) break;
    StageOptions so;
    so.stage = stage;
    so.epochs = stage == "prior" ? cfg.train.epochs : cfg.train.aa_epochs;
    so.checkpoint = options.out / (stage + ".ckpt");
    so.log = options.out / "log.jsonl";
    so.resume = options.resume || (stage == "prior" && !options.prior.empty());
    so.progress = options.progress;
    const auto t0 = clock::now();
    const auto logs = train_stage(*model, cfg, events.normal_train, stage == "aa" ? &events.anomalies : nullptr,
                                  events.normal_test, so, base);
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
    // Rank 0 alone scores and analyses; the others wait in an MPI barrier (no collective timeout there)
    // rather than in the next stage's first all-reduce.
    if (root) {
      const auto scores = score_test_sets(*model, events);
      std::filesystem::create_directories(options.out / "scores" / stage);
      for (const auto& [name, probs] : scores)
        save_npy(options.out / "scores" / stage / (name + ".npy"), probs.data(),
                 std::vector<int64_t>{int64_t(probs.size() / size_t(model->classes())), model->classes()});
      json report = analyse(cfg, scores, model->classes(), options.out / "analysis", stage);
      report["train_seconds"] = seconds;
      report["epochs_run"] = logs.size();
      if (!logs.empty()) report["images_per_s"] = logs.back().images_per_s;
      write_file_atomic(options.out / "analysis" / (stage + ".json"), report.dump(1));

      json brief = {{"auc", report["auc"]}, {"central_fraction", report["central_fraction"]},
                    {"anomaly_scores", report["anomaly_scores"]}, {"histograms", report["histograms"]},
                    {"roc", roc_brief(report["roc"], 101)}, {"train_seconds", seconds}};
      if (report.contains("scan"))
        for (const auto& [name, r] : report["scan"].items())
          brief["scan"][name] = {{"R_max", r["R_max"]}, {"R_max_error", r["R_max_error"]},
                                 {"window", r["best"].is_null() ? json() : json::array({r["best"]["lo"], r["best"]["hi"]})},
                                 {"reach", r["reach"]}};
      if (report.contains("lee"))  // the reach with the look-elsewhere effect, beside Eq. 8's
        for (const auto& [name, l] : report["lee"].items()) {
          json b = {{"luminosity", l["luminosity"]}, {"toys", l["scanned"]["background"]["toys"]},
                    {"eq8_sigma_min", l["eq8_sigma_min"]}, {"scanned_sigma_min", l["scanned"]["sigma_min"]},
                    {"scanned_trials_factor_3sigma", l["scanned"]["local_to_global"][1]["trials_factor"]}};
          if (l.contains("fixed")) b["fixed_sigma_min"] = l["fixed"]["sigma_min"], b["fixed_window"] = l["fixed"]["window"];
          brief["scan"][name]["lee"] = b;
        }
      if (report.contains("scan_2d"))  // three normal classes: the rectangles in (P(c0), P(c2))
        for (const auto& [name, r] : report["scan_2d"].items())
          brief["scan_2d"][name] = {{"R_max", r["R_max"]}, {"R_max_error", r["R_max_error"]},
                                    {"window", r["best"].is_null() ? json() : json({{"p1", r["best"]["p1"]}, {"p2", r["best"]["p2"]}})},
                                    {"reach", r["reach"]}};
      summary["stages"][stage] = brief;
    }
    world().barrier();
  }
  if (root) write_file_atomic(options.out / "summary.json", summary.dump(1));
  return summary;
}

std::string summary_table(const json& summary) {
  std::ostringstream out;
  const json& st = summary["stages"];
  std::vector<std::string> stages;
  for (const auto& [k, v] : st.items()) stages.push_back(k);
  std::sort(stages.begin(), stages.end(), [](auto& a, auto& b) { return a == "prior" && b != "prior"; });
  char line[256];
  std::snprintf(line, sizeof line, "%-34s", "");
  out << line;
  for (const auto& s : stages) {
    std::snprintf(line, sizeof line, "%14s", s.c_str());
    out << line;
  }
  out << "\n";
  auto row = [&](const std::string& label, auto value) {
    std::snprintf(line, sizeof line, "%-34s", label.c_str());
    out << line;
    for (const auto& s : stages) {
      const json v = value(st[s]);
      if (v.is_number())
        std::snprintf(line, sizeof line, "%14.4f", v.get<double>());
      else
        std::snprintf(line, sizeof line, "%14s", "-");
      out << line;
    }
    out << "\n";
  };
  row("AUC", [](const json& s) { return s["auc"]; });
  // (Named keys rather than structured bindings: lambdas capture those from clang 16 on only.)
  for (const auto& item : st[stages[0]]["central_fraction"].items()) {
    const std::string name = item.key();
    row("central fraction " + name, [&](const json& s) { return s["central_fraction"][name]; });
  }
  if (st[stages[0]].contains("scan"))
    for (const auto& item : st[stages[0]]["scan"].items()) {
      const std::string name = item.key();
      row("R_max " + name, [&](const json& s) { return s["scan"][name]["R_max"]; });
      row("sigma_min " + name + " at last L (fb)", [&](const json& s) {
        const json& reach = s["scan"][name]["reach"];
        return reach.empty() ? json() : reach.back()["sigma_min"];
      });
    }
  return out.str();
}

}  // namespace aware
