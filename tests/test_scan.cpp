// The window scan against brute force from the raw scores, the R error against a hand calculation and a
// bootstrap, the Asimov criterion, and the report files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/scan.h"
#include "kernels/error.h"
#include "tools/analysis.h"

namespace aware {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- test data -------------------------------------------------------------------------------

struct ClassData {
  std::string name;
  double sigma = 0;
  std::vector<float> p, p2, w;  // p2 only for 2-D; w empty = unit weights
};

struct Case {
  ClassData anomaly;
  std::vector<ClassData> background;

  ScanInput input() const {
    ScanInput in{{anomaly.p, anomaly.w}, {}};
    for (const ClassData& b : background) in.background.push_back({b.name, {b.p, b.w}, b.sigma});
    return in;
  }
  ScanInput2D input_2d() const {
    ScanInput2D in{{anomaly.p, anomaly.p2, anomaly.w}, {}};
    for (const ClassData& b : background) in.background.push_back({b.name, {b.p, b.p2, b.w}, b.sigma});
    return in;
  }
};

enum class Shape { low, high, middle };

// Scores shaped like qcd (near 0), top (near 1) or an anomaly (in the middle), with a tenth of them put on
// exact grid values (0, 1, k/40) to exercise the bin edges; levels > 0 rounds all to multiples of 1/levels,
// which makes many windows tie exactly.
std::vector<float> draw_scores(std::mt19937& rng, size_t n, Shape shape, int levels = 0) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> out(n);
  for (float& x : out) {
    const double v = u(rng);
    double p = shape == Shape::low ? v * v * v : shape == Shape::high ? 1 - v * v * v : 0.2 + 0.6 * v * v;
    if (u(rng) < 0.1) p = std::floor(u(rng) * 41) / 40;
    if (levels > 0) p = std::round(p * levels) / levels;
    x = static_cast<float>(p);
  }
  return out;
}

// Weights in {0.5, 1, 1.5, 2}: sums are exact in any order, so brute force and prefix sums agree to the bit.
std::vector<float> dyadic_weights(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int> k(1, 4);
  std::vector<float> w(n);
  for (float& x : w) x = 0.5f * static_cast<float>(k(rng));
  return w;
}

Case top_qcd_case(std::mt19937& rng, size_t n_an, size_t n_top, size_t n_qcd, int levels = 0) {
  Case c;
  c.anomaly = {"anomaly", 0, draw_scores(rng, n_an, Shape::middle, levels), {}, {}};
  c.background.push_back({"top", kSigmaTtFb, draw_scores(rng, n_top, Shape::high, levels), {}, {}});
  c.background.push_back({"qcd", kSigmaQcdFb, draw_scores(rng, n_qcd, Shape::low, levels), {}, {}});
  return c;
}

// ---- brute force, straight from the raw scores -----------------------------------------------------

struct Brute {
  double R = kNaN;
  bool eligible = false;
  int64_t n_anomaly = 0;
  std::vector<int64_t> n_background;
  double e_anomaly = 0;
  std::vector<double> e_background;
  int lo = -1, hi = -1;
};

// Fraction of a class's weight inside [lo/bins, hi/bins) (the last bin closed), and its raw count.
double fraction_inside(const ClassData& d, int bins, int lo, int hi, int64_t& n) {
  double in = 0, total = 0;
  n = 0;
  for (size_t i = 0; i < d.p.size(); ++i) {
    const double x = d.p[i], w = d.w.empty() ? 1.0 : d.w[i];
    total += w;
    const bool inside =
        static_cast<double>(lo) / bins <= x && (x < static_cast<double>(hi) / bins || (hi == bins && x <= 1.0));
    if (inside) in += w, ++n;
  }
  return in / total;
}

Brute brute_window(const Case& c, int bins, int lo, int hi, const ScanSettings& s) {
  Brute r;
  r.lo = lo, r.hi = hi;
  r.e_anomaly = fraction_inside(c.anomaly, bins, lo, hi, r.n_anomaly);
  double b = 0, sigma_b = 0;
  int64_t n_background = 0;
  for (const ClassData& d : c.background) {
    int64_t n = 0;
    const double e = fraction_inside(d, bins, lo, hi, n);
    r.n_background.push_back(n);
    r.e_background.push_back(e);
    b += d.sigma * e;
    sigma_b += d.sigma;
    n_background += n;
  }
  if (b > 0) r.R = std::sqrt(sigma_b) * r.e_anomaly / std::sqrt(b);
  r.eligible = b > 0 && n_background >= s.min_background_events &&
               static_cast<double>(hi - lo) / bins >= s.min_width - 1e-12;
  return r;
}

