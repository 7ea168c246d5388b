#include "model/data.h"

#include <cmath>

#include "kernels/error.h"
#include "runtime/rng.h"

namespace aware {
namespace {

// FNV-1a: the split of a class depends on its name and the seed, not on the order classes are listed.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h & 0xFFFFFFFFFFFFull;
}

}  // namespace

ClassFile open_class(const std::filesystem::path& dir, const std::string& name, int64_t n_test,
                     uint64_t seed) {
  std::filesystem::path path = dir / (name + ".npy");
  if (!std::filesystem::exists(path)) path += ".gz";
  check(std::filesystem::exists(path), (dir / (name + ".npy")).string() + ": no such file (nor " +
                                           path.string() + ") for class '" + name + "'");
  ClassFile f{name, NpyArray::load(path), {}, n_test};
  const auto& shape = f.array.shape();
  check(shape.size() == 2 || shape.size() == 3,
        path.string() + ": expected images (N, H, W) or features (N, F), got a " +
            std::to_string(shape.size()) + "-D array");
  check(f.array.rows() > n_test, path.string() + ": " + std::to_string(f.array.rows()) +
                                     " events, not more than the " + std::to_string(n_test) +
                                     " asked for the test set");
  f.order = philox_permutation(f.array.rows(), seed, kStreamSplit + name_hash(name));
  return f;
}

void append_events(EventSet& set, const ClassFile& file, Part part, int64_t count, int32_t label) {
  const int64_t begin = part == Part::test ? 0 : file.n_test;
  const int64_t available = part == Part::test ? file.n_test : file.pool_size();
  check(count <= available, file.array.path().string() + ": " + std::to_string(count) +
                                " events asked of the " + (part == Part::test ? "test set" : "training pool") +
                                ", which holds " + std::to_string(available));
  if (set.event_shape.empty()) {
    set.event_shape = file.event_shape();
    set.row_size = file.array.row_size();
  }
  check(set.event_shape == file.event_shape(),
        file.array.path().string() + ": event shape differs from the other classes'");
  set.class_begin.push_back(set.rows());
  const size_t old = set.x.size();
  set.x.resize(old + size_t(count * set.row_size));
  for (int64_t i = 0; i < count; ++i) {
    const float* src = file.array.data() + file.order[size_t(begin + i)] * set.row_size;
    std::copy(src, src + set.row_size, set.x.begin() + old + size_t(i * set.row_size));
  }
  set.label.insert(set.label.end(), size_t(count), label);
}

std::vector<float> Normaliser::row_scales(const float* x, int64_t rows, int64_t row_size) const {
  std::vector<float> s(size_t(rows), 1.0f);
  if (!per_event_sum()) return s;
  for (int64_t i = 0; i < rows; ++i) {
    double sum = 0.0;
    for (int64_t j = 0; j < row_size; ++j) sum += x[i * row_size + j];
    s[size_t(i)] = float(1.0 / std::max(sum, 1e-12));
  }
  return s;
}

Normaliser Normaliser::fit(const std::string& kind, double scale, const EventSet& train) {
  Normaliser n;
  n.kind = kind;
  const int64_t rows = train.rows(), cols = train.row_size;
  n.col_shift.assign(size_t(cols), 0.0f);
  n.col_scale.assign(size_t(cols), 1.0f);
  check(rows > 1, "normalisation: the normal training set is empty");
  if (kind == "sum-std") {
    // One scale for all pixels: the standard deviation of every pixel of the normal training set
    // after dividing each image by its sum (unbiased, as torch.std).
    const std::vector<float> rs = n.row_scales(train.x.data(), rows, cols);
    double sum = 0.0, sum2 = 0.0;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) sum += double(train.x[size_t(i * cols + j)] * rs[size_t(i)]);
    const double count = double(rows) * double(cols), mean = sum / count;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const double d = double(train.x[size_t(i * cols + j)] * rs[size_t(i)]) - mean;
        sum2 += d * d;
      }
    const double sd = std::sqrt(sum2 / (count - 1.0));
    check(sd > 0.0, "normalisation sum-std: the normal training set has no spread");
    n.col_scale.assign(size_t(cols), float(1.0 / sd));
  } else if (kind == "scale") {
    check(scale > 0.0, "normalisation scale: data.scale must be positive");
    n.col_scale.assign(size_t(cols), float(1.0 / scale));
  } else if (kind == "standardise") {
    for (int64_t j = 0; j < cols; ++j) {
      double sum = 0.0, sum2 = 0.0;
      for (int64_t i = 0; i < rows; ++i) sum += train.x[size_t(i * cols + j)];
      const double mean = sum / double(rows);
      for (int64_t i = 0; i < rows; ++i) {
        const double d = train.x[size_t(i * cols + j)] - mean;
        sum2 += d * d;
      }
      const double sd = std::sqrt(sum2 / double(rows - 1));
      n.col_shift[size_t(j)] = float(mean);
      n.col_scale[size_t(j)] = sd > 0.0 ? float(1.0 / sd) : 1.0f;
    }
  }
  return n;
}

}  // namespace aware
