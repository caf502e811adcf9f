// Y = X·Wᵀ driver: picks the ISA path, quantizes X once per call, splits W's rows over the pool.
#include <cpuid.h>
// GCC 12 warns inside its own AVX-512 reduction intrinsics (undefined upper halves it never uses).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/cpu_features.h"
#include "core/errors.h"
#include "kernels/half.h"
#include "kernels/quant_impl.h"

namespace redblue {

Isa ParseIsa(const std::string& s) {
  if (s == "auto") return Isa::Auto;
  if (s == "scalar") return Isa::Scalar;
  if (s == "avx2") return Isa::Avx2;
  if (s == "avx512") return Isa::Avx512;
  if (s == "avx512vnni") return Isa::Avx512Vnni;
  if (s == "avx512vbmi") return Isa::Avx512Vbmi;
  if (s == "amx") return Isa::Amx;
  if (s == "amx-emulated") return Isa::AmxEmulated;
  throw UserError("unknown kernel path '" + s +
                  "': use 'auto', 'scalar', 'avx2', 'avx512', 'avx512vnni', 'avx512vbmi' or 'amx'");
}

const char* IsaName(Isa i) {
  switch (i) {
    case Isa::Auto: return "auto";
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Vnni: return "avx512vnni";
    case Isa::Avx512Vbmi: return "avx512vbmi";
    case Isa::Amx: return "amx";
    case Isa::AmxEmulated: return "amx-emulated";
  }
  return "?";
}

namespace {
// AVX512_VBMI (cpuid 7.0 ecx bit 1); the core's CpuFeatures does not carry it. Only trusted
// together with AVX-512 F, whose OS state check DetectCpu already made.
bool HasVbmi() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 1));
}
}  // namespace

bool ResolveGemvPrefetchToL2() {
  const char* v = std::getenv("REDBLUE_GEMV_PREFETCH");
  if (!v || !*v) return DetectCpu().intel;
  if (std::string(v) == "l1") return false;
  if (std::string(v) == "l2") return true;
  throw UserError(std::string("REDBLUE_GEMV_PREFETCH='") + v + "' is neither l1 nor l2: unset it or use one of those");
}

namespace {
// Asked of Linux once per process, when first needed (arch_prctl); the grant covers every thread.
bool AmxGranted() {
  static const bool granted = EnableAmx();
  return granted;
}
}  // namespace

bool IsaSupported(Isa i) {
  const CpuFeatures& f = DetectCpu();
  switch (i) {
    case Isa::Auto:
    case Isa::Scalar: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::Avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.f16c;
    case Isa::Avx512Vnni: return IsaSupported(Isa::Avx512) && f.avx512vnni;
    case Isa::Avx512Vbmi: return IsaSupported(Isa::Avx512Vnni) && HasVbmi();
    case Isa::Amx: return IsaSupported(Isa::Avx512Vnni) && f.amxTile && f.amxInt8 && KernelSupportsAmx();
    case Isa::AmxEmulated: return IsaSupported(Isa::Avx512Vnni);
  }
  return false;
}

Isa ResolveIsa(Isa requested) {
  if (requested == Isa::Auto) {
    // A path pinned by the environment (to compare paths in a whole run, or to rule one out).
    static const Isa pinned = [] {
      const char* v = std::getenv("REDBLUE_KERNEL_PATH");
      if (!v || !*v) return Isa::Auto;
      try {
        return ParseIsa(v);
      } catch (const UserError& e) {
        throw UserError(std::string("REDBLUE_KERNEL_PATH: ") + e.what());
      }
    }();
    if (pinned != Isa::Auto) {
      if (!IsaSupported(pinned))
        throw UserError(std::string("REDBLUE_KERNEL_PATH=") + IsaName(pinned) +
                        " is not supported by this cpu: unset it or name one of kernelPaths()");
      return pinned;
    }
    // Amx where Linux grants the tile state: Q4_0 / Q8_0 / Q4_K_M prompts 1.14× / 1.85× / 1.37×
    // the VNNI tiles' tokens/s, everything else the same kernels (docs/kernels.md, AMX). Not Avx512Vbmi: its
    // byte permute measured ~10 % slower than two-step inserts on Zen 4.
    if (IsaSupported(Isa::Amx) && AmxGranted()) return Isa::Amx;
    for (Isa i : {Isa::Avx512Vnni, Isa::Avx512, Isa::Avx2})
      if (IsaSupported(i)) return i;
    return Isa::Scalar;
  }
  if (!IsaSupported(requested))
    throw UserError(std::string("kernel path '") + IsaName(requested) +
                    "' is not supported by this cpu: use 'auto' or one of kernelPaths()");
  return requested;
}

