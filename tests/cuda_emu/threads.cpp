// The CUDA execution model on the host: a launch runs its blocks one after another, and a block's
// threads as fibers (Boost.Context) on the calling thread. A fiber runs until it reaches a barrier, a
// warp collective or its end, then hands over to the next; a barrier opens when every thread of the
// block has reached it, a shuffle when every lane of its mask has. Blocks one at a time make a block's
// shared memory plain host memory, allocated and poisoned per block.
//
// What it checks, as a GPU would or more strictly (each a planted-bug test in tests/test_cuda_emu.cpp):
// the launch limits of sm_90, a barrier or warp collective reached by only part of the block or mask
// (a hang or undefined behaviour on a GPU: here a fault naming the line), reads of shared memory no
// thread wrote (poisoned with 0xFF bytes: NaN for floats, -1 for integers), and, with ASan, accesses
// outside shared memory. Races show as results that change with the thread order (AWARE_EMU_ORDER),
// and under ThreadSanitizer (scripts/sanitize.sh), where each fiber is a TSan fiber and the
// barriers are its synchronisation.
#include <sys/mman.h>

#include <boost/context/detail/fcontext.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string_view>
#include <vector>

#include "cuda_emu/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define AWARE_EMU_ASAN 1
#endif
// Under ThreadSanitizer this file is built uninstrumented with AWARE_EMU_TSAN (CMake's AWARE_SANITIZE):
// the scheduler's own bookkeeping is no kernel's memory; it only tells TSan about the fibers, and the
// switches carry no ordering, so that the barriers, warp collectives and launches are what orders the
// threads' accesses.
#if defined(AWARE_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace aware_emu {

ThreadCoordinates* current = nullptr;

