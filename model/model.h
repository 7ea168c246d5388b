// A network planned on a backend, with the buffers of a training step and of scoring:
// the thing that trains (model/train.h) and scores (predict).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/bf16.h"
#include "model/data.h"
#include "model/network.h"
#include "runtime/backend.h"
#include "runtime/communicator.h"
#include "runtime/graph.h"

namespace aware {

// Events resident on the backend: raw values (floats, or BF16 with the backend's bf16 storage) and
// their per-event normalisation factors (FP32, from the full-precision values).
struct DeviceEvents {
  const void* x = nullptr;
  const float* row_scale = nullptr;
  int64_t rows = 0;
  bool bf16 = false;
};

class Model {
 public:
  // training = false: a forward-only model for scoring (no gradient or optimiser buffers).
  Model(Backend& backend, const NetworkSpec& network, const std::vector<int64_t>& event_shape,
        int classes, int max_batch, const Normaliser& normaliser, bool training = true);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  Graph& graph() { return *graph_; }
  Backend& backend() { return backend_; }
  int classes() const { return classes_; }
  int max_batch() const { return graph_->max_batch(); }
  size_t row_size() const { return graph_->input_size(); }
  const Normaliser& normaliser() const { return normaliser_; }

  void set_params(const std::vector<float>& params);
  std::vector<float> params() const;
  void set_momentum(const std::vector<float>& momentum);
  std::vector<float> momentum() const;

  // Copies events to the backend, once per set: a later call with the same set returns the copy,
  // which the model keeps until it is destroyed.
  DeviceEvents upload(const EventSet& set);

  // Gathers rows index[0, n) of `events` into graph input rows [at, at + n), normalised. With step
  // graphs the indices are copied now and the gather runs inside the next train_step's graph.
  void gather(const DeviceEvents& events, const int64_t* host_index, int n, int at);

  // Step graphs (on by default where the backend has them, i.e. CUDA): the first train_step of a
  // kind (batch, rows, settings) runs as a warm-up, the second is captured as one graph -- gathers,
  // forward, loss, backward, all-reduce, SGD -- and every later one replays it.
  void use_step_graphs(bool on) { graphs_ = on && backend_.supports_graphs(); }
  bool step_graphs() const { return graphs_; }

  // One training step over the pass.batch rows already gathered: forward, the fused loss with
  // per-row labels (kUniformTarget for anomalies) and weights, backward, the gradient summed over
  // the ranks of `comm` (data parallel; null: one process), SGD; and this rank's loss and the correct
  // rows among the first `n_stats` added to the epoch's stats, on the backend. Enqueued, not waited
  // for: on CUDA a step with graphs neither reads nor waits (its host data goes through upload()).
  void enqueue_step(const Pass& pass, const int32_t* host_label, const float* host_weight, float lr,
                    float momentum, float weight_decay, int n_stats, Communicator* comm = nullptr);
  // enqueue_step(), then waits: returns this rank's weighted loss and writes the softmax of the first
  // `n_probs` rows to host `probs` when not null (tests, benchmarks).
  double train_step(const Pass& pass, const int32_t* host_label, const float* host_weight, float lr,
                    float momentum, float weight_decay, float* probs, int n_probs,
                    Communicator* comm = nullptr);
  // The steps' loss sum and correct rows since reset_epoch_stats() (which the constructor does).
  // Waits for the backend: read once an epoch, or when a progress bar redraws.
  struct EpochStats {
    double loss_sum;
    int64_t correct;
  };
  EpochStats epoch_stats();
  void reset_epoch_stats();

  // Softmax probabilities [rows][classes] of raw host events (normalised here), in chunks. Throws
  // aware::Error naming the event (from 0) whose output overflowed, rather than return a NaN.
  std::vector<float> predict(const float* raw, int64_t rows);

 private:
  float* buffer(Buffer b) const { return graph_->ptr(b); }
  // Events as the backend stores them: the floats themselves, or their BF16 copy (in `scratch`, which
  // must outlive the copy to the backend), with the bytes to copy.
  std::pair<const void*, size_t> as_stored(const float* x, size_t n, std::vector<bf16>& scratch) const;
  size_t stored_value_bytes() const { return backend_.bf16_storage() ? sizeof(bf16) : sizeof(float); }
  void launch_gather(const DeviceEvents& events, int n, int at);
  // Everything a captured step depends on besides the step number and the buffers' contents.
  struct PendingGather {
    DeviceEvents events;
    int n, at;
  };
  std::vector<uint64_t> step_key(const Pass& pass, float lr, float momentum, float weight_decay, int ranks) const;
  bool graphs_ = false;
  std::vector<PendingGather> pending_;
  std::vector<uint64_t> warmed_, captured_;  // the keys of the last warm-up step and of the captured graph
  uint64_t graph_id_ = 0;                    // the backend's id of the captured graph
  Backend& backend_;
  std::unique_ptr<Graph> graph_;
  int classes_;
  Normaliser normaliser_;
  Buffer index_, label_, weight_, probs_, stats_, momentum_, iota_, col_shift_, col_scale_;
  Buffer staging_[2], staging_scale_[2];  // predict(): one batch copied while the other is computed
  std::vector<bf16> staging_bf16_[2];     // predict() with bf16 storage: as_stored()'s scratch per slot
  std::vector<void*> uploads_;
  std::map<const EventSet*, DeviceEvents> uploaded_;
};

}  // namespace aware
