#include "tools/analysis.h"

#include "runtime/checkpoint.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <unistd.h>

#include "kernels/roc.h"
#include "runtime/backend.h"
#include "kernels/error.h"

namespace aware {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kDiscoveryZ = 5;

constexpr const char* kRmaxNote =
    "R_max is the largest R over many windows, so it is biased upward; R_error is the statistical error "
    "(binomial, from the event counts) of the chosen window only, not of the choice of window.";

json stats_json(const WindowStats& w, const std::vector<std::string>& names) {
  json background = json::object();
  for (size_t c = 0; c < names.size(); ++c)
    background[names[c]] = {{"n", w.n_background[c]}, {"e", w.e_background[c]}};
  return {{"R", w.R},
          {"R_error", w.R_error},
          {"eligible", w.eligible},
          {"anomaly", {{"n", w.n_anomaly}, {"e", w.e_anomaly}}},
          {"background", background},
          {"n_background_events", w.n_background_events},
          {"background_fb", w.background_fb}};
}

json window_json(const Window& w, const std::vector<std::string>& names) {
  json j = stats_json(w, names);
  j["lo"] = w.p_lo;
  j["hi"] = w.p_hi;
  j["lo_bin"] = w.lo;
  j["hi_bin"] = w.hi;
  j["centre"] = w.centre();
  return j;
}

json window_2d_json(const Window2D& w, const std::vector<std::string>& names) {
  json j = stats_json(w, names);
  j["p1"] = {w.p1_lo, w.p1_hi};
  j["p2"] = {w.p2_lo, w.p2_hi};
  j["bins1"] = {w.lo1, w.hi1};
  j["bins2"] = {w.lo2, w.hi2};
  return j;
}

json curve_point(const Window& w) {
  return {{"centre", w.centre()}, {"lo", w.p_lo}, {"hi", w.p_hi}, {"R", w.R}, {"eligible", w.eligible}};
}

// Settings shared by the 1-D and 2-D reports: the rule and what the background is made of.
json settings_json(const PrefixGrid& g, const ScanSettings& settings, int bins) {
  json background = json::array();
  for (size_t c = 0; c < g.background.size(); ++c)
    background.push_back({{"name", g.background_names[c]},
                          {"sigma_fb", g.sigma_fb[c]},
                          {"events", g.background[c].count.back()},
                          {"total_weight", g.background[c].weight.back()}});
  return {{"bins", bins},
          {"min_background_events", settings.min_background_events},
          {"min_width", settings.min_width},
          {"min_width_bins", min_width_bins(settings.min_width, bins)},
          {"eligibility", eligibility_rule(settings)},
          {"background", background},
          {"sigma_B_fb", g.sigma_b_fb},
          {"anomaly_events", g.anomaly.count.back()},
          {"anomaly_total_weight", g.anomaly.weight.back()},
          {"z", kDiscoveryZ},
          {"note", kRmaxNote}};
}

// A number for CSV: shortest round-trip form; NaN or null as "nan".
std::string csv_number(const json& value) {
  if (value.is_null()) return "nan";
  check(value.is_number(), "write_scan_csv: expected a number, got " + value.dump());
  const double x = value.get<double>();
  if (std::isnan(x)) return "nan";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, x);
  return std::string(buffer, result.ptr);
}

const json& member(const json& report, const char* key) {
  check(report.is_object() && report.contains(key), std::string("write_scan_csv: report has no \"") + key + "\"");
  return report.at(key);
}

void curve_rows(std::ostringstream& out, const std::string& width, const json& points) {
  for (const json& p : points)
    out << width << ',' << csv_number(p.at("centre")) << ',' << csv_number(p.at("lo")) << ','
        << csv_number(p.at("hi")) << ',' << csv_number(p.at("R")) << ',' << (p.at("eligible").get<bool>() ? 1 : 0)
        << '\n';
}

}  // namespace

std::vector<double> log_grid(double first, double last, int n) {
  check(first > 0 && last >= first && n >= 1, "log_grid: need 0 < first <= last and n >= 1");
  if (n == 1) return {first};
  std::vector<double> grid(n);
  for (int k = 0; k < n; ++k) grid[k] = first * std::pow(last / first, static_cast<double>(k) / (n - 1));
  grid.back() = last;  // exactly, not last up to rounding
  return grid;
}