namespace {

namespace ctx = boost::context::detail;

// sm_90's limits.
constexpr unsigned kMaxThreadsPerBlock = 1024, kMaxBlockZ = 64, kMaxGridYZ = 65535;
constexpr size_t kSharedDefault = 48 * 1024, kSharedOptin = 227 * 1024;
#if defined(AWARE_EMU_ASAN) || defined(AWARE_EMU_TSAN)
constexpr size_t kStackBytes = 512 * 1024;
#else
constexpr size_t kStackBytes = 128 * 1024;
#endif

enum class State { ready, at_barrier, at_warp, done };

struct Fiber {
  ctx::fcontext_t context = nullptr;
  ThreadCoordinates coords{};
  int index = 0;  // linear thread index in the block
  State state = State::ready;
  std::source_location where;  // of the barrier or collective it waits at
  uint64_t offered = 0;        // its value in the warp collective it waits in
  int source = 0;              // the lane whose value it asked for
  uint64_t result = 0;         // of its last warp collective
#if defined(AWARE_EMU_TSAN)
  void* tsan = nullptr;
#endif
};

// A warp collective in progress (mask 0: a free slot): the lanes that have arrived. Each lane's value
// and source lane wait in its Fiber.
struct WarpMeeting {
  unsigned arrived = 0, mask = 0;
  bool ballot = false;
  std::source_location where;
};
// A warp's open collectives, each one call site with one mask: several at once where parts of the warp
// use other masks (legal from sm_70 on), at most one per lane. Lanes that wait in collectives no other
// lane will join are found as a deadlock: no thread can go on. (Fixed slots: nothing is allocated
// while the fibers run, which ThreadSanitizer would see as their accesses.)
struct Warp {
  WarpMeeting open[32];
  unsigned generation = 0;  // collectives completed
  char sync[2];             // TSan's, by the generation's parity
};

// One stack per thread of the largest block, mapped once with a guard page below each.
class Stacks {
 public:
  void* top(int i) {
    if (!base_) {
      base_ = static_cast<char*>(mmap(nullptr, (kStackBytes + kGuard) * kMaxThreadsPerBlock, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
      if (base_ == MAP_FAILED) std::abort();
      for (unsigned t = 0; t < kMaxThreadsPerBlock; ++t) mprotect(base_ + t * (kStackBytes + kGuard), kGuard, PROT_NONE);
    }
    return base_ + size_t(i) * (kStackBytes + kGuard) + kGuard + kStackBytes;
  }

 private:
  static constexpr size_t kGuard = 4096;
  char* base_ = nullptr;
};

// The block being run.
struct Block {
  std::vector<Fiber> fibers;
  int live = 0, at_barrier = 0, exited = 0;
  std::source_location barrier_where;
  unsigned barrier_generation = 0;  // barriers opened so far
  char barrier_sync[2];             // TSan's, by the generation's parity
  std::vector<Warp> warps;
  std::unique_ptr<unsigned char[]> dynamic;
  std::map<const void*, std::unique_ptr<unsigned char[]>> statics;
  size_t static_bytes = 0;
  std::string fault;  // set: the block is abandoned
};

const std::function<void()>* body = nullptr;  // the launched kernel with its arguments
Block* block = nullptr;
Fiber* running = nullptr;
ctx::fcontext_t scheduler = nullptr;
size_t dynamic_bytes = 0;
size_t shared_limit = 0;  // of the running launch: 48 KB, or the kernel's opt-in
Order order_from_environment() {
  const char* v = std::getenv("AWARE_EMU_ORDER");
  return v && std::string(v) == "reverse" ? Order::reverse : Order::forward;
}
Order order = order_from_environment();
std::map<std::string, int> max_dynamic_shared;  // cudaFuncSetAttribute, by kernel name
Stacks stacks;
#if defined(AWARE_EMU_TSAN)
void* scheduler_tsan = nullptr;
// TSan's happens-before edges: a barrier (every arrival before every departure: the block's two sync
// objects alternate, so that an arrival at the next barrier orders nothing before this one's
// departures), a warp collective likewise, and a launch (the host before every thread, every thread before the host after the launch). A block's
// threads also start after the threads of earlier blocks ended (their stacks are reused), so races
// between blocks of one launch are not seen: those within a block are.
char launch_begin, block_end[2];
size_t blocks_run = 0;  // the running block's sync object is block_end[blocks_run % 2]
#endif
#if defined(AWARE_EMU_ASAN)
void* asan_fake_stack = nullptr;
const void* asan_scheduler_bottom = nullptr;
size_t asan_scheduler_size = 0;
#endif

std::string site(const std::source_location& w) {
  return std::string(w.file_name()) + ":" + std::to_string(w.line());
}

// Switches from the scheduler into fiber f until it yields or ends.
void resume(Fiber& f) {
  running = &f;
  current = &f.coords;
#if defined(AWARE_EMU_TSAN)
  __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(AWARE_EMU_ASAN)
  __sanitizer_start_switch_fiber(&asan_fake_stack, static_cast<char*>(stacks.top(f.index)) - kStackBytes, kStackBytes);
#endif
  const ctx::transfer_t back = ctx::jump_fcontext(f.context, &f);
#if defined(AWARE_EMU_ASAN)
  __sanitizer_finish_switch_fiber(asan_fake_stack, nullptr, nullptr);
#endif
  f.context = back.fctx;
  running = nullptr;
}

// From the running fiber back to the scheduler; returns when the scheduler resumes it.
void yield_to_scheduler([[maybe_unused]] bool ending = false) {
#if defined(AWARE_EMU_TSAN)
  // Everything so far happens before the host's work after the block and the next block's threads
  // (a thread may never run again: its block ended in a fault); not before its own block's threads.
  __tsan_release(&block_end[blocks_run % 2]);
  __tsan_switch_to_fiber(scheduler_tsan, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(AWARE_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(ending ? nullptr : &fake, asan_scheduler_bottom, asan_scheduler_size);
#endif
  const ctx::transfer_t back = ctx::jump_fcontext(scheduler, nullptr);
  scheduler = back.fctx;
#if defined(AWARE_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, &asan_scheduler_bottom, &asan_scheduler_size);
#endif
}

// A fault ends the block: the message names the kernel's line; the launch reports it.
[[noreturn]] void fault(const std::string& message) {
  if (block->fault.empty()) block->fault = message;
  running->state = State::done;
  for (;;) yield_to_scheduler(true);
}

void fiber_main(ctx::transfer_t from) {
  scheduler = from.fctx;
#if defined(AWARE_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &asan_scheduler_bottom, &asan_scheduler_size);
#endif
#if defined(AWARE_EMU_TSAN)
  __tsan_acquire(&launch_begin);
  __tsan_acquire(&block_end[(blocks_run + 1) % 2]);  // the block before
#endif
  (*body)();
  Fiber& f = *running;
  // A thread that ends while others wait at a barrier or in a collective with it: on a GPU a hang or
  // undefined behaviour.
  if (block->at_barrier > 0)
    fault("thread " + std::to_string(f.index) + " ended while " + std::to_string(block->at_barrier) +
          " threads wait at __syncthreads() (" + site(block->barrier_where) +
          "): a barrier reached by only part of the block");
  for (const WarpMeeting& w : block->warps[f.index / 32].open)
    if (w.arrived && (w.mask >> (f.index % 32) & 1u))
      fault("lane " + std::to_string(f.index % 32) + " of warp " + std::to_string(f.index / 32) +
            " ended while lanes of its mask wait in a warp collective (" + site(w.where) + ")");
  f.state = State::done;
  --block->live;
  ++block->exited;
  for (;;) yield_to_scheduler(true);
}

std::string describe_deadlock() {
  std::ostringstream out;
  out << "no thread can go on:";
  int shown = 0;
  for (const Fiber& f : block->fibers) {
    if (f.state == State::done || shown == 4) continue;
    ++shown;
    out << " thread " << f.index << " waits at " << (f.state == State::at_barrier ? "__syncthreads()" : "a warp collective")
        << " (" << site(f.where) << ");";
  }
  out << " a barrier or warp collective reached by only part of the block or warp";
  return out.str();
}

// Runs the block at block->fibers' coordinates to the end, or to its first fault.
void run_block() {
  const int n = int(block->fibers.size());
#if defined(AWARE_EMU_TSAN)
  // One TSan fiber per thread slot, made once: thread j of a block is TSan's same thread as thread j of
  // the block before (ordered after it, as the stacks it reuses already require).
  static std::vector<void*> tsan_fibers;
  while (tsan_fibers.size() < block->fibers.size()) tsan_fibers.push_back(__tsan_create_fiber(0));
#endif
  for (Fiber& f : block->fibers) {
#if defined(AWARE_EMU_ASAN)  // the frames a fiber of the previous block left on this stack never returned
    __asan_unpoison_memory_region(static_cast<char*>(stacks.top(f.index)) - kStackBytes, kStackBytes);
#endif
    f.context = ctx::make_fcontext(stacks.top(f.index), kStackBytes, fiber_main);
#if defined(AWARE_EMU_TSAN)
    f.tsan = tsan_fibers[size_t(f.index)];
#endif
  }
  block->live = n;
  while (block->live > 0 && block->fault.empty()) {
    bool progressed = false;
    for (int k = 0; k < n && block->fault.empty(); ++k) {
      Fiber& f = block->fibers[order == Order::forward ? k : n - 1 - k];
      if (f.state != State::ready) continue;
      resume(f);
      progressed = true;
    }
    if (!progressed && block->live > 0 && block->fault.empty()) block->fault = describe_deadlock();
  }
}

void check_mask(unsigned mask, const std::source_location& where) {
  const int lane = running->index % 32, warp = running->index / 32;
  const int lanes = std::min(32, int(block->fibers.size()) - warp * 32);
  const unsigned existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
  if (!(mask >> lane & 1u))
    fault("lane " + std::to_string(lane) + " calls a warp collective (" + site(where) + ") with a mask that leaves it out");
  if (mask & ~existing)
    fault("a warp collective (" + site(where) + ") names lanes that do not exist (warp " + std::to_string(warp) + " has " +
          std::to_string(lanes) + " threads)");
}

// The lanes of `mask` meet; the last to arrive computes every lane's result and frees the others.
uint64_t warp_meet(unsigned mask, uint64_t value, int source, bool ballot, const std::source_location& where) {
  check_mask(mask, where);
  const int lane = running->index % 32, warp_index = running->index / 32;
  Warp& warp = block->warps[size_t(warp_index)];
  WarpMeeting* w = nullptr;
  for (WarpMeeting& m : warp.open)
    if (m.mask == mask && m.ballot == ballot && m.where.line() == where.line() &&
        std::string_view(m.where.file_name()) == where.file_name())
      w = &m;
  for (WarpMeeting& m : warp.open)
    if (!w && m.mask == 0) w = &m, m.mask = mask, m.ballot = ballot, m.where = where;
  running->offered = value;
  running->source = source;
  w->arrived |= 1u << lane;
  [[maybe_unused]] const unsigned generation = warp.generation;
#if defined(AWARE_EMU_TSAN)
  __tsan_release(&warp.sync[generation % 2]);
#endif
  if (w->arrived == w->mask) {
    Fiber* lanes = &block->fibers[size_t(warp_index) * 32];
    unsigned votes = 0;
    for (int l = 0; l < 32; ++l)
      if ((w->mask >> l & 1u) && lanes[l].offered) votes |= 1u << l;
    for (int l = 0; l < 32; ++l) {
      if (!(w->mask >> l & 1u)) continue;
      const int s = lanes[l].source;
      // A source lane outside the mask gives an undefined value on a GPU: here the poison pattern.
      lanes[l].result = w->ballot ? votes : (s >= 0 && s < 32 && (w->mask >> s & 1u)) ? lanes[s].offered : ~uint64_t(0);
      if (&lanes[l] != running) lanes[l].state = State::ready;
    }
    *w = WarpMeeting{};
    ++warp.generation;
  } else {
    running->state = State::at_warp;
    running->where = where;
    yield_to_scheduler();
  }
#if defined(AWARE_EMU_TSAN)
  __tsan_acquire(&block->warps[size_t(warp_index)].sync[generation % 2]);
#endif
  return running->result;
}

}  // namespace

void sync_threads(std::source_location where) {
  if (!block) {
    std::fprintf(stderr, "aware CUDA emulation: __syncthreads() outside a kernel (%s)\n", site(where).c_str());
    std::abort();
  }
  if (block->exited > 0)
    fault("__syncthreads() (" + site(where) + ") reached after " + std::to_string(block->exited) +
          " threads of the block ended: a barrier reached by only part of the block");
  if (block->at_barrier == 0) block->barrier_where = where;
  ++block->at_barrier;
  [[maybe_unused]] const unsigned generation = block->barrier_generation;
#if defined(AWARE_EMU_TSAN)
  __tsan_release(&block->barrier_sync[generation % 2]);
#endif
  if (block->at_barrier == block->live) {  // the last one opens it
    for (Fiber& f : block->fibers)
      if (f.state == State::at_barrier) f.state = State::ready;
    block->at_barrier = 0;
    ++block->barrier_generation;
  } else {
    running->state = State::at_barrier;
    running->where = where;
    yield_to_scheduler();
  }
#if defined(AWARE_EMU_TSAN)
  __tsan_acquire(&block->barrier_sync[generation % 2]);
#endif
}

void sync_warp(unsigned mask, std::source_location where) { warp_meet(mask, 0, 0, false, where); }

uint64_t warp_exchange(unsigned mask, uint64_t value, int source, std::source_location where) {
  return warp_meet(mask, value, source, false, where);
}

unsigned warp_ballot(unsigned mask, bool predicate, std::source_location where) {
  return unsigned(warp_meet(mask, predicate ? 1 : 0, 0, true, where));
}

// Shared memory exists before the block's threads start: its allocation (and poison) happens before
// every thread's use, for TSan too.
static void* shared_for_threads(std::unique_ptr<unsigned char[]>& slot, size_t bytes) {
  if (!slot) {
    slot.reset(new unsigned char[bytes]);
    std::memset(slot.get(), 0xFF, bytes);
#if defined(AWARE_EMU_TSAN)
    __tsan_release(slot.get());
#endif
  }
#if defined(AWARE_EMU_TSAN)
  __tsan_acquire(slot.get());
#endif
  return slot.get();
}

// Allocated at first use, to the launch's exact size (ASan sees its end).
void* dynamic_shared() { return shared_for_threads(block->dynamic, dynamic_bytes); }

// Static shared memory is at most 48 KB (nvcc refuses more; the opt-in is for dynamic memory), and
// counts against the launch's limit with the dynamic. Checked at its first use.
void* static_shared(const void* key, size_t bytes) {
  auto& slot = block->statics[key];
  if (!slot && ((block->static_bytes += bytes) > kSharedDefault || block->static_bytes + dynamic_bytes > shared_limit))
    fault(std::to_string(block->static_bytes) + " bytes of static and " + std::to_string(dynamic_bytes) +
          " of dynamic shared memory: over sm_90's 48 KB of static, or the launch's " + std::to_string(shared_limit));
  return shared_for_threads(slot, bytes);
}

void set_order(Order o) { order = o; }
void reset_order() { order = order_from_environment(); }

cudaError_t set_function_attribute(const char* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || size_t(value) > kSharedOptin)
    return record_error(cudaErrorInvalidValue);
  max_dynamic_shared[kernel] = value;
  return cudaSuccess;
}

void launch(const LaunchSite& s, std::function<void()> kernel) {
  std::lock_guard lock(big_lock());
  if (const cudaError_t sticky = sticky_error(); sticky != cudaSuccess) return void(record_error(sticky));
  const unsigned threads = s.block.x * s.block.y * s.block.z;
  const auto bad = [&](cudaError_t e, const std::string& why) {
    std::fprintf(stderr, "aware CUDA emulation: launch of %s (%s): %s\n", s.kernel, site(s.where).c_str(), why.c_str());
    if (stream_is_valid(s.stream)) invalidate_capture(s.stream);
    record_error(e);
  };
  if (threads == 0 || threads > kMaxThreadsPerBlock || s.block.z > kMaxBlockZ)
    return bad(cudaErrorInvalidConfiguration, "block of " + std::to_string(s.block.x) + " x " + std::to_string(s.block.y) +
                                                  " x " + std::to_string(s.block.z) + " threads (sm_90: 1 to 1024, z <= 64)");
  if (s.grid.x == 0 || s.grid.y == 0 || s.grid.z == 0 || s.grid.x > 0x7fffffffu || s.grid.y > kMaxGridYZ ||
      s.grid.z > kMaxGridYZ)
    return bad(cudaErrorInvalidConfiguration, "grid of " + std::to_string(s.grid.x) + " x " + std::to_string(s.grid.y) +
                                                  " x " + std::to_string(s.grid.z) +
                                                  " blocks (sm_90: x < 2^31, y and z <= 65535)");
  const auto opt_in = max_dynamic_shared.find(s.kernel);
  const size_t limit = opt_in == max_dynamic_shared.end() ? kSharedDefault : size_t(opt_in->second);
  if (s.shared_bytes > limit)
    return bad(cudaErrorInvalidValue, std::to_string(s.shared_bytes) + " bytes of dynamic shared memory (limit " +
                                          std::to_string(limit) +
                                          (opt_in == max_dynamic_shared.end()
                                               ? " without cudaFuncSetAttribute's opt-in)"
                                               : " set by cudaFuncSetAttribute)"));
  if (!stream_is_valid(s.stream)) return bad(cudaErrorInvalidResourceHandle, "the stream is not a live stream");
  const LaunchSite copy = s;
  enqueue(s.stream, [copy, kernel = std::move(kernel), limit] {
    std::lock_guard inner(big_lock());
    if (sticky_error() != cudaSuccess) return;
    const std::function<void()>* saved_body = body;
    Block* saved_block = block;
    ThreadCoordinates* saved_current = current;
    body = &kernel;
    dynamic_bytes = copy.shared_bytes;
    shared_limit = limit;
#if defined(AWARE_EMU_TSAN)
    scheduler_tsan = __tsan_get_current_fiber();
#endif
    const dim3 g = copy.grid, b = copy.block;
    const size_t blocks = size_t(g.x) * g.y * g.z, threads_per_block = size_t(b.x) * b.y * b.z;
    std::string message;
    for (size_t k = 0; k < blocks && message.empty(); ++k) {
      const size_t id = order == Order::forward ? k : blocks - 1 - k;
      Block current_block;
      block = &current_block;
      current_block.fibers.resize(threads_per_block);
      current_block.warps.resize((threads_per_block + 31) / 32);
      const uint3 block_index{unsigned(id % g.x), unsigned(id / g.x % g.y), unsigned(id / (size_t(g.x) * g.y))};
      for (size_t t = 0; t < threads_per_block; ++t) {
        Fiber& f = current_block.fibers[t];
        f.index = int(t);
        f.coords = {{unsigned(t % b.x), unsigned(t / b.x % b.y), unsigned(t / (size_t(b.x) * b.y))}, block_index, b, g};
      }
#if defined(AWARE_EMU_TSAN)
      __tsan_release(&launch_begin);  // the host's work so far, this block's set-up included
#endif
      run_block();
#if defined(AWARE_EMU_TSAN)
      __tsan_acquire(&block_end[blocks_run++ % 2]);  // the block's memory is freed after its threads
#endif
      if (!current_block.fault.empty())
        message = "block (" + std::to_string(block_index.x) + ", " + std::to_string(block_index.y) + ", " +
                  std::to_string(block_index.z) + "): " + current_block.fault;
    }
    body = saved_body;
    block = saved_block;
    current = saved_current;
    if (!message.empty()) kernel_fault(std::string(copy.kernel) + " (launched at " + site(copy.where) + "), " + message);
  });
}

}  // namespace aware_emu
