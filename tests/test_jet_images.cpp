// Jet images from constituents (tools/jet_images.h): hand-made jets with known pixels, numpy's binning
// rule against a brute-force reference, each preprocessing option on a jet whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "kernels/error.h"
#include "tools/jet_images.h"

namespace aware {
namespace {

constexpr int kPix = 25;

struct Jets {
  std::vector<double> pt, eta, phi, jet_eta, jet_phi;
  std::vector<int64_t> offsets{0};
  void add(double jeta, double jphi, const std::vector<std::array<double, 3>>& constituents) {
    for (const auto& [p, e, f] : constituents) pt.push_back(p), eta.push_back(e), phi.push_back(f);
    offsets.push_back(int64_t(pt.size()));
    jet_eta.push_back(jeta), jet_phi.push_back(jphi);
  }
  Constituents<double> view(bool with_axis = true) const {
    return {pt, eta, phi, offsets, with_axis ? std::span<const double>(jet_eta) : std::span<const double>(),
            with_axis ? std::span<const double>(jet_phi) : std::span<const double>()};
  }
};

std::vector<float> images(const Jets& jets, const JetImageOptions& o = {}, bool with_axis = true) {
  std::vector<float> out(jets.jet_eta.size() * size_t(o.pixels) * size_t(o.pixels), -1.0f);
  jet_images(jets.view(with_axis), o, out.data());
  return out;
}

float at(const std::vector<float>& img, int jet, int row, int col) { return img[size_t(jet * kPix * kPix + row * kPix + col)]; }

TEST(JetImages, HandMadeJetsLandInTheirPixels) {
  Jets j;
  j.add(0.3, 1.0, {{100, 0.3, 1.0}, {20, 0.8, 0.7}, {5, 0.3, 1.0}});  // the axis twice, d = (0.5, -0.3)
  j.add(-1.2, 3.1, {{7, -1.2, -3.1}});     // d_phi = 2 pi - 6.2 = 0.0832 across the +-pi seam
  j.add(0.0, 0.0, {{1, 1.0, -1.0}, {2, -1.0, 0.5}, {4, 1.0 + 1e-12, 0}, {8, 0, 3}});  // on the edges; two outside
  j.add(0.0, 0.0, {});                     // no constituents: an empty image
  const auto img = images(j);
  EXPECT_EQ(at(img, 0, 12, 12), 105.0f);  // d = 0: [-0.04, 0.04)
  EXPECT_EQ(at(img, 0, 18, 8), 20.0f);    // (0.5 + 1) / 0.08 = 18.75, (0.7) / 0.08 = 8.75
  EXPECT_EQ(at(img, 1, 12, 13), 7.0f);    // (0.0832 + 1) / 0.08 = 13.5
  EXPECT_EQ(at(img, 2, 24, 0), 1.0f);     // d_eta = +1 (the last edge) is in the last row, -1 in the first
  EXPECT_EQ(at(img, 2, 0, 18), 2.0f);
  double sum[4] = {};
  for (int jet = 0; jet < 4; ++jet)
    for (int p = 0; p < kPix * kPix; ++p) sum[jet] += img[size_t(jet * kPix * kPix + p)];
  EXPECT_EQ(sum[0], 125.0);
  EXPECT_EQ(sum[1], 7.0);
  EXPECT_EQ(sum[2], 3.0);  // 1 + 2: d_eta just past +1 and d_phi = 3 are outside
  EXPECT_EQ(sum[3], 0.0);
}

// numpy.histogram2d's rule, brute force: edges linspace(-1, 1, 26); bin k holds [e_k, e_k+1), the last
// bin also its right edge; the sum in float64, in order, rounded to float32.
std::vector<float> reference(const Jets& j) {
  std::vector<double> edges(kPix + 1);
  const double step = 2.0 / kPix;
  for (int k = 0; k <= kPix; ++k) edges[size_t(k)] = double(k) * step + -1.0;
  edges[kPix] = 1.0;
  const auto bin = [&](double x) {
    for (int k = 0; k < kPix; ++k)
      if (edges[size_t(k)] <= x && (x < edges[size_t(k) + 1] || (k == kPix - 1 && x == edges[kPix]))) return k;
    return -1;
  };
  std::vector<float> out;
  for (size_t jet = 0; jet + 1 < j.offsets.size(); ++jet) {
    std::vector<double> acc(kPix * kPix, 0.0);
    for (int64_t i = j.offsets[jet]; i < j.offsets[jet + 1]; ++i) {
      const double de = j.eta[size_t(i)] - j.jet_eta[jet];
      double dp = std::fmod(j.phi[size_t(i)] - j.jet_phi[jet] + std::numbers::pi, 2 * std::numbers::pi);
      if (dp < 0) dp += 2 * std::numbers::pi;
      dp -= std::numbers::pi;
      const int r = bin(de), q = bin(dp);
      if (r >= 0 && q >= 0) acc[size_t(r * kPix + q)] += j.pt[size_t(i)];
    }
    for (double v : acc) out.push_back(float(v));
  }
  return out;
}

TEST(JetImages, RandomJetsEqualTheBruteForceRule) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1.2, 1.2), angle(-std::numbers::pi, std::numbers::pi);
  std::exponential_distribution<double> pt(0.05);
  Jets j;
  for (int jet = 0; jet < 300; ++jet) {
    std::vector<std::array<double, 3>> c;
    const double jeta = u(rng), jphi = angle(rng);
    for (int i = 0; i < 50; ++i) {
      double de = u(rng);
      if (i % 7 == 0) de = std::round(de / 0.08) * 0.08;  // many near an edge
      c.push_back({pt(rng), jeta + de, std::remainder(jphi + u(rng), 2 * std::numbers::pi)});
    }
    j.add(jeta, jphi, c);
  }
  const auto got = images(j), want = reference(j);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "pixel " << i;
  // float32 inputs are widened: the same images as the double ones of the same values.
  std::vector<float> pt32(j.pt.begin(), j.pt.end()), eta32(j.eta.begin(), j.eta.end()), phi32(j.phi.begin(), j.phi.end()),
      jeta32(j.jet_eta.begin(), j.jet_eta.end()), jphi32(j.jet_phi.begin(), j.jet_phi.end());
  Jets widened;
  widened.pt.assign(pt32.begin(), pt32.end()), widened.eta.assign(eta32.begin(), eta32.end());
  widened.phi.assign(phi32.begin(), phi32.end()), widened.jet_eta.assign(jeta32.begin(), jeta32.end());
  widened.jet_phi.assign(jphi32.begin(), jphi32.end()), widened.offsets = j.offsets;
  std::vector<float> from32(got.size());
  jet_images(Constituents<float>{pt32, eta32, phi32, j.offsets, jeta32, jphi32}, {}, from32.data());
  EXPECT_EQ(from32, images(widened));
}

