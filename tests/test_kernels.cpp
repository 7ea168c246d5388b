// Every CPU kernel against a naive double-precision reference on random odd sizes, plus gradient
// checks by central differences of the double references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/conv_relu_pool.h"
#include "kernels/dropout.h"
#include "kernels/gather.h"
#include "kernels/linear.h"
#include "kernels/philox.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "synthetic.h"

namespace aware {
namespace {

constexpr int kThreads = 2;

using testing::random_vector;

// Poisoned outputs: a kernel that skips an element leaves a NaN behind.
std::vector<float> poisoned(size_t n) { return std::vector<float>(n, std::nanf("")); }

void expect_close(const std::vector<double>& ref, const float* got, double rel, const char* what) {
  double scale = 1e-6;
  for (double r : ref) scale = std::max(scale, std::abs(r));
  for (size_t i = 0; i < ref.size(); ++i)
    ASSERT_NEAR(got[i], ref[i], rel * scale) << what << " element " << i;
}

// ---- conv + bias + ReLU + pool: naive double reference ---------------------------------------

struct ConvRef {
  std::vector<double> act, y;  // pre-pool (after ReLU) and output
};

ConvRef conv_reference(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                       const std::vector<float>& b) {
  ConvRef r;
  const int oh = s.conv_h(), ow = s.conv_w();
  r.act.assign(size_t(s.batch) * s.act_size(), 0.0);
  for (int n = 0; n < s.batch; ++n)
    for (int o = 0; o < s.out_c; ++o)
      for (int yy = 0; yy < oh; ++yy)
        for (int xx = 0; xx < ow; ++xx) {
          double sum = b[o];
          for (int c = 0; c < s.in_c; ++c)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                const int iy = yy + ky - s.pad, ix = xx + kx - s.pad;
                if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                sum += double(w[((o * s.in_c + c) * 3 + ky) * 3 + kx]) *
                       x[((size_t(n) * s.in_c + c) * s.in_h + iy) * s.in_w + ix];
              }
          r.act[((size_t(n) * s.out_c + o) * oh + yy) * ow + xx] = s.relu ? std::max(sum, 0.0) : sum;
        }
  if (!s.pool) {
    r.y = r.act;
    return r;
  }
  r.y.assign(size_t(s.batch) * s.out_size(), 0.0);
  for (int n = 0; n < s.batch; ++n)
    for (int o = 0; o < s.out_c; ++o)
      for (int py = 0; py < s.out_h(); ++py)
        for (int px = 0; px < s.out_w(); ++px) {
          double m = -1e300;
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx)
              m = std::max(m, r.act[((size_t(n) * s.out_c + o) * oh + 2 * py + dy) * ow + 2 * px + dx]);
          r.y[((size_t(n) * s.out_c + o) * s.out_h() + py) * s.out_w() + px] = m;
        }
  return r;
}

// L = sum(y * g) in double, for gradient checks of the reference itself.
double conv_objective(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                      const std::vector<float>& b, const std::vector<float>& g) {
  const ConvRef r = conv_reference(s, x, w, b);
  double sum = 0;
  for (size_t i = 0; i < r.y.size(); ++i) sum += r.y[i] * g[i];
  return sum;
}

class ConvTest : public ::testing::TestWithParam<std::tuple<int, bool, bool>> {};

TEST_P(ConvTest, ForwardMatchesDoubleReference) {
  const auto [pad, relu, pool] = GetParam();
  const ConvShape s{5, 3, 9, 11, 7, pad, relu, pool};
  const auto x = random_vector(s.batch * s.in_size(), 1), w = random_vector(s.weight_size(), 2),
             b = random_vector(s.out_c, 3);
  auto act = poisoned(s.batch * s.act_size()), y = poisoned(s.batch * s.out_size());
  std::vector<float> ws(cpu::conv_relu_pool_workspace(s, kThreads));
  cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), pool ? y.data() : act.data(), ws.data(), kThreads);
  const ConvRef r = conv_reference(s, x, w, b);
  expect_close(r.act, act.data(), 1e-5, "act");
  if (pool) expect_close(r.y, y.data(), 1e-5, "y");
}

