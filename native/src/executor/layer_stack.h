// A weight-stationary stack of L matrices W_l (n×k) held in node-local memory, and passes of
// Y_l = X·W_lᵀ through it: the token-generation (m = 1) and prompt (m = 512) pattern of LLM
// inference. Each rank computes a range of the n output rows; after every layer the slices are
// all-gathered, as tensor parallelism does between layers. One call runs all passes natively.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/node_memory.h"
#include "core/thread_pool.h"
#include "executor/collective.h"
#include "kernels/quant.h"

namespace redblue {

struct LayerStackConfig {
  std::string dtype;  // "q4_0" | "q8_0" | "f16" | "bf16" | "f32"
  int64_t n = 0, k = 0;
  int layers = 0;
  uint64_t seed = 0;
  bool mirror = false;      // mirror: every layer whole on this node; shard: only our rows
  int64_t rowLo = 0, rowHi = 0;  // the rows this rank computes
  int node = 0;             // NUMA node of the weights
};

// computeSeconds: in kernels; waitSeconds: until every peer finished its share of the layer (load
// imbalance); exchangeSeconds: moving the slices once all are there.
struct PassTimings {
  double seconds = 0, computeSeconds = 0, waitSeconds = 0, exchangeSeconds = 0;
  int passes = 0;
  std::vector<int64_t> rows;  // rows per rank at the end (the split balancing arrived at)
};

class LayerStack {
 public:
  // Checks the configuration; weights are made layer by layer with AddLayer.
  explicit LayerStack(const LayerStackConfig& cfg);
  // Makes the next layer in node-local memory: from `source` (the whole n×k f32 matrix, of which
  // this rank's held rows are taken) or, when null, from the seed (identical values whatever
  // the split).
  void AddLayer(ThreadPool& pool, const float* source = nullptr);
  int layersMade() const { return static_cast<int>(weights_.size()); }
  uint64_t weightBytes() const { return weightBytes_; }
  const LayerStackConfig& config() const { return cfg_; }
  const char* backing() const;

  // `iters` passes with fresh X (m×k from seed and pass index). After each layer the row slices
  // are all-gathered across `peers`. If yOut is given, the gathered Y of every layer of the last
  // pass is written there (layers × m × n floats, rank-major blocks re-laid out to row-major).
  // With `balance` (every rank holds every layer whole), the rows each rank computes follow the
  // ranks' measured speed, layer by layer, so a slower core gets fewer rows instead of making
  // the others wait; rowsPerRank is then only the first split.
  PassTimings Run(int64_t m, int iters, uint64_t seed, ThreadPool& pool, Collective& peers,
                  const std::vector<int64_t>& rowsPerRank, float* yOut, float* xOut, bool balance = false);

 private:
  LayerStackConfig cfg_;
  bool f32_ = false;
  WeightType type_ = WeightType::Q4_0;
  int64_t rowBytes_ = 0;
  int64_t heldLo_ = 0;  // first row held in memory (0 for a mirror)
  int64_t heldRows_ = 0;
  uint64_t weightBytes_ = 0;
  std::vector<std::unique_ptr<NodeBuffer>> weights_;
};

// n rows split in proportion to `rate` (rank order), no rank below a quarter of an even share.
std::vector<int64_t> SplitByRate(int64_t n, const std::vector<double>& rate);

// The values a seed gives: weights and inputs are made the same way in tests and references.
void FillUniform(float* out, int64_t count, uint64_t seed, uint64_t stream, uint64_t first);

}  // namespace redblue
