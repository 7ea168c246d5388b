#include "model/layers.h"

#include <cmath>
#include <sstream>

#include "kernels/philox.h"

namespace aware {
namespace {

// PyTorch's default initialisation: weights and biases uniform in +-1/sqrt(fan_in).
void init_uniform(float* p, size_t n, float bound, uint64_t seed, uint64_t stream) {
  for (size_t i = 0; i < n; ++i) p[i] = (2.0f * philox_uniform(seed, stream, i) - 1.0f) * bound;
}

class ConvNode final : public Node {
 public:
  explicit ConvNode(const ConvShape& s) : shape_(s) {}

  std::string describe() const override {
    std::ostringstream o;
    o << "conv3x3 " << shape_.in_c << "x" << shape_.in_h << "x" << shape_.in_w << " -> "
      << shape_.out_c << "x" << shape_.out_h() << "x" << shape_.out_w() << " (pad " << shape_.pad
      << (shape_.relu ? ", relu" : "") << (shape_.pool ? ", maxpool 2" : "")
      << (shape_.bf16_act ? ", bf16 act" : "") << ")";
    return o.str();
  }
  size_t param_count() const override { return shape_.weight_size() + shape_.out_c; }
  void init_params(float* p, uint64_t seed, uint64_t stream) const override {
    const float bound = 1.0f / std::sqrt(float(shape_.patch()));
    init_uniform(p, param_count(), bound, seed, stream);
  }
  void plan(Graph& g, int max_batch) override {
    // The saved activations of a pooled layer are the backend's to store as BF16; without a pool
    // act is y, the next layer's FP32 input.
    shape_.bf16_act = shape_.pool && g.backend().bf16_storage();
    ConvShape s = shape_;
    s.batch = max_batch;
    // A forward-only graph keeps no activations where the backend pools without them.
    const bool keep_act = g.has_gradients() || shape_.bf16_act || !g.backend().pools_without_act();
    act_ = shape_.pool && keep_act ? g.request(s.act_bytes() * max_batch) : Buffer{};
    workspace_ = g.request(g.backend().conv_workspace_bytes(s));
  }
  void forward(Graph& g, const Pass& pass) override {
    const ConvShape s = at(pass.batch);
    float* y = g.ptr(out);
    g.backend().conv_relu_pool_forward(s, g.ptr(in), weights(g), bias(g), act(g, y), y,
                                       g.ptr<void>(workspace_));
  }
  void backward(Graph& g, const Pass& pass) override {
    const ConvShape s = at(pass.batch);
    float* y = g.ptr(out);
    g.backend().conv_relu_pool_backward(s, g.ptr(in), weights(g), act(g, y), g.ptr(out_grad),
                                        first ? nullptr : g.ptr(in_grad),
                                        g.grads() + param_offset,
                                        g.grads() + param_offset + shape_.weight_size(),
                                        g.ptr<void>(workspace_));
  }
  double flops_per_row() const override { return at(1).forward_flops(); }

 private:
  ConvShape at(int batch) const {
    ConvShape s = shape_;
    s.batch = batch;
    return s;
  }
  const float* weights(Graph& g) const { return g.params() + param_offset; }
  const float* bias(Graph& g) const { return g.params() + param_offset + shape_.weight_size(); }
  void* act(Graph& g, float* y) const {
    if (!shape_.pool) return y;
    return act_.index >= 0 ? g.ptr<void>(act_) : nullptr;
  }

  ConvShape shape_;
  Buffer act_, workspace_;
};

class LinearNode final : public Node {
 public:
  LinearNode(int in, int out, bool relu) : in_(in), out_(out), relu_(relu) {}
  std::string describe() const override {
    std::ostringstream o;
    o << "linear " << in_ << " -> " << out_ << (relu_ ? " (relu)" : "");
    return o.str();
  }
  size_t param_count() const override { return size_t(out_) * in_ + out_; }
  void init_params(float* p, uint64_t seed, uint64_t stream) const override {
    init_uniform(p, param_count(), 1.0f / std::sqrt(float(in_)), seed, stream);
  }
  void forward(Graph& g, const Pass& pass) override {
    g.backend().linear_forward(pass.batch, in_, out_, relu_, g.ptr(in), g.params() + param_offset,
                               g.params() + param_offset + size_t(out_) * in_, g.ptr(out));
  }
  void backward(Graph& g, const Pass& pass) override {
    g.backend().linear_backward(pass.batch, in_, out_, relu_, g.ptr(in), g.params() + param_offset,
                                g.ptr(out), g.ptr(out_grad), first ? nullptr : g.ptr(in_grad),
                                g.grads() + param_offset,
                                g.grads() + param_offset + size_t(out_) * in_);
  }
  double flops_per_row() const override { return 2.0 * in_ * out_; }

 private:
  int in_, out_;
  bool relu_;
};

class DropoutNode final : public Node {
 public:
  explicit DropoutNode(float rate) : rate_(rate) {}
  std::string describe() const override {
    std::ostringstream o;
    o << "dropout " << rate_;
    return o.str();
  }
  void forward(Graph& g, const Pass& pass) override {
    const size_t n = size_t(pass.batch) * in_size;
    if (pass.train && rate_ > 0.0f)
      apply(g, pass, g.ptr(in), g.ptr(out));
    else
      g.backend().copy(g.ptr(out), g.ptr(in), n * sizeof(float));
  }
  void backward(Graph& g, const Pass& pass) override {
    if (first) return;
    const size_t n = size_t(pass.batch) * in_size;
    if (pass.train && rate_ > 0.0f)
      apply(g, pass, g.ptr(out_grad), g.ptr(in_grad));
    else
      g.backend().copy(g.ptr(in_grad), g.ptr(out_grad), n * sizeof(float));
  }

 private:
  // One stream per (step, node): masks never repeat across steps or layers. Each row's mask is drawn
  // at its place in the global batch.
  uint64_t stream(const Pass& pass) const { return (pass.step << 8) | uint64_t(index); }
  void apply(Graph& g, const Pass& pass, const float* from, float* to) const {
    const size_t split = size_t(pass.split_at());
    g.backend().dropout(split * in_size, rate_, pass.seed, stream(pass), pass.first * in_size, from, to);
    if (int(split) < pass.batch)
      g.backend().dropout((pass.batch - split) * in_size, rate_, pass.seed, stream(pass), pass.second * in_size,
                          from + split * in_size, to + split * in_size);
  }
  float rate_;
};

}  // namespace

std::unique_ptr<Node> make_conv_node(const ConvShape& shape) { return std::make_unique<ConvNode>(shape); }
std::unique_ptr<Node> make_linear_node(int in, int out, bool relu) {
  return std::make_unique<LinearNode>(in, out, relu);
}
std::unique_ptr<Node> make_dropout_node(float rate) { return std::make_unique<DropoutNode>(rate); }

}  // namespace aware
