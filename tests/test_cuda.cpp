// The CUDA backend against the CPU backend (the reference): every kernel on fresh random inputs of odd
// sizes with the outputs poisoned (NaN) before each run, one and ten training steps from the same
// weights, and a whole prior + AA run. Skipped (GTEST_SKIP) where this build has no CUDA backend or no
// device is present; any CUDA error fails the test (the backend throws).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <sstream>

#include "kernels/bf16.h"
#include "kernels/roc.h"
#include "kernels/scan.h"
#include "kernels/toys.h"
#include "tools/lee.h"
#include "kernels/softmax_xent.h"
#include "runtime/npy.h"
#include "model/train.h"
#include "runtime/backend.h"
#include "runtime/communicator.h"
#include "synthetic.h"
#include "ten_steps.h"
#include "tools/pipeline.h"

namespace aware {
namespace {

using testing::random_vector;

// One buffer on each backend, filled from the host or poisoned with NaN.
struct Twin {
  Backend& cpu;
  Backend& gpu;
  size_t bytes;
  void* c;
  void* g;
  Twin(Backend& cpu_, Backend& gpu_, size_t bytes_) : cpu(cpu_), gpu(gpu_), bytes(bytes_) {
    c = cpu.allocate(bytes);
    g = gpu.allocate(bytes);
  }
  Twin(const Twin&) = delete;
  ~Twin() {
    cpu.release(c);
    gpu.release(g);
  }
  template <class T>
  void set(const std::vector<T>& v) {
    cpu.to_device(c, v.data(), bytes);
    gpu.to_device(g, v.data(), bytes);
  }
  void poison() { set(std::vector<float>((bytes + 3) / sizeof(float), std::numeric_limits<float>::quiet_NaN())); }
  float* fc() { return static_cast<float*>(c); }
  float* fg() { return static_cast<float*>(g); }
  std::vector<float> host_cpu() {
    std::vector<float> v(bytes / sizeof(float));
    cpu.to_host(v.data(), c, bytes);
    return v;
  }
  std::vector<float> host_gpu() {
    std::vector<float> v(bytes / sizeof(float));
    gpu.to_host(v.data(), g, bytes);
    return v;
  }
};

// |gpu - cpu| <= tol * max|cpu| element by element, and no NaN left from the poison.
void expect_close(Twin& t, double tol, const std::string& what) {
  const auto a = t.host_cpu(), b = t.host_gpu();
  double scale = 0.0;
  for (float x : a) scale = std::max(scale, double(std::fabs(x)));
  size_t bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= tol * std::max(scale, 1e-30))) ++bad;
    if (std::isfinite(d)) worst = std::max(worst, d);
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << a.size() << " differ; largest |diff| " << worst
                     << " against max |cpu| " << scale;
}

// Without a device the tests skip, unless AWARE_REQUIRE_CUDA=1 (scripts/gpu_check.sh): then a GPU run
// that finds no usable device fails, saying why, instead of passing quietly.
bool cuda_or_skip_reason(std::string& why) {
  if (cuda_available()) return true;
  why = "no CUDA backend in this build or no usable CUDA device (" + cuda_device_status() + ")";
  return false;
}

// The device query's answer, printed on every run (the GPU check's log shows the driver and runtime).
TEST(CudaDevice, StatusIsReported) {
  std::printf("%s\n", cuda_device_status().c_str());
  if (const char* v = std::getenv("AWARE_REQUIRE_CUDA"); v && std::string(v) == "1") {
    EXPECT_TRUE(cuda_available()) << cuda_device_status();
  }
}

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why; !cuda_or_skip_reason(why)) {
      if (const char* v = std::getenv("AWARE_REQUIRE_CUDA"); v && std::string(v) == "1") FAIL() << why;
      GTEST_SKIP() << why;
    }
#if defined(AWARE_CUDA_EMULATION)
    allocations_before = aware_emu::device_allocations();
    handles_before = aware_emu::live_handles();
#endif
    cpu = make_backend("cpu");
    gpu = make_backend("cuda");
  }
  // Every test frees the device memory it took (the emulation counts the allocations).
  void TearDown() override {
    gpu.reset();
    cpu.reset();
#if defined(AWARE_CUDA_EMULATION)
    EXPECT_EQ(aware_emu::device_allocations(), allocations_before) << "device memory not freed by the test";
    EXPECT_EQ(aware_emu::live_handles(), handles_before) << "streams or events not destroyed by the test";
#endif
  }
  std::unique_ptr<Backend> cpu, gpu;
  size_t allocations_before = 0, handles_before = 0;
};

class CudaConvTest : public CudaTest, public ::testing::WithParamInterface<ConvShape> {};