TEST_P(ConvTest, BackwardMatchesFiniteDifferencesOfTheReference) {
  const auto [pad, relu, pool] = GetParam();
  const ConvShape s{3, 2, 7, 9, 5, pad, relu, pool};
  const auto x = random_vector(s.batch * s.in_size(), 4), w = random_vector(s.weight_size(), 5),
             b = random_vector(s.out_c, 6), g = random_vector(s.batch * s.out_size(), 7);
  std::vector<float> act(s.batch * s.act_size()), y(s.batch * s.out_size());
  std::vector<float> ws(cpu::conv_relu_pool_workspace(s, kThreads));
  cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), pool ? y.data() : act.data(), ws.data(), kThreads);
  // Central differences of the double reference; a step of 1e-5 stays clear of ReLU kinks and pool
  // ties except by chance, which the fixed seeds rule out.
  const double h = 1e-5;
  auto numeric = [&](std::vector<float> v, size_t i, auto objective) {
    const float keep = v[i];
    v[i] = float(keep + h);
    const double up = objective(v);
    v[i] = float(keep - h);
    const double down = objective(v);
    return (up - down) / (double(float(keep + h)) - double(float(keep - h)));
  };
  // Winograd (automatic, the layers without the pool) and the direct sum (--conv direct).
  for (auto algorithm : {cpu::ConvAlgorithm::automatic, cpu::ConvAlgorithm::direct}) {
    SCOPED_TRACE(algorithm == cpu::ConvAlgorithm::direct ? "direct" : "automatic");
    auto dx = poisoned(x.size()), dw = poisoned(w.size()), db = poisoned(b.size());
    cpu::conv_relu_pool_backward(s, x.data(), w.data(), act.data(), g.data(), dx.data(), dw.data(), db.data(), ws.data(),
                                 kThreads, algorithm);
    for (size_t i = 0; i < w.size(); i += 7)
      EXPECT_NEAR(dw[i], numeric(w, i, [&](auto& v) { return conv_objective(s, x, v, b, g); }), 2e-3) << "dw " << i;
    for (size_t i = 0; i < b.size(); ++i)
      EXPECT_NEAR(db[i], numeric(b, i, [&](auto& v) { return conv_objective(s, x, w, v, g); }), 2e-3) << "db " << i;
    for (size_t i = 0; i < x.size(); i += 5)
      EXPECT_NEAR(dx[i], numeric(x, i, [&](auto& v) { return conv_objective(s, v, w, b, g); }), 2e-3) << "dx " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvTest,
                         ::testing::Combine(::testing::Values(0, 1), ::testing::Bool(), ::testing::Bool()));

TEST(Conv, PaperShapesForwardMatchReference) {
  // The four layers of Fig. 1 at a small odd batch.
  for (ConvShape s : {ConvShape{3, 1, 25, 25, 30, 0, true, false}, ConvShape{3, 30, 23, 23, 40, 1, true, false},
                      ConvShape{3, 40, 23, 23, 30, 0, true, true}, ConvShape{3, 30, 10, 10, 40, 1, true, true}}) {
    const auto x = random_vector(s.batch * s.in_size(), 8, 0.0f, 1.0f), w = random_vector(s.weight_size(), 9, -0.1f, 0.1f),
               b = random_vector(s.out_c, 10, -0.1f, 0.1f);
    std::vector<float> act(s.batch * s.act_size()), y = poisoned(s.batch * s.out_size());
    std::vector<float> ws(cpu::conv_relu_pool_workspace(s, kThreads));
    cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), y.data(), ws.data(), kThreads);
    expect_close(conv_reference(s, x, w, b).y, y.data(), 1e-5, "y");
  }
}

TEST(Conv, BothForwardAlgorithmsMatchTheReference) {
  // Odd and even output sizes (a last tile half outside), a tile row longer than a vector (40 columns:
  // 20 tiles), one input channel, and a channel count that leaves a partial register block.
  for (ConvShape s : {ConvShape{2, 1, 25, 25, 30, 0, true, false}, ConvShape{3, 7, 9, 12, 11, 1, false, false},
                      ConvShape{2, 5, 42, 40, 9, 0, true, true}, ConvShape{2, 30, 10, 10, 40, 1, true, true},
                      ConvShape{1, 3, 4, 3, 2, 1, true, false}})
    for (auto algorithm : {cpu::ConvAlgorithm::direct, cpu::ConvAlgorithm::winograd}) {
      const auto x = random_vector(s.batch * s.in_size(), 15), w = random_vector(s.weight_size(), 16),
                 b = random_vector(s.out_c, 17);
      auto act = poisoned(s.batch * s.act_size()), y = poisoned(s.batch * s.out_size());
      std::vector<float> ws(cpu::conv_relu_pool_workspace(s, kThreads));
      cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), s.pool ? y.data() : act.data(), ws.data(),
                                  kThreads, algorithm);
      const ConvRef r = conv_reference(s, x, w, b);
      SCOPED_TRACE(algorithm == cpu::ConvAlgorithm::direct ? "direct" : "winograd");
      SCOPED_TRACE(s.in_c);
      expect_close(r.act, act.data(), 1e-5, "act");
      if (s.pool) expect_close(r.y, y.data(), 1e-5, "y");
    }
}