// The eligible window of largest R; ties to the smallest (lo, hi).
Brute brute_best(const Case& c, int bins, const ScanSettings& s) {
  Brute best;
  for (int lo = 0; lo < bins; ++lo)
    for (int hi = lo + 1; hi <= bins; ++hi) {
      Brute w = brute_window(c, bins, lo, hi, s);
      if (w.eligible && (best.lo < 0 || w.R > best.R)) best = w;
    }
  return best;
}

void expect_same_R(double ours, double brute, double tolerance, const std::string& where) {
  if (std::isnan(brute)) {
    EXPECT_TRUE(std::isnan(ours)) << where;
  } else {
    EXPECT_NEAR(ours, brute, tolerance * std::max(1.0, std::abs(brute))) << where;
  }
}

void expect_same_window(const WindowStats& ours, const Brute& brute, double tolerance, const std::string& where) {
  expect_same_R(ours.R, brute.R, tolerance, where);
  EXPECT_EQ(ours.eligible, brute.eligible) << where;
  EXPECT_EQ(ours.n_anomaly, brute.n_anomaly) << where;
  EXPECT_EQ(ours.n_background, brute.n_background) << where;
  EXPECT_NEAR(ours.e_anomaly, brute.e_anomaly, 1e-14) << where;
  for (size_t k = 0; k < brute.e_background.size(); ++k)
    EXPECT_NEAR(ours.e_background[k], brute.e_background[k], 1e-14) << where;
}

const std::vector<ScanSettings> kRules = {
    {.bins = 0, .bins_2d = 0, .min_background_events = 0, .min_width = 0},
    {.bins = 0, .bins_2d = 0, .min_background_events = 10, .min_width = 0},
    {.bins = 0, .bins_2d = 0, .min_background_events = 100, .min_width = 0.1},
    {.bins = 0, .bins_2d = 0, .min_background_events = 5, .min_width = 0.3},
};

ScanSettings with_bins(ScanSettings s, int bins) {
  s.bins = bins;
  s.bins_2d = bins;
  return s;
}

// ---- histogram ---------------------------------------------------------------------------------