// A conv layer's buffers on both backends: random inputs, poisoned outputs; act in s.bf16_act's storage.
struct ConvTwins {
  const size_t in, act, out;
  Twin x, w, b, a, y, dy, dx, dw, db, wc;
  ConvTwins(Backend& cpu, Backend& gpu, const ConvShape& s)
      : in(s.batch * s.in_size()), act(s.batch * s.act_size()), out(s.batch * s.out_size()),
        x(cpu, gpu, in * 4), w(cpu, gpu, s.weight_size() * 4), b(cpu, gpu, s.out_c * 4),
        a(cpu, gpu, s.batch * s.act_bytes()), y(cpu, gpu, out * 4), dy(cpu, gpu, out * 4), dx(cpu, gpu, in * 4),
        dw(cpu, gpu, s.weight_size() * 4), db(cpu, gpu, s.out_c * 4),
        wc(cpu, gpu, std::max(cpu.conv_workspace_bytes(s), gpu.conv_workspace_bytes(s))) {
    x.set(random_vector(in, 1, 0.0f, 1.0f));
    w.set(random_vector(s.weight_size(), 2));
    b.set(random_vector(s.out_c, 3, -0.1f, 0.1f));
    dy.set(random_vector(out, 4));
    for (Twin* t : {&a, &y, &dx, &dw, &db}) t->poison();
  }
  void backward(Backend& cpu, Backend& gpu, const ConvShape& s, Twin& act_used) {
    cpu.conv_relu_pool_backward(s, x.fc(), w.fc(), act_used.c, dy.fc(), dx.fc(), dw.fc(), db.fc(), wc.c);
    gpu.conv_relu_pool_backward(s, x.fg(), w.fg(), act_used.g, dy.fg(), dx.fg(), dw.fg(), db.fg(), wc.g);
    expect_close(dx, 1e-5, "dx");
    expect_close(dw, 1e-5, "dw");
    expect_close(db, 1e-5, "db");
  }
};

// The conv layer on `gpu` (the fused kernels or the cuDNN path) against the CPU twin.
void check_conv(Backend& cpu, Backend& gpu, const ConvShape& s, const std::string& path) {
  SCOPED_TRACE(path);
  ConvTwins t(cpu, gpu, s);
  cpu.conv_relu_pool_forward(s, t.x.fc(), t.w.fc(), t.b.fc(), s.pool ? t.a.fc() : t.y.fc(), t.y.fc(), t.wc.c);
  gpu.conv_relu_pool_forward(s, t.x.fg(), t.w.fg(), t.b.fg(), s.pool ? t.a.fg() : t.y.fg(), t.y.fg(), t.wc.g);
  if (s.pool) expect_close(t.a, 1e-5, "act");
  expect_close(t.y, 1e-5, "y");
  Twin& act_used = s.pool ? t.a : t.y;
  // Backward from the CPU's activations on both, so that a tie broken differently cannot route elsewhere.
  act_used.set(act_used.host_cpu());
  t.backward(cpu, gpu, s, act_used);
}

TEST_P(CudaConvTest, ForwardAndBackwardEqualTheCpuTwin) { check_conv(*cpu, *gpu, GetParam(), "fused"); }

// BF16 activations (pooled layers): the stored values within one BF16 step of the CPU's (which round
// the same FP32 sums, possibly to the neighbouring value where the sums differ in their last bits), y
// exactly the pool of the GPU's own stored values (first maximum), and the backward pass from the CPU's
// stored values as in FP32.
class CudaPooledConvTest : public CudaConvTest {};  // BF16 activations are stored for pooled layers only

TEST_P(CudaPooledConvTest, Bf16ActivationsEqualTheCpuTwin) {
  ConvShape s = GetParam();
  s.bf16_act = true;
  ConvTwins t(*cpu, *gpu, s);
  const size_t act = t.act;
  cpu->conv_relu_pool_forward(s, t.x.fc(), t.w.fc(), t.b.fc(), t.a.c, t.y.fc(), t.wc.c);
  gpu->conv_relu_pool_forward(s, t.x.fg(), t.w.fg(), t.b.fg(), t.a.g, t.y.fg(), t.wc.g);
  std::vector<bf16> ac(act), ag(act);
  cpu->to_host(ac.data(), t.a.c, act * 2);
  gpu->to_host(ag.data(), t.a.g, act * 2);
  float scale = 0.0f;
  for (bf16 v : ac) scale = std::max(scale, std::fabs(from_bf16(v)));
  for (size_t i = 0; i < act; ++i) {  // one step: 2^-7 relative at most; near 0 the FP32 sums' own error
    const float want = from_bf16(ac[i]);
    ASSERT_LE(std::fabs(from_bf16(ag[i]) - want), std::max(0x1p-7f * std::fabs(want), 1e-6f * scale)) << "act " << i;
  }
  const auto yg = t.y.host_gpu();
  const int cw = s.conv_w(), P = s.conv_h() * cw, oh = s.out_h(), ow = s.out_w();
  for (int plane = 0; plane < s.batch * s.out_c; ++plane)
    for (int py = 0; py < oh; ++py)
      for (int px = 0; px < ow; ++px) {
        const bf16* q = ag.data() + size_t(plane) * P + 2 * py * cw + 2 * px;
        float m = from_bf16(q[0]);
        for (const bf16 v : {q[1], q[cw], q[cw + 1]}) m = std::max(m, from_bf16(v));
        ASSERT_EQ(yg[size_t(plane) * oh * ow + py * ow + px], m) << "y of plane " << plane;
      }
  t.a.set(ac);  // the CPU's stored values on both
  t.backward(*cpu, *gpu, s, t.a);
}

