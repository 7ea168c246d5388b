#include "kernels/toys.h"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/special_functions/gamma.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/error.h"
#include "kernels/poisson.h"

namespace aware {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

ToyModel toy_model(const ScanGrid& g, const ScanSettings& settings, double luminosity) {
  check(std::isfinite(luminosity) && luminosity > 0, "toys: the luminosity must be a positive number (fb^-1)");
  ToyModel m;
  m.bins = g.bins;
  m.luminosity = luminosity;
  m.background.assign(size_t(g.bins), 0.0);
  m.signal_share.assign(size_t(g.bins), 0.0);
  m.background_prefix.assign(size_t(g.bins) + 1, 0.0);
  m.class_background.assign(g.background.size(), std::vector<double>(size_t(g.bins)));
  m.class_events.assign(g.background.size(), std::vector<int64_t>(size_t(g.bins)));
  for (int k = 0; k < g.bins; ++k) {
    double b = 0;
    for (size_t c = 0; c < g.background.size(); ++c) {  // in class order, as b of the scan
      const double share = g.sigma_fb[c] * ((g.background[c].weight[k + 1] - g.background[c].weight[k]) / g.background[c].weight.back());
      b += share;
      m.class_background[c][size_t(k)] = luminosity * share;
      m.class_events[c][size_t(k)] = g.background[c].count[k + 1] - g.background[c].count[k];
    }
    m.background[size_t(k)] = luminosity * b;
    m.background_prefix[size_t(k) + 1] = m.background_prefix[size_t(k)] + m.background[size_t(k)];
    m.signal_share[size_t(k)] = (g.anomaly.weight[k + 1] - g.anomaly.weight[k]) / g.anomaly.weight.back();
  }
  // Eligibility grows with hi (more events, more background): per lo, the first eligible hi.
  const int narrowest = std::max(1, min_width_bins(settings.min_width, g.bins));
  m.first_hi.assign(size_t(g.bins), g.bins + 1);
  m.last_hi.assign(size_t(g.bins), g.bins);
  for (int lo = 0; lo < g.bins; ++lo) {
    for (int hi = lo + narrowest; hi <= g.bins; ++hi) {
      int64_t events = 0;
      for (const ClassPrefix& c : g.background) events += c.count[size_t(hi)] - c.count[size_t(lo)];
      if (events >= settings.min_background_events && m.background_prefix[size_t(hi)] - m.background_prefix[size_t(lo)] > 0) {
        m.first_hi[size_t(lo)] = hi;
        break;
      }
    }
    m.windows += std::max(0, m.last_hi[size_t(lo)] - m.first_hi[size_t(lo)] + 1);
  }
  return m;
}

ToyModel fixed_window_model(const ToyModel& scanned, int lo, int hi) {
  check(0 <= lo && lo < hi && hi <= scanned.bins, "toys: window [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                                      ") outside the grid of " + std::to_string(scanned.bins) + " bins");
  check(scanned.background_prefix[size_t(hi)] - scanned.background_prefix[size_t(lo)] > 0,
        "toys: the fixed window holds no background");
  ToyModel m = scanned;
  m.first_hi.assign(size_t(m.bins), m.bins + 1);
  m.last_hi.assign(size_t(m.bins), m.bins);
  m.first_hi[size_t(lo)] = m.last_hi[size_t(lo)] = hi;
  m.windows = 1;
  return m;
}

double local_statistic(int64_t observed, double expected) {
  const double n = double(observed);
  if (!(n > expected)) return 0;
  check(expected > 0, "toys: a window's expectation must be positive");
  // P(X >= N) for X ~ Poisson(B) is the regularised lower incomplete gamma function P(N, B); in long
  // double it underflows only past t ~ 11000.
  using namespace boost::math::policies;
  using Policy = policy<underflow_error<ignore_error>, denorm_error<ignore_error>, promote_double<false>>;
  const long double p = boost::math::gamma_p(static_cast<long double>(observed), static_cast<long double>(expected), Policy());
  if (p > 0) return -double(std::log(p));
  // Beyond: the bracket's lower side, -ln Phibar(w(N - 1)), by the normal tail's asymptotic series.
  const double w = std::sqrt(2 * excess_q(n - 1, expected));
  return w * w / 2 + std::log(w * std::sqrt(2 * M_PI)) - std::log1p(-1 / (w * w) + 3 / (w * w * w * w));
}

std::vector<PoissonConstants> toy_constants(const ToyModel& m, const ToyDraws& d, int64_t toy) {
  const double signal_events = d.signal_fb * m.luminosity;
  std::vector<PoissonConstants> constants(static_cast<size_t>(m.bins));
  for (int k = 0; k < m.bins; ++k) {
    double mean = m.background[size_t(k)];
    if (d.resample_background) {  // the simulation redrawn first, on counters of their own (bit 31)
      mean = 0;
      for (size_t c = 0; c < m.class_events.size(); ++c) {
        const int64_t n = m.class_events[c][size_t(k)];
        if (n == 0) continue;
        const int64_t redrawn = poisson_draw(poisson_constants(double(n)), d.seed, uint32_t(k), uint32_t(toy),
                                             d.stream ^ 0x80000000u ^ (uint32_t(c) << 24));
        mean += m.class_background[c][size_t(k)] * double(redrawn) / double(n);
      }
    }
    constants[size_t(k)] = poisson_constants(mean + signal_events * m.signal_share[size_t(k)]);
  }
  return constants;
}

namespace {

void draw_with(const std::vector<PoissonConstants>& constants, const ToyDraws& d, int64_t toy, std::span<int64_t> counts) {
  for (size_t k = 0; k < constants.size(); ++k)
    counts[k] = poisson_draw(constants[k], d.seed, uint32_t(k), uint32_t(toy), d.stream);
}

}  // namespace

void draw_toy(const ToyModel& m, const ToyDraws& d, int64_t toy, std::span<int64_t> counts) {
  check(counts.size() == size_t(m.bins), "toys: counts for " + std::to_string(counts.size()) + " bins, the model has " +
                                             std::to_string(m.bins));
  draw_with(toy_constants(m, d, toy), d, toy, counts);
}

ToyMax scan_counts(const ToyModel& m, std::span<const int64_t> counts) {
  const int bins = m.bins;
  thread_local std::vector<int64_t> n;
  thread_local std::vector<double> row_best;
  n.assign(size_t(bins) + 1, 0);
  for (int k = 0; k < bins; ++k) n[size_t(k) + 1] = n[size_t(k)] + counts[size_t(k)];
  const std::vector<double>& B = m.background_prefix;
  // Pass 1: q(N) of every window with an excess; each row's largest, and the top window.
  row_best.assign(size_t(bins), -kInf);
  double top_q = -kInf;
  int top_lo = -1, top_hi = -1;
  for (int lo = 0; lo < bins; ++lo) {
    double best = -kInf;
    int best_hi = -1;
    for (int hi = m.first_hi[size_t(lo)]; hi <= m.last_hi[size_t(lo)]; ++hi) {
      const double observed = double(n[size_t(hi)] - n[size_t(lo)]), expected = B[size_t(hi)] - B[size_t(lo)];
      if (!(observed > expected)) continue;
      const double q = excess_q(observed, expected);
      if (q > best) best = q, best_hi = hi;
    }
    row_best[size_t(lo)] = best;
    if (best > top_q) top_q = best, top_lo = lo, top_hi = best_hi;
  }
  if (top_lo < 0) return {};  // no excess anywhere
  // The top window's w(N - 1): every window below it in w(N) has a smaller t.
  const int64_t top_n = n[size_t(top_hi)] - n[size_t(top_lo)];
  const double top_b = B[size_t(top_hi)] - B[size_t(top_lo)];
  const double threshold = candidate_threshold(top_n, top_b);
  // Pass 2: the exact t of the candidates, in increasing (lo, hi): strict > keeps the smallest on ties.
  ToyMax result;
  bool found = false;
  for (int lo = 0; lo < bins; ++lo) {
    if (row_best[size_t(lo)] < threshold || row_best[size_t(lo)] == -kInf) continue;
    for (int hi = m.first_hi[size_t(lo)]; hi <= m.last_hi[size_t(lo)]; ++hi) {
      const int64_t observed = n[size_t(hi)] - n[size_t(lo)];
      const double expected = B[size_t(hi)] - B[size_t(lo)];
      if (!(double(observed) > expected) || excess_q(double(observed), expected) < threshold) continue;
      const double t = local_statistic(observed, expected);
      if (!found || t > result.t) result = {t, lo, hi, observed, expected}, found = true;
    }
  }
  return result;
}

std::vector<ToyMax> run_toys(const ToyModel& m, const ToyDraws& d) {
  check(d.count >= 0 && d.first >= 0 && d.first + d.count <= (int64_t(1) << 32),
        "toys: toy numbers must lie in [0, 2^32)");
  std::vector<ToyMax> out(size_t(d.count));
  // The bins' constants once for all toys, unless each toy redraws the simulation behind them.
  const std::vector<PoissonConstants> shared = d.resample_background ? std::vector<PoissonConstants>{} : toy_constants(m, d);
#pragma omp parallel
  {
    std::vector<int64_t> counts(size_t(m.bins));
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < d.count; ++i) {
      if (d.resample_background)
        draw_toy(m, d, d.first + i, counts);
      else
        draw_with(shared, d, d.first + i, counts);
      out[size_t(i)] = scan_counts(m, counts);
    }
  }
  return out;
}