TEST(Histogram, BinsClampAndWeights) {
  const std::vector<float> p{-0.5f, 0.0f, 0.24f, 0.25f, 0.5f, 0.99f, 1.0f, 1.5f};
  const std::vector<float> w{1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<double> weighted(4), squared(4);
  std::vector<int64_t> counts(4);
  histogram(p, w, 4, weighted, counts, squared);
  EXPECT_EQ(counts, (std::vector<int64_t>{3, 1, 1, 3}));
  EXPECT_EQ(weighted, (std::vector<double>{1 + 2 + 3, 4, 5, 6 + 7 + 8}));
  EXPECT_EQ(squared, (std::vector<double>{1 + 4 + 9, 16, 25, 36 + 49 + 64}));
  histogram(p, {}, 4, weighted, counts);
  EXPECT_EQ(weighted, (std::vector<double>{3, 1, 1, 3}));
  EXPECT_THROW(histogram(std::vector<float>{kNaN}, {}, 4, weighted, counts), Error);
  EXPECT_THROW(histogram(p, std::vector<float>{1}, 4, weighted, counts), Error);
  EXPECT_THROW(histogram(p, {}, 3, weighted, counts), Error);
}

// ---- 1-D scan against brute force ------------------------------------------------------------------

TEST(Scan, BestWindowMatchesBruteForce) {
  std::mt19937 rng(2024);
  for (int bins : {7, 20, 64}) {
    for (int levels : {0, 8}) {
      const Case c = top_qcd_case(rng, 157, 401, 523, levels);
      const ScanGrid grid = make_grid(c.input(), bins);
      for (const ScanSettings& rule : kRules) {
        const ScanSettings s = with_bins(rule, bins);
        const std::string where = "bins " + std::to_string(bins) + " levels " + std::to_string(levels) +
                                  " min events " + std::to_string(s.min_background_events) + " min width " +
                                  std::to_string(s.min_width);
        const Brute brute = brute_best(c, bins, s);
        const std::optional<Window> best = best_window(grid, s);
        ASSERT_EQ(best.has_value(), brute.lo >= 0) << where;
        if (!best) continue;
        EXPECT_EQ(best->lo, brute.lo) << where;
        EXPECT_EQ(best->hi, brute.hi) << where;
        EXPECT_TRUE(best->eligible) << where;
        expect_same_window(*best, brute, 1e-12, where);
        EXPECT_EQ(best->p_lo, static_cast<double>(brute.lo) / bins);
        // The ScanInput overload builds the same grid.
        EXPECT_EQ(best_window(c.input(), s)->R, best->R) << where;
      }
    }
  }
}

TEST(Scan, ThreeBackgroundsAndWeightsMatchBruteForce) {
  std::mt19937 rng(99);
  for (int bins : {7, 20, 64}) {
    Case c = top_qcd_case(rng, 211, 305, 487);
    c.background.push_back({"w", kSigmaWFb, draw_scores(rng, 263, Shape::middle), {}, {}});
    c.anomaly.w = dyadic_weights(rng, c.anomaly.p.size());
    c.background[1].w = dyadic_weights(rng, c.background[1].p.size());
    for (const ScanSettings& rule : kRules) {
      const ScanSettings s = with_bins(rule, bins);
      const Brute brute = brute_best(c, bins, s);
      const std::optional<Window> best = best_window(c.input(), s);
      ASSERT_TRUE(best.has_value());
      const std::string where = "bins " + std::to_string(bins);
      EXPECT_EQ(best->lo, brute.lo) << where;
      EXPECT_EQ(best->hi, brute.hi) << where;
      expect_same_window(*best, brute, 1e-12, where);
    }
  }
}

TEST(Scan, RandomWeightsAgreeToRounding) {
  std::mt19937 rng(5);
  Case c = top_qcd_case(rng, 301, 299, 403);
  std::uniform_real_distribution<float> u(0.2f, 3.0f);
  for (ClassData* d : {&c.anomaly, &c.background[0], &c.background[1]}) {
    d->w.resize(d->p.size());
    for (float& x : d->w) x = u(rng);
  }
  const ScanSettings s = with_bins(kRules[1], 20);
  const Brute brute = brute_best(c, 20, s);
  const std::optional<Window> best = best_window(c.input(), s);
  ASSERT_TRUE(best.has_value());
  EXPECT_NEAR(best->R, brute.R, 1e-9 * brute.R);
  // Whatever window wins, its brute-force R is the same number.
  EXPECT_NEAR(brute_window(c, 20, best->lo, best->hi, s).R, best->R, 1e-9 * brute.R);
}

TEST(Scan, WholeRangeGivesROne) {
  std::mt19937 rng(1);
  Case c = top_qcd_case(rng, 100, 200, 300);
  for (bool weighted : {false, true}) {
    if (weighted) c.background[0].w = dyadic_weights(rng, 200), c.anomaly.w = dyadic_weights(rng, 100);
    for (int bins : {1, 7, 1000}) {
      const ScanGrid grid = make_grid(c.input(), bins);
      const Window all = window_at(grid, ScanSettings{}, 0, bins);
      EXPECT_EQ(all.R, 1.0);
      EXPECT_NEAR(all.R_error, 0.0, 1e-12);  // every resample keeps every event
      EXPECT_EQ(all.n_anomaly, 100);
      EXPECT_EQ(all.n_background_events, 500);
    }
  }
}

TEST(Scan, CurvesMatchBruteForce) {
  std::mt19937 rng(77);
  for (int bins : {7, 20, 64}) {
    const Case c = top_qcd_case(rng, 123, 345, 567);
    const ScanSettings s = with_bins(kRules[2], bins);
    const ScanGrid grid = make_grid(c.input(), bins);
    for (double width : {0.1, 0.25, 0.5}) {
      const int w = static_cast<int>(std::lround(width * bins));
      const std::vector<Window> curve = fixed_width_curve(grid, s, width);
      ASSERT_EQ(curve.size(), static_cast<size_t>(bins - w + 1));
      for (int lo = 0; lo + w <= bins; ++lo) {
        const Window& got = curve[lo];
        EXPECT_EQ(got.lo, lo);
        EXPECT_EQ(got.hi, lo + w);
        EXPECT_DOUBLE_EQ(got.centre(), (lo + w / 2.0) / bins);
        expect_same_window(got, brute_window(c, bins, lo, lo + w, s), 1e-12, "fixed width");
      }
    }
    const std::vector<Window> below = below_threshold_curve(grid, s);
    ASSERT_EQ(below.size(), static_cast<size_t>(bins));
    for (int hi = 1; hi <= bins; ++hi) {
      EXPECT_EQ(below[hi - 1].lo, 0);
      EXPECT_EQ(below[hi - 1].hi, hi);
      expect_same_window(below[hi - 1], brute_window(c, bins, 0, hi, s), 1e-12, "below threshold");
    }
  }
}

TEST(Scan, NoEligibleWindowAndBadInput) {
  std::mt19937 rng(8);
  const Case c = top_qcd_case(rng, 50, 30, 40);
  EXPECT_FALSE(best_window(c.input(), ScanSettings{.bins = 20, .min_background_events = 71}).has_value());
  EXPECT_TRUE(best_window(c.input(), ScanSettings{.bins = 20, .min_background_events = 70}).has_value());
  EXPECT_FALSE(best_window(c.input(), ScanSettings{.bins = 20, .min_width = 1.01}).has_value());
  const ScanGrid grid = make_grid(c.input(), 20);
  EXPECT_THROW(window_at(grid, ScanSettings{}, 5, 5), Error);
  EXPECT_THROW(window_at(grid, ScanSettings{}, 0, 21), Error);
  EXPECT_THROW(make_grid(c.input(), 0), Error);
  EXPECT_THROW(make_grid(ScanInput{{c.anomaly.p}, {}}, 20), Error);
  EXPECT_THROW(make_grid(ScanInput{{{}}, {{"qcd", {c.background[1].p}, 1.0}}}, 20), Error);
  const std::vector<float> bad_weights(3, 1.0f);
  EXPECT_THROW(make_grid(ScanInput{{c.anomaly.p, bad_weights}, {{"qcd", {c.background[1].p}, 1.0}}}, 20), Error);
  const std::vector<float> with_nan{0.5f, kNaN};
  EXPECT_THROW(make_grid(ScanInput{{with_nan}, {{"qcd", {c.background[1].p}, 1.0}}}, 20), Error);
  EXPECT_THROW(fixed_width_curve(grid, ScanSettings{}, 0.01), Error);  // rounds to zero bins of 20
}

#ifdef _OPENMP
TEST(Scan, SameAnswerWithAnyThreadCount) {
  std::mt19937 rng(31);
  const Case c = top_qcd_case(rng, 400, 400, 400, 10);  // coarse scores: many exactly tied windows
  const ScanSettings s = with_bins(kRules[0], 200);
  const ScanGrid grid = make_grid(c.input(), 200);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::optional<Window> one = best_window(grid, s);
  omp_set_num_threads(4);
  const std::optional<Window> four = best_window(grid, s);
  omp_set_num_threads(threads);
  ASSERT_TRUE(one && four);
  EXPECT_EQ(one->lo, four->lo);
  EXPECT_EQ(one->hi, four->hi);
  EXPECT_EQ(one->R, four->R);
}
#endif

// ---- the R error -------------------------------------------------------------------------------

TEST(ScanError, HandCalculation) {
  // Window [0.3, 0.6) of 10 bins holds 4 of 10 anomalies, 5 of 20 top, 8 of 40 qcd.
  Case c;
  c.anomaly.p.assign(4, 0.45f), c.anomaly.p.resize(10, 0.05f);
  c.background.push_back({"top", 73.4, std::vector<float>(5, 0.35f), {}, {}});
  c.background[0].p.resize(20, 0.95f);
  c.background.push_back({"qcd", 67600, std::vector<float>(8, 0.55f), {}, {}});
  c.background[1].p.resize(40, 0.15f);
  const Window w = window_at(make_grid(c.input(), 10), ScanSettings{}, 3, 6);
  const double b = 73.4 * 0.25 + 67600 * 0.2;
  const double R = std::sqrt(73.4 + 67600) * 0.4 / std::sqrt(b);
  // Binomial: var(e) = n (1 - e) / N^2.
  const double var_e_an = 4 * 0.6 / 100, var_e_top = 5 * 0.75 / 400, var_e_qcd = 8 * 0.8 / 1600;
  const double var_b = 73.4 * 73.4 * var_e_top + 67600.0 * 67600.0 * var_e_qcd;
  const double error = R * std::sqrt(var_e_an / (0.4 * 0.4) + var_b / (4 * b * b));
  EXPECT_NEAR(w.R, R, 1e-12 * R);
  EXPECT_NEAR(w.R_error, error, 1e-12 * error);
  EXPECT_EQ(w.n_anomaly, 4);
  EXPECT_EQ(w.n_background, (std::vector<int64_t>{5, 8}));
  EXPECT_FALSE(w.eligible);  // 13 background events < 100
}

// R of a fixed window over bootstrap resamples of every class: its spread should be R_error.
double bootstrap_spread(const Case& c, int bins, int lo, int hi, int resamples, std::mt19937& rng) {
  std::vector<double> Rs;
  auto resample = [&](const ClassData& d) {
    std::uniform_int_distribution<size_t> pick(0, d.p.size() - 1);
    ClassData r{d.name, d.sigma, {}, {}, {}};
    for (size_t i = 0; i < d.p.size(); ++i) {
      const size_t k = pick(rng);
      r.p.push_back(d.p[k]);
      if (!d.w.empty()) r.w.push_back(d.w[k]);
    }
    return r;
  };
  for (int k = 0; k < resamples; ++k) {
    Case r;
    r.anomaly = resample(c.anomaly);
    for (const ClassData& d : c.background) r.background.push_back(resample(d));
    Rs.push_back(window_at(make_grid(r.input(), bins), ScanSettings{}, lo, hi).R);
  }
  double mean = 0, var = 0;
  for (double x : Rs) mean += x / Rs.size();
  for (double x : Rs) var += (x - mean) * (x - mean) / (Rs.size() - 1);
  return std::sqrt(var);
}

TEST(ScanError, MatchesBootstrap) {
  std::mt19937 rng(123);
  Case c = top_qcd_case(rng, 1500, 2000, 2500);
  for (bool weighted : {false, true}) {
    if (weighted) {
      std::uniform_real_distribution<float> u(0.5f, 2.0f);
      for (ClassData* d : {&c.anomaly, &c.background[0], &c.background[1]}) {
        d->w.resize(d->p.size());
        for (float& x : d->w) x = u(rng);
      }
    }
    for (auto [lo, hi] : {std::pair{10, 25}, std::pair{20, 40}}) {
      const Window w = window_at(make_grid(c.input(), 50), ScanSettings{}, lo, hi);
      const double spread = bootstrap_spread(c, 50, lo, hi, 300, rng);
      // 300 resamples estimate a spread to about 4%; the linear propagation adds a little.
      EXPECT_NEAR(w.R_error, spread, 0.15 * spread) << "weighted " << weighted << " window " << lo << "," << hi;
    }
  }
}

// ---- reach and Asimov ----------------------------------------------------------------------------

// Asimov Z in long double, directly from its definition.
double reference_z(double s, double b) {
  const long double S = s, B = b;
  return static_cast<double>(std::sqrt(2 * ((S + B) * std::log1p(S / B) - S)));
}

TEST(Asimov, ZLimitsAndValues) {
  // s << b: Z -> s / sqrt(b), with Z / (s / sqrt(b)) = 1 - x/6 + O(x^2) for x = s / b.
  for (double b : {1e2, 1e6, 1e10})
    for (double s : {1e-3, 1.0}) {
      const double x = s / b;
      EXPECT_NEAR(asimov_z(s, b) / (s / std::sqrt(b)), 1 - x / 6, x * x + 1e-15) << s << " " << b;
    }
  EXPECT_NEAR(asimov_z(1e-3, 1e10) / (1e-3 / 1e5), 1.0, 1e-13);  // no cancellation at x = 1e-13
  EXPECT_NEAR(asimov_z(1, 1), std::sqrt(2 * (2 * std::log(2.0) - 1)), 1e-15);
  for (double x : {1e-3, 0.01, 0.049, 0.05, 0.3, 3.0, 300.0})
    EXPECT_NEAR(asimov_z(x * 17, 17), reference_z(x * 17, 17), 1e-10 * reference_z(x * 17, 17)) << x;
  EXPECT_EQ(asimov_z(0, 5), 0.0);
  EXPECT_TRUE(std::isinf(asimov_z(1, 0)));
  EXPECT_THROW(asimov_z(-1, 5), Error);
}

TEST(Asimov, SignalForZ) {
  for (double b : {1e-4, 0.1, 1.0, 37.0, 1e4, 1e9}) {
    const double s = asimov_signal(b, 5);
    EXPECT_NEAR(reference_z(s, b), 5.0, 1e-9) << b;
  }
  EXPECT_NEAR(asimov_signal(1e10, 5) / (5 * std::sqrt(1e10)), 1.0, 1e-4);
  EXPECT_NEAR(reference_z(asimov_signal(2.0, 3), 2.0), 3.0, 1e-9);
}

TEST(Reach, SigmaMinFormulas) {
  // Naive reach of the data README: sigma_B = 67,673.4 fb gives 23.7 fb at 3000 fb^-1.
  EXPECT_NEAR(sigma_min_naive(kSigmaQcdFb + kSigmaTtFb, 3000), 23.7, 0.05);
  EXPECT_DOUBLE_EQ(sigma_min(2.0, 100, 4), 5 * 10 / (2.0 * 2));
  EXPECT_THROW(sigma_min(0, 100, 4), Error);
}

// The smallest cross-section reaching Z = 5 over eligible windows, each solved by bisection.
double brute_asimov(const Case& c, int bins, const ScanSettings& s, double L) {
  double best = std::numeric_limits<double>::infinity();
  for (int lo = 0; lo < bins; ++lo)
    for (int hi = lo + 1; hi <= bins; ++hi) {
      const Brute w = brute_window(c, bins, lo, hi, s);
      if (!w.eligible || w.e_anomaly == 0) continue;
      double b = 0;
      for (size_t k = 0; k < c.background.size(); ++k) b += c.background[k].sigma * w.e_background[k];
      double low = 0, high = 1;
      while (reference_z(high * L * w.e_anomaly, L * b) < 5) high *= 2;
      for (int i = 0; i < 200; ++i) {
        const double mid = (low + high) / 2;
        (reference_z(mid * L * w.e_anomaly, L * b) < 5 ? low : high) = mid;
      }
      best = std::min(best, high);
    }
  return best;
}

TEST(Asimov, ReachMatchesBisectionAndBoundsEq8) {
  std::mt19937 rng(4);
  const Case c = top_qcd_case(rng, 203, 377, 411);
  for (int bins : {7, 20}) {
    const ScanSettings s = with_bins(kRules[1], bins);
    const ScanGrid grid = make_grid(c.input(), bins);
    const Window best = *best_window(grid, s);
    for (double L : {1e-3, 1.0, 3000.0}) {
      const std::optional<AsimovReach> reach = asimov_reach(grid, s, L);
      ASSERT_TRUE(reach.has_value());
      const double expected = brute_asimov(c, bins, s, L);
      EXPECT_NEAR(reach->sigma_min_fb, expected, 1e-9 * expected) << "bins " << bins << " L " << L;
      EXPECT_NEAR(asimov_z(reach->signal_events, reach->background_events), 5.0, 1e-9);
      // Z_Asimov < s / sqrt(b): never below Eq. 8's reach, and close to it once L b is large.
      const double eq8 = sigma_min(best.R, grid.sigma_b_fb, L);
      EXPECT_GE(reach->sigma_min_fb, eq8 * (1 - 1e-12));
      if (L == 3000.0) {
        EXPECT_NEAR(reach->sigma_min_fb, eq8, 1e-3 * eq8);
      }
    }
  }
}

// ---- 2-D ---------------------------------------------------------------------------------------

TEST(Scan2D, BestRectangleMatchesBruteForce) {
  std::mt19937 rng(606);
  for (int bins : {5, 9}) {
    Case c = top_qcd_case(rng, 151, 173, 199);
    c.background.push_back({"w", kSigmaWFb, draw_scores(rng, 163, Shape::middle), {}, {}});
    c.anomaly.p2 = draw_scores(rng, c.anomaly.p.size(), Shape::middle);
    c.background[0].p2 = draw_scores(rng, c.background[0].p.size(), Shape::low);
    c.background[1].p2 = draw_scores(rng, c.background[1].p.size(), Shape::low);
    c.background[2].p2 = draw_scores(rng, c.background[2].p.size(), Shape::high);
    c.background[1].w = dyadic_weights(rng, c.background[1].p.size());
    auto inside = [&](const ClassData& d, size_t i, int l1, int h1, int l2, int h2) {
      auto in = [&](double x, int lo, int hi) {
        return static_cast<double>(lo) / bins <= x && (x < static_cast<double>(hi) / bins || (hi == bins && x <= 1.0));
      };
      return in(d.p[i], l1, h1) && in(d.p2[i], l2, h2);
    };
    for (const ScanSettings& rule : kRules) {
      const ScanSettings s = with_bins(rule, bins);
      double best_R = -1;
      int best_key[4] = {-1, -1, -1, -1};
      std::vector<int64_t> best_counts;
      for (int l1 = 0; l1 < bins; ++l1)
        for (int h1 = l1 + 1; h1 <= bins; ++h1)
          for (int l2 = 0; l2 < bins; ++l2)
            for (int h2 = l2 + 1; h2 <= bins; ++h2) {
              auto fraction = [&](const ClassData& d, int64_t& n) {
                double in = 0, total = 0;
                n = 0;
                for (size_t i = 0; i < d.p.size(); ++i) {
                  const double w = d.w.empty() ? 1.0 : d.w[i];
                  total += w;
                  if (inside(d, i, l1, h1, l2, h2)) in += w, ++n;
                }
                return in / total;
              };
              int64_t n_an = 0, n_bkg = 0;
              std::vector<int64_t> counts;
              const double e_an = fraction(c.anomaly, n_an);
              double b = 0, sigma_b = 0;
              counts.push_back(n_an);
              for (const ClassData& d : c.background) {
                int64_t n = 0;
                b += d.sigma * fraction(d, n);
                sigma_b += d.sigma;
                n_bkg += n;
                counts.push_back(n);
              }
              const bool eligible = b > 0 && n_bkg >= s.min_background_events &&
                                    static_cast<double>(h1 - l1) / bins >= s.min_width - 1e-12 &&
                                    static_cast<double>(h2 - l2) / bins >= s.min_width - 1e-12;
              if (!eligible) continue;
              const double R = std::sqrt(sigma_b) * e_an / std::sqrt(b);
              if (best_key[0] < 0 || R > best_R) {
                best_R = R;
                best_key[0] = l1, best_key[1] = h1, best_key[2] = l2, best_key[3] = h2;
                best_counts = counts;
              }
            }
      const std::optional<Window2D> got = best_window_2d(c.input_2d(), s);
      ASSERT_EQ(got.has_value(), best_key[0] >= 0);
      if (!got) continue;
      EXPECT_EQ(got->lo1, best_key[0]);
      EXPECT_EQ(got->hi1, best_key[1]);
      EXPECT_EQ(got->lo2, best_key[2]);
      EXPECT_EQ(got->hi2, best_key[3]);
      EXPECT_NEAR(got->R, best_R, 1e-12 * best_R);
      std::vector<int64_t> counts{got->n_anomaly};
      counts.insert(counts.end(), got->n_background.begin(), got->n_background.end());
      EXPECT_EQ(counts, best_counts);
    }
    const ScanGrid2D grid = make_grid_2d(c.input_2d(), bins);
    EXPECT_EQ(window_at_2d(grid, ScanSettings{}, 0, bins, 0, bins).R, 1.0);
  }
}

// ---- the report ----------------------------------------------------------------------------------

std::vector<std::string> read_lines(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ScanReport, ContentsAndCsv) {
  std::mt19937 rng(12);
  Case c = top_qcd_case(rng, 800, 1500, 1500);
  // No background at all above 0.9: those windows have no R, written null / nan.
  for (float& p : c.background[0].p) p = std::min(p, 0.85f);
  for (float& p : c.background[1].p) p = std::min(p, 0.85f);
  const ScanSettings s{.bins = 100, .min_background_events = 100, .min_width = 0.02};
  const std::vector<double> luminosities = log_grid(100, 3000, 4);
  ASSERT_EQ(luminosities.size(), 4u);
  EXPECT_EQ(luminosities.back(), 3000.0);
  const nlohmann::json report = scan_report(c.input(), s, kDefaultWidths, luminosities);

  const Window best = *best_window(c.input(), s);
  EXPECT_EQ(report["R_max"].get<double>(), best.R);
  EXPECT_EQ(report["R_max_error"].get<double>(), best.R_error);
  EXPECT_EQ(report["best"]["background"]["qcd"]["n"].get<int64_t>(), best.n_background[1]);
  EXPECT_EQ(report["settings"]["min_background_events"].get<int64_t>(), 100);
  EXPECT_EQ(report["fixed_width"].size(), 3u);
  EXPECT_EQ(report["fixed_width"][1]["points"].size(), 91u);  // width 10 bins of 100
  const double sigma_b = kSigmaQcdFb + kSigmaTtFb;
  for (const nlohmann::json& row : report["reach"]) {
    const double L = row["luminosity"].get<double>();
    EXPECT_NEAR(row["sigma_min"].get<double>(), 5 * std::sqrt(sigma_b) / (best.R * std::sqrt(L)), 1e-9);
    EXPECT_NEAR(row["sigma_min_naive"].get<double>(), 5 * std::sqrt(sigma_b / L), 1e-9);
    EXPECT_GE(row["sigma_min_asimov"].get<double>(), row["sigma_min"].get<double>() * (1 - 1e-12));
  }

  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("aware_test_scan_" + std::to_string(rng()));
  write_scan_csv(report, dir, "eft");
  const std::vector<std::string> curves = read_lines(dir / "eft_curves.csv");
  ASSERT_FALSE(curves.empty());
  EXPECT_EQ(curves[0], "width,centre,lo,hi,R,eligible");
  EXPECT_EQ(curves.size(), 1u + (100 - 8 + 1) + (100 - 10 + 1) + (100 - 12 + 1) + 100);
  EXPECT_EQ(curves.back().rfind("below,0.5,0,1,1,1", 0), 0u);  // [0, 1]: R = 1, eligible
  EXPECT_NE(std::find_if(curves.begin(), curves.end(),
                         [](const std::string& l) { return l.find(",nan,0") != std::string::npos; }),
            curves.end());
  const std::vector<std::string> reach = read_lines(dir / "eft_reach.csv");
  EXPECT_EQ(reach[0], "luminosity,sigma_min,sigma_min_naive,sigma_min_asimov");
  EXPECT_EQ(reach.size(), 5u);

  // The dumped report (NaN written null) gives the same files; nothing temporary is left behind.
  const nlohmann::json parsed = nlohmann::json::parse(report.dump());
  const std::filesystem::path again = dir / "again";
  write_scan_csv(parsed, again, "eft");
  EXPECT_EQ(read_lines(again / "eft_curves.csv"), curves);
  EXPECT_EQ(read_lines(again / "eft_reach.csv"), reach);
  size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) files += entry.is_regular_file();
  EXPECT_EQ(files, 4u);
  std::filesystem::remove_all(dir);

  EXPECT_THROW(write_scan_csv(nlohmann::json::object(), dir, "x"), Error);
}

TEST(ScanReport, TwoDimensional) {
  std::mt19937 rng(21);
  Case c = top_qcd_case(rng, 300, 300, 300);
  c.background.push_back({"w", kSigmaWFb, draw_scores(rng, 300, Shape::middle), {}, {}});
  c.anomaly.p2 = draw_scores(rng, 300, Shape::middle);
  for (ClassData& d : c.background) d.p2 = draw_scores(rng, 300, Shape::low);
  const ScanSettings s{.bins_2d = 10, .min_background_events = 50};
  const std::vector<double> L{3000};
  const nlohmann::json report = scan_report_2d(c.input_2d(), s, L);
  EXPECT_EQ(report["R_max"].get<double>(), best_window_2d(c.input_2d(), s)->R);
  EXPECT_EQ(report["settings"]["background"].size(), 3u);
  EXPECT_NEAR(report["settings"]["sigma_B_fb"].get<double>(), kSigmaQcdFb + kSigmaTtFb + kSigmaWFb, 1e-9);
}

}  // namespace
}  // namespace aware
