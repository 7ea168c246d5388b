// The CUDA runtime on the host: device memory (poisoned when allocated, every copy's range checked
// against its allocation), page-locked memory, streams and events (in order and synchronous: work runs
// when it is enqueued), graph capture and replay, and CUDA's error model (the last error, and the
// sticky error after a kernel's fault).
//
// During a capture, what a GPU forbids fails as it does there: an allocation, a synchronous copy or
// set, a wait for a stream, an event or the device invalidate the capture (cudaErrorStreamCaptureUnsupported
// at the call, cudaErrorStreamCaptureInvalidated at its end), and a stream forked into the capture that
// is not joined back fails its end (cudaErrorStreamCaptureUnjoined).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "cuda_emu/internal.h"

struct Capture {
  uint64_t id = 0;  // events name their capture by it: a finished capture's memory may be reused
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  cudaStream_t origin = nullptr;
  std::vector<std::function<void()>> nodes;
  std::set<cudaStream_t> streams;  // origin and the streams forked into it
  cudaError_t invalidated = cudaSuccess;
};
struct CUstream_st {
  unsigned flags = 0;
  Capture* capture = nullptr;
  size_t ops = 0;         // work enqueued during the capture
  size_t joined_ops = 0;  // of which the origin has waited for
};
struct CUevent_st {
  unsigned flags = 0;
  uint64_t capture = 0;  // the capture it was recorded in, or 0
  cudaStream_t stream = nullptr;
  size_t ops = 0;
  std::chrono::steady_clock::time_point when{};
};
struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> nodes;
};

namespace aware_emu {
namespace {

cudaError_t last_error = cudaSuccess, sticky = cudaSuccess;
std::string fault_message;
std::map<uintptr_t, size_t> device_memory;  // start -> bytes
std::map<uintptr_t, size_t> pinned_memory;
size_t device_total = 0;
size_t pageable_async = 0;  // cudaMemcpyAsync from pageable host memory: synchronous on a GPU
CUstream_st legacy_stream;
std::set<cudaStream_t> streams{&legacy_stream};
std::map<uint64_t, Capture*> captures;  // in progress, by id
uint64_t next_capture = 1;
size_t live_events = 0;
int current_device = 0;
constexpr size_t kDeviceMemory = size_t(141) << 30;  // an H200's

cudaStream_t resolve(cudaStream_t s) { return s ? s : &legacy_stream; }

// The allocation that holds [p, p + bytes), or none.
bool in_allocation(const std::map<uintptr_t, size_t>& memory, const void* p, size_t bytes) {
  const auto a = uintptr_t(p);
  auto it = memory.upper_bound(a);
  if (it == memory.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second;
}
bool touches(const std::map<uintptr_t, size_t>& memory, const void* p) { return in_allocation(memory, p, 1); }

// A copy's pointers against its kind: a device side must lie inside one allocation.
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* call) {
  if (bytes == 0) return cudaSuccess;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const auto side = [&](const void* p, bool device, const char* which) -> bool {
    if (device && !in_allocation(device_memory, p, bytes)) {
      std::fprintf(stderr, "aware CUDA emulation: %s: %s [%p, +%zu) is not inside one device allocation\n", call,
                   which, p, bytes);
      return false;
    }
    if (!device && kind != cudaMemcpyDefault && touches(device_memory, p)) {
      std::fprintf(stderr, "aware CUDA emulation: %s: %s %p is device memory, the copy's kind says host\n", call, which, p);
      return false;
    }
    return true;
  };
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost) return cudaSuccess;
  return side(dst, dst_device, "destination") && side(src, src_device, "source") ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace

std::recursive_mutex& big_lock() {
  static std::recursive_mutex m;
  return m;
}
cudaError_t record_error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}
cudaError_t sticky_error() { return sticky; }
void kernel_fault(const std::string& message) {
  sticky = last_error = cudaErrorLaunchFailure;
  fault_message = message;
  std::fprintf(stderr, "aware CUDA emulation: fault in %s\n", message.c_str());
}
std::string last_fault() { return fault_message; }
size_t device_allocations() { return device_memory.size(); }
size_t device_bytes() { return device_total; }
size_t pageable_async_copies() { return pageable_async; }
size_t live_handles() { return streams.size() - 1 + live_events; }
bool is_device_pointer(const void* p, size_t bytes) { return in_allocation(device_memory, p, bytes); }
bool stream_is_valid(cudaStream_t s) { return streams.count(resolve(s)) > 0; }

void enqueue(cudaStream_t stream, std::function<void()> work) {
  std::lock_guard lock(big_lock());
  CUstream_st* s = resolve(stream);
  if (s->capture) {
    s->capture->nodes.push_back(std::move(work));
    ++s->ops;
  } else {
    work();
  }
}

bool illegal_in_capture(const char* call, cudaStream_t stream, bool any) {
  Capture* hit = nullptr;
  if (stream) {
    hit = resolve(stream)->capture;
  } else if (any) {  // an unsafe call: forbidden while a capture not in relaxed mode goes on
    for (const auto& [id, c] : captures)
      if (c->mode != cudaStreamCaptureModeRelaxed) hit = c;
  }
  if (!hit) return false;
  std::fprintf(stderr, "aware CUDA emulation: %s during a graph capture: not allowed on a GPU; the capture is invalidated\n",
               call);
  hit->invalidated = cudaErrorStreamCaptureInvalidated;
  record_error(cudaErrorStreamCaptureUnsupported);
  return true;
}

void invalidate_capture(cudaStream_t stream) {
  if (Capture* c = resolve(stream)->capture) c->invalidated = cudaErrorStreamCaptureInvalidated;
}

}  // namespace aware_emu

