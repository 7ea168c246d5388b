#include "runtime/communicator.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "kernels/error.h"

#if defined(AWARE_MPI)
#include <mpi.h>
#endif

namespace aware {
namespace {

class SingleRank final : public Communicator {
 public:
  std::string name() const override { return "single"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void sum(float*, size_t) override {}
  void sum(double*, size_t) override {}
  void barrier() override {}
  void broadcast(void*, size_t, int) override {}
  void abort(int) override {}
};

#if defined(AWARE_MPI)
// A failing collective (a rank died) must end the job with a message, not hang: MPI's default
// handler, MPI_ERRORS_ARE_FATAL, aborts every rank, and OpenMPI's launcher names the one that failed.
class Mpi final : public Communicator {
 public:
  Mpi() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
  }
  ~Mpi() override { MPI_Finalize(); }
  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  void sum(float* data, size_t n) override { reduce(data, n, MPI_FLOAT); }
  void sum(double* data, size_t n) override { reduce(data, n, MPI_DOUBLE); }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  void broadcast(void* data, size_t bytes, int root) override {
    check(bytes <= size_t(1) << 30, "broadcast: at most 1 GiB at a time");
    MPI_Bcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

 private:
  void reduce(void* data, size_t n, MPI_Datatype type) {
    // MPI counts are int: large buffers go in chunks.
    constexpr size_t kChunk = size_t(1) << 30;
    const size_t bytes = type == MPI_FLOAT ? sizeof(float) : sizeof(double);
    for (size_t done = 0; done < n; done += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + done * bytes, int(std::min(kChunk, n - done)), type,
                    MPI_SUM, MPI_COMM_WORLD);
  }
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};
#endif

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : 0;
}

}  // namespace

// mpirun (OpenMPI, MPICH/Hydra, PMIx) or srun with several tasks. SLURM_STEP_NUM_TASKS, not SLURM_NTASKS:
// the latter is set in the whole allocation, also for a single process started without srun.
bool launched_by_mpi() {
  return env_int("OMPI_COMM_WORLD_SIZE") > 1 || env_int("PMI_SIZE") > 1 || env_int("PMIX_SIZE") > 1 ||
         env_int("SLURM_STEP_NUM_TASKS") > 1;
}

Communicator& world() {
  static std::unique_ptr<Communicator> comm = []() -> std::unique_ptr<Communicator> {
#if defined(AWARE_MPI)
    if (launched_by_mpi()) return std::make_unique<Mpi>();
#else
    check(!launched_by_mpi(), "started by an MPI launcher, but this build of aware has no MPI "
                              "(install libopenmpi-dev and rebuild)");
#endif
    return std::make_unique<SingleRank>();
  }();
  return *comm;
}

}  // namespace aware
