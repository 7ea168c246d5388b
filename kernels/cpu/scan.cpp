#include "kernels/scan.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/error.h"

// Pragmas only when OpenMP is on, so a build without it stays warning-free (-Wunknown-pragmas).
#ifdef _OPENMP
#define AWARE_PARALLEL_FOR _Pragma("omp parallel for schedule(dynamic, 4)")
#else
#define AWARE_PARALLEL_FOR
#endif

namespace aware {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_bins(int bins, const char* what) {
  check(bins >= 1, std::string(what) + ": bins must be at least 1, got " + std::to_string(bins));
}

void check_weights(std::span<const float> weights, size_t events, const std::string& what) {
  check(weights.empty() || weights.size() == events,
        what + ": " + std::to_string(weights.size()) + " weights for " + std::to_string(events) + " events");
}

void check_output(size_t size, size_t cells, const char* what) {
  check(size == cells, std::string("histogram: ") + what + " has " + std::to_string(size) + " entries, not " +
                           std::to_string(cells));
}

// A candidate for an arg-max: larger value wins, ties go to the smallest key (lo, hi, ...), which makes the
// parallel reduction independent of how the threads split the work.
template <int Keys>
struct Candidate {
  double value = -std::numeric_limits<double>::infinity();
  int key[Keys] = {};
  bool found = false;

