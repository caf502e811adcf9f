// The rows8 layout (quant_impl.h, the Block*x8 structs): natural rows → interleaved groups of 8.
// InterleaveGroup walks a group block by block; PlaceRow puts one row's fields where its type's
// layout says.
#include <cstring>
#include <string>
#include <type_traits>

#include "core/errors.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"

namespace redblue {
namespace {

void PutSix(uint8_t* t, int row, int sub, uint8_t v) {
  const int j = Rows8SixIndex(row, sub);
  t[j] = static_cast<uint8_t>(t[j] | (v & 0xF) << (4 * (sub / 4)));
  t[32 + j % 16] = static_cast<uint8_t>(t[32 + j % 16] | (v >> 4) << Rows8SixHighShift(row, sub));
}

// Row `row`'s fields of natural block `in` into group block `out`, one overload per type.
void PlaceRow(const BlockQ8_0& in, int row, BlockQ8_0x8& out) {
  out.d[row] = in.d;
  for (int v = 0; v < 8; ++v) std::memcpy(out.qs + 32 * v + 4 * row, in.qs + 4 * v, 4);
}

// The nibble types (Q4_0, Q5_0, Q4_1, Q5_1, IQ4_NL). Natural: bit e of a 5-bit type's qh is element e's
// fifth bit.
template <typename Block, typename BlockX8>
void PlaceRowNibble(const Block& in, int row, BlockX8& out) {
  out.d[row] = in.d;
  if constexpr (Nibble32Traits<Block>::kAffine) out.m[row] = in.m;
  for (int v = 0; v < 4; ++v) std::memcpy(out.qs + 32 * v + 4 * row, in.qs + 4 * v, 4);
  if constexpr (Nibble32Traits<Block>::kFifthBit) {
    uint32_t qh;
    std::memcpy(&qh, in.qh, 4);
    for (int v = 0; v < 4; ++v)
      for (int t = 0; t < 4; ++t)
        out.qh[4 * row + t] = static_cast<uint8_t>(out.qh[4 * row + t] | ((qh >> (4 * v + t)) & 1) << v |
                                                   ((qh >> (16 + 4 * v + t)) & 1) << (4 + v));
  }
}

void PlaceRow(const BlockQ4_0& in, int row, BlockQ4_0x8& out) { PlaceRowNibble(in, row, out); }
void PlaceRow(const BlockQ5_0& in, int row, BlockQ5_0x8& out) { PlaceRowNibble(in, row, out); }
void PlaceRow(const BlockQ4_1& in, int row, BlockQ4_1x8& out) { PlaceRowNibble(in, row, out); }
void PlaceRow(const BlockQ5_1& in, int row, BlockQ5_1x8& out) { PlaceRowNibble(in, row, out); }
void PlaceRow(const BlockIQ4_NL& in, int row, BlockIQ4_NLx8& out) { PlaceRowNibble(in, row, out); }

void PlaceRow(const BlockQ6_K& in, int row, BlockQ6_Kx8& out) {
  out.d[row] = in.d;
  for (int g = 0; g < 16; ++g) out.scales[32 * (g / 4) + Rows8SixIndex(row, g)] = in.scales[g];
  // Byte-wise, from the layouts' definitions (a level at a time, the repack took 7% of a
  // 400-token run's samples). Pair c takes elements 64c..64c+63: the low nibbles of ql
  // half c / 2 for even c, the high ones for odd c; their top bits sit at bits 2·(2·(c % 2) + h)
  // of qh half c / 2.
  for (int c = 0; c < 4; ++c) {
    const uint8_t* A = in.ql + 64 * (c / 2);
    const uint8_t* N = in.qh + 32 * (c / 2);
    for (int i = 0; i < 32; ++i) {
      const uint8_t lo = c % 2 ? A[i] >> 4 : A[i] & 0xF, hi = c % 2 ? A[32 + i] & 0xF0 : (A[32 + i] & 0xF) << 4;
      out.ql[32 * (8 * c + i / 4) + 4 * row + i % 4] = static_cast<uint8_t>(lo | hi);
    }
    for (int h = 0; h < 2; ++h) {
      const int shift = 2 * (2 * (c % 2) + h);
      for (int u = 0; u < 2; ++u)
        for (int t = 0; t < 4; ++t) {
          int byte = 0;
          for (int w = 0; w < 4; ++w) byte |= ((N[16 * u + 4 * w + t] >> shift) & 3) << (2 * w);
          out.qh[32 * (4 * c + 2 * h + u) + 4 * row + t] = static_cast<uint8_t>(byte);
        }
    }
  }
}

// Q2_K's levels and Q3_K's low bits, natural: element e = 128h + 32t + l at bits 2t of qs[32h + l].
// Rows8: sub-block g's elements 16g + 4w + t at bits 2w of byte 4·row + t of vector g. Four
// elements (t = 0..3) a 32-bit word: they sit at bytes 16·(g % 2) + 4w + t of qs half g / 8.
void PlaceTwoBitLevels(const uint8_t* qs, int row, uint8_t* out) {
  for (int g = 0; g < 16; ++g) {
    const int shift = 2 * ((g % 8) / 2);
    uint32_t low = 0;
    for (int w = 0; w < 4; ++w) {
      uint32_t q;
      std::memcpy(&q, qs + 32 * (g / 8) + 16 * (g % 2) + 4 * w, 4);
      low |= ((q >> shift) & 0x03030303u) << (2 * w);
    }
    std::memcpy(out + 32 * g + 4 * row, &low, 4);
  }
}

// Q3_K's third bits, natural: bit e / 32 of hmask[e % 32]; in bytes 16·(g % 2) + 4w + t of hmask
// for sub-block g, bit g / 2.
void PlaceRow(const BlockQ3_K& in, int row, BlockQ3_Kx8& out) {
  out.d[row] = in.d;
  int8_t sc[16];
  UnpackScalesQ3K(in.scales, sc);
  for (int g = 0; g < 16; ++g) PutSix(out.scales + 48 * (g / 8), row, g % 8, static_cast<uint8_t>(sc[g] + 32));
  PlaceTwoBitLevels(in.qs, row, out.qs);
  for (int g = 0; g < 16; ++g) {
    uint32_t high = 0;
    for (int w = 0; w < 4; ++w) {
      uint32_t m;
      std::memcpy(&m, in.hmask + 16 * (g % 2) + 4 * w, 4);
      high |= ((m >> (g / 2)) & 0x01010101u) << Q3KRows8HighBit(g, w);
    }
    uint8_t* hm = out.hm + 32 * (g / 2) + 4 * row;
    uint32_t both;
    std::memcpy(&both, hm, 4);
    both |= high;
    std::memcpy(hm, &both, 4);
  }
}

void PlaceRow(const BlockQ2_K& in, int row, BlockQ2_Kx8& out) {
  out.d[row] = in.d;
  out.dmin[row] = in.dmin;
  for (int g = 0; g < 16; ++g) out.scales[32 * (g / 4) + Rows8SixIndex(row, g)] = in.scales[g];
  PlaceTwoBitLevels(in.qs, row, out.qs);
}

// Q4_K / Q5_K.
template <typename Block, typename BlockX8>
void PlaceRowK(const Block& in, int row, BlockX8& out) {
  out.d[row] = in.d;
  out.dmin[row] = in.dmin;
  uint8_t sc[8], m[8];
  UnpackScalesK4(in.scales, sc, m);
  for (int s = 0; s < 8; ++s) {
    PutSix(out.scales, row, s, sc[s]);
    PutSix(out.mins, row, s, m[s]);
  }
  for (int c = 0; c < 4; ++c)
    for (int v = 0; v < 8; ++v) std::memcpy(out.qs + 256 * c + 32 * v + 4 * row, in.qs + 32 * c + 4 * v, 4);
  if constexpr (std::is_same_v<Block, BlockQ5_K>)  // natural: bit s of qh[l] is element 32s + l's
    for (int s = 0; s < 8; ++s)
      for (int t = 0; t < 4; ++t) {
        int byte = 0;
        for (int v = 0; v < 8; ++v) byte |= ((in.qh[4 * v + t] >> s) & 1) << v;
        out.qh[32 * s + 4 * row + t] = static_cast<uint8_t>(byte);
      }
}
void PlaceRow(const BlockQ4_K& in, int row, BlockQ4_Kx8& out) { PlaceRowK(in, row, out); }
void PlaceRow(const BlockQ5_K& in, int row, BlockQ5_Kx8& out) { PlaceRowK(in, row, out); }

void PlaceRow(const BlockIQ4_XS& in, int row, BlockIQ4_XSx8& out) {
  out.d[row] = in.d;
  int8_t sc[8];
  UnpackScalesIq4Xs(in, sc);
  for (int s = 0; s < 8; ++s) PutSix(out.scales, row, s, static_cast<uint8_t>(sc[s] + 32));
  for (int c = 0; c < 4; ++c)
    for (int v = 0; v < 8; ++v) std::memcpy(out.qs + 256 * c + 32 * v + 4 * row, in.qs + 32 * c + 4 * v, 4);
}

// One group: rows 0-7 at src → 8·nb BlockX8 at dst.
template <typename Block, typename BlockX8>
void InterleaveGroup(const uint8_t* src, int64_t srcStride, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b) {
    BlockX8 out{};
    for (int row = 0; row < 8; ++row) {
      Block in;
      std::memcpy(&in, src + row * srcStride + b * static_cast<int64_t>(sizeof(Block)), sizeof in);
      PlaceRow(in, row, out);
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof out), &out, sizeof out);
  }
}

}  // namespace

