#include "executor/gemm_step.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "core/errors.h"
#include "core/node_memory.h"
#include "kernels/gemm_f32.h"

namespace redblue {
namespace {
double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void CheckRange(uint64_t off, uint64_t bytes, uint64_t total, const char* what) {
  if (off > total || bytes > total - off)
    throw UserError(std::string(what) + " at byte " + std::to_string(off) + " (" + std::to_string(bytes) +
                    " bytes) lies outside the " + std::to_string(total) + "-byte staging area");
}

// A brick that spans all of k is the only one writing its cells of C (the bricks partition the
// iteration space), so it multiplies straight into C and needs no reduction.
bool Sole(const StepBrick& b, int64_t k) { return b.k0 == 0 && b.k1 == k; }

// Node-local buffers for the fetched A and B blocks, sized for the step's largest brick and reused
// by every brick of the step. They are kept for the next step when it needs the same sizes
// (repeated runs map and populate nothing) and replaced otherwise, so a step never holds more
// than its own largest blocks (the plan's memory limit counts exactly those).
class Scratch {
 public:
  // Buffers of `aBytes` and `bBytes` on `node`: the current ones when they have those sizes, else
  // new ones, mapped after both old ones are freed (a step never holds old and new at once).
  void Prepare(size_t aBytes, size_t bBytes, int node) {
    const size_t want[2] = {std::max<size_t>(aBytes, 1), std::max<size_t>(bBytes, 1)};
    bool keep = true;
    for (int i = 0; i < 2; ++i) keep = keep && bufs_[i] && bufs_[i]->size() == want[i] && bufs_[i]->node() == node;
    if (keep) return;
    for (auto& b : bufs_) b.reset();
    for (int i = 0; i < 2; ++i) {
      // Huge pages (2 MiB) only where rounding up to them wastes at most 1/16: a small step's
      // buffers must not outgrow the memory its plan allows.
      const size_t huge = size_t{2} << 20, waste = (want[i] + huge - 1) / huge * huge - want[i];
      bufs_[i] = std::make_unique<NodeBuffer>(want[i], node, waste <= want[i] / 16 ? HugePolicy::Auto : HugePolicy::None);
    }
  }
  float* Data(int i) const { return static_cast<float*>(bufs_[i]->data()); }
  uint64_t MappedBytes() const {
    uint64_t s = 0;
    for (const auto& b : bufs_)
      if (b) s += b->mappedSize();
    return s;
  }
  int Node() const {
    int node = -1;
    for (const auto& b : bufs_) {
      if (!b) continue;
      int n = NodeOfPages(b->data(), b->size());
      if (node == -1) node = n;
      else if (n != node) return n < 0 ? n : -2;
    }
    return node;
  }

