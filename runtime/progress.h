// A one-line progress bar on stderr with rate and ETA; silent when stderr is not a terminal
// (logs and CI stay clean) or when disabled.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace aware {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit, bool enabled = true);
  ~ProgressBar();
  void update(int64_t done, const std::string& extra = "");
  // Whether update(done) would draw now: compute what only the drawing needs (a device read) then.
  bool due(int64_t done) const;
  void finish(const std::string& extra = "");
  double seconds() const;

 private:
  void draw(int64_t done, const std::string& extra, bool final);
  std::string label_, unit_;
  int64_t total_;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

bool stderr_is_terminal();

}  // namespace aware
