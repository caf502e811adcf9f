#include "shm/communicator.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/errors.h"
#include "shm/reduce.h"
#include "shm/sync.h"

namespace redblue::shm {
namespace {

enum BrokenCode : uint32_t { kPeerDied = 1, kPeerLeft, kTimeout, kMismatch };

constexpr uint64_t kSliceNs = 20'000'000;     // futex sleep slice: bounds failure detection
constexpr uint64_t kLivenessNs = 20'000'000;  // how often peers' pids are checked while sleeping

// Cpus of the host (not of this process's affinity: a rank pinned to one cpu is not alone).
int UsableCpus() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

uint64_t MakeSig(uint8_t op, DType t, uint64_t count) {
  return (uint64_t(op) << 56) | (uint64_t(t == DType::Bf16) << 52) | (count & ((uint64_t(1) << 52) - 1));
}

std::string DescribeSig(uint64_t sig) {
  static const char* names[] = {"?", "barrier", "allReduce", "allGather", "reduceScatter", "broadcast"};
  unsigned op = static_cast<unsigned>(sig >> 56);
  std::string s = op < 6 ? names[op] : "?";
  return s + "(" + ((sig >> 52) & 1 ? "bf16, " : "") + std::to_string(sig & ((uint64_t(1) << 52) - 1)) + ")";
}

inline size_t Clamp(int64_t v, size_t hi) { return v <= 0 ? 0 : std::min(static_cast<size_t>(v), hi); }

void Sum(DType t, void* out, void* out2, const void* const* src, int n, size_t count) {
  if (t == DType::F32)
    SumF32(static_cast<float*>(out), static_cast<float*>(out2), reinterpret_cast<const float* const*>(src), n, count);
  else
    SumBf16(static_cast<uint16_t*>(out), static_cast<uint16_t*>(out2), reinterpret_cast<const uint16_t* const*>(src),
            n, count);
}

}  // namespace

std::string Group::Describe() const {
  std::string s = "[";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? "," : "") + std::to_string(ranks[i]);
  return s + "]";
}

Communicator::Communicator(const CommOptions& opt) : seg_(opt) {
  int cpus = UsableCpus();
  bool oversubscribed = opt.ranks > cpus;
  // Spinning only pays when every rank has its own cpu; otherwise it steals the peer's time.
  spinNs_ = opt.spinNs >= 0 ? static_cast<uint64_t>(opt.spinNs) : (oversubscribed ? 0 : 50'000);
  yieldNs_ = 200'000;
  timeoutNs_ = opt.timeoutNs;
  // Below this, one sync and every rank summing everything beats two syncs (measured, 2 ranks).
  smallBytes_ = opt.smallBytes ? opt.smallBytes : (opt.ranks <= 2 ? (256u << 10) : (16u << 10));
  joinDeadline_ = NowNs() + opt.attachTimeoutNs;
  roundBytes_ = std::min(seg_.slotHalfBytes(), opt.roundBytes ? std::max<size_t>(opt.roundBytes, 4096) : size_t(1) << 20);
  int n = seg_.ranks();
  for (uint32_t i = 0; i < seg_.header()->maxGroups; ++i) channels_.push_back(std::make_unique<Channel>());
  for (int i = 0; i < n; ++i) {
    sendMu_.push_back(std::make_unique<std::mutex>());
    recvMu_.push_back(std::make_unique<std::mutex>());
  }
  std::vector<int> all(n);
  for (int i = 0; i < n; ++i) all[i] = i;
  world_ = MakeGroup(all);
}

Communicator::~Communicator() { Abort(); }

std::string Communicator::RankName(int r) const {
  return "rank " + std::to_string(r) + " (pid " + std::to_string(seg_.header()->rank[r].pid.load()) + ")";
}

Group Communicator::MakeGroup(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  if (ranks.empty()) throw UserError("a group needs at least one rank");
  uint64_t mask = 0;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] < 0 || ranks[i] >= size())
      throw UserError("group rank " + std::to_string(ranks[i]) + " is outside 0.." + std::to_string(size() - 1));
    if (i && ranks[i] == ranks[i - 1]) throw UserError("group lists rank " + std::to_string(ranks[i]) + " twice");
    mask |= uint64_t(1) << ranks[i];
  }
  Group g;
  g.mask = mask;
  g.ranks = ranks;
  g.me = static_cast<int>(std::find(ranks.begin(), ranks.end(), rank()) - ranks.begin());
  if (g.me == g.size())
    throw UserError("rank " + std::to_string(rank()) + " is not a member of group " + g.Describe() +
                    ": only members create and use a group");
  std::lock_guard<std::mutex> lk(groupsMu_);
  Header* h = seg_.header();
  // Every member must end on the same entry, without talking to the others. Entries only ever
  // go from free (0) to a mask, never back, so one ordered pass that stops at the first entry
  // holding this mask or free (and claims it with a CAS) is atomic: whoever claims a mask claims
  // the lowest free entry, and every later pass meets that entry before any free one. (A lookup
  // pass followed by a separate claim pass let two ranks that both missed the lookup claim two
  // entries, splitting the group into two channels that each wait for the other half.)
  for (uint32_t i = 0; i < h->maxGroups; ++i) {
    uint64_t cur = h->group[i].mask.load();
    if (cur == 0 && h->group[i].mask.compare_exchange_strong(cur, mask)) cur = mask;  // else cur: the winner's
    if (cur == mask) {
      g.channel = static_cast<int>(i);
      break;
    }
  }
  if (g.channel < 0)
    throw UserError("no free group channel for " + g.Describe() + ": the segment was created with maxGroups=" +
                    std::to_string(h->maxGroups) + " (raise maxGroups)");
  return g;
}

