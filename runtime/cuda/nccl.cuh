// NCCL for the CUDA backend: one communicator per process, made on first use from the job's
// Communicator (MPI): rank 0 draws the NCCL unique id, the others receive it by broadcast, each rank
// drives the GPU of its local rank. All-reduces run on the backend's stream, so they order with the
// kernels around them (and can be captured in a CUDA graph).
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "runtime/communicator.h"
#include "kernels/error.h"

namespace aware::cuda {

inline void check_nccl(ncclResult_t status, const char* what, int rank) {
  if (status != ncclSuccess)
    throw Error(std::string("NCCL error on rank ") + std::to_string(rank) + ": " + what + ": " +
                ncclGetErrorString(status));
}

class Nccl {
 public:
  explicit Nccl(Communicator& job) : rank_(job.rank()), size_(job.size()) {
    ncclUniqueId id;
    if (job.root()) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", rank_);
    job.broadcast(&id, sizeof id, 0);
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank", rank_);
  }
  ~Nccl() {
    if (comm_) ncclCommDestroy(comm_);
  }
  Nccl(const Nccl&) = delete;
  Nccl& operator=(const Nccl&) = delete;

  int size() const { return size_; }
  int rank() const { return rank_; }
  // An asynchronous NCCL error (a peer died, a network failure), or ncclSuccess.
  ncclResult_t async_error() const {
    ncclResult_t status = ncclSuccess;
    ncclCommGetAsyncError(comm_, &status);
    return status;
  }
  // Ends this rank's part in every pending collective (before the job is torn down).
  void abort() { ncclCommAbort(comm_), comm_ = nullptr; }
  // In place, summed; every rank gets the result.
  void sum(float* data, size_t n, cudaStream_t stream) {
    check_nccl(ncclAllReduce(data, data, n, ncclFloat, ncclSum, comm_, stream), "ncclAllReduce", rank_);
  }

 private:
  int rank_, size_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace aware::cuda
