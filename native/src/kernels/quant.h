// Quantized and half-precision weights in the exact ggml / GGUF layouts, and Y = X·Wᵀ on them.
// Plain C++ API for executors; the N-API layer only validates JS buffers and forwards here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/thread_pool.h"

namespace redblue {

// Order fixed (other modules store it); F32 and the K types came later.
enum class WeightType { F16, BF16, Q8_0, Q4_0, F32, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, Q3_K, IQ4_NL, IQ4_XS, Q2_K };

constexpr int kQBlock = 32;   // elements per Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 block (ggml QK8_0 = … = 32)
constexpr int kQKBlock = 256; // elements per K-type super-block (ggml QK_K = 256)
constexpr int kKScaleBytes = 12;  // ggml K_SCALE_SIZE: eight 6-bit scales and eight 6-bit mins

#pragma pack(push, 1)
struct BlockQ8_0 {  // 34 bytes: fp16 scale, 32 signed values; x = d·q
  uint16_t d;
  int8_t qs[kQBlock];
};
struct BlockQ4_0 {  // 18 bytes: fp16 scale, nibbles; low = elements 0..15, high = 16..31; x = d·(q−8)
  uint16_t d;
  uint8_t qs[kQBlock / 2];
};
// The older 32-element types that llama.cpp still writes: Q5_0 where a K type does not fit a
// row (k not a multiple of 256: Qwen2.5-0.5B's 896, SmolLM2's 576 and 960 in Q4_K_M files), Q5_1
// for Q5_K there, and Q4_1 / Q5_1 in older files. x = d·(q−16) for Q5_0, x = d·q + m for the _1
// types; the fifth bits sit in qh, bit j for element j (elements 16..31: bits 16..31).
struct BlockQ4_1 {  // 20 bytes
  uint16_t d, m;
  uint8_t qs[kQBlock / 2];
};
struct BlockQ5_0 {  // 22 bytes
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQBlock / 2];
};
struct BlockQ5_1 {  // 24 bytes
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQBlock / 2];
};
// IQ4_NL and IQ4_XS: 4-bit indices into one fixed non-linear table (ggml's kvalues_iq4nl), denser
// near zero where weights are. IQ4_NL: Q4_0's layout, x = d·kIq4Values[q]; IQ4_XS: a 256-element
// super-block of 8 sub-blocks of 32, x = d·(ls_j − 32)·kIq4Values[q] with 6-bit ls_j (low nibble
// in scales_l[j / 2] (j odd: high nibble), top two bits at bits 2j of scales_h); qs per sub-block
// as Q4_0 (low nibbles elements 0..15, high 16..31). llama.cpp writes IQ4_NL where IQ4_XS, Q3_K or
// Q2_K do not fit a row.
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
struct BlockIQ4_NL {  // 18 bytes
  uint16_t d;
  uint8_t qs[kQBlock / 2];
};
struct BlockIQ4_XS {  // 136 bytes
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQKBlock / 64];
  uint8_t qs[kQKBlock / 2];
};
// What tells the 32-element nibble types apart, in one place for every kernel: the _1 types
// carry a min m (x = d·q + m), the 5-bit ones a qh word, the _0 ones centre q on kOffset, and
// IQ4_NL looks q up in kIq4Values.
template <typename Block>
struct Nibble32Traits {
  static constexpr bool kAffine = std::is_same_v<Block, BlockQ4_1> || std::is_same_v<Block, BlockQ5_1>;
  static constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5_0> || std::is_same_v<Block, BlockQ5_1>;
  static constexpr bool kLookup = std::is_same_v<Block, BlockIQ4_NL>;
  static constexpr int kOffset = kAffine || kLookup ? 0 : kFifthBit ? 16 : 8;  // x = d·(q − kOffset) for _0
  // The integer a level stands for: what the dot products multiply by x.
  static constexpr int Value(int q) { return kLookup ? kIq4Values[q] : q - kOffset; }
};
// K types: a 256-element super-block of 8 sub-blocks of 32 (Q4_K, Q5_K) or 16 of 16 (Q6_K).
// Q4_K / Q5_K: x = d·sc_j·q − dmin·m_j for sub-block j, with 6-bit sc_j and m_j packed in
// `scales` (bytes 0-3: sc 0-3 low 6 bits, 4-7: m 0-3 low 6 bits, 8-11: sc 4-7 low nibble | m
// 4-7 low nibble << 4; the top two bits of sc/m 4-7 sit in bits 6-7 of bytes 0-3 / 4-7).
// qs: per 64 elements, 32 bytes: low nibbles = the first 32, high nibbles = the next 32.
struct BlockQ4_K {  // 144 bytes
  uint16_t d, dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQKBlock / 2];
};
struct BlockQ5_K {  // 176 bytes: as Q4_K plus a fifth bit; qh bit 2i / 2i+1 of byte l = element 64i+l / 64i+32+l
  uint16_t d, dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQKBlock / 8];
  uint8_t qs[kQKBlock / 2];
};
// Q6_K: x = d·scales[g]·(q − 32), g = element / 16. Per 128 elements, 64 ql bytes and 32 qh
// bytes: element 32t+l (t = 0..3, l < 32) has low nibble ql[l + 32·(t&1)] (t < 2 low, else high
// nibble) and high two bits (qh[l] >> 2t) & 3.
struct BlockQ6_K {  // 210 bytes
  uint8_t ql[kQKBlock / 2];
  uint8_t qh[kQKBlock / 4];
  int8_t scales[kQKBlock / 16];
  uint16_t d;
};
// Q2_K: x = d·(sc_g & 15)·q − dmin·(sc_g >> 4), g = element / 16, q in 0..3 at the bits Q3_K's
// low two sit at: element 32t+l of half h (t = 0..3, l < 32) is (qs[32h + l] >> 2t) & 3.
struct BlockQ2_K {  // 84 bytes
  uint8_t scales[kQKBlock / 16];
  uint8_t qs[kQKBlock / 4];
  uint16_t d, dmin;
};
// Q3_K: x = d·(sc_g − 32)·(q − 4), g = element / 16, q in 0..7. Per 128 elements 32 qs bytes:
// element 32t+l (t = 0..3) has low bits (qs[l] >> 2t) & 3; its third bit is bit (e / 32) of
// hmask[e % 32] for element e of the super-block. The 16 6-bit scales: bytes 0-7 hold scales 0-7
// (low nibble) and 8-15 (high nibble), and bytes 8-11 their top two bits (scale g: byte 8 + g % 4,
// bits 2·(g / 4)).
struct BlockQ3_K {  // 110 bytes
  uint8_t hmask[kQKBlock / 8];
  uint8_t qs[kQKBlock / 4];
  uint8_t scales[kKScaleBytes];
  uint16_t d;
};
// Activations for the K-type dot products (never stored in files): x = d·q, bsums = Σ of
// each 16 q's.
struct BlockQ8_K {  // 292 bytes
  float d;
  int8_t qs[kQKBlock];
  int16_t bsums[kQKBlock / 16];
};
#pragma pack(pop)
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 &&
                  sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24 && sizeof(BlockIQ4_NL) == 18 &&
                  sizeof(BlockIQ4_XS) == 136,
              "ggml block sizes");
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 &&
                  sizeof(BlockQ8_K) == 292,
              "ggml K block sizes");