TEST_P(CudaConvTest, TheCudnnPathEqualsTheCpuTwin) {
#if defined(AWARE_CUDA_EMULATION)
  GTEST_SKIP() << "cuDNN is not emulated: its path runs on a GPU only (docs/gpu.md)";
#endif
  auto cudnn = make_backend("cuda", {"cudnn", "fp32"});
  check_conv(*cpu, *cudnn, GetParam(), "cudnn");
}

ConvShape shape(int batch, int in_c, int h, int w, int out_c, int pad, bool pool, bool relu = true) {
  ConvShape s;
  s.batch = batch, s.in_c = in_c, s.in_h = h, s.in_w = w, s.out_c = out_c, s.pad = pad, s.pool = pool, s.relu = relu;
  return s;
}

// The four layers of Fig. 1 (25x25 jets), then odd sizes: channels not a multiple of the tile,
// non-square planes, odd conv planes under the pool, no ReLU, a plane larger than one pass of pixels,
// and one larger than shared memory (staged as bands of rows).
const std::vector<ConvShape> kShapes{shape(3, 1, 25, 25, 30, 0, false),   shape(3, 30, 23, 23, 40, 1, false),
                                      shape(3, 40, 23, 23, 30, 0, true),    shape(3, 30, 10, 10, 40, 1, true),
                                      shape(5, 3, 7, 9, 13, 1, true),       shape(2, 5, 11, 6, 7, 0, false, false),
                                      shape(1, 2, 40, 37, 9, 1, true),      shape(2, 3, 130, 121, 5, 1, true)};
std::vector<ConvShape> pooled(const std::vector<ConvShape>& all) {
  std::vector<ConvShape> out;
  for (const ConvShape& s : all)
    if (s.pool) out.push_back(s);
  return out;
}
std::string shape_name(const ::testing::TestParamInfo<ConvShape>& info) {
  const ConvShape& s = info.param;
  std::ostringstream name;
  name << "b" << s.batch << "_" << s.in_c << "x" << s.in_h << "x" << s.in_w << "_to_" << s.out_c << "_pad" << s.pad
       << (s.pool ? "_pool" : "") << (s.relu ? "" : "_norelu");
  return name.str();
}
INSTANTIATE_TEST_SUITE_P(Shapes, CudaConvTest, ::testing::ValuesIn(kShapes), shape_name);
INSTANTIATE_TEST_SUITE_P(Shapes, CudaPooledConvTest, ::testing::ValuesIn(pooled(kShapes)), shape_name);

TEST_F(CudaTest, LinearEqualsTheCpuTwin) {
  const int batch = 7, in = 37, out = 11;
  for (bool relu : {false, true}) {
    Twin x(*cpu, *gpu, batch * in * 4), w(*cpu, *gpu, out * in * 4), b(*cpu, *gpu, out * 4), y(*cpu, *gpu, batch * out * 4);
    Twin dy(*cpu, *gpu, batch * out * 4), dx(*cpu, *gpu, batch * in * 4), dw(*cpu, *gpu, out * in * 4), db(*cpu, *gpu, out * 4);
    x.set(random_vector(batch * in, 5));
    w.set(random_vector(out * in, 6));
    b.set(random_vector(out, 7));
    dy.set(random_vector(batch * out, 8));
    for (Twin* t : {&y, &dx, &dw, &db}) t->poison();
    cpu->linear_forward(batch, in, out, relu, x.fc(), w.fc(), b.fc(), y.fc());
    gpu->linear_forward(batch, in, out, relu, x.fg(), w.fg(), b.fg(), y.fg());
    expect_close(y, 1e-5, "y");
    cpu->linear_backward(batch, in, out, relu, x.fc(), w.fc(), y.fc(), dy.fc(), dx.fc(), dw.fc(), db.fc());
    gpu->linear_backward(batch, in, out, relu, x.fg(), w.fg(), y.fg(), dy.fg(), dx.fg(), dw.fg(), db.fg());
    expect_close(dy, 1e-5, "dy masked");
    expect_close(dx, 1e-5, "dx");
    expect_close(dw, 1e-5, "dw");
    expect_close(db, 1e-5, "db");
  }
}

