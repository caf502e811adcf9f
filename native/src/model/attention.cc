#include "model/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "core/cpu_features.h"
#include "core/errors.h"
#include "kernels/exp_avx2.h"
#include "kernels/half.h"

namespace redblue {
namespace {

// ---------------------------------------------------------------------------------------------
// Scalar reference: per (token, KV head), each cached row widened and dotted with the query heads
// that share it; the softmax exact in two passes; the values summed row by row.
void ScalarTask(const AttentionArgs& a, int64_t t, int64_t kv, int64_t h0, int64_t h1, std::vector<float>& buf) {
  const int64_t hd = a.headDim, nh = h1 - h0, len = a.pos0 + t + 1, qStride = a.qHeads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t need = static_cast<size_t>(nh * len + nh * hd + hd);
  if (buf.size() < need) buf.resize(need);
  float* score = buf.data();      // nh × len
  float* acc = score + nh * len;  // nh × hd
  float* row = acc + nh * hd;     // one widened K or V row
  const uint16_t* K = a.kCache + kv * a.nCtx * hd;
  const uint16_t* V = a.vCache + kv * a.nCtx * hd;
  const float* q = a.q + t * qStride + h0 * hd;
  for (int64_t j = 0; j < len; ++j) {
    for (int64_t i = 0; i < hd; ++i) row[i] = F16ToF32(K[KIndex(0, j, i, a.nCtx, hd)]);
    for (int64_t h = 0; h < nh; ++h) {
      float d = 0;
      for (int64_t i = 0; i < hd; ++i) d += q[h * hd + i] * row[i];
      score[h * len + j] = d * scale;
    }
  }
  for (int64_t h = 0; h < nh; ++h) {
    float* s = score + h * len;
    float mx = -INFINITY;
    for (int64_t j = 0; j < len; ++j) mx = std::max(mx, s[j]);
    double sum = 0;
    for (int64_t j = 0; j < len; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < len; ++j) s[j] *= inv;
  }
  std::fill(acc, acc + nh * hd, 0.0f);
  for (int64_t j = 0; j < len; ++j) {
    for (int64_t i = 0; i < hd; ++i) row[i] = F16ToF32(V[j * hd + i]);
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t i = 0; i < hd; ++i) acc[h * hd + i] += score[h * len + j] * row[i];
  }
  for (int64_t h = 0; h < nh; ++h) std::copy(acc + h * hd, acc + (h + 1) * hd, a.out + t * qStride + (h0 + h) * hd);
}

// ---------------------------------------------------------------------------------------------
// AVX2: a task is one KV head and a block of up to kBlockTokens consecutive tokens, i.e. R = tokens
// × query heads rows that all read the same cache. Keys go by in chunks of kChunk positions,
// widened once per task (not once per token): K as the cache keeps it (transposed), so eight
// keys' scores fill one ymm, V as it is. Both products are register tiles of 4 rows (S = Q·Kᵀ:
// 4 rows × 16 keys, O = P·V: 4 rows × 16 of the head's dims), each lane one (row, key) or (row,
// dim) summed in a fixed order: a row's result does not depend on which rows share its tile or
// task. Rows whose position ends before the block's last see probability 0 for the later keys,
// which adds exactly nothing; a chunk's keys past the block's end get scores that are never read.
constexpr int64_t kBlockTokens = 8;
constexpr int64_t kChunk = kKeyChunk;

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

// out[i] = h[i] widened, 8 at a time.
AVX2_FN void WidenRows(const uint16_t* h, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) out[i] = F16ToF32(h[i]);
}
// Kt[d·kChunk + j] = the chunk's K[d][j] widened, for j < keys (a multiple of 16, at most kChunk);
// keys from n on are 0.
AVX2_FN void WidenChunk(const uint16_t* Kc, int64_t n, int64_t keys, int64_t hd, float* Kt) {
  for (int64_t d = 0; d < hd; ++d) {
    WidenRows(Kc + d * kChunk, n, Kt + d * kChunk);
    std::fill(Kt + d * kChunk + n, Kt + d * kChunk + keys, 0.0f);
  }
}

