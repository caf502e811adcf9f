// Normal draws for synthetic models (model/synth.ts): xorshift32 and Box-Muller in double
// precision, the same numbers in the same order as the JS loop they replace (V8's Math.log, cos
// and sin and glibc's gave the same f32 values over 20M draws). ~25% faster than the JS: the
// libm calls are the cost either way. Scalar only: nothing here is a hot path of a run.
#pragma once

#include <cstdint>

namespace redblue {

struct GaussianState {
  uint32_t s;       // xorshift32 state, never 0
  bool has_spare;   // Box-Muller's second value of the last pair, not yet used
  double spare;
};

// x[i] = float(mean + stddev · N(0, 1)) for i in [0, n), continuing the sequence in *state.
void GaussianFill(float* x, int64_t n, double mean, double stddev, GaussianState* state);

}  // namespace redblue
