// Protobuf encoding of the few messages of the Data service (proto/hosts.proto: Block,
// ReadRequest, WriteReply, PipeRequest, PipeReply), by hand: the native data path needs no
// generated code, and a chunk's payload is copied once, straight between the staging area and
// the gRPC slice (or not at all, when the slice is the caller's memory).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace redblue::data {

inline size_t PutVarint(uint8_t* p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  p[n++] = static_cast<uint8_t>(v);
  return n;
}

// Bytes spread over a list of slices (a received message), read front to back.
class SliceReader {
 public:
  SliceReader(const std::vector<std::pair<const uint8_t*, size_t>>& parts) : parts_(parts) {}
  bool done() {
    Skip();
    return i_ == parts_.size();
  }
  uint8_t Byte() {
    Skip();
    if (done()) throw std::runtime_error("truncated message");
    ++pos_;
    return parts_[i_].first[at_++];
  }
  // Bytes consumed so far (bounds a nested message).
  uint64_t pos() const { return pos_; }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = Byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("malformed varint");
  }
  // Hands the next `n` bytes to `f(pointer, length)`, one contiguous piece at a time.
  template <typename F>
  void Visit(uint64_t n, F f) {
    while (n > 0) {
      Skip();
      if (done()) throw std::runtime_error("truncated message");
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, parts_[i_].second - at_));
      f(parts_[i_].first + at_, take);
      at_ += take;
      pos_ += take;
      n -= take;
    }
  }
  // Copies `n` bytes to dst (or skips them when dst is null).
  void Copy(uint8_t* dst, uint64_t n) {
    Visit(n, [&](const uint8_t* p, size_t take) {
      if (!dst) return;
      std::memcpy(dst, p, take);
      dst += take;
    });
  }
  void SkipField(uint32_t wireType) {
    if (wireType == 0) Varint();
    else if (wireType == 2) Copy(nullptr, Varint());
    else if (wireType == 1) Copy(nullptr, 8);
    else if (wireType == 5) Copy(nullptr, 4);
    else throw std::runtime_error("unsupported wire type");
  }

 private:
  void Skip() {
    while (i_ < parts_.size() && at_ == parts_[i_].second) {
      ++i_;
      at_ = 0;
    }
  }
  const std::vector<std::pair<const uint8_t*, size_t>>& parts_;
  size_t i_ = 0, at_ = 0;
  uint64_t pos_ = 0;
};

// Adds little-endian f32 values arriving as bytes in pieces of any length (a value may straddle
// two slices) into `out`, element by element.
class F32Adder {
 public:
  explicit F32Adder(float* out) : out_(out) {}
  void Feed(const uint8_t* p, size_t n) {
    if (have_) {
      size_t take = std::min<size_t>(4 - have_, n);
      std::memcpy(carry_ + have_, p, take);
      have_ += take;
      p += take;
      n -= take;
      if (have_ < 4) return;
      float v;
      std::memcpy(&v, carry_, 4);
      *out_++ += v;
      have_ = 0;
    }
    size_t whole = n / 4;
    for (size_t i = 0; i < whole; ++i) {
      float v;
      std::memcpy(&v, p + 4 * i, 4);  // slices need not be aligned
      out_[i] += v;
    }
    out_ += whole;
    have_ = n - whole * 4;
    std::memcpy(carry_, p + whole * 4, have_);
  }

 private:
  float* out_;
  uint8_t carry_[4];
  size_t have_ = 0;
};

// Numbered varint fields of a flat message (ReadRequest, WriteReply): field number → value. With
// `end`, the message is nested and ends at that position of the reader.
inline void ReadVarints(SliceReader& r, uint64_t* fields, int count, uint64_t end = UINT64_MAX) {
  while (end == UINT64_MAX ? !r.done() : r.pos() < end) {
    uint64_t key = r.Varint();
    uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    // Compared unsigned: a huge field number cast to int turned negative and passed, and was then
    // written far outside `fields` (found by native/fuzz/wire_fuzz.cc).
    if (wire == 0 && field >= 1 && field <= static_cast<uint32_t>(count)) fields[field - 1] = r.Varint();
    else r.SkipField(wire);
  }
}

// Encodes varint fields 1..count (zero fields are left out, as proto3 does).
inline std::vector<uint8_t> WriteVarints(const uint64_t* fields, int count) {
  std::vector<uint8_t> out(static_cast<size_t>(count) * 11);
  size_t n = 0;
  for (int i = 0; i < count; ++i) {
    if (fields[i] == 0) continue;
    n += PutVarint(out.data() + n, static_cast<uint64_t>(i + 1) << 3);
    n += PutVarint(out.data() + n, fields[i]);
  }
  out.resize(n);
  return out;
}

// Header of a Block { offset = 1; data = 2 } whose data of `len` bytes follows it.
inline size_t BlockHeader(uint8_t* p, uint64_t offset, uint64_t len) {
  size_t n = 0;
  if (offset) {
    p[n++] = 0x08;
    n += PutVarint(p + n, offset);
  }
  p[n++] = 0x12;
  n += PutVarint(p + n, len);
  return n;
}
constexpr size_t kMaxBlockHeader = 22;

// Header of a message whose field `field` is a Block { offset, data of `len` bytes } (the data
// follows it), with `flagField` = 1 first when `flag` is set: PipeRequest { write = 2, last = 3 }
// and PipeReply { block = 1, last = 2 }.
inline size_t NestedBlockHeader(uint8_t* p, uint32_t field, uint32_t flagField, bool flag, uint64_t offset,
                                uint64_t len) {
  uint8_t block[kMaxBlockHeader];
  size_t b = BlockHeader(block, offset, len);
  size_t n = 0;
  if (flag) {
    p[n++] = static_cast<uint8_t>(flagField << 3);
    p[n++] = 1;
  }
  p[n++] = static_cast<uint8_t>(field << 3 | 2);
  n += PutVarint(p + n, b + len);
  std::memcpy(p + n, block, b);
  return n + b;
}
constexpr size_t kMaxNestedBlockHeader = 2 + 1 + 10 + kMaxBlockHeader;

}  // namespace redblue::data
