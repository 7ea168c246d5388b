// The events of a run: one .npy file per class, a seeded split into test set and training pool,
// the normalisation (method.md section 1) fitted on the normal training set.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/config.h"
#include "runtime/npy.h"

namespace aware {

// One class file, read once, and its seeded order: test = order[0, n_test), pool = the rest.
struct ClassFile {
  std::string name;
  NpyArray array;
  std::vector<int64_t> order;
  int64_t n_test = 0;

  std::vector<int64_t> event_shape() const { return {array.shape().begin() + 1, array.shape().end()}; }
  int64_t pool_size() const { return array.rows() - n_test; }
};

// dir/NAME.npy, else dir/NAME.npy.gz; checked to be images (N, H, W) or features (N, F).
ClassFile open_class(const std::filesystem::path& dir, const std::string& name, int64_t n_test,
                     uint64_t seed);

// Events copied into one contiguous block (raw values), one label per event. `class_begin` marks
// where each source class starts (anomaly sets are sampled evenly over their classes).
struct EventSet {
  std::vector<int64_t> event_shape;
  int64_t row_size = 0;
  std::vector<float> x;
  std::vector<int32_t> label;
  std::vector<int64_t> class_begin;
  int64_t rows() const { return int64_t(label.size()); }
  const float* row(int64_t i) const { return x.data() + i * row_size; }
};

enum class Part { test, pool };
// Appends `count` events of `file` (from the start of its test set or its pool) with label `label`.
void append_events(EventSet& set, const ClassFile& file, Part part, int64_t count, int32_t label);

// out[i][j] = (x[i][j] * row_scale[i] - col_shift[j]) * col_scale[j]  (kernels/gather.h).
struct Normaliser {
  std::string kind = "none";
  std::vector<float> col_shift, col_scale;

  static Normaliser fit(const std::string& kind, double scale, const EventSet& normal_train);
  // Per-event factor: 1 / pixel sum for the "sum" kinds, else 1.
  std::vector<float> row_scales(const float* x, int64_t rows, int64_t row_size) const;
  bool per_event_sum() const { return kind == "sum-std" || kind == "sum"; }
};

}  // namespace aware
