// Jet images from constituents (tools/jet_images.h). Compiled with -ffp-contract=off: the pixel edges
// are numpy's k * step + start, two roundings, never one fused multiply-add.
#include "tools/jet_images.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "kernels/error.h"
#include "runtime/npy.h"
#include "runtime/progress.h"

namespace aware {

JetImageOptions::Centre centre_named(const std::string& name, const std::string& what) {
  if (name == "axis") return JetImageOptions::Centre::axis;
  if (name == "centroid") return JetImageOptions::Centre::centroid;
  throw Error(what + ": '" + name + "' is not a centre (axis or centroid)");
}

namespace {

// numpy's float remainder (npy_divmod): fmod, then moved to the divisor's sign; a zero takes its sign.
double numpy_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

// make_jets.py's (dphi + pi) % (2 pi) - pi.
double wrap_phi(double dphi) {
  constexpr double pi = std::numbers::pi;
  return numpy_mod(dphi + pi, 2 * pi) - pi;
}

// numpy.histogram2d's bin of x among `edges` (searchsorted side='right', the last edge inside the last
// bin), or -1 outside. The division only guesses; the comparisons with the edges decide.
int pixel_of(double x, const std::vector<double>& edges, double start, double step) {
  const int n = int(edges.size()) - 1;
  if (!(x >= edges[0] && x <= edges[size_t(n)])) return -1;
  if (x == edges[size_t(n)]) return n - 1;
  int k = int(std::clamp(std::floor((x - start) / step), 0.0, double(n - 1)));
  while (k > 0 && edges[size_t(k)] > x) --k;
  while (k + 1 < n && edges[size_t(k) + 1] <= x) ++k;
  return k;
}

template <class T>
void check_input(const Constituents<T>& c, const JetImageOptions& o) {
  check(o.pixels >= 1 && o.pixels <= 4096, "jet images: pixels must be 1 to 4096, not " + std::to_string(o.pixels));
  check(std::isfinite(o.half_width) && o.half_width > 0, "jet images: half_width must be a positive number");
  check(!c.offsets.empty(), "jet images: offsets must have one entry more than there are jets (at least [0])");
  check(c.pt.size() == c.eta.size() && c.pt.size() == c.phi.size(),
        "jet images: pt, eta and phi must have one entry per constituent (" + std::to_string(c.pt.size()) + ", " +
            std::to_string(c.eta.size()) + ", " + std::to_string(c.phi.size()) + ")");
  const size_t jets = c.offsets.size() - 1;
  check(c.jet_eta.size() == c.jet_phi.size() && (c.jet_eta.empty() || c.jet_eta.size() == jets),
        "jet images: jet_eta and jet_phi must have one entry per jet (" + std::to_string(jets) + "), or be left out");
  check(o.centre == JetImageOptions::Centre::centroid || !c.jet_eta.empty(),
        "jet images: centring on the jet axis needs jet_eta and jet_phi (or centre on the centroid)");
  check(c.offsets[0] >= 0, "jet images: offsets[0] is negative");
  for (size_t j = 0; j < jets; ++j)
    check(c.offsets[j] <= c.offsets[j + 1], "jet images: offsets decrease at jet " + std::to_string(j));
  check(uint64_t(c.offsets[jets]) <= c.pt.size(), "jet images: the last offset, " + std::to_string(c.offsets[jets]) +
                                                      ", is past the " + std::to_string(c.pt.size()) + " constituents");
  for (size_t j = 0; j < c.jet_eta.size(); ++j)
    check(std::isfinite(double(c.jet_eta[j])) && std::isfinite(double(c.jet_phi[j])),
          "jet images: jet " + std::to_string(j) + "'s axis is not finite");
}

// One jet's image into img (pixels^2 floats, zero), with acc a zeroed pixels^2 scratch left zeroed.
template <class T>
void one_jet(const Constituents<T>& c, int64_t j, const JetImageOptions& o, const std::vector<double>& edges,
             std::vector<double>& acc, std::vector<int>& touched, std::vector<double>& de, std::vector<double>& dp,
             float* img) {
  const int64_t first = c.offsets[size_t(j)], n = c.offsets[size_t(j) + 1] - first;
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = size_t(first + i);
    if (!(std::isfinite(double(c.pt[k])) && c.pt[k] >= 0 && std::isfinite(double(c.eta[k])) &&
          std::isfinite(double(c.phi[k]))))
      throw Error("jet images: jet " + std::to_string(j) + ", constituent " + std::to_string(i) +
                  ": pt, eta and phi must be finite and pt not negative");
  }
  const T* pt = c.pt.data() + first;
  const T* eta = c.eta.data() + first;
  const T* phi = c.phi.data() + first;
  de.resize(size_t(n)), dp.resize(size_t(n));
  if (o.centre == JetImageOptions::Centre::axis) {
    for (int64_t i = 0; i < n; ++i)
      de[size_t(i)] = double(eta[i]) - double(c.jet_eta[size_t(j)]),
      dp[size_t(i)] = wrap_phi(double(phi[i]) - double(c.jet_phi[size_t(j)]));
  } else {  // the pT-weighted centroid, phi relative to the axis or the hardest constituent
    double ref = 0;
    if (!c.jet_phi.empty()) {
      ref = double(c.jet_phi[size_t(j)]);
    } else if (n > 0) {
      ref = double(phi[std::max_element(pt, pt + n) - pt]);
    }
    double sum = 0, se = 0, sp = 0;
    for (int64_t i = 0; i < n; ++i) {
      dp[size_t(i)] = wrap_phi(double(phi[i]) - ref);
      sum += double(pt[i]), se += double(pt[i]) * double(eta[i]), sp += double(pt[i]) * dp[size_t(i)];
    }
    const double ce = sum > 0 ? se / sum : 0, cp = sum > 0 ? sp / sum : 0;
    for (int64_t i = 0; i < n; ++i) de[size_t(i)] = double(eta[i]) - ce, dp[size_t(i)] -= cp;
  }
  if (o.rotate) {  // the major axis of the pT-weighted second moments onto d_eta
    double see = 0, spp = 0, sep = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double w = double(pt[i]), e = de[size_t(i)], p = dp[size_t(i)];
      see += w * e * e, spp += w * p * p, sep += w * e * p;
    }
    const double theta = 0.5 * std::atan2(2 * sep, see - spp);  // the major axis' angle from d_eta
    const double cs = std::cos(theta), sn = std::sin(theta);
    for (int64_t i = 0; i < n; ++i) {
      const double e = de[size_t(i)], p = dp[size_t(i)];
      de[size_t(i)] = cs * e + sn * p, dp[size_t(i)] = -sn * e + cs * p;
    }
  }
  if (o.flip) {  // the harder half-plane to d > 0: d_phi first, then d_eta
    for (std::vector<double>* d : {&dp, &de}) {
      double plus = 0, minus = 0;
      for (int64_t i = 0; i < n; ++i) ((*d)[size_t(i)] > 0 ? plus : minus) += (*d)[size_t(i)] != 0 ? double(pt[i]) : 0;
      if (minus > plus)
        for (auto& x : *d) x = -x;
    }
  }
  const double start = edges.front(), step = (edges.back() - edges.front()) / o.pixels;
  touched.clear();
  for (int64_t i = 0; i < n; ++i) {
    if (pt[i] == 0) continue;  // adds nothing; skipping it keeps "acc == 0" meaning "not yet touched"
    const int r = pixel_of(de[size_t(i)], edges, start, step), q = pixel_of(dp[size_t(i)], edges, start, step);
    if (r < 0 || q < 0) continue;
    const int pixel = r * o.pixels + q;
    if (acc[size_t(pixel)] == 0) touched.push_back(pixel);
    acc[size_t(pixel)] += double(pt[i]);  // float64, in constituent order: numpy.bincount's sum
  }
  double total = 0;
  if (o.normalise)
    for (const int p : touched) total += acc[size_t(p)];
  for (const int p : touched) {
    img[p] = float(o.normalise ? acc[size_t(p)] / total : acc[size_t(p)]);
    acc[size_t(p)] = 0;
  }
}

