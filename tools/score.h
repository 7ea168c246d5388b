// Offline scoring at scale: softmax scores of the events of a file, streamed in chunks from the input
// (a memory-mapped .npy or an HDF5 dataset) and written in place into the output as they come, so that memory stays
// bounded by the chunk, a killed job loses at most the chunk in flight, and --resume continues.
// Under mpirun each rank scores a contiguous slice of the events into the same output file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "runtime/checkpoint.h"
#include "runtime/communicator.h"

namespace aware {

// A checkpoint made ready to score: its stored config parsed, its model planned on a backend with the
// checkpoint's parameters. Every part is checked where it is read (the file, its config, the network
// against the event shape and the parameter count); an error names the file. Empty device, conv or
// precision: the stored config's.
struct ScoringModel {
  Checkpoint checkpoint;
  RunConfig config;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};
// batch: events per forward pass; 0: the backend's choice (Backend::score_batch).
ScoringModel load_scoring_model(const std::filesystem::path& path, int batch, const std::string& device = "",
                                const BackendOptions& options = {"", ""});

struct ScoreOptions {
  std::filesystem::path out_dir = ".";
  int64_t chunk = 1 << 16;   // events per chunk (read, score, write, record progress)
  int64_t max_chunks = -1;   // stop after this many chunks of this call (a time-limited job); -1: all
  bool resume = false;       // continue OUT.npy.partial from its recorded progress
  bool progress = true;
  // What else the scores depend on, one "key value" a line (aware score: the model file's CRC-32, the
  // batch, the backend and precision): recorded beside the partial output with the input's identity and
  // the chunk, and compared by a resume, which refuses to continue another job.
  std::string job;
};

struct ScoreResult {
  int64_t events = 0;     // in the file
  bool complete = false;  // false: stopped by max_chunks; --resume continues it
};

// Scores the events of `input` (tools/events.h: .npy, .npy.gz, FILE.h5[:DATASET]), which must have
// the model's `event_shape`, into out_dir/NAME.npy, shape (N, classes).
ScoreResult score_file(Model& model, const std::string& input, const std::vector<int64_t>& event_shape,
                       const ScoreOptions& options, Communicator& comm);

}  // namespace aware
