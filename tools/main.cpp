// aware: Anomaly Awareness trainer and analysis tool. Subcommands: run, train, score, scan, images, report.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>

#include "kernels/scan.h"
#include "model/config.h"
#include "model/network.h"
#include "model/train.h"
#include "runtime/communicator.h"
#include "kernels/error.h"
#include "tools/analysis.h"
#include "tools/lee.h"
#include "runtime/npy.h"
#include "tools/pipeline.h"
#include "tools/events.h"
#include "tools/jet_images.h"
#include "tools/score.h"

using namespace aware;
using json = nlohmann::json;

namespace {

struct Common {
  std::string device, conv, precision;
  int threads = -1;
  int64_t seed = -1;
  bool quiet = false;
  std::vector<std::string> overrides;
};

// A whole number in [lo, hi] (64-bit), said in words when it is not: "--threads: must be 0 (all cores)
// to 1024" instead of CLI11's range in floating point.
CLI::Validator whole_number(long long lo, long long hi, const std::string& words) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        long long v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
          return "must be " + words + " (got '" + text + "')";
        return "";
      },
      "", "");
}
constexpr long long kMany = std::numeric_limits<int>::max();
// A finite number in [lo, hi], likewise.
CLI::Validator number_in(double lo, double hi, const std::string& words) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
          return "must be " + words + " (got '" + text + "')";
        return "";
      },
      "", "");
}

void add_common(CLI::App* app, Common& c) {
  app->add_option("--device", c.device, "cpu | cuda | auto (default: the config's, else cpu)");
  app->add_option("--conv", c.conv, "convolutions: fused (ours; Winograd on the CPU) | direct (CPU: ours, the direct sum only) | cudnn (CUDA) (default: the config's, else fused)");
  app->add_option("--precision", c.precision,
                  "fp32 (exact) | tf32 (CUDA: tensor cores in cuBLAS/cuDNN) | bf16 (events and saved "
                  "activations stored as BF16, FP32 arithmetic)");
  app->add_option("--threads", c.threads, "CPU threads, 0: all cores (default: the config's, else all cores)")
      ->check(whole_number(0, kMaxThreads, "0 (all cores) to " + std::to_string(kMaxThreads)));
  app->add_flag("-q,--quiet", c.quiet, "no progress output");
}

void add_seed(CLI::App* app, Common& c) {
  app->add_option("--seed", c.seed, "seed (default: the config's)")
      ->check(whole_number(0, std::numeric_limits<int64_t>::max(), "a whole number, 0 or more"));
  app->add_option("--set", c.overrides, "SECTION.KEY=VALUE (TOML) over the config's, repeatable: "
                                        "--set train.lambda=0.3 --set 'data.aware=[\"w\"]'");
}

// Command-line settings override the config's.
RunConfig configure(const std::string& path, const Common& c) {
  RunConfig cfg = load_config(path, c.overrides);
  if (!c.device.empty()) cfg.device = c.device;
  if (!c.conv.empty()) cfg.conv = c.conv;
  if (!c.precision.empty()) cfg.precision = c.precision;
  if (c.threads >= 0) cfg.threads = c.threads;
  if (c.seed >= 0) cfg.seed = uint64_t(c.seed);
  set_cpu_threads(cfg.threads);
  return cfg;
}

int cmd_run(const std::string& config, const RunOptions& options, const Common& c) {
  const RunConfig cfg = configure(config, c);
  const json summary = run_pipeline(cfg, options);
  if (!world().root()) return 0;
  std::printf("%s", summary_table(summary).c_str());
  std::printf("outputs in %s (summary.json, analysis/, scores/, *.ckpt, log.jsonl)\n", options.out.c_str());
  return 0;
}

int cmd_train(const std::string& config, const TrainOptions& options, const Common& c) {
  const RunConfig cfg = configure(config, c);
  const auto logs = train_from_config(cfg, options);
  if (world().root() && !c.quiet)
    std::printf("%s: %zu epochs run on %d rank(s), checkpoint %s\n", options.stage.c_str(), logs.size(), world().size(),
                (options.out / (options.stage + ".ckpt")).c_str());
  return 0;
}

