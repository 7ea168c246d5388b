#include "tools/events.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <unordered_set>

#include "kernels/error.h"
#include "runtime/npy.h"

#if defined(AWARE_HDF5)
#include <hdf5.h>
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define AWARE_HAS_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(AWARE_HAS_SANITIZER)
#include <sanitizer/common_interface_defs.h>
#endif

namespace aware {
namespace {

std::string strip_extensions(const std::filesystem::path& path, std::initializer_list<const char*> extensions) {
  std::string name = path.filename().string();
  for (const char* ext : extensions)
    if (name.size() > std::strlen(ext) && name.ends_with(ext)) name.resize(name.size() - std::strlen(ext));
  return name;
}

bool is_hdf5(const std::string& path) {
  const std::string file = path.substr(0, path.find(':'));
  for (const char* ext : {".h5", ".hdf5", ".he5"})
    if (file.ends_with(ext)) return true;
  return false;
}

// A memory-mapped input that another process truncates raises SIGBUS at the next access to what is
// gone. The reads of a mapping run under a guard that turns that signal into an error naming the file
// (a thread's guard: the reads run on scoring's reader thread).
thread_local sigjmp_buf* bus_guard = nullptr;

extern "C" void on_bus_error(int signal) {
  if (bus_guard) siglongjmp(*bus_guard, 1);
  std::signal(signal, SIG_DFL);  // not ours: the default action
  std::raise(signal);
}

void install_bus_handler() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_bus_error;
    sigemptyset(&action.sa_mask);
    return ::sigaction(SIGBUS, &action, nullptr) == 0;
  }();
  (void)installed;
}

// .npy: memory-mapped; the pages of rows already read are released, so memory stays bounded by
// what a caller keeps.
class NpySource final : public EventSource {
 public:
  explicit NpySource(const std::string& path) : array_(NpyArray::load(path, NpyArray::Finite::by_caller)) {
    check(array_.shape().size() == 2 || array_.shape().size() == 3,
          path + ": expected events (N, H, W) or (N, F), got a " + std::to_string(array_.shape().size()) + "-D array");
  }
  int64_t rows() const override { return array_.rows(); }
  std::vector<int64_t> event_shape() const override { return {array_.shape().begin() + 1, array_.shape().end()}; }
  std::string name() const override { return name_of(array_.path().string()); }
  void read(int64_t first, int64_t count, float* out) override {
    const float* begin = array_.data() + first * row_size();
    install_bus_handler();
    sigjmp_buf guard;
    if (sigsetjmp(guard, 1) != 0) {
      bus_guard = nullptr;
      throw Error(array_.path().string() + ": the file changed while it was read (truncated by another process?) at events " +
                  std::to_string(first) + ".." + std::to_string(first + count - 1));
    }
    bus_guard = &guard;
    try {  // no object with a destructor lives in here: the guard may jump out of it
      array_.check_finite_rows(first, count);
      std::memcpy(out, begin, sizeof(float) * size_t(count * row_size()));
    } catch (...) {
      bus_guard = nullptr;
      throw;
    }
    bus_guard = nullptr;
    if (array_.mapped()) release(begin, begin + count * row_size());
  }

 private:
  static void release(const float* begin, const float* end) {
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (uintptr_t(begin) + page - 1) / page * page, hi = uintptr_t(end) / page * page;
    if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }
  NpyArray array_;
};

#if defined(AWARE_HDF5)
// Closes an HDF5 handle on scope exit, also when a constructor throws: a handle left open keeps the
// file open inside libhdf5, and a later open of the same path gets that stale file.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  Handle(hid_t id, herr_t (*close)(hid_t)) : id(id), close(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id >= 0) close(id);
  }
};