double z_of_p(double p) {
  check(p > 0 && p <= 1, "z_of_p: p must be in (0, 1]");
  if (p == 1) return -kInf;
  return boost::math::quantile(boost::math::complement(boost::math::normal_distribution<double>(), p));
}

double z_of_t(double t) {
  check(t >= 0, "z_of_t: t must be >= 0");
  if (t < 700) return z_of_p(std::exp(-t));
  // -ln Phibar(z) = z^2 / 2 + ln(z sqrt(2 pi)) - ln(1 - 1 / z^2 + 3 / z^4) + O(z^-6): Newton from sqrt(2 t).
  double z = std::sqrt(2 * t);
  for (int i = 0; i < 50; ++i) {
    const double f = z * z / 2 + std::log(z * std::sqrt(2 * M_PI)) - std::log1p(-1 / (z * z) + 3 / (z * z * z * z)) - t;
    const double next = z - f / (z + 1 / z);
    if (std::abs(next - z) <= 1e-15 * z) return next;
    z = next;
  }
  return z;
}

GlobalP global_p(std::span<const double> sorted, double t) {
  check(!sorted.empty(), "toys: no background-only toys");
  GlobalP g;
  g.toys = int64_t(sorted.size());
  g.at_or_above = int64_t(sorted.end() - std::lower_bound(sorted.begin(), sorted.end(), t));
  const double n = double(g.toys);
  g.p = double(g.at_or_above) / n;
  g.p_error = std::sqrt(g.p * (1 - g.p) / n);
  g.p_upper = g.at_or_above == 0 ? 3.0 / n : g.p;
  g.z = g.at_or_above == 0 ? kInf : z_of_p(g.p);
  g.z_lower = z_of_p(std::min(1.0, g.p_upper));
  return g;
}

}  // namespace aware
