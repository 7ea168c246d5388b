#include "runtime/progress.h"

#include <unistd.h>

#include <cstdio>

namespace aware {

bool stderr_is_terminal() { return ::isatty(2) == 1; }

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      enabled_(enabled && stderr_is_terminal()), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && enabled_) std::fputc('\n', stderr);
}

double ProgressBar::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool ProgressBar::due(int64_t done) const {
  return enabled_ && (std::chrono::steady_clock::now() - last_draw_ >= std::chrono::milliseconds(100) ||
                      done >= total_);  // ~10 Hz
}

void ProgressBar::update(int64_t done, const std::string& extra) {
  if (!due(done)) return;
  last_draw_ = std::chrono::steady_clock::now();
  draw(done, extra, false);
}

void ProgressBar::finish(const std::string& extra) {
  draw(total_, extra, true);
  finished_ = true;
}

void ProgressBar::draw(int64_t done, const std::string& extra, bool final) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const double t = seconds(), frac = total_ > 0 ? double(done) / double(total_) : 1.0;
  const double rate = t > 0 ? done / t : 0.0;
  const int eta = rate > 0 ? int((total_ - done) / rate) : 0;
  std::string bar(size_t(frac * kWidth), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r%s [%s] %3d%% %.0f %s/s ETA %d:%02d %s\033[K%s", label_.c_str(), bar.c_str(),
               int(frac * 100), rate, unit_.c_str(), eta / 60, eta % 60, extra.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace aware
