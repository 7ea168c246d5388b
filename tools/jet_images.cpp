// Jet images from constituents (tools/jet_images.h). Compiled with -ffp-contract=off: the pixel edges
// are numpy's k * step + start, two roundings, never one fused multiply-add.
#include "tools/jet_images.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

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

// make_jets.py's (dphi + pi) % (2 pi) - pi. The remainder without fmod where the answer is one
// floating-point operation that is exact or is numpy's own: x in [0, 2pi) is itself; in [2pi, 4pi),
// x - 2pi is exact (Sterbenz); in (-2pi, 0) numpy adds 2pi to fmod's x, as here. A zero is +0.
double wrap_phi(double dphi) {
  constexpr double pi = std::numbers::pi, two_pi = 2 * pi;
  const double x = dphi + pi;
  double mod;
  if (x >= 0 && x < two_pi) {
    mod = x;
  } else if (x >= two_pi && x < 2 * two_pi) {
    mod = x - two_pi;
  } else if (x > -two_pi && x < 0) {
    mod = x + two_pi;
  } else {
    return numpy_mod(x, two_pi) - pi;
  }
  return (mod == 0 ? 0.0 : mod) - pi;
}

// numpy.histogram2d's bin of x among `edges` (searchsorted side='right', the last edge inside the last
// bin), or -1 outside. The division only guesses; the comparisons with the edges decide.
[[gnu::always_inline]] inline int pixel_of(double x, const std::vector<double>& edges, double start, double inv_step) {
  const int n = int(edges.size()) - 1;
  const double* e = edges.data();
  if (!(x >= e[0] && x < e[n])) return x == e[n] ? n - 1 : -1;
  int k = int(std::clamp((x - start) * inv_step, 0.0, double(n - 1)));  // x >= start: truncation is floor
  while (k > 0 && e[k] > x) --k;
  while (k + 1 < n && e[k + 1] <= x) ++k;
  return k;
}