TEST(JetImages, TheCentroidCentresTheJet) {
  Jets j;  // equal pT at eta 0.4 -+ 0.3 and phi -3.03 +- 0.23, across the seam
  j.add(0, 0, {{10, 0.1, -2.8}, {10, 0.7, -3.26 + 2 * std::numbers::pi}});
  JetImageOptions o;
  o.centre = JetImageOptions::Centre::centroid;
  const auto img = images(j, o, /*with_axis=*/false);  // phi relative to the hardest constituent
  // d = (-0.3, +0.23) and (+0.3, -0.23): rows (0.7 / 0.08 = 8.75, 1.3 / 0.08 = 16.25), columns 15.4, 9.6
  EXPECT_EQ(at(img, 0, 8, 15), 10.0f);
  EXPECT_EQ(at(img, 0, 16, 9), 10.0f);
}

TEST(JetImages, RotationPutsTheMajorAxisAlongEta) {
  Jets j;  // a prong along the diagonal d_eta = d_phi, 0.5 long, and a soft one across it
  j.add(0, 0, {{50, 0, 0}, {30, 0.3, 0.3}, {20, -0.3, -0.3}, {1, -0.05, 0.05}});
  JetImageOptions o;
  o.rotate = true;
  const auto img = images(j, o);
  // The prong at distance 0.3 sqrt(2) = 0.424 on the d_eta axis: rows (1.424 / 0.08 = 17.8, 0.576 / 0.08 = 7.2)
  EXPECT_EQ(at(img, 0, 17, 12), 30.0f);
  EXPECT_EQ(at(img, 0, 7, 12), 20.0f);
  EXPECT_EQ(at(img, 0, 12, 12), 50.0f);
  EXPECT_EQ(at(img, 0, 12, 13), 1.0f);  // the soft one across the prong: d_phi 0.05 sqrt(2) = 0.071
}

TEST(JetImages, FlippingPutsTheHarderSideOnPositiveAngles) {
  Jets j;
  j.add(0, 0, {{50, 0, 0}, {30, -0.5, -0.5}, {5, 0.5, 0.5}});
  JetImageOptions o;
  o.flip = true;
  const auto img = images(j, o);
  EXPECT_EQ(at(img, 0, 18, 18), 30.0f);  // (-0.5, -0.5) mirrored in both to (0.5, 0.5): (1.5 / 0.08 = 18.75)
  EXPECT_EQ(at(img, 0, 6, 6), 5.0f);
}

TEST(JetImages, NormalisedImagesSumToOne) {
  Jets j;
  j.add(0, 0, {{3, 0, 0}, {1, 0.5, 0}, {4, 5.0, 0}});  // the last outside the grid: not counted
  JetImageOptions o;
  o.normalise = true;
  const auto img = images(j, o);
  EXPECT_EQ(at(img, 0, 12, 12), 0.75f);
  EXPECT_EQ(at(img, 0, 18, 12), 0.25f);
}

TEST(JetImages, BadInputIsOneClearError) {
  const auto fails = [](Jets j, const std::string& message, JetImageOptions o = {}, bool axis = true) {
    try {
      images(j, o, axis);
      ADD_FAILURE() << "no error; expected: " << message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  };
  Jets good;
  good.add(0, 0, {{1, 0, 0}, {2, 0.1, 0.1}});
  good.add(0, 0, {{1, 0, 0}});
  Jets j = good;
  j.offsets[2] = 1;
  fails(j, "offsets decrease at jet 1");
  j = good;
  j.offsets.back() = 9;
  fails(j, "the last offset, 9, is past the 3 constituents");
  j = good;
  j.pt[1] = std::nan("");
  fails(j, "jet 0, constituent 1: pt, eta and phi must be finite and pt not negative");
  j = good;
  j.phi.pop_back();
  fails(j, "pt, eta and phi must have one entry per constituent (3, 3, 2)");
  fails(good, "centring on the jet axis needs jet_eta and jet_phi", {}, false);
  JetImageOptions o;
  o.pixels = 0;
  fails(good, "pixels must be 1 to 1024", o);
  EXPECT_THROW(centre_named("leading", "--centre"), Error);
}

}  // namespace
}  // namespace aware