namespace {

KernelSet KernelsFor(Isa isa) {
  switch (isa) {
    case Isa::Amx: {
      if (!AmxGranted())
        throw UserError("kernel path 'amx': Linux refused this process the AMX tile state (arch_prctl "
                        "ARCH_REQ_XCOMP_PERM; a thread's small alternate signal stack can be why): use avx512vnni");
      return AmxKernels(false);
    }
    case Isa::AmxEmulated: return AmxKernels(true);
    case Isa::Avx512Vbmi: return Avx512Kernels(true, true);
    case Isa::Avx512Vnni: return Avx512Kernels(true, false);
    case Isa::Avx512: return Avx512Kernels(false, false);
    case Isa::Avx2: return Avx2Kernels();
    default: return ScalarKernels();
  }
}

// v[i] → the nearest f16 (ties to even) and back, in place: F16ToF32(F32ToF16(v)), 8 at a time
// by F16C where the cpu has it (the same rounding). One block at a time in software this was
// 2.7 % of a step of 8 sequences.
// The whole eights of v; returns how many values it rounded.
__attribute__((target("f16c,avx"))) int64_t RoundToHalfF16c(float* v, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(v + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT)));
  return i;
}
void RoundToHalf(float* v, int64_t n, bool simd) {
  for (int64_t i = simd && DetectCpu().f16c ? RoundToHalfF16c(v, n) : 0; i < n; ++i) v[i] = F16ToF32(F32ToF16(v[i]));
}

// One row of X → Q8_0 values with the f16-rounded scale, exactly as quantize_row_q8_0_ref (and
// quantize_row_q8_1_ref, whose values and d are the same), with each block's term c.
void QuantizeActRow(const float* x, int64_t k, ActLayout layout, ActTerm term, Q8BlockFn block, bool simd, int8_t* qs,
                    float* d, float* c) {
  const int64_t nb = k / kQBlock;
  for (int64_t b = 0; b < nb; ++b, x += kQBlock) {
    const bool quad = layout == ActLayout::Q4Quads && b < nb / 4 * 4;
    int8_t* lo = quad ? qs + (b / 4) * 128 + (b % 4) * 16 : qs + b * kQBlock;
    int8_t* hi = quad ? lo + 64 : lo + 16;
    const Q8Block r = block(x, lo, hi);
    d[b] = r.d;
    c[b] = term == ActTerm::Q8_1Sum ? r.d * static_cast<float>(r.sum) : static_cast<float>(r.sum);
  }
  RoundToHalf(d, nb, simd);
  if (term == ActTerm::Q8_1Sum) {
    RoundToHalf(c, nb, simd);
  } else {
    const float offset = term == ActTerm::Offset8 ? -8.0f : -16.0f;
    for (int64_t b = 0; b < nb; ++b) c[b] = offset * d[b] * c[b];
  }
}

// Q8_K values of each 64 from natural order to ActLayout::Iq4Pairs: [0..15][32..47][16..31][48..63].
void ToIq4Pairs(BlockQ8_K* row, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b)
    for (int c = 0; c < kQKBlock; c += 64) {
      int8_t* q = row[b].qs + c;
      int8_t t[64];
      std::memcpy(t, q, 64);
      std::memcpy(q + 16, t + 32, 16);
      std::memcpy(q + 32, t + 16, 16);
    }
}