void Communicator::CheckGroup(const Group& g) const {
  if (g.channel < 0 || g.channel >= static_cast<int>(channels_.size()) ||
      seg_.header()->group[g.channel].mask.load() != g.mask || g.me < 0 || g.me >= g.size() ||
      g.ranks[g.me] != rank())
    throw UserError("invalid group: make groups with Communicator::MakeGroup on every member");
}

void Communicator::Abort() {
  aborted_.store(true);
  seg_.WakeAll();
}

void Communicator::Fail(int channel, uint32_t code, int culprit, const std::string& msg) {
  if (channel >= 0) {
    GroupEntry& e = seg_.header()->group[channel];
    uint32_t expected = 0;
    if (e.broken.compare_exchange_strong(expected, code)) e.culprit.store(culprit);
    seg_.WakeAll();
  }
  throw CommError(msg);
}

void Communicator::CheckHealth(uint64_t peers, int channel, const char* what, const std::atomic<uint32_t>* word,
                               uint32_t target) {
  if (aborted_.load(std::memory_order_relaxed)) throw CommError(std::string(what) + " aborted: the communicator was closed");
  // What we wait for may have arrived just before the peer left or the group broke elsewhere
  // (e.g. a peer that finished this very step and closed): that is no failure.
  if (word && SeqReached(word->load(std::memory_order_acquire), target)) return;
  Header* h = seg_.header();
  // The group's record first: it names the original cause (a rank that left after failing is
  // only a consequence).
  if (channel >= 0) {
    uint32_t code = h->group[channel].broken.load(std::memory_order_relaxed);
    if (code) {
      int c = h->group[channel].culprit.load();
      std::string who = c >= 0 ? RankName(c) : "a rank";
      std::string why = code == kPeerDied ? who + " died"
                        : code == kPeerLeft ? who + " closed its communicator"
                        : code == kTimeout  ? "a rank timed out waiting for " + who
                                            : "mismatched calls (" + who + " called a different collective)";
      throw CommError(std::string(what) + " failed: the group is broken: " + why);
    }
  }
  uint64_t dead = h->deadMask.load(std::memory_order_relaxed) & peers;
  if (dead) {
    int r = __builtin_ctzll(dead);
    for (uint64_t m = dead; m; m &= m - 1)  // prefer a rank that died over one that left
      if (h->rank[__builtin_ctzll(m)].state.load() != kLeft) {
        r = __builtin_ctzll(m);
        break;
      }
    bool left = h->rank[r].state.load() == kLeft;
    Fail(channel, left ? kPeerLeft : kPeerDied, r,
         std::string(what) + " failed: " + RankName(r) + (left ? " closed its communicator" : " died"));
  }
}

