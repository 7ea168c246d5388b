// The aware program as a user meets it: the subcommands on a small synthetic data set, their outputs,
// --help, and one clear error (exit status 2, naming the file) for bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <random>

#include "runtime/checkpoint.h"
#include "synthetic.h"
#include "runtime/npy.h"

namespace aware {
namespace {

struct Result {
  int status;
  std::string output;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(AWARE_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testing::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    testing::write_synthetic_classes(dir / "data");
    config = testing::write_text(dir / "run.toml", testing::synthetic_config(dir / "data")).string();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  std::string config;
};

TEST_F(CliTest, RunScoreAndScanProduceTheirOutputs) {
  const auto out = dir / "out";
  Result r = run("run " + config + " -o " + out.string() + " -q");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto summary = nlohmann::json::parse(std::ifstream(out / "summary.json"));
  for (const char* stage : {"prior", "aa"}) {
    const double auc = summary["stages"][stage]["auc"];
    EXPECT_GT(auc, 0.9) << stage << ": the synthetic classes are easy to separate";
    EXPECT_TRUE(summary["stages"][stage]["scan"].contains("e"));
  }
  for (const char* f : {"prior.ckpt", "aa.ckpt", "log.jsonl", "scores/aa/e.npy", "analysis/aa.json",
                        "analysis/aa_e_curves.csv", "analysis/aa_e_reach.csv"})
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;

  r = run("score -m " + (out / "aa.ckpt").string() + " " + (dir / "data" / "e.npy").string() + " -o " +
          (dir / "scores").string() + " -q");
  ASSERT_EQ(r.status, 0) << r.output;
  const NpyArray scores = NpyArray::load(dir / "scores" / "e.npy");
  ASSERT_EQ(scores.shape(), (std::vector<int64_t>{120, 2}));
  for (int64_t i = 0; i < scores.rows(); ++i) EXPECT_NEAR(scores.data()[2 * i] + scores.data()[2 * i + 1], 1.0, 1e-5);

  const auto s = (out / "scores" / "aa").string();
  r = run("scan --anomaly " + s + "/e.npy --background " + s + "/a.npy:1 --background " + s +
          "/b.npy:10 --bins 100 --min-background 5 -o " + (dir / "scan").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("R_max"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir / "scan" / "e_scan.json"));
}

// Leave-one-out and lambda scans share one prior: --prior takes another run's finished prior.ckpt, and
// --set changes the config; the AA stage from the shared prior equals a whole run with the same setting.
TEST_F(CliTest, APriorFromAnotherRunGivesTheSameAAAsAWholeRun) {
  Result r = run("run " + config + " -o " + (dir / "base").string() + " -q");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("run " + config + " --set train.lambda=0.8 -o " + (dir / "whole").string() + " -q");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("run " + config + " --set train.lambda=0.8 --prior " + (dir / "base" / "prior.ckpt").string() + " -o " +
          (dir / "shared").string() + " -q");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(load_checkpoint(dir / "shared" / "aa.ckpt").params, load_checkpoint(dir / "whole" / "aa.ckpt").params);
  EXPECT_NE(load_checkpoint(dir / "shared" / "aa.ckpt").params, load_checkpoint(dir / "base" / "aa.ckpt").params);

  r = run("run " + config + " --seed 9 --prior " + (dir / "base" / "prior.ckpt").string() + " -o " +
          (dir / "other").string() + " -q");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("prior.ckpt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("seed"), std::string::npos) << r.output;
}

// aware report draws what the runs allow (here the prior densities and the ROC of a run named "paper")
// and lists what it could not; no runs is one clear error.
TEST_F(CliTest, ReportDrawsTheFiguresOfTheRunsItFinds) {
  Result r = run("run " + config + " -o " + (dir / "runs" / "paper_s1").string() + " -q");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("report " + (dir / "runs").string() + " -o " + (dir / "report").string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"fig04_prior_densities.png", "fig05_roc.png", "fig10_window_curves.png", "tables.md"})
    EXPECT_GT(std::filesystem::file_size(dir / "report" / f), 100u) << f;
  EXPECT_TRUE(std::filesystem::exists(dir / "report" / "results.json"));

  // summary.json holds every class's counts in bins of P(c0), one per scored event, and a 101-point ROC,
  // so a run's record without its scores and analysis files (docs/runs/) redraws the densities and ROC.
  const auto run_dir = dir / "runs" / "paper_s1";
  const nlohmann::json summary = nlohmann::json::parse(std::ifstream(run_dir / "summary.json"));
  for (const char* stage : {"prior", "aa"})
    for (const auto& [cls, counts] : summary["stages"][stage]["histograms"]["counts"].items()) {
      int64_t events = 0;
      for (const auto& c : counts) events += c.get<int64_t>();
      EXPECT_EQ(events, NpyArray::load(run_dir / "scores" / stage / (cls + ".npy")).rows()) << stage << " " << cls;
    }
  std::filesystem::create_directories(dir / "record" / "paper_s1");
  std::filesystem::copy_file(run_dir / "summary.json", dir / "record" / "paper_s1" / "summary.json");
  r = run("report " + (dir / "record").string() + " -o " + (dir / "from_record").string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"fig04_prior_densities.png", "fig05_roc.png"})
    EXPECT_GT(std::filesystem::file_size(dir / "from_record" / f), 100u) << f;
  // The window curves need the analysis files: not drawn (and said so) rather than drawn empty.
  EXPECT_FALSE(std::filesystem::exists(dir / "from_record" / "fig10_window_curves.png"));

