// Checkpoints: everything needed to resume a run or score with its model, in one versioned binary
// file with a CRC-32 over its contents, written atomically (temporary file, fsync, rename), so a run
// killed at any moment leaves either the old checkpoint or the new one, never a torn file.
//
// Layout (little endian): "AWARECKP", u32 version, then the fields below in order, each string or
// array as u64 length + data, then u32 CRC-32 (zlib) of every byte before it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace aware {

// The per-event and per-column normalisations (model/data.h) a config and a checkpoint may name.
inline const std::vector<std::string> kNormalisations{"sum-std", "sum", "none", "scale", "standardise"};

struct Checkpoint {
  static constexpr uint32_t kVersion = 1;
  std::string config;                  // the run's TOML config, as written
  std::string stage;                   // "prior" or "aa"
  int64_t epochs_done = 0;             // completed epochs of this stage
  int64_t epochs_total = 0;
  uint64_t seed = 0;
  std::vector<int64_t> event_shape;    // [H, W] or [F]
  std::vector<std::string> classes;    // output classes, in logit order
  std::string normalisation;
  std::vector<float> col_shift, col_scale;
  std::vector<float> params, momentum;
};

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt);
Checkpoint load_checkpoint(const std::filesystem::path& path);  // aware::Error naming the file

// Writes bytes to path atomically (path.tmp.<pid>, fsync, rename); shared by every output writer.
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

}  // namespace aware