struct AlignedBuffer {
  explicit AlignedBuffer(size_t bytes) : raw(new uint8_t[bytes + 64]) {
    data = raw.get() + (64 - reinterpret_cast<uintptr_t>(raw.get()) % 64) % 64;
  }
  std::unique_ptr<uint8_t[]> raw;
  uint8_t* data;
};

}  // namespace

ActTerm ActTermFor(WeightType t) {
  switch (t) {
    case WeightType::Q5_0: return ActTerm::Offset16;
    case WeightType::Q4_1:
    case WeightType::Q5_1: return ActTerm::Q8_1Sum;
    default: return ActTerm::Offset8;
  }
}

bool Rows8Runs(WeightType t, Isa isa) { return KernelsFor(ResolveIsa(isa)).ForRows8(t) != nullptr; }

void CheckQuantMatmulArgs(const QuantMatmulArgs& a) {
  if (a.m < 0 || a.n < 0) throw UserError("matmulQ: m and n must be non-negative");
  const int64_t rb = RowBytes(a.type, a.k);  // throws for k not a multiple of the block
  if (a.rows8 && a.wStride != rb)
    throw UserError("matmulQ: rows8 weights are whole rows packed together: wStride must be the row size " +
                    std::to_string(rb) + ", not " + std::to_string(a.wStride));
  if (a.wStride < rb)
    throw UserError("matmulQ: weight row stride " + std::to_string(a.wStride) + " bytes is below the row size " +
                    std::to_string(rb) + " of " + WeightTypeName(a.type) + " rows of k=" + std::to_string(a.k));
  if (a.ldx < std::max<int64_t>(1, a.k))
    throw UserError("matmulQ: ldx=" + std::to_string(a.ldx) + " is smaller than k=" + std::to_string(a.k));
  if (a.ldy < std::max<int64_t>(1, a.n))
    throw UserError("matmulQ: ldy=" + std::to_string(a.ldy) + " is smaller than n=" + std::to_string(a.n));
}

