#include "model/model.h"

#include <bit>
#include <cstdint>
#include <numeric>

#include "kernels/error.h"

namespace aware {

Model::Model(Backend& backend, const NetworkSpec& network, const std::vector<int64_t>& event_shape,
             int classes, int max_batch, const Normaliser& normaliser, bool training)
    : backend_(backend),
      graph_(build_graph(backend, network, event_shape, classes, max_batch, training)),
      classes_(classes),
      normaliser_(normaliser) {
  Graph& g = *graph_;
  const size_t rows = size_t(max_batch), row = g.input_size();
  check(normaliser.col_scale.size() == row && normaliser.col_shift.size() == row,
        "model: the normalisation does not match the event size");
  index_ = g.request(rows * sizeof(int64_t));
  iota_ = g.request(rows * sizeof(int64_t));
  label_ = g.request(rows * sizeof(int32_t));
  weight_ = g.request(rows * sizeof(float));
  probs_ = g.request(rows * classes * sizeof(float));
  stats_ = g.request(2 * sizeof(double));
  if (training) momentum_ = g.request(g.param_count() * sizeof(float));
  for (int slot = 0; slot < 2; ++slot) {
    staging_[slot] = g.request(rows * row * stored_value_bytes());
    staging_scale_[slot] = g.request(rows * sizeof(float));
  }
  col_shift_ = g.request(row * sizeof(float));
  col_scale_ = g.request(row * sizeof(float));
  g.plan();
  if (training) reset_epoch_stats();
  std::vector<int64_t> iota(rows);
  std::iota(iota.begin(), iota.end(), int64_t(0));
  backend.to_device(g.ptr<int64_t>(iota_), iota.data(), rows * sizeof(int64_t));
  backend.to_device(buffer(col_shift_), normaliser.col_shift.data(), row * sizeof(float));
  backend.to_device(buffer(col_scale_), normaliser.col_scale.data(), row * sizeof(float));
  graphs_ = backend.supports_graphs();
}

Model::~Model() {
  for (void* p : uploads_) backend_.release(p);
}

void Model::set_params(const std::vector<float>& params) {
  check(params.size() == graph_->param_count(),
        "model: " + std::to_string(params.size()) + " parameters given, the network has " +
            std::to_string(graph_->param_count()));
  backend_.to_device(graph_->params(), params.data(), params.size() * sizeof(float));
}

std::vector<float> Model::params() const {
  std::vector<float> p(graph_->param_count());
  backend_.to_host(p.data(), graph_->params(), p.size() * sizeof(float));
  return p;
}

void Model::set_momentum(const std::vector<float>& momentum) {
  check(graph_->has_gradients(), "model: a forward-only (scoring) model has no optimiser state");
  check(momentum.size() == graph_->param_count(), "model: momentum size does not match the network");
  backend_.to_device(buffer(momentum_), momentum.data(), momentum.size() * sizeof(float));
}

std::vector<float> Model::momentum() const {
  check(graph_->has_gradients(), "model: a forward-only (scoring) model has no optimiser state");
  std::vector<float> m(graph_->param_count());
  backend_.to_host(m.data(), buffer(momentum_), m.size() * sizeof(float));
  return m;
}

DeviceEvents Model::upload(const EventSet& set) {
  if (auto it = uploaded_.find(&set); it != uploaded_.end()) return it->second;
  const std::vector<float> scales = normaliser_.row_scales(set.x.data(), set.rows(), set.row_size);
  std::vector<bf16> scratch;
  const auto [values, bytes] = as_stored(set.x.data(), set.x.size(), scratch);
  void* x = backend_.allocate(bytes);
  float* s = static_cast<float*>(backend_.allocate(scales.size() * sizeof(float)));
  uploads_.push_back(x);
  uploads_.push_back(s);
  backend_.to_device(x, values, bytes);
  backend_.to_device(s, scales.data(), scales.size() * sizeof(float));
  return uploaded_[&set] = DeviceEvents{x, s, set.rows(), backend_.bf16_storage()};
}

std::pair<const void*, size_t> Model::as_stored(const float* x, size_t n, std::vector<bf16>& scratch) const {
  const size_t bytes = n * stored_value_bytes();
  if (!backend_.bf16_storage()) return {x, bytes};
  scratch.resize(n);
  to_bf16(x, n, scratch.data());
  return {scratch.data(), bytes};
}

void Model::gather(const DeviceEvents& events, const int64_t* host_index, int n, int at) {
  backend_.upload(graph_->ptr<int64_t>(index_) + at, host_index, size_t(n) * sizeof(int64_t));
  if (graphs_)
    pending_.push_back({events, n, at});
  else
    launch_gather(events, n, at);
}

void Model::launch_gather(const DeviceEvents& events, int n, int at) {
  backend_.gather_normalise(n, int(row_size()), events.x, events.bf16, graph_->ptr<int64_t>(index_) + at, events.row_scale,
                            buffer(col_shift_), buffer(col_scale_), graph_->input() + size_t(at) * row_size());
}

std::vector<uint64_t> Model::step_key(const Pass& pass, float lr, float momentum, float weight_decay,
                                      int ranks) const {
  std::vector<uint64_t> key{uint64_t(pass.batch), uint64_t(pass.train), pass.seed, uint64_t(pass.split_at()),
                            pass.first, pass.second, std::bit_cast<uint32_t>(lr), std::bit_cast<uint32_t>(momentum),
                            std::bit_cast<uint32_t>(weight_decay), uint64_t(ranks)};
  for (const auto& g : pending_)
    key.insert(key.end(), {uint64_t(reinterpret_cast<uintptr_t>(g.events.x)),
                           uint64_t(reinterpret_cast<uintptr_t>(g.events.row_scale)), uint64_t(g.n), uint64_t(g.at)});
  return key;
}

void Model::enqueue_step(const Pass& pass, const int32_t* host_label, const float* host_weight, float lr,
                         float momentum, float weight_decay, int n_stats, Communicator* comm) {
  Graph& g = *graph_;
  check(g.has_gradients(), "model: a forward-only (scoring) model cannot train");
  check(n_stats >= 0 && n_stats <= pass.batch, "model: the accuracy rows must be among the step's rows");
  const int rows = pass.batch;
  backend_.upload(g.ptr<int32_t>(label_), host_label, size_t(rows) * sizeof(int32_t));
  backend_.upload(buffer(weight_), host_weight, size_t(rows) * sizeof(float));
  const auto step = [&] {
    g.forward(pass);
    backend_.softmax_xent(rows, classes_, g.output(), g.ptr<int32_t>(label_), buffer(weight_), g.output_grad(),
                          buffer(probs_));
    backend_.step_stats(n_stats, classes_, buffer(probs_), g.ptr<int32_t>(label_), g.ptr<double>(stats_));
    // The loss weights are those of the global batch, so the sum over ranks is its gradient. Each
    // layer's gradients (one bucket) start their all-reduce as soon as its backward is done.
    if (comm && comm->size() > 1) {
      g.backward(pass, [&](const Node& node) {
        if (node.param_count() > 0) backend_.all_reduce_start(g.grads() + node.param_offset, node.param_count(), *comm);
      });
      backend_.all_reduce_wait();
    } else {
      g.backward(pass);
    }
    backend_.sgd_update(g.param_count(), lr, momentum, weight_decay, g.params(), g.grads(), buffer(momentum_));
  };
  if (!graphs_) {
    step();
    return;
  }
  backend_.set_step(pass.step);
  auto key = step_key(pass, lr, momentum, weight_decay, comm ? comm->size() : 1);
  key.push_back(uint64_t(n_stats));
  if (key != captured_) {
    const bool capture = key == warmed_;  // a new kind of step runs once uncaptured, then is captured
    try {
      backend_.begin_graph_step(capture);
      for (const auto& p : pending_) launch_gather(p.events, p.n, p.at);
      step();
      const uint64_t id = backend_.end_graph_step();
      if (capture) graph_id_ = id;
    } catch (...) {
      backend_.abort_graph_step();
      captured_.clear();
      pending_.clear();
      throw;
    }
    if (capture) {
      captured_ = key;
      backend_.replay(graph_id_);
    } else {
      warmed_ = key;
    }
  } else {
    backend_.replay(graph_id_);
  }
  pending_.clear();
}

double Model::train_step(const Pass& pass, const int32_t* host_label, const float* host_weight, float lr,
                         float momentum, float weight_decay, float* probs, int n_probs, Communicator* comm) {
  enqueue_step(pass, host_label, host_weight, lr, momentum, weight_decay, n_probs, comm);
  const double loss = backend_.read_loss();
  if (probs) backend_.to_host(probs, buffer(probs_), size_t(n_probs) * classes_ * sizeof(float));
  return loss;
}

void Model::reset_epoch_stats() {
  const double zero[2] = {0.0, 0.0};
  backend_.upload(graph_->ptr<double>(stats_), zero, sizeof zero);
}

Model::EpochStats Model::epoch_stats() {
  double host[2];
  backend_.to_host(host, graph_->ptr<double>(stats_), sizeof host);
  return {host[0], int64_t(host[1])};
}

std::vector<float> Model::predict(const float* raw, int64_t rows) {
  Graph& g = *graph_;
  std::vector<float> out(size_t(rows) * classes_);
  const size_t row = row_size();
  const int64_t batch = max_batch();
  // Batch k + 1 is copied (prefetch, into the other staging buffer) while batch k is computed.
  std::vector<float> scales[2];
  const auto stage = [&](int64_t begin) {
    const int n = int(std::min<int64_t>(batch, rows - begin));
    const int slot = int((begin / batch) % 2);
    const float* chunk = raw + size_t(begin) * row;
    scales[slot] = normaliser_.row_scales(chunk, n, int64_t(row));
    const auto [values, bytes] = as_stored(chunk, size_t(n) * row, staging_bf16_[slot]);
    backend_.prefetch(buffer(staging_[slot]), values, bytes);
    backend_.prefetch(buffer(staging_scale_[slot]), scales[slot].data(), size_t(n) * sizeof(float));
  };
  if (rows > 0) stage(0);
  for (int64_t begin = 0; begin < rows; begin += batch) {
    const int n = int(std::min<int64_t>(batch, rows - begin));
    const int slot = int((begin / batch) % 2);
    backend_.await_prefetch();
    backend_.gather_normalise(n, int(row), buffer(staging_[slot]), backend_.bf16_storage(), g.ptr<int64_t>(iota_),
                              buffer(staging_scale_[slot]), buffer(col_shift_), buffer(col_scale_), g.input());
    if (begin + batch < rows) stage(begin + batch);  // after the gather that read its buffers last time
    g.forward(Pass{n, false, 0, 0});
    backend_.softmax(n, classes_, g.output(), buffer(probs_));
    backend_.to_host(out.data() + size_t(begin) * classes_, buffer(probs_), size_t(n) * classes_ * sizeof(float));
  }
  // A score that is not a probability is never returned: finite parameters and events can still
  // overflow float32 inside the network (values of 1e30; a model file's parameters of 1e38).
  for (size_t i = 0; i < out.size(); ++i)
    if (!(out[i] >= 0.0f && out[i] <= 1.0f))
      throw Error("the network's output for event " + std::to_string(i / size_t(classes_)) +
                  " is not finite: the event's or the model's values overflow float32");
  return out;
}

}  // namespace aware
