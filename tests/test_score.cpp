// Offline scoring: streamed in chunks, killed and resumed, and shared between MPI ranks, it writes
// the scores one pass over the whole file in memory gives.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <cstdlib>

#include "kernels/error.h"
#include "runtime/checkpoint.h"
#include "synthetic.h"
#include "tools/events.h"
#include "runtime/npy.h"

#if defined(AWARE_HDF5)
#include <hdf5.h>
#endif

namespace aware {
namespace {

// Exit status and output (stdout and stderr) of an aware command.
std::pair<int, std::string> run_output(const std::string& args) {
  FILE* pipe = ::popen((std::string(AWARE_BINARY) + " " + args + " -q 2>&1").c_str(), "r");
  std::string out(8192, '\0');
  out.resize(std::fread(out.data(), 1, out.size(), pipe));
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

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

// --precision bf16: the events cross to the backend as BF16 (2^-9 relative rounding), the rest is FP32:
// the scores move by far less than they differ between events, but they do move.
TEST_F(ScoreTest, Bf16EventsGiveNearlyTheSameScores) {
  ASSERT_EQ(run("score -m " + model + " " + events + " --chunk 7 --batch 5 --precision bf16 -o " +
                (dir / "bf16").string()), 0);
  const NpyArray x = NpyArray::load(dir / "whole" / "e.npy"), y = NpyArray::load(dir / "bf16" / "e.npy");
  ASSERT_EQ(x.shape(), y.shape());
  double largest = 0.0;
  for (int64_t i = 0; i < x.size(); ++i) largest = std::max(largest, std::fabs(double(x.data()[i]) - y.data()[i]));
  EXPECT_GT(largest, 0.0);
  EXPECT_LT(largest, 1e-2);
}

TEST_F(ScoreTest, AKilledJobResumesWhereItStopped) {
  const std::string args = "score -m " + model + " " + events + " --chunk 7 -o " + (dir / "killed").string();
  EXPECT_EQ(run(args + " --max-chunks 3"), 4);
  EXPECT_FALSE(std::filesystem::exists(dir / "killed" / "e.npy")) << "an unfinished output must not look finished";
  EXPECT_TRUE(std::filesystem::exists(dir / "killed" / "e.npy.partial"));
  EXPECT_EQ(run(args + " --resume --max-chunks 5"), 4);
  EXPECT_EQ(run(args + " --resume"), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "killed" / "e.npy.partial"));
  EXPECT_FALSE(std::filesystem::exists(dir / "killed" / "e.npy.partial.job"));
  expect_same_scores(dir / "whole" / "e.npy", dir / "killed" / "e.npy");
}

// A resume continues only the job that wrote the partial output: another input (changed or replaced),
// another model, chunk, batch or precision is refused with what differs, and the partial output is
// left as it was, for the right job to continue.
TEST_F(ScoreTest, AResumeRefusesToContinueAnotherJob) {
  const auto out = dir / "job";
  const std::string args = "score -m " + model + " " + events + " -o " + out.string();
  ASSERT_EQ(run(args + " --chunk 7 --max-chunks 2"), 4);
  const auto partial_bytes = [&] {
    std::ifstream in(out / "e.npy.partial", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = partial_bytes();
  ASSERT_EQ(run("train " + (dir / "run.toml").string() + " --epochs 1 --seed 5 -o " + (dir / "model5").string()), 0);
  const std::vector<std::pair<std::string, std::string>> cases{
      {args + " --chunk 9 --resume", "chunk: 7 vs 9"},
      {args + " --chunk 7 --batch 5 --resume", "batch: 64 vs 5"},
      {args + " --chunk 7 --precision bf16 --resume", "backend: cpu vs cpu (bf16 storage)"},
      {"score -m " + (dir / "model5" / "prior.ckpt").string() + " " + events + " -o " + out.string() +
           " --chunk 7 --resume",
       "model: fnv1a"}};
  for (const auto& [command, message] : cases) {
    const auto [status, output] = run_output(command);
    EXPECT_EQ(status, 2) << command << "\n" << output;
    EXPECT_NE(output.find("was written by another job"), std::string::npos) << output;
    EXPECT_NE(output.find(message), std::string::npos) << command << "\n" << output;
  }
  // The input rewritten with fewer events (the same name and place).
  std::vector<float> fewer(size_t(150) * 64, 0.25f);
  const std::string changed = (dir / "changed" / "e.npy").string();
  std::filesystem::create_directories(dir / "changed");
  std::filesystem::copy_file(events, changed);
  const std::string on_changed = "score -m " + model + " " + changed + " --chunk 7 -o " + (dir / "job2").string();
  ASSERT_EQ(run(on_changed + " --max-chunks 2"), 4);
  save_npy(changed, fewer.data(), std::vector<int64_t>{150, 8, 8});
  auto [status, output] = run_output(on_changed + " --resume");
  EXPECT_EQ(status, 2) << output;
  EXPECT_NE(output.find("events: 301 x (8, 8) vs 150 x (8, 8)"), std::string::npos) << output;
  EXPECT_EQ(partial_bytes(), before) << "a refused resume leaves the partial output alone";
  EXPECT_EQ(run(args + " --chunk 7 --resume"), 0) << "the right job still continues";
  expect_same_scores(dir / "whole" / "e.npy", out / "e.npy");
}

// A progress file written for another slice (a job that ran with another number of ranks) is not
// trusted: the resumed slice starts again and the output is still right.
TEST_F(ScoreTest, AResumeDoesNotTrustAnotherSlicesProgress) {
  const std::string args = "score -m " + model + " " + events + " --chunk 7 -o " + (dir / "other").string();
  EXPECT_EQ(run(args + " --max-chunks 2"), 4);
  testing::write_text(dir / "other" / "e.npy.partial.rank0", "150 301 140\n");  // as if rank 1 of 2 had written it
  EXPECT_EQ(run(args + " --resume"), 0);
  expect_same_scores(dir / "whole" / "e.npy", dir / "other" / "e.npy");
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

// A model file's finite parameters that overflow float32 inside the network: an error naming the file
// and the events, never NaN scores (found by fuzz/fuzz_checkpoint).
TEST_F(ScoreTest, ScoresThatOverflowAreOneClearError) {
  Checkpoint c = load_checkpoint(model);
  for (float& p : c.params) p *= 1e36f;
  save_checkpoint(dir / "huge.ckpt", c);
  auto [status, out] = run_output("score -m " + (dir / "huge.ckpt").string() + " " + events + " -o " + (dir / "h").string());
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("e.npy (events from 0): the network's output for event 0 is not finite: the event's or the model's "
                     "values overflow float32"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "h" / "e.npy"));
}

// An input truncated by another process while it is read (memory-mapped: SIGBUS) is one clear error.
TEST(EventSource, AnInputTruncatedUnderTheReaderIsAnError) {
  const auto path = std::filesystem::temp_directory_path() / ("aware_truncated_" + std::to_string(::getpid()) + ".npy");
  std::vector<float> x(size_t(4000) * 64, 0.5f);
  save_npy(path, x.data(), std::vector<int64_t>{4000, 8, 8});
  const auto source = EventSource::open(path.string());
  std::vector<float> out(size_t(10) * 64);
  source->read(0, 10, out.data());
  std::filesystem::resize_file(path, 128);  // the header alone
  try {
    source->read(3000, 10, out.data());
    FAIL() << "a read past the truncated end returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("changed while it was read"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.filename().string()), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

// Two inputs of one name would write one output: refused before anything is scored. Events of another
// shape than the model's: the error gives both shapes.
TEST_F(ScoreTest, InputsThatCannotBeScoredAsGivenAreRefused) {
  std::filesystem::create_directories(dir / "other");
  std::filesystem::copy_file(events, dir / "other" / "e.npy");
  auto [status, out] = run_output("score -m " + model + " " + events + " " + (dir / "other" / "e.npy").string() +
                                  " -o " + (dir / "twice").string());
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("another input is also named 'e'"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "twice" / "e.npy"));

  std::vector<float> x(size_t(10) * 6 * 6, 0.5f);
  save_npy(dir / "small.npy", x.data(), std::vector<int64_t>{10, 6, 6});
  std::tie(status, out) = run_output("score -m " + model + " " + (dir / "small.npy").string() + " -o " +
                                     (dir / "small").string());
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("events of shape (6, 6), the model takes events of shape (8, 8)"), std::string::npos) << out;
}

#if defined(AWARE_HDF5)
// Writes datasets (name -> float32 values of the events' shape, or int32 when `integer`) to an HDF5 file.
void write_hdf5(const std::filesystem::path& path, const NpyArray& events,
                const std::vector<std::pair<std::string, bool>>& datasets) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<hsize_t> dims(events.shape().begin(), events.shape().end());
  const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  for (const auto& [name, integer] : datasets) {
    const hid_t set = H5Dcreate2(file, name.c_str(), integer ? H5T_NATIVE_INT : H5T_IEEE_F64LE, space, H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT);
    if (integer) {
      std::vector<int> v(size_t(events.size()), 1);
      H5Dwrite(set, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    } else {
      H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, events.data());  // stored as float64
    }
    H5Dclose(set);
  }
  H5Sclose(space);
  H5Fclose(file);
}
#endif

TEST_F(ScoreTest, Hdf5InputGivesTheScoresOfTheNpyAndClearErrors) {
#if !defined(AWARE_HDF5)
  GTEST_SKIP() << "built without HDF5";
#else
  const NpyArray e = NpyArray::load(events);
  write_hdf5(dir / "e.h5", e, {{"jets", false}});
  ASSERT_EQ(run("score -m " + model + " " + (dir / "e.h5").string() + " --chunk 7 -o " + (dir / "h5").string()), 0);
  expect_same_scores(dir / "whole" / "e.npy", dir / "h5" / "e.npy");

  write_hdf5(dir / "two.h5", e, {{"jets", false}, {"labels", true}});
  auto [status, out] = run_output("score -m " + model + " " + (dir / "two.h5").string() + " -o " + (dir / "x").string());
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("name the dataset"), std::string::npos) << out;
  std::tie(status, out) = run_output("score -m " + model + " " + (dir / "two.h5").string() + ":labels -o " + (dir / "x").string());
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("two.h5:labels: values must be floating point"), std::string::npos) << out;
  std::tie(status, out) = run_output("score -m " + model + " " + (dir / "two.h5").string() + ":missing -o " + (dir / "x").string());
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("two.h5:missing: no such dataset"), std::string::npos) << out;