namespace {

// What a call's kernels read of X: Q8_0 or Q8_K rows, in which layout, with which per-block term.
// Weights of different types can share one quantized X when these agree (MatmulQShared).
struct ActSpec {
  bool q8_0 = false, q8_k = false, expand = false, natural = false;
  ActLayout layout = ActLayout::Natural;
  ActTerm term = ActTerm::Offset8;
  bool operator==(const ActSpec& o) const {
    return q8_0 == o.q8_0 && q8_k == o.q8_k && expand == o.expand && natural == o.natural && layout == o.layout &&
           term == o.term;
  }
};

ActSpec ActSpecFor(const QuantMatmulArgs& a, const KernelSet& ks) {
  ActSpec s;
  s.q8_0 = IsQ8Activated(a.type);
  s.q8_k = IsQ8KActivated(a.type);
  if (!s.q8_0 && !s.q8_k) return s;
  const bool prompt = a.m > 1 && !a.rowInvariant;
  s.layout = a.type == WeightType::Q4_0                ? ks.q4Layout
             : a.type == WeightType::Q8_0 && prompt   ? ks.q8Layout
             : a.type == WeightType::IQ4_XS           ? ks.iq4xsLayout
                                                      : ActLayout::Natural;
  s.expand = s.layout == ActLayout::Q4Quads && prompt;
  s.natural = s.layout == ActLayout::Q4Quads && prompt && a.type == WeightType::Q4_0 && ks.q4NaturalCopy;
  s.term = s.q8_0 ? ActTermFor(a.type) : ActTerm::Offset8;
  return s;
}

// X quantized as `s` says, into `buf` (left empty for float weights, which read X itself).
ActRows QuantizeAct(const QuantMatmulArgs& a, const ActSpec& s, Isa isa, ThreadPool& pool,
                    std::unique_ptr<AlignedBuffer>& buf) {
  ActRows act;
  if (!s.q8_0 && !s.q8_k) return act;
  act.k = a.k;
  if (s.q8_0) {
    act.nb = a.k / kQBlock;
    act.qsBytes = (a.k + 63) / 64 * 64;
    act.stride = (act.qsBytes + 8 * act.nb + (s.expand ? 16 * act.nb : 0) + 63) / 64 * 64;
    if (s.expand) act.dxxOffset = act.qsBytes + 8 * act.nb;
    if (s.natural) {
      act.naturalOffset = act.stride;
      act.stride += act.qsBytes;
    }
  } else {  // rows of Q8_K blocks
    act.nb = a.k / kQKBlock;
    act.stride = (act.nb * int64_t(sizeof(BlockQ8_K)) + 63) / 64 * 64;
  }
  const int64_t pad = ActPadRows(a.m);
  buf = std::make_unique<AlignedBuffer>(static_cast<size_t>(act.stride * (a.m + pad)));
  if (pad) std::memset(buf->data + act.stride * a.m, 0, static_cast<size_t>(act.stride * pad));
  act.base = buf->data;
  act.layout = s.layout;
  const Q8BlockFn q8 = Q8BlockQuantizer(isa != Isa::Scalar);
  const Q8KRowFn q8k = Q8KQuantizer(isa != Isa::Scalar);
  uint8_t* base = buf->data;
  auto quantizeRows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (s.q8_k) {
        BlockQ8_K* row = reinterpret_cast<BlockQ8_K*>(base + r * act.stride);
        q8k(a.x + r * a.ldx, a.k, row);
        if (s.layout == ActLayout::Iq4Pairs) ToIq4Pairs(row, act.nb);
        continue;
      }
      int8_t* qs = reinterpret_cast<int8_t*>(base + r * act.stride);
      float* d = reinterpret_cast<float*>(base + r * act.stride + act.qsBytes);
      QuantizeActRow(a.x + r * a.ldx, a.k, s.layout, s.term, q8, isa != Isa::Scalar, qs, d, d + act.nb);
      if (s.expand) {
        float* e = reinterpret_cast<float*>(base + r * act.stride + act.dxxOffset);
        for (int64_t b = 0; b < act.nb; ++b) std::fill(e + 4 * b, e + 4 * b + 4, d[b]);
      }
      if (s.natural) {  // quads back to natural order (the last nb % 4 blocks already are)
        int8_t* n = reinterpret_cast<int8_t*>(base + r * act.stride + act.naturalOffset);
        const int64_t nq = act.nb / 4 * 4;
        for (int64_t b = 0; b < nq; ++b) {
          std::memcpy(n + b * kQBlock, qs + (b / 4) * 128 + (b % 4) * 16, 16);
          std::memcpy(n + b * kQBlock + 16, qs + (b / 4) * 128 + 64 + (b % 4) * 16, 16);
        }
        std::memcpy(n + nq * kQBlock, qs + nq * kQBlock, static_cast<size_t>((act.nb - nq) * kQBlock));
      }
    }
  };
  if (a.m * a.k <= (1 << 15)) {
    quantizeRows(0, a.m);  // a few µs: cheaper than a round trip through the pool
  } else {
    const int64_t workers = static_cast<int64_t>(pool.size());
    const int64_t rowsPerTask = std::max<int64_t>(1, (a.m + 4 * workers - 1) / (4 * workers));
    pool.ParallelFor((a.m + rowsPerTask - 1) / rowsPerTask, [&](int64_t t, int) {
      quantizeRows(t * rowsPerTask, std::min(a.m, (t + 1) * rowsPerTask));
    });
  }
  return act;
}

// Steps of up to this many rows of X (decoding one sequence, a server's batch of 8, drafts to
// check) read W from memory once, in runs (MatmulQShared); larger ones (prompts) are bound by
// compute and take 64 KiB tasks that stay in L2 while every row of X passes over them.
constexpr int64_t kStreamRows = 8;

