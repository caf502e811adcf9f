// Argmax and top-k over f32 logits (select.h): scalar references and AVX-512 passes, chosen at
// run time.
#include "kernels/select.h"

#include "core/cpu_features.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace redblue {
namespace {

inline bool Invalid(float v) { return !(v < std::numeric_limits<float>::infinity()); }  // NaN or +Inf

// A min-heap of the k best so far, its root the weakest: the smaller value, or of equal values
// the larger index (scanning in index order, an equal value that comes later never enters).
struct Best {
  std::vector<std::pair<float, int32_t>> h;
  size_t k;
  static bool Weaker(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  }
  // std heaps keep the "largest" by the comparator at the front: by "stronger", the weakest.
  static bool Stronger(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return Weaker(b, a);
  }
  explicit Best(int64_t k) : k(static_cast<size_t>(k)) { h.reserve(this->k); }
  bool Full() const { return h.size() == k; }
  float Threshold() const { return h.front().first; }
  void Offer(float v, int32_t i) {
    if (!Full()) {
      h.emplace_back(v, i);
      std::push_heap(h.begin(), h.end(), Stronger);
    } else if (v > h.front().first) {
      std::pop_heap(h.begin(), h.end(), Stronger);
      h.back() = {v, i};
      std::push_heap(h.begin(), h.end(), Stronger);
    }
  }
  void Out(int32_t* ids) {
    for (size_t j = 0; j < h.size(); ++j) ids[j] = h[j].second;
    std::sort(ids, ids + h.size());
  }
};

__attribute__((target("avx512f"))) int64_t ArgmaxAvx512(const float* x, int64_t n, int64_t* bad) {
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512i at = _mm512_setzero_si512(), idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    // NaN (unordered) or +Infinity
    if (_mm512_cmp_ps_mask(v, inf, _CMP_NLT_UQ)) {
      for (int64_t j = i; j < i + 16; ++j)
        if (Invalid(x[j])) {
          *bad = j;
          return 0;
        }
    }
    const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, v);
    at = _mm512_mask_mov_epi32(at, gt, idx);
    idx = _mm512_add_epi32(idx, step);
  }
  alignas(64) float bv[16];
  alignas(64) int32_t bi[16];
  _mm512_store_ps(bv, best);
  _mm512_store_si512(bi, at);
  // Each lane kept its first largest; across lanes the largest, then the lowest index.
  int64_t r = i > 0 ? bi[0] : 0;
  float rv = i > 0 ? bv[0] : x[0];
  for (int l = 1; l < 16 && i > 0; ++l)
    if (bv[l] > rv || (bv[l] == rv && bi[l] < r)) r = bi[l], rv = bv[l];
  for (; i < n; ++i) {
    if (Invalid(x[i])) {
      *bad = i;
      return 0;
    }
    if (x[i] > rv) r = i, rv = x[i];
  }
  *bad = -1;
  return r;
}

__attribute__((target("avx512f"))) void TopKAvx512(const float* x, int64_t n, int64_t k, int32_t* ids,
                                                    int64_t* bad) {
  Best best(k);
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i < n && !best.Full(); ++i) {
    if (Invalid(x[i])) {
      *bad = i;
      return;
    }
    best.Offer(x[i], static_cast<int32_t>(i));
  }
  // Now a value enters only above the weakest kept: most blocks have none, nor NaN or +Infinity.
  for (; i < n && (i & 15); ++i) {
    if (Invalid(x[i])) {
      *bad = i;
      return;
    }
    best.Offer(x[i], static_cast<int32_t>(i));
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 hot =
        _mm512_cmp_ps_mask(v, _mm512_set1_ps(best.Threshold()), _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, inf, _CMP_NLT_UQ);
    if (!hot) continue;
    for (int64_t j = i; j < i + 16; ++j) {
      if (Invalid(x[j])) {
        *bad = j;
        return;
      }
      best.Offer(x[j], static_cast<int32_t>(j));
    }
  }
  for (; i < n; ++i) {
    if (Invalid(x[i])) {
      *bad = i;
      return;
    }
    best.Offer(x[i], static_cast<int32_t>(i));
  }
  *bad = -1;
  best.Out(ids);
}

bool HasAvx512() { return DetectCpu().avx512f; }

}  // namespace

int64_t ArgmaxF32Scalar(const float* x, int64_t n, int64_t* bad) {
  int64_t r = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (Invalid(x[i])) {
      *bad = i;
      return 0;
    }
    if (x[i] > x[r]) r = i;
  }
  *bad = -1;
  return r;
}

void TopKF32Scalar(const float* x, int64_t n, int64_t k, int32_t* ids, int64_t* bad) {
  Best best(k);
  for (int64_t i = 0; i < n; ++i) {
    if (Invalid(x[i])) {
      *bad = i;
      return;
    }
    best.Offer(x[i], static_cast<int32_t>(i));
  }
  *bad = -1;
  best.Out(ids);
}

int64_t ArgmaxF32(const float* x, int64_t n, int64_t* bad) {
  return HasAvx512() ? ArgmaxAvx512(x, n, bad) : ArgmaxF32Scalar(x, n, bad);
}

void TopKF32(const float* x, int64_t n, int64_t k, int32_t* ids, int64_t* bad) {
  if (HasAvx512())
    TopKAvx512(x, n, k, ids, bad);
  else
    TopKF32Scalar(x, n, k, ids, bad);
}

}  // namespace redblue