  // A refused file is closed: reopening its path after it was rewritten reads the new file, not the
  // one libhdf5 would still hold open (found by fuzz/fuzz_hdf5).
  EXPECT_THROW(EventSource::open((dir / "two.h5").string()), Error);
  write_hdf5(dir / "two.h5", e, {{"jets", false}});
  EXPECT_EQ(EventSource::open((dir / "two.h5").string())->rows(), e.rows());

  // A chunk layout that libhdf5 1.10 sizes in 32 bits and then reads out of bounds (kept from
  // fuzz/fuzz_hdf5): refused when opened, naming the file and the chunks.
  std::filesystem::copy_file(std::filesystem::path(AWARE_SOURCE_DIR) / "fuzz/regressions/hdf5/chunk-over-4GiB-read-out-of-bounds",
                             dir / "corrupt.h5");
  try {
    EventSource::open((dir / "corrupt.h5").string());
    ADD_FAILURE() << "the corrupt file was opened";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("corrupt.h5:jets: corrupt file: chunks of (2, 2162694)"), std::string::npos)
        << error.what();
  }

  // A truncated file: the first half of a valid one.
  std::filesystem::copy_file(dir / "e.h5", dir / "cut.h5");
  std::filesystem::resize_file(dir / "cut.h5", std::filesystem::file_size(dir / "e.h5") / 2);
  std::tie(status, out) = run_output("score -m " + model + " " + (dir / "cut.h5").string() + ":jets -o " + (dir / "x").string());
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("cut.h5"), std::string::npos) << out;
#endif
}