  void offer(double v, const int (&k)[Keys]) {  // called in increasing key order: strict > keeps the first
    if (!found || v > value) {
      value = v;
      std::copy(std::begin(k), std::end(k), key);
      found = true;
    }
  }
  void merge(const Candidate& other) {
    if (!other.found) return;
    if (!found || other.value > value ||
        (other.value == value && std::lexicographical_compare(other.key, other.key + Keys, key, key + Keys)))
      *this = other;
  }
};

template <int Keys>
Candidate<Keys> reduce(const std::vector<Candidate<Keys>>& per_row) {
  Candidate<Keys> best;
  for (const auto& c : per_row) best.merge(c);
  return best;
}

// What the hot loop needs of a window, without allocating. `sum(prefix)` gives the window's sum of a
// prefix array; the order of operations matches window_stats below, so the R that wins is the R reported.
struct QuickWindow {
  double R, e_anomaly, b;
  int64_t n_background;
};

template <class Sum>
QuickWindow quick_window(const PrefixGrid& g, Sum&& sum) {
  double b = 0;
  int64_t n = 0;
  for (size_t c = 0; c < g.background.size(); ++c) {
    b += g.sigma_fb[c] * (sum(g.background[c].weight) / g.background[c].weight.back());
    n += sum(g.background[c].count);
  }
  const double e_an = sum(g.anomaly.weight) / g.anomaly.weight.back();
  const double R = b > 0 ? std::sqrt(g.sigma_b_fb) * e_an / std::sqrt(b) : kNaN;
  return {R, e_an, b, n};
}

bool counts_for_rmax(const QuickWindow& q, int64_t min_background_events) {
  return q.n_background >= min_background_events && q.b > 0;
}

// Binomial variance of the fraction e of a class's weight that falls in the window.
double fraction_variance(double e, double w2_in, double w2_total, double w_total) {
  const double w2_out = std::max(0.0, w2_total - w2_in);
  return ((1 - e) * (1 - e) * w2_in + e * e * w2_out) / (w_total * w_total);
}

template <class Sum>
void window_stats(const PrefixGrid& g, Sum&& sum, bool wide_enough, int64_t min_background_events,
                  WindowStats& w) {
  const QuickWindow q = quick_window(g, sum);
  w.R = q.R;
  w.eligible = wide_enough && counts_for_rmax(q, min_background_events);
  w.e_anomaly = q.e_anomaly;
  w.n_anomaly = sum(g.anomaly.count);
  w.n_background_events = q.n_background;
  w.background_fb = q.b;
  const size_t classes = g.background.size();
  w.n_background.resize(classes);
  w.e_background.resize(classes);
  double var_b = 0;
  for (size_t c = 0; c < classes; ++c) {
    const ClassPrefix& h = g.background[c];
    w.n_background[c] = sum(h.count);
    w.e_background[c] = sum(h.weight) / h.weight.back();
    var_b += g.sigma_fb[c] * g.sigma_fb[c] *
             fraction_variance(w.e_background[c], sum(h.weight2), h.weight2.back(), h.weight.back());
  }
  if (!(q.b > 0)) {
    w.R_error = kNaN;
    return;
  }
  // Written without dividing by e_An, so a window with no anomaly has R = 0 +- 0.
  const double var_e_an =
      fraction_variance(q.e_anomaly, sum(g.anomaly.weight2), g.anomaly.weight2.back(), g.anomaly.weight.back());
  w.R_error = std::sqrt(g.sigma_b_fb / q.b * var_e_an + q.R * q.R * var_b / (4 * q.b * q.b));
}

// Prefix sums over the bins of a 1-D histogram.
ClassPrefix prefix_1d(const Sample& sample, int bins, const std::string& what) {
  check(!sample.scores.empty(), what + ": no events");
  check_weights(sample.weights, sample.scores.size(), what);
  std::vector<double> weight(bins), weight2(bins);
  std::vector<int64_t> count(bins);
  histogram(sample.scores, sample.weights, bins, weight, count, weight2);
  ClassPrefix p;
  p.weight.assign(bins + 1, 0);
  p.weight2.assign(bins + 1, 0);
  p.count.assign(bins + 1, 0);
  for (int k = 0; k < bins; ++k) {
    p.weight[k + 1] = p.weight[k] + weight[k];
    p.weight2[k + 1] = p.weight2[k] + weight2[k];
    p.count[k + 1] = p.count[k] + count[k];
  }
  check(p.weight.back() > 0, what + ": total weight must be positive");
  return p;
}

// 2-D prefix sums: P[i][j] = sum of cells (a < i, b < j), stored row-major with stride bins + 1.
ClassPrefix prefix_2d(const Sample2D& sample, int bins, const std::string& what) {
  check(!sample.p1.empty(), what + ": no events");
  check(sample.p1.size() == sample.p2.size(), what + ": p1 and p2 differ in length");
  check_weights(sample.weights, sample.p1.size(), what);
  const size_t cells = static_cast<size_t>(bins) * bins;
  std::vector<double> weight(cells), weight2(cells);
  std::vector<int64_t> count(cells);
  histogram_2d(sample.p1, sample.p2, sample.weights, bins, weight, count, weight2);
  const size_t stride = static_cast<size_t>(bins) + 1;
  ClassPrefix p;
  p.weight.assign(stride * stride, 0);
  p.weight2.assign(stride * stride, 0);
  p.count.assign(stride * stride, 0);
  for (size_t i = 0; i < static_cast<size_t>(bins); ++i)
    for (size_t j = 0; j < static_cast<size_t>(bins); ++j) {
      const size_t cell = i * bins + j, at = (i + 1) * stride + (j + 1), up = i * stride + (j + 1),
                   left = (i + 1) * stride + j, diag = i * stride + j;
      p.weight[at] = weight[cell] + p.weight[up] + p.weight[left] - p.weight[diag];
      p.weight2[at] = weight2[cell] + p.weight2[up] + p.weight2[left] - p.weight2[diag];
      p.count[at] = count[cell] + p.count[up] + p.count[left] - p.count[diag];
    }
  check(p.weight.back() > 0, what + ": total weight must be positive");
  return p;
}

void set_backgrounds(PrefixGrid& g, const std::string& name, double sigma_fb) {
  check(std::isfinite(sigma_fb) && sigma_fb >= 0, "scan: cross-section of " + name + " must be >= 0");
  g.background_names.push_back(name);
  g.sigma_fb.push_back(sigma_fb);
  g.sigma_b_fb += sigma_fb;  // summed in class order, as b is: the whole range then gives R = 1 exactly
}

}  // namespace

// ---- histograms -------------------------------------------------------------------------------------

int score_bin(float p, int bins) {
  check(!std::isnan(p), "scan: NaN score");
  // A float has 24 significant bits, so x * bins is exact for any sensible bins: the floor is the true one.
  const double x = std::clamp(static_cast<double>(p), 0.0, 1.0);
  return std::min(static_cast<int>(x * bins), bins - 1);
}

void histogram(std::span<const float> scores, std::span<const float> weights, int bins,
               std::span<double> weighted_out, std::span<int64_t> counts_out, std::span<double> squared_out) {
  check_bins(bins, "histogram");
  check_weights(weights, scores.size(), "histogram");
  check_output(weighted_out.size(), bins, "weighted_out");
  check_output(counts_out.size(), bins, "counts_out");
  if (!squared_out.empty()) check_output(squared_out.size(), bins, "squared_out");
  std::fill(weighted_out.begin(), weighted_out.end(), 0.0);
  std::fill(counts_out.begin(), counts_out.end(), 0);
  std::fill(squared_out.begin(), squared_out.end(), 0.0);
  for (size_t i = 0; i < scores.size(); ++i) {
    const int k = score_bin(scores[i], bins);
    const double w = weights.empty() ? 1.0 : weights[i];
    weighted_out[k] += w;
    counts_out[k] += 1;
    if (!squared_out.empty()) squared_out[k] += w * w;
  }
}

