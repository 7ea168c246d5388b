#include "tools/score.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <memory>

#include "runtime/checkpoint.h"
#include "runtime/error.h"
#include "runtime/progress.h"
#include "tools/events.h"
#include "tools/npy.h"

namespace aware {
namespace {

int64_t read_progress(const std::filesystem::path& state) {
  std::ifstream in(state);
  int64_t done = 0;
  return (in >> done) ? done : 0;
}

}  // namespace

ScoreResult score_file(Model& model, const std::string& input, const std::vector<int64_t>& event_shape,
                       const ScoreOptions& options, Communicator& comm) {
  const auto events = EventSource::open(input);
  check(events->event_shape() == event_shape, input + ": event shape does not match the model's");
  const int64_t n = events->rows(), classes = model.classes();
  const std::vector<int64_t> out_shape{n, classes};
  const std::string header = npy_header(out_shape);
  const auto out = options.out_dir / (events->name() + ".npy");
  const auto partial = std::filesystem::path(out.string() + ".partial");
  const auto state = std::filesystem::path(partial.string() + ".rank" + std::to_string(comm.rank()));

  // Rank 0 lays out the whole output (header, then zeros) before anyone writes into it.
  std::filesystem::create_directories(options.out_dir);
  if (comm.root() && !(options.resume && std::filesystem::exists(partial))) {
    const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check(fd >= 0, partial.string() + ": cannot create (" + std::strerror(errno) + ")");
    const bool ok = ::pwrite(fd, header.data(), header.size(), 0) == ssize_t(header.size()) &&
                    ::ftruncate(fd, off_t(header.size() + size_t(n * classes) * sizeof(float))) == 0;
    ::close(fd);
    check(ok, partial.string() + ": cannot lay out the output (" + std::strerror(errno) + ")");
    for (int r = 0; r < comm.size(); ++r) std::filesystem::remove(partial.string() + ".rank" + std::to_string(r));
  }
  comm.barrier();

  const int64_t lo = comm.rank() * n / comm.size(), hi = (comm.rank() + 1) * n / comm.size();
  int64_t done = options.resume ? std::min(read_progress(state), hi - lo) : 0;
  const int fd = ::open(partial.c_str(), O_WRONLY);
  check(fd >= 0, partial.string() + ": cannot open (" + std::strerror(errno) + ")");
  ProgressBar bar("scoring " + events->name(), hi - lo, "events", options.progress && comm.root());
  // Two chunk buffers (page-locked on CUDA): a reader thread fills the next chunk from disk while the
  // model scores this one. One read is in flight at a time, so the source needs no locking.
  const size_t chunk_floats = size_t(std::min(options.chunk, std::max<int64_t>(hi - lo, 1)) * events->row_size());
  Backend& backend = model.backend();
  std::unique_ptr<float, std::function<void(float*)>> buffers[2];
  for (auto& b : buffers)
    b = {static_cast<float*>(backend.allocate_host(chunk_floats * sizeof(float))), [&](float* q) { backend.release_host(q); }};
  auto start_read = [&](int64_t at, int slot) {
    const int64_t begin = lo + at, rows = std::min(options.chunk, hi - begin);
    float* into = buffers[slot].get();
    return std::async(std::launch::async, [&events, begin, rows, into] { events->read(begin, rows, into); });
  };
  auto more = [&](int64_t at, int64_t chunks_done) {
    return at < hi - lo && (options.max_chunks < 0 || chunks_done < options.max_chunks);
  };
  int64_t chunks = 0;
  int slot = 0;
  std::future<void> pending = more(done, 0) ? start_read(done, slot) : std::future<void>{};
  while (more(done, chunks)) {
    const int64_t begin = lo + done, rows = std::min(options.chunk, hi - begin);
    pending.get();  // this chunk is in buffers[slot]; a read error surfaces here
    if (more(done + rows, chunks + 1)) pending = start_read(done + rows, 1 - slot);
    const std::vector<float> p = model.predict(buffers[slot].get(), rows);
    slot = 1 - slot;
    const size_t bytes = p.size() * sizeof(float);
    const off_t at = off_t(header.size() + size_t(begin * classes) * sizeof(float));
    const bool ok = ::pwrite(fd, p.data(), bytes, at) == ssize_t(bytes) && ::fdatasync(fd) == 0;
    if (!ok) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw Error(partial.string() + ": write failed (" + why + ")");
    }
    done += rows;
    ++chunks;
    write_file_atomic(state, std::to_string(done) + "\n");  // after the data is on disk
    bar.update(done);
  }
  ::close(fd);
  const bool complete = done == hi - lo;
  if (complete) bar.finish();

  // The output appears under its name only when every rank has finished its slice.
  double unfinished = complete ? 0.0 : 1.0;
  comm.sum(&unfinished, 1);
  if (unfinished == 0.0 && comm.root()) {
    std::filesystem::rename(partial, out);
    for (int r = 0; r < comm.size(); ++r) std::filesystem::remove(partial.string() + ".rank" + std::to_string(r));
  }
  comm.barrier();
  return {n, unfinished == 0.0};
}

}  // namespace aware