void Communicator::WaitWord(std::atomic<uint32_t>& word, std::atomic<uint32_t>& waiters, uint32_t target,
                            uint64_t peers, int channel, int peer, const char* what) {
  if (SeqReached(word.load(std::memory_order_acquire), target)) return;
  const uint64_t start = NowNs();
  uint64_t now = start;
  for (uint32_t i = 1;; ++i) {
    CpuRelax();
    if (SeqReached(word.load(std::memory_order_acquire), target)) return;
    if ((i & 127) == 0) {
      now = NowNs();
      if (now - start >= spinNs_) break;
      CheckHealth(peers, channel, what, &word, target);
    }
  }
  while (now - start < yieldNs_) {
    sched_yield();
    if (SeqReached(word.load(std::memory_order_acquire), target)) return;
    now = NowNs();
  }
  Header* h = seg_.header();
  uint64_t lastLiveness = 0;
  for (;;) {
    CheckHealth(peers, channel, what, &word, target);
    now = NowNs();
    if (now - lastLiveness >= kLivenessNs) {
      lastLiveness = now;
      for (uint64_t m = peers; m; m &= m - 1) {
        int r = __builtin_ctzll(m);
        RankEntry& e = h->rank[r];
        uint32_t st = e.state.load();
        if (st == kLeft || (st == kAlive && !ProcessAlive(e.pid.load(), e.startTime.load()))) {
          h->deadMask.fetch_or(uint64_t(1) << r);
          seg_.WakeAll();
          CheckHealth(peers, channel, what, &word, target);
        }
      }
    }
    // A peer that has not attached yet gets until the join deadline; a live one the op timeout.
    bool joining = h->rank[peer].state.load() == kEmpty;
    uint64_t limit = joining ? joinDeadline_ : start + timeoutNs_;
    if (now > limit)
      Fail(channel, kTimeout, peer,
           std::string(what) + " timed out after " + std::to_string((now - start) / 1000000) + " ms waiting for " +
               RankName(peer) + (joining ? ", which never attached" : ""));
    if (SeqReached(word.load(std::memory_order_acquire), target)) return;
    waiters.fetch_add(1);
    uint32_t v = word.load();
    if (!SeqReached(v, target)) FutexWait(&word, v, std::min(kSliceNs, limit - now + 1));
    waiters.fetch_sub(1);
    if (SeqReached(word.load(std::memory_order_acquire), target)) return;
  }
}

void Communicator::Post(std::atomic<uint32_t>& word, std::atomic<uint32_t>& waiters) {
  word.fetch_add(1);
  if (waiters.load()) FutexWakeAll(&word);
}

void Communicator::Sync(const Group& g, int parity, uint64_t sig, const char* what) {
  CtrlLine& mine = seg_.ctrl(g.channel, rank());
  if (sig) mine.sig[parity].store(sig, std::memory_order_relaxed);
  Post(mine.seq, mine.waiters);
  uint32_t target = mine.seq.load(std::memory_order_relaxed);
  uint64_t peers = g.mask & ~(uint64_t(1) << rank());
  int n = g.size();
  for (int k = 1; k < n; ++k) {
    int j = g.ranks[(g.me + k) % n];
    CtrlLine& l = seg_.ctrl(g.channel, j);
    WaitWord(l.seq, l.waiters, target, peers, g.channel, j, what);
  }
  if (sig)
    for (int k = 1; k < n; ++k) {
      int j = g.ranks[(g.me + k) % n];
      uint64_t theirs = seg_.ctrl(g.channel, j).sig[parity].load(std::memory_order_relaxed);
      if (theirs != sig)
        Fail(g.channel, kMismatch, j,
             "mismatched collectives on group " + g.Describe() + ": rank " + std::to_string(rank()) + " called " +
                 DescribeSig(sig) + " but rank " + std::to_string(j) + " called " + DescribeSig(theirs));
    }
}

void Communicator::Barrier(const Group& g) {
  CheckGroup(g);
  std::lock_guard<std::mutex> lk(channels_[g.channel]->mu);
  if (g.size() == 1) return;
  Sync(g, NextParity(g), MakeSig(static_cast<uint8_t>(Op::Barrier), DType::F32, 0), "barrier");
}

Communicator::ReduceWay Communicator::AllReduce(void* data, size_t count, DType t, const Group& g) {
  CheckGroup(g);
  std::lock_guard<std::mutex> lk(channels_[g.channel]->mu);
  if (count == 0 || g.size() == 1) return ReduceWay::kNone;
  uint64_t sig = MakeSig(static_cast<uint8_t>(Op::AllReduce), t, count);
  if (count * ElemBytes(t) <= smallBytes_) {
    AllReduceFlat(static_cast<char*>(data), count, t, g, sig);
    return ReduceWay::kFlat;
  }
  AllReduceSplit(static_cast<char*>(data), count, t, g, sig);
  return ReduceWay::kSplit;
}