  // A run with toys (scripts/reproduce.sh lee) adds the look-elsewhere table and figures.
  r = run("run " + config + " --set scan.toys=200 --set scan.injected_toys=10 --set 'scan.fixed_window=[0.3,0.7]' -o " +
          (dir / "runs" / "lee_s1").string() + " -q");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("report " + (dir / "runs").string() + " -o " + (dir / "report").string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"lee_statistic.png", "lee_injection.png"})
    EXPECT_GT(std::filesystem::file_size(dir / "report" / f), 100u) << f;
  std::ifstream tables(dir / "report" / "tables.md");
  const std::string text(std::istreambuf_iterator<char>(tables), {});
  EXPECT_NE(text.find("The reach with the look-elsewhere effect: sigma_min (fb) for a median global 3 sigma"),
            std::string::npos) << text;

  r = run("report " + (dir / "nowhere").string() + " -o " + (dir / "report").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("nowhere"), std::string::npos) << r.output;
}

TEST_F(CliTest, HelpIsEverywhere) {
  for (const char* sub : {"", "run", "train", "score", "scan", "images", "report"}) {
    const Result r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << sub;
  }
}

TEST_F(CliTest, BadInputGivesOneClearErrorNamingTheFile) {
  const auto bad = testing::write_text(dir / "bad.toml", "[train]\nepochs = -1\nbatch = 0\n").string();
  Result r = run("run " + bad + " -o " + (dir / "o").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("bad.toml"), std::string::npos) << r.output;

  const auto missing = testing::write_text(dir / "missing.toml", testing::synthetic_config(dir / "nowhere")).string();
  r = run("run " + missing + " -o " + (dir / "o").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("nowhere"), std::string::npos) << r.output;

  r = run("train " + config + " --stage aa -o " + (dir / "o").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--init"), std::string::npos) << r.output;

  r = run("run " + config + " --device cpu --conv cudnn -o " + (dir / "o").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--device cuda"), std::string::npos) << r.output;

  testing::write_text(dir / "junk.npy", "not numpy");
  r = run("score -m " + (dir / "junk.npy").string() + " " + (dir / "junk.npy").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("junk.npy"), std::string::npos) << r.output;
}

// Score files that cannot belong together, and cross-sections that are not numbers: refused by name.
TEST_F(CliTest, ScanInputsAreChecked) {
  const auto scores = [&](const std::string& name, int64_t columns, float value) {
    std::vector<float> v(size_t(200 * columns), value);
    const auto path = dir / name;
    save_npy(path, v.data(), std::vector<int64_t>{200, columns});
    return path.string();
  };
  const std::string a2 = scores("a.npy", 2, 0.5f), a3 = scores("a3.npy", 3, 0.5f), b = scores("b.npy", 2, 0.2f);
  const std::string high = scores("high.npy", 2, 1.5f);
  std::filesystem::create_directories(dir / "other");
  const std::string a2_again = (dir / "other" / "a.npy").string();
  std::filesystem::copy_file(a2, a2_again);
  const std::string o = " -o " + (dir / "scan").string();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"--anomaly " + a3 + " --background " + b + ":10", "a3.npy has 3 score columns"},
      {"--anomaly " + a2 + " --background " + b + ":5abc", "'5abc' is not a cross-section in fb"},
      {"--anomaly " + a2 + " --background " + b + ":-3", "'-3' is not a cross-section in fb"},
      {"--anomaly " + high + " --background " + b + ":10", "high.npy: row 0 scores 1.5"},
      {"--anomaly " + a2 + " --anomaly " + a2_again + " --background " + b + ":10", "also named 'a'"}};
  for (const auto& [args, message] : cases) {
    const Result r = run("scan " + args + o);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "scan" / "a_scan.json")) << args << ": no output";
  }
  EXPECT_EQ(run("scan --anomaly " + a2 + " --background " + b + ":10" + o).status, 0);
}