template <class T>
void images(const Constituents<T>& c, const JetImageOptions& o, float* out) {
  check_input(c, o);
  // numpy.linspace(-half_width, half_width, pixels + 1): k * step + start, the last edge exact.
  std::vector<double> edges(size_t(o.pixels) + 1);
  const double start = -o.half_width, step = (o.half_width - start) / o.pixels;
  for (int k = 0; k <= o.pixels; ++k) edges[size_t(k)] = double(k) * step + start;
  edges.back() = o.half_width;
  const int64_t jets = c.jets(), size = int64_t(o.pixels) * o.pixels;
  std::string error;  // one failing jet's error, thrown after the loop (an exception must not leave it)
  std::atomic<bool> failed{false};
#pragma omp parallel
  {
    std::vector<double> acc(size_t(size), 0.0), de, dp;
    std::vector<int> touched;
#pragma omp for schedule(static)
    for (int64_t j = 0; j < jets; ++j) {
      float* img = out + j * size;
      std::memset(img, 0, size_t(size) * sizeof(float));
      try {
        if (!failed.load(std::memory_order_relaxed)) one_jet(c, j, o, edges, acc, touched, de, dp, img);
      } catch (const Error& e) {
#pragma omp critical(aware_jet_images_error)
        if (!failed.exchange(true)) error = e.what();
      }
    }
  }
  check(!failed, error);
}

}  // namespace

