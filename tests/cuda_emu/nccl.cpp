// NCCL on the host: a communicator of one rank, or of the ranks of an MPI job (the NCCL path's bucketing,
// streams and graph capture then run under `mpirun -np N`); the all-reduce runs as MPI_Allreduce when
// the stream reaches it, so a captured one runs at each replay, as NCCL's does.
#include <cstdio>
#include <cstring>

#include <nccl.h>

#include "cuda_emu/internal.h"

#if defined(AWARE_MPI)
#include <mpi.h>
#endif

struct ncclComm {
  int rank = 0, size = 1;
#if defined(AWARE_MPI)
  MPI_Comm mpi = MPI_COMM_NULL;
#endif
};

const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
  }
  return "unknown result code";
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::memset(id, 0, sizeof *id);
  std::snprintf(id->internal, sizeof id->internal, "aware-cuda-emulation");
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (std::strcmp(id.internal, "aware-cuda-emulation") != 0 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  auto* c = new ncclComm{rank, nranks};
  if (nranks > 1) {
#if defined(AWARE_MPI)
    int initialised = 0, size = 0;
    MPI_Initialized(&initialised);
    if (initialised) MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != nranks) {
      delete c;
      return ncclInvalidUsage;  // the emulation's ranks are MPI's
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
#else
    delete c;
    return ncclInvalidUsage;
#endif
  }
  *comm = c;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
#if defined(AWARE_MPI)
  if (comm->mpi != MPI_COMM_NULL) MPI_Comm_free(&comm->mpi);
#endif
  delete comm;
  return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  delete comm;  // MPI ends with the job
  return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!comm) return ncclInvalidArgument;
  *async_error = ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  if (!comm) return ncclInvalidArgument;
  const size_t bytes = count * (type == ncclDouble ? 8 : 4);
  if (!aware_emu::is_device_pointer(send, bytes) || !aware_emu::is_device_pointer(recv, bytes)) {
    std::fprintf(stderr, "aware CUDA emulation: ncclAllReduce: a buffer is not inside one device allocation\n");
    return ncclInvalidArgument;
  }
  if (op != ncclSum || (type != ncclFloat && type != ncclDouble && type != ncclInt)) return ncclInvalidArgument;
  aware_emu::enqueue(stream, [=] {
    if (comm->size == 1) {
      if (send != recv) std::memmove(recv, send, bytes);
      return;
    }
#if defined(AWARE_MPI)
    const MPI_Datatype t = type == ncclFloat ? MPI_FLOAT : type == ncclDouble ? MPI_DOUBLE : MPI_INT;
    MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, int(count), t, MPI_SUM, comm->mpi);
#endif
  });
  return ncclSuccess;
}
