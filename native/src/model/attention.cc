#include "model/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <string>
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
    for (int64_t i = 0; i < hd; ++i) row[i] = F16ToF32(K[j * hd + i]);
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
// widened once per task (not once per token): K transposed, so eight keys' scores fill one ymm,
// V as it is. Both products are register tiles of 4 rows (S = Q·Kᵀ: 4 rows × 16 keys, O = P·V:
// 4 rows × 16 of the head's dims), each lane one (row, key) or (row, dim) summed in a fixed
// order: a row's result does not depend on which rows share its tile or task. Rows whose
// position ends before the block's last see probability 0 for the later keys, which adds exactly
// nothing; a chunk's keys past the block's end are zero columns of Kᵀ whose scores are never read.
constexpr int64_t kBlockTokens = 8;
constexpr int64_t kChunk = 128;

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

// Kt[d·kChunk + j] = K[(c0 + j)·hd + d] for j < n, 0 for n ≤ j < kChunk.
AVX2_FN void WidenTransposed(const uint16_t* K, int64_t n, int64_t hd, float* Kt) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int64_t d = 0; d < hd; d += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i)
        r[i] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(K + (j + i) * hd + d)));
      // 8×8 transpose
      const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      _mm256_storeu_ps(Kt + (d + 0) * kChunk + j, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(Kt + (d + 1) * kChunk + j, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(Kt + (d + 2) * kChunk + j, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(Kt + (d + 3) * kChunk + j, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(Kt + (d + 4) * kChunk + j, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(Kt + (d + 5) * kChunk + j, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(Kt + (d + 6) * kChunk + j, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(Kt + (d + 7) * kChunk + j, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
  for (; j < kChunk; ++j)
    for (int64_t d = 0; d < hd; ++d) Kt[d * kChunk + j] = j < n ? F16ToF32(K[j * hd + d]) : 0.0f;
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
// ValuesTile over R rows: tiles of 4, then single rows.
template <int W>
AVX2_FN void ValuesRows(const float* p, int64_t pStride, const float* Vw, int64_t n, int64_t hd, float* o, int64_t R) {
  int64_t r = 0;
  for (; r + 4 <= R; r += 4) ValuesTile<4, W>(p + r * pStride, pStride, Vw, n, hd, o + r * hd);
  for (; r < R; ++r) ValuesTile<1, W>(p + r * pStride, pStride, Vw, n, hd, o + r * hd);
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
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 sum8 = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    _mm256_storeu_ps(s + j, e);
    sum8 = _mm256_add_ps(sum8, e);
  }
  if (j < n) {  // the tail through the same Exp8, padded lanes left out of the sum
    alignas(32) float t[8];
    for (int i = 0; i < 8; ++i) t[i] = j + i < n ? s[j + i] : mx;
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_load_ps(t), vm));
    _mm256_store_ps(t, e);
    for (int64_t i = j; i < n; ++i) s[i] = t[i - j];
    for (int i = static_cast<int>(n - j); i < 8; ++i) t[i] = 0.0f;
    sum8 = _mm256_add_ps(sum8, _mm256_load_ps(t));
  }
  _mm256_store_ps(lanes, sum8);
  const float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
  for (; j < n; ++j) s[j] *= 1.0f / sum;
  std::fill(s + n, s + end, 0.0f);
}

AVX2_FN void WidenRows(const uint16_t* h, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) out[i] = F16ToF32(h[i]);
}

// Tokens [t0, t1) of KV head kv, query heads [h0, h1) of its group.
AVX2_FN void Avx2Task(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t kv, int64_t h0, int64_t h1,
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
  float* W = O + R * hd;     // one chunk of K (transposed) or V, widened
  const uint16_t* K = a.kCache + kv * a.nCtx * hd;
  const uint16_t* V = a.vCache + kv * a.nCtx * hd;
  std::vector<const float*> qr(static_cast<size_t>(R));  // rows of a token are heads, a stride apart
  for (int64_t r = 0; r < R; ++r) qr[static_cast<size_t>(r)] = a.q + (t0 + r / nh) * qStride + (h0 + r % nh) * hd;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * kChunk, n = std::min(kChunk, maxLen - c0);
    WidenTransposed(K + c0 * hd, n, hd, W);
    const int64_t keys = (n + 15) / 16 * 16;
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) ScoresTile<4>(&qr[static_cast<size_t>(r)], W, hd, keys, scale, S + r * sW + c0, sW);
    for (; r < R; ++r) ScoresTile<1>(&qr[static_cast<size_t>(r)], W, hd, keys, scale, S + r * sW + c0, sW);
  }
  for (int64_t r = 0; r < R; ++r) SoftmaxRow(S + r * sW, a.pos0 + t0 + r / nh + 1, maxLen);
  std::fill(O, O + R * hd, 0.0f);
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * kChunk, n = std::min(kChunk, maxLen - c0);
    WidenRows(V + c0 * hd, n * hd, W);
    if (hd % 16 == 0)
      ValuesRows<2>(S + c0, sW, W, n, hd, O, R);
    else
      ValuesRows<1>(S + c0, sW, W, n, hd, O, R);
  }
  for (int64_t r = 0; r < R; ++r) {
    const int64_t t = t0 + r / nh, h = h0 + r % nh;
    std::copy(O + r * hd, O + (r + 1) * hd, a.out + t * qStride + h * hd);
  }
}
#undef AVX2_FN

}  // namespace

void CausalAttention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t kvHeads = a.group > 0 ? a.qHeads / a.group : 0;
  if (a.nTokens == 0 || kvHeads == 0) return;
  const CpuFeatures& f = DetectCpu();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  if (a.isa != Isa::Scalar && a.isa != Isa::Auto && !avx2)
    throw UserError(std::string("the ") + IsaName(a.isa) + " attention path needs AVX2, FMA and F16C, which this cpu lacks");
  // AVX-512 cpus run the AVX2 path: attention is a small share of a step.
  const bool tiled = a.isa != Isa::Scalar && avx2 && a.headDim % 8 == 0;
  // Tasks: (token block, KV head, a range of the group's query heads). The range is the whole
  // group unless there are too few (block, KV head) pairs to keep the pool busy. Blocks are one
  // token on the scalar path.
  const int64_t perBlock = tiled ? kBlockTokens : 1;
  const int64_t blocks = (a.nTokens + perBlock - 1) / perBlock;
  const int64_t pairs = blocks * kvHeads;
  const int64_t splits = std::min<int64_t>(a.group, std::max<int64_t>(1, (2 * static_cast<int64_t>(pool.size()) + pairs - 1) / pairs));
  const int64_t per = (a.group + splits - 1) / splits;
  std::vector<std::vector<float>> scratch(pool.size());
  pool.ParallelFor(pairs * splits, [&](int64_t task, int worker) {
    // The last blocks, with the longest contexts, first: the pool's tail is then short tasks.
    const int64_t b = blocks - 1 - task / (kvHeads * splits), kv = task / splits % kvHeads, part = task % splits;
    const int64_t h0 = kv * a.group + part * per, h1 = std::min(kv * a.group + a.group, h0 + per);
    if (h1 <= h0) return;
    std::vector<float>& buf = scratch[static_cast<size_t>(worker)];
    if (tiled)
      Avx2Task(a, b * perBlock, std::min(a.nTokens, (b + 1) * perBlock), kv, h0, h1, buf);
    else
      ScalarTask(a, b, kv, h0, h1, buf);
  });
}

}  // namespace redblue
