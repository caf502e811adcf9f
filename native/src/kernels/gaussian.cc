#include "kernels/gaussian.h"

#include <cmath>

namespace redblue {

namespace {
inline uint32_t Next(uint32_t s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}
}  // namespace

// Written as the JS was, operation for operation: baseline x86-64 has no FMA to contract into,
// so each product and sum rounds as V8's did.
void GaussianFill(float* x, int64_t n, double mean, double stddev, GaussianState* state) {
  int64_t i = 0;
  if (state->has_spare && n > 0) {
    x[i++] = static_cast<float>(mean + stddev * state->spare);
    state->has_spare = false;
  }
  uint32_t s = state->s;
  const double two_pi = 2 * 3.141592653589793;
  while (i < n) {
    s = Next(s);
    const double u1 = (static_cast<double>(s) + 1) / 4294967297.0;
    s = Next(s);
    const double u2 = (static_cast<double>(s) + 1) / 4294967297.0;
    const double r = std::sqrt(-2 * std::log(u1));
    const double t = two_pi * u2;
    x[i++] = static_cast<float>(mean + stddev * (r * std::cos(t)));
    const double second = r * std::sin(t);
    if (i < n) {
      x[i++] = static_cast<float>(mean + stddev * second);
    } else {
      state->spare = second;
      state->has_spare = true;
    }
  }
  state->s = s;
}

}  // namespace redblue
