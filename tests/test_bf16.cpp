// --precision bf16 (BF16 storage, FP32 arithmetic) on the CPU backend, the reference of the CUDA one:
// the rounding against a double-precision nearest-value search, and every kernel that stores BF16
// against its FP32 run with the stored values rounded by hand. Equality, not tolerance: the same FP32
// sums, rounded at the same points.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/conv_relu_pool.h"
#include "kernels/gather.h"
#include "model/train.h"
#include "kernels/error.h"
#include "synthetic.h"
#include "tools/pipeline.h"

namespace aware {
namespace {

using testing::random_vector;

// The BF16 neighbours of f (truncation and the next value away from zero) and the nearer of them by
// a double-precision distance, ties to the even bit pattern.
bf16 nearest_bf16(float f) {
  const bf16 low = bf16(float_bits(f) >> 16), high = bf16(low + 1);
  const double dl = std::abs(double(f) - double(from_bf16(low))), dh = std::abs(double(f) - double(from_bf16(high)));
  if (dl != dh) return dl < dh ? low : high;
  return (low & 1) == 0 ? low : high;
}

TEST(Bf16, RoundsToTheNearestValueTiesToEven) {
  std::vector<float> values = random_vector(20000, 90, -1000.0f, 1000.0f);
  for (float tiny : random_vector(2000, 91, -1e-30f, 1e-30f)) values.push_back(tiny);
  // Exact ties: halfway between 1 and the next BF16 value (even: 1), and between its successor and
  // the one after (even: the latter).
  values.insert(values.end(), {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-8f), 0.0f, -0.0f});
  for (float f : values) ASSERT_EQ(to_bf16(f), nearest_bf16(f)) << f;
  EXPECT_EQ(from_bf16(to_bf16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(from_bf16(to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  for (float f : random_vector(1000, 92, -5.0f, 5.0f)) ASSERT_LE(std::abs(round_bf16(f) - f), std::abs(f) * 0x1p-8f);
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::nanf("")))));
  EXPECT_EQ(from_bf16(to_bf16(std::numeric_limits<float>::infinity())), std::numeric_limits<float>::infinity());
  EXPECT_EQ(from_bf16(to_bf16(std::numeric_limits<float>::max())), std::numeric_limits<float>::infinity());
}

// Forward and backward of a pooled layer with BF16 act: the forward pass is the FP32 one with act
// rounded and y the pool of the rounded values; the backward pass is the FP32 one given that act.
TEST(Bf16, ConvStoresRoundedActivationsAndPoolsAndRoutesByThem) {
  for (int pad : {0, 1}) {
    ConvShape s{5, 3, 9, 11, 7, pad, true, true};
    const auto x = random_vector(s.batch * s.in_size(), 93), w = random_vector(s.weight_size(), 94),
               b = random_vector(s.out_c, 95), dy = random_vector(s.batch * s.out_size(), 96);
    const size_t A = s.batch * s.act_size();
    std::vector<float> ws(cpu::conv_relu_pool_workspace(s, 2));
    std::vector<float> act(A), y(s.batch * s.out_size());
    cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), act.data(), y.data(), ws.data(), 2);

    ConvShape h = s;
    h.bf16_act = true;
    std::vector<bf16> act_h(A, 0xffff);  // NaN: an element left unwritten shows
    std::vector<float> y_h(y.size(), std::nanf(""));
    cpu::conv_relu_pool_forward(h, x.data(), w.data(), b.data(), act_h.data(), y_h.data(), ws.data(), 2);
    std::vector<float> rounded(A);
    for (size_t i = 0; i < A; ++i) {
      ASSERT_EQ(act_h[i], to_bf16(act[i])) << i;
      rounded[i] = from_bf16(act_h[i]);
    }
    const int cw = s.conv_w(), P = s.conv_h() * cw, oh = s.out_h(), ow = s.out_w();
    for (int plane = 0; plane < s.batch * s.out_c; ++plane)
      for (int py = 0; py < oh; ++py)
        for (int px = 0; px < ow; ++px) {
          const float* a = rounded.data() + size_t(plane) * P + 2 * py * cw + 2 * px;
          ASSERT_EQ(y_h[size_t(plane) * oh * ow + py * ow + px], std::max({a[0], a[1], a[cw], a[cw + 1]}));
        }

    auto backward = [&](const ConvShape& shape, const void* saved) {
      std::vector<float> dx(x.size()), dw(w.size()), db(b.size());
      cpu::conv_relu_pool_backward(shape, x.data(), w.data(), saved, dy.data(), dx.data(), dw.data(), db.data(),
                                   ws.data(), 2);
      dx.insert(dx.end(), dw.begin(), dw.end());
      dx.insert(dx.end(), db.begin(), db.end());
      return dx;
    };
    EXPECT_EQ(backward(h, act_h.data()), backward(s, rounded.data()));
  }
}