 private:
  std::unique_ptr<NodeBuffer> bufs_[2];
};
std::mutex gScratchMu;
Scratch gScratch;

bool Continues(const StepBrick& p, const StepBrick& b) {
  return p.m0 == b.m0 && p.m1 == b.m1 && p.n0 == b.n0 && p.n1 == b.n1 && p.k1 == b.k0 &&
         p.partialOffset == b.partialOffset;
}

// The k range of the C chunk each brick belongs to: k innermost, a brick continues the previous
// one's chunk when it has the same m and n ranges, the same slot and its k range follows.
std::vector<std::pair<int64_t, int64_t>> ChunkSpans(const std::vector<StepBrick>& bricks) {
  std::vector<std::pair<int64_t, int64_t>> out(bricks.size());
  for (size_t i = 0; i < bricks.size();) {
    size_t j = i + 1;
    while (j < bricks.size() && Continues(bricks[j - 1], bricks[j])) ++j;
    for (size_t x = i; x < j; ++x) out[x] = {bricks[i].k0, bricks[j - 1].k1};
    i = j;
  }
  return out;
}

// Copies a rows×cols block (source row stride ld) into a packed buffer, rows split over the pool.
void CopyBlock(const float* src, int64_t ld, int64_t rows, int64_t cols, float* dst, ThreadPool& pool) {
  const int64_t chunk = 64;
  pool.ParallelFor((rows + chunk - 1) / chunk, [&](int64_t t, int) {
    for (int64_t r = t * chunk; r < std::min(rows, (t + 1) * chunk); ++r)
      std::memcpy(dst + r * cols, src + r * ld, static_cast<size_t>(cols) * 4);
  });
}
}  // namespace

void CheckGemmStep(const GemmStepArgs& a) {
  if (!a.staging) throw UserError("gemm step: no staging area attached");
  if (a.m <= 0 || a.n <= 0 || a.k <= 0) throw UserError("gemm step: m, n and k must be at least 1");
  uint64_t fa = 4ull * a.m * a.k, fb = 4ull * a.k * a.n, fc = 4ull * a.m * a.n;
  CheckRange(a.aOffset, fa, a.stagingBytes, "A");
  CheckRange(a.bOffset, fb, a.stagingBytes, "B");
  CheckRange(a.cOffset, fc, a.stagingBytes, "C");
  if (a.cRow0 < 0 || a.cRow1 > a.m || a.cRow0 > a.cRow1) throw UserError("gemm step: C row range outside C");
  if (a.doneCount < 0) throw UserError("gemm step: the done array cannot have a negative length");
  if (a.doneCount > 0) {
    if (a.doneOffset % 4 != 0) throw UserError("gemm step: the done array must be 4-byte aligned");
    CheckRange(a.doneOffset, 4ull * static_cast<uint64_t>(a.doneCount), a.stagingBytes, "the done array");
  }
  for (const StepBrick& b : a.mine)  // (without a done array, done indices are not used)
    if (a.doneCount > 0 && (b.doneIndex < -1 || b.doneIndex >= a.doneCount))
      throw UserError("gemm step: done index " + std::to_string(b.doneIndex) + " is outside the done array of " +
                      std::to_string(a.doneCount));
  auto spans = ChunkSpans(a.mine);
  for (const auto* list : {&a.mine, &a.all})
    for (size_t i = 0; i < list->size(); ++i) {
      const StepBrick& b = (*list)[i];
      // A brick of ours writes its chunk's slot unless the chunk spans all of k.
      bool sole = list == &a.mine ? spans[i].first == 0 && spans[i].second == a.k : Sole(b, a.k);
      if (b.m0 < 0 || b.m1 > a.m || b.m0 >= b.m1 || b.n0 < 0 || b.n1 > a.n || b.n0 >= b.n1 || b.k0 < 0 ||
          b.k1 > a.k || b.k0 >= b.k1)
        throw UserError("gemm step: a brick lies outside the " + std::to_string(a.m) + "×" + std::to_string(a.n) +
                        "×" + std::to_string(a.k) + " iteration space");
      if (!sole)
        CheckRange(b.partialOffset, 4ull * (b.m1 - b.m0) * (b.n1 - b.n0), a.stagingBytes, "partial C");
    }
}

GemmStepTimings GemmStep(const GemmStepArgs& a, ThreadPool& pool, Collective& peers) {
  CheckGemmStep(a);
  GemmStepTimings t;
  double start = Now();
  const float* A = reinterpret_cast<const float*>(a.staging + a.aOffset);
  const float* B = reinterpret_cast<const float*>(a.staging + a.bOffset);
  float* C = reinterpret_cast<float*>(a.staging + a.cOffset);

  std::lock_guard<std::mutex> scratchLock(gScratchMu);
  size_t maxA = 0, maxB = 0;
  for (const StepBrick& b : a.mine) {
    maxA = std::max<size_t>(maxA, static_cast<size_t>((b.m1 - b.m0) * (b.k1 - b.k0)) * 4);
    maxB = std::max<size_t>(maxB, static_cast<size_t>((b.k1 - b.k0) * (b.n1 - b.n0)) * 4);
  }
  float* la = nullptr;
  float* lb = nullptr;
  if (!a.mine.empty()) {
    gScratch.Prepare(maxA, maxB, a.node);
    la = gScratch.Data(0);
    lb = gScratch.Data(1);
    t.localPeakBytes = gScratch.MappedBytes();
    t.localNode = gScratch.Node();
  }
  // A brick that continues its C chunk adds to it instead of overwriting it.
  auto spans = ChunkSpans(a.mine);
  for (size_t i = 0; i < a.mine.size(); ++i) {
    const StepBrick& b = a.mine[i];
    int64_t bm = b.m1 - b.m0, bn = b.n1 - b.n0, bk = b.k1 - b.k0;
    bool continues = i > 0 && Continues(a.mine[i - 1], b);
    if (!continues) ++t.cChunks;
    double t0 = Now();
    // Fetch: this step's blocks of A and B into the node-local buffers.
    CopyBlock(A + b.m0 * a.k + b.k0, a.k, bm, bk, la, pool);
    CopyBlock(B + b.k0 * a.n + b.n0, a.n, bk, bn, lb, pool);
    t.bytesReceived += static_cast<uint64_t>(bm * bk + bk * bn) * 4;
    t.bytesFetched += static_cast<uint64_t>(bm * bk + bk * bn) * 4;
    t.blocksFetched += 2;
    ++t.steps;
    double t1 = Now();
    GemmArgs g;
    g.m = bm;
    g.n = bn;
    g.k = bk;
    g.a = la;
    g.lda = bk;
    g.b = lb;
    g.ldb = bn;
    g.beta = continues ? 1.0f : 0.0f;
    if (spans[i].first == 0 && spans[i].second == a.k) {  // the chunk is the only one with these cells
      g.c = C + b.m0 * a.n + b.n0;
      g.ldc = a.n;
    } else {
      g.c = reinterpret_cast<float*>(a.staging + b.partialOffset);
      g.ldc = bn;
    }
    GemmF32(g, pool);
    // The chunk's last brick: its result is complete, and a later step may keep it.
    const bool last = i + 1 == a.mine.size() || !Continues(b, a.mine[i + 1]);
    if (last && b.doneIndex >= 0 && a.doneCount > 0)
      reinterpret_cast<std::atomic<uint32_t>*>(a.staging + a.doneOffset)[b.doneIndex].store(1, std::memory_order_release);
    double t2 = Now();
    t.exchangeSeconds += t1 - t0;
    t.computeSeconds += t2 - t1;
  }

  double r0 = Now();
  peers.Barrier();  // every partial is written
  // Reduce: in C rows [cRow0, cRow1), the cells of bricks that split k are the sum of those
  // bricks' partials. (Cells of sole bricks were written directly and are left alone.)
  std::vector<StepBrick> split;
  for (const StepBrick& b : a.all)
    if (!Sole(b, a.k)) split.push_back(b);
  int64_t rows = a.cRow1 - a.cRow0;
  if (rows > 0 && !split.empty()) {
    const int64_t chunk = 16;
    pool.ParallelFor((rows + chunk - 1) / chunk, [&](int64_t task, int) {
      int64_t i0 = a.cRow0 + task * chunk, i1 = std::min(a.cRow1, i0 + chunk);
      for (const StepBrick& b : split) {
        int64_t lo = std::max(i0, b.m0), hi = std::min(i1, b.m1);
        for (int64_t i = lo; i < hi; ++i) std::memset(C + i * a.n + b.n0, 0, static_cast<size_t>(b.n1 - b.n0) * 4);
      }
      for (const StepBrick& b : split) {
        int64_t lo = std::max(i0, b.m0), hi = std::min(i1, b.m1);
        int64_t bn = b.n1 - b.n0;
        const float* P = reinterpret_cast<const float*>(a.staging + b.partialOffset);
        for (int64_t i = lo; i < hi; ++i) {
          float* dst = C + i * a.n + b.n0;
          const float* src = P + (i - b.m0) * bn;
          for (int64_t j = 0; j < bn; ++j) dst[j] += src[j];
        }
      }
    });
    for (const StepBrick& b : split) {
      int64_t lo = std::max(a.cRow0, b.m0), hi = std::min(a.cRow1, b.m1);
      if (hi > lo) t.bytesReceived += static_cast<uint64_t>((hi - lo) * (b.n1 - b.n0)) * 4;
    }
  }
  peers.Barrier();  // C is complete
  t.exchangeSeconds += Now() - r0;
  t.totalSeconds = Now() - start;
  return t;
}

}  // namespace redblue