// s[i·sStride + j] = scale · Σ_d q_i[d]·Kt[d][j] for RT rows (query pointers qr) and the
// chunk's first `keys` keys (a multiple of 16).
template <int RT>
AVX2_FN void ScoresTile(const float* const* qr, const float* Kt, int64_t hd, int64_t keys, float scale, float* s,
                        int64_t sStride) {
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t j = 0; j < keys; j += 16) {
    __m256 acc[RT][2];
    for (int i = 0; i < RT; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; ++d) {
      const __m256 k0 = _mm256_loadu_ps(Kt + d * kChunk + j), k1 = _mm256_loadu_ps(Kt + d * kChunk + j + 8);
      for (int i = 0; i < RT; ++i) {
        const __m256 qb = _mm256_broadcast_ss(qr[i] + d);
        acc[i][0] = _mm256_fmadd_ps(qb, k0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(qb, k1, acc[i][1]);
      }
    }
    for (int i = 0; i < RT; ++i) {
      _mm256_storeu_ps(s + i * sStride + j, _mm256_mul_ps(acc[i][0], vs));
      _mm256_storeu_ps(s + i * sStride + j + 8, _mm256_mul_ps(acc[i][1], vs));
    }
  }
}

// o[i·hd + d] += Σ_{j<n} p[i·pStride + j]·Vw[j][d] for RT rows, dims in steps of 8·W.
template <int RT, int W>
AVX2_FN void ValuesTile(const float* p, int64_t pStride, const float* Vw, int64_t n, int64_t hd, float* o) {
  for (int64_t d = 0; d + 8 * W <= hd; d += 8 * W) {
    __m256 acc[RT][W];
    for (int i = 0; i < RT; ++i)
      for (int w = 0; w < W; ++w) acc[i][w] = _mm256_loadu_ps(o + i * hd + d + 8 * w);
    for (int64_t j = 0; j < n; ++j) {
      __m256 v[W];
      for (int w = 0; w < W; ++w) v[w] = _mm256_loadu_ps(Vw + j * hd + d + 8 * w);
      for (int i = 0; i < RT; ++i) {
        const __m256 pb = _mm256_broadcast_ss(p + i * pStride + j);
        for (int w = 0; w < W; ++w) acc[i][w] = _mm256_fmadd_ps(pb, v[w], acc[i][w]);
      }
    }
    for (int i = 0; i < RT; ++i)
      for (int w = 0; w < W; ++w) _mm256_storeu_ps(o + i * hd + d + 8 * w, acc[i][w]);
  }
}
// ScoresTile over R rows: tiles of 4, then single rows.
AVX2_FN void ScoresRows(const float* const* qr, int64_t R, const float* Kt, int64_t hd, int64_t keys, float scale,
                        float* s, int64_t sStride) {
  int64_t r = 0;
  for (; r + 4 <= R; r += 4) ScoresTile<4>(qr + r, Kt, hd, keys, scale, s + r * sStride, sStride);
  for (; r < R; ++r) ScoresTile<1>(qr + r, Kt, hd, keys, scale, s + r * sStride, sStride);
}
// ValuesTile over R rows: tiles of 4, then single rows.
template <int W>
AVX2_FN void ValuesRows(const float* p, int64_t pStride, const float* Vw, int64_t n, int64_t hd, float* o, int64_t R) {
  int64_t r = 0;
  for (; r + 4 <= R; r += 4) ValuesTile<4, W>(p + r * pStride, pStride, Vw, n, hd, o + r * hd);
  for (; r < R; ++r) ValuesTile<1, W>(p + r * pStride, pStride, Vw, n, hd, o + r * hd);
}

