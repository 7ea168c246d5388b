// A small synthetic data set for the training and command-line tests: 8x8 "jet images" of five
// classes (a, b normal; c, d aware; e unseen), each a bright blob at its own place plus noise, and
// a config that trains a small CNN on them in well under a second.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "runtime/npy.h"

namespace aware::testing {

// Uniform random floats in [lo, hi), seeded: fresh inputs for kernel checks.
inline std::vector<float> random_vector(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(gen);
  return v;
}

inline std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("aware_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_synthetic_classes(const std::filesystem::path& dir, int64_t events = 120) {
  std::filesystem::create_directories(dir);
  const std::vector<std::pair<std::string, std::pair<int, int>>> blobs = {
      {"a", {2, 2}}, {"b", {5, 5}}, {"c", {2, 5}}, {"d", {5, 2}}, {"e", {4, 4}}};
  uint32_t seed = 1;
  for (const auto& [name, at] : blobs) {
    std::mt19937 gen(seed++);
    std::uniform_real_distribution<float> noise(0.0f, 0.5f);
    std::normal_distribution<float> jitter(0.0f, 0.8f);
    std::vector<float> x(size_t(events) * 64);
    for (int64_t n = 0; n < events; ++n) {
      const float cy = at.first + jitter(gen), cx = at.second + jitter(gen);
      for (int y = 0; y < 8; ++y)
        for (int xx = 0; xx < 8; ++xx) {
          const float d2 = (y - cy) * (y - cy) + (xx - cx) * (xx - cx);
          x[size_t(n) * 64 + y * 8 + xx] = noise(gen) + 10.0f * std::exp(-d2 / 2.0f);
        }
    }
    const std::vector<int64_t> shape{events, 8, 8};
    save_npy(dir / (name + ".npy"), x.data(), shape);
  }
}

inline std::string synthetic_config(const std::filesystem::path& data, int seed = 3) {
  return "[run]\nseed = " + std::to_string(seed) + "\n" + R"(
[data]
dir = ")" + data.string() + R"("
normal = ["a", "b"]
aware = ["c", "d"]
unseen = ["e"]
n_test = 30
n_train = 60

[network]
layers = [{ type = "conv", filters = 4, padding = 1 }, { type = "relu" }, { type = "maxpool" },
          { type = "dropout", rate = 0.2 }, { type = "linear", units = 8 }, { type = "relu" }]

[train]
epochs = 3
aa_epochs = 2
batch = 10

[scan]
bins = 100
min_background_events = 5

[scan.sigma_fb]
a = 1.0
b = 10.0
)";
}

inline std::filesystem::path write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

}  // namespace aware::testing
