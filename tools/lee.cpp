#include "tools/lee.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/error.h"
#include "kernels/toys.h"
#include "tools/analysis.h"

namespace aware {
namespace {

using json = nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

// JSON has no infinity: a significance beyond what the toys resolve is written as null beside the
// bound it is known to exceed.
json number(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

double quantile(std::vector<double> sorted, double q) {  // of sorted values, nearest rank
  if (sorted.empty()) return std::nan("");
  const size_t i = std::min(sorted.size() - 1, size_t(q * double(sorted.size())));
  return sorted[i];
}

json histogram_json(const std::vector<double>& sorted, int bins) {
  const double top = sorted.empty() ? 1.0 : std::max(sorted.back(), 1e-9);
  json edges = json::array(), counts = json::array();
  for (int i = 0; i <= bins; ++i) edges.push_back(top * i / bins);
  std::vector<int64_t> n(size_t(bins), 0);
  for (double t : sorted) ++n[size_t(std::min(bins - 1, int(t / top * bins)))];
  for (int64_t c : n) counts.push_back(c);
  return {{"edges", edges}, {"counts", counts}};
}

// Where the median global Z crosses z, interpolated in log sigma between the injected points.
json crossing(const std::vector<double>& signals, const std::vector<double>& median_z, double z, double resolved_up_to) {
  for (size_t i = 0; i < signals.size(); ++i) {
    if (!(median_z[i] >= z)) continue;
    if (!std::isfinite(median_z[i]) || i == 0 || !std::isfinite(median_z[i - 1]))
      return {{"value", nullptr}, {"below", signals[i]},
              {"note", i == 0 ? "the smallest injected cross-section already reaches it"
                              : "the toys resolve a global Z up to " + std::to_string(resolved_up_to) +
                                    ": more toys are needed to place it"}};
    const double f = (z - median_z[i - 1]) / (median_z[i] - median_z[i - 1]);
    return {{"value", std::exp(std::log(signals[i - 1]) + f * (std::log(signals[i]) - std::log(signals[i - 1])))}};
  }
  return {{"value", nullptr}, {"note", "not reached by the largest injected cross-section"}};
}

// The toys on the device the settings name (the same maxima on either).
std::vector<ToyMax> toys_on(const ToyModel& model, const ToyDraws& draws, bool gpu) {
#if defined(AWARE_CUDA)
  if (gpu) return cuda::run_toys(model, draws);
#endif
  (void)gpu;
  return run_toys(model, draws);
}

// p_global(t) = e^-t (a + b sqrt(t)), an asymptotic form, through the toys' p in their tail: where 5% of
// them lie above (t1) and where `tail` toys do (t2); checked between the two (in toys above).
struct TailFit {
  bool valid = false;
  double a = 0, b = 0, t1 = 0, t2 = 0, t_check = 0, p_check_toys = 0, p_check_fit = 0;
};
TailFit fit_tail(const std::vector<double>& sorted, int64_t tail) {
  TailFit f;
  const int64_t n = int64_t(sorted.size());
  if (n < 40 * tail) return f;  // the 5% point at least 2 tails above the last
  f.t1 = sorted[size_t(n - n / 20)];
  f.t2 = sorted[size_t(n - tail)];
  if (!(f.t1 > 0 && f.t2 > f.t1)) return f;
  const double p1 = global_p(sorted, f.t1).p, p2 = global_p(sorted, f.t2).p;
  const double y1 = p1 * std::exp(f.t1), y2 = p2 * std::exp(f.t2), s1 = std::sqrt(f.t1), s2 = std::sqrt(f.t2);
  f.b = (y2 - y1) / (s2 - s1);
  f.a = y1 - f.b * s1;
  f.valid = std::isfinite(f.a) && std::isfinite(f.b) && f.b >= 0 && f.a + f.b * s2 > 0;
  const int64_t mid = std::max<int64_t>(tail + 1, int64_t(std::sqrt(double(n) / 20 * double(tail))));
  f.t_check = sorted[size_t(n - mid)];
  f.p_check_toys = global_p(sorted, f.t_check).p;
  f.p_check_fit = std::exp(-f.t_check) * (f.a + f.b * std::sqrt(f.t_check));
  return f;
}

// The background-only distribution of the largest t, and the global p of a t against it: counted in
// the toys; beyond them (fewer than kTail above t) the tail extrapolated by the form of the expected
// Euler characteristic of a 2-D scan's excursion set (Vitells & Gross 2011, with u = 2t),
//   p_global(t) = e^-t (a + b sqrt(t)),
// a and b fitted where the toys measure p_global's tail. For a window fixed in advance (`exact`) the
// global p is the local one, e^-t.
class Reference {
 public:
  static constexpr int64_t kTail = 10;
  Reference(std::vector<double> t, bool exact) : sorted_(std::move(t)), exact_(exact) {
    std::sort(sorted_.begin(), sorted_.end());
    if (!exact_) tail_ = fit_tail(sorted_, kTail);
    resolved_ = global_p(sorted_, kInf).z_lower;
  }
  GlobalP global(double t) const {
    GlobalP g;
    if (exact_) {
      g.toys = int64_t(sorted_.size());
      g.p = g.p_upper = std::exp(-t);
      g.z = g.z_lower = z_of_t(t);
      return g;
    }
    g = global_p(sorted_, t);
    if (g.at_or_above < kTail && tail_.valid && t > tail_.t2) {
      const double factor = tail_.a + tail_.b * std::sqrt(t);
      g.p = g.p_upper = std::exp(-t) * factor;
      g.p_error = std::nan("");
      g.z = g.z_lower = z_of_t(t - std::log(factor));
    }
    return g;
  }
  // The global Z the toys measure; the one up to which an answer exists (beyond: the tail fit).
  double resolved() const { return resolved_; }
  double reach() const { return exact_ || tail_.valid ? kInf : resolved_; }
  const std::vector<double>& sorted() const { return sorted_; }
  const TailFit& tail() const { return tail_; }
  bool exact() const { return exact_; }

  json local_to_global(std::initializer_list<double> zs) const {
    json out = json::array();
    for (double z : zs) {
      const double p_local = std::erfc(z / std::sqrt(2.0)) / 2;
      const GlobalP g = global(-std::log(p_local));
      out.push_back({{"local_z", z}, {"local_p", p_local}, {"global_p", g.p}, {"global_p_error", number(g.p_error)},
                     {"global_p_upper", g.p_upper}, {"global_z", number(g.z)}, {"global_z_at_least", g.z_lower},
                     {"trials_factor", g.at_or_above > 0 || exact_ || std::isnan(g.p_error) ? json(g.p / p_local) : json(nullptr)}});
    }
    return out;
  }
  // sigma_min at a median global 3 and 5 sigma from the injected toys' largest t, one vector a signal.
  json sigma_min(const std::vector<double>& signals, const std::vector<std::vector<double>>& injected_t) const {
    std::vector<double> median_z;
    for (const auto& t : injected_t) {
      std::vector<double> z;
      for (double x : t) z.push_back(global(x).z);
      std::sort(z.begin(), z.end());
      median_z.push_back(quantile(z, 0.5));
    }
    json out = {{"3", crossing(signals, median_z, 3, reach())}, {"5", crossing(signals, median_z, 5, reach())}};
    for (const char* z : {"3", "5"})  // a global Z the toys do not measure comes from the tail fit: said
      if (!exact_ && std::stod(z) > resolved_ && out[z]["value"].is_number())
        out[z]["extrapolated"] = "global Z past " + std::to_string(resolved_) + " from the tail fit";
    return out;
  }

 private:
  std::vector<double> sorted_;
  bool exact_;
  TailFit tail_;
  double resolved_ = 0;
};

std::vector<double> largest_t(const std::vector<ToyMax>& toys) {
  std::vector<double> t;
  for (const ToyMax& x : toys) t.push_back(x.t);
  return t;
}

// One kind of window: its background-only toys, the trials factor, the injection; and the same with
// the simulated background resampled in every toy (CPU).
json window_report(const ToyModel& model, const LeeSettings& lee, const std::vector<double>& signals, bool fixed) {
  const bool gpu = scan_on_gpu(lee.device);
  json r;
  r["windows"] = model.windows;
  const Reference ref(largest_t(toys_on(model, {lee.seed, 0, 0.0, 0, lee.toys}, gpu)), fixed);
  const std::vector<double>& background = ref.sorted();
  const TailFit& tail = ref.tail();
  if (tail.valid)
    r["tail_fit"] = {{"form", "p_global(t) = exp(-t) (a + b sqrt(t)), fitted to the toys at t1 and t2; used past t2"},
                     {"a", tail.a}, {"b", tail.b}, {"t1", tail.t1}, {"t2", tail.t2},
                     {"closure", {{"t", tail.t_check}, {"toys_p", tail.p_check_toys}, {"fit_p", tail.p_check_fit}}}};
  r["background"] = {{"toys", lee.toys},
                     {"t_quantiles", {{"0.5", quantile(background, 0.5)}, {"0.841", quantile(background, 0.8413)},
                                      {"0.977", quantile(background, 0.9772)}, {"0.99865", quantile(background, 0.99865)}}},
                     {"t_histogram", histogram_json(background, 40)},
                     {"global_z_resolved_up_to", fixed ? json("any (exact)") : json(ref.resolved())},
                     {"global_z_extrapolated_past_that", !fixed && tail.valid}};
  r["local_to_global"] = ref.local_to_global({2.0, 3.0, 4.0, 5.0});
  if (!lee.observed.empty()) {
    const ToyMax o = scan_counts(model, lee.observed);
    const GlobalP g = ref.global(o.t);
    r["observed"] = {{"t", o.t},
                     {"window", o.lo < 0 ? json(nullptr) : json({double(o.lo) / model.bins, double(o.hi) / model.bins})},
                     {"window_bins", {o.lo, o.hi}},
                     {"observed_events", o.observed},
                     {"expected_events", o.expected},
                     {"local_p", std::exp(-o.t)},
                     {"local_z", number(o.t > 0 ? z_of_t(o.t) : -kInf)},
                     {"global_p", g.p},
                     {"global_p_error", number(g.p_error)},
                     {"global_p_upper", g.p_upper},
                     {"global_z", number(g.z)},
                     {"global_z_at_least", g.z_lower}};
  }
  json injection = json::array();
  std::vector<std::vector<double>> injected_t;
  for (size_t j = 0; j < signals.size(); ++j) {
    std::vector<double> t = largest_t(toys_on(model, {lee.seed, uint32_t(j + 1), signals[j], 0, lee.injected_toys}, gpu));
    std::vector<double> local_z, global_z;
    for (double x : t) local_z.push_back(x > 0 ? z_of_t(x) : -kInf), global_z.push_back(ref.global(x).z);
    injected_t.push_back(t);
    std::sort(t.begin(), t.end()), std::sort(local_z.begin(), local_z.end()), std::sort(global_z.begin(), global_z.end());
    const auto fraction_at_least = [&](double z) {
      return double(global_z.end() - std::lower_bound(global_z.begin(), global_z.end(), z)) / double(global_z.size());
    };
    injection.push_back({{"signal_fb", signals[j]},
                         {"signal_events", signals[j] * model.luminosity},
                         {"median_t", quantile(t, 0.5)},
                         {"median_local_z", number(quantile(local_z, 0.5))},
                         {"median_global_z", number(quantile(global_z, 0.5))},
                         {"global_z_16", number(quantile(global_z, 0.16))},
                         {"global_z_84", number(quantile(global_z, 0.84))},
                         {"p_global_z_3", 3 <= ref.reach() ? json(fraction_at_least(3)) : json(nullptr)},
                         {"p_global_z_5", 5 <= ref.reach() ? json(fraction_at_least(5)) : json(nullptr)}});
  }
  r["injection"] = std::move(injection);
  r["sigma_min"] = ref.sigma_min(signals, injected_t);
  // The simulated background is a sample too: the same background-only toys drawn around a resampled
  // expectation (scanned against the nominal one) give the reference a finite simulation allows.
  ToyDraws resampled{lee.seed, 0, 0.0, 0, lee.toys};
  resampled.resample_background = true;
  const Reference wide(largest_t(run_toys(model, resampled)), false);
  r["finite_simulation"] = {
      {"method", "every background-only toy first redraws each class's simulated events per bin (Poisson), "
                 "then its counts around that expectation; scanned against the nominal expectation"},
      {"t_quantiles", {{"0.5", quantile(wide.sorted(), 0.5)}, {"0.977", quantile(wide.sorted(), 0.9772)}}},
      {"local_to_global", wide.local_to_global({3.0, 5.0})},
      {"sigma_min", wide.sigma_min(signals, injected_t)}};
  return r;
}

}  // namespace

json lee_report(const ScanGrid& grid, const ScanSettings& settings, const LeeSettings& lee) {
  check(lee.toys >= 1 && lee.injected_toys >= 1, "toys: at least one background-only and one injected toy");
  const ToyModel scanned = toy_model(grid, settings, lee.luminosity);
  // R_max's window: Eq. 8's reach (and the default injected cross-sections), and the simulation's error.
  const std::optional<Window> best = best_window(grid, settings);
  const double R_max = best ? best->R : 0.0;
  std::vector<double> signals = lee.signals_fb;
  const double eq8_5 = R_max > 0 ? sigma_min(R_max, grid.sigma_b_fb, lee.luminosity, 5) : std::nan("");
  if (signals.empty()) {
    check(std::isfinite(eq8_5), "toys: no injected cross-sections given, and no R_max to place them by");
    for (int i = 0; i < 13; ++i) signals.push_back(eq8_5 / 20 * std::pow(100.0, i / 12.0));
  }
  std::sort(signals.begin(), signals.end());
  for (double s : signals) check(std::isfinite(s) && s > 0, "toys: injected cross-sections must be positive (fb)");
  json r;
  r["device"] = scan_on_gpu(lee.device) ? "cuda" : "cpu";
  r["statistic"] = "t = -ln P(X >= N | X ~ Poisson(B)) for an excess N > B, else 0: the Poisson p-value of the "
                   "window's count N against its background B; a pseudo-experiment's statistic is its largest t "
                   "over the eligible windows";
  r["luminosity"] = lee.luminosity;
  r["bins"] = grid.bins;
  r["min_width_bins"] = std::max(1, min_width_bins(settings.min_width, grid.bins));
  r["min_background_events"] = settings.min_background_events;
  r["seed"] = lee.seed;
  r["background_events"] = scanned.background_prefix.back();
  r["expected_per_bin"] = scanned.background;
  if (!lee.observed.empty()) {
    check(lee.observed.size() == size_t(grid.bins), "toys: observed counts for " + std::to_string(lee.observed.size()) +
                                                        " bins, the scan has " + std::to_string(grid.bins));
    r["observed_per_bin"] = lee.observed;
  }
  r["eq8_sigma_min"] = {{"3", R_max > 0 ? json(sigma_min(R_max, grid.sigma_b_fb, lee.luminosity, 3)) : json(nullptr)},
                        {"5", number(eq8_5)}};
  // The simulated background's own statistical error in R_max's window, against the Poisson error of the
  // events expected there: where the first is larger, the simulation, not the data, limits the search.
  if (best) {
    double b = 0, var = 0;
    for (size_t c = 0; c < scanned.class_events.size(); ++c) {
      double mu = 0;
      int64_t n = 0;
      for (int k = best->lo; k < best->hi; ++k) mu += scanned.class_background[c][size_t(k)], n += scanned.class_events[c][size_t(k)];
      b += mu;
      if (n > 0) var += mu * mu / double(n);
    }
    const double sd = std::sqrt(var), poisson = std::sqrt(b);
    r["finite_simulation"] = {{"window", {best->p_lo, best->p_hi}},
                              {"background_events", b},
                              {"poisson_sd", poisson},
                              {"simulation_sd", sd},
                              {"simulation_over_poisson", sd / poisson},
                              {"luminosity_where_equal", sd > 0 ? json(lee.luminosity * b / var) : json(nullptr)}};
  }
  r["scanned"] = window_report(scanned, lee, signals, false);
  if (lee.window) {
    const int lo = int(std::lround((*lee.window)[0] * grid.bins)), hi = int(std::lround((*lee.window)[1] * grid.bins));
    json fixed;
    if (scanned.background_prefix[size_t(hi)] > scanned.background_prefix[size_t(lo)]) {
      fixed = window_report(fixed_window_model(scanned, lo, hi), lee, signals, true);
    } else {  // a window without simulated background has no statistic: said, and the scanned result stands
      const json none = {{"value", nullptr}, {"note", "the fixed window holds no simulated background events"}};
      fixed = {{"windows", 1}, {"note", none["note"]}, {"sigma_min", {{"3", none}, {"5", none}}}};
    }
    fixed["window"] = {double(lo) / grid.bins, double(hi) / grid.bins};
    r["fixed"] = std::move(fixed);
  }
  return r;
}

}  // namespace aware