// Small vectors: every member copies its input into its slot, one sync, then every member sums
// all slots itself (one sync instead of two; the extra reads are cheap at this size).
void Communicator::AllReduceFlat(char* data, size_t count, DType t, const Group& g, uint64_t sig) {
  const size_t E = ElemBytes(t), C = RoundBytes() / E;
  const int n = g.size();
  const void* src[kMaxRanks];
  for (size_t off = 0; off < count; off += C) {
    size_t len = std::min(C, count - off);
    int p = NextParity(g);
    char* in = data + off * E;
    Copy(seg_.slot(g.channel, rank(), p), in, len * E);
    Sync(g, p, off == 0 ? sig : 0, "allReduce");
    for (int j = 0; j < n; ++j) src[j] = j == g.me ? in : seg_.slot(g.channel, g.ranks[j], p);
    Reduce(t, in, nullptr, src, n, len);
  }
}

// Large vectors: reduce-scatter then all-gather through the slots. Each member sums its own
// part of every chunk (reading that part from all peers in parallel with the others), then
// copies the other members' summed parts.
void Communicator::AllReduceSplit(char* data, size_t count, DType t, const Group& g, uint64_t sig) {
  const size_t E = ElemBytes(t);
  const size_t C = RoundBytes() / E / 16 * 16;
  const int n = g.size();
  const void* src[kMaxRanks];
  for (size_t off = 0; off < count; off += C) {
    size_t len = std::min(C, count - off);
    size_t part = ((len + n - 1) / n + 15) / 16 * 16;
    int p = NextParity(g);
    char* in = data + off * E;
    char* mine = seg_.slot(g.channel, rank(), p);
    size_t a = std::min(g.me * part, len), b = std::min(a + part, len);
    // Peers only read the parts they reduce: our own part need not go through the slot.
    Copy(mine, in, a * E);
    Copy(mine + b * E, in + b * E, (len - b) * E);
    Sync(g, p, off == 0 ? sig : 0, "allReduce");
    if (b > a) {
      for (int j = 0; j < n; ++j) src[j] = j == g.me ? in + a * E : seg_.slot(g.channel, g.ranks[j], p) + a * E;
      Reduce(t, in + a * E, mine + a * E, src, n, b - a);
    }
    Sync(g, p, 0, "allReduce");
    for (int j = 0; j < n; ++j) {
      if (j == g.me) continue;
      size_t aj = std::min(j * part, len), bj = std::min(aj + part, len);
      Copy(in + aj * E, seg_.slot(g.channel, g.ranks[j], p) + aj * E, (bj - aj) * E);
    }
  }
}

void Communicator::UsePool(std::shared_ptr<ThreadPool> pool, size_t minBytes) {
  std::lock_guard<std::mutex> lk(poolMu_);
  pool_ = std::move(pool);
  poolMinBytes_ = std::max<size_t>(minBytes, 4096);
}

// Large copies and sums are split into one contiguous piece per pool worker.
void Communicator::Copy(void* dst, const void* src, size_t bytes) {
  std::shared_ptr<ThreadPool> pool;
  {
    std::lock_guard<std::mutex> lk(poolMu_);
    if (bytes >= poolMinBytes_) pool = pool_;
  }
  if (!pool || pool->size() < 2) return CopyBytes(dst, src, bytes);
  const int64_t parts = static_cast<int64_t>(pool->size());
  const size_t piece = ((bytes + parts - 1) / parts + 63) / 64 * 64;
  pool->ParallelFor(parts, [&](int64_t i, int) {
    size_t a = std::min(bytes, static_cast<size_t>(i) * piece), b = std::min(bytes, a + piece);
    CopyBytes(static_cast<char*>(dst) + a, static_cast<const char*>(src) + a, b - a);
  });
}

