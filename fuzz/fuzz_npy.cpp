// libFuzzer harness: the .npy reader, plain (memory-mapped) and gzip-compressed, through every way aware
// opens one: npy_shape (headers only), NpyArray::load (whole arrays: scores, kinematics, training
// events), EventSource (streamed scoring, rows checked as they are read), and load_npy_doubles and
// load_npy_int64 (jet constituents and their offsets, `aware images`).
// The first byte picks the container: 0 the bytes as FILE.npy; 1 the bytes gzip-compressed as
// FILE.npy.gz (a valid stream of a fuzzed array); 2 the bytes as FILE.npy.gz (a fuzzed stream).
// Any exception but aware::Error, a crash, a leak or undefined behaviour is a finding; so is an
// accepted array that breaks the reader's promises (size = product of the shape, every value finite).
#include <cmath>
#include <vector>

#include "fuzz/harness.h"
#include "kernels/error.h"
#include "tools/events.h"
#include "runtime/npy.h"

namespace {

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aware::fuzz::require;
  if (size < 1) return 0;
  const int mode = data[0] % 3;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode == 1) bytes = aware::fuzz::gzip(bytes);
  const auto path = aware::fuzz::input_file(bytes, mode == 0 ? "events.npy" : "events.npy.gz");

  std::vector<int64_t> shape;
  bool has_shape = false;
  try {
    shape = aware::npy_shape(path);
    has_shape = true;
  } catch (const aware::Error& e) {
    aware::fuzz::refused(e);
  }
  try {
    const aware::NpyArray a = aware::NpyArray::load(path);
    require(has_shape && a.shape() == shape, "load's shape is npy_shape's");
    require(a.size() == product(a.shape()), "size is the product of the shape");
    require(a.rows() * a.row_size() == a.size(), "rows x row size is the size");
    for (int64_t i = 0; i < a.size(); ++i) require(std::isfinite(a.data()[i]), "every value is finite");
  } catch (const aware::Error& e) {
    aware::fuzz::refused(e);
  }
  for (const bool doubles : {true, false}) {  // float64/float32 and int64/int32: the size is the shape's
    try {
      std::vector<int64_t> other;
      const size_t n = doubles ? aware::load_npy_doubles(path, &other).size() : aware::load_npy_int64(path, &other).size();
      require(int64_t(n) == product(other), "the values are the product of the shape");
    } catch (const aware::Error& e) {
      aware::fuzz::refused(e);
    }
  }
  try {
    aware::fuzz::read_some_rows(*aware::EventSource::open(path.string()));
    ++aware::fuzz::accepted;
  } catch (const aware::Error& e) {
    aware::fuzz::refused(e);
  }
  return 0;
}