void histogram_2d(std::span<const float> p1, std::span<const float> p2, std::span<const float> weights, int bins,
                  std::span<double> weighted_out, std::span<int64_t> counts_out, std::span<double> squared_out) {
  check_bins(bins, "histogram_2d");
  check(p1.size() == p2.size(), "histogram_2d: p1 and p2 differ in length");
  check_weights(weights, p1.size(), "histogram_2d");
  const size_t cells = static_cast<size_t>(bins) * bins;
  check_output(weighted_out.size(), cells, "weighted_out");
  check_output(counts_out.size(), cells, "counts_out");
  if (!squared_out.empty()) check_output(squared_out.size(), cells, "squared_out");
  std::fill(weighted_out.begin(), weighted_out.end(), 0.0);
  std::fill(counts_out.begin(), counts_out.end(), 0);
  std::fill(squared_out.begin(), squared_out.end(), 0.0);
  for (size_t i = 0; i < p1.size(); ++i) {
    const size_t k = static_cast<size_t>(score_bin(p1[i], bins)) * bins + score_bin(p2[i], bins);
    const double w = weights.empty() ? 1.0 : weights[i];
    weighted_out[k] += w;
    counts_out[k] += 1;
    if (!squared_out.empty()) squared_out[k] += w * w;
  }
}

// ---- settings ------------------------------------------------------------------------------------

ScanInput top_qcd_input(Sample anomaly, Sample top, Sample qcd, double sigma_tt_fb, double sigma_qcd_fb) {
  return ScanInput{anomaly, {{"top", top, sigma_tt_fb}, {"qcd", qcd, sigma_qcd_fb}}};
}

int min_width_bins(double width, int bins) {
  return std::max(0, static_cast<int>(std::ceil(width * bins - 1e-9)));
}

std::string eligibility_rule(const ScanSettings& s) {
  return "a window counts for R_max when it holds at least " + std::to_string(s.min_background_events) +
         " simulated background events (raw counts, all background classes together), is at least " +
         std::to_string(s.min_width) +
         " wide in the score (each side for 2-D rectangles), and has positive background; other windows "
         "are only shown, flagged, in the curves";
}

// ---- 1-D scan ------------------------------------------------------------------------------------

ScanGrid make_grid(const ScanInput& input, int bins) {
  check_bins(bins, "scan");
  check(!input.background.empty(), "scan: no background classes");
  ScanGrid g;
  g.bins = bins;
  g.anomaly = prefix_1d(input.anomaly, bins, "scan: anomaly");
  for (const BackgroundSample& b : input.background) {
    g.background.push_back(prefix_1d(b.sample, bins, "scan: background " + b.name));
    set_backgrounds(g, b.name, b.sigma_fb);
  }
  check(g.sigma_b_fb > 0, "scan: total background cross-section must be positive");
  return g;
}

Window window_at(const ScanGrid& g, const ScanSettings& settings, int lo, int hi) {
  check(0 <= lo && lo < hi && hi <= g.bins, "scan: window [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                                ") outside the grid of " + std::to_string(g.bins) + " bins");
  Window w;
  w.lo = lo;
  w.hi = hi;
  w.p_lo = static_cast<double>(lo) / g.bins;
  w.p_hi = static_cast<double>(hi) / g.bins;
  const bool wide_enough = hi - lo >= min_width_bins(settings.min_width, g.bins);
  window_stats(g, [&](const auto& v) { return v[hi] - v[lo]; }, wide_enough, settings.min_background_events, w);
  return w;
}

std::optional<Window> best_window(const ScanGrid& g, const ScanSettings& settings) {
  const int bins = g.bins;
  const int narrowest = std::max(1, min_width_bins(settings.min_width, bins));
  std::vector<Candidate<2>> per_lo(bins);
  AWARE_PARALLEL_FOR
  for (int lo = 0; lo < bins; ++lo) {
    Candidate<2> best;
    for (int hi = lo + narrowest; hi <= bins; ++hi) {
      const QuickWindow q = quick_window(g, [&](const auto& v) { return v[hi] - v[lo]; });
      if (counts_for_rmax(q, settings.min_background_events)) best.offer(q.R, {lo, hi});
    }
    per_lo[lo] = best;
  }
  const Candidate<2> best = reduce(per_lo);
  if (!best.found) return std::nullopt;
  return window_at(g, settings, best.key[0], best.key[1]);
}