TEST(Conv, PoolingWithoutActivationsGivesTheSameOutputs) {
  // Scoring passes no act: the pooled outputs then come straight from the tiles (Winograd) or from
  // scratch (direct). Odd and even planes, both algorithms, the same bits as with act.
  for (ConvShape s : {ConvShape{3, 40, 23, 23, 30, 0, true, true}, ConvShape{2, 5, 12, 11, 7, 1, true, true},
                      ConvShape{2, 1, 25, 25, 6, 0, false, true}, ConvShape{2, 3, 38, 40, 4, 0, true, true}})
    for (auto algorithm : {cpu::ConvAlgorithm::direct, cpu::ConvAlgorithm::winograd}) {
      const auto x = random_vector(s.batch * s.in_size(), 18), w = random_vector(s.weight_size(), 19),
                 b = random_vector(s.out_c, 20);
      std::vector<float> act(s.batch * s.act_size()), y(s.batch * s.out_size());
      auto y_only = poisoned(s.batch * s.out_size());
      std::vector<float> ws(cpu::conv_relu_pool_workspace(s, kThreads));
      cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), y.data(), ws.data(), kThreads, algorithm);
      cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), nullptr, y_only.data(), ws.data(), kThreads, algorithm);
      SCOPED_TRACE(algorithm == cpu::ConvAlgorithm::direct ? "direct" : "winograd");
      SCOPED_TRACE(s.in_c);
      EXPECT_EQ(y, y_only);
      expect_close(conv_reference(s, x, w, b).y, y_only.data(), 1e-5, "y");
    }
}

TEST(Conv, BackwardIsTheSameBitForBitWithAnyThreadCount) {
  const ConvShape s{37, 4, 11, 11, 6, 1, true, true};
  const auto x = random_vector(s.batch * s.in_size(), 11), w = random_vector(s.weight_size(), 12),
             b = random_vector(s.out_c, 13), g = random_vector(s.batch * s.out_size(), 14);
  std::vector<float> act(s.batch * s.act_size()), y(s.batch * s.out_size()), ws(cpu::conv_relu_pool_workspace(s, 3));
  cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), y.data(), ws.data(), 3);
  auto run = [&](int threads) {
    std::vector<float> dx(x.size()), dw(w.size()), db(b.size());
    cpu::conv_relu_pool_backward(s, x.data(), w.data(), act.data(), g.data(), dx.data(), dw.data(), db.data(), ws.data(), threads);
    dw.insert(dw.end(), db.begin(), db.end());
    dw.insert(dw.end(), dx.begin(), dx.end());
    return dw;
  };
  EXPECT_EQ(run(1), run(2));
  EXPECT_EQ(run(1), run(3));
}

// ---- linear ----------------------------------------------------------------------------------

TEST(Linear, ForwardAndBackwardMatchDoubleReference) {
  for (bool relu : {false, true}) {
    const int B = 7, I = 13, O = 5;
    const auto x = random_vector(B * I, 20), w = random_vector(O * I, 21), b = random_vector(O, 22),
               g = random_vector(B * O, 23);
    auto y = poisoned(B * O);
    cpu::linear_forward(B, I, O, relu, x.data(), w.data(), b.data(), y.data());
    std::vector<double> ry(B * O), rdx(B * I, 0.0), rdw(O * I, 0.0), rdb(O, 0.0), dz(B * O);
    for (int n = 0; n < B; ++n)
      for (int o = 0; o < O; ++o) {
        double z = b[o];
        for (int i = 0; i < I; ++i) z += double(x[n * I + i]) * w[o * I + i];
        ry[n * O + o] = relu ? std::max(z, 0.0) : z;
        dz[n * O + o] = (relu && z <= 0.0) ? 0.0 : g[n * O + o];
      }
    for (int n = 0; n < B; ++n)
      for (int o = 0; o < O; ++o) {
        rdb[o] += dz[n * O + o];
        for (int i = 0; i < I; ++i) {
          rdw[o * I + i] += dz[n * O + o] * x[n * I + i];
          rdx[n * I + i] += dz[n * O + o] * w[o * I + i];
        }
      }
    expect_close(ry, y.data(), 1e-5, "y");
    auto dy = g;
    auto dx = poisoned(B * I), dw = poisoned(O * I), db = poisoned(O);
    cpu::linear_backward(B, I, O, relu, x.data(), w.data(), y.data(), dy.data(), dx.data(), dw.data(), db.data());
    expect_close(rdx, dx.data(), 1e-5, "dx");
    expect_close(rdw, dw.data(), 1e-5, "dw");
    expect_close(rdb, db.data(), 1e-5, "db");
  }
}