// --toys: the look-elsewhere report beside the scan's; a window fixed in advance pays no trials factor,
// the scanned windows do.
TEST_F(CliTest, ScanWithToysReportsTheLookElsewhereEffect) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0, 0.12f);
  const auto scores = [&](const std::string& name, float centre, float width = 1) {
    std::vector<float> v(2000 * 2);
    for (size_t i = 0; i < 2000; ++i) {
      v[2 * i] = std::clamp(centre + width * g(rng), 0.0f, 1.0f);
      v[2 * i + 1] = 1 - v[2 * i];
    }
    save_npy(dir / name, v.data(), std::vector<int64_t>{2000, 2});
    return (dir / name).string();
  };
  const std::string a = scores("a.npy", 0.5f), top = scores("top.npy", 0.9f), qcd = scores("qcd.npy", 0.1f);
  const std::string base = "scan --anomaly " + a + " --background " + top + ":73.4 --background " + qcd +
                           ":67600 --bins 100 --min-background 20 --device cpu -o " + (dir / "scan").string();
  Result r = run(base + " --toys 300 --injected-toys 30 --toys-luminosity 10 --window 0.3:0.7");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("sigma_min at a median global 3 / 5 sigma"), std::string::npos) << r.output;
  const auto lee = nlohmann::json::parse(std::ifstream(dir / "scan" / "a_lee.json"));
  EXPECT_GT(lee["scanned"]["windows"].get<int64_t>(), 1000);
  EXPECT_EQ(lee["fixed"]["windows"].get<int64_t>(), 1);
  EXPECT_EQ(lee["fixed"]["window"], nlohmann::json::array({0.3, 0.7}));
  EXPECT_NEAR(lee["fixed"]["local_to_global"][1]["trials_factor"].get<double>(), 1.0, 1e-9);
  EXPECT_GT(lee["scanned"]["local_to_global"][0]["trials_factor"].get<double>(), 2.0);  // at a local 2 sigma
  EXPECT_EQ(lee["scanned"]["injection"].size(), 13u);
  EXPECT_EQ(lee["luminosity"].get<double>(), 10.0);

  // A fixed window without simulated background has no statistic: said in the report, not a failed scan.
  const std::string narrow = "scan --anomaly " + a + " --background " + scores("top_narrow.npy", 0.9f, 0.1f) +
                             ":73.4 --background " + scores("qcd_narrow.npy", 0.1f, 0.1f) +
                             ":67600 --bins 100 --min-background 20 --device cpu -o " + (dir / "scan").string();
  r = run(narrow + " --toys 50 --injected-toys 5 --toys-luminosity 10 --window 0.3:0.7");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto empty = nlohmann::json::parse(std::ifstream(dir / "scan" / "a_lee.json"));
  EXPECT_EQ(empty["fixed"]["note"], "the fixed window holds no simulated background events") << empty["fixed"];
  EXPECT_TRUE(empty["fixed"]["sigma_min"]["3"]["value"].is_null());
  EXPECT_EQ(empty["scanned"]["background"]["toys"], 50);

  r = run(base + " --toys 10 --window 0.7:0.3");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--window 0.7:0.3: expected LO:HI with 0 <= LO < HI <= 1"), std::string::npos) << r.output;
}

