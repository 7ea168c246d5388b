// Event files for streaming readers (offline scoring): one interface over the formats physicists
// keep events in. A source is opened from a path:
//   FILE.npy / FILE.npy.gz          float32, C order, (N, H, W) or (N, F)
//   FILE.h5[:DATASET] (.hdf5, .he5) an HDF5 dataset of rank 2 or 3 with a floating-point type,
//                                   read as float32; DATASET may be left out when the file's root
//                                   holds exactly one dataset
// Reads come in row ranges, each checked to hold finite values; every error names the file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace aware {

class EventSource {
 public:
  virtual ~EventSource() = default;
  static std::unique_ptr<EventSource> open(const std::string& path);
  // name() of the source `path` opens, without opening it.
  static std::string name_of(const std::string& path);

  virtual int64_t rows() const = 0;
  virtual std::vector<int64_t> event_shape() const = 0;
  int64_t row_size() const;
  // The name outputs are called by: the file name without its extensions.
  virtual std::string name() const = 0;
  // Copies rows [first, first + count) to out (count * row_size floats).
  virtual void read(int64_t first, int64_t count, float* out) = 0;
};

// True when this build reads HDF5 (libhdf5 was found).
bool hdf5_available();

}  // namespace aware