void InterleaveRows8(WeightType t, const uint8_t* src, int64_t srcStride, int64_t rows, int64_t k, uint8_t* dst) {
  void (*group)(const uint8_t*, int64_t, int64_t, uint8_t*) = nullptr;
  int64_t blockBytes = 0;
  auto use = [&](auto block, auto blockX8) {
    using Block = decltype(block);
    group = InterleaveGroup<Block, decltype(blockX8)>;
    blockBytes = sizeof(Block);
  };
  switch (t) {
    case WeightType::Q8_0: use(BlockQ8_0{}, BlockQ8_0x8{}); break;
    case WeightType::Q4_0: use(BlockQ4_0{}, BlockQ4_0x8{}); break;
    case WeightType::Q5_0: use(BlockQ5_0{}, BlockQ5_0x8{}); break;
    case WeightType::Q4_1: use(BlockQ4_1{}, BlockQ4_1x8{}); break;
    case WeightType::Q5_1: use(BlockQ5_1{}, BlockQ5_1x8{}); break;
    case WeightType::IQ4_NL: use(BlockIQ4_NL{}, BlockIQ4_NLx8{}); break;
    case WeightType::Q4_K: use(BlockQ4_K{}, BlockQ4_Kx8{}); break;
    case WeightType::Q5_K: use(BlockQ5_K{}, BlockQ5_Kx8{}); break;
    case WeightType::Q6_K: use(BlockQ6_K{}, BlockQ6_Kx8{}); break;
    case WeightType::Q3_K: use(BlockQ3_K{}, BlockQ3_Kx8{}); break;
    case WeightType::Q2_K: use(BlockQ2_K{}, BlockQ2_Kx8{}); break;
    case WeightType::IQ4_XS: use(BlockIQ4_XS{}, BlockIQ4_XSx8{}); break;
    default:
      throw UserError(std::string("the rows8 layout has no ") + WeightTypeName(t) + " form: keep these weights natural");
  }
  const int64_t rb = RowBytes(t, k), nb = rb / blockBytes;
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) group(src + r * srcStride, srcStride, nb, dst + r * rb);
  for (; r < rows; ++r) std::memcpy(dst + r * rb, src + r * srcStride, static_cast<size_t>(rb));
}

}  // namespace redblue
