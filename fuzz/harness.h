// The fuzz harnesses' shared parts: aware's readers take paths (they memory-map, decompress, or hand
// the file to libhdf5), so each input is written to a file of the harness's own temporary folder and
// read from there, exactly as a user's file would be.
#pragma once
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tools/events.h"

namespace aware::fuzz {

// A property every accepted input must have; a violation is a finding (libFuzzer keeps the input).
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: property violated: %s\n", what);
    std::abort();
  }
}

// Inputs read through to the end without an error: the replay reports it, so that seeds that no longer
// load (and so test little) are seen.
inline int64_t accepted = 0;

// An input aware refused with its one clear error: nothing to report, but AWARE_FUZZ_VERBOSE=1 prints
// the message (to see why a seed or a kept input is refused).
inline void refused(const std::exception& e) {
  static const bool verbose = std::getenv("AWARE_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "refused: %s\n", e.what());
}

// The harness's folder, removed at exit.
inline const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    const auto d = std::filesystem::temp_directory_path() / ("aware-fuzz." + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(work_dir(), ec); });
    return d;
  }();
  return dir;
}

// Writes `bytes` to work_dir()/name (replacing it) and returns the path.
inline std::filesystem::path input_file(const std::string& bytes, const std::string& name) {
  const auto path = work_dir() / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  return path;
}

// A gzip stream of `bytes` (what `gzip` writes; .npy.gz inputs).
inline std::string gzip(const std::string& bytes) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, uLong(bytes.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = uInt(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Reads a source's first rows in uneven chunks, as scoring does (bounded: a header may promise far more
// than the file holds), each value required finite: the reader promises to check.
inline void read_some_rows(EventSource& source) {
  require(source.rows() >= 0 && source.row_size() >= 0, "a source has a non-negative size");
  std::vector<float> rows;
  for (int64_t first = 0, count = 1; first < source.rows() && first < 4096; first += count, count = count % 5 + 2) {
    count = std::min(count, source.rows() - first);
    if (count * source.row_size() > (1 << 20)) break;
    rows.resize(size_t(count * source.row_size()));
    source.read(first, count, rows.data());
    for (float v : rows) require(std::isfinite(v), "every value read is finite");
  }
}

}  // namespace aware::fuzz
