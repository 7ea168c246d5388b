#include "runtime/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kernels/error.h"

namespace aware {
namespace {

constexpr char kMagic[8] = {'A', 'W', 'A', 'R', 'E', 'C', 'K', 'P'};

class Writer {
 public:
  template <class T>
  void pod(const T& v) { bytes.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes += s;
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<uint64_t>(v.size());
    bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  std::string bytes;
};

class Reader {
 public:
  Reader(const std::string& bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}
  template <class T>
  T pod() {
    T v;
    need(sizeof v);
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string str() {
    const uint64_t n = pod<uint64_t>();
    need(n);
    std::string s = bytes_.substr(at_, n);
    at_ += n;
    return s;
  }
  template <class T>
  std::vector<T> vec() {
    const uint64_t n = pod<uint64_t>();
    check(n <= bytes_.size() / sizeof(T), file_ + ": corrupt checkpoint (array length)");
    need(n * sizeof(T));
    std::vector<T> v(n);
    if (n > 0) std::memcpy(v.data(), bytes_.data() + at_, n * sizeof(T));  // (an empty vector's data() may be null)
    at_ += n * sizeof(T);
    return v;
  }
  size_t at() const { return at_; }

 private:
  void need(size_t n) const { check(at_ + n <= bytes_.size(), file_ + ": truncated checkpoint"); }
  const std::string& bytes_;
  std::string file_;
  size_t at_ = 0;
};

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // errno is read right after each failing call: close() and unlink() may change it.
  check(fd >= 0, path.string() + ": cannot write (" + std::strerror(errno) + ")");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(path.string() + ": write failed (" + why + ")");
    }
    done += size_t(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_error = errno;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(synced ? errno : sync_error);
    ::unlink(tmp.c_str());
    throw Error(path.string() + ": cannot complete the write (" + why + ")");
  }
}

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& c) {
  Writer w;
  w.bytes.append(kMagic, sizeof kMagic);
  w.pod<uint32_t>(Checkpoint::kVersion);
  w.str(c.config);
  w.str(c.stage);
  w.pod(c.epochs_done);
  w.pod(c.epochs_total);
  w.pod(c.seed);
  w.vec(c.event_shape);
  w.pod<uint64_t>(c.classes.size());
  for (const auto& name : c.classes) w.str(name);
  w.str(c.normalisation);
  w.vec(c.col_shift);
  w.vec(c.col_scale);
  w.vec(c.params);
  w.vec(c.momentum);
  const uint32_t crc = uint32_t(::crc32_z(0L, reinterpret_cast<const Bytef*>(w.bytes.data()), w.bytes.size()));
  w.pod(crc);
  write_file_atomic(path, w.bytes);
}

// What a valid CRC does not guarantee: contents a model can use. Each failure names the field.
static void check_contents(const Checkpoint& c, const std::string& file) {
  const auto bad = [&](const std::string& what) { throw Error(file + ": unusable checkpoint: " + what); };
  if (c.stage != "prior" && c.stage != "aa") bad("stage '" + c.stage + "' is not prior or aa");
  if (c.epochs_done < 0 || c.epochs_total < 0) bad("negative epoch counts");
  int64_t row = 1;
  for (int64_t d : c.event_shape) {
    if (d <= 0 || d > (int64_t(1) << 24)) bad("event shape has a dimension of " + std::to_string(d));
    row *= d;
  }
  if (c.event_shape.empty() || c.event_shape.size() > 2) bad("event shape must have 1 or 2 dimensions");
  if (c.classes.size() < 2) bad("fewer than two classes");
  if (std::find(kNormalisations.begin(), kNormalisations.end(), c.normalisation) == kNormalisations.end())
    bad("normalisation '" + c.normalisation + "' is not sum-std, sum, none, scale or standardise");
  if (c.col_shift.size() != size_t(row) || c.col_scale.size() != size_t(row))
    bad("normalisation has " + std::to_string(c.col_shift.size()) + " shifts and " + std::to_string(c.col_scale.size()) +
        " scales for events of " + std::to_string(row) + " values");
  for (size_t j = 0; j < c.col_scale.size(); ++j)
    if (!std::isfinite(c.col_shift[j]) || !std::isfinite(c.col_scale[j]) || !(c.col_scale[j] > 0.0f))
      bad("normalisation column " + std::to_string(j) + " has shift " + std::to_string(c.col_shift[j]) + " and scale " +
          std::to_string(c.col_scale[j]) + " (finite, scale > 0 expected)");
  if (c.params.empty()) bad("no parameters");
  for (size_t i = 0; i < c.params.size(); ++i)
    if (!std::isfinite(c.params[i])) bad("parameter " + std::to_string(i) + " is " + std::to_string(c.params[i]));
  if (!c.momentum.empty() && c.momentum.size() != c.params.size()) bad("momentum and parameters differ in size");
  for (size_t i = 0; i < c.momentum.size(); ++i)
    if (!std::isfinite(c.momentum[i])) bad("momentum " + std::to_string(i) + " is " + std::to_string(c.momentum[i]));
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  check(bool(in), file + ": cannot open the checkpoint");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  check(bytes.size() >= sizeof kMagic + 8 && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0,
        file + ": not an aware checkpoint");
  uint32_t stored;
  std::memcpy(&stored, bytes.data() + bytes.size() - 4, 4);
  const uint32_t crc = uint32_t(::crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size() - 4));
  check(crc == stored, file + ": checksum mismatch (the checkpoint is corrupt or truncated)");
  const std::string body = bytes.substr(0, bytes.size() - 4);
  Reader r(body, file);
  for (size_t i = 0; i < sizeof kMagic; ++i) r.pod<char>();
  const uint32_t version = r.pod<uint32_t>();
  check(version == Checkpoint::kVersion, file + ": checkpoint version " + std::to_string(version) +
                                             ", this aware reads version " + std::to_string(Checkpoint::kVersion));
  Checkpoint c;
  c.config = r.str();
  c.stage = r.str();
  c.epochs_done = r.pod<int64_t>();
  c.epochs_total = r.pod<int64_t>();
  c.seed = r.pod<uint64_t>();
  c.event_shape = r.vec<int64_t>();
  const uint64_t n_classes = r.pod<uint64_t>();
  check(n_classes < 1024, file + ": corrupt checkpoint (class count)");
  for (uint64_t i = 0; i < n_classes; ++i) c.classes.push_back(r.str());
  c.normalisation = r.str();
  c.col_shift = r.vec<float>();
  c.col_scale = r.vec<float>();
  c.params = r.vec<float>();
  c.momentum = r.vec<float>();
  check(r.at() == body.size(), file + ": corrupt checkpoint (trailing bytes)");
  check_contents(c, file);
  return c;
}

}  // namespace aware