// s[j..n) ← exp(s − mx), 8 a step then the tail through the same Exp8 (padded lanes left out of
// the sum), each step's values added into sum8: the softmax's sum in its fixed lane order.
AVX2_FN __m256 ExpInto(float* s, int64_t j, int64_t n, float mx, __m256 sum8) {
  const __m256 vm = _mm256_set1_ps(mx);
  for (; j + 8 <= n; j += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    _mm256_storeu_ps(s + j, e);
    sum8 = _mm256_add_ps(sum8, e);
  }
  if (j < n) {
    alignas(32) float t[8];
    for (int i = 0; i < 8; ++i) t[i] = j + i < n ? s[j + i] : mx;
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_load_ps(t), vm));
    _mm256_store_ps(t, e);
    for (int64_t i = j; i < n; ++i) s[i] = t[i - j];
    for (int i = static_cast<int>(n - j); i < 8; ++i) t[i] = 0.0f;
    sum8 = _mm256_add_ps(sum8, _mm256_load_ps(t));
  }
  return sum8;
}
AVX2_FN float FoldLanes(__m256 sum8) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum8);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// s[0..n) ← softmax(s[0..n)), s[n..end) ← 0. The sum runs in 8 lanes then folds in a fixed
// order, so it depends on n and the scores only.
AVX2_FN void SoftmaxRow(float* s, int64_t n, int64_t end) {
  __m256 m8 = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(s + j));
  float mx = -INFINITY;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m8);
  for (float l : lanes) mx = std::max(mx, l);
  for (int64_t i = j; i < n; ++i) mx = std::max(mx, s[i]);
  const float sum = FoldLanes(ExpInto(s, 0, n, mx, _mm256_setzero_ps()));
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
  for (; j < n; ++j) s[j] *= 1.0f / sum;
  std::fill(s + n, s + end, 0.0f);
}


struct Avx2Tiles {
  // The chunk's n keys widened into `scratch`, then the tiles. (The widening reads the chunk
  // front to back, which the hardware prefetchers follow: the prefetch pointer is not needed.)
  static void Scores(const float* const* qr, int64_t R, const uint16_t* Kc, float* scratch, int64_t hd, int64_t n,
                     float scale, float* s, int64_t sStride, const uint16_t*) {
    const int64_t keys = (n + 15) / 16 * 16;
    WidenChunk(Kc, n, keys, hd, scratch);
    ScoresRows(qr, R, scratch, hd, keys, scale, s, sStride);
  }
  static void Softmax(float* s, int64_t n, int64_t end) { SoftmaxRow(s, n, end); }
  // V's n f16 rows widened into `scratch` once, then the tiles.
  static void Values(const float* p, int64_t pStride, const uint16_t* V, float* scratch, int64_t n, int64_t hd,
                     float* o, int64_t R, const uint16_t*) {
    WidenRows(V, n * hd, scratch);
    if (hd % 16 == 0)
      ValuesRows<2>(p, pStride, scratch, n, hd, o, R);
    else
      ValuesRows<1>(p, pStride, scratch, n, hd, o, R);
  }
};
#undef AVX2_FN

// ---------------------------------------------------------------------------------------------
// AVX-512 (heads whose width is a multiple of 16): the same tiles with 16 lanes a register, so
// twice the keys or dims per instruction. Each lane is still one (row, key) or (row, dim) and
// takes the AVX2 lane's operations in the same order, so the results are the same bits.
// GCC 12 flags the undefined pass-through operand inside its own AVX-512 intrinsics (a false
// positive, as in quant_avx512_rows8_body.h).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define AVX512_TARGET "avx512f,avx2,fma,f16c"
#define AVX512_FN __attribute__((target(AVX512_TARGET)))
#define AVX512_FN_INLINE __attribute__((target(AVX512_TARGET), always_inline)) inline
#define AVX512_FN_LAMBDA __attribute__((target(AVX512_TARGET), always_inline))

// Decoding reads each layer's cache once from memory, and a tile's loads (one line a head dim,
// 256 bytes apart in K) stalled on it: 60% of the tiles' samples sat on the load at depth 1536.
// Each load at offset o of its chunk asks for offset o of `pf`, the chunk read next: K's next
// chunk (about 2000 cycles later), after K's last V's first, after V's last the chunk itself (an
// L1 hit), so nothing past the keys read is fetched. Both layouts hold a chunk in kChunk·hd
// values, so the offsets cover the next chunk as the loads cover this one.
AVX512_FN_INLINE void Prefetch(const uint16_t* pf, int64_t o) {
  _mm_prefetch(reinterpret_cast<const char*>(pf + o), _MM_HINT_T0);
}