void Communicator::Reduce(DType t, void* out, void* out2, const void* const* src, int n, size_t count) {
  const size_t E = ElemBytes(t);
  std::shared_ptr<ThreadPool> pool;
  {
    std::lock_guard<std::mutex> lk(poolMu_);
    if (count * E >= poolMinBytes_) pool = pool_;
  }
  if (!pool || pool->size() < 2) return Sum(t, out, out2, src, n, count);
  const int64_t parts = static_cast<int64_t>(pool->size());
  const size_t piece = ((count + parts - 1) / parts + 15) / 16 * 16;
  pool->ParallelFor(parts, [&](int64_t i, int) {
    size_t a = std::min(count, static_cast<size_t>(i) * piece), b = std::min(count, a + piece);
    if (b <= a) return;
    const void* s[kMaxRanks];
    for (int j = 0; j < n; ++j) s[j] = static_cast<const char*>(src[j]) + a * E;
    Sum(t, static_cast<char*>(out) + a * E, out2 ? static_cast<char*>(out2) + a * E : nullptr, s, n, b - a);
  });
}

void* Communicator::SlotBuffer(const Group& g, size_t count, DType t) {
  CheckGroup(g);
  if (count * ElemBytes(t) > seg_.slotHalfBytes())
    throw UserError("slotBuffer of " + std::to_string(count * ElemBytes(t)) + " bytes exceeds the slot half (" +
                    std::to_string(seg_.slotHalfBytes()) + " bytes): open the communicator with a larger slotBytes");
  std::lock_guard<std::mutex> lk(channels_[g.channel]->mu);
  return seg_.slot(g.channel, rank(), static_cast<int>(channels_[g.channel]->rounds & 1));
}

// Zero-copy: the input is already in this rank's slot (SlotBuffer), so nothing is copied in;
// each member sums its part in place, then copies the others' parts into its own slot.
void Communicator::AllReduceSlot(size_t count, DType t, const Group& g) {
  CheckGroup(g);
  const size_t E = ElemBytes(t);
  if (count * E > seg_.slotHalfBytes())
    throw UserError("allReduceSlot of " + std::to_string(count * E) + " bytes exceeds the slot half (" +
                    std::to_string(seg_.slotHalfBytes()) + " bytes)");
  std::lock_guard<std::mutex> lk(channels_[g.channel]->mu);
  if (count == 0 || g.size() == 1) return;
  const int n = g.size();
  uint64_t sig = MakeSig(static_cast<uint8_t>(Op::AllReduce), t, count);
  int p = NextParity(g);
  char* mine = seg_.slot(g.channel, rank(), p);
  size_t part = ((count + n - 1) / n + 15) / 16 * 16;
  size_t a = std::min(g.me * part, count), b = std::min(a + part, count);
  const void* src[kMaxRanks];
  Sync(g, p, sig, "allReduceSlot");
  if (b > a) {
    for (int j = 0; j < n; ++j) src[j] = seg_.slot(g.channel, g.ranks[j], p) + a * E;
    Reduce(t, mine + a * E, nullptr, src, n, b - a);
  }
  Sync(g, p, 0, "allReduceSlot");
  for (int j = 0; j < n; ++j) {
    if (j == g.me) continue;
    size_t aj = std::min(j * part, count), bj = std::min(aj + part, count);
    Copy(mine + aj * E, seg_.slot(g.channel, g.ranks[j], p) + aj * E, (bj - aj) * E);
  }
}

void Communicator::AllGatherV(const void* send, void* recv, const std::vector<size_t>& recvBytes, const Group& g) {
  CheckGroup(g);
  if (recvBytes.size() != static_cast<size_t>(g.size()))
    throw UserError("allGatherV needs one size per group member (" + std::to_string(g.size()) + "), got " +
                    std::to_string(recvBytes.size()));
  std::lock_guard<std::mutex> lk(channels_[g.channel]->mu);
  const int n = g.size();
  std::vector<size_t> offset(n + 1, 0);
  size_t maxBytes = 0;
  for (int j = 0; j < n; ++j) {
    offset[j + 1] = offset[j] + recvBytes[j];
    maxBytes = std::max(maxBytes, recvBytes[j]);
  }
  char* out = static_cast<char*>(recv);
  const char* in = static_cast<const char*>(send);
  const size_t myBytes = recvBytes[g.me];
  if (myBytes && out + offset[g.me] != in) std::memmove(out + offset[g.me], in, myBytes);
  if (maxBytes == 0 || n == 1) return;
  const size_t H = RoundBytes();
  uint64_t sig = MakeSig(static_cast<uint8_t>(Op::AllGather), DType::F32, offset[n]);
  for (size_t r0 = 0; r0 < maxBytes; r0 += H) {
    int p = NextParity(g);
    // Read from `out`, where our block already is (send may alias it).
    Copy(seg_.slot(g.channel, rank(), p), out + offset[g.me] + r0, Clamp(int64_t(myBytes) - int64_t(r0), H));
    Sync(g, p, r0 == 0 ? sig : 0, "allGather");
    for (int j = 0; j < n; ++j) {
      if (j == g.me) continue;
      Copy(out + offset[j] + r0, seg_.slot(g.channel, g.ranks[j], p),
                Clamp(int64_t(recvBytes[j]) - int64_t(r0), H));
    }
  }
}

