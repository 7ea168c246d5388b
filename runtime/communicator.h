// The data-parallel communicator: sums buffers across the ranks of a job. One interface, and an
// implementation per engine: MPI for the CPU backend (and to start and bootstrap ranks), a single
// rank with no cost when no launcher started the process. The CUDA backend sums its device buffers with
// NCCL (runtime/cuda/nccl.cu), bootstrapped through this communicator (the NCCL id is broadcast).
//
// Ranks are started by `mpirun -np N aware ...` or Slurm's `srun`; rank, size and local rank come
// from the launcher's environment through MPI.
#pragma once
#include <cstddef>
#include <string>

namespace aware {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string name() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  // Sums n values over all ranks, in place; every rank gets the same result.
  virtual void sum(float* data, size_t n) = 0;
  virtual void sum(double* data, size_t n) = 0;
  virtual void barrier() = 0;
  // Copies `bytes` bytes of root's `data` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Ends every rank of the job (a rank that failed must not leave the others waiting in a collective).
  virtual void abort(int code) = 0;
  bool root() const { return rank() == 0; }
};

// This process's communicator: MPI's world when a launcher started it (and MPI is built in), else
// one rank. Made on first use; MPI is finalised at exit.
Communicator& world();

// True when the environment shows an MPI or Slurm launcher with more than one task.
bool launched_by_mpi();

}  // namespace aware
