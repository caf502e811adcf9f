// f32 GEMM on strided sub-blocks, run on an executor's pinned pool. Plain C++ API: executors
// call it from native code; the N-API layer (bindings/kernel_bindings.cc) only validates
// JS buffers and forwards here.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace redblue {

// C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C, all row-major with leading dimensions (in
// elements). op(A) = A (m×k, lda ≥ k) or Aᵀ (A is k×m, lda ≥ m); likewise B.
struct GemmArgs {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
};

// Elements a row-major rows×cols matrix with leading dimension ld spans (0 when empty).
inline int64_t MatrixSpan(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

// Throws UserError when shapes or leading dimensions are inconsistent (not buffer bounds:
// the caller knows its buffers).
void CheckGemmArgs(const GemmArgs& g);

// OpenBLAS runs single-threaded inside each of our pinned workers, on blocks of C, so every
// compute thread stays on the pool's cpus.
void GemmF32(const GemmArgs& g, ThreadPool& pool);

// OpenBLAS called directly with its own `threads` threads (the benchmark's reference).
void OpenBlasGemm(const GemmArgs& g, int threads);

}  // namespace redblue