// TF32 tensor cores (--precision tf32) round the GEMM operands to 10 mantissa bits: the forward output
// differs from exact FP32 and stays within TF32's error (2^-11 relative per operand, over 37 products).
TEST_F(CudaTest, LinearInTf32StaysWithinTf32sError) {
  const int batch = 7, in = 37, out = 11;
  auto tf32 = make_backend("cuda", {"fused", "tf32"});
  Twin x(*cpu, *tf32, batch * in * 4), w(*cpu, *tf32, out * in * 4), b(*cpu, *tf32, out * 4), y(*cpu, *tf32, batch * out * 4);
  x.set(random_vector(batch * in, 5));
  w.set(random_vector(out * in, 6));
  b.set(random_vector(out, 7));
  y.poison();
  cpu->linear_forward(batch, in, out, false, x.fc(), w.fc(), b.fc(), y.fc());
  tf32->linear_forward(batch, in, out, false, x.fg(), w.fg(), b.fg(), y.fg());
  expect_close(y, 5e-3, "tf32 y");
  EXPECT_NE(y.host_cpu(), y.host_gpu()) << "TF32 rounds the operands: the result cannot be FP32's to the bit";
}

TEST_F(CudaTest, DropoutDrawsTheSameMask) {
  const size_t n = 100003;
  Twin in(*cpu, *gpu, n * 4), out(*cpu, *gpu, n * 4);
  in.set(random_vector(n, 9));
  out.poison();
  cpu->dropout(n, 0.3f, 42, 7, 1234567, in.fc(), out.fc());
  gpu->dropout(n, 0.3f, 42, 7, 1234567, in.fg(), out.fg());
  EXPECT_EQ(out.host_cpu(), out.host_gpu());
}

TEST_F(CudaTest, SoftmaxCrossEntropyEqualsTheCpuTwin) {
  for (int classes : {2, 3, 5}) {
    const int batch = 301;
    Twin z(*cpu, *gpu, batch * classes * 4), label(*cpu, *gpu, batch * 4), weight(*cpu, *gpu, batch * 4);
    Twin d(*cpu, *gpu, batch * classes * 4), p(*cpu, *gpu, batch * classes * 4);
    z.set(random_vector(batch * classes, 10, -8.0f, 8.0f));
    std::vector<int32_t> labels(batch);
    for (int i = 0; i < batch; ++i) labels[i] = i % 4 == 3 ? kUniformTarget : i % classes;
    label.set(labels);
    weight.set(random_vector(batch, 11, 0.0f, 0.02f));
    d.poison();
    p.poison();
    const double lc = cpu->softmax_xent(batch, classes, z.fc(), static_cast<int32_t*>(label.c), weight.fc(), d.fc(), p.fc());
    const double lg = gpu->softmax_xent(batch, classes, z.fg(), static_cast<int32_t*>(label.g), weight.fg(), d.fg(), p.fg());
    EXPECT_NEAR(lg, lc, 1e-6 * std::fabs(lc));
    expect_close(d, 1e-5, "dlogits");
    expect_close(p, 1e-5, "probs");
    p.poison();
    cpu->softmax(batch, classes, z.fc(), p.fc());
    gpu->softmax(batch, classes, z.fg(), p.fg());
    expect_close(p, 1e-5, "softmax");
  }
}

TEST_F(CudaTest, StepStatsEqualTheCpuTwin) {
  const int rows = 517, classes = 3;
  Twin p(*cpu, *gpu, rows * classes * 4), label(*cpu, *gpu, rows * 4), stats(*cpu, *gpu, 2 * sizeof(double));
  std::vector<float> probs = random_vector(rows * classes, 12, 0.0f, 1.0f);
  for (int r = 0; r < rows; r += 7) probs[size_t(r) * classes + 1] = probs[size_t(r) * classes];  // ties
  p.set(probs);
  std::vector<int32_t> labels(rows);
  for (int r = 0; r < rows; ++r) labels[r] = r % 5 == 4 ? kUniformTarget : r % classes;
  label.set(labels);
  stats.set(std::vector<double>{0.5, 3.0});
  // softmax_xent leaves its loss where step_stats reads it: one call on each backend first.
  Twin z(*cpu, *gpu, 4 * classes * 4), w(*cpu, *gpu, 4 * 4), d(*cpu, *gpu, 4 * classes * 4);
  z.set(random_vector(4 * classes, 13, -2.0f, 2.0f));
  w.set(std::vector<float>(4, 0.25f));
  const double lc = cpu->softmax_xent(4, classes, z.fc(), static_cast<int32_t*>(label.c), w.fc(), d.fc(), nullptr);
  gpu->softmax_xent(4, classes, z.fg(), static_cast<int32_t*>(label.g), w.fg(), d.fg(), nullptr);
  cpu->step_stats(rows, classes, p.fc(), static_cast<int32_t*>(label.c), static_cast<double*>(stats.c));
  gpu->step_stats(rows, classes, p.fg(), static_cast<int32_t*>(label.g), static_cast<double*>(stats.g));
  double sc[2], sg[2];
  cpu->to_host(sc, stats.c, sizeof sc);
  gpu->to_host(sg, stats.g, sizeof sg);
  EXPECT_NEAR(sg[0], sc[0], 1e-6 * std::fabs(lc));
  EXPECT_EQ(sg[1], sc[1]);
  EXPECT_GT(sc[1], 3.0);
}

