#include "runtime/graph.h"

#include <sstream>

#include "kernels/error.h"

namespace aware {

Graph::Graph(Backend& backend, size_t input_size, int max_batch, bool gradients)
    : backend_(backend), input_size_(input_size), max_batch_(max_batch), gradients_(gradients) {
  check(max_batch > 0, "graph: batch must be positive");
  input_ = request(sizeof(float) * input_size * max_batch);
}

Graph::~Graph() {
  if (arena_) backend_.release(arena_);
}

Buffer Graph::request(size_t bytes) {
  check(arena_ == nullptr, "graph: buffers can only be requested before planning");
  sizes_.push_back(bytes);
  return Buffer{int(sizes_.size()) - 1};
}

void Graph::add(std::unique_ptr<Node> node, size_t out_size) {
  const size_t rows = size_t(max_batch_);
  node->first = nodes_.empty();
  node->index = int(nodes_.size());
  node->in = nodes_.empty() ? input_ : nodes_.back()->out;
  node->in_size = nodes_.empty() ? input_size_ : nodes_.back()->out_size;
  node->in_grad = nodes_.empty() ? Buffer{} : nodes_.back()->out_grad;
  node->out_size = out_size;
  node->out = request(sizeof(float) * out_size * rows);
  node->out_grad = gradients_ ? request(sizeof(float) * out_size * rows) : Buffer{};
  node->param_offset = param_count_;
  param_count_ += node->param_count();
  nodes_.push_back(std::move(node));
}

void Graph::plan() {
  check(!nodes_.empty(), "graph: no nodes");
  for (auto& node : nodes_) node->plan(*this, max_batch_);
  params_ = request(sizeof(float) * param_count_);
  if (gradients_) grads_ = request(sizeof(float) * param_count_);
  offsets_.resize(sizes_.size());
  size_t offset = 0;
  for (size_t i = 0; i < sizes_.size(); ++i) {
    offsets_[i] = offset;
    offset += (sizes_[i] + 255) / 256 * 256;  // 256-byte aligned buffers (cuDNN workspaces, vector loads)
  }
  arena_bytes_ = offset;
  arena_ = backend_.allocate(arena_bytes_);
}

void Graph::forward(const Pass& pass) {
  check(pass.batch > 0 && pass.batch <= max_batch_, "graph: batch exceeds the planned batch");
  for (auto& node : nodes_) node->forward(*this, pass);
}

void Graph::backward(const Pass& pass, const std::function<void(const Node&)>& after_node) {
  check(gradients_, "graph: a forward-only graph has no backward pass");
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    (*it)->backward(*this, pass);
    if (after_node) after_node(**it);
  }
}

double Graph::flops_per_row() const {
  double total = 0.0;
  for (auto& node : nodes_) total += node->flops_per_row();
  return total;
}

std::string Graph::describe() const {
  std::ostringstream out;
  for (auto& node : nodes_) out << node->describe() << "\n";
  out << param_count_ << " parameters, arena " << arena_bytes_ / (1 << 20) << " MiB for batch "
      << max_batch_;
  return out.str();
}

}  // namespace aware
