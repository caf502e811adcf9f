// A model step without a message: the coordinator writes the step (its sequences' tokens and
// positions) into a block of the host's shared staging area and wakes the executors through a
// futex; each executor's loop thread hands it to its pool's worker 0, which runs
// ModelShard::Forward natively and marks its rank done; rank 0 leaves the logits in the same
// area. Every executor maps the area and the coordinator maps it too, so
// a token costs two futex wake-ups instead of a gRPC round trip to every executor (about 1.7 ms
// on a small VM, more than a tiny model's whole step).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "executor/collective.h"
#include "model/model_shard.h"

namespace redblue {

constexpr int kDoorbellMaxRanks = 64;
constexpr int kDoorbellMaxTokens = 512;
constexpr int kDoorbellMaxRuns = kMaxModelSlots;  // sequences per step
constexpr uint32_t kDoorbellHiddenBit = 0x80000000u;

struct DoorbellRank {
  std::atomic<uint32_t> done;  // the seq this rank finished last (futex word)
  uint32_t failed;
  double seconds, computeSeconds, exchangeSeconds;
  uint32_t allReduces[static_cast<int>(AllReduceAlgo::kCount)];  // AllReduceTally::runs
  char error[208];
};
static_assert(sizeof(DoorbellRank) == 256, "one rank's slot is 256 bytes");

// One sequence of a step (ModelShard's SeqRun as the area holds it).
struct DoorbellRun {
  int32_t slot;
  uint32_t count;
  int64_t pos;
  uint32_t logits;  // rows asked for; bit 31: they are hidden states (SeqRun::hidden)
  int32_t from;     // SeqRun::from: -1 none
};
static_assert(sizeof(DoorbellRun) == 24, "a run is 24 bytes");

struct DoorbellBlock {
  std::atomic<uint32_t> seq;   // bumped by the coordinator to post a step (futex word)
  std::atomic<uint32_t> stop;  // non-zero: the loops end
  uint32_t nTokens;
  uint32_t nRuns;
  uint8_t pad[48];
  DoorbellRank ranks[kDoorbellMaxRanks];
  DoorbellRun runs[kDoorbellMaxRuns];
  int32_t tokens[kDoorbellMaxTokens];
};

// Bytes the block takes at the start of the area; the logits follow (64-byte aligned).
constexpr size_t kDoorbellBytes = (sizeof(DoorbellBlock) + 63) / 64 * 64;

// One executor's loop: a thread that waits for steps and runs them until stopped (RAII).
class StepLoop {
 public:
  // `area` (bytes) stays mapped while the loop runs; rank 0 writes logits after the block.
  StepLoop(std::shared_ptr<ModelShard> shard, std::shared_ptr<ThreadPool> pool, std::shared_ptr<Collective> peers,
           uint8_t* area, size_t bytes, int rank);
  ~StepLoop();
  StepLoop(const StepLoop&) = delete;
  StepLoop& operator=(const StepLoop&) = delete;

 private:
  void Run();
  void Serve(DoorbellRank& me, uint32_t seq);
  static void Report(DoorbellRank& me, uint32_t seq, const char* error);
  std::shared_ptr<ModelShard> shard_;
  std::shared_ptr<ThreadPool> pool_;
  std::shared_ptr<Collective> peers_;
  DoorbellBlock* block_;
  float* logits_;
  size_t logitsCap_;
  int rank_;
  std::vector<float> scratch_;  // ranks other than 0 compute the logits here (the gather is collective)
  std::atomic<bool> quit_{false};
  // The last seq before this loop: read when it is made, not when its thread first runs, so a step
  // posted as soon as startStepLoop returns is served, not taken for the last one.
  uint32_t startSeq_ = 0;
  std::thread thread_;
};

// A step: the tokens of every run, run after run; rank 0 leaves the rows of logits the runs ask
// for (each run's last SeqRun::logits positions), in run order, after the block.
struct DoorbellStep {
  std::vector<int32_t> tokens;
  std::vector<SeqRun> runs;
};

struct DoorbellTimings {
  double seconds = 0, computeSeconds = 0, exchangeSeconds = 0;
  AllReduceTally allReduces;
};

// The coordinator's side, in two halves: PostDoorbell checks `step`, writes it and wakes the
// executors (a few µs: the binding does it on the JS thread, so the executors start without
// waiting for a worker thread to wake); AwaitDoorbell waits until `ranks` executors have done
// step `seq` (UserError naming the rank when one failed, when none answered within timeoutMs,
// or when StopDoorbell ended the loops meanwhile: checked every 50 ms).
uint32_t PostDoorbell(uint8_t* area, size_t bytes, const DoorbellStep& step, int ranks);
std::vector<DoorbellTimings> AwaitDoorbell(uint8_t* area, size_t bytes, uint32_t seq, int ranks, uint64_t timeoutMs);

// Ends every loop on the area (they exit within 100 ms).
void StopDoorbell(uint8_t* area, size_t bytes);

}  // namespace redblue
