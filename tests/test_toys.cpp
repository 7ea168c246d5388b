// Pseudo-experiments for the global significance (kernels/toys.h): the Poisson draws against their
// moments and probabilities, the local statistic against a direct sum, the pruned scan against brute
// force over every window, background-only global p-values uniform (Kolmogorov-Smirnov), and a fixed
// window's global p-value equal to its local one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/error.h"
#include "kernels/poisson.h"
#include "kernels/scan.h"
#include "kernels/toys.h"

namespace aware {
namespace {

// Scores of a background near 0 and 1 (qcd, top) and an anomaly in the middle, as a scan grid.
struct Scores {
  std::vector<float> top, qcd, anomaly;
};
Scores make_scores(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::gamma_distribution<double> g2(2.0, 1.0), g5(5.0, 1.0);
  // Beta(a, b) from two gammas.
  const auto beta = [&](std::gamma_distribution<double>& a, std::gamma_distribution<double>& b) {
    const double x = a(rng), y = b(rng);
    return float(x / (x + y));
  };
  Scores s;
  for (int i = 0; i < n; ++i) {
    s.qcd.push_back(beta(g2, g5));
    s.top.push_back(beta(g5, g2));
    s.anomaly.push_back(0.35f + 0.3f * beta(g5, g5));
  }
  return s;
}

ScanGrid make_scan_grid(const Scores& s, int bins) {
  const ScanInput in{{s.anomaly, {}}, {{"top", {s.top, {}}, kSigmaTtFb}, {"qcd", {s.qcd, {}}, kSigmaQcdFb}}};
  return make_grid(in, bins);
}

// P(X >= N) for X ~ Poisson(B), summing the tail's terms upward from the probability of N (in long
// double, from its logarithm: e^-B alone underflows for the B of real windows).
double tail_by_sum(int64_t n, double b) {
  const long double lb = b;
  long double term = std::exp(-lb + (long double)n * std::log(lb) - std::lgamma((long double)n + 1)), sum = 0;
  for (int64_t j = n; term > 1e-22L * sum || j < b; ++j) {
    sum += term;
    term *= lb / (long double)(j + 1);
  }
  return double(sum);
}

TEST(Poisson, DrawsHaveTheMomentsAndProbabilitiesOfPoisson) {
  for (double mean : {0.0, 0.3, 2.5, 9.99, 10.0, 37.5, 1e4, 1e8}) {
    const PoissonConstants c = poisson_constants(mean);
    const int n = 40000;
    std::vector<int64_t> x(n);
    for (int i = 0; i < n; ++i) x[size_t(i)] = poisson_draw(c, 7, 3, uint32_t(i), 0);
    double m = 0, v = 0;
    for (int64_t k : x) m += double(k);
    m /= n;
    for (int64_t k : x) v += (double(k) - m) * (double(k) - m);
    v /= n - 1;
    if (mean == 0) {
      EXPECT_EQ(m, 0);
      continue;
    }
    // Six standard errors: of the mean, sqrt(mean / n); of the variance, sqrt((mean + 2 mean^2) / n).
    EXPECT_NEAR(m, mean, 6 * std::sqrt(mean / n)) << "mean " << mean;
    EXPECT_NEAR(v, mean, 6 * std::sqrt((mean + 2 * mean * mean) / n)) << "mean " << mean;
    if (mean < 50) {  // chi-square against the probabilities, cells with >= 20 expected
      std::vector<int64_t> count(200, 0);
      for (int64_t k : x) ++count[size_t(std::min<int64_t>(k, 199))];
      double chi2 = 0, p = std::exp(-mean);
      int cells = 0;
      for (int k = 0; k < 199; ++k, p *= mean / k) {
        if (n * p < 20) continue;
        chi2 += (count[size_t(k)] - n * p) * (count[size_t(k)] - n * p) / (n * p);
        ++cells;
      }
      EXPECT_LT(chi2, cells + 6 * std::sqrt(2.0 * cells)) << "mean " << mean << ", " << cells << " cells";
    }
  }
  // A pure function of its counter: the same draw again, another with another counter.
  const PoissonConstants c = poisson_constants(123.4);
  EXPECT_EQ(poisson_draw(c, 1, 2, 3, 4), poisson_draw(c, 1, 2, 3, 4));
  int same = 0;
  for (uint32_t i = 0; i < 100; ++i) same += poisson_draw(c, 1, 2, i, 4) == poisson_draw(c, 1, 2, i, 5);
  EXPECT_LT(same, 20);
}

TEST(Toys, TheLocalStatisticIsThePoissonTail) {
  for (double b : {0.2, 3.0, 17.5, 250.0, 4000.0})
    for (double z : {0.5, 2.0, 4.0, 7.0}) {
      const int64_t n = int64_t(std::ceil(b + z * std::sqrt(b) + 1));
      const double p = tail_by_sum(n, b);
      if (p < 1e-15) continue;  // the sum's own rounding
      EXPECT_NEAR(local_statistic(n, b), -std::log(p), 1e-9 * std::max(1.0, -std::log(p))) << n << " over " << b;
    }
  EXPECT_EQ(local_statistic(10, 10.0), 0.0);  // no excess
  EXPECT_EQ(local_statistic(3, 10.0), 0.0);
  // Far tails: finite and growing.
  const double t1 = local_statistic(2000, 1000.0), t2 = local_statistic(3000, 1000.0);
  EXPECT_TRUE(std::isfinite(t1) && std::isfinite(t2) && t2 > t1 && t1 > 100) << t1 << " " << t2;
}

// The pruned scan gives what evaluating t exactly on every eligible window gives, window included.
TEST(Toys, ThePrunedScanEqualsBruteForce) {
  const Scores s = make_scores(3000, 11);
  const ScanGrid grid = make_scan_grid(s, 120);
  ScanSettings settings;
  settings.min_background_events = 30;
  for (double luminosity : {0.01, 1.0, 300.0}) {
    const ToyModel m = toy_model(grid, settings, luminosity);
    ASSERT_GT(m.windows, 1000);
    for (double signal : {0.0, 5.0 / luminosity + 0.2 * std::sqrt(67673.4 / luminosity)}) {
      std::vector<int64_t> counts(size_t(m.bins));
      for (int64_t toy = 0; toy < 25; ++toy) {
        draw_toy(m, {3, 1, signal, 0, 0}, toy, counts);
        const ToyMax got = scan_counts(m, counts);
        ToyMax want;
        bool found = false;
        std::vector<int64_t> n(size_t(m.bins) + 1, 0);
        for (int k = 0; k < m.bins; ++k) n[size_t(k) + 1] = n[size_t(k)] + counts[size_t(k)];
        for (int lo = 0; lo < m.bins; ++lo)
          for (int hi = m.first_hi[size_t(lo)]; hi <= m.last_hi[size_t(lo)]; ++hi) {
            const int64_t obs = n[size_t(hi)] - n[size_t(lo)];
            const double exp = m.background_prefix[size_t(hi)] - m.background_prefix[size_t(lo)];
            if (!(double(obs) > exp)) continue;
            const double t = local_statistic(obs, exp);
            if (!found || t > want.t) want = {t, lo, hi, obs, exp}, found = true;
          }
        EXPECT_EQ(got.t, want.t) << "L " << luminosity << " toy " << toy;
        EXPECT_EQ(got.lo, want.lo);
        EXPECT_EQ(got.hi, want.hi);
      }
    }
  }
}

// Background-only toys judged against other background-only toys: global p-values uniform.
TEST(Toys, BackgroundOnlyGlobalPValuesAreUniform) {
  const Scores s = make_scores(4000, 5);
  const ScanGrid grid = make_scan_grid(s, 60);
  ScanSettings settings;
  settings.min_background_events = 40;
  const ToyModel m = toy_model(grid, settings, 50.0);
  std::vector<double> reference;
  for (const ToyMax& t : run_toys(m, {9, 0, 0.0, 0, 3000})) reference.push_back(t.t);
  std::sort(reference.begin(), reference.end());
  std::vector<double> p;
  for (const ToyMax& t : run_toys(m, {9, 7, 0.0, 0, 600})) p.push_back(global_p(reference, t.t).p);
  std::sort(p.begin(), p.end());
  double d = 0;  // Kolmogorov-Smirnov distance to the uniform distribution
  for (size_t i = 0; i < p.size(); ++i)
    d = std::max({d, std::abs(p[i] - double(i) / p.size()), std::abs(p[i] - double(i + 1) / p.size())});
  // 1.95 / sqrt(600): the 0.1% critical value; plus the reference's own resolution.
  EXPECT_LT(d, 1.95 / std::sqrt(600.0) + 1.0 / 3000) << "KS distance";
  // And a signal is seen: its median global p is small.
  std::vector<double> injected;
  for (const ToyMax& t : run_toys(m, {9, 8, 100.0, 0, 101})) injected.push_back(global_p(reference, t.t).p);
  std::nth_element(injected.begin(), injected.begin() + 50, injected.end());
  EXPECT_LT(injected[50], 0.05);
}

// A window fixed in advance pays no trials factor: its global p-value is its local one.
TEST(Toys, AFixedWindowsGlobalPValueIsItsLocalOne) {
  const Scores s = make_scores(3000, 2);
  const ScanGrid grid = make_scan_grid(s, 100);
  const ToyModel scanned = toy_model(grid, ScanSettings{}, 20.0);
  const ToyModel m = fixed_window_model(scanned, 30, 70);
  ASSERT_EQ(m.windows, 1);
  const int toys = 20000;
  std::vector<double> t;
  for (const ToyMax& x : run_toys(m, {4, 0, 0.0, 0, toys})) t.push_back(x.t);
  std::sort(t.begin(), t.end());
  const double expected = m.background_prefix[70] - m.background_prefix[30];
  for (double z : {1.0, 2.0, 3.0}) {
    const int64_t n = int64_t(std::ceil(expected + z * std::sqrt(expected)));
    const double local = tail_by_sum(n, expected);
    const GlobalP g = global_p(t, local_statistic(n, expected));
    EXPECT_NEAR(g.p, local, 4 * std::sqrt(local * (1 - local) / toys) + 1e-12) << "z " << z;
  }
  EXPECT_THROW(fixed_window_model(scanned, 70, 30), Error);
}

// Resampling the simulation: each bin's counts keep their mean and gain the simulation's variance,
// mu + sum_c mu_c^2 / n_c (a Poisson compound).
TEST(Toys, ResampledBackgroundAddsTheSimulationsVariance) {
  const Scores s = make_scores(500, 9);
  const ScanGrid grid = make_scan_grid(s, 20);
  const ToyModel m = toy_model(grid, ScanSettings{}, 0.3);
  ToyDraws d{2, 0, 0.0, 0, 0};
  d.resample_background = true;
  const int toys = 6000;
  std::vector<int64_t> counts(20);
  std::vector<double> sum(20, 0), sum2(20, 0);
  for (int t = 0; t < toys; ++t) {
    draw_toy(m, d, t, counts);
    for (size_t k = 0; k < 20; ++k) sum[k] += double(counts[k]), sum2[k] += double(counts[k]) * double(counts[k]);
  }
  int checked = 0;
  for (size_t k = 0; k < 20; ++k) {
    double want_var = m.background[k];
    for (size_t c = 0; c < m.class_events.size(); ++c)
      if (m.class_events[c][k] > 0) want_var += m.class_background[c][k] * m.class_background[c][k] / double(m.class_events[c][k]);
    if (m.background[k] < 50) continue;
    const double mean = sum[k] / toys, var = sum2[k] / toys - mean * mean;
    EXPECT_NEAR(mean, m.background[k], 5 * std::sqrt(want_var / toys)) << "bin " << k;
    EXPECT_NEAR(var, want_var, 0.15 * want_var) << "bin " << k;
    EXPECT_GT(want_var, 2 * m.background[k]);  // the simulation dominates here: the test can tell
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(Toys, GlobalPAndZ) {
  const std::vector<double> t{0.5, 1.0, 1.0, 2.0};
  const GlobalP a = global_p(t, 1.0);
  EXPECT_EQ(a.at_or_above, 3);
  EXPECT_DOUBLE_EQ(a.p, 0.75);
  const GlobalP b = global_p(t, 9.0);
  EXPECT_EQ(b.p, 0);
  EXPECT_TRUE(std::isinf(b.z));
  EXPECT_DOUBLE_EQ(b.p_upper, 0.75);  // 3 / 4
  EXPECT_NEAR(z_of_p(0.5), 0.0, 1e-12);
  EXPECT_NEAR(z_of_p(2.866515718791939e-7), 5.0, 1e-9);
  EXPECT_NEAR(z_of_p(1.3498980316301e-3), 3.0, 1e-9);
  // Through p's underflow: continuous, and Z^2 / 2 ~ t.
  EXPECT_NEAR(z_of_t(699.999), z_of_t(700.001), 1e-4);
  EXPECT_NEAR(z_of_t(5000) * z_of_t(5000) / 2 / 5000, 1.0, 2e-3);
  EXPECT_NEAR(z_of_t(-std::log(2.866515718791939e-7)), 5.0, 1e-9);
}

}  // namespace
}  // namespace aware