// K's f16 keys converted where a tile loads them (the floats WidenChunk would give): no widening
// pass.
template <int RT, int W>
AVX512_FN void ScoresTile512(const float* const* qr, const uint16_t* Kc, int64_t hd, int64_t j, float scale, float* s,
                             int64_t sStride, const uint16_t* pf) {
  __m512 acc[RT][W];
  for (int i = 0; i < RT; ++i)
    for (int w = 0; w < W; ++w) acc[i][w] = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    Prefetch(pf, d * kChunk + j);
    __m512 k[W];
    for (int w = 0; w < W; ++w)
      k[w] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(Kc + d * kChunk + j + 16 * w)));
    for (int i = 0; i < RT; ++i) {
      const __m512 qb = _mm512_set1_ps(qr[i][d]);
      for (int w = 0; w < W; ++w) acc[i][w] = _mm512_fmadd_ps(qb, k[w], acc[i][w]);
    }
  }
  const __m512 vs = _mm512_set1_ps(scale);
  for (int i = 0; i < RT; ++i)
    for (int w = 0; w < W; ++w) _mm512_storeu_ps(s + i * sStride + j + 16 * w, _mm512_mul_ps(acc[i][w], vs));
}
template <int RT>
AVX512_FN void ScoresKeys512(const float* const* qr, const uint16_t* Kc, int64_t hd, int64_t keys, float scale,
                             float* s, int64_t sStride, const uint16_t* pf) {
  int64_t j = 0;
  for (; j + 32 <= keys; j += 32) ScoresTile512<RT, 2>(qr, Kc, hd, j, scale, s, sStride, pf);
  if (j < keys) ScoresTile512<RT, 1>(qr, Kc, hd, j, scale, s, sStride, pf);
}
// o[i·hd + d] += Σ_{j<n} p[i·pStride + j]·V[j][d] for RT rows, dims in steps of 16·W, V in f16.
template <int RT, int W>
AVX512_FN void ValuesTile512(const float* p, int64_t pStride, const uint16_t* V, int64_t n, int64_t hd, float* o,
                             const uint16_t* pf) {
  for (int64_t d = 0; d + 16 * W <= hd; d += 16 * W) {
    __m512 acc[RT][W];
    for (int i = 0; i < RT; ++i)
      for (int w = 0; w < W; ++w) acc[i][w] = _mm512_loadu_ps(o + i * hd + d + 16 * w);
    for (int64_t j = 0; j < n; ++j) {
      Prefetch(pf, j * hd + d);
      __m512 v[W];
      for (int w = 0; w < W; ++w)
        v[w] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(V + j * hd + d + 16 * w)));
      for (int i = 0; i < RT; ++i) {
        const __m512 pb = _mm512_set1_ps(p[i * pStride + j]);
        for (int w = 0; w < W; ++w) acc[i][w] = _mm512_fmadd_ps(pb, v[w], acc[i][w]);
      }
    }
    for (int i = 0; i < RT; ++i)
      for (int w = 0; w < W; ++w) _mm512_storeu_ps(o + i * hd + d + 16 * w, acc[i][w]);
  }
}
// f(rt, r) over rows [r, r + rt) of R: tiles of 8 rows (16 accumulators, enough to cover the FMA
// latency), then one tile of the 1-7 left (a decoding GQA group of 7 is one tile, not 4 + 1 + 1 + 1).
template <typename F>
AVX512_FN_INLINE void EightsThenRest(int64_t R, F&& f) {
  int64_t r = 0;
  for (; r + 8 <= R; r += 8) f(std::integral_constant<int, 8>{}, r);
  switch (R - r) {
    case 7: return f(std::integral_constant<int, 7>{}, r);
    case 6: return f(std::integral_constant<int, 6>{}, r);
    case 5: return f(std::integral_constant<int, 5>{}, r);
    case 4: return f(std::integral_constant<int, 4>{}, r);
    case 3: return f(std::integral_constant<int, 3>{}, r);
    case 2: return f(std::integral_constant<int, 2>{}, r);
    case 1: return f(std::integral_constant<int, 1>{}, r);
    default: return;
  }
}
template <int W>
AVX512_FN void ValuesRows512(const float* p, int64_t pStride, const uint16_t* V, int64_t n, int64_t hd, float* o,
                             int64_t R, const uint16_t* pf) {
  EightsThenRest(R, [&](auto rt, int64_t r) AVX512_FN_LAMBDA {
    ValuesTile512<decltype(rt)::value, W>(p + r * pStride, pStride, V, n, hd, o + r * hd, pf);
  });
}
// SoftmaxRow with 16 exps a step: the lanes' sums still go into 8 lanes in SoftmaxRow's order
// (the low 8 keys of a step, then the high 8), so the same bits.
AVX512_FN void SoftmaxRow512(float* s, int64_t n, int64_t end) {
  __m512 m16 = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) m16 = _mm512_max_ps(m16, _mm512_loadu_ps(s + j));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m16);
  float mx = -INFINITY;  // max is exact: any order gives SoftmaxRow's
  for (float l : lanes) mx = std::max(mx, l);
  for (int64_t i = j; i < n; ++i) mx = std::max(mx, s[i]);
  const __m512 vm = _mm512_set1_ps(mx);
  __m256 sum8 = _mm256_setzero_ps();
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
    _mm512_storeu_ps(s + j, e);
    sum8 = _mm256_add_ps(sum8, _mm512_castps512_ps256(e));
    sum8 = _mm256_add_ps(sum8, _mm512_castps512_ps256(_mm512_shuffle_f32x4(e, e, 0xEE)));
  }
  const float sum = FoldLanes(ExpInto(s, j, n, mx, sum8));
  const __m512 inv = _mm512_set1_ps(1.0f / sum);
  for (j = 0; j + 16 <= n; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), inv));
  for (; j < n; ++j) s[j] *= 1.0f / sum;
  std::fill(s + n, s + end, 0.0f);
}
struct Avx512Tiles {
  AVX512_FN static void Softmax(float* s, int64_t n, int64_t end) { SoftmaxRow512(s, n, end); }
  // Keys n to the next 16 are read too (stale or unwritten positions of the chunk, inside the
  // cache): their scores lie past every row's length and are never read.
  AVX512_FN static void Scores(const float* const* qr, int64_t R, const uint16_t* Kc, float*, int64_t hd, int64_t n,
                               float scale, float* s, int64_t sStride, const uint16_t* pf) {
    const int64_t keys = (n + 15) / 16 * 16;
    EightsThenRest(R, [&](auto rt, int64_t r) AVX512_FN_LAMBDA {
      ScoresKeys512<decltype(rt)::value>(qr + r, Kc, hd, keys, scale, s + r * sStride, sStride, pf);
    });
  }
  // V's f16 rows read as they are, each converted where a tile loads it (the same floats
  // WidenRows would give): no widening pass.
  AVX512_FN static void Values(const float* p, int64_t pStride, const uint16_t* V, float*, int64_t n, int64_t hd,
                               float* o, int64_t R, const uint16_t* pf) {
    if (hd % 32 == 0)
      ValuesRows512<2>(p, pStride, V, n, hd, o, R, pf);
    else
      ValuesRows512<1>(p, pStride, V, n, hd, o, R, pf);
  }
};
#undef AVX512_FN
#undef AVX512_FN_INLINE
#undef AVX512_FN_LAMBDA
#undef AVX512_TARGET
#pragma GCC diagnostic pop