// One dataset of an HDF5 file, read through libhdf5 in this process (the child of Hdf5Source below).
class Hdf5Dataset {
 public:
  explicit Hdf5Dataset(const std::string& spec) {
    const auto colon = spec.find(':');
    file_ = spec.substr(0, colon);
    std::string dataset = colon == std::string::npos ? "" : spec.substr(colon + 1);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // our messages, not HDF5's error stack on stderr
    check(std::filesystem::exists(file_), file_ + ": no such file");
    file_id_.id = H5Fopen(file_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    check(file_id_.id >= 0, file_ + ": not a readable HDF5 file");
    if (dataset.empty()) dataset = only_dataset();
    where_ = file_ + ":" + dataset;
    check(H5Lexists(file_id_.id, dataset.c_str(), H5P_DEFAULT) > 0, where_ + ": no such dataset");
    dataset_id_.id = H5Dopen2(file_id_.id, dataset.c_str(), H5P_DEFAULT);
    check(dataset_id_.id >= 0, where_ + ": not a dataset");
    const Handle type{H5Dget_type(dataset_id_.id), H5Tclose};
    check(H5Tget_class(type.id) == H5T_FLOAT, where_ + ": values must be floating point (read as float32)");
    check_float_type(type.id);
    space_id_.id = H5Dget_space(dataset_id_.id);
    const int rank = H5Sget_simple_extent_ndims(space_id_.id);
    check(rank == 2 || rank == 3, where_ + ": expected events (N, H, W) or (N, F), got rank " + std::to_string(rank));
    std::vector<hsize_t> dims(static_cast<size_t>(rank)), max_dims(static_cast<size_t>(rank));
    check(H5Sget_simple_extent_dims(space_id_.id, dims.data(), max_dims.data()) == rank, where_ + ": unreadable extent");
    // An event must fit a chunk's buffer and the whole extent an int64 count of values.
    hsize_t row = 1;
    for (int i = 1; i < rank; ++i) {
      check(dims[size_t(i)] > 0 && dims[size_t(i)] <= (hsize_t(1) << 24) && row <= (hsize_t(1) << 31) / dims[size_t(i)],
            where_ + ": events of shape " + extent_string(dims, 1) + " (each dimension 1 to 2^24, at most 2^31 values)");
      row *= dims[size_t(i)];
    }
    check(dims[0] <= (hsize_t(1) << 62) / row, where_ + ": " + extent_string(dims, 0) + " is too large");
    check_storage(dims, max_dims, dims[0] * row, H5Tget_size(type.id));
    shape_.assign(dims.begin(), dims.end());
  }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::string& where() const { return where_; }
  // Rows [first, first + count) as float32 (libhdf5 converts the file's floating-point type).
  void read(int64_t first, int64_t count, float* out) {
    if (!chunk_.empty()) check_chunks(hsize_t(first), hsize_t(count));
    std::vector<hsize_t> start(shape_.size(), 0), extent(shape_.begin(), shape_.end());
    start[0] = hsize_t(first);
    extent[0] = hsize_t(count);
    check(H5Sselect_hyperslab(space_id_.id, H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr) >= 0,
          where_ + ": cannot select rows " + std::to_string(first) + "+" + std::to_string(count));
    const Handle memory{H5Screate_simple(int(extent.size()), extent.data(), nullptr), H5Sclose};
    check(H5Dread(dataset_id_.id, H5T_NATIVE_FLOAT, memory.id, space_id_.id, H5P_DEFAULT, out) >= 0,
          where_ + ": read failed at rows " + std::to_string(first) + "+" + std::to_string(count) +
              " (truncated or corrupt file?)");
  }

 private:
  static std::string extent_string(const std::vector<hsize_t>& dims, size_t from) {
    std::string s = "(";
    for (size_t i = from; i < dims.size(); ++i) s += (i > from ? ", " : "") + std::to_string(dims[i]);
    return s + (dims.size() - from == 1 ? ",)" : ")");
  }

  // libhdf5 1.10 trusts a dataset's layout message: a compact dataset that stores fewer bytes than its
  // extent needs, contiguous data said to lie beyond the end of the file, or chunks sized past 32 bits are
  // read out of bounds -- a crash, not an error (found by fuzz/fuzz_hdf5). Each is checked before any read.
  void check_storage(const std::vector<hsize_t>& dims, const std::vector<hsize_t>& max, hsize_t values, size_t value_bytes) {
    const Handle plist{H5Dget_create_plist(dataset_id_.id), H5Pclose};
    const H5D_layout_t layout = H5Pget_layout(plist.id);
    check(layout != H5D_LAYOUT_ERROR && value_bytes > 0, where_ + ": unreadable layout");
    const hsize_t stored = H5Dget_storage_size(dataset_id_.id);
    const bool fits = values <= std::numeric_limits<hsize_t>::max() / value_bytes;
    const hsize_t needed = fits ? values * value_bytes : std::numeric_limits<hsize_t>::max();
    const std::string corrupt = where_ + ": corrupt file: ";
    if (layout == H5D_COMPACT) {
      check(stored >= needed, corrupt + "its " + std::to_string(values) + " values need " + std::to_string(needed) +
                                  " bytes, the dataset stores " + std::to_string(stored));
    } else if (layout == H5D_CHUNKED) {
      // A chunk's dimensions (each within a fixed dimension's size, the chunk under 4 GiB, as
      // H5Dcreate requires): libhdf5 1.10 sizes its chunk buffer from them in 32 bits, unchecked.
      const int rank = int(dims.size());
      std::vector<hsize_t> chunk(dims.size());
      check(H5Pget_chunk(plist.id, rank, chunk.data()) == rank, corrupt + "unreadable chunk layout");
      hsize_t bytes = value_bytes;
      for (int i = 0; i < rank; ++i) {
        const hsize_t c = chunk[size_t(i)];
        check(c > 0 && (max[size_t(i)] == H5S_UNLIMITED || c <= max[size_t(i)]) && c < (hsize_t(1) << 32) && bytes < (hsize_t(1) << 32),
              corrupt + "chunks of " + extent_string(chunk, 0) + " for data of " + extent_string(dims, 0));
        bytes *= c;
      }
      check(bytes < (hsize_t(1) << 32), corrupt + "chunks of " + extent_string(chunk, 0) + " exceed 4 GiB");
      chunk_ = chunk;
      chunk_bytes_ = bytes;
      for (int i = 0, n_filters = H5Pget_nfilters(plist.id); i < n_filters; ++i) {
        unsigned flags = 0;
        size_t n_values = 0;
        filters_.push_back(H5Pget_filter2(plist.id, unsigned(i), &flags, &n_values, nullptr, 0, nullptr, nullptr));
      }
    } else if (layout == H5D_CONTIGUOUS) {
      const haddr_t offset = H5Dget_offset(dataset_id_.id);
      hsize_t file_size = 0;
      check(H5Fget_filesize(file_id_.id, &file_size) >= 0, where_ + ": unreadable file size");
      if (offset != HADDR_UNDEF)  // unallocated: every value is the fill value
        check(stored >= needed && offset <= file_size && stored <= file_size - offset,
              corrupt + "its data (" + std::to_string(needed) + " bytes needed, " + std::to_string(stored) + " stored at " +
                  std::to_string(offset) + ") does not lie within the file's " + std::to_string(file_size) + " bytes");
    }
  }

  // An IEEE-like float of 2, 4 or 8 bytes whose fields lie within it: libhdf5 sizes its buffers by the
  // type's size and converts by its fields, as the file states them.
  void check_float_type(hid_t type) const {
    const size_t size = H5Tget_size(type), precision = H5Tget_precision(type);
    const int offset = H5Tget_offset(type);
    size_t sign = 0, exponent_at = 0, exponent = 0, mantissa_at = 0, mantissa = 0;
    const bool fields = H5Tget_fields(type, &sign, &exponent_at, &exponent, &mantissa_at, &mantissa) >= 0;
    check((size == 2 || size == 4 || size == 8) && offset >= 0 && precision > 0 && size_t(offset) + precision <= 8 * size &&
              fields && sign < precision && exponent > 0 && exponent_at + exponent <= precision && mantissa > 0 &&
              mantissa_at + mantissa <= precision,
          where_ + ": values are a floating-point type of " + std::to_string(size) + " bytes and " +
              std::to_string(precision) + " bits that aware does not read (IEEE 2-, 4- or 8-byte floats; corrupt file?)");
  }

  // libhdf5 1.10 takes a chunk's filtered bytes as the chunk, whatever their length: a chunk that
  // inflates to fewer bytes than the layout promises is then read past its end (found by fuzz/fuzz_hdf5).
  // Before the first read of each chunk, its stored bytes are inflated here and their length checked,
  // when its filters are ones this knows (deflate, shuffle, Fletcher-32: what h5py and the HDF5 tools
  // write); others are left to libhdf5 (and the child process that contains it).
  void check_chunks(hsize_t first, hsize_t count) {
    for (H5Z_filter_t f : filters_)
      if (f != H5Z_FILTER_DEFLATE && f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32) return;
    const size_t rank = shape_.size();
    std::vector<hsize_t> grid(rank);  // chunks along each dimension
    for (size_t i = 0; i < rank; ++i) grid[i] = (hsize_t(shape_[i]) + chunk_[i] - 1) / chunk_[i];
    hsize_t per_row_chunk = 1;
    for (size_t i = 1; i < rank; ++i) per_row_chunk *= grid[i];
    std::vector<hsize_t> offset(rank);
    std::vector<unsigned char> stored, inflated;
    for (hsize_t r = first / chunk_[0]; r <= (first + count - 1) / chunk_[0]; ++r) {
      if (!checked_.insert(r).second) continue;
      for (hsize_t k = 0; k < per_row_chunk; ++k) {
        offset[0] = r * chunk_[0];
        for (size_t i = rank - 1, rest = k; i >= 1; --i) offset[i] = (rest % grid[i]) * chunk_[i], rest /= grid[i];
        hsize_t size = 0;
        if (H5Dget_chunk_storage_size(dataset_id_.id, offset.data(), &size) < 0 || size == 0) continue;  // unallocated: fill
        check(size <= 2 * chunk_bytes_ + 4096, where_ + ": corrupt file: a chunk stores " + std::to_string(size) +
                                                   " bytes for " + std::to_string(chunk_bytes_));
        stored.resize(size);
        uint32_t skipped = 0;
        check(H5Dread_chunk(dataset_id_.id, H5P_DEFAULT, offset.data(), &skipped, stored.data()) >= 0,
              where_ + ": corrupt file: unreadable chunk at row " + std::to_string(offset[0]));
        size_t length = stored.size();
        for (size_t i = filters_.size(); i-- > 0;) {  // undone in reverse order of their application
          if (skipped & (1u << i)) continue;
          if (filters_[i] == H5Z_FILTER_FLETCHER32) {
            check(length >= 4, where_ + ": corrupt file: a chunk too short for its checksum");
            length -= 4;  // libhdf5 verifies the sum itself
          } else if (filters_[i] == H5Z_FILTER_DEFLATE) {
            inflated.resize(size_t(chunk_bytes_) + 1);  // one more: a chunk that inflates to more shows too
            uLongf out = uLongf(inflated.size());
            const int z = ::uncompress(inflated.data(), &out, stored.data(), uLong(length));
            check(z == Z_OK || z == Z_BUF_ERROR, where_ + ": corrupt file: a chunk at row " + std::to_string(offset[0]) +
                                                    " does not inflate (zlib: " + std::to_string(z) + ")");
            length = z == Z_OK ? size_t(out) : inflated.size();
            stored.swap(inflated);
          }
        }
        check(length == chunk_bytes_, where_ + ": corrupt file: a chunk at row " + std::to_string(offset[0]) + " holds " +
                                          std::to_string(length) + " bytes, its layout " + std::to_string(chunk_bytes_));
      }
    }
  }

  std::string only_dataset() {
    std::vector<std::string> names;
    H5Literate(file_id_.id, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr,
               [](hid_t group, const char* name, const H5L_info_t*, void* data) -> herr_t {
                  H5O_info_t info;
                  if (H5Oget_info_by_name2(group, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
                      info.type == H5O_TYPE_DATASET)
                    static_cast<std::vector<std::string>*>(data)->push_back(name);
                  return 0;
                },
                &names);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    check(names.size() == 1, file_ + ": name the dataset (" + file_ + ":NAME); the root holds " +
                                 (names.empty() ? "no dataset" : list));
    return names[0];
  }
  std::vector<hsize_t> chunk_;           // chunked layout: a chunk's dimensions (else empty)
  hsize_t chunk_bytes_ = 0;              // a chunk's bytes unfiltered
  std::vector<H5Z_filter_t> filters_;    // in the order they were applied when written
  std::unordered_set<hsize_t> checked_;  // chunk rows (index along dimension 0) already checked
  std::string file_, where_;
  // Closed in reverse order of opening (members are destroyed bottom up).
  Handle file_id_{-1, H5Fclose}, dataset_id_{-1, H5Dclose}, space_id_{-1, H5Sclose};
  std::vector<int64_t> shape_;
};

// Whole transfers over a socket; false when the other end is gone.
bool send_all(int fd, const void* data, size_t n) {
  for (const char* p = static_cast<const char*>(data); n > 0;) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k, n -= size_t(k);
  }
  return true;
}
bool receive_all(int fd, void* data, size_t n) {
  for (char* p = static_cast<char*>(data); n > 0;) {
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k, n -= size_t(k);
  }
  return true;
}
// A reply: status 0 and the payload, or status 1 and an error message.
bool send_error(int fd, const std::string& message) {
  const uint8_t status = 1;
  const uint64_t n = message.size();
  return send_all(fd, &status, 1) && send_all(fd, &n, 8) && send_all(fd, message.data(), n);
}

// In the child: a fault ends it by its signal, which the parent reports, whatever handlers the parent
// had (our SIGBUS guard; a sanitizer's or libFuzzer's, which would report the parent's input as theirs).
void die_by_signal() {
  for (int signal : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) std::signal(signal, SIG_DFL);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(AWARE_HAS_SANITIZER)
  __sanitizer_set_death_callback(nullptr);
#endif
}

// The child's side: opens the dataset, sends its shape (or the error), then serves row ranges until
// the parent closes the socket.
[[noreturn]] void serve_hdf5(const std::string& spec, int fd) {
  try {
    Hdf5Dataset dataset(spec);
    const uint8_t ok = 0;
    const uint64_t rank = dataset.shape().size(), where = dataset.where().size();
    if (!send_all(fd, &ok, 1) || !send_all(fd, &rank, 8) || !send_all(fd, dataset.shape().data(), 8 * rank) ||
        !send_all(fd, &where, 8) || !send_all(fd, dataset.where().data(), where))
      ::_exit(0);
    int64_t row = 1;
    for (size_t i = 1; i < rank; ++i) row *= dataset.shape()[i];
    std::vector<float> rows;
    for (int64_t range[2]; receive_all(fd, range, sizeof range);) {
      try {
        rows.resize(size_t(range[1] * row));
        dataset.read(range[0], range[1], rows.data());
      } catch (const Error& e) {
        if (!send_error(fd, e.what())) break;
        continue;
      }
      if (!send_all(fd, &ok, 1) || !send_all(fd, rows.data(), rows.size() * sizeof(float))) break;
    }
  } catch (const std::exception& e) {
    send_error(fd, e.what());
  }
  ::_exit(0);  // not exit(): the parent's atexit handlers and buffers are not the child's to run
}

// An HDF5 dataset read in a child process. libhdf5 (Debian 12's 1.10.8) reads some corrupt files out of
// bounds -- a chunk layout whose element size disagrees with the type is one (found by fuzz/fuzz_hdf5) --
// which crashes the reader, and those fields are not visible through its API to be checked first. In
// a child, a crash is one error naming the file, and the job (other files, the outputs) is unharmed.
// The cost: the events cross a socket once (a copy, GB/s) and a fork per file.
class Hdf5Source final : public EventSource {
 public:
  explicit Hdf5Source(const std::string& spec) : file_(spec.substr(0, spec.find(':'))) {
    check(std::filesystem::exists(file_), file_ + ": no such file");
    int fds[2];
    check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0,
          file_ + ": cannot start its reader (" + std::strerror(errno) + ")");
    std::fflush(nullptr);  // nothing buffered is written twice
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      die_by_signal();
      serve_hdf5(spec, fds[1]);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    if (pid_ < 0) {
      ::close(fd_);
      throw Error(file_ + ": cannot start its reader (" + std::strerror(errno) + ")");
    }
    try {
      reply();
      uint64_t rank = 0, where = 0;
      expect(receive_all(fd_, &rank, 8) && rank >= 2 && rank <= 3);
      shape_.resize(rank);
      expect(receive_all(fd_, shape_.data(), 8 * rank) && receive_all(fd_, &where, 8) && where < (1 << 20));
      where_.resize(where);
      expect(receive_all(fd_, where_.data(), where));
    } catch (...) {
      stop();
      throw;
    }
  }
  ~Hdf5Source() override { stop(); }
  int64_t rows() const override { return shape_[0]; }
  std::vector<int64_t> event_shape() const override { return {shape_.begin() + 1, shape_.end()}; }
  std::string name() const override { return name_of(file_); }
  void read(int64_t first, int64_t count, float* out) override {
    const int64_t range[2] = {first, count};
    expect(send_all(fd_, range, sizeof range));
    reply();
    const int64_t n = count * row_size();
    expect(receive_all(fd_, out, size_t(n) * sizeof(float)));
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(out[i]))  // the message is built only on failure: this loop is the hot path
        throw Error(where_ + ": event " + std::to_string(first + i / row_size()) + ", value " +
                    std::to_string(i % row_size()) + " is not finite");
  }

 private:
  // The status of a reply: returns on success, throws the child's error or its end.
  void reply() {
    uint8_t status = 0;
    expect(receive_all(fd_, &status, 1));
    if (status == 0) return;
    uint64_t n = 0;
    expect(receive_all(fd_, &n, 8) && n < (1 << 20));
    std::string message(n, '\0');
    expect(receive_all(fd_, message.data(), n));
    throw Error(message);
  }
  // A transfer that must succeed: when it does not, the child has ended; says how.
  void expect(bool ok) {
    if (ok) return;
    int status = 0;
    ::close(fd_);
    fd_ = -1;
    const bool waited = pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_;
    pid_ = -1;
    if (waited && WIFSIGNALED(status))
      throw Error(file_ + ": libhdf5 crashed reading the file (" + ::strsignal(WTERMSIG(status)) +
                  "): it is corrupt. (aware reads HDF5 in a separate process: nothing else was affected.)");
    throw Error(file_ + ": the HDF5 reader ended unexpectedly" +
                (waited && WIFEXITED(status) ? " (status " + std::to_string(WEXITSTATUS(status)) + ")" : std::string()));
  }
  void stop() {
    if (fd_ >= 0) ::close(fd_);  // the child sees the end and exits
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
    fd_ = pid_ = -1;
  }
  std::string file_, where_;
  std::vector<int64_t> shape_;
  int fd_ = -1;
  pid_t pid_ = -1;
};
#endif

}  // namespace

int64_t EventSource::row_size() const {
  int64_t n = 1;
  for (int64_t d : event_shape()) n *= d;
  return n;
}

bool hdf5_available() {
#if defined(AWARE_HDF5)
  return true;
#else
  return false;
#endif
}

std::string EventSource::name_of(const std::string& path) {
  if (is_hdf5(path)) return strip_extensions(path.substr(0, path.find(':')), {".h5", ".hdf5", ".he5"});
  return strip_extensions(path, {".gz", ".npy"});
}

std::unique_ptr<EventSource> EventSource::open(const std::string& path) {
  if (is_hdf5(path)) {
#if defined(AWARE_HDF5)
    return std::make_unique<Hdf5Source>(path);
#else
    throw Error(path + ": this build of aware reads no HDF5 (install libhdf5-dev and rebuild)");
#endif
  }
  return std::make_unique<NpySource>(path);
}

}  // namespace aware
