// libFuzzer harness: HDF5 inputs for scoring (tools/events.h), opened by file alone (the root's one
// dataset) and as FILE.h5:jets, then read in row ranges as scoring reads them. libhdf5 parses the file;
// aware's part is everything around it: the dataset's type, rank and extent, the hyperslabs, the
// finite check. Any exception but aware::Error, a crash, a leak or undefined behaviour is a finding.
#include "fuzz/harness.h"
#include "kernels/error.h"
#include "tools/events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = aware::fuzz::input_file(std::string(reinterpret_cast<const char*>(data), size), "events.h5");
  for (const std::string& spec : {path.string(), path.string() + ":jets"}) {
    try {
      aware::fuzz::read_some_rows(*aware::EventSource::open(spec));
      ++aware::fuzz::accepted;
    } catch (const aware::Error& e) {
      aware::fuzz::refused(e);
    }
  }
  return 0;
}