void Communicator::AllGather(const void* send, size_t bytes, void* recv, const Group& g) {
  AllGatherV(send, recv, std::vector<size_t>(g.ranks.size(), bytes), g);
}

void Communicator::ReduceScatterV(const void* send, void* recv, const std::vector<size_t>& counts, DType t,
                                  const Group& g) {
  CheckGroup(g);
  if (counts.size() != static_cast<size_t>(g.size()))
    throw UserError("reduceScatterV needs one count per group member (" + std::to_string(g.size()) + "), got " +
                    std::to_string(counts.size()));
  std::lock_guard<std::mutex> lk(channels_[g.channel]->mu);
  const int n = g.size();
  const size_t E = ElemBytes(t);
  size_t total = 0, myOff = 0;
  for (int j = 0; j < n; ++j) {
    if (j == g.me) myOff = total;
    total += counts[j];
  }
  const size_t myCount = counts[g.me];
  const char* in = static_cast<const char*>(send);
  char* out = static_cast<char*>(recv);
  if (total == 0) return;
  if (n == 1) {
    std::memmove(out, in, total * E);
    return;
  }
  const size_t C = RoundBytes() / E;
  uint64_t sig = MakeSig(static_cast<uint8_t>(Op::ReduceScatter), t, total);
  const void* src[kMaxRanks];
  for (size_t off = 0; off < total; off += C) {
    size_t len = std::min(C, total - off);
    int p = NextParity(g);
    Copy(seg_.slot(g.channel, rank(), p), in + off * E, len * E);
    Sync(g, p, off == 0 ? sig : 0, "reduceScatter");
    size_t a = std::max(off, myOff), b = std::min(off + len, myOff + myCount);
    if (b > a) {
      for (int j = 0; j < n; ++j) src[j] = seg_.slot(g.channel, g.ranks[j], p) + (a - off) * E;
      Reduce(t, out + (a - myOff) * E, nullptr, src, n, b - a);
    }
  }
}

void Communicator::ReduceScatter(const void* send, void* recv, size_t countPerRank, DType t, const Group& g) {
  ReduceScatterV(send, recv, std::vector<size_t>(g.ranks.size(), countPerRank), t, g);
}

void Communicator::Broadcast(void* data, size_t bytes, int root, const Group& g) {
  CheckGroup(g);
  auto it = std::find(g.ranks.begin(), g.ranks.end(), root);
  if (it == g.ranks.end())
    throw UserError("broadcast root " + std::to_string(root) + " is not a member of group " + g.Describe());
  std::lock_guard<std::mutex> lk(channels_[g.channel]->mu);
  if (bytes == 0 || g.size() == 1) return;
  const size_t H = RoundBytes();
  char* buf = static_cast<char*>(data);
  uint64_t sig = MakeSig(static_cast<uint8_t>(Op::Broadcast), DType::F32, bytes * 64 + static_cast<uint64_t>(root));
  for (size_t off = 0; off < bytes; off += H) {
    size_t len = std::min(H, bytes - off);
    int p = NextParity(g);
    if (root == rank()) Copy(seg_.slot(g.channel, rank(), p), buf + off, len);
    Sync(g, p, off == 0 ? sig : 0, "broadcast");
    if (root != rank()) Copy(buf + off, seg_.slot(g.channel, root, p), len);
  }
}

// --- point-to-point --------------------------------------------------------------------------

namespace {
void CheckPeer(int peer, int me, int n, const char* what) {
  if (peer < 0 || peer >= n)
    throw UserError(std::string(what) + ": rank " + std::to_string(peer) + " is outside 0.." + std::to_string(n - 1));
  if (peer == me) throw UserError(std::string(what) + ": a rank cannot message itself");
}
}  // namespace

