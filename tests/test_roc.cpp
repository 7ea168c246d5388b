// AUC and ROC against a naive pair count, and hand cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "kernels/roc.h"
#include "kernels/error.h"
#include "tools/analysis.h"

namespace aware {
namespace {

// P(pos > neg) + P(pos == neg) / 2 by looking at every pair.
double naive_auc(const std::vector<float>& pos, const std::vector<float>& neg) {
  double wins = 0;
  for (float p : pos)
    for (float n : neg) wins += p > n ? 1.0 : p == n ? 0.5 : 0.0;
  return wins / (static_cast<double>(pos.size()) * neg.size());
}

// Scores from shifted distributions; levels > 0 rounds them to that many values, for many ties.
std::vector<float> scores(std::mt19937& rng, size_t n, double shift, int levels) {
  std::normal_distribution<float> normal(static_cast<float>(shift), 1.0f);
  std::vector<float> out(n);
  for (float& x : out) {
    x = normal(rng);
    if (levels > 0) x = std::round(std::clamp(x, -2.0f, 2.0f) * levels / 4) / levels;
  }
  return out;
}

TEST(Auc, MatchesPairCountWithAndWithoutTies) {
  std::mt19937 rng(7);
  const size_t sizes[][2] = {{1, 1}, {1, 17}, {33, 1}, {101, 77}, {333, 251}, {999, 613}};
  for (int levels : {0, 2, 5, 11}) {
    for (const auto& size : sizes) {
      const std::vector<float> pos = scores(rng, size[0], 0.7, levels);
      const std::vector<float> neg = scores(rng, size[1], 0.0, levels);
      EXPECT_NEAR(auc(pos, neg), naive_auc(pos, neg), 1e-12)
          << "levels " << levels << " sizes " << size[0] << "," << size[1];
    }
  }
}

TEST(Auc, HandCases) {
  const std::vector<float> low{0.1f, 0.2f, 0.3f}, high{0.6f, 0.7f, 0.8f, 0.9f};
  EXPECT_EQ(auc(high, low), 1.0);
  EXPECT_EQ(auc(low, high), 0.0);
  const std::vector<float> same(5, 0.4f), same_too(3, 0.4f);
  EXPECT_EQ(auc(same, same_too), 0.5);
  // pos 0.5 beats neg 0.1 (1) and ties neg 0.5 (1/2): 1.5 / 2.
  EXPECT_EQ(auc(std::vector<float>{0.5f}, std::vector<float>{0.5f, 0.1f}), 0.75);
  // pos {0.2, 0.6} against neg 0.4: one win, one loss.
  EXPECT_EQ(auc(std::vector<float>{0.2f, 0.6f}, std::vector<float>{0.4f}), 0.5);
}

TEST(Auc, RejectsEmptyAndNaN) {
  const std::vector<float> some{0.1f, 0.2f}, none;
  EXPECT_THROW(auc(none, some), Error);
  EXPECT_THROW(auc(some, none), Error);
  const std::vector<float> with_nan{0.1f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROW(auc(with_nan, some), Error);
}

TEST(RocCurve, AreaEqualsAucAndShape) {
  std::mt19937 rng(11);
  for (int levels : {0, 3, 8}) {
    const std::vector<float> pos = scores(rng, 257, 1.0, levels);
    const std::vector<float> neg = scores(rng, 191, 0.0, levels);
    const RocCurve curve = roc_curve(pos, neg);
    std::set<float> distinct(pos.begin(), pos.end());
    distinct.insert(neg.begin(), neg.end());
    ASSERT_EQ(curve.fpr.size(), distinct.size() + 1);  // one point per distinct value, plus (0, 0)
    EXPECT_EQ(curve.fpr.front(), 0.0);
    EXPECT_EQ(curve.tpr.front(), 0.0);
    EXPECT_EQ(curve.fpr.back(), 1.0);
    EXPECT_EQ(curve.tpr.back(), 1.0);
    for (size_t k = 1; k < curve.fpr.size(); ++k) {
      EXPECT_GE(curve.fpr[k], curve.fpr[k - 1]);
      EXPECT_GE(curve.tpr[k], curve.tpr[k - 1]);
      EXPECT_LT(curve.threshold[k], curve.threshold[k - 1]);
    }
    const double naive = naive_auc(pos, neg);
    EXPECT_NEAR(trapezoid_area(curve.fpr, curve.tpr), naive, 1e-12);
    EXPECT_NEAR(curve.auc, naive, 1e-12);
  }
}

TEST(RocCurve, TiesMakeOneDiagonalStep) {
  const RocCurve curve = roc_curve(std::vector<float>{0.5f, 0.5f}, std::vector<float>{0.5f});
  ASSERT_EQ(curve.fpr.size(), 2u);
  EXPECT_EQ(curve.fpr[1], 1.0);
  EXPECT_EQ(curve.tpr[1], 1.0);
  EXPECT_EQ(curve.auc, 0.5);
  EXPECT_TRUE(std::isinf(curve.threshold[0]));
  EXPECT_EQ(curve.threshold[1], 0.5f);
}

TEST(RocReport, ThinsButKeepsEndsAndExactAuc) {
  std::mt19937 rng(3);
  const std::vector<float> pos = scores(rng, 2000, 1.0, 0), neg = scores(rng, 1500, 0.0, 0);
  const nlohmann::json report = roc_report(pos, neg, 50);
  EXPECT_NEAR(report["auc"].get<double>(), naive_auc(pos, neg), 1e-12);
  ASSERT_EQ(report["fpr"].size(), 50u);
  EXPECT_EQ(report["fpr"][0].get<double>(), 0.0);
  EXPECT_EQ(report["tpr"][49].get<double>(), 1.0);
  EXPECT_TRUE(report["threshold"][0].is_null());  // +infinity
  EXPECT_EQ(report["points_total"].get<size_t>(), 3501u);
}

TEST(CentralFraction, StrictlyInside) {
  const std::vector<float> p{0.3f, 0.31f, 0.5f, 0.69f, 0.7f, 0.9f, 0.1f, 0.7000001f};
  // The edges compare in float, as NumPy does for float32 scores: 0.3f and 0.7f are on them, not inside.
  const nlohmann::json j = central_fraction(p);
  EXPECT_EQ(j["inside"].get<int>(), 3);
  EXPECT_EQ(j["fraction"].get<double>(), 3 / 8.0);
  const nlohmann::json k = central_fraction(std::vector<float>{0.2f, 0.4f, 0.6f, 0.8f}, 0.3, 0.7);
  EXPECT_EQ(k["fraction"].get<double>(), 0.5);
}

// The anomaly scores of a softmax row, and their AUROC and false-positive rate at 95% efficiency
// against a brute-force count.
TEST(AnomalyScores, ValuesAurocAndFprAt95) {
  const std::vector<float> row{0.7f, 0.2f, 0.1f};
  EXPECT_FLOAT_EQ(anomaly_score(row, 3, "p0_centre")[0], 0.3f);
  EXPECT_FLOAT_EQ(anomaly_score(row, 3, "max_softmax")[0], 0.3f);
  EXPECT_NEAR(anomaly_score(row, 3, "entropy")[0], -(0.7 * std::log(0.7) + 0.2 * std::log(0.2) + 0.1 * std::log(0.1)), 1e-6);
  EXPECT_THROW(anomaly_score(row, 3, "energy"), Error);

  // Two classes: anomalies near P = 0.5, normal events near 0 or 1.
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> centre(0.3f, 0.7f), edge(0.0f, 0.35f);
  std::vector<float> anomaly, normal;
  for (int i = 0; i < 400; ++i) {
    const float p = centre(gen);
    anomaly.insert(anomaly.end(), {p, 1 - p});
  }
  for (int i = 0; i < 600; ++i) {
    const float p = i % 2 ? edge(gen) : 1 - edge(gen);
    normal.insert(normal.end(), {p, 1 - p});
  }
  const auto report = anomaly_score_report(anomaly, normal, 2);
  const auto a = anomaly_score(anomaly, 2, "p0_centre"), n = anomaly_score(normal, 2, "p0_centre");
  EXPECT_NEAR(report["p0_centre"]["auroc"].get<double>(), naive_auc(a, n), 1e-12);
  // FPR at 95%: the threshold keeping 95% of the anomalies, the fraction of normal events above it.
  std::vector<float> sorted = a;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const float threshold = sorted[size_t(std::ceil(0.95 * sorted.size())) - 1];
  const double fpr = double(std::count_if(n.begin(), n.end(), [&](float x) { return x >= threshold; })) / n.size();
  EXPECT_NEAR(report["p0_centre"]["fpr_at_95_tpr"].get<double>(), fpr, 1e-12);
  // With two classes the three scores order the events alike.
  EXPECT_EQ(report["entropy"]["auroc"], report["p0_centre"]["auroc"]);
}

}  // namespace
}  // namespace aware
