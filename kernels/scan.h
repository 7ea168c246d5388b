// The anomaly search of method.md section 5: windows of the classifier score, scanned on a grid.
//
// For a window, e_c is the fraction of class c's events inside it (with weights: the weight inside over
// the total weight), and
//   R = sqrt(sigma_B) * e_An / sqrt(b),  b = sum_c sigma_c e_c,  sigma_B = sum_c sigma_c
// over the SM background classes c (top and qcd in the two-class task; also w in the three-class one).
// R = 1 for the whole range: the naive search without a classifier.
//
// Scores live on `bins` equal bins over [0, 1]; a score p goes to bin min(floor(p * bins), bins - 1), so
// window [lo, hi) of bin edges holds lo/bins <= p < hi/bins, the last bin closed. Scores outside [0, 1]
// are clamped here (they are an error upstream); NaN is an aware::Error.
//
// Eligibility (ours; the papers leave it open): a window counts for R_max only when
//   - it holds at least min_background_events simulated background events (raw counts, all background
//     classes together), since below that its R is mostly the noise of a few events,
//   - it is at least min_width wide (each side, in 2-D), against the narrow spikes the anchor's rule lets
//     through (r3 after AA: [0.82, 0.825]),
//   - and its background b is positive (R is undefined otherwise).
// Ineligible windows still appear in the fixed-width and below-threshold curves, flagged.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace aware {

// Cross-sections after the jet selection, fb (data/jets/README.md).
inline constexpr double kSigmaQcdFb = 67600.0;
inline constexpr double kSigmaTtFb = 73.4;
inline constexpr double kSigmaWFb = 135.0;

// ---- histograms -------------------------------------------------------------------------------------

// Bin of a score: min(floor(p * bins), bins - 1), p clamped to [0, 1]. Throws for NaN.
int score_bin(float p, int bins);

// Histogram of one class. weights empty = every event weighs 1. weighted_out and counts_out have `bins`
// entries and are overwritten; squared_out (sum of squared weights, for the errors) is optional.
void histogram(std::span<const float> scores, std::span<const float> weights, int bins,
               std::span<double> weighted_out, std::span<int64_t> counts_out, std::span<double> squared_out = {});

// 2-D histogram over a bins x bins grid of (p1, p2), row-major: cell (i1, i2) at i1 * bins + i2.
void histogram_2d(std::span<const float> p1, std::span<const float> p2, std::span<const float> weights, int bins,
                  std::span<double> weighted_out, std::span<int64_t> counts_out, std::span<double> squared_out = {});

// ---- inputs and settings -----------------------------------------------------------------------------

struct Sample {
  std::span<const float> scores;
  std::span<const float> weights = {};  // empty: every event weighs 1
};

struct BackgroundSample {
  std::string name;
  Sample sample;
  double sigma_fb = 0;  // the class's cross-section: its weight in b
};

struct ScanInput {
  Sample anomaly;
  std::vector<BackgroundSample> background;  // any number of SM classes
};

// The paper's two-class search: background top (sigma_tt) + qcd (sigma_QCD), in that order.
ScanInput top_qcd_input(Sample anomaly, Sample top, Sample qcd, double sigma_tt_fb = kSigmaTtFb,
                        double sigma_qcd_fb = kSigmaQcdFb);

struct ScanSettings {
  int bins = 1000;                       // 1-D grid: edges every 1/bins
  int bins_2d = 50;                      // 2-D grid per axis: (bins_2d (bins_2d + 1) / 2)^2 rectangles
  int64_t min_background_events = 100;  // eligibility: raw simulated background events in the window
  double min_width = 0.02;               // eligibility: window width in score (each side in 2-D)
};

// The eligibility rule in words, for reports.
std::string eligibility_rule(const ScanSettings& settings);

// Smallest whole number of bins that is at least `width` wide (within 1e-9 of a bin rounds down).
int min_width_bins(double width, int bins);

// ---- prefix sums ---------------------------------------------------------------------------------