using namespace aware_emu;
#define AWARE_EMU_ENTER()                         \
  std::lock_guard aware_emu_lock(big_lock());     \
  if (sticky != cudaSuccess) return record_error(sticky)

// ---- device ---------------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : record_error(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int* device) {
  *device = current_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return record_error(cudaErrorInvalidDevice);
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "CUDA emulation on the host (sm_90 limits)");
  p->totalGlobalMem = kDeviceMemory;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = 227 * 1024;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->warpSize = 32;
  p->multiProcessorCount = 132;
  p->major = 9, p->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return record_error(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 132; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; return cudaSuccess;
  }
  return record_error(cudaErrorInvalidValue);
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  AWARE_EMU_ENTER();
  if (illegal_in_capture("cudaDeviceSynchronize", nullptr, true)) return cudaErrorStreamCaptureUnsupported;
  return cudaSuccess;
}
// Clears the sticky error (the tests that plant faults go on afterwards); allocations stay.
cudaError_t cudaDeviceReset() {
  std::lock_guard lock(big_lock());
  sticky = last_error = cudaSuccess;
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  std::lock_guard lock(big_lock());
  const cudaError_t e = last_error;
  last_error = sticky;
  return e;
}
cudaError_t cudaPeekAtLastError() { return last_error; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "unrecognized error code";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnjoined: return "capture sequence contains a fork that was not joined to the primary stream";
    default: return cudaGetErrorName(e);
  }
}