// FNV-1a (64-bit) of a whole (small) file, e.g. a checkpoint: another model is another job. (Not its
// CRC-32: a checkpoint ends with its own CRC-32, and the CRC-32 of data followed by its CRC-32 is the
// same constant for every checkpoint.)
std::string file_hash(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::istreambuf_iterator<char> it(in), end; it != end; ++it) h = (h ^ uint8_t(*it)) * 0x100000001b3ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a ") + hex;
}

int cmd_score(const std::filesystem::path& model_path, const std::vector<std::string>& inputs, int batch,
              const ScoreOptions& options, const Common& c) {
  set_cpu_threads(c.threads > 0 ? c.threads : 0);
  ScoringModel loaded = load_scoring_model(model_path, batch, c.device, {c.conv, c.precision});
  const Checkpoint& ckpt = loaded.checkpoint;
  Backend* backend = loaded.backend.get();
  Model& model = *loaded.model;
  // What the scores depend on besides the input and chunk (score_file records both): a resume checks.
  ScoreOptions job_options = options;
  job_options.job = "model " + file_hash(model_path) + "\nbatch " + std::to_string(loaded.model->max_batch()) + "\nbackend " + backend->name() + "\n";
  // Each input's scores go to OUT/NAME.npy: two inputs of one name would overwrite each other.
  std::set<std::string> names;
  for (const auto& input : inputs)
    check(names.insert(EventSource::name_of(input)).second,
          input + ": another input is also named '" + EventSource::name_of(input) + "' (its scores would overwrite "
          "OUT/" + EventSource::name_of(input) + ".npy); score them into different -o directories");
  Communicator& comm = world();
  bool complete = true;
  for (const auto& input : inputs) {
    const ScoreResult r = score_file(model, input, ckpt.event_shape, job_options, comm);
    complete = complete && r.complete;
    if (!c.quiet && comm.root())
      std::printf("%s: %ld events%s\n", input.c_str(), long(r.events),
                  r.complete ? " scored" : ", stopped (--max-chunks): continue with --resume");
  }
  return complete ? 0 : 4;
}

// FILE:SIGMA_FB -> (file, sigma); the cross-section a positive number, all of it.
std::pair<std::string, double> file_and_sigma(const std::string& arg) {
  const auto colon = arg.rfind(':');
  check(colon != std::string::npos && colon + 1 < arg.size(),
        "--background " + arg + ": expected FILE:SIGMA_FB, e.g. qcd.npy:67600");
  const std::string text = arg.substr(colon + 1);
  char* end = nullptr;
  const double sigma = std::strtod(text.c_str(), &end);
  check(end != text.c_str() && *end == '\0' && std::isfinite(sigma) && sigma > 0,
        "--background " + arg + ": '" + text + "' is not a cross-section in fb (a positive number)");
  return {arg.substr(0, colon), sigma};
}

// "LO:HI" -> a window of the score, 0 <= LO < HI <= 1.
std::array<double, 2> window_of(const std::string& arg) {
  const auto colon = arg.find(':');
  double lo = std::nan(""), hi = std::nan("");
  if (colon != std::string::npos) {
    char *end_lo = nullptr, *end_hi = nullptr;
    const std::string a = arg.substr(0, colon), b = arg.substr(colon + 1);
    lo = std::strtod(a.c_str(), &end_lo);
    hi = std::strtod(b.c_str(), &end_hi);
    if (a.empty() || b.empty() || *end_lo != '\0' || *end_hi != '\0') lo = hi = std::nan("");
  }
  check(0 <= lo && lo < hi && hi <= 1, "--window " + arg + ": expected LO:HI with 0 <= LO < HI <= 1, e.g. 0.3:0.7");
  return {lo, hi};
}

// Column `col` of a score file, with its number of columns; every score a probability.
std::pair<std::vector<float>, int64_t> score_column(const std::string& file, int col) {
  const NpyArray a = NpyArray::load(file);
  check(a.shape().size() <= 2, file + ": expected scores of shape (N,) or (N, classes)");
  const int64_t width = a.shape().size() == 2 ? a.shape()[1] : 1;
  check(col >= 0 && col < width, file + ": has no column " + std::to_string(col));
  std::vector<float> out(size_t(a.rows()));
  for (int64_t i = 0; i < a.rows(); ++i) {
    const float p = a.data()[i * width + col];
    check(p >= 0.0f && p <= 1.0f, file + ": row " + std::to_string(i) + " scores " + std::to_string(p) +
                                      ", outside [0, 1] (softmax probabilities expected)");
    out[size_t(i)] = p;
  }
  return {std::move(out), width};
}

