// Selection over a row of logits for the sampler (model/sampling.ts): the largest value and the
// k largest, with the JS sampler's rules (ties to the lower index; NaN and +Infinity reported by
// the first index that holds one). Between two decode steps the executors wait for the sampler:
// in JS a pass over Qwen's 151936 logits took 170 µs (argmax) and 290 µs (top-k 40); here one
// vector pass skips almost every value with a compare. A scalar reference beside each.
#pragma once

#include <cstdint>

namespace redblue {

// The index of the largest of x[0..n) (the lowest among equals; 0 when all are -Infinity), n ≥ 1.
// *bad: the first index holding NaN or +Infinity (the result then meaningless), or -1.
int64_t ArgmaxF32(const float* x, int64_t n, int64_t* bad);
int64_t ArgmaxF32Scalar(const float* x, int64_t n, int64_t* bad);

// The k largest of x[0..n) (a larger value first, the lower index among equals), 1 ≤ k ≤ n: their
// indices in ids[0..k), ascending. *bad as ArgmaxF32's.
void TopKF32(const float* x, int64_t n, int64_t k, int32_t* ids, int64_t* bad);
void TopKF32Scalar(const float* x, int64_t n, int64_t k, int32_t* ids, int64_t* bad);

}  // namespace redblue
