// Data parallelism on the CPU backend: `mpirun -np 2 aware train` must end with the weights of one
// process (tests/mpi_run.h). Skipped where mpirun is missing.
#include "mpi_run.h"

namespace aware {
namespace {

TEST(Mpi, TwoRanksTrainTheWeightsOfOneProcess) {
  if (testing::mpirun().empty()) GTEST_SKIP() << "mpirun not found";
  testing::two_ranks_train_the_weights_of_one_process(AWARE_BINARY, "cpu");
}

}  // namespace
}  // namespace aware