TEST_F(CudaTest, SgdAndGatherEqualTheCpuTwins) {
  const size_t n = 54321;
  Twin w(*cpu, *gpu, n * 4), g(*cpu, *gpu, n * 4), v(*cpu, *gpu, n * 4);
  w.set(random_vector(n, 12));
  g.set(random_vector(n, 13));
  v.set(random_vector(n, 14));
  cpu->sgd_update(n, 0.01f, 0.9f, 1e-4f, w.fc(), g.fc(), v.fc());
  gpu->sgd_update(n, 0.01f, 0.9f, 1e-4f, w.fg(), g.fg(), v.fg());
  expect_close(w, 1e-6, "w");
  expect_close(v, 1e-6, "v");

  const int events = 50, row = 77, rows = 33;
  Twin in(*cpu, *gpu, events * row * 4), index(*cpu, *gpu, rows * 8), rs(*cpu, *gpu, events * 4);
  Twin shift(*cpu, *gpu, row * 4), scale(*cpu, *gpu, row * 4), out(*cpu, *gpu, rows * row * 4);
  in.set(random_vector(events * row, 15));
  std::vector<int64_t> idx(rows);
  for (int i = 0; i < rows; ++i) idx[i] = (i * 17 + 3) % events;
  index.set(idx);
  rs.set(random_vector(events, 16, 0.5f, 2.0f));
  shift.set(random_vector(row, 17));
  scale.set(random_vector(row, 18, 0.5f, 2.0f));
  out.poison();
  cpu->gather_normalise(rows, row, in.fc(), false, static_cast<int64_t*>(index.c), rs.fc(), shift.fc(), scale.fc(), out.fc());
  gpu->gather_normalise(rows, row, in.fg(), false, static_cast<int64_t*>(index.g), rs.fg(), shift.fg(), scale.fg(), out.fg());
  expect_close(out, 1e-6, "gather");

  // BF16 events (--precision bf16): widened, then the same FP32 arithmetic.
  const auto raw = random_vector(events * row, 20, 0.0f, 40.0f);
  std::vector<bf16> stored(raw.size());
  to_bf16(raw.data(), raw.size(), stored.data());
  Twin in16(*cpu, *gpu, events * row * 2);
  in16.set(stored);
  out.poison();
  cpu->gather_normalise(rows, row, in16.c, true, static_cast<int64_t*>(index.c), rs.fc(), shift.fc(), scale.fc(), out.fc());
  gpu->gather_normalise(rows, row, in16.g, true, static_cast<int64_t*>(index.g), rs.fg(), shift.fg(), scale.fg(), out.fg());
  expect_close(out, 1e-6, "gather bf16");
}

// NCCL at world size 1 (one process, one GPU): bootstrapped through the single-rank communicator, the
// all-reduce runs and leaves the buffer as it was.
TEST_F(CudaTest, NcclAllReduceAtWorldSizeOne) {
  const size_t n = 327'000;  // about the Fig. 1 network's parameters
  Twin g(*cpu, *gpu, n * 4);
  const auto v = random_vector(n, 19);
  g.set(v);
  gpu->all_reduce_sum(g.fg(), n, world());
  EXPECT_EQ(g.host_gpu(), v);
}

// Training through Model on both backends from the same weights, the same batches and seed.
class CudaTrainingTest : public CudaTest {
 public:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    dir = testing::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    testing::write_synthetic_classes(dir / "data");
  }
  void TearDown() override {
    if (!dir.empty()) std::filesystem::remove_all(dir);
    CudaTest::TearDown();
  }
  // The config's model on the CPU and on the GPU (by default the fixture's backends), with the same
  // initial weights.
  std::pair<std::unique_ptr<Model>, std::unique_ptr<Model>> twin_models(const RunConfig& cfg, const Events& events,
                                                                        Backend* on_cpu = nullptr,
                                                                        Backend* on_gpu = nullptr) {
    auto mc = make_model(on_cpu ? *on_cpu : *cpu, cfg, events.normal_train.event_shape, events.normaliser);
    auto mg = make_model(on_gpu ? *on_gpu : *gpu, cfg, events.normal_train.event_shape, events.normaliser);
    const auto p0 = initial_params(mc->graph(), cfg.seed);
    mc->set_params(p0);
    mg->set_params(p0);
    return {std::move(mc), std::move(mg)};
  }
  std::filesystem::path dir;
};

// Scoring copies batch k + 1 on a second stream while batch k is computed: the probabilities of
// several batches, the last one short, equal the CPU's.
TEST_F(CudaTrainingTest, PredictOverlappingCopiesEqualsTheCpu) {
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  const Events events = load_events(cfg);
  auto [mc, mg] = twin_models(cfg, events);
  const int64_t rows = std::min<int64_t>(events.normal_train.rows(), 2 * mc->max_batch() + 3);
  ASSERT_GT(rows, int64_t(mc->max_batch()));
  const auto pc = mc->predict(events.normal_train.x.data(), rows);
  const auto pg = mg->predict(events.normal_train.x.data(), rows);
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i) EXPECT_NEAR(pg[i], pc[i], 1e-5) << i;
}