// "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q3_k" | "q4_k" | "q5_k" | "q6_k" |
// "iq4_nl" | "iq4_xs" | "q2_k"
WeightType ParseWeightType(const std::string& s);
const char* WeightTypeName(WeightType t);
// The GGUF tensor `type` field (ggml_type) of each type, and back; an id with no WeightType
// (another ggml type, or Q8_K which is for activations only) throws UserError naming it.
int GgmlTypeId(WeightType t);
WeightType WeightTypeFromGgml(int id);
// Row length k must be a multiple of this (32 for _0 types and IQ4_NL, 256 for K types and IQ4_XS, 1 otherwise).
int64_t BlockElements(WeightType t);
// Bytes of one row of k elements; throws UserError if k is not a multiple of the block size.
int64_t RowBytes(WeightType t, int64_t k);
// The 256-element types whose dot products run on Q8_K activations: the K types and IQ4_XS.
bool IsQ8KActivated(WeightType t);
// The 32-element types whose dot products run on Q8_0-quantized activations (Q8_1 for the _1
// types, which ggml quantizes alike and gives each block's d·Σq besides): Q8_0, Q4_0 … Q5_1, IQ4_NL.
bool IsQ8Activated(WeightType t);

// One row of k values (k a multiple of 256) → Q8_K blocks, as quantize_row_q8_K_ref does.
// allowSimd = false forces the scalar quantizer (the SIMD one gives the same bytes).
void QuantizeRowQ8_K(const float* x, int64_t k, BlockQ8_K* y, bool allowSimd = true);

// rows×k f32 (row stride ldx elements) → rows packed rows of RowBytes(t, k) bytes each.
// allowSimd = false forces the scalar Q8_0 quantizer (the SIMD one is bit-identical). K types
// follow ggml's quantize_row_q*_K_ref (make_qkx2_quants / make_qx_quants, no importance matrix),
// IQ4_NL / IQ4_XS quantize_iq4_nl / quantize_iq4_xs without one.
void QuantizeRows(WeightType t, const float* x, int64_t rows, int64_t k, int64_t ldx, uint8_t* out,
                  bool allowSimd = true);
