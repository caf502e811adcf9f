#include "model/step_doorbell.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/errors.h"
#include "shm/sync.h"

namespace redblue {

namespace {
DoorbellBlock* BlockOf(uint8_t* area, size_t bytes) {
  if (!area || bytes < kDoorbellBytes)
    throw UserError("the staging area (" + std::to_string(bytes) + " bytes) cannot hold the step doorbell (" +
                    std::to_string(kDoorbellBytes) + " bytes)");
  return reinterpret_cast<DoorbellBlock*>(area);
}
constexpr uint64_t kSliceNs = 100'000'000;  // how often waiting threads look at their stop flags
}  // namespace

StepLoop::StepLoop(std::shared_ptr<ModelShard> shard, std::shared_ptr<ThreadPool> pool,
                   std::shared_ptr<Collective> peers, uint8_t* area, size_t bytes, int rank)
    : shard_(std::move(shard)), pool_(std::move(pool)), peers_(std::move(peers)), block_(BlockOf(area, bytes)),
      logits_(reinterpret_cast<float*>(area + kDoorbellBytes)), logitsCap_((bytes - kDoorbellBytes) / 4), rank_(rank) {
  if (rank_ < 0 || rank_ >= kDoorbellMaxRanks)
    throw UserError("the step doorbell serves ranks 0-" + std::to_string(kDoorbellMaxRanks - 1) + ", not " +
                    std::to_string(rank_));
  startSeq_ = block_->seq.load(std::memory_order_acquire);
  thread_ = std::thread([this] { Run(); });
}

StepLoop::~StepLoop() {
  quit_ = true;
  shm::FutexWakeAll(&block_->seq);
  thread_.join();
}

void StepLoop::Run() {
  DoorbellRank& me = block_->ranks[rank_];
  uint32_t seen = startSeq_;
  for (;;) {
    uint32_t now = block_->seq.load(std::memory_order_acquire);
    while (now == seen && !quit_ && !block_->stop.load(std::memory_order_acquire)) {
      shm::FutexWait(&block_->seq, seen, kSliceNs);
      now = block_->seq.load(std::memory_order_acquire);
    }
    if (quit_ || block_->stop.load(std::memory_order_acquire)) return;
    seen = now;
    // The step, its report and the coordinator's wake-up run on the pool's worker 0: the
    // coordinator is woken as the step ends, not after this thread has been woken in turn
    // (50-60 µs a token on a small VM).
    bool served = false;
    try {
      pool_->RunStep([&] {
        served = true;
        Serve(me, seen);
      });
    } catch (const std::exception& e) {
      if (!served) Report(me, seen, e.what());
    }
  }
}

// One step on the pool's worker 0; never throws (a failure is the rank's report).
void StepLoop::Serve(DoorbellRank& me, uint32_t seq) {
  me.failed = 0;
  me.error[0] = 0;
  try {
    const uint32_t n = block_->nTokens, nRuns = block_->nRuns;
    if (n == 0 || n > static_cast<uint32_t>(kDoorbellMaxTokens))
      throw UserError("a doorbell step carries 1-" + std::to_string(kDoorbellMaxTokens) + " tokens, not " +
                      std::to_string(n));
    if (nRuns == 0 || nRuns > static_cast<uint32_t>(kDoorbellMaxRuns))
      throw UserError("a doorbell step carries 1-" + std::to_string(kDoorbellMaxRuns) + " sequences, not " +
                      std::to_string(nRuns));
    std::vector<SeqRun> runs(nRuns);
    uint64_t sum = 0;
    size_t rows = 0;
    for (uint32_t i = 0; i < nRuns; ++i) {
      const DoorbellRun& d = block_->runs[i];
      const uint32_t logits = d.logits & ~kDoorbellHiddenBit;
      runs[i] = {d.slot, d.pos, static_cast<int64_t>(d.count), static_cast<int64_t>(logits), d.from,
                 (d.logits & kDoorbellHiddenBit) != 0};
      sum += d.count;
      rows += logits;
    }
    if (sum != n)
      throw UserError("the step's sequences hold " + std::to_string(sum) + " tokens, not its " + std::to_string(n));
    std::vector<int32_t> tokens(block_->tokens, block_->tokens + n);
    const size_t want = rows * static_cast<size_t>(shard_->config().nVocab);
    if (rank_ == 0 && want > logitsCap_)
      throw UserError("the staging area holds " + std::to_string(logitsCap_) + " logits after the doorbell, not " +
                      std::to_string(want) + " (" + std::to_string(rows) + " rows)");
    // Every rank computes the logits (the gather is collective); rank 0 keeps them.
    if (rank_ != 0 && scratch_.size() < want) scratch_.resize(want);
    const ModelForwardTimings t = shard_->ForwardRuns(tokens.data(), runs.data(), static_cast<int>(nRuns), *pool_,
                                                      *peers_, rank_ == 0 ? logits_ : scratch_.data());
    me.seconds = t.seconds;
    me.computeSeconds = t.computeSeconds;
    me.exchangeSeconds = t.exchangeSeconds;
    std::memcpy(me.allReduces, t.allReduces.runs, sizeof me.allReduces);
  } catch (const std::exception& e) {
    Report(me, seq, e.what());
    return;
  }
  Report(me, seq, nullptr);
}

// Marks `seq` done on this rank (failed with `error` when given) and wakes the coordinator.
void StepLoop::Report(DoorbellRank& me, uint32_t seq, const char* error) {
  if (error) {
    me.failed = 1;
    std::strncpy(me.error, error, sizeof me.error - 1);
    me.error[sizeof me.error - 1] = 0;
  }
  me.done.store(seq, std::memory_order_release);
  shm::FutexWakeAll(&me.done);
}

uint32_t PostDoorbell(uint8_t* area, size_t bytes, const DoorbellStep& step, int ranks) {
  DoorbellBlock* b = BlockOf(area, bytes);
  if (ranks < 1 || ranks > kDoorbellMaxRanks) throw UserError("the doorbell serves 1-64 ranks");
  if (step.tokens.empty() || step.tokens.size() > static_cast<size_t>(kDoorbellMaxTokens))
    throw UserError("a doorbell step carries 1-" + std::to_string(kDoorbellMaxTokens) + " tokens");
  if (step.runs.empty() || step.runs.size() > static_cast<size_t>(kDoorbellMaxRuns))
    throw UserError("a doorbell step carries 1-" + std::to_string(kDoorbellMaxRuns) + " sequences");
  uint64_t sum = 0;
  for (size_t i = 0; i < step.runs.size(); ++i) {
    const SeqRun& r = step.runs[i];
    if (r.count < 1 || r.count > kDoorbellMaxTokens)
      throw UserError("sequence " + std::to_string(i) + " of the step carries " + std::to_string(r.count) + " tokens");
    if (r.logits < 0 || r.logits > r.count)
      throw UserError("sequence " + std::to_string(i) + " of the step asks for " + std::to_string(r.logits) +
                      " rows of logits but carries " + std::to_string(r.count) + " tokens");
    b->runs[i] = {r.slot, static_cast<uint32_t>(r.count), r.pos,
                  static_cast<uint32_t>(r.logits) | (r.hidden ? kDoorbellHiddenBit : 0u), r.from};
    sum += static_cast<uint64_t>(r.count);
  }
  if (sum != step.tokens.size())
    throw UserError("the step's sequences hold " + std::to_string(sum) + " tokens, but " +
                    std::to_string(step.tokens.size()) + " were given");
  std::memcpy(b->tokens, step.tokens.data(), step.tokens.size() * 4);
  b->nTokens = static_cast<uint32_t>(step.tokens.size());
  b->nRuns = static_cast<uint32_t>(step.runs.size());
  const uint32_t seq = b->seq.load(std::memory_order_relaxed) + 1;
  b->seq.store(seq, std::memory_order_release);
  shm::FutexWakeAll(&b->seq);
  return seq;
}

std::vector<DoorbellTimings> AwaitDoorbell(uint8_t* area, size_t bytes, uint32_t seq, int ranks, uint64_t timeoutMs) {
  DoorbellBlock* b = BlockOf(area, bytes);
  if (ranks < 1 || ranks > kDoorbellMaxRanks) throw UserError("the doorbell serves 1-64 ranks");
  const uint64_t deadline = shm::NowNs() + timeoutMs * 1'000'000ull;
  std::vector<DoorbellTimings> out(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    DoorbellRank& x = b->ranks[r];
    for (;;) {
      const uint32_t d = x.done.load(std::memory_order_acquire);
      if (d == seq) break;
      if (b->stop.load(std::memory_order_acquire))
        throw UserError("the step was cancelled (the executors' loops were stopped)");
      const uint64_t now = shm::NowNs();
      if (now >= deadline) throw UserError("executor rank " + std::to_string(r) + " did not finish the step in time");
      shm::FutexWait(&x.done, d, std::min<uint64_t>(deadline - now, 50'000'000ull));
    }
    if (x.failed) throw UserError("executor rank " + std::to_string(r) + ": " + std::string(x.error));
    DoorbellTimings& t = out[static_cast<size_t>(r)];
    t.seconds = x.seconds;
    t.computeSeconds = x.computeSeconds;
    t.exchangeSeconds = x.exchangeSeconds;
    std::memcpy(t.allReduces.runs, x.allReduces, sizeof x.allReduces);
  }
  return out;
}

void StopDoorbell(uint8_t* area, size_t bytes) {
  DoorbellBlock* b = BlockOf(area, bytes);
  b->stop.store(1, std::memory_order_release);
  shm::FutexWakeAll(&b->seq);
}

}  // namespace redblue