// Ten steps with normal and anomaly rows on both backends: each step's loss, and the weights after
// steps 1 and 10, within `tolerance` (relative).
void ten_steps_agree(CudaTrainingTest& t, const RunConfig& cfg, const Events& events, Backend* cpu, Backend* gpu,
                     double tolerance);

// The same with BF16 events: half the bytes copied, the same values as the CPU backend in bf16 (within
// BF16 activations' bound, see below).
TEST_F(CudaTrainingTest, Bf16PredictFollowsTheCpuInBf16) {
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  const Events events = load_events(cfg);
  auto cpu16 = make_backend("cpu", {"fused", "bf16"}), gpu16 = make_backend("cuda", {"fused", "bf16"});
  auto [mc, mg] = twin_models(cfg, events, cpu16.get(), gpu16.get());
  const int64_t rows = std::min<int64_t>(events.normal_train.rows(), 2 * mc->max_batch() + 3);
  const auto pc = mc->predict(events.normal_train.x.data(), rows);
  const auto pg = mg->predict(events.normal_train.x.data(), rows);
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i) EXPECT_NEAR(pg[i], pc[i], 1e-3) << i;
}

TEST_F(CudaTrainingTest, OneAndTenStepsEqualTheCpuBackend) {
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  ten_steps_agree(*this, cfg, load_events(cfg), nullptr, nullptr, 1e-5);
}

// BF16 storage: the CUDA kernels round the same FP32 sums as the CPU twin, which may land one BF16 step
// apart where the sums differ in their last bits (then a pool may also pick another maximum): the
// documented bound is 1e-3 relative, against 2^-9 for one rounding.
TEST_F(CudaTrainingTest, TenBf16StepsFollowTheCpuBackendInBf16) {
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  auto cpu16 = make_backend("cpu", {"fused", "bf16"}), gpu16 = make_backend("cuda", {"fused", "bf16"});
  ten_steps_agree(*this, cfg, load_events(cfg), cpu16.get(), gpu16.get(), 1e-3);
}

void ten_steps_agree(CudaTrainingTest& t, const RunConfig& cfg, const Events& events, Backend* cpu, Backend* gpu,
                     double tolerance) {
  auto [mc, mg] = t.twin_models(cfg, events, cpu, gpu);
  const int B = cfg.train.batch;
  const DeviceEvents nc = mc->upload(events.normal_train), ng = mg->upload(events.normal_train);
  const DeviceEvents ac = mc->upload(events.anomalies), ag = mg->upload(events.anomalies);
  std::vector<int32_t> label(2 * B, kUniformTarget);
  std::vector<float> weight(2 * B, float(cfg.train.lambda / B));
  std::vector<int64_t> index(B), anomaly(B);
  for (int step = 0; step < 10; ++step) {
    for (int i = 0; i < B; ++i) {
      index[i] = (step * B + i * 7) % events.normal_train.rows();
      anomaly[i] = (step * 3 + i * 5) % events.anomalies.rows();
      label[i] = events.normal_train.label[size_t(index[i])];
      weight[i] = 1.0f / B;
    }
    for (Model* m : {mc.get(), mg.get()}) {
      m->gather(m == mc.get() ? nc : ng, index.data(), B, 0);
      m->gather(m == mc.get() ? ac : ag, anomaly.data(), B, B);
    }
    Pass pass{2 * B, true, cfg.seed, uint64_t(step)};
    pass.split = B;
    pass.second = uint64_t(B);
    const double lc = mc->train_step(pass, label.data(), weight.data(), 0.01f, 0.9f, 0.0f, nullptr, 0, nullptr);
    const double lg = mg->train_step(pass, label.data(), weight.data(), 0.01f, 0.9f, 0.0f, nullptr, 0, nullptr);
    EXPECT_NEAR(lg, lc, tolerance * std::fabs(lc)) << "step " << step;
    if (step == 0 || step == 9) {
      const auto a = mc->params(), b = mg->params();
      double scale = 0.0, diff = 0.0;
      for (size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, double(std::fabs(a[i])));
        diff = std::max(diff, double(std::fabs(a[i] - b[i])));
      }
      EXPECT_LT(diff, tolerance * scale) << "weights after step " << step;
    }
  }
}

// The captured step graph replays exactly what the direct launches do: the same weights, bit for bit,
// after ten steps with dropout (the step reaches the dropout kernels through device memory).
TEST_F(CudaTrainingTest, StepGraphsEqualDirectLaunches) {
  const RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  const Events events = load_events(cfg);
  // (The model takes step graphs only on a backend that supports them: the CUDA backend does.)
  ASSERT_TRUE(gpu->supports_graphs());
  EXPECT_EQ(testing::weights_after_ten_steps(*gpu, cfg, events, false),
            testing::weights_after_ten_steps(*gpu, cfg, events, true));
}

