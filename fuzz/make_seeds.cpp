// Writes the fuzzers' seed corpora into DIR/{npy,checkpoint,hdf5,config}: small valid inputs of every
// kind aware reads (what the test suites write), from which libFuzzer mutates. The config seeds are the
// repository's configs/*.toml, passed as further arguments.
// Usage: fuzz_make_seeds DIR [CONFIG.toml...]
#include <fstream>
#include <iostream>
#include <sstream>

#include "fuzz/harness.h"
#include "kernels/error.h"
#include "model/config.h"
#include "model/model.h"
#include "runtime/checkpoint.h"
#include "runtime/npy.h"

#if defined(AWARE_HDF5)
#include <hdf5.h>
#endif

namespace fs = std::filesystem;
using namespace aware;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::vector<float> ramp(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = 0.01f * float(i % 97);
  return v;
}

// An array as a .npy and as the three containers of fuzz_npy (mode byte first).
void npy_seeds(const fs::path& dir, const std::string& name, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  fs::create_directories(dir);
  const fs::path tmp = dir / (name + ".tmp.npy");
  save_npy(tmp, ramp(n).data(), shape);
  const std::string bytes = read(tmp);
  fs::remove(tmp);
  write(dir / (name + ".plain"), std::string(1, '\0') + bytes);
  write(dir / (name + ".compressed"), std::string(1, '\1') + bytes);
  write(dir / (name + ".gzip"), std::string(1, '\2') + fuzz::gzip(bytes));
}

// A scoring model from a config: a checkpoint as `aware run` writes it. Seeds carry it twice: without
// its CRC and mode byte 1 (the harness appends the CRC), and whole with mode byte 0.
void checkpoint_seed(const fs::path& dir, const std::string& name, const std::string& config,
                     std::vector<int64_t> event_shape, const std::string& normalisation) {
  Checkpoint c;
  c.config = config;
  const RunConfig cfg = parse_config(config, name);
  c.stage = "aa";
  c.epochs_done = c.epochs_total = 1;
  c.seed = 7;
  c.event_shape = event_shape;
  c.classes = {"top", "qcd"};
  c.normalisation = normalisation;
  int64_t row = 1;
  for (int64_t d : event_shape) row *= d;
  c.col_shift.assign(size_t(row), 0.5f);
  c.col_scale.assign(size_t(row), 2.0f);
  auto backend = make_backend("cpu");
  const Normaliser norm{c.normalisation, c.col_shift, c.col_scale};
  Model model(*backend, cfg.network, event_shape, 2, 2, norm, false);
  c.params = ramp(int64_t(model.graph().param_count()));
  const fs::path tmp = dir / (name + ".tmp");
  save_checkpoint(tmp, c);
  const std::string bytes = read(tmp);
  fs::remove(tmp);
  write(dir / (name + ".sealed"), std::string(1, '\1') + bytes.substr(0, bytes.size() - 4));
  write(dir / (name + ".whole"), std::string(1, '\0') + bytes);
}

#if defined(AWARE_HDF5)
// An HDF5 file holding `datasets` (name, element type, shape), chunked and compressed when asked.
void hdf5_seed(const fs::path& path, const std::vector<std::tuple<std::string, hid_t, std::vector<hsize_t>>>& datasets,
               bool chunked) {
  fs::create_directories(path.parent_path());
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  for (const auto& [name, type, dims] : datasets) {
    const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    const hid_t props = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) {
      std::vector<hsize_t> chunk = dims;
      chunk[0] = 2;
      H5Pset_chunk(props, int(chunk.size()), chunk.data());
      H5Pset_deflate(props, 1);
    }
    const hid_t set = H5Dcreate2(file, name.c_str(), type, space, H5P_DEFAULT, props, H5P_DEFAULT);
    hsize_t n = 1;
    for (hsize_t d : dims) n *= d;
    const std::vector<float> values = ramp(int64_t(n));
    H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    H5Dclose(set);
    H5Pclose(props);
    H5Sclose(space);
  }
  H5Fclose(file);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fuzz_make_seeds DIR [CONFIG.toml...]\n";
    return 2;
  }
  const fs::path dir = argv[1];
  try {
    npy_seeds(dir / "npy", "scores", {5});
    npy_seeds(dir / "npy", "scores2", {4, 2});
    npy_seeds(dir / "npy", "images", {3, 4, 5});
    npy_seeds(dir / "npy", "empty", {0, 3});
    const std::string data = "[data]\ndir = \"jets\"\nnormal = [\"top\", \"qcd\"]\naware = [\"w\"]\nunseen = [\"eft\"]\n";
    const std::string mlp = data + "[network]\nlayers = [{ type = \"linear\", units = 4 }, { type = \"relu\" }]\n";
    checkpoint_seed(dir / "checkpoint", "mlp", mlp, {3}, "standardise");
    const std::string cnn = data + "[network]\nlayers = [{ type = \"conv\", filters = 2, padding = 1 }, { type = \"relu\" },"
                            " { type = \"maxpool\" }, { type = \"linear\", units = 3 }, { type = \"relu\" }]\n";
    checkpoint_seed(dir / "checkpoint", "cnn", cnn, {4, 4}, "sum-std");
#if defined(AWARE_HDF5)
    hdf5_seed(dir / "hdf5" / "jets", {{"jets", H5T_IEEE_F32LE, {4, 3, 3}}}, false);
    hdf5_seed(dir / "hdf5" / "chunked", {{"jets", H5T_IEEE_F64LE, {5, 6}}}, true);
    hdf5_seed(dir / "hdf5" / "two", {{"jets", H5T_IEEE_F32LE, {3, 2, 2}}, {"labels", H5T_STD_I32LE, {3, 1}}}, false);
#endif
    for (int i = 2; i < argc; ++i) write(dir / "config" / fs::path(argv[i]).filename(), read(argv[i]));
    write(dir / "config" / "overrides", read(argc > 2 ? argv[2] : "/dev/null") + "\n%%\ntrain.lambda=0.3\ndata.aware=[\"w\",\"r4\"]\n");
  } catch (const Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
