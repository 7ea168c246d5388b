// Between the parts of the CUDA emulation: errors, streams and the one lock (tests/cuda_emu/).
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <mutex>
#include <string>

namespace aware_emu {

// Every call of the emulation holds it: the API may be called from several host threads.
std::recursive_mutex& big_lock();
// Sets the error cudaGetLastError() returns next; returns e.
cudaError_t record_error(cudaError_t e);
// A fault in a kernel: from now on every call returns cudaErrorLaunchFailure (as a GPU's context is
// lost after one), until cudaDeviceReset(); the message goes to standard error and to last_fault().
void kernel_fault(const std::string& message);
cudaError_t sticky_error();
bool stream_is_valid(cudaStream_t stream);
// Work on a stream: run now (the emulation's streams are in order and synchronous), or appended to
// the graph being captured on it.
void enqueue(cudaStream_t stream, std::function<void()> work);
// A call that may not happen during a graph capture: a wait for or query of `stream` while it is
// captured, or (`any`) an unsafe call (an allocation, a synchronous copy, a device-wide wait) while a
// capture not in relaxed mode goes on. Invalidates that capture and returns true.
bool illegal_in_capture(const char* call, cudaStream_t stream, bool any);
// A call on `stream` failed: a capture it belongs to is invalidated, as on a GPU.
void invalidate_capture(cudaStream_t stream);

}  // namespace aware_emu