TEST_F(CudaTrainingTest, APriorAndAARunReachTheCpusAuc) {
  RunConfig cfg = parse_config(testing::synthetic_config(dir / "data"), "synthetic.toml");
  const auto on = [&](const std::string& device) {
    cfg.device = device;
    RunOptions o;
    o.out = dir / device;
    o.progress = false;
    return run_pipeline(cfg, o);
  };
  const auto c = on("cpu"), g = on("cuda");
  for (const char* stage : {"prior", "aa"})
    EXPECT_NEAR(g["stages"][stage]["auc"].get<double>(), c["stages"][stage]["auc"].get<double>(), 0.005) << stage;
}

// ---- the window scan and the AUC on the GPU ----------------------------------------------------------

#if defined(AWARE_CUDA)
// Beta-like scores: a class peaked at `mode`, some exact ties (values on a coarse grid).
std::vector<float> peaked_scores(size_t n, double mode, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(mode, 0.15);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const double x = std::clamp(g(rng), 0.0, 1.0);
    v[i] = i % 5 == 0 ? float(std::round(x * 200) / 200) : float(x);
  }
  return v;
}

void expect_same_scan(const ScanInput& input, const ScanSettings& settings) {
  const std::vector<double> widths{0.08, 0.1, 0.12};
  const auto gpu = cuda::scan(input, settings, widths);
  const ScanGrid cpu = make_grid(input, settings.bins);
  // The same integer counts in every bin of every class.
  EXPECT_EQ(gpu.grid.anomaly.count, cpu.anomaly.count);
  for (size_t c = 0; c < cpu.background.size(); ++c) EXPECT_EQ(gpu.grid.background[c].count, cpu.background[c].count);
  const auto best = best_window(cpu, settings);
  ASSERT_EQ(gpu.best.has_value(), best.has_value());
  if (best) {
    EXPECT_EQ(gpu.best->lo, best->lo);
    EXPECT_EQ(gpu.best->hi, best->hi);
    EXPECT_NEAR(gpu.best->R, best->R, 1e-6 * best->R);
  }
  for (size_t j = 0; j < widths.size(); ++j) {
    const auto curve = fixed_width_curve(cpu, settings, widths[j]);
    ASSERT_EQ(gpu.fixed_width_R[j].size(), curve.size());
    for (size_t i = 0; i < curve.size(); ++i)
      if (std::isfinite(curve[i].R)) {
        EXPECT_NEAR(gpu.fixed_width_R[j][i], curve[i].R, 1e-6 * curve[i].R + 1e-12);
      }
  }
  const auto below = below_threshold_curve(cpu, settings);
  for (size_t i = 0; i < below.size(); ++i)
    if (std::isfinite(below[i].R)) {
      EXPECT_NEAR(gpu.below_threshold_R[i], below[i].R, 1e-6 * below[i].R + 1e-12);
    }
}

TEST_F(CudaTest, WindowScanEqualsTheCpuOnRandomScores) {
  const auto an = peaked_scores(20000, 0.5, 1), top = peaked_scores(30000, 0.8, 2), qcd = peaked_scores(30000, 0.2, 3);
  for (int bins : {100, 1000, 3000}) {
    ScanSettings settings;
    settings.bins = bins;
    expect_same_scan(top_qcd_input({an}, {top}, {qcd}), settings);
  }
  // Weighted classes: the same window; R to rounding (atomics add the weights in another order).
  const auto weights = random_vector(30000, 4, 0.5f, 1.5f);
  ScanSettings settings;
  const auto gpu = cuda::scan(top_qcd_input({an}, {top, weights}, {qcd}), settings, {});
  const auto cpu = best_window(top_qcd_input({an}, {top, weights}, {qcd}), settings);
  ASSERT_TRUE(gpu.best && cpu);
  EXPECT_EQ(gpu.best->lo, cpu->lo);
  EXPECT_EQ(gpu.best->hi, cpu->hi);
  EXPECT_NEAR(gpu.best->R, cpu->R, 1e-6 * cpu->R);
}

TEST_F(CudaTest, WindowScanEqualsTheCpuOnRealScores) {
  // P(Top) of the demo's prior run (tests/data: 1,000 test jets a class).
  // AWARE_SOURCE_DIR in the environment wins: the device bundle runs from another checkout.
  const char* source = std::getenv("AWARE_SOURCE_DIR");
  const auto dir = std::filesystem::path(source ? source : AWARE_SOURCE_DIR) / "tests" / "data" / "demo_prior_scores";
  auto column0 = [&](const std::string& name) {
    const NpyArray a = NpyArray::load(dir / (name + ".npy"));
    std::vector<float> p(size_t(a.rows()));
    for (size_t i = 0; i < p.size(); ++i) p[i] = a.data()[2 * i];
    return p;
  };
  const auto top = column0("top"), qcd = column0("qcd");
  ScanSettings settings;
  settings.min_background_events = 20;
  for (const char* anomaly : {"w", "r2", "r3", "r4", "eft"}) {
    const auto an = column0(anomaly);
    expect_same_scan(top_qcd_input({an}, {top}, {qcd}), settings);
  }
}

