// A mutation fuzzer for the native data path's hand-written protobuf walk (hosts/data_grpc.h,
// hosts/data_wire.h): the bytes a peer sends before any check of ours. Built with AddressSanitizer
// and UndefinedBehaviorSanitizer (scripts/fuzz.sh); valid PipeRequests, PipeReplies and Blocks
// are mutated (bit flips, bytes set to varint edge values, insertions, deletions, truncation,
// splices) and split into random slices, as gRPC hands a message over; each is walked. A
// malformed message must end in std::runtime_error; anything else (a sanitizer report, another
// exception, a walk that never ends) fails the run.
//   wire_fuzz [iterations] [seed]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "hosts/data_grpc.h"

using namespace redblue::data;
using Buf = std::vector<uint8_t>;

namespace {

void Varint(Buf& b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = PutVarint(tmp, v);
  b.insert(b.end(), tmp, tmp + n);
}
void Field(Buf& b, uint32_t number, uint32_t wire) { Varint(b, (uint64_t(number) << 3) | wire); }
void Len(Buf& b, uint32_t number, const Buf& inner) {
  Field(b, number, 2);
  Varint(b, inner.size());
  b.insert(b.end(), inner.begin(), inner.end());
}
Buf Block(uint64_t offset, size_t n) {
  Buf b;
  Field(b, 1, 0);
  Varint(b, offset);
  Buf data(n);
  for (size_t i = 0; i < n; ++i) data[i] = uint8_t(i * 7);
  Len(b, 2, data);
  return b;
}

std::vector<Buf> Seeds() {
  std::vector<Buf> s;
  {  // PipeRequest { read: ReadRequest { offset, bytes, chunk_bytes } }
    Buf rr;
    Field(rr, 1, 0), Varint(rr, 4096), Field(rr, 2, 0), Varint(rr, 1 << 20), Field(rr, 3, 0), Varint(rr, 65536);
    Buf p;
    Len(p, 1, rr);
    s.push_back(p);
  }
  {  // PipeRequest { write: Block, last: true }
    Buf p;
    Len(p, 2, Block(128, 40));
    Field(p, 3, 0), Varint(p, 1);
    s.push_back(p);
  }
  {  // PipeRequest { fetch: FetchRequest { tag, from_host } }
    Buf f;
    Len(f, 1, Buf{'l', 'a', 'y', 'e', 'r', '-', '3'});
    Field(f, 2, 0), Varint(f, 1);
    Buf p;
    Len(p, 4, f);
    s.push_back(p);
  }
  {  // PipeReply { block, last, bytes, code, error }
    Buf p;
    Len(p, 1, Block(0, 33));
    Field(p, 2, 0), Varint(p, 1), Field(p, 3, 0), Varint(p, 33), Field(p, 4, 0), Varint(p, 5);
    Len(p, 5, Buf{'n', 'o', 'p', 'e'});
    s.push_back(p);
  }
  s.push_back(Block(1ull << 40, 64));  // a bare Block (a Write's stream)
  return s;
}

const uint64_t kEdges[] = {0, 1, 0x7f, 0x80, 0xff, 0x3fff, 0x4000, 0xffffffffull, 1ull << 32, 1ull << 63, ~0ull};

Buf Mutate(Buf b, std::mt19937_64& rng) {
  const int ops = 1 + int(rng() % 4);
  for (int o = 0; o < ops; ++o) {
    const size_t at = b.empty() ? 0 : rng() % (b.size() + 1);
    switch (rng() % 7) {
      case 0:
        if (!b.empty()) b[at % b.size()] ^= uint8_t(1u << (rng() % 8));
        break;
      case 1:
        if (!b.empty()) b[at % b.size()] = uint8_t(rng());
        break;
      case 2: {  // a varint edge value written over the bytes at `at`
        Buf v;
        Varint(v, kEdges[rng() % (sizeof kEdges / sizeof kEdges[0])]);
        for (size_t i = 0; i < v.size(); ++i)
          if (at + i < b.size()) b[at + i] = v[i];
          else b.push_back(v[i]);
        break;
      }
      case 3:
        b.insert(b.begin() + long(at), uint8_t(rng()));
        break;
      case 4:
        if (!b.empty()) b.erase(b.begin() + long(at % b.size()));
        break;
      case 5:
        b.resize(at);
        break;
      default: {  // a copy of a piece of itself somewhere else
        if (b.empty()) break;
        size_t from = rng() % b.size(), n = 1 + rng() % std::min<size_t>(16, b.size() - from);
        Buf piece(b.begin() + long(from), b.begin() + long(from + n));
        b.insert(b.begin() + long(at), piece.begin(), piece.end());
        break;
      }
    }
  }
  return b;
}

// The message as gRPC may hand it over: in 1-4 slices.
Parts Slices(const Buf& b, std::mt19937_64& rng) {
  Parts parts;
  size_t pos = 0;
  const int cuts = int(rng() % 4);
  for (int i = 0; i < cuts && pos < b.size(); ++i) {
    size_t n = rng() % (b.size() - pos + 1);
    parts.emplace_back(b.data() + pos, n);
    pos += n;
  }
  parts.emplace_back(b.data() + pos, b.size() - pos);
  return parts;
}

// The walks the data path runs on what it receives; `data` consumes each block's bytes as the
// server and client do (copied, or added as f32 into a buffer of their length).
void Walk(const Parts& parts, int which) {
  std::vector<uint8_t> sink;
  auto data = [&](uint64_t offset, uint64_t len, SliceReader& r) -> std::string {
    if (len > (1u << 20)) return "a block of " + std::to_string(len) + " bytes";  // the area's bound
    sink.resize(len);
    if (offset % 2) {
      std::vector<float> acc((len + 3) / 4);
      F32Adder add(acc.data());
      r.Visit(len, [&](const uint8_t* p, size_t n) { add.Feed(p, n); });
    } else {
      r.Copy(sink.data(), len);
    }
    return "";
  };
  switch (which) {
    case 0: {
      PipeRequestView v;
      WalkPipeRequest(parts, v, data);
      break;
    }
    case 1: {
      PipeReplyView v;
      WalkPipeReply(parts, v, data);
      break;
    }
    case 2: {
      std::string err = ForEachBlock(parts, data);
      (void)err;
      break;
    }
    default: {
      SliceReader r(parts);
      uint64_t f[3] = {0, 0, 0};
      ReadVarints(r, f, 3);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t iterations = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  std::mt19937_64 rng(seed);
  const std::vector<Buf> seeds = Seeds();
  uint64_t rejected = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < iterations; ++i) {
    Buf b = Mutate(seeds[rng() % seeds.size()], rng);
    if (rng() % 8 == 0) b = Mutate(b, rng);
    const Parts parts = Slices(b, rng);
    try {
      Walk(parts, int(rng() % 4));
    } catch (const std::runtime_error&) {
      ++rejected;  // a malformed message, refused: what must happen
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wire_fuzz: %llu inputs (seed %llu), %llu refused as malformed, %.1f s, no sanitizer report\n",
              static_cast<unsigned long long>(iterations), static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(rejected), s);
  return 0;
}