// ---- memory ---------------------------------------------------------------------------------------------
// New device memory holds the poison pattern (0xFF bytes: NaN as floats, -1 as integers), so a read of
// what nothing wrote shows; malloc'ed, so that AddressSanitizer sees its ends.
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  AWARE_EMU_ENTER();
  if (illegal_in_capture("cudaMalloc", nullptr, true)) return cudaErrorStreamCaptureUnsupported;
  *ptr = nullptr;
  if (bytes > kDeviceMemory - device_total) return record_error(cudaErrorMemoryAllocation);
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  if (!p) return record_error(cudaErrorMemoryAllocation);
  std::memset(p, 0xFF, bytes);
  device_memory[uintptr_t(p)] = bytes;
  device_total += bytes;
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
  AWARE_EMU_ENTER();
  if (!ptr) return cudaSuccess;
  if (illegal_in_capture("cudaFree", nullptr, true)) return cudaErrorStreamCaptureUnsupported;
  const auto it = device_memory.find(uintptr_t(ptr));
  if (it == device_memory.end()) {
    std::fprintf(stderr, "aware CUDA emulation: cudaFree(%p): not the start of a device allocation\n", ptr);
    return record_error(cudaErrorInvalidValue);
  }
  device_total -= it->second;
  device_memory.erase(it);
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  AWARE_EMU_ENTER();
  if (illegal_in_capture("cudaMallocHost", nullptr, true)) return cudaErrorStreamCaptureUnsupported;
  *ptr = std::malloc(bytes == 0 ? 1 : bytes);
  if (!*ptr) return record_error(cudaErrorMemoryAllocation);
  pinned_memory[uintptr_t(*ptr)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* ptr) {
  AWARE_EMU_ENTER();
  if (!ptr) return cudaSuccess;
  if (illegal_in_capture("cudaFreeHost", nullptr, true)) return cudaErrorStreamCaptureUnsupported;
  if (!pinned_memory.erase(uintptr_t(ptr))) return record_error(cudaErrorInvalidValue);
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  *total = kDeviceMemory;
  *free = kDeviceMemory - device_total;
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  AWARE_EMU_ENTER();
  if (!stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  if (const cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync"); e != cudaSuccess) {
    invalidate_capture(stream);
    return record_error(e);
  }
  if (kind == cudaMemcpyHostToDevice && bytes && !in_allocation(pinned_memory, src, bytes)) ++pageable_async;
  if (bytes) enqueue(stream, [=] { std::memmove(dst, src, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  AWARE_EMU_ENTER();
  if (illegal_in_capture("cudaMemcpy (synchronous)", nullptr, true)) return cudaErrorStreamCaptureUnsupported;
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  AWARE_EMU_ENTER();
  if (!stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  if (bytes && !in_allocation(device_memory, ptr, bytes)) {
    std::fprintf(stderr, "aware CUDA emulation: cudaMemsetAsync: [%p, +%zu) is not inside one device allocation\n", ptr,
                 bytes);
    invalidate_capture(stream);
    return record_error(cudaErrorInvalidValue);
  }
  if (bytes) enqueue(stream, [=] { std::memset(ptr, value, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  AWARE_EMU_ENTER();
  if (illegal_in_capture("cudaMemset (synchronous)", nullptr, true)) return cudaErrorStreamCaptureUnsupported;
  return cudaMemsetAsync(ptr, value, bytes, nullptr);
}

// ---- streams and events ---------------------------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  AWARE_EMU_ENTER();
  *stream = new CUstream_st{flags};
  streams.insert(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard lock(big_lock());
  if (!stream || !streams.erase(stream)) return record_error(cudaErrorInvalidResourceHandle);
  if (Capture* c = stream->capture) {  // destroyed inside a capture: the capture cannot end well
    c->streams.erase(stream);
    c->invalidated = cudaErrorStreamCaptureInvalidated;
  }
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  AWARE_EMU_ENTER();
  if (!stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  if (illegal_in_capture("cudaStreamSynchronize", resolve(stream), false)) return cudaErrorStreamCaptureUnsupported;
  return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  AWARE_EMU_ENTER();
  if (!stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  if (illegal_in_capture("cudaStreamQuery", resolve(stream), false)) return cudaErrorStreamCaptureUnsupported;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  AWARE_EMU_ENTER();
  *event = new CUevent_st{flags};
  ++live_events;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return record_error(cudaErrorInvalidResourceHandle);
  std::lock_guard lock(big_lock());
  delete event;
  --live_events;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  AWARE_EMU_ENTER();
  if (!event || !stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  CUstream_st* s = resolve(stream);
  event->capture = s->capture ? s->capture->id : 0;
  event->stream = s;
  event->ops = s->ops;
  if (!s->capture) event->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}
// A wait for an event recorded in a capture forks the waiting stream into it, or joins the recording
// stream's work so far back into the waiting one.
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  AWARE_EMU_ENTER();
  if (!event || !stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  CUstream_st* s = resolve(stream);
  const auto it = captures.find(event->capture);
  if (it == captures.end()) return cudaSuccess;  // outside a capture the work has run already
  Capture* c = it->second;
  if (!s->capture) {
    s->capture = c;
    s->ops = s->joined_ops = 0;
    c->streams.insert(s);
  } else if (s->capture == c && event->stream != s && c->streams.count(event->stream)) {
    event->stream->joined_ops = std::max(event->stream->joined_ops, event->ops);
  }
  return cudaSuccess;
}
// A wait for, or query of, an event: outside a capture its work has run; one recorded in a capture in
// progress cannot be waited for.
static cudaError_t event_ready(cudaEvent_t event, const char* call) {
  AWARE_EMU_ENTER();
  if (!event) return record_error(cudaErrorInvalidResourceHandle);
  if (captures.count(event->capture) && illegal_in_capture(call, event->stream, false))
    return cudaErrorStreamCaptureUnsupported;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) { return event_ready(event, "cudaEventSynchronize"); }
cudaError_t cudaEventQuery(cudaEvent_t event) { return event_ready(event, "cudaEventQuery"); }
// Host time between the two records: the emulation's work runs at the enqueue, so this is how long
// the host took, not a GPU's time.
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  AWARE_EMU_ENTER();
  if (!start || !end || (start->flags | end->flags) & cudaEventDisableTiming)
    return record_error(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

// ---- graphs ---------------------------------------------------------------------------------------------
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  AWARE_EMU_ENTER();
  if (!stream) return record_error(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot capture
  if (!stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  if (stream->capture) return record_error(cudaErrorIllegalState);
  Capture* c = new Capture;
  c->id = next_capture++;
  c->mode = mode;
  c->origin = stream;
  c->streams.insert(stream);
  captures[c->id] = c;
  stream->capture = c;
  stream->ops = stream->joined_ops = 0;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  std::lock_guard lock(big_lock());
  *graph = nullptr;
  if (!stream || !stream->capture) return record_error(cudaErrorIllegalState);
  Capture* c = stream->capture;
  if (c->origin != stream) return record_error(cudaErrorIllegalState);
  cudaError_t status = c->invalidated;
  for (cudaStream_t s : c->streams) {
    if (s != stream && s->ops > s->joined_ops && status == cudaSuccess) {
      std::fprintf(stderr, "aware CUDA emulation: cudaStreamEndCapture: a stream forked into the capture has work "
                           "the origin stream never waited for\n");
      status = cudaErrorStreamCaptureUnjoined;
    }
    s->capture = nullptr;
  }
  captures.erase(c->id);
  if (status == cudaSuccess && sticky == cudaSuccess) *graph = new CUgraph_st{std::move(c->nodes)};
  delete c;
  if (sticky != cudaSuccess) return record_error(sticky);
  return record_error(status);
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  AWARE_EMU_ENTER();
  if (!graph) return record_error(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  AWARE_EMU_ENTER();
  if (!exec || !stream_is_valid(stream)) return record_error(cudaErrorInvalidResourceHandle);
  for (const auto& node : exec->nodes) enqueue(stream, node);
  return sticky;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
