#include "kernels/gemm_f32.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <string>

#include "core/errors.h"

namespace redblue {

void CheckGemmArgs(const GemmArgs& g) {
  if (g.m < 0 || g.n < 0 || g.k < 0) throw UserError("gemm: m, n, k must be non-negative");
  const int64_t aCols = g.transA ? g.m : g.k, bCols = g.transB ? g.k : g.n;
  if (g.lda < std::max<int64_t>(1, aCols))
    throw UserError("gemm: lda=" + std::to_string(g.lda) + " is smaller than the row length of A (" +
                    std::to_string(aCols) + (g.transA ? ", A is k×m when transposed)" : ", A is m×k)"));
  if (g.ldb < std::max<int64_t>(1, bCols))
    throw UserError("gemm: ldb=" + std::to_string(g.ldb) + " is smaller than the row length of B (" +
                    std::to_string(bCols) + (g.transB ? ", B is n×k when transposed)" : ", B is k×n)"));
  if (g.ldc < std::max<int64_t>(1, g.n))
    throw UserError("gemm: ldc=" + std::to_string(g.ldc) + " is smaller than n=" + std::to_string(g.n));
  for (int64_t v : {g.m, g.n, g.k, g.lda, g.ldb, g.ldc})
    if (v > INT_MAX) throw UserError("gemm: dimensions and leading dimensions must be below 2^31 (OpenBLAS int)");
}

namespace {

// One block of C: rows [i0, i0+mb), columns [j0, j0+nb), on the calling thread.
void GemmBlock(const GemmArgs& g, int64_t i0, int64_t mb, int64_t j0, int64_t nb) {
  if (mb <= 0 || nb <= 0) return;
  float* c = g.c + i0 * g.ldc + j0;
  if (g.k == 0) {  // OpenBLAS does not promise to scale C when k = 0
    for (int64_t i = 0; i < mb; ++i)
      for (int64_t j = 0; j < nb; ++j) c[i * g.ldc + j] = g.beta == 0.0f ? 0.0f : g.beta * c[i * g.ldc + j];
    return;
  }
  // Row i of op(A) starts at A + i·lda, or at column i of A when transposed; likewise for B.
  const float* a = g.transA ? g.a + i0 : g.a + i0 * g.lda;
  const float* b = g.transB ? g.b + j0 * g.ldb : g.b + j0;
  cblas_sgemm(CblasRowMajor, g.transA ? CblasTrans : CblasNoTrans, g.transB ? CblasTrans : CblasNoTrans,
              static_cast<int>(mb), static_cast<int>(nb), static_cast<int>(g.k), g.alpha, a,
              static_cast<int>(g.lda), b, static_cast<int>(g.ldb), g.beta, c, static_cast<int>(g.ldc));
}

}  // namespace

void GemmF32(const GemmArgs& g, ThreadPool& pool) {
  CheckGemmArgs(g);
  if (g.m == 0 || g.n == 0) return;
  // OpenBLAS's own pool is unpinned; keep it out of the way (idempotent and cheap).
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  const int64_t workers = static_cast<int64_t>(pool.size());
  const double flops = 2.0 * g.m * g.n * std::max<int64_t>(g.k, 1);
  // Split the longer side of C into one block per worker (multiples of 16 rows / 64 columns,
  // the OpenBLAS micro-kernel's steps); small products are not worth waking the pool for.
  int64_t parts = flops < 4e6 ? 1 : workers;
  const bool splitRows = g.m >= g.n;
  const int64_t len = splitRows ? g.m : g.n, align = splitRows ? 16 : 64;
  parts = std::max<int64_t>(1, std::min(parts, (len + align - 1) / align));
  int64_t step = (len + parts - 1) / parts;
  step = (step + align - 1) / align * align;
  parts = (len + step - 1) / step;
  pool.ParallelFor(parts, [&](int64_t t, int) {
    const int64_t s0 = t * step, sl = std::min(step, len - s0);
    if (splitRows)
      GemmBlock(g, s0, sl, 0, g.n);
    else
      GemmBlock(g, 0, g.m, s0, sl);
  });
}

void OpenBlasGemm(const GemmArgs& g, int threads) {
  CheckGemmArgs(g);
  if (threads < 1) throw UserError("openblas gemm: threads must be >= 1");
  openblas_set_num_threads(threads);
  GemmBlock(g, 0, g.m, 0, g.n);
  openblas_set_num_threads(1);
}

}  // namespace redblue