// Tokens [t0, t1) of KV head kv, query heads [h0, h1) of its group, on one ISA's tiles
// (Tiles::Scores, Softmax, Values).
template <typename Tiles>
void TiledTask(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t kv, int64_t h0, int64_t h1,
               std::vector<float>& buf) {
  const int64_t hd = a.headDim, nh = h1 - h0, qStride = a.qHeads * hd;
  const int64_t R = (t1 - t0) * nh;
  const int64_t maxLen = a.pos0 + t1;
  const int64_t chunks = (maxLen + kChunk - 1) / kChunk, sW = chunks * kChunk;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t need = static_cast<size_t>(R * sW + R * hd + kChunk * hd);
  if (buf.size() < need) buf.resize(need);
  float* S = buf.data();     // R × sW scores, then probabilities
  float* O = S + R * sW;     // R × hd outputs
  float* W = O + R * hd;     // one chunk of K or V, widened (AVX2 only)
  const uint16_t* K = a.kCache + kv * a.nCtx * hd;
  const uint16_t* V = a.vCache + kv * a.nCtx * hd;
  std::vector<const float*> qr(static_cast<size_t>(R));  // rows of a token are heads, a stride apart
  for (int64_t r = 0; r < R; ++r) qr[static_cast<size_t>(r)] = a.q + (t0 + r / nh) * qStride + (h0 + r % nh) * hd;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * kChunk, n = std::min(kChunk, maxLen - c0);
    const uint16_t* next = c + 1 < chunks ? K + (c0 + kChunk) * hd : V;  // prefetched as this chunk is read
    Tiles::Scores(qr.data(), R, K + c0 * hd, W, hd, n, scale, S + c0, sW, next);
  }
  for (int64_t r = 0; r < R; ++r) Tiles::Softmax(S + r * sW, a.pos0 + t0 + r / nh + 1, maxLen);
  std::fill(O, O + R * hd, 0.0f);
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * kChunk, n = std::min(kChunk, maxLen - c0);
    const uint16_t* next = V + (c + 1 < chunks ? c0 + kChunk : c0) * hd;
    Tiles::Values(S + c0, sW, V + c0 * hd, W, n, hd, O, R, next);
  }
  for (int64_t r = 0; r < R; ++r) {
    const int64_t t = t0 + r / nh, h = h0 + r % nh;
    std::copy(O + r * hd, O + (r + 1) * hd, a.out + t * qStride + h * hd);
  }
}

}  // namespace