void DequantizeRows(WeightType t, const uint8_t* w, int64_t rows, int64_t k, float* out, int64_t ldo);

// Instruction-set paths of the matmul kernels. Auto picks the best the cpu has, unless the
// environment variable REDBLUE_KERNEL_PATH names one. Avx512: F/BW/VL; Avx512Vnni adds vpdpbusd;
// Avx512Vbmi adds VBMI's byte permute (gathers Q4_0 nibbles); Amx is Avx512Vnni with Q4_0, Q8_0
// and Q4_K batches (Q8_0 and Q4_K from 16 rows of X, Q4_0 from 48) on AMX-INT8 tiles (Auto picks it
// where Linux grants the tile state). AmxEmulated runs Amx's tiles on a C++
// model of the instructions (tests only; any Avx512Vnni cpu; never picked by Auto).
enum class Isa { Auto, Scalar, Avx2, Avx512, Avx512Vnni, Avx512Vbmi, Amx, AmxEmulated };
// "auto" | "scalar" | "avx2" | "avx512" | "avx512vnni" | "avx512vbmi" | "amx" | "amx-emulated"
Isa ParseIsa(const std::string& s);
const char* IsaName(Isa i);
bool IsaSupported(Isa i);
Isa ResolveIsa(Isa requested);  // Auto → best (or REDBLUE_KERNEL_PATH); an unsupported path throws UserError

// Y[m×n] = X[m×k]·Wᵀ where W is n rows of k elements of type `type`, rows `wStride` bytes
// apart (≥ RowBytes). X is f32 with row stride ldx, Y f32 with row stride ldy (overwritten).
// 32-element types: each row of X is quantized to Q8_0 blocks first (Q8_1 for Q4_1/Q5_1, as
// llama.cpp does) and the dot products run on int8; K types: X is quantized to Q8_K, integer sums per super-block as
// ggml_vec_dot_q*_K_q8_K. F32/F16/BF16: weights are widened to f32 and X stays f32.
struct QuantMatmulArgs {
  WeightType type = WeightType::Q4_0;
  const uint8_t* w = nullptr;
  int64_t n = 0, k = 0, wStride = 0;
  const float* x = nullptr;
  int64_t m = 0, ldx = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  Isa isa = Isa::Auto;
  // Each row of Y comes out bit-identical whatever m is and whichever rows share the call (no
  // GEMV special case for a lone row): a server batching sequences gives each the tokens it would
  // get alone. Costs a lone row some speed on paths whose GEMV differs from their tiles (AVX2).
  bool rowInvariant = false;
  // W in the rows8 layout (InterleaveRows8): rows in groups of 8, the rows after the last whole
  // group natural; wStride must be RowBytes. Rows of whole groups come out the same whatever m
  // is (the rest as rowInvariant says).
  bool rows8 = false;
};
void CheckQuantMatmulArgs(const QuantMatmulArgs& a);

// The rows8 layout: W's rows interleaved 8 at a time, so that a kernel's vector ops serve 8 rows
// and each sub-block's scale applies once per 8 rows (every quantized type). Rows8Runs: whether the
// kernels of `isa` (after Auto resolves) run type t in it; where they do not, keep W natural.
bool Rows8Runs(WeightType t, Isa isa);
// `rows` natural rows of W (srcStride bytes apart, k elements each) → rows8 at dst
// (rows·RowBytes(t, k) bytes): whole groups of 8 interleaved, the rest copied. Callers splitting
// a matrix start each part on a multiple of 8. UserError for a type without the layout.
void InterleaveRows8(WeightType t, const uint8_t* src, int64_t srcStride, int64_t rows, int64_t k, uint8_t* dst);
void MatmulQ(const QuantMatmulArgs& a, ThreadPool& pool);
// Several matmuls on the same X (x, m, k, ldx, isa and rowInvariant alike; each its own W, n and
// Y): X is quantized once for all whose kernels read it alike (a layer's q, k and v, or gate
// and up), and their tasks share one pass of the pool. Each Y is what MatmulQ gives it.
void MatmulQShared(const QuantMatmulArgs* parts, size_t count, ThreadPool& pool);

// Reads `bytes` at p on every worker's share (STREAM-like read bandwidth reference);
// returns a checksum so the reads cannot be optimised away.
uint64_t ReadBytes(const uint8_t* p, size_t bytes, ThreadPool& pool);

}  // namespace redblue
