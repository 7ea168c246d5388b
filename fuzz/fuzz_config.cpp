// libFuzzer harness: the run config (model/config.h), as a file and with --set overrides. The input is
// the TOML text, then optionally a line "%%" and one override ("section.key=VALUE") per line.
// Any exception but aware::Error, a crash or undefined behaviour is a finding; so is an accepted config
// whose stored text (what checkpoints keep and a resume compares) does not read back as the same settings.
#include <sstream>

#include "fuzz/harness.h"
#include "kernels/error.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aware::fuzz::require;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto split = input.find("\n%%\n");
  std::vector<std::string> overrides;
  if (split != std::string::npos) {
    std::istringstream lines(input.substr(split + 4));
    for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  }
  try {
    const aware::RunConfig cfg = aware::parse_config(input.substr(0, split), "fuzz.toml", aware::fuzz::work_dir(), overrides);
    aware::RunConfig again;
    try {
      again = aware::parse_config(cfg.text, "fuzz.toml (stored)", aware::fuzz::work_dir());
    } catch (const aware::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      require(false, "an accepted config's stored text is accepted");
    }
    require(aware::result_settings_differ(cfg, again, "aa").empty(), "the stored text has the same settings");
    ++aware::fuzz::accepted;
  } catch (const aware::Error& e) {
    aware::fuzz::refused(e);
  }
  return 0;
}