int cmd_scan(const std::vector<std::string>& anomalies, const std::vector<std::string>& backgrounds, int col,
             const std::filesystem::path& out, ScanSettings settings, const std::vector<double>& widths,
             const std::vector<double>& lumis, const std::string& device, const LeeSettings& lee) {
  std::vector<std::vector<float>> keep;  // owns the background scores the spans point to
  std::vector<BackgroundSample> bg;
  keep.reserve(backgrounds.size());
  // Every file scored by the same model: as many columns as the first; names unique, as they name
  // the outputs (OUT/NAME_scan.json) and the report's classes.
  std::string first_file;
  int64_t columns = -1;
  std::set<std::string> names;
  const auto same_model = [&](const std::string& file, int64_t width) {
    if (columns < 0) first_file = file, columns = width;
    check(width == columns, file + " has " + std::to_string(width) + " score columns and " + first_file + " " +
                                std::to_string(columns) + ": scores of different models?");
  };
  const auto unique_name = [&](const std::string& file, const char* option) {
    const std::string name = std::filesystem::path(file).stem().string();
    check(names.insert(std::string(option) + name).second,
          std::string(option) + " " + file + ": another file of that option is also named '" + name +
              "' (the outputs are named after the file)");
    return name;
  };
  for (const auto& arg : backgrounds) {
    const auto [file, sigma] = file_and_sigma(arg);
    auto [scores, width] = score_column(file, col);
    same_model(file, width);
    keep.push_back(std::move(scores));
    bg.push_back({unique_name(file, "--background"), Sample{keep.back(), {}}, sigma});
  }
  for (const auto& file : anomalies) unique_name(file, "--anomaly");  // before any output is written
  for (const auto& file : anomalies) {
    const auto [s, width] = score_column(file, col);
    same_model(file, width);
    const std::string name = std::filesystem::path(file).stem().string();
    json r = scan_report(ScanInput{Sample{s, {}}, bg}, settings, widths, lumis, device);
    write_scan_csv(r, out, name);
    write_file_atomic(out / (name + "_scan.json"), r.dump(1));
    std::printf("%s: R_max %.4f +- %.4f", name.c_str(), r["R_max"].is_number() ? r["R_max"].get<double>() : NAN,
                r["R_max_error"].is_number() ? r["R_max_error"].get<double>() : NAN);
    if (!r["best"].is_null())
      std::printf(" in [%.3f, %.3f]", r["best"]["lo"].get<double>(), r["best"]["hi"].get<double>());
    std::printf("\n");
    if (lee.toys > 0) {  // the look-elsewhere effect: pseudo-experiments on the same grid
      const ScanInput input{Sample{s, {}}, bg};
      LeeSettings on_device = lee;
      on_device.device = device;
      const json l = lee_report(make_grid(input, settings.bins), settings, on_device);
      write_file_atomic(out / (name + "_lee.json"), l.dump(1));
      const auto said = [](const json& x) {
        return x["value"].is_number() ? std::to_string(x["value"].get<double>()) + " fb" : std::string("unresolved");
      };
      if (l["scanned"].contains("observed")) {
        const json& o = l["scanned"]["observed"];
        std::printf("%s: observed: the largest excess, %ld events over %.1f, local Z %s, global Z %s (p %.3g +- %.2g)\n",
                    name.c_str(), long(o["observed_events"].get<int64_t>()), o["expected_events"].get<double>(),
                    o["local_z"].dump().c_str(), o["global_z"].is_null() ? (">" + o["global_z_at_least"].dump()).c_str() : o["global_z"].dump().c_str(),
                    o["global_p"].get<double>(), o["global_p_error"].get<double>());
      }
      std::printf("%s: at %g fb^-1, sigma_min at a median global 3 / 5 sigma: scanned %s / %s", name.c_str(),
                  lee.luminosity, said(l["scanned"]["sigma_min"]["3"]).c_str(), said(l["scanned"]["sigma_min"]["5"]).c_str());
      if (l.contains("fixed"))
        std::printf(", fixed window %s / %s", said(l["fixed"]["sigma_min"]["3"]).c_str(), said(l["fixed"]["sigma_min"]["5"]).c_str());
      std::printf(" (Eq. 8: %s / %s fb)\n", l["eq8_sigma_min"]["3"].dump().c_str(), l["eq8_sigma_min"]["5"].dump().c_str());
    }
  }
  return 0;
}

