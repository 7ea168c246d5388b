// libFuzzer harness: a model file as `aware score -m` reads it (tools/score.h's load_scoring_model): the
// checkpoint's framing and CRC, its contents, its stored config, and the network planned from them with
// its parameters; then a few events scored. The first byte's low bit set: the CRC-32 is appended to the
// bytes (seeds carry none), so mutations reach what lies behind the checksum.
// Any exception but aware::Error, a crash, a leak or undefined behaviour is a finding; so is an accepted
// model whose scores are not probabilities.
#include <zlib.h>

#include <cmath>
#include <cstring>

#include "fuzz/harness.h"
#include "kernels/error.h"
#include "tools/score.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aware::fuzz::require;
  if (size < 1) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    const uint32_t crc = uint32_t(::crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
    bytes.append(reinterpret_cast<const char*>(&crc), sizeof crc);
  }
  const auto path = aware::fuzz::input_file(bytes, "model.ckpt");
  try {
    aware::ScoringModel m = aware::load_scoring_model(path, /*batch=*/2, "cpu");
    const int64_t row = int64_t(m.model->row_size());
    std::vector<float> events(size_t(3 * row));
    for (size_t i = 0; i < events.size(); ++i) events[i] = float(i % 7) * 0.25f;
    const std::vector<float> probs = m.model->predict(events.data(), 3);
    require(probs.size() == size_t(3 * m.model->classes()), "one score per event and class");
    for (int64_t r = 0; r < 3; ++r) {
      double sum = 0;
      for (int k = 0; k < m.model->classes(); ++k) {
        const float p = probs[size_t(r * m.model->classes() + k)];
        require(p >= 0.0f && p <= 1.0f, "a score is a probability");
        sum += p;
      }
      require(std::abs(sum - 1.0) < 1e-3, "an event's scores sum to 1");
    }
    ++aware::fuzz::accepted;
  } catch (const aware::Error& e) {
    aware::fuzz::refused(e);
  }
  return 0;
}
