// The look-elsewhere effect of the window scan: global significances from background-only
// pseudo-experiments (kernels/toys.h), signal injection, and the reach with the trials factor counted --
// for the windows the scan chooses from, and for a window fixed in advance, which pays no trials factor.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/scan.h"

namespace aware {

struct LeeSettings {
  int64_t toys = 10000;           // background-only pseudo-experiments
  int64_t injected_toys = 200;    // per injected cross-section
  double luminosity = 3000;       // fb^-1
  uint64_t seed = 1;
  std::vector<double> signals_fb; // injected cross-sections; empty: 13 from Eq. 8's 5-sigma reach / 20 to x 5
  std::optional<std::array<double, 2>> window;  // a window fixed in advance, in score: [lo, hi)
  std::vector<int64_t> observed;  // events observed per bin, at `luminosity` (empty: none): scanned as a toy is
  std::string device = "cpu";     // cpu, cuda or auto: where the toys are drawn and scanned
};

// The report (JSON): the statistic in words; per kind of window ("scanned", and "fixed" when a window
// is given): the background-only distribution of the largest t (quantiles, histogram), the global p and
// Z of a local 2, 3, 4, 5 sigma (the trials factor), per injected cross-section the median local and
// global Z (16% and 84% quantiles) and the probability of a global 3 and 5 sigma, and sigma_min at a
// median global 3 and 5 sigma -- null where the toys do not resolve it, saying so -- beside Eq. 8's;
// with observed counts, their largest t, its window, and its local and global p and Z. The expected (and
// observed) events per bin are written too, for other tools (scripts/compare_bumphunter.py).
// Eq. 8's reach, and the default grid of injected cross-sections, come from R_max of the same grid.
nlohmann::json lee_report(const ScanGrid& grid, const ScanSettings& settings, const LeeSettings& lee);

}  // namespace aware