// One message; under mpirun it names the rank, and the whole job ends (the other ranks may be
// waiting for this one in a collective).
int fail(int code, const char* kind, const char* what) {
  if (launched_by_mpi()) {
    std::fprintf(stderr, "aware: rank %d of %d: %s: %s\n", world().rank(), world().size(), kind, what);
    std::fflush(stderr);
    world().abort(code);
  }
  std::fprintf(stderr, "aware: %s: %s\n", kind, what);
  return code;
}

// `aware report` is tools/report.py (matplotlib) run by Debian's python3: found beside the build
// (build/aware -> tools/report.py) or in the source tree this binary was built from.
int cmd_report(const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  const fs::path exe = fs::read_symlink("/proc/self/exe");
  fs::path script = exe.parent_path().parent_path() / "tools" / "report.py";
  if (!fs::exists(script)) script = fs::path(AWARE_SOURCE_DIR) / "tools" / "report.py";
  check(fs::exists(script), "report: tools/report.py not found beside " + exe.string() + " nor in " AWARE_SOURCE_DIR);
  const char* env = std::getenv("AWARE_PYTHON");
  const std::string python = env ? env : fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::vector<std::string> argv_s{python, script.string()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  ::execvp(python.c_str(), argv.data());
  throw Error("report: cannot start " + python + " (set AWARE_PYTHON to a python3 with numpy and matplotlib)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aware: Anomaly Awareness (semi-supervised anomaly detection) trainer and analysis tool.\n"
               "See README.md and docs/config.md."};
  app.require_subcommand(1);
  Common common;

  auto* run = app.add_subcommand("run", "the whole pipeline of the paper from one config: prior run, AA run, "
                                        "scores, ROC/AUC, window scans, reach");
  std::string config;
  std::filesystem::path out = "out";
  bool resume = false;
  run->add_option("config", config, "TOML config (see configs/)")->required()->check(CLI::ExistingFile);
  run->add_option("-o,--out", out, "output directory")->capture_default_str();
  run->add_flag("--resume", resume, "continue a killed run from its checkpoints in --out");
  std::filesystem::path prior;
  run->add_option("--prior", prior, "start AA from this finished prior.ckpt of another run (same data, seed, "
                                    "network) instead of training the prior")->check(CLI::ExistingFile);
  add_common(run, common);
  add_seed(run, common);

  auto* train = app.add_subcommand("train", "train one stage (prior or aa) from a config");
  std::string stage = "prior", init;
  int epochs = -1;
  train->add_option("config", config, "TOML config")->required()->check(CLI::ExistingFile);
  train->add_option("--stage", stage, "prior | aa")->check(CLI::IsMember({"prior", "aa"}))->capture_default_str();
  train->add_option("--init", init, "checkpoint to start from (the prior's, for --stage aa)")->check(CLI::ExistingFile);
  train->add_option("--epochs", epochs, "epochs (default: the config's)")
      ->check(whole_number(0, kMany, "a whole number of epochs, 0 or more"));
  train->add_option("-o,--out", out, "output directory (STAGE.ckpt, log.jsonl)")->capture_default_str();
  train->add_flag("--resume", resume, "continue from --out/STAGE.ckpt");
  add_common(train, common);
  add_seed(train, common);

  auto* score = app.add_subcommand("score", "softmax scores of events with a trained model; writes OUT/NAME.npy "
                                            "of shape (N, classes) per input, streamed in chunks (under mpirun "
                                            "the ranks share the events)");
  std::string model;
  std::vector<std::string> inputs;
  int batch = 0;
  score->add_option("-m,--model", model, "checkpoint (prior.ckpt or aa.ckpt)")->required()->check(CLI::ExistingFile);
  score->add_option("inputs", inputs, "event files: .npy, .npy.gz, or HDF5 FILE.h5[:DATASET]")->required();
  score->add_option("-o,--out", out, "output directory")->capture_default_str();
  score->add_option("--batch", batch, "events per forward pass (default: 64 on the CPU, 1024 on CUDA)")
      ->check(whole_number(1, kMany, "a positive whole number of events"));
  ScoreOptions score_options;
  score->add_option("--chunk", score_options.chunk, "events read, scored and written at a time")
      ->capture_default_str()->check(whole_number(1, std::numeric_limits<int64_t>::max(), "a positive whole number of events"));
  score->add_option("--max-chunks", score_options.max_chunks,
                    "stop after this many chunks (exit status 4); --resume continues")
      ->check(whole_number(1, std::numeric_limits<int64_t>::max(), "a positive whole number of chunks"));
  score->add_flag("--resume", score_options.resume, "continue an unfinished OUT/NAME.npy.partial");
  add_common(score, common);

  auto* scan = app.add_subcommand("scan", "window scan of anomaly scores against background scores "
                                          "(R_max, curves, reach); JSON and CSV in --out");
  std::vector<std::string> anomalies, backgrounds;
  int col = 0;
  ScanSettings settings;
  std::vector<double> widths(kDefaultWidths.begin(), kDefaultWidths.end()), lumis{100, 300, 1000, 3000};
  scan->add_option("--anomaly", anomalies, "scores of an anomaly class (repeatable)")->required();
  scan->add_option("--background", backgrounds, "FILE:SIGMA_FB background scores and cross-section in fb "
                                                "(repeatable), e.g. scores/aa/qcd.npy:67600")->required();
  scan->add_option("--column", col, "score column (0: P(first normal class))")->capture_default_str();
  scan->add_option("--bins", settings.bins, "grid bins over [0, 1]")
      ->capture_default_str()->check(whole_number(2, 100'000'000, "2 to 10^8 bins"));
  scan->add_option("--min-background", settings.min_background_events,
                   "eligible windows hold at least this many simulated background events")
      ->capture_default_str()->check(whole_number(0, std::numeric_limits<int64_t>::max(), "a whole number, 0 or more"));
  scan->add_option("--min-width", settings.min_width, "eligible windows are at least this wide")
      ->capture_default_str()->check(number_in(0.0, 1.0, "a width in [0, 1]"));
  scan->add_option("--widths", widths, "widths of the fixed-width curves")->capture_default_str();
  scan->add_option("--luminosities", lumis, "fb^-1 for the reach table")->capture_default_str();
  scan->add_option("-o,--out", out, "output directory")->capture_default_str();
  std::string scan_device = "auto";
  scan->add_option("--device", scan_device, "cpu | cuda | auto (the GPU scan when a device is present)")
      ->capture_default_str();
  LeeSettings lee;
  lee.toys = 0;
  std::string fixed_window;
  scan->add_option("--toys", lee.toys, "background-only pseudo-experiments for the look-elsewhere effect "
                                       "(0: none); OUT/NAME_lee.json")
      ->capture_default_str()->check(whole_number(0, int64_t(1) << 32, "a whole number of toys, 0 to 2^32"));
  scan->add_option("--toys-luminosity", lee.luminosity, "fb^-1 of the pseudo-experiments")
      ->capture_default_str()->check(number_in(1e-6, 1e9, "a luminosity in fb^-1"));
  scan->add_option("--toys-seed", lee.seed, "seed of the pseudo-experiments")->capture_default_str();
  scan->add_option("--inject", lee.signals_fb, "injected signal cross-sections, fb (default: 13 around Eq. 8's reach)");
  scan->add_option("--injected-toys", lee.injected_toys, "pseudo-experiments per injected cross-section")
      ->capture_default_str()->check(whole_number(1, int64_t(1) << 32, "a whole number of toys, 1 to 2^32"));
  std::string observed_file;
  scan->add_option("--observed", observed_file, "scores of observed events (at --toys-luminosity): their largest "
                                                "excess and its global significance, in OUT/NAME_lee.json")
      ->check(CLI::ExistingFile);
  scan->add_option("--window", fixed_window, "LO:HI, a window of the score fixed in advance (no trials factor), "
                                             "e.g. 0.3:0.7");

  auto* images = app.add_subcommand("images", "jet images from constituents, as ../shared/data/make_jets.py makes "
                                              "them: DIR holds pt, eta, phi, offsets (and jet_eta, jet_phi) as .npy; "
                                              "writes OUT, float32 (jets, pixels, pixels)");
  std::string constituents, images_out = "images.npy", centre = "axis";
  JetImageOptions image_options;
  bool images_quiet = false;
  images->add_option("constituents", constituents, "directory of flat constituent arrays: pt.npy, eta.npy, phi.npy "
                                                   "(float64 or float32), offsets.npy (int64, jets + 1 entries), and "
                                                   "jet_eta.npy, jet_phi.npy (the jet axes)")->required();
  images->add_option("-o,--out", images_out, "output .npy")->capture_default_str();
  images->add_option("--pixels", image_options.pixels, "pixels per side")
      ->capture_default_str()->check(whole_number(1, 1024, "1 to 1024 pixels"));
  images->add_option("--half-width", image_options.half_width, "the grid spans |d_eta|, |d_phi| <= this")
      ->capture_default_str()->check(number_in(1e-6, 1e6, "a half-width, 1e-6 to 1e6"));
  images->add_option("--centre", centre, "axis (the jet axis, as make_jets.py) | centroid (pT-weighted)")
      ->capture_default_str();
  images->add_flag("--rotate", image_options.rotate, "turn the principal axis onto d_eta");
  images->add_flag("--flip", image_options.flip, "mirror the harder side to positive d_phi, then d_eta");
  images->add_flag("--normalise", image_options.normalise, "divide each image by its pixel sum");
  images->add_flag("-q,--quiet", images_quiet, "no progress output");

  auto* report = app.add_subcommand("report", "the papers' figures (PNG) and results tables (markdown, JSON) from "
                                              "directories of runs (scripts/reproduce.sh); runs tools/report.py");
  std::vector<std::string> runs_dirs;
  std::string report_out = "report", jets;
  report->add_option("runs", runs_dirs, "directories of NAME_sSEED runs, e.g. out/repro or the records in "
                                        "docs/runs/repro (a later one's NAME_sSEED replaces an earlier one's)")
      ->required();
  report->add_option("-o,--out", report_out, "output directory")->capture_default_str();
  report->add_option("--jets", jets, "jet class files, for the average images (default ../shared/data/jets)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (or the help); a malformed argument is a user's error like any other: 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*run) return cmd_run(config, {out, resume, !common.quiet, prior}, common);
    if (*train) return cmd_train(config, TrainOptions{stage, out, init, resume, epochs, !common.quiet}, common);
    if (*score) {
      score_options.out_dir = out;
      score_options.progress = !common.quiet;
      return cmd_score(model, inputs, batch, score_options, common);
    }
    if (*images) {
      image_options.centre = centre_named(centre, "--centre");
      const int64_t jets = images_of_directory(constituents, images_out, image_options, !images_quiet);
      if (!images_quiet) std::printf("%s: %ld jet images\n", images_out.c_str(), long(jets));
      return 0;
    }
    if (*report) {
      std::vector<std::string> args = runs_dirs;
      args.insert(args.end(), {"-o", report_out});
      if (!jets.empty()) args.insert(args.end(), {"--jets", jets});
      return cmd_report(args);
    }
    if (*scan) {
      if (!fixed_window.empty()) lee.window = window_of(fixed_window);
      if (!observed_file.empty()) {
        check(lee.toys > 0, "--observed " + observed_file + ": needs --toys (its global significance comes from them)");
        const auto [scores, width] = score_column(observed_file, col);
        std::vector<double> weighted(size_t(settings.bins));
        lee.observed.assign(size_t(settings.bins), 0);
        histogram(scores, {}, settings.bins, weighted, lee.observed);
      }
      return cmd_scan(anomalies, backgrounds, col, out, settings, widths, lumis, scan_device, lee);
    }
  } catch (const Error& e) {
    return fail(2, "error", e.what());
  } catch (const std::exception& e) {
    return fail(3, "internal error", e.what());
  }
  return 0;
}