TEST(Bf16, ConvRefusesBf16ActivationsWithoutThePool) {
  ConvShape s{1, 1, 5, 5, 2, 1, true, false};
  s.bf16_act = true;
  std::vector<float> x(s.in_size()), w(s.weight_size()), b(2), y(s.out_size());
  std::vector<float> ws(cpu::conv_relu_pool_workspace(s, 1));
  EXPECT_THROW(cpu::conv_relu_pool_forward(s, x.data(), w.data(), b.data(), y.data(), y.data(), ws.data(), 1), Error);
}

TEST(Bf16, GatherWidensStoredEvents) {
  const int rows_in = 13, cols = 9, n = 6;
  const auto in = random_vector(rows_in * cols, 97, 0.0f, 50.0f), rs = random_vector(rows_in, 98, 0.5f, 2.0f),
             shift = random_vector(cols, 99), scale = random_vector(cols, 100, 0.5f, 2.0f);
  std::vector<bf16> stored(in.size());
  to_bf16(in.data(), in.size(), stored.data());
  std::vector<float> rounded(in.size());
  for (size_t i = 0; i < in.size(); ++i) rounded[i] = from_bf16(stored[i]);
  const std::vector<int64_t> index{12, 0, 5, 5, 7, 1};
  std::vector<float> got(n * cols, std::nanf("")), want(n * cols);
  cpu::gather_normalise(n, cols, stored.data(), true, index.data(), rs.data(), shift.data(), scale.data(), got.data());
  cpu::gather_normalise(n, cols, rounded.data(), false, index.data(), rs.data(), shift.data(), scale.data(), want.data());
  EXPECT_EQ(got, want);
}

TEST(Bf16, OnlyTheFusedKernelsStoreBf16AndTheBackendSaysSo) {
  EXPECT_TRUE(make_backend("cpu", {"fused", "bf16"})->bf16_storage());
  EXPECT_FALSE(make_backend("cpu")->bf16_storage());
  EXPECT_NE(make_backend("cpu", {"fused", "bf16"})->name().find("bf16"), std::string::npos);
  EXPECT_THROW(make_backend("cpu", {"cudnn", "bf16"}), Error);
  EXPECT_THROW(make_backend("cpu", {"fused", "fp16"}), Error);
}

// A whole prior stage in BF16 storage follows the FP32 one closely (the rounding is 2^-9 relative)
// and learns as well.
TEST(Bf16, APriorStageTrainsLikeFp32) {
  const auto dir = testing::fresh_dir("bf16_prior");
  testing::write_synthetic_classes(dir / "data");
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  const Events events = load_events(cfg);
  auto train = [&](const std::string& precision) {
    auto backend = make_backend("cpu", {"fused", precision});
    auto m = make_model(*backend, cfg, events.normal_train.event_shape, events.normaliser);
    EXPECT_EQ(m->graph().describe().find("bf16 act") != std::string::npos, precision == "bf16")
        << m->graph().describe();
    m->set_params(initial_params(m->graph(), cfg.seed));
    StageOptions o;
    o.stage = "prior";
    o.epochs = cfg.train.epochs;
    o.checkpoint = dir / (precision + ".ckpt");
    o.log = dir / (precision + ".jsonl");
    o.progress = false;
    train_stage(*m, cfg, events.normal_train, nullptr, events.normal_test, o, checkpoint_base(cfg, events));
    const auto probs = m->predict(events.normal_test.x.data(), events.normal_test.rows());
    int correct = 0;
    for (int64_t i = 0; i < events.normal_test.rows(); ++i)
      correct += (probs[2 * i + 1] > probs[2 * i] ? 1 : 0) == events.normal_test.label[size_t(i)];
    return std::make_pair(m->params(), correct);
  };
  const auto [fp32, correct32] = train("fp32");
  const auto [bf16w, correct16] = train("bf16");
  ASSERT_EQ(fp32.size(), bf16w.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < fp32.size(); ++i) {
    diff += (double(fp32[i]) - bf16w[i]) * (double(fp32[i]) - bf16w[i]);
    norm += double(fp32[i]) * fp32[i];
  }
  EXPECT_NE(fp32, bf16w);                      // the rounding is there
  EXPECT_LT(std::sqrt(diff / norm), 2e-2);     // and small after a whole stage
  EXPECT_NEAR(correct16, correct32, 3);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace aware