bool scan_on_gpu(const std::string& device) {
  check(device == "cpu" || device == "cuda" || device == "auto", "scan: unknown device '" + device + "' (cpu|cuda|auto)");
  check(device != "cuda" || cuda_available(), "--device cuda: no usable CUDA device (" + cuda_device_status() + ")");
  return device == "cuda" || (device == "auto" && cuda_available());
}

json scan_report(const ScanInput& input, const ScanSettings& settings, std::span<const double> widths,
                 std::span<const double> luminosities, const std::string& device) {
  // The GPU histograms the scores and finds the best window; the host keeps the grid it returns.
  const bool gpu = scan_on_gpu(device);
  ScanGrid grid;
  std::optional<Window> best;
#if defined(AWARE_CUDA)
  if (gpu) {
    cuda::GpuScan on_gpu = cuda::scan(input, settings, {});
    grid = std::move(on_gpu.grid);
    best = on_gpu.best;
  } else
#endif
  {
    grid = make_grid(input, settings.bins);
    best = best_window(grid, settings);
  }
  const std::vector<std::string>& names = grid.background_names;
  json report;
  report["settings"] = settings_json(grid, settings, grid.bins);
  report["device"] = gpu ? "cuda" : "cpu";

  report["best"] = best ? window_json(*best, names) : json(nullptr);
  report["R_max"] = best ? best->R : kNaN;
  report["R_max_error"] = best ? best->R_error : kNaN;

  json fixed = json::array();
  for (double width : widths) {
    json points = json::array();
    for (const Window& w : fixed_width_curve(grid, settings, width)) points.push_back(curve_point(w));
    fixed.push_back({{"width", width},
                     {"width_bins", static_cast<int>(std::lround(width * grid.bins))},
                     {"points", std::move(points)}});
  }
  report["fixed_width"] = std::move(fixed);

  json below = json::array();
  for (const Window& w : below_threshold_curve(grid, settings)) below.push_back(curve_point(w));
  report["below_threshold"] = std::move(below);

  json reach = json::array();
  for (double luminosity : luminosities) {
    check(luminosity > 0, "scan_report: luminosities must be positive");
    const std::optional<AsimovReach> asimov = asimov_reach(grid, settings, luminosity, kDiscoveryZ);
    json row = {{"luminosity", luminosity},
                {"R_max", best ? best->R : kNaN},
                {"sigma_min", best && best->R > 0 ? sigma_min(best->R, grid.sigma_b_fb, luminosity) : kNaN},
                {"sigma_min_naive", sigma_min_naive(grid.sigma_b_fb, luminosity)},
                {"sigma_min_asimov", asimov ? asimov->sigma_min_fb : kNaN}};
    if (asimov) {
      row["asimov_window"] = {asimov->window.p_lo, asimov->window.p_hi};
      row["asimov_signal_events"] = asimov->signal_events;
      row["asimov_background_events"] = asimov->background_events;
    }
    reach.push_back(std::move(row));
  }
  report["reach"] = std::move(reach);
  return report;
}

json scan_report_2d(const ScanInput2D& input, const ScanSettings& settings, std::span<const double> luminosities,
                    const std::string& device) {
  const bool gpu = scan_on_gpu(device);
  ScanGrid2D grid;
  std::optional<Window2D> best;
#if defined(AWARE_CUDA)
  if (gpu) {
    cuda::GpuScan2D on_gpu = cuda::scan_2d(input, settings);
    grid = std::move(on_gpu.grid);
    best = on_gpu.best;
  } else
#endif
  {
    grid = make_grid_2d(input, settings.bins_2d);
    best = best_window_2d(grid, settings);
  }
  json report;
  report["settings"] = settings_json(grid, settings, grid.bins);
  report["device"] = gpu ? "cuda" : "cpu";
  report["best"] = best ? window_2d_json(*best, grid.background_names) : json(nullptr);
  report["R_max"] = best ? best->R : kNaN;
  report["R_max_error"] = best ? best->R_error : kNaN;
  json reach = json::array();
  for (double luminosity : luminosities)
    reach.push_back({{"luminosity", luminosity},
                     {"sigma_min", best && best->R > 0 ? sigma_min(best->R, grid.sigma_b_fb, luminosity) : kNaN},
                     {"sigma_min_naive", sigma_min_naive(grid.sigma_b_fb, luminosity)}});
  report["reach"] = std::move(reach);
  return report;
}