// One weight matrix of a shared call: its kernels and how its rows are cut into tasks.
struct PartTasks {
  QKernel kernel = nullptr, rows8Kernel = nullptr;
  int64_t jb = 1, n8 = 0, tasks = 0;
};

PartTasks TasksFor(const QuantMatmulArgs& a, const KernelSet& ks, Isa isa, int64_t workers) {
  PartTasks p;
  p.kernel = ks.For(a.type);
  p.rows8Kernel = a.rows8 ? ks.ForRows8(a.type) : nullptr;
  if (a.rows8 && !p.rows8Kernel)
    throw UserError(std::string("matmulQ: the ") + IsaName(isa) + " kernels have no rows8 form of " +
                    WeightTypeName(a.type) + ": lay the weights out naturally for this path (Rows8Runs)");
  // Chunks of W rows: ~64 KiB of weights (stays in L2 while all rows of X pass over it), and
  // at least 8 chunks per worker so a worker slowed by a neighbour does not hold up the rest.
  const int64_t rowBytes = std::max<int64_t>(1, a.wStride);
  int64_t jb = std::clamp<int64_t>((64 << 10) / rowBytes, 4, 256);
  jb = std::max<int64_t>(1, std::min(jb, (a.n + 8 * workers - 1) / (8 * workers)));
  // A few rows of X (decoding) stream W from memory: grains of ~32 KiB that ParallelRuns deals
  // out as one contiguous run per worker (see MatmulQShared), and at least 4 a worker where W
  // has the rows (a small matrix on many workers).
  if (a.m <= kStreamRows)
    jb = std::max<int64_t>(16, std::min<int64_t>((32 << 10) / rowBytes, (a.n + 4 * workers - 1) / (4 * workers)));
  // rows8: tasks of whole pairs of groups (the AVX-512 tiles take 16 rows a step and would
  // run a lone group at half speed); the rows after the last group are natural rows.
  p.n8 = a.rows8 ? a.n / 8 * 8 : 0;
  if (a.rows8) jb = (jb + 15) / 16 * 16;
  // Tiny: one task, not a pool round trip per kernel call.
  if (a.m * a.n * a.k < (1 << 16)) jb = std::max<int64_t>(1, a.n);
  p.jb = jb;
  p.tasks = (a.n + jb - 1) / jb;
  return p;
}

}  // namespace

void MatmulQ(const QuantMatmulArgs& a, ThreadPool& pool) { MatmulQShared(&a, 1, pool); }