template <class T>
void check_input(const Constituents<T>& c, const JetImageOptions& o) {
  check(o.pixels >= 1 && o.pixels <= 1024, "jet images: pixels must be 1 to 1024, not " + std::to_string(o.pixels));
  check(o.half_width >= 1e-6 && o.half_width <= 1e6, "jet images: half_width must be 1e-6 to 1e6");
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

// The touched pixels' float64 sums rounded into the image (divided by their total to normalise), and
// the scratch zeroed again.
void write_image(const JetImageOptions& o, std::vector<double>& acc, const std::vector<int>& touched, float* img) {
  double total = 0;
  if (o.normalise)
    for (const int p : touched) total += acc[size_t(p)];
  for (const int p : touched) {
    img[p] = float(o.normalise ? acc[size_t(p)] / total : acc[size_t(p)]);
    acc[size_t(p)] = 0;
  }
}

// One jet's image into img (pixels^2 floats, zero), with acc a zeroed pixels^2 scratch left zeroed.
template <class T>
void one_jet(const Constituents<T>& c, int64_t j, const JetImageOptions& o, const std::vector<double>& edges,
             std::vector<double>& acc, std::vector<int>& touched, std::vector<double>& de, std::vector<double>& dp,
             float* img) {
  const int64_t first = c.offsets[size_t(j)], n = c.offsets[size_t(j) + 1] - first;
  const T* pt = c.pt.data() + first;
  const T* eta = c.eta.data() + first;
  const T* phi = c.phi.data() + first;
  const auto bad = [&](int64_t i) {
    return !(std::isfinite(double(pt[i])) && pt[i] >= 0 && std::isfinite(double(eta[i])) && std::isfinite(double(phi[i])));
  };
  const auto refuse = [&](int64_t i) {
    throw Error("jet images: jet " + std::to_string(j) + ", constituent " + std::to_string(i) +
                ": pt, eta and phi must be finite and pt not negative");
  };
  const double start = edges.front(), inv_step = o.pixels / (edges.back() - edges.front());
  touched.clear();
  // make_jets.py's images (the axis, nothing else): one pass, constituent by constituent.
  const auto add = [&](int64_t i, double d_eta, double d_phi) {
    if (pt[i] == 0) return;  // adds nothing; skipping it keeps "acc == 0" meaning "not yet touched"
    const int r = pixel_of(d_eta, edges, start, inv_step), q = pixel_of(d_phi, edges, start, inv_step);
    if (r < 0 || q < 0) return;
    const int pixel = r * o.pixels + q;
    if (acc[size_t(pixel)] == 0) touched.push_back(pixel);
    acc[size_t(pixel)] += double(pt[i]);  // float64, in constituent order: numpy.bincount's sum
  };
  if (o.centre == JetImageOptions::Centre::axis && !o.rotate && !o.flip) {
    const double axis_eta = double(c.jet_eta[size_t(j)]), axis_phi = double(c.jet_phi[size_t(j)]);
    for (int64_t i = 0; i < n; ++i) {
      if (bad(i)) refuse(i);
      add(i, double(eta[i]) - axis_eta, wrap_phi(double(phi[i]) - axis_phi));
    }
    write_image(o, acc, touched, img);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    if (bad(i)) refuse(i);
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
  for (int64_t i = 0; i < n; ++i) add(i, de[size_t(i)], dp[size_t(i)]);
  write_image(o, acc, touched, img);
}

// Copies one image to the output with non-temporal stores: the output is written once and not read
// here, and an ordinary store would first read each line (the images' bytes are what bound the default
// path: 2.5 KB a jet, against some 30 bytes of constituents a constituent).
void stream_out(float* dst, const float* src, int64_t n) {
#if defined(__SSE2__)
  int64_t i = 0;
  for (; i < n && (reinterpret_cast<uintptr_t>(dst + i) & 15) != 0; ++i) {
    int bits;
    std::memcpy(&bits, src + i, sizeof bits);
    _mm_stream_si32(reinterpret_cast<int*>(dst + i), bits);
  }
  for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
  for (; i < n; ++i) {
    int bits;
    std::memcpy(&bits, src + i, sizeof bits);
    _mm_stream_si32(reinterpret_cast<int*>(dst + i), bits);
  }
#else
  std::memcpy(dst, src, size_t(n) * sizeof(float));
#endif
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
  // The first failure (a bad jet, or memory), rethrown after the region: no exception may leave it.
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel
  {
    std::vector<double> acc, de, dp;
    std::vector<float> image;  // a jet's image, in cache until streamed out
    std::vector<int> touched;
    try {
      acc.assign(size_t(size), 0.0), image.assign(size_t(size), 0.0f);
    } catch (...) {
#pragma omp critical(aware_jet_images_error)
      if (!failed.exchange(true)) error = std::current_exception();
    }
#pragma omp for schedule(static)
    for (int64_t j = 0; j < jets; ++j) {
      if (failed.load(std::memory_order_relaxed)) continue;  // every thread must still meet the loop's end
      try {
        one_jet(c, j, o, edges, acc, touched, de, dp, image.data());
      } catch (...) {
#pragma omp critical(aware_jet_images_error)
        if (!failed.exchange(true)) error = std::current_exception();
        continue;
      }
      stream_out(out + j * size, image.data(), size);
      for (const int p : touched) image[size_t(p)] = 0.0f;
    }
#if defined(__SSE2__)
    _mm_sfence();  // the streamed stores visible before the threads join
#endif
  }
  if (error) std::rethrow_exception(error);
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
  const int64_t jets = all.jets(), size = int64_t(options.pixels) * options.pixels;
  const int64_t chunk = std::max<int64_t>(1, (int64_t(64) << 20) / (size * int64_t(sizeof(float))));  // 64 MiB of images
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
    } catch (const Error& e) {  // its jet numbers count from the chunk's first jet
      throw Error(dir.string() + ": " + e.what() + " (of the jets from jet " + std::to_string(first) + " on)");
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