std::optional<Window> best_window(const ScanInput& input, const ScanSettings& settings) {
  return best_window(make_grid(input, settings.bins), settings);
}

std::vector<Window> fixed_width_curve(const ScanGrid& g, const ScanSettings& settings, double width) {
  const int w = static_cast<int>(std::lround(width * g.bins));
  check(w >= 1 && w <= g.bins, "scan: width " + std::to_string(width) + " is not between one bin and the range");
  std::vector<Window> curve;
  curve.reserve(g.bins - w + 1);
  for (int lo = 0; lo + w <= g.bins; ++lo) curve.push_back(window_at(g, settings, lo, lo + w));
  return curve;
}

std::vector<Window> below_threshold_curve(const ScanGrid& g, const ScanSettings& settings) {
  std::vector<Window> curve;
  curve.reserve(g.bins);
  for (int hi = 1; hi <= g.bins; ++hi) curve.push_back(window_at(g, settings, 0, hi));
  return curve;
}

// ---- reach -------------------------------------------------------------------------------------

double sigma_min(double R, double sigma_b_fb, double luminosity, double z) {
  check(R > 0 && sigma_b_fb > 0 && luminosity > 0, "sigma_min: R, sigma_B and the luminosity must be positive");
  return z * std::sqrt(sigma_b_fb) / (R * std::sqrt(luminosity));
}

double sigma_min_naive(double sigma_b_fb, double luminosity, double z) {
  return sigma_min(1.0, sigma_b_fb, luminosity, z);
}

namespace {

// g(x) = (1 + x) ln(1 + x) - x, so that Z^2 = 2 b g(s / b). For small x the direct form cancels to
// x^2 / 2; the series sum_{n>=2} (-x)^n / (n (n - 1)) keeps full precision there.
double asimov_g(double x) {
  if (x >= 0.05) return (1 + x) * std::log1p(x) - x;
  double sum = 0, power = -x;  // (-x)^(n-1)
  for (int n = 2; n < 40; ++n) {
    power *= -x;
    const double term = power / (n * (n - 1.0));
    sum += term;
    if (std::abs(term) <= 1e-18 * std::abs(sum)) break;
  }
  return sum;
}

}  // namespace

double asimov_z(double s, double b) {
  check(s >= 0 && b >= 0, "asimov_z: s and b must be >= 0");
  if (s == 0) return 0;
  if (b == 0) return std::numeric_limits<double>::infinity();
  return std::sqrt(2 * b * asimov_g(s / b));
}

double asimov_signal(double b, double z) {
  check(b > 0 && z >= 0, "asimov_signal: b must be positive and z >= 0");
  if (z == 0) return 0;
  // Solve g(x) = t with x = s / b. g is increasing and convex (g' = ln(1 + x) > 0, g'' > 0), and
  // g(x) <= x^2 / 2, so x0 = sqrt(2 t) (the s / sqrt(b) answer) is below the root; Newton's first step
  // lands above it, and from there it falls monotonically onto it.
  const double t = z * z / (2 * b);
  double x = std::sqrt(2 * t);
  for (int iteration = 0; iteration < 100; ++iteration) {
    const double next = x - (asimov_g(x) - t) / std::log1p(x);
    const bool converged = std::abs(next - x) <= 4 * std::numeric_limits<double>::epsilon() * x;
    x = next > 0 ? next : x / 2;
    if (converged) break;
  }
  return b * x;
}

std::optional<AsimovReach> asimov_reach(const ScanGrid& g, const ScanSettings& settings, double luminosity,
                                        double z) {
  check(luminosity > 0 && z > 0, "asimov_reach: luminosity and z must be positive");
  const int bins = g.bins;
  const int narrowest = std::max(1, min_width_bins(settings.min_width, bins));
  // One Newton solve per window: the signal events needed over L b background events, then the
  // cross-section that gives them, sigma = s / (L e_An). Minimised as an arg-max of -sigma.
  std::vector<Candidate<2>> per_lo(bins);
  AWARE_PARALLEL_FOR
  for (int lo = 0; lo < bins; ++lo) {
    Candidate<2> best;
    for (int hi = lo + narrowest; hi <= bins; ++hi) {
      const QuickWindow q = quick_window(g, [&](const auto& v) { return v[hi] - v[lo]; });
      if (!counts_for_rmax(q, settings.min_background_events) || !(q.e_anomaly > 0)) continue;
      const double signal_events = asimov_signal(luminosity * q.b, z);
      best.offer(-signal_events / (luminosity * q.e_anomaly), {lo, hi});
    }
    per_lo[lo] = best;
  }
  const Candidate<2> best = reduce(per_lo);
  if (!best.found) return std::nullopt;
  AsimovReach reach;
  reach.luminosity = luminosity;
  reach.sigma_min_fb = -best.value;
  reach.window = window_at(g, settings, best.key[0], best.key[1]);
  reach.signal_events = reach.sigma_min_fb * luminosity * reach.window.e_anomaly;
  reach.background_events = luminosity * reach.window.background_fb;
  return reach;
}