int64_t images_of_directory(const std::filesystem::path& dir, const std::filesystem::path& out,
                            const JetImageOptions& options, bool progress) {
  check(std::filesystem::is_directory(dir), dir.string() + ": not a directory of constituents (pt.npy, eta.npy, "
                                                           "phi.npy, offsets.npy)");
  const auto file = [&](const std::string& name, bool required) -> std::filesystem::path {
    for (const char* ext : {".npy", ".npy.gz"})
      if (auto p = dir / (name + ext); std::filesystem::exists(p)) return p;
    check(!required, dir.string() + ": no " + name + ".npy (nor " + name + ".npy.gz)");
    return {};
  };
  const std::vector<double> pt = load_npy_doubles(file("pt", true)), eta = load_npy_doubles(file("eta", true)),
                            phi = load_npy_doubles(file("phi", true));
  const std::vector<int64_t> offsets = load_npy_int64(file("offsets", true));
  const auto axis_eta = file("jet_eta", false), axis_phi = file("jet_phi", false);
  check(axis_eta.empty() == axis_phi.empty(), dir.string() + ": jet_eta and jet_phi go together (one is missing)");
  const std::vector<double> jet_eta = axis_eta.empty() ? std::vector<double>() : load_npy_doubles(axis_eta);
  const std::vector<double> jet_phi = axis_phi.empty() ? std::vector<double>() : load_npy_doubles(axis_phi);
  Constituents<double> all{pt, eta, phi, offsets, jet_eta, jet_phi};
  try {
    check_input(all, options);
  } catch (const Error& e) {
    throw Error(dir.string() + ": " + e.what());
  }
  const int64_t jets = all.jets(), size = int64_t(options.pixels) * options.pixels, chunk = 1 << 14;
  const std::vector<int64_t> shape{jets, options.pixels, options.pixels};
  NpyWriter writer(out, shape);
  std::vector<float> images(size_t(std::min(jets, chunk) * size));
  ProgressBar bar("images", jets, "jets", progress);
  for (int64_t first = 0; first < jets; first += chunk) {
    const int64_t n = std::min(chunk, jets - first);
    Constituents<double> part = all;  // the chunk's jets: its offsets still index the whole arrays
    part.offsets = all.offsets.subspan(size_t(first), size_t(n) + 1);
    if (!jet_eta.empty()) part.jet_eta = all.jet_eta.subspan(size_t(first), size_t(n)), part.jet_phi = all.jet_phi.subspan(size_t(first), size_t(n));
    try {
      jet_images(part, options, images.data());
    } catch (const Error& e) {
      throw Error(dir.string() + ": " + e.what() + " (jets counted from " + std::to_string(first) + ")");
    }
    writer.write(images.data(), n * size);
    bar.update(first + n);
  }
  writer.commit();
  bar.finish();
  return jets;
}

void jet_images(const Constituents<double>& jets, const JetImageOptions& options, float* out) {
  images(jets, options, out);
}
void jet_images(const Constituents<float>& jets, const JetImageOptions& options, float* out) {
  images(jets, options, out);
}

}  // namespace aware