void write_scan_csv(const json& report, const std::filesystem::path& dir, const std::string& prefix) {
  check(!prefix.empty(), "write_scan_csv: empty prefix");
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  check(!error, dir.string() + ": cannot create directory: " + error.message());

  std::ostringstream curves;
  curves << "width,centre,lo,hi,R,eligible\n";
  for (const json& curve : member(report, "fixed_width"))
    curve_rows(curves, csv_number(curve.at("width")), curve.at("points"));
  curve_rows(curves, "below", member(report, "below_threshold"));

  std::ostringstream reach;
  reach << "luminosity,sigma_min,sigma_min_naive,sigma_min_asimov\n";
  for (const json& row : member(report, "reach"))
    reach << csv_number(row.at("luminosity")) << ',' << csv_number(row.at("sigma_min")) << ','
          << csv_number(row.at("sigma_min_naive")) << ',' << csv_number(row.at("sigma_min_asimov")) << '\n';

  write_file_atomic(dir / (prefix + "_curves.csv"), curves.str());
  write_file_atomic(dir / (prefix + "_reach.csv"), reach.str());
}

json roc_report(std::span<const float> pos, std::span<const float> neg, int max_points) {
  check(max_points >= 2, "roc_report: max_points must be at least 2");
  const RocCurve curve = roc_curve(pos, neg);
  const size_t total = curve.fpr.size();
  const size_t kept = std::min(total, static_cast<size_t>(max_points));
  json fpr = json::array(), tpr = json::array(), threshold = json::array();
  for (size_t k = 0; k < kept; ++k) {
    // Evenly by index, first and last included.
    const size_t i =
        kept == total ? k : static_cast<size_t>(std::llround(static_cast<double>(k) * (total - 1) / (kept - 1)));
    fpr.push_back(curve.fpr[i]);
    tpr.push_back(curve.tpr[i]);
    threshold.push_back(std::isfinite(curve.threshold[i]) ? json(curve.threshold[i]) : json(nullptr));
  }
  return {{"auc", curve.auc},
          {"n_pos", pos.size()},
          {"n_neg", neg.size()},
          {"points_total", total},
          {"fpr", std::move(fpr)},
          {"tpr", std::move(tpr)},
          {"threshold", std::move(threshold)}};
}

json central_fraction(std::span<const float> p, double lo, double hi) {
  check(!p.empty(), "central_fraction: no events");
  check(lo < hi, "central_fraction: need lo < hi");
  // Compared in float, as the anchor's NumPy compares float32 scores with a Python float.
  const float lo_f = static_cast<float>(lo), hi_f = static_cast<float>(hi);
  int64_t inside = 0;
  for (float x : p) inside += (x > lo_f && x < hi_f) ? 1 : 0;
  return {{"lo", lo},
          {"hi", hi},
          {"inside", inside},
          {"events", p.size()},
          {"fraction", static_cast<double>(inside) / static_cast<double>(p.size())}};
}

std::vector<float> anomaly_score(std::span<const float> probs, int classes, const std::string& kind) {
  check(classes >= 2 && probs.size() % size_t(classes) == 0, "anomaly_score: rows of " +
                                                               std::to_string(classes) + " probabilities expected");
  std::vector<float> out(probs.size() / size_t(classes));
  for (size_t i = 0; i < out.size(); ++i) {
    const std::span<const float> p = probs.subspan(i * size_t(classes), size_t(classes));
    if (kind == "p0_centre") {
      out[i] = 0.5f - std::fabs(p[0] - 0.5f);
    } else if (kind == "max_softmax") {
      out[i] = 1.0f - *std::max_element(p.begin(), p.end());
    } else if (kind == "entropy") {
      double h = 0.0;
      for (float x : p) h -= x > 0.0f ? double(x) * std::log(double(x)) : 0.0;
      out[i] = float(h);
    } else {
      throw Error("anomaly_score: unknown kind '" + kind + "' (p0_centre, max_softmax, entropy)");
    }
  }
  return out;
}

json anomaly_score_report(std::span<const float> anomaly_probs, std::span<const float> normal_probs, int classes) {
  json report = json::object();
  for (const char* kind : kAnomalyScores) {
    const RocCurve curve = roc_curve(anomaly_score(anomaly_probs, classes, kind),
                                     anomaly_score(normal_probs, classes, kind));
    double fpr95 = 1.0;  // the first point (in threshold order) reaching 95% efficiency
    for (size_t k = 0; k < curve.tpr.size(); ++k)
      if (curve.tpr[k] >= 0.95) {
        fpr95 = curve.fpr[k];
        break;
      }
    report[kind] = {{"auroc", curve.auc}, {"fpr_at_95_tpr", fpr95}};
  }
  return report;
}

}  // namespace aware
