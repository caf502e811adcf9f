// One rank's part of a distributed C = A·B on one host, as one native step. The rank's bricks are
// the planner's sequential steps, run one after another: each fetches only its blocks of A and B
// from the shared staging area into node-local buffers (sized for the largest step, reused), and
// accumulates into its C chunk (a run of bricks with the same m×n and contiguous k), which lives
// in C itself when the chunk spans all of k, else in the chunk's partial slot. After a barrier the
// rank reduces the rows of C it owns from every rank's partials. Works for any set of bricks that
// partitions the iteration space (grids or not). With a done array, each finished C chunk is
// marked there, and a step computing only some chunks (those a lost executor left undone) and
// reducing all of them picks up where the last one stopped.
// Where the bytes live: the staging area's A and B pages are first touched by whoever writes them
// (the coordinator), so they may sit on any node; the executor reads them once per step into its
// node-local buffers (bound to its node), and the kernel reads only those.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "executor/collective.h"

namespace redblue {

struct StepBrick {
  int64_t m0, m1, n0, n1, k0, k1;
  uint64_t partialOffset;  // byte offset of its (m1-m0)×(n1-n0) f32 partial in the staging area
  int64_t doneIndex = -1;  // its C chunk's flag in the done array (mine only; -1: none)
};

struct GemmStepArgs {
  char* staging = nullptr;
  uint64_t stagingBytes = 0;
  int64_t m = 0, n = 0, k = 0;
  uint64_t aOffset = 0, bOffset = 0, cOffset = 0;  // A m×k, B k×n, C m×n, row-major f32
  std::vector<StepBrick> mine;  // ours, one per sequential step, each with its C chunk's slot
  std::vector<StepBrick> all;   // every rank's C chunks (including ours): what the reduction sums
  int64_t cRow0 = 0, cRow1 = 0;  // rows of C this rank reduces
  int node = 0;
  // The done array: one uint32 per C chunk of the plan, set to 1 once the chunk's result is in
  // place (in C, or in its partial slot), so that after a lost executor only the chunks not done
  // are computed again. doneCount 0: none kept.
  uint64_t doneOffset = 0;
  int64_t doneCount = 0;
};

// What the step did, beside its times: the executed schedule.
struct GemmStepTimings {
  double computeSeconds = 0, exchangeSeconds = 0, totalSeconds = 0;
  uint64_t bytesReceived = 0;
  uint64_t steps = 0;          // bricks computed (sequential steps)
  uint64_t cChunks = 0;        // C chunks accumulated
  uint64_t blocksFetched = 0;  // blocks of A and B copied into node-local memory
  uint64_t bytesFetched = 0;   // their bytes
  uint64_t localPeakBytes = 0; // node-local bytes mapped for the step at most (A and B buffers)
  int localNode = -1;          // where the kernel says those buffers' pages are (-1 unknown, -2 mixed)
};

// Throws UserError when a brick or offset falls outside the problem or the staging area.
void CheckGemmStep(const GemmStepArgs& a);
GemmStepTimings GemmStep(const GemmStepArgs& a, ThreadPool& pool, Collective& peers);

}  // namespace redblue
