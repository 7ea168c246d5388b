// Offline scoring: streamed in chunks, killed and resumed, and shared between MPI ranks, it writes
// the scores one pass over the whole file in memory gives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "synthetic.h"
#include "tools/npy.h"

namespace aware {
namespace {

int run(const std::string& args) {
  const int status = std::system((std::string(AWARE_BINARY) + " " + args + " -q").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void expect_same_scores(const std::filesystem::path& a, const std::filesystem::path& b) {
  const NpyArray x = NpyArray::load(a), y = NpyArray::load(b);
  ASSERT_EQ(x.shape(), y.shape());
  for (int64_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x.data()[i], y.data()[i], 1e-6) << i;
}

class ScoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testing::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    testing::write_synthetic_classes(dir / "data", 301);  // several chunks of 7, and a last short one
    const auto config = testing::write_text(dir / "run.toml", testing::synthetic_config(dir / "data"));
    ASSERT_EQ(run("train " + config.string() + " --epochs 1 -o " + (dir / "model").string()), 0);
    model = (dir / "model" / "prior.ckpt").string();
    events = (dir / "data" / "e.npy").string();
    ASSERT_EQ(run("score -m " + model + " " + events + " --chunk 100000 -o " + (dir / "whole").string()), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  std::string model, events;
};

TEST_F(ScoreTest, StreamingInChunksGivesTheScoresOfOnePass) {
  ASSERT_EQ(run("score -m " + model + " " + events + " --chunk 7 --batch 5 -o " + (dir / "streamed").string()), 0);
  expect_same_scores(dir / "whole" / "e.npy", dir / "streamed" / "e.npy");
}

TEST_F(ScoreTest, AKilledJobResumesWhereItStopped) {
  const std::string args = "score -m " + model + " " + events + " --chunk 7 -o " + (dir / "killed").string();
  EXPECT_EQ(run(args + " --max-chunks 3"), 4);
  EXPECT_FALSE(std::filesystem::exists(dir / "killed" / "e.npy")) << "an unfinished output must not look finished";
  EXPECT_TRUE(std::filesystem::exists(dir / "killed" / "e.npy.partial"));
  EXPECT_EQ(run(args + " --resume --max-chunks 5"), 4);
  EXPECT_EQ(run(args + " --resume"), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "killed" / "e.npy.partial"));
  expect_same_scores(dir / "whole" / "e.npy", dir / "killed" / "e.npy");
}

TEST_F(ScoreTest, ANonFiniteValueMidStreamIsOneClearError) {
  std::vector<float> x(301 * 64, 1.0f);
  x[200 * 64 + 5] = std::nanf("");
  const std::vector<int64_t> shape{301, 8, 8};
  save_npy(dir / "bad.npy", x.data(), shape);
  const std::string cmd = std::string(AWARE_BINARY) + " score -q -m " + model + " " + (dir / "bad.npy").string() +
                          " --chunk 7 -o " + (dir / "bad") .string() + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out(4096, '\0');
  out.resize(std::fread(out.data(), 1, out.size(), pipe));
  const int status = ::pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(out.find("bad.npy"), std::string::npos) << out;
  EXPECT_NE(out.find("index [200, 0, 5]"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad" / "bad.npy"));
}

TEST_F(ScoreTest, TwoMpiRanksShareTheEventsOfOneOutput) {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun not found";
  const std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
                          "OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np 2 " + std::string(AWARE_BINARY) +
                          " score -q --threads 1 -m " + model + " " + events + " --chunk 7 -o " + (dir / "mpi").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  expect_same_scores(dir / "whole" / "e.npy", dir / "mpi" / "e.npy");
}

}  // namespace
}  // namespace aware
