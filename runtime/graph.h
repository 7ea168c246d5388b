// A small static graph: a chain of nodes over buffers planned once in one arena.
//
// Building: each node is added with the size of its output per row; Graph::plan() then asks every
// node for the extra buffers it needs (pre-pool activations, workspace), lays all of them out in one
// arena (one allocation from the backend, 64-byte aligned offsets), and sets the parameters and
// their gradients as two flat buffers. After that, forward and backward passes only read and write
// planned memory: a training step allocates nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.h"

namespace aware {

class Graph;

// What a pass needs to know beyond the buffers.
struct Pass {
  int batch = 0;        // rows in this pass (at most the planned batch)
  bool train = false;   // dropout active
  uint64_t seed = 0;    // the run's seed (dropout streams)
  uint64_t step = 0;    // global step number (dropout streams)
  // Where the rows sit in the global batch of a data-parallel step: rows [0, split) are global
  // rows first + i, rows [split, batch) global rows second + i - split (the normal and the anomaly
  // part of a rank's share). One process: split = batch, first = 0.
  int split = -1;       // -1: batch
  uint64_t first = 0, second = 0;
  int split_at() const { return split < 0 ? batch : split; }
};

// Handle of a planned buffer; resolved to a pointer by Graph::ptr().
struct Buffer {
  int index = -1;
};

class Node {
 public:
  virtual ~Node() = default;
  virtual std::string describe() const = 0;
  virtual size_t param_count() const { return 0; }
  // Fills this node's parameters (host memory) from the counter-based generator.
  virtual void init_params(float* /*params*/, uint64_t /*seed*/, uint64_t /*stream*/) const {}
  // Asks the graph for extra buffers (per max batch); called once by Graph::plan().
  virtual void plan(Graph& /*graph*/, int /*max_batch*/) {}
  virtual void forward(Graph& graph, const Pass& pass) = 0;
  // Reads grad(out), writes grad(in) (unless the node is first) and its parameter gradients.
  virtual void backward(Graph& graph, const Pass& pass) = 0;
  virtual double flops_per_row() const { return 0.0; }

  // Set by the graph.
  Buffer in, out, in_grad, out_grad;
  size_t in_size = 0, out_size = 0;  // floats per row
  size_t param_offset = 0;
  bool first = false;
  int index = 0;
};

class Graph {
 public:
  // gradients = false: a forward-only graph (scoring), without gradient buffers: about half the arena.
  Graph(Backend& backend, size_t input_size, int max_batch, bool gradients = true);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Appends a node whose input is the previous node's output.
  void add(std::unique_ptr<Node> node, size_t out_size);
  // Requests a buffer of `bytes`; valid after plan(). Only during planning.
  Buffer request(size_t bytes);
  // Lays out the arena and allocates it; extra buffers for the loss are requested before this.
  void plan();

  void forward(const Pass& pass);
  // after_node, when given, is called after each node's backward with that node: its parameter
  // gradients are final then (data parallelism starts their all-reduce while earlier layers run).
  void backward(const Pass& pass, const std::function<void(const Node&)>& after_node = {});

  Backend& backend() { return backend_; }
  template <class T = float>
  T* ptr(Buffer b) const { return reinterpret_cast<T*>(static_cast<char*>(arena_) + offsets_.at(b.index)); }

  float* input() const { return ptr(input_); }
  float* output() const { return ptr(nodes_.back()->out); }
  float* output_grad() const { return ptr(nodes_.back()->out_grad); }
  size_t input_size() const { return input_size_; }
  size_t output_size() const { return nodes_.back()->out_size; }
  int max_batch() const { return max_batch_; }

  float* params() const { return ptr(params_); }
  float* grads() const { return ptr(grads_); }
  bool has_gradients() const { return gradients_; }
  size_t param_count() const { return param_count_; }
  size_t arena_bytes() const { return arena_bytes_; }
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  double flops_per_row() const;  // forward
  std::string describe() const;

 private:
  Backend& backend_;
  size_t input_size_;
  int max_batch_;
  bool gradients_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<size_t> sizes_, offsets_;
  Buffer input_, params_, grads_;
  size_t param_count_ = 0, arena_bytes_ = 0;
  void* arena_ = nullptr;
};

}  // namespace aware