void MatmulQShared(const QuantMatmulArgs* parts, size_t count, ThreadPool& pool) {
  if (count == 0) return;
  const QuantMatmulArgs& a = parts[0];
  for (size_t i = 0; i < count; ++i) {
    const QuantMatmulArgs& p = parts[i];
    CheckQuantMatmulArgs(p);
    if (p.x != a.x || p.m != a.m || p.k != a.k || p.ldx != a.ldx || p.isa != a.isa || p.rowInvariant != a.rowInvariant)
      throw UserError("matmulQShared: every part must read the same X (x, m, k, ldx) on the same path");
  }
  if (a.m == 0) return;
  const Isa isa = ResolveIsa(a.isa);
  PrefetchGemvToL2();  // a bad REDBLUE_GEMV_PREFETCH throws here, not in a worker
  const KernelSet ks = KernelsFor(isa);
  const int64_t workers = static_cast<int64_t>(pool.size());
  // The parts whose kernels read X as the first does share one quantization; the others run
  // after, each on its own.
  const ActSpec spec = ActSpecFor(a, ks);
  std::vector<const QuantMatmulArgs*> shared, own;
  for (size_t i = 0; i < count; ++i)
    if (parts[i].n > 0) (ActSpecFor(parts[i], ks) == spec ? shared : own).push_back(&parts[i]);
  std::vector<PartTasks> tasks;
  int64_t total = 0;
  for (const QuantMatmulArgs* p : shared) {
    tasks.push_back(TasksFor(*p, ks, isa, workers));
    total += tasks.back().tasks;
  }
  if (total > 0) {
    std::unique_ptr<AlignedBuffer> actBuf;
    const ActRows act = QuantizeAct(*shared[0], spec, isa, pool, actBuf);
    // Tasks b..e-1 of all the parts, numbered part after part: one call of its kernels per part
    // they cover.
    auto runTasks = [&](int64_t b, int64_t e) {
      size_t i = 0;
      while (b >= tasks[i].tasks) b -= tasks[i].tasks, e -= tasks[i++].tasks;
      for (; e > 0; b = 0, e -= tasks[i++].tasks) {
        const QuantMatmulArgs& p = *shared[i];
        const PartTasks& pt = tasks[i];
        const int64_t j0 = b * pt.jb, j1 = std::min(p.n, std::min(e, pt.tasks) * pt.jb);
        if (j0 < pt.n8) pt.rows8Kernel(p, act, 0, p.m, j0, std::min(j1, pt.n8));
        if (j1 > pt.n8) pt.kernel(p, act, 0, p.m, std::max(j0, pt.n8), j1);
      }
    };
    if (a.m <= kStreamRows) {
      // Decoding reads W once from memory: each worker streams one contiguous run of the parts'
      // rows (the prefetchers follow one stream, and a new one ramps up slowly) and the first
      // done takes the others' tails, so a worker slowed by a neighbour does not hold up the
      // step. One executor of 2 cores, TinyLlama-shaped Q4_0 and Q4_K_M, both ways alternated
      // every ~89 calls in one process: at m = 1 4-5.5% less time in these matmuls than 4 runs
      // of rows per worker handed out dynamically; through serve, 2, 4, 6 and 8 streams
      // (m = 2-8) 12-13%, 10-11%, 6-7% and 6% less than 64 KiB tasks handed out dynamically.
      // One-worker executors: the same within 0.5%.
      pool.ParallelRuns(total, 1, [&](int64_t b, int64_t e, int) { runTasks(b, e); });
    } else {
      pool.ParallelFor(total, [&](int64_t t, int) { runTasks(t, t + 1); });
    }
  }
  for (const QuantMatmulArgs* p : own) MatmulQShared(p, 1, pool);
}

namespace {
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint8_t* p, size_t bytes) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  s0 = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s0);
  uint64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < bytes; ++i) s += p[i];
  return s;
}
__attribute__((target("avx512f"))) uint64_t SumAvx512(const uint8_t* p, size_t bytes) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + i));
    s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + i + 64));
    s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + i + 128));
    s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + i + 192));
  }
  uint64_t s = static_cast<uint64_t>(_mm512_reduce_add_epi64(
      _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3))));
  for (; i < bytes; ++i) s += p[i];
  return s;
}
uint64_t SumScalar(const uint8_t* p, size_t bytes) {
  uint64_t s = 0;
  for (size_t i = 0; i < bytes; ++i) s += p[i];
  return s;
}
}  // namespace

uint64_t ReadBytes(const uint8_t* p, size_t bytes, ThreadPool& pool) {
  const CpuFeatures& f = DetectCpu();
  auto sum = f.avx512f ? SumAvx512 : f.avx2 ? SumAvx2 : SumScalar;
  const size_t chunk = size_t(1) << 20;  // 1 MiB tasks: dynamic, contiguous per task
  const int64_t tasks = static_cast<int64_t>((bytes + chunk - 1) / chunk);
  std::atomic<uint64_t> total{0};
  pool.ParallelFor(tasks, [&](int64_t t, int) {
    const size_t off = static_cast<size_t>(t) * chunk;
    total.fetch_add(sum(p + off, std::min(chunk, bytes - off)), std::memory_order_relaxed);
  });
  return total.load();
}

}  // namespace redblue
