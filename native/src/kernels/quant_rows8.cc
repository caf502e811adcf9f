// The rows8 layout (quant_impl.h, BlockQ4_0x8 / BlockQ4_Kx8 / BlockQ6_Kx8): natural rows → interleaved groups of 8.
#include <cstring>
#include <string>

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

// One group: rows 0-7 at src → 8·nb BlockQ4_0x8 at dst.
void InterleaveGroupQ4_0(const uint8_t* src, int64_t srcStride, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b) {
    BlockQ4_0x8 out{};
    for (int row = 0; row < 8; ++row) {
      BlockQ4_0 in;
      std::memcpy(&in, src + row * srcStride + b * static_cast<int64_t>(sizeof(BlockQ4_0)), sizeof in);
      out.d[row] = in.d;
      for (int v = 0; v < 4; ++v) std::memcpy(out.qs + 32 * v + 4 * row, in.qs + 4 * v, 4);
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof out), &out, sizeof out);
  }
}

// One group: rows 0-7 at src → 8·nb BlockQ6_Kx8 at dst.
void InterleaveGroupQ6_K(const uint8_t* src, int64_t srcStride, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b) {
    BlockQ6_Kx8 out{};
    for (int row = 0; row < 8; ++row) {
      BlockQ6_K in;
      std::memcpy(&in, src + row * srcStride + b * static_cast<int64_t>(sizeof(BlockQ6_K)), sizeof in);
      out.d[row] = in.d;
      for (int g = 0; g < 16; ++g) out.scales[32 * (g / 4) + Rows8SixIndex(row, g)] = in.scales[g];
      for (int e = 0; e < kQKBlock; ++e) {
        const int c = e / 64, h = (e / 32) % 2, v = (e / 4) % 8, t = e % 4, q = Q6KLevel(in, e);
        uint8_t& lo = out.ql[32 * (8 * c + v) + 4 * row + t];
        uint8_t& hi = out.qh[32 * (4 * c + 2 * h + v / 4) + 4 * row + t];
        lo = static_cast<uint8_t>(lo | (q & 0xF) << (4 * h));
        hi = static_cast<uint8_t>(hi | (q >> 4) << (2 * (v % 4)));
      }
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof out), &out, sizeof out);
  }
}

// One group: rows 0-7 at src → 8·nb BlockQ4_Kx8 at dst.
void InterleaveGroupQ4_K(const uint8_t* src, int64_t srcStride, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b) {
    BlockQ4_Kx8 out{};
    for (int row = 0; row < 8; ++row) {
      BlockQ4_K in;
      std::memcpy(&in, src + row * srcStride + b * static_cast<int64_t>(sizeof(BlockQ4_K)), sizeof in);
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
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof out), &out, sizeof out);
  }
}

}  // namespace

void InterleaveRows8(WeightType t, const uint8_t* src, int64_t srcStride, int64_t rows, int64_t k, uint8_t* dst) {
  void (*group)(const uint8_t*, int64_t, int64_t, uint8_t*) = nullptr;
  int64_t blockBytes = 0;
  switch (t) {
    case WeightType::Q4_0: group = InterleaveGroupQ4_0, blockBytes = sizeof(BlockQ4_0); break;
    case WeightType::Q4_K: group = InterleaveGroupQ4_K, blockBytes = sizeof(BlockQ4_K); break;
    case WeightType::Q6_K: group = InterleaveGroupQ6_K, blockBytes = sizeof(BlockQ6_K); break;
    default:
      throw UserError(std::string("the rows8 layout has no ") + WeightTypeName(t) + " form: keep these weights natural");
  }
  const int64_t rb = RowBytes(t, k), nb = rb / blockBytes;
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) group(src + r * srcStride, srcStride, nb, dst + r * rb);
  for (; r < rows; ++r) std::memcpy(dst + r * rb, src + r * srcStride, static_cast<size_t>(rb));
}

}  // namespace redblue
