#include "tools/score.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <functional>
#include <future>
#include <memory>

#include "runtime/checkpoint.h"
#include "kernels/error.h"
#include "runtime/progress.h"
#include "tools/events.h"
#include "runtime/npy.h"

namespace aware {
namespace {

// A rank's progress file holds its slice and how much of it is done: "lo hi done". A resume with
// another number of ranks (other slices) starts its slice again rather than trust another's count.
int64_t read_progress(const std::filesystem::path& state, int64_t lo, int64_t hi) {
  std::ifstream in(state);
  int64_t file_lo = -1, file_hi = -1, done = 0;
  if (!(in >> file_lo >> file_hi >> done) || file_lo != lo || file_hi != hi) return 0;
  return std::clamp<int64_t>(done, 0, hi - lo);
}

// CRC-32 of a file's first and last MiB (and its size): a cheap fingerprint that sees a file rewritten
// or replaced, without reading terabytes.
std::string fingerprint(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  check(bool(in), file.string() + ": cannot open");
  const uint64_t size = std::filesystem::file_size(file), part = std::min<uint64_t>(size, 1 << 20);
  std::string bytes(size_t(part), '\0');
  in.read(bytes.data(), std::streamsize(part));
  uLong crc = ::crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size());
  in.seekg(std::streamoff(size - part));
  in.read(bytes.data(), std::streamsize(part));
  crc = ::crc32_z(crc, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size());
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08lx", crc);
  return std::to_string(size) + " bytes, crc " + hex;
}

// The lines of `want` that `have` lacks, for the resume's error.
std::string differences(const std::string& have, const std::string& want) {
  std::istringstream w(want);
  std::string line, out;
  while (std::getline(w, line))
    if (("\n" + have + "\n").find("\n" + line + "\n") == std::string::npos) {
      const std::string key = line.substr(0, line.find(' '));
      std::istringstream h(have);
      std::string old = "(none)", l;
      while (std::getline(h, l))
        if (l.substr(0, l.find(' ')) == key) old = l.substr(l.find(' ') + 1);
      out += "\n  " + key + ": " + old + " vs " + line.substr(line.find(' ') + 1);
    }
  return out;
}

// Closes the output file however the scoring ends.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

ScoringModel load_scoring_model(const std::filesystem::path& path, int batch, const std::string& device,
                                const BackendOptions& options) {
  ScoringModel m;
  m.checkpoint = load_checkpoint(path);
  const Checkpoint& c = m.checkpoint;
  m.config = parse_config(c.config, path.string() + " (stored config)");
  m.backend = make_backend(device.empty() ? m.config.device : device,
                           {options.conv.empty() ? m.config.conv : options.conv,
                            options.precision.empty() ? m.config.precision : options.precision});
  const Normaliser norm{c.normalisation, c.col_shift, c.col_scale};
  if (batch <= 0) batch = m.backend->score_batch();
  try {
    m.model = std::make_unique<Model>(*m.backend, m.config.network, c.event_shape, int(c.classes.size()), batch, norm,
                                      /*training=*/false);
    m.model->set_params(c.params);
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
  return m;
}

ScoreResult score_file(Model& model, const std::string& input, const std::vector<int64_t>& event_shape,
                       const ScoreOptions& options, Communicator& comm) {
  const auto events = EventSource::open(input);
  check(events->event_shape() == event_shape, input + ": events of shape " + shape_string(events->event_shape()) +
                                                  ", the model takes events of shape " + shape_string(event_shape));
  const int64_t n = events->rows(), classes = model.classes();
  const std::vector<int64_t> out_shape{n, classes};
  const std::string header = npy_header(out_shape);
  const auto out = options.out_dir / (events->name() + ".npy");
  const auto partial = std::filesystem::path(out.string() + ".partial");
  const auto state = std::filesystem::path(partial.string() + ".rank" + std::to_string(comm.rank()));

  // The job: the input's identity, the chunk and what the caller says (the model, batch, precision).
  // A resume continues only the job that wrote the partial output: anything else would mix two jobs'
  // scores in one file.
  const auto job_file = std::filesystem::path(partial.string() + ".job");
  const std::string source_file = std::filesystem::exists(input) ? input : input.substr(0, input.rfind(':'));  // FILE.h5:DATASET
  const std::string job = options.job + "input " + std::filesystem::absolute(input).string() + "\nevents " +
                          std::to_string(n) + " x " + shape_string(event_shape) + "\nfile " +
                          fingerprint(source_file) + "\nchunk " + std::to_string(options.chunk) + "\n";
  if (options.resume && std::filesystem::exists(partial)) {
    std::ifstream in(job_file);
    check(bool(in), partial.string() + ": no record of the job that wrote it (" + job_file.string() +
                        "); cannot resume, score again without --resume");
    const std::string had((std::istreambuf_iterator<char>(in)), {});
    if (had != job)
      throw Error(partial.string() + ": was written by another job than this one (then vs now):" +
                  differences(had, job) + "\nresume with the same inputs and settings, or score again without --resume");
  }

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
    write_file_atomic(job_file, job);
  }
  comm.barrier();

  const int64_t lo = comm.rank() * n / comm.size(), hi = (comm.rank() + 1) * n / comm.size();
  int64_t done = options.resume ? read_progress(state, lo, hi) : 0;
  const FileDescriptor output{::open(partial.c_str(), O_WRONLY)};
  const int fd = output.fd;
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
    std::vector<float> p;
    try {
      p = model.predict(buffers[slot].get(), rows);
    } catch (const Error& e) {
      throw Error(input + " (events from " + std::to_string(begin) + "): " + e.what());
    }
    slot = 1 - slot;
    const size_t bytes = p.size() * sizeof(float);
    const off_t at = off_t(header.size() + size_t(begin * classes) * sizeof(float));
    const bool ok = ::pwrite(fd, p.data(), bytes, at) == ssize_t(bytes) && ::fdatasync(fd) == 0;
    if (!ok) throw Error(partial.string() + ": write failed (" + std::strerror(errno) + ")");
    done += rows;
    ++chunks;
    // After the data is on disk.
    write_file_atomic(state, std::to_string(lo) + " " + std::to_string(hi) + " " + std::to_string(done) + "\n");
    bar.update(done);
  }
  const bool complete = done == hi - lo;
  if (complete) bar.finish();

  // The output appears under its name only when every rank has finished its slice.
  double unfinished = complete ? 0.0 : 1.0;
  comm.sum(&unfinished, 1);
  if (unfinished == 0.0 && comm.root()) {
    std::filesystem::rename(partial, out);
    std::filesystem::remove(job_file);
    for (int r = 0; r < comm.size(); ++r) std::filesystem::remove(partial.string() + ".rank" + std::to_string(r));
  }
  comm.barrier();
  return {n, unfinished == 0.0};
}

}  // namespace aware
