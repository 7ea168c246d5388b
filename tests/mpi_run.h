// `mpirun -np 2 aware train` against one process (tests/test_mpi.cpp on the CPU backend through MPI,
// tests/test_cuda_emu.cpp on the CUDA backend through NCCL under the emulation): the two ranks must end
// with the weights of one process training the same global batch with the same seed. Not bit for bit:
// the two ranks' gradient sums are added in another order than one process adds its rows, so the
// weights agree to float rounding (1e-6 relative), which training then carries along.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "runtime/checkpoint.h"
#include "synthetic.h"

namespace aware::testing {

inline std::string mpirun() {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) return "";
  // Root in CI containers; no network beyond this machine; two ranks on two cores or fewer.
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
         "OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np 2 ";
}

inline double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, double(std::abs(a[i])));
    diff = std::max(diff, double(std::abs(a[i] - b[i])));
  }
  return diff / scale;
}

// Both stages, one epoch each, with `aware` on `device`; "" when mpirun is missing (the caller skips).
inline void two_ranks_train_the_weights_of_one_process(const std::string& aware, const std::string& device) {
  const std::string launcher = mpirun();
  const auto dir = fresh_dir("mpi_" + device);
  write_synthetic_classes(dir / "data");
  const auto config = write_text(dir / "run.toml", synthetic_config(dir / "data")).string();
  for (const char* stage : {"prior", "aa"}) {
    const std::string init = std::string(stage) == "aa" ? " --init " : "";
    const std::string one = aware + " train " + config + " --stage " + stage + " --epochs 1 --threads 1 --device " + device + " -q -o " +
                            (dir / "one").string() + (init.empty() ? "" : init + (dir / "one" / "prior.ckpt").string());
    const std::string two = launcher + aware + " train " + config + " --stage " + stage +
                            " --epochs 1 --threads 1 --device " + device + " -q -o " + (dir / "two").string() +
                            (init.empty() ? "" : init + (dir / "two" / "prior.ckpt").string());
    ASSERT_EQ(std::system(one.c_str()), 0) << one;
    ASSERT_EQ(std::system(two.c_str()), 0) << two;
    const auto a = load_checkpoint(dir / "one" / (std::string(stage) + ".ckpt"));
    const auto b = load_checkpoint(dir / "two" / (std::string(stage) + ".ckpt"));
    ASSERT_EQ(a.params.size(), b.params.size());
    const double diff = max_relative_difference(a.params, b.params);
    std::printf("%s: largest weight difference, relative to the largest weight: %.2g\n", stage, diff);
    EXPECT_GT(max_relative_difference(a.params, load_checkpoint(dir / "one" / "prior.ckpt").params) +
                  (std::string(stage) == "prior" ? 1.0 : 0.0), 1e-3) << "AA must have moved the weights";
    EXPECT_LT(diff, 1e-6) << stage;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace aware::testing