// ---- Philox and dropout ----------------------------------------------------------------------

TEST(Philox, KnownAnswers) {
  // Known-answer vectors of Random123 (kat_vectors, philox4x32_10).
  const Philox4x32 zero = philox4x32_10({{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  const Philox4x32 pi = philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(pi.v[0], 0xd16cfe09u);
  EXPECT_EQ(pi.v[1], 0x94fdccebu);
  EXPECT_EQ(pi.v[2], 0x5001e420u);
  EXPECT_EQ(pi.v[3], 0x24126ea1u);
}

TEST(Dropout, KeepsTheRightFractionAndBackwardUsesTheSameMask) {
  const size_t n = 100001;
  const float rate = 0.3f;
  const auto x = random_vector(n, 30, 0.5f, 1.5f);  // never zero
  auto y = poisoned(n), dx = poisoned(n);
  cpu::dropout(n, rate, 42, 7, 0, x.data(), y.data());
  std::vector<float> ones(n, 1.0f);
  cpu::dropout(n, rate, 42, 7, 0, ones.data(), dx.data());
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool keep = y[i] != 0.0f;
    kept += keep;
    ASSERT_EQ(keep, dx[i] != 0.0f) << i;
    if (keep) {
      ASSERT_FLOAT_EQ(y[i], x[i] / (1.0f - rate));
      ASSERT_FLOAT_EQ(dx[i], 1.0f / (1.0f - rate));
    }
  }
  EXPECT_NEAR(double(kept) / n, 0.7, 0.005);  // 0.005 is 3.5 standard deviations
  auto y2 = poisoned(n);
  cpu::dropout(n, rate, 42, 8, 0, x.data(), y2.data());
  EXPECT_NE(y, y2) << "another stream must give another mask";
  // Two calls over two halves with their offsets draw the mask of one call over the whole.
  auto halves = poisoned(n);
  cpu::dropout(n / 2, rate, 42, 7, 0, x.data(), halves.data());
  cpu::dropout(n - n / 2, rate, 42, 7, n / 2, x.data() + n / 2, halves.data() + n / 2);
  EXPECT_EQ(halves, y);
}

// ---- softmax cross-entropy -------------------------------------------------------------------

TEST(SoftmaxXent, HandComputedCases) {
  // Two classes, equal logits: loss ln 2 for a hard label and for the uniform target.
  const float logits[4] = {0.0f, 0.0f, 1.0f, 3.0f};
  const int32_t label[2] = {0, kUniformTarget};
  const float weight[2] = {1.0f, 1.0f};
  float d[4], p[4];
  const double loss = cpu::softmax_xent(2, 2, logits, label, weight, d, p);
  // Row 1, uniform target: logsumexp(1, 3) - mean(1, 3) = log(e + e^3) - 2.
  const double uniform = std::log(std::exp(1.0) + std::exp(3.0)) - 2.0;
  EXPECT_NEAR(loss, std::log(2.0) + uniform, 1e-6);
  EXPECT_NEAR(d[0], -0.5, 1e-7);
  EXPECT_NEAR(d[1], 0.5, 1e-7);
  const double p3 = std::exp(3.0) / (std::exp(1.0) + std::exp(3.0));
  EXPECT_NEAR(d[2], (1 - p3) - 0.5, 1e-6);  // softmax - 1/Nc
  EXPECT_NEAR(d[3], p3 - 0.5, 1e-6);
  EXPECT_NEAR(p[3], p3, 1e-6);
}

TEST(SoftmaxXent, WeightedLossAndGradientMatchDoubleReference) {
  const int B = 9, C = 5;
  const auto z = random_vector(B * C, 40, -4.0f, 4.0f), w = random_vector(B, 41, 0.0f, 1.0f);
  std::vector<int32_t> label(B);
  for (int n = 0; n < B; ++n) label[n] = n % 3 == 0 ? kUniformTarget : n % C;
  auto d = poisoned(B * C);
  const double loss = cpu::softmax_xent(B, C, z.data(), label.data(), w.data(), d.data(), nullptr);
  auto objective = [&](const std::vector<double>& zz) {
    double total = 0;
    for (int n = 0; n < B; ++n) {
      double m = -1e300, s = 0, mean = 0;
      for (int c = 0; c < C; ++c) m = std::max(m, zz[n * C + c]);
      for (int c = 0; c < C; ++c) s += std::exp(zz[n * C + c] - m), mean += zz[n * C + c] / C;
      const double lse = m + std::log(s);
      total += w[n] * (label[n] == kUniformTarget ? lse - mean : lse - zz[n * C + label[n]]);
    }
    return total;
  };
  std::vector<double> zd(z.begin(), z.end());
  EXPECT_NEAR(loss, objective(zd), 1e-5);
  for (int i = 0; i < B * C; ++i) {
    auto up = zd, down = zd;
    up[i] += 1e-6, down[i] -= 1e-6;
    EXPECT_NEAR(d[i], (objective(up) - objective(down)) / 2e-6, 1e-5) << i;
  }
}

// The epoch's loss and accuracy on the backend: the loss added, the rows whose largest probability (the
// first on ties, as std::max_element) is the label counted; an anomaly row (uniform target) never is.
TEST(StepStats, AddsTheLossAndCountsTheFirstLargestProbability) {
  const float probs[] = {0.7f, 0.3f,  0.5f, 0.5f,  0.2f, 0.8f,  0.5f, 0.5f,  0.9f, 0.1f};
  const int32_t label[] = {0, 0, 0, 1, kUniformTarget};
  double stats[2] = {1.5, 2.0};
  const double loss = 0.25;
  cpu::step_stats(5, 2, probs, label, &loss, stats);
  EXPECT_EQ(stats[0], 1.75);
  EXPECT_EQ(stats[1], 2.0 + 2.0);  // rows 0 and 1 (a tie goes to class 0); not 2, 3 or the anomaly
  cpu::step_stats(0, 2, probs, label, &loss, stats);  // no rows: the loss alone
  EXPECT_EQ(stats[0], 2.0);
  EXPECT_EQ(stats[1], 4.0);
}

// ---- SGD and gather --------------------------------------------------------------------------

TEST(Sgd, MatchesPyTorchsMomentumRule) {
  std::vector<float> w{1.0f, -2.0f}, v{0.0f, 0.0f};
  const std::vector<float> g1{0.5f, 1.0f}, g2{-1.0f, 0.25f};
  cpu::sgd_update(2, 0.1f, 0.9f, 0.01f, w.data(), g1.data(), v.data());
  // v = g + wd w; w -= lr v
  const double v0 = 0.5 + 0.01 * 1.0, w0 = 1.0 - 0.1 * v0;
  EXPECT_NEAR(w[0], w0, 1e-7);
  cpu::sgd_update(2, 0.1f, 0.9f, 0.01f, w.data(), g2.data(), v.data());
  const double v0b = 0.9 * v0 + (-1.0 + 0.01 * w0);
  EXPECT_NEAR(v[0], v0b, 1e-7);
  EXPECT_NEAR(w[0], w0 - 0.1 * v0b, 1e-7);
}

TEST(Gather, NormalisesRowsAndColumns) {
  const int rows_in = 11, cols = 7, n = 5;
  const auto in = random_vector(rows_in * cols, 50), rs = random_vector(rows_in, 51, 0.5f, 2.0f),
             shift = random_vector(cols, 52), scale = random_vector(cols, 53, 0.5f, 2.0f);
  const std::vector<int64_t> index{10, 0, 3, 3, 7};
  auto out = poisoned(n * cols);
  cpu::gather_normalise(n, cols, in.data(), false, index.data(), rs.data(), shift.data(), scale.data(), out.data());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < cols; ++j) {
      const double ref = (double(in[index[i] * cols + j]) * rs[index[i]] - shift[j]) * scale[j];
      ASSERT_NEAR(out[i * cols + j], ref, 1e-5);
    }
}

}  // namespace
}  // namespace aware
