// Reading and writing float32 arrays in numpy's .npy format (and reading .npy.gz). On the runtime floor,
// beside checkpoints: the data loading of model/ and every tool read through it.
//
// Only little-endian float32 in C order is accepted: that is what the training scripts write, and
// rejecting everything else up front is cheaper than discovering a silently reinterpreted array later.
// Every error is an aware::Error whose message starts with the file's path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace aware {

// A float32, C-order array read from a .npy file. Plain .npy files are memory-mapped (read-only, no copy);
// `.npy.gz` files are decompressed with zlib into memory. Values are checked to be finite.
class NpyArray {
 public:
  // Values are checked to be finite when loading, or, for a streaming reader that must not touch
  // the whole file up front, by the caller through check_finite_rows() as it reads.
  enum class Finite { check_all, by_caller };
  static NpyArray load(const std::filesystem::path& path, Finite finite = Finite::check_all);  // throws aware::Error naming the file
  void check_finite_rows(int64_t first, int64_t count) const;  // the same error as load's

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rows() const { return shape_.empty() ? 0 : shape_[0]; }
  int64_t row_size() const;  // product of shape[1:] (1 for 1-D)
  const float* data() const { return data_; }
  int64_t size() const { return size_; }  // number of floats
  const std::filesystem::path& path() const { return path_; }
  bool mapped() const { return mapping_ != nullptr; }  // memory-mapped (plain .npy), not owned

  NpyArray(NpyArray&& other) noexcept;
  NpyArray& operator=(NpyArray&& other) noexcept;
  NpyArray(const NpyArray&) = delete;
  NpyArray& operator=(const NpyArray&) = delete;
  ~NpyArray();

 private:
  NpyArray() = default;
  void swap(NpyArray& other) noexcept;

  std::filesystem::path path_;
  std::vector<int64_t> shape_;
  int64_t size_ = 0;
  const float* data_ = nullptr;  // into mapping_ or owned_ (or null when size_ == 0)
  void* mapping_ = nullptr;      // the whole file, mmap'ed; null when the data is owned
  size_t mapping_length_ = 0;
  std::vector<float> owned_;  // decompressed .gz data, or a copy when the mapped data is misaligned
};

// Writes a float32 C-order .npy (version 1.0 header, padded to 64 bytes as numpy does) atomically:
// to "<path>.tmp.<pid>", fsync, then rename over path. Throws aware::Error naming the path on failure.
void save_npy(const std::filesystem::path& path, const float* data, std::span<const int64_t> shape);

// The header of a float32 C-order .npy of `shape` (magic, version 1.0, dict, padded to 64 bytes as
// numpy pads it), for writers that fill the data in place (streamed scoring).
std::string npy_header(std::span<const int64_t> shape);
// "(3,)" for 1-D, "(3, 4)" otherwise: numpy's repr, used both in headers and in messages.
std::string shape_string(std::span<const int64_t> shape);

// A float32 .npy written as it is computed (arrays larger than memory): the header first, then the values
// in C order through write(), into "<path>.tmp.<pid>"; commit() checks the count, fsyncs and renames it
// over path. Destroyed without commit() (an error, a kill), it removes the temporary file: the old file
// stays, and no partial array is ever at path.
class NpyWriter {
 public:
  NpyWriter(std::filesystem::path path, std::span<const int64_t> shape);
  void write(const float* values, int64_t count);
  void commit();
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

 private:
  std::filesystem::path path_, temporary_;
  int fd_ = -1;
  int64_t remaining_ = 0;
  bool committed_ = false;
};

// Inputs that are not events (jet constituents, their offsets): a whole array of any shape, flattened,
// read into memory. Doubles take '<f8' and '<f4' (widened exactly); int64 takes '<i8' and '<i4'. The same
// header checks as for events; `shape`, when given, receives the array's.
std::vector<double> load_npy_doubles(const std::filesystem::path& path, std::vector<int64_t>* shape = nullptr);
std::vector<int64_t> load_npy_int64(const std::filesystem::path& path, std::vector<int64_t>* shape = nullptr);

// Shape of a .npy (or .npy.gz) file without reading the data; the header gets the same validation as in
// NpyArray::load. For plain files the file size is checked against the shape too; for .gz files that would
// need decompressing everything, so it is left to the reader.
std::vector<int64_t> npy_shape(const std::filesystem::path& path);

}  // namespace aware