TEST_F(CudaTest, RectangleScanEqualsTheCpu) {
  const auto a1 = peaked_scores(5000, 0.5, 5), a2 = peaked_scores(5000, 0.4, 6);
  const auto t1 = peaked_scores(8000, 0.8, 7), t2 = peaked_scores(8000, 0.1, 8);
  const auto q1 = peaked_scores(8000, 0.2, 9), q2 = peaked_scores(8000, 0.2, 10);
  const auto w1 = peaked_scores(8000, 0.2, 11), w2 = peaked_scores(8000, 0.8, 12);
  const ScanInput2D input{{a1, a2}, {{"top", {t1, t2}, kSigmaTtFb}, {"qcd", {q1, q2}, kSigmaQcdFb}, {"w", {w1, w2}, kSigmaWFb}}};
  ScanSettings settings;
  settings.bins_2d = 40;
  const auto gpu = cuda::scan_2d(input, settings).best;
  const auto cpu = best_window_2d(input, settings);
  ASSERT_EQ(gpu.has_value(), cpu.has_value());
  ASSERT_TRUE(cpu);
  EXPECT_EQ(std::vector<int>({gpu->lo1, gpu->hi1, gpu->lo2, gpu->hi2}), std::vector<int>({cpu->lo1, cpu->hi1, cpu->lo2, cpu->hi2}));
  EXPECT_NEAR(gpu->R, cpu->R, 1e-6 * cpu->R);
  EXPECT_EQ(gpu->n_background, cpu->n_background);
}

TEST_F(CudaTest, AucEqualsTheCpusExactly) {
  const auto pos = peaked_scores(30001, 0.6, 13), neg = peaked_scores(29999, 0.4, 14);
  EXPECT_EQ(cuda::auc(pos, neg), auc(pos, neg));
  const RocCurve g = cuda::roc_curve(pos, neg), c = roc_curve(pos, neg);
  EXPECT_EQ(g.tpr, c.tpr);
  EXPECT_EQ(g.fpr, c.fpr);
  EXPECT_EQ(g.threshold, c.threshold);
  EXPECT_EQ(g.auc, c.auc);
}

// The pseudo-experiments: the same toys (counts from the same counters and constants) and the same
// maximum of each, window included, background only and with a signal; at a tiny luminosity too, where
// every window with an excess is a candidate and a toy overflows the GPU's candidate list (host path).
TEST_F(CudaTest, ToysEqualTheCpus) {
  const auto top = peaked_scores(3000, 0.85, 21), qcd = peaked_scores(3000, 0.15, 22), an = peaked_scores(1000, 0.5, 23);
  const ScanGrid grid = make_grid(top_qcd_input({an}, {top}, {qcd}), 40);
  ScanSettings settings;
  settings.min_background_events = 10;
  for (double luminosity : {0.0005, 2.0}) {
    const ToyModel m = toy_model(grid, settings, luminosity);
    for (double signal : {0.0, 40.0}) {
      const ToyDraws draws{5, signal > 0 ? 1u : 0u, signal, 3, 12};
      const std::vector<ToyMax> g = cuda::run_toys(m, draws), c = run_toys(m, draws);
      ASSERT_EQ(g.size(), c.size());
      for (size_t i = 0; i < c.size(); ++i) {
        SCOPED_TRACE("L " + std::to_string(luminosity) + " signal " + std::to_string(signal) + " toy " + std::to_string(i));
        EXPECT_EQ(g[i].t, c[i].t);
        EXPECT_EQ(g[i].lo, c[i].lo);
        EXPECT_EQ(g[i].hi, c[i].hi);
        EXPECT_EQ(g[i].observed, c[i].observed);
      }
    }
  }
  // The look-elsewhere report from the GPU's toys is the CPU's, number for number.
  LeeSettings lee;
  lee.toys = 40;
  lee.injected_toys = 6;
  lee.luminosity = 1.0;
  lee.window = std::array<double, 2>{0.3, 0.7};
  lee.observed.assign(40, 0);
  for (size_t k = 0; k < 40; ++k) lee.observed[k] = int64_t(k % 7) * 30 + 20;
  lee.device = "cuda";
  nlohmann::json on_gpu = lee_report(grid, settings, lee);
  lee.device = "cpu";
  nlohmann::json on_cpu = lee_report(grid, settings, lee);
  EXPECT_EQ(on_gpu["device"], "cuda");
  on_gpu.erase("device"), on_cpu.erase("device");
  EXPECT_EQ(on_gpu, on_cpu);
}
#endif

}  // namespace
}  // namespace aware
