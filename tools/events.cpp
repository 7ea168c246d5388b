#include "tools/events.h"

#include <sys/mman.h>
#include <unistd.h>

#include <csetjmp>
#include <csignal>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "kernels/error.h"
#include "tools/npy.h"

#if defined(AWARE_HDF5)
#include <hdf5.h>
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
// Closes an HDF5 handle on scope exit.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

class Hdf5Source final : public EventSource {
 public:
  explicit Hdf5Source(const std::string& spec) {
    const auto colon = spec.find(':');
    file_ = spec.substr(0, colon);
    std::string dataset = colon == std::string::npos ? "" : spec.substr(colon + 1);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // our messages, not HDF5's error stack on stderr
    check(std::filesystem::exists(file_), file_ + ": no such file");
    file_id_ = H5Fopen(file_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    check(file_id_ >= 0, file_ + ": not a readable HDF5 file");
    if (dataset.empty()) dataset = only_dataset();
    where_ = file_ + ":" + dataset;
    check(H5Lexists(file_id_, dataset.c_str(), H5P_DEFAULT) > 0, where_ + ": no such dataset");
    dataset_id_ = H5Dopen2(file_id_, dataset.c_str(), H5P_DEFAULT);
    check(dataset_id_ >= 0, where_ + ": not a dataset");
    const Handle type{H5Dget_type(dataset_id_), H5Tclose};
    check(H5Tget_class(type.id) == H5T_FLOAT, where_ + ": values must be floating point (read as float32)");
    space_id_ = H5Dget_space(dataset_id_);
    const int rank = H5Sget_simple_extent_ndims(space_id_);
    check(rank == 2 || rank == 3, where_ + ": expected events (N, H, W) or (N, F), got rank " + std::to_string(rank));
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space_id_, dims.data(), nullptr);
    shape_.assign(dims.begin(), dims.end());
  }
  ~Hdf5Source() override {
    if (space_id_ >= 0) H5Sclose(space_id_);
    if (dataset_id_ >= 0) H5Dclose(dataset_id_);
    if (file_id_ >= 0) H5Fclose(file_id_);
  }
  int64_t rows() const override { return shape_[0]; }
  std::vector<int64_t> event_shape() const override { return {shape_.begin() + 1, shape_.end()}; }
  std::string name() const override { return name_of(file_); }
  void read(int64_t first, int64_t count, float* out) override {
    std::vector<hsize_t> start(shape_.size(), 0), extent(shape_.begin(), shape_.end());
    start[0] = hsize_t(first);
    extent[0] = hsize_t(count);
    check(H5Sselect_hyperslab(space_id_, H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr) >= 0,
          where_ + ": cannot select rows " + std::to_string(first) + "+" + std::to_string(count));
    const Handle memory{H5Screate_simple(int(extent.size()), extent.data(), nullptr), H5Sclose};
    check(H5Dread(dataset_id_, H5T_NATIVE_FLOAT, memory.id, space_id_, H5P_DEFAULT, out) >= 0,
          where_ + ": read failed at rows " + std::to_string(first) + "+" + std::to_string(count) +
              " (truncated or corrupt file?)");
    const int64_t n = count * row_size();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(out[i]))  // the message is built only on failure: this loop is the hot path
        throw Error(where_ + ": event " + std::to_string(first + i / row_size()) + ", value " +
                    std::to_string(i % row_size()) + " is not finite");
  }

 private:
  std::string only_dataset() {
    std::vector<std::string> names;
    H5Literate(file_id_, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr,
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
  std::string file_, where_;
  hid_t file_id_ = -1, dataset_id_ = -1, space_id_ = -1;
  std::vector<int64_t> shape_;
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