// ---- 2-D scan ------------------------------------------------------------------------------------

ScanGrid2D make_grid_2d(const ScanInput2D& input, int bins) {
  check_bins(bins, "scan 2-D");
  check(!input.background.empty(), "scan 2-D: no background classes");
  ScanGrid2D g;
  g.bins = bins;
  g.anomaly = prefix_2d(input.anomaly, bins, "scan 2-D: anomaly");
  for (const BackgroundSample2D& b : input.background) {
    g.background.push_back(prefix_2d(b.sample, bins, "scan 2-D: background " + b.name));
    set_backgrounds(g, b.name, b.sigma_fb);
  }
  check(g.sigma_b_fb > 0, "scan 2-D: total background cross-section must be positive");
  return g;
}

namespace {

// Sum of a 2-D prefix array over the rectangle [l1, h1) x [l2, h2).
auto rectangle_sum(size_t stride, size_t l1, size_t h1, size_t l2, size_t h2) {
  return [=](const auto& v) {
    return v[h1 * stride + h2] - v[l1 * stride + h2] - v[h1 * stride + l2] + v[l1 * stride + l2];
  };
}

}  // namespace

Window2D window_at_2d(const ScanGrid2D& g, const ScanSettings& settings, int lo1, int hi1, int lo2, int hi2) {
  check(0 <= lo1 && lo1 < hi1 && hi1 <= g.bins && 0 <= lo2 && lo2 < hi2 && hi2 <= g.bins,
        "scan 2-D: rectangle outside the grid of " + std::to_string(g.bins) + " bins");
  Window2D w;
  w.lo1 = lo1, w.hi1 = hi1, w.lo2 = lo2, w.hi2 = hi2;
  const double bins = g.bins;
  w.p1_lo = lo1 / bins, w.p1_hi = hi1 / bins, w.p2_lo = lo2 / bins, w.p2_hi = hi2 / bins;
  const int narrowest = min_width_bins(settings.min_width, g.bins);
  const bool wide_enough = hi1 - lo1 >= narrowest && hi2 - lo2 >= narrowest;
  window_stats(g, rectangle_sum(g.bins + 1, lo1, hi1, lo2, hi2), wide_enough, settings.min_background_events, w);
  return w;
}

std::optional<Window2D> best_window_2d(const ScanGrid2D& g, const ScanSettings& settings) {
  const int bins = g.bins;
  const int narrowest = std::max(1, min_width_bins(settings.min_width, bins));
  const size_t stride = static_cast<size_t>(bins) + 1;
  std::vector<Candidate<4>> per_lo1(bins);
  AWARE_PARALLEL_FOR
  for (int lo1 = 0; lo1 < bins; ++lo1) {
    Candidate<4> best;
    for (int hi1 = lo1 + narrowest; hi1 <= bins; ++hi1)
      for (int lo2 = 0; lo2 < bins; ++lo2)
        for (int hi2 = lo2 + narrowest; hi2 <= bins; ++hi2) {
          const QuickWindow q = quick_window(g, rectangle_sum(stride, lo1, hi1, lo2, hi2));
          if (counts_for_rmax(q, settings.min_background_events)) best.offer(q.R, {lo1, hi1, lo2, hi2});
        }
    per_lo1[lo1] = best;
  }
  const Candidate<4> best = reduce(per_lo1);
  if (!best.found) return std::nullopt;
  return window_at_2d(g, settings, best.key[0], best.key[1], best.key[2], best.key[3]);
}

std::optional<Window2D> best_window_2d(const ScanInput2D& input, const ScanSettings& settings) {
  return best_window_2d(make_grid_2d(input, settings.bins_2d), settings);
}

}  // namespace aware
