// Reports of the analysis: the normal-task ROC, the central fraction, and the anomaly window scan with
// its reach, as JSON (and CSV for plotting). The numerics are in kernels/roc.h and kernels/scan.h.
#pragma once
#include <array>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/scan.h"

namespace aware {

// Fig. 10's fixed window widths.
inline constexpr std::array<double, 3> kDefaultWidths{0.08, 0.10, 0.12};

// Whether a scan on `device` ("cpu", "cuda", "auto") runs on the GPU; "cuda" without a device, or an
// unknown device, is an error saying so.
bool scan_on_gpu(const std::string& device);

// n luminosities (fb^-1) evenly spaced in log from first to last, both included.
std::vector<double> log_grid(double first, double last, int n);

// The window scan of one anomaly: settings used (the eligibility rule in words), the best window with
// R_max +- its error and the counts of every class, R against the centre for each width, the
// below-threshold curve, and per luminosity sigma_min from R_max (Eq. 8), the naive 5 sqrt(sigma_B / L)
// and the Asimov variant (with its own window). Numbers that do not exist (no eligible window, R of a
// window without background) are NaN in memory and null once dumped.
// device: "cpu", "cuda" (the GPU scan of kernels/cuda/scan.cu finds the grid and the best window) or "auto".
nlohmann::json scan_report(const ScanInput& input, const ScanSettings& settings, std::span<const double> widths,
                           std::span<const double> luminosities, const std::string& device = "cpu");

// The same for rectangles in (P(Top), P(W)): best rectangle, R_max +- error, sigma_min(L) and the naive one.
nlohmann::json scan_report_2d(const ScanInput2D& input, const ScanSettings& settings,
                              std::span<const double> luminosities, const std::string& device = "cpu");

// From a scan_report (in memory or read back from its file): <prefix>_curves.csv with columns
// width,centre,lo,hi,R,eligible (width "below" for the below-threshold rows) and <prefix>_reach.csv with
// luminosity,sigma_min,sigma_min_naive,sigma_min_asimov. Missing numbers are written "nan". Each file is
// written atomically; dir is created when missing.
void write_scan_csv(const nlohmann::json& report, const std::filesystem::path& dir, const std::string& prefix);

// AUC (exact, ties one half) and the ROC curve thinned to at most max_points points (evenly by index,
// both ends kept); the first point's threshold is +infinity, written null.
nlohmann::json roc_report(std::span<const float> pos, std::span<const float> neg, int max_points = 500);

// Fraction of events with lo < p < hi (strictly, edges rounded to float like the anchor's NumPy), the
// anchor's "central fraction".
nlohmann::json central_fraction(std::span<const float> p, double lo = 0.3, double hi = 0.7);

// Anomaly scores of one softmax row, larger = more anomalous: "p0_centre" = 0.5 - |P(first class) - 0.5|
// (the window scan's view), "max_softmax" = 1 - max_c P(c) and "entropy" = -sum_c P(c) ln P(c).
inline constexpr std::array<const char*, 3> kAnomalyScores{"p0_centre", "max_softmax", "entropy"};
std::vector<float> anomaly_score(std::span<const float> probs, int classes, const std::string& kind);

// An anomaly class against the pooled normal test events, per anomaly score: AUROC (ties one half) and
// the false-positive rate (normal events flagged) at 95% anomaly efficiency.
nlohmann::json anomaly_score_report(std::span<const float> anomaly_probs, std::span<const float> normal_probs,
                                    int classes);

}  // namespace aware