// Prefix sums of one class over the grid; entry 0 (1-D) or row/column 0 (2-D) is zero, the last entry
// is the class total. With unit weights every entry is an integer, so window sums are exact.
struct ClassPrefix {
  std::vector<double> weight, weight2;
  std::vector<int64_t> count;
};

struct PrefixGrid {
  int bins = 0;  // per axis
  ClassPrefix anomaly;
  std::vector<ClassPrefix> background;
  std::vector<std::string> background_names;
  std::vector<double> sigma_fb;
  double sigma_b_fb = 0;  // sum of sigma_fb
};

struct ScanGrid : PrefixGrid {};    // 1-D: bins + 1 entries per class
struct ScanGrid2D : PrefixGrid {};  // 2-D: (bins + 1)^2 entries per class, row-major

// O(N) histogramming then O(bins) (O(bins^2) in 2-D) prefix sums. Throws aware::Error for an empty class,
// mismatched weights, a non-positive total weight, a negative cross-section, or bins < 1.
ScanGrid make_grid(const ScanInput& input, int bins);

// ---- windows -----------------------------------------------------------------------------------

struct WindowStats {
  double R = 0;
  // Statistical error of R for this window, by binomial error propagation from the event counts:
  //   var(e_c) = ((1 - e_c)^2 sum_in w^2 + e_c^2 sum_out w^2) / W_c^2   (unit weights: n (1 - e) / N^2)
  //   var(R) / R^2 = var(e_An) / e_An^2 + var(b) / (4 b^2),  var(b) = sum_c sigma_c^2 var(e_c).
  // Binomial since the sample sizes are fixed; the Poisson form (sigma^2 n / N^2) is its e << 1 limit.
  // R_max is a maximum over many windows, so it is biased upward; R_error is the error of the chosen
  // window only, not of the choice.
  double R_error = 0;
  bool eligible = false;
  int64_t n_anomaly = 0;
  double e_anomaly = 0;
  std::vector<int64_t> n_background;  // raw events of each background class, input order
  std::vector<double> e_background;   // fraction of each background class
  int64_t n_background_events = 0;    // sum of n_background: what the eligibility rule counts
  double background_fb = 0;           // b = sum_c sigma_c e_c: the SM cross-section the window keeps
};

struct Window : WindowStats {
  int lo = 0, hi = 0;            // bin edges, lo < hi
  double p_lo = 0, p_hi = 0;     // lo / bins, hi / bins
  double centre() const { return (p_lo + p_hi) / 2; }
};

// One window [lo, hi) of the grid, eligibility included.
Window window_at(const ScanGrid& grid, const ScanSettings& settings, int lo, int hi);

// The eligible window of largest R over every pair of edges lo < hi, in one O(bins^2) pass over the
// prefix sums (parallel over lo; ties go to the smallest (lo, hi), whatever the threads). nullopt when no
// window is eligible. The grid's bins are used; settings.bins only matters to the ScanInput overload.
std::optional<Window> best_window(const ScanGrid& grid, const ScanSettings& settings);
std::optional<Window> best_window(const ScanInput& input, const ScanSettings& settings);

// Windows of width round(width * bins) bins at every position lo = 0 .. bins - w (Fig. 10: R against
// the centre (lo + hi) / 2 / bins).
std::vector<Window> fixed_width_curve(const ScanGrid& grid, const ScanSettings& settings, double width);

// Windows [0, hi / bins] for every edge hi = 1 .. bins: a plain cut P(Top) < p.
std::vector<Window> below_threshold_curve(const ScanGrid& grid, const ScanSettings& settings);

// ---- reach -------------------------------------------------------------------------------------

// Eq. 8: the smallest signal cross-section (fb) seen at z sigma with luminosity L (fb^-1) and a window
// of ratio R; R = 1 gives the naive 5 sqrt(sigma_B / L).
double sigma_min(double R, double sigma_b_fb, double luminosity, double z = 5);
double sigma_min_naive(double sigma_b_fb, double luminosity, double z = 5);

// Asimov significance of s signal events over b background events: sqrt(2 ((s + b) ln(1 + s/b) - s)).
// Tends to s / sqrt(b) for s << b (computed without cancellation there). b = 0 < s gives +infinity.
double asimov_z(double s, double b);

