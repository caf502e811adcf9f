// One rank's part of a distributed C = A·B on one host, as one native step: fetch the A and B
// blocks of its bricks from the shared staging area into node-local memory, multiply into its
// partial-C slots, then (after a barrier) reduce the rows of C it owns from every rank's
// partials. Works for any set of bricks that partitions the iteration space (grids or not).
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "executor/collective.h"

namespace redblue {

struct StepBrick {
  int64_t m0, m1, n0, n1, k0, k1;
  uint64_t partialOffset;  // byte offset of its (m1-m0)×(n1-n0) f32 partial in the staging area
};

struct GemmStepArgs {
  char* staging = nullptr;
  uint64_t stagingBytes = 0;
  int64_t m = 0, n = 0, k = 0;
  uint64_t aOffset = 0, bOffset = 0, cOffset = 0;  // A m×k, B k×n, C m×n, row-major f32
  std::vector<StepBrick> mine;
  std::vector<StepBrick> all;  // every rank's bricks (including ours)
  int64_t cRow0 = 0, cRow1 = 0;  // rows of C this rank reduces
  int node = 0;
};

struct GemmStepTimings {
  double computeSeconds = 0, exchangeSeconds = 0, totalSeconds = 0;
  uint64_t bytesReceived = 0;
};

// Throws UserError when a brick or offset falls outside the problem or the staging area.
void CheckGemmStep(const GemmStepArgs& a);
GemmStepTimings GemmStep(const GemmStepArgs& a, ThreadPool& pool, Collective& peers);

}  // namespace redblue