void CausalAttention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t kvHeads = a.group > 0 ? a.qHeads / a.group : 0;
  if (a.nTokens == 0 || kvHeads == 0) return;
  if (a.nCtx % kKeyChunk != 0)
    throw UserError("attention: the KV cache's nCtx " + std::to_string(a.nCtx) + " is not a multiple of " +
                    std::to_string(kKeyChunk) + " (K is kept in chunks of that many keys): allocate KvCtx(nCtx)");
  const CpuFeatures& f = DetectCpu();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  if (a.isa != Isa::Scalar && a.isa != Isa::Auto && !avx2)
    throw UserError(std::string("the ") + IsaName(a.isa) + " attention path needs AVX2, FMA and F16C, which this cpu lacks");
  const bool tiled = a.isa != Isa::Scalar && avx2 && a.headDim % 8 == 0;
  // The AVX-512 tiles where the path allows them (auto or an AVX-512 one): the same bits.
  const bool wide = tiled && f.avx512f && a.headDim % 16 == 0 && a.isa != Isa::Avx2;
  // Tasks: (token block, KV head, a range of the group's query heads). The range is the whole
  // group unless there are too few (block, KV head) pairs to keep the pool busy. Blocks are one
  // token on the scalar path.
  const int64_t perBlock = tiled ? kBlockTokens : 1;
  const int64_t blocks = (a.nTokens + perBlock - 1) / perBlock;
  const int64_t pairs = blocks * kvHeads;
  const int64_t splits = std::min<int64_t>(a.group, std::max<int64_t>(1, (2 * static_cast<int64_t>(pool.size()) + pairs - 1) / pairs));
  const int64_t per = (a.group + splits - 1) / splits;
  pool.ParallelFor(pairs * splits, [&](int64_t task, int) {
    // The last blocks, with the longest contexts, first: the pool's tail is then short tasks.
    const int64_t b = blocks - 1 - task / (kvHeads * splits), kv = task / splits % kvHeads, part = task % splits;
    const int64_t h0 = kv * a.group + part * per, h1 = std::min(kv * a.group + a.group, h0 + per);
    if (h1 <= h0) return;
    // Each thread keeps its buffer from call to call: a new one every layer's call (39 KB at a
    // decoding step's short context, 84 KB at depth 1536, allocated, faulted in and zeroed) cost
    // 9-11% of a decoding call at depth 0 and half of one at depth 1536. Every float of it is
    // written before it is read; it grows to the longest context the thread has seen.
    thread_local std::vector<float> buf;
    if (wide)
      TiledTask<Avx512Tiles>(a, b * perBlock, std::min(a.nTokens, (b + 1) * perBlock), kv, h0, h1, buf);
    else if (tiled)
      TiledTask<Avx2Tiles>(a, b * perBlock, std::min(a.nTokens, (b + 1) * perBlock), kv, h0, h1, buf);
    else
      ScalarTask(a, b, kv, h0, h1, buf);
  });
}

}  // namespace redblue