// A resumed run continues the run it resumes: another setting that changes the result is refused,
// listing each, before the run's record is rewritten; the epoch counts may grow.
TEST_F(CliTest, ResumeRefusesAnotherRunsSettings) {
  const std::string o = " -q -o " + (dir / "run").string();
  ASSERT_EQ(run("run " + config + " --set train.epochs=1 --set train.aa_epochs=1" + o).status, 0);
  const auto record = [&] {
    std::ifstream in(dir / "run" / "config.toml");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = record();
  Result r = run("run " + config + " --resume --set train.epochs=1 --set train.aa_epochs=1 --set train.lr=0.05" + o);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("prior.ckpt: was written with other settings"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train.lr: 0.01 vs 0.05"), std::string::npos) << r.output;
  // lambda is the AA stage's alone: the prior may be shared (run --prior), the AA checkpoint refuses it.
  r = run("run " + config + " --resume --set train.epochs=1 --set train.aa_epochs=1 --set train.lambda=0.7" + o);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("aa.ckpt: was written with other settings"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train.lambda: 0.5 vs 0.7"), std::string::npos) << r.output;
  EXPECT_EQ(record(), before) << "config.toml must still be the resumed run's";
  r = run("run " + config + " --resume --set train.epochs=2 --set train.aa_epochs=1" + o);
  EXPECT_EQ(r.status, 0) << "more epochs continue the same run\n" << r.output;
}

// A stage whose loss diverges (a finite but absurd learning rate) stops with one error at the epoch it
// diverged, and no checkpoint of NaN weights is written.
TEST_F(CliTest, ADivergedTrainingStopsWithOneClearError) {
  const Result r = run("train " + config + " --set train.epochs=2 --set train.lr=1e30 -q -o " + (dir / "run").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("prior epoch 1: the training loss is "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("training diverged (lower train.lr"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "run" / "prior.ckpt"));
}

// Numeric options out of range are refused before anything runs, in words (no silent "all cores" for
// --threads -1, no "unlimited" for --max-chunks -5, no floating-point range for an integer).
TEST_F(CliTest, NumericOptionsOutOfRangeAreRefusedInWords) {
  const std::string o = " -o " + (dir / "o").string();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"run " + config + " --threads -1" + o, "--threads: must be 0 (all cores) to 1024 (got '-1')"},
      {"run " + config + " --threads 100000" + o, "--threads: must be 0 (all cores) to 1024"},
      {"train " + config + " --epochs -3" + o, "--epochs: must be a whole number of epochs, 0 or more"},
      {"score -m " + config + " " + config + " --max-chunks -5" + o, "--max-chunks: must be a positive whole number"},
      {"score -m " + config + " " + config + " --chunk 0" + o, "--chunk: must be a positive whole number"},
      {"score -m " + config + " " + config + " --batch 2.5" + o, "--batch: must be a positive whole number"},
      {"scan --anomaly a.npy --background b.npy:1 --min-width 5" + o, "--min-width: must be a width in [0, 1]"},
      {"scan --anomaly a.npy --background b.npy:1 --bins 1" + o, "--bins: must be 2 to 10^8 bins"}};
  for (const auto& [args, message] : cases) {
    const Result r = run(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "o")) << args << ": nothing may run";
  }
}

}  // namespace
}  // namespace aware