void Communicator::Send(int dst, const void* data, size_t bytes) {
  CheckPeer(dst, rank(), size(), "send");
  std::lock_guard<std::mutex> lk(*sendMu_[dst]);
  P2PLine& l = seg_.p2p(rank(), dst);
  char* buf = seg_.p2pData(rank(), dst);
  const size_t P = seg_.p2pBytes();
  const char* in = static_cast<const char*>(data);
  size_t off = 0;
  do {
    uint32_t sent = l.sent.load(std::memory_order_relaxed);
    WaitWord(l.acked, l.ackedWaiters, sent, uint64_t(1) << dst, -1, dst, "send");
    size_t len = std::min(P, bytes - off);
    Copy(buf, in + off, len);
    l.chunkBytes.store(len, std::memory_order_relaxed);
    if (off == 0) l.totalBytes.store(bytes, std::memory_order_relaxed);
    Post(l.sent, l.sentWaiters);
    off += len;
  } while (off < bytes);
}

size_t Communicator::Recv(int src, const std::function<void*(size_t)>& alloc) {
  CheckPeer(src, rank(), size(), "recv");
  std::lock_guard<std::mutex> lk(*recvMu_[src]);
  P2PLine& l = seg_.p2p(src, rank());
  const char* buf = seg_.p2pData(src, rank());
  WaitWord(l.sent, l.sentWaiters, l.acked.load(std::memory_order_relaxed) + 1, uint64_t(1) << src, -1, src, "recv");
  const size_t total = l.totalBytes.load(std::memory_order_relaxed);
  char* out = nullptr;
  std::exception_ptr refused;
  try {
    out = static_cast<char*>(alloc(total));
  } catch (...) {
    refused = std::current_exception();  // drain the message so the pair stays usable
  }
  size_t off = 0;
  while (true) {
    size_t len = l.chunkBytes.load(std::memory_order_relaxed);
    if (out) Copy(out + off, buf, len);
    off += len;
    Post(l.acked, l.ackedWaiters);
    if (off >= total) break;
    WaitWord(l.sent, l.sentWaiters, l.acked.load(std::memory_order_relaxed) + 1, uint64_t(1) << src, -1, src, "recv");
  }
  if (refused) std::rethrow_exception(refused);
  return total;
}

void* Communicator::SendBuffer(int dst, size_t* capacity) {
  CheckPeer(dst, rank(), size(), "sendBuffer");
  P2PLine& l = seg_.p2p(rank(), dst);
  WaitWord(l.acked, l.ackedWaiters, l.sent.load(std::memory_order_relaxed), uint64_t(1) << dst, -1, dst, "sendBuffer");
  *capacity = seg_.p2pBytes();
  return seg_.p2pData(rank(), dst);
}

void Communicator::PostSend(int dst, size_t bytes) {
  CheckPeer(dst, rank(), size(), "postSend");
  if (bytes > seg_.p2pBytes())
    throw UserError("postSend of " + std::to_string(bytes) + " bytes exceeds the mailbox (" +
                    std::to_string(seg_.p2pBytes()) + " bytes): use send() for large messages");
  P2PLine& l = seg_.p2p(rank(), dst);
  if (l.acked.load() != l.sent.load())
    throw UserError("postSend: the mailbox to rank " + std::to_string(dst) + " is busy: call sendBuffer() first");
  l.chunkBytes.store(bytes, std::memory_order_relaxed);
  l.totalBytes.store(bytes, std::memory_order_relaxed);
  Post(l.sent, l.sentWaiters);
}

const void* Communicator::RecvBuffer(int src, size_t* bytes) {
  CheckPeer(src, rank(), size(), "recvBuffer");
  P2PLine& l = seg_.p2p(src, rank());
  WaitWord(l.sent, l.sentWaiters, l.acked.load(std::memory_order_relaxed) + 1, uint64_t(1) << src, -1, src,
           "recvBuffer");
  size_t total = l.totalBytes.load(std::memory_order_relaxed), chunk = l.chunkBytes.load(std::memory_order_relaxed);
  if (total != chunk)
    throw UserError("recvBuffer: the message from rank " + std::to_string(src) + " (" + std::to_string(total) +
                    " bytes) is larger than one mailbox: use recv()");
  *bytes = total;
  return seg_.p2pData(src, rank());
}

void Communicator::ReleaseRecv(int src) {
  CheckPeer(src, rank(), size(), "releaseRecv");
  P2PLine& l = seg_.p2p(src, rank());
  if (l.sent.load() == l.acked.load())
    throw UserError("releaseRecv: no message from rank " + std::to_string(src) + " is held");
  Post(l.acked, l.ackedWaiters);
}

}  // namespace redblue::shm
