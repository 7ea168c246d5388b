// A harness without libFuzzer: runs LLVMFuzzerTestOneInput once on every file under the folders given
// (the kept regression inputs and the seeds), so that the plain test build replays them on every change
// (CTest: fuzz_replay_*), under the sanitizers too (scripts/sanitize.sh cpu).
// Usage: fuzz_replay_NAME DIR_OR_FILE...
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    if (!std::filesystem::exists(argv[i])) {
      std::printf("%s: none yet\n", argv[i]);  // a fuzzer's regressions folder before its first finding
    } else if (std::filesystem::is_directory(argv[i])) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i]))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.emplace_back(argv[i]);
    }
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot open\n", f.c_str());
      return 2;
    }
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replayed %zu inputs; %ld read through without an error\n", files.size(), long(aware::fuzz::accepted));
  return files.empty() ? 1 : 0;
}