// The signal s > 0 with asimov_z(s, b) = z (b > 0): Z grows with s, solved by Newton's method.
double asimov_signal(double b, double z = 5);

// sigma_min under the Asimov criterion at luminosity L: over every eligible window with e_An > 0,
// the smallest sigma_sig with asimov_z(sigma_sig L e_An, L b) = z; the window that gives it.
struct AsimovReach {
  double luminosity = 0;
  double sigma_min_fb = 0;
  double signal_events = 0;      // sigma_min_fb * L * e_An
  double background_events = 0;  // L * b
  Window window;
};
std::optional<AsimovReach> asimov_reach(const ScanGrid& grid, const ScanSettings& settings, double luminosity,
                                        double z = 5);

// ---- 2-D: rectangles in (P(Top), P(W)) for three normal classes -------------------------------------

struct Sample2D {
  std::span<const float> p1, p2;
  std::span<const float> weights = {};
};

struct BackgroundSample2D {
  std::string name;
  Sample2D sample;
  double sigma_fb = 0;
};

struct ScanInput2D {
  Sample2D anomaly;
  std::vector<BackgroundSample2D> background;
};

struct Window2D : WindowStats {
  int lo1 = 0, hi1 = 0, lo2 = 0, hi2 = 0;  // [lo1, hi1) x [lo2, hi2) in bin edges
  double p1_lo = 0, p1_hi = 0, p2_lo = 0, p2_hi = 0;
};

ScanGrid2D make_grid_2d(const ScanInput2D& input, int bins);
Window2D window_at_2d(const ScanGrid2D& grid, const ScanSettings& settings, int lo1, int hi1, int lo2, int hi2);

// The eligible rectangle of largest R over all (bins (bins + 1) / 2)^2 rectangles (same rule and ties as
// 1-D, the width rule on each side); settings.bins_2d for the ScanInput2D overload.
std::optional<Window2D> best_window_2d(const ScanGrid2D& grid, const ScanSettings& settings);
std::optional<Window2D> best_window_2d(const ScanInput2D& input, const ScanSettings& settings);

}  // namespace aware

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/scan.cu
#include <cuda_runtime_api.h>
namespace aware::cuda {

// Scores already on the device (10^8 of them stay there; only the prefix sums come back). They must be
// free of NaN (scan() checks host inputs; a NaN on the device would land in bin 0).
struct DeviceSample {
  const float* scores = nullptr;
  const float* weights = nullptr;  // null: every event weighs 1
  size_t n = 0;
};
struct DeviceBackground {
  std::string name;
  DeviceSample sample;
  double sigma_fb = 0;
};
struct DeviceScanInput {
  DeviceSample anomaly;
  std::vector<DeviceBackground> background;  // 1 to 8 classes
};

// Everything the 1-D scan needs from one pass over the windows: the grid (host copy of the GPU's prefix
// sums), the best eligible window (its statistics by window_at() on that grid, as the CPU), and R of every
// window of the fixed-width curves (one vector per width, lo = 0 .. bins - w) and of the below-threshold
// curve (hi = 1 .. bins).
struct GpuScan {
  ScanGrid grid;
  std::optional<Window> best;
  std::vector<std::vector<double>> fixed_width_R;
  std::vector<double> below_threshold_R;
};
GpuScan scan_device(const DeviceScanInput& input, const ScanSettings& settings, std::span<const double> widths,
                    cudaStream_t stream);
GpuScan scan(const ScanInput& input, const ScanSettings& settings, std::span<const double> widths);

// The 2-D scan (rectangles in (P(Top), P(W))) on the GPU: the grid (host copy of the GPU's prefix
// sums) and the best rectangle, same rule and ties as best_window_2d().
struct GpuScan2D {
  ScanGrid2D grid;
  std::optional<Window2D> best;
};
GpuScan2D scan_2d(const ScanInput2D& input, const ScanSettings& settings);

}  // namespace aware::cuda
#endif