#if defined(AWARE_HDF5)
// An HDF5 filter that faults when it decodes: it stands for any crash of libhdf5 on a corrupt file.
size_t faulting_filter(unsigned flags, size_t, const unsigned[], size_t bytes, size_t*, void**) {
  if (flags & H5Z_FLAG_REVERSE) std::raise(SIGSEGV);
  return bytes;
}
#endif

// libhdf5 runs in a child process: its crash is one error naming the file, and this process (its other
// files, its outputs) goes on.
TEST(EventSource, AnHdf5ReaderThatCrashesIsAnError) {
#if !defined(AWARE_HDF5)
  GTEST_SKIP() << "built without HDF5";
#else
  const H5Z_filter_t id = 32100;  // in the range for unregistered filters
  const H5Z_class2_t faulting{H5Z_CLASS_T_VERS, id, 1, 1, "faulting", nullptr, nullptr, faulting_filter};
  ASSERT_GE(H5Zregister(&faulting), 0);
  const auto path = std::filesystem::temp_directory_path() / ("aware_faulting_" + std::to_string(::getpid()) + ".h5");
  const std::vector<float> values(12, 0.5f);
  const hsize_t dims[2] = {4, 3}, chunk[2] = {2, 3};
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(2, dims, nullptr), props = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(props, 2, chunk);
  H5Pset_filter(props, id, H5Z_FLAG_MANDATORY, 0, nullptr);
  const hid_t set = H5Dcreate2(file, "jets", H5T_IEEE_F32LE, space, H5P_DEFAULT, props, H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(set), H5Pclose(props), H5Sclose(space), H5Fclose(file);

  auto source = EventSource::open(path.string());
  ASSERT_EQ(source->rows(), 4);
  std::vector<float> rows(6);
  try {
    source->read(0, 2, rows.data());
    ADD_FAILURE() << "the read returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.filename().string() + ": libhdf5 crashed reading the file (Segmentation fault)"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(source->read(2, 2, rows.data()), Error);  // the reader is gone: an error, not a hang
  std::filesystem::remove(path);
#endif
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
