// What the two ends of the native data path share: method names, channel settings, the walk
// over received messages, errors in the words both paths use.
#pragma once
#include <grpcpp/grpcpp.h>
#include <malloc.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "hosts/data_service.h"
#include "hosts/data_wire.h"

namespace redblue::data {

inline constexpr char kRead[] = "/redblue.hosts.v1.Data/Read";
inline constexpr char kWrite[] = "/redblue.hosts.v1.Data/Write";
inline constexpr char kPipe[] = "/redblue.hosts.v1.Data/Pipe";
constexpr int kMaxMessage = static_cast<int>(kMaxChunk) + 4096;

using Parts = std::vector<std::pair<const uint8_t*, size_t>>;

// The slices of a received message, as (pointer, length) pairs the SliceReader walks.
inline Parts PartsOf(const grpc::ByteBuffer& bb, std::vector<grpc::Slice>& keep) {
  keep.clear();
  Parts parts;
  if (!bb.Dump(&keep).ok()) return parts;
  for (auto& s : keep) parts.emplace_back(s.begin(), s.size());
  return parts;
}

inline grpc::ByteBuffer Bytes(const uint8_t* p, size_t n) {
  grpc::Slice slice(p, n);
  return grpc::ByteBuffer(&slice, 1);
}
inline grpc::ByteBuffer Bytes(const std::vector<uint8_t>& v) { return Bytes(v.data(), v.size()); }

// The words of the Host service's own check (executor/host-validate.ts), so that both paths
// fail alike.
inline std::string Range(uint64_t offset, uint64_t bytes, uint64_t size) {
  return "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) + ") lie outside the " +
         std::to_string(size) + "-byte staging area";
}

// gRPC allocates every chunk and every socket read (up to 4 MiB) afresh, and glibc hands freed
// memory back to the kernel at the top of its arenas, so each chunk faulted its pages in again:
// about 90 page faults per MiB read, a third of the time of a 1 MiB read on a VM. Freed memory is
// kept (up to 64 MiB per arena) and blocks up to 8 MiB come from the arenas. Process-wide, so
// only processes that move data between hosts set it.
inline void KeepMallocArenas() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
  });
}

// Bulk-data settings for both ends: big frames and reads, keepalives that notice a dead link
// within seconds (as the grpc-js channels do).
inline void Tune(grpc::ChannelArguments& a) {
  a.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 16777215);
  a.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 20);
  a.SetInt(GRPC_ARG_TCP_READ_CHUNK_SIZE, 4 << 20);
  a.SetInt(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 4 << 20);
  a.SetInt(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 4 << 20);
  a.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  a.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  a.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  a.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  a.SetInt(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  a.SetInt(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  a.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  a.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  a.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  a.SetMaxReceiveMessageSize(kMaxMessage);
  a.SetMaxSendMessageSize(kMaxMessage);
}

// Walks the fields of a Block that ends at `end` (nested) or with the message (UINT64_MAX):
// `data(offset, len, reader)` must consume the len bytes (copy or skip) or return a non-empty
// error, which stops the walk and is returned. The offset precedes the data, as every protobuf
// encoder writes fields in order.
template <typename OnData>
std::string WalkBlock(SliceReader& r, uint64_t end, OnData& data) {
  uint64_t offset = 0;
  while (end == UINT64_MAX ? !r.done() : r.pos() < end) {
    uint64_t key = r.Varint();
    uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 0) {
      offset = r.Varint();
    } else if (field == 2 && wire == 2) {
      std::string err = data(offset, r.Varint(), r);
      if (!err.empty()) return err;
    } else {
      r.SkipField(wire);
    }
  }
  if (end != UINT64_MAX && r.pos() != end) throw std::runtime_error("a Block overruns its message");
  return "";
}

// The Blocks of a message (a Write's stream, a Read's reply).
template <typename OnData>
std::string ForEachBlock(const Parts& parts, OnData data) {
  SliceReader r(parts);
  return WalkBlock(r, UINT64_MAX, data);
}

// Walks the fields of a message: `field(number, wireType, reader)` consumes a field it knows and
// returns true (or throws), and returns false for one to skip.
template <typename OnField>
void WalkFields(const Parts& parts, OnField field) {
  SliceReader r(parts);
  while (!r.done()) {
    uint64_t key = r.Varint();
    uint32_t number = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (!field(number, wire, r)) r.SkipField(wire);
  }
}

// A PipeRequest: a read (its ReadRequest's fields), a chunk of a write (walked with `data`) or a
// fetch of an all-gather block (FetchRequest { tag = 1; from_host = 2 }).
struct PipeRequestView {
  bool read = false, write = false, last = false, fetch = false, follow = false;
  uint64_t readFields[3] = {0, 0, 0};  // offset, bytes, chunk_bytes
  std::string fetchTag;
  int kinds() const { return int(read) + int(write) + int(fetch); }
};
// An error of `data` is thrown, as a malformed message is.
template <typename OnData>
void WalkPipeRequest(const Parts& parts, PipeRequestView& v, OnData data) {
  WalkFields(parts, [&](uint32_t field, uint32_t wire, SliceReader& r) {
    if (field == 1 && wire == 2) {
      v.read = true;
      uint64_t len = r.Varint();
      ReadVarints(r, v.readFields, 3, r.pos() + len);
    } else if (field == 2 && wire == 2) {
      v.write = true;
      uint64_t len = r.Varint();
      std::string err = WalkBlock(r, r.pos() + len, data);
      if (!err.empty()) throw std::runtime_error(err);
    } else if (field == 3 && wire == 0) {
      v.last = r.Varint() != 0;
    } else if (field == 4 && wire == 2) {
      v.fetch = true;
      uint64_t end = r.Varint();
      end += r.pos();
      while (r.pos() < end) {
        uint64_t key = r.Varint();
        if (key == 0x0a) {
          uint64_t len = r.Varint();
          if (len > kMaxTag) throw std::runtime_error("a tag of " + std::to_string(len) + " bytes");
          v.fetchTag.assign(len, '\0');
          r.Copy(reinterpret_cast<uint8_t*>(v.fetchTag.data()), len);
        } else if (key == 0x18) {
          v.follow = r.Varint() != 0;
        } else {  // from_host: unused, any peer may fetch a posted block
          r.SkipField(static_cast<uint32_t>(key & 7));
        }
      }
      if (r.pos() != end) throw std::runtime_error("a FetchRequest overruns its message");
    } else {
      return false;
    }
    return true;
  });
}

// A PipeReply: a chunk of a read (walked with `data`), and the end of an operation.
struct PipeReplyView {
  bool last = false;
  uint64_t bytes = 0;
  uint32_t code = 0;
  std::string error;
};
// An error of `data` is thrown, as a malformed message is.
template <typename OnData>
void WalkPipeReply(const Parts& parts, PipeReplyView& v, OnData data) {
  WalkFields(parts, [&](uint32_t field, uint32_t wire, SliceReader& r) {
    if (field == 1 && wire == 2) {
      uint64_t len = r.Varint();
      std::string err = WalkBlock(r, r.pos() + len, data);
      if (!err.empty()) throw std::runtime_error(err);
    } else if (field == 2 && wire == 0) {
      v.last = r.Varint() != 0;
    } else if (field == 3 && wire == 0) {
      v.bytes = r.Varint();
    } else if (field == 4 && wire == 0) {
      v.code = static_cast<uint32_t>(r.Varint());
    } else if (field == 5 && wire == 2) {
      uint64_t len = r.Varint();
      if (len > 65536) throw std::runtime_error("an error message of " + std::to_string(len) + " bytes");
      v.error.assign(len, '\0');
      r.Copy(reinterpret_cast<uint8_t*>(v.error.data()), len);
    } else {
      return false;
    }
    return true;
  });
}

// The end of a Pipe operation: PipeReply { last, bytes, code, error }.
inline grpc::ByteBuffer PipeDone(uint64_t bytes, const grpc::Status& st) {
  std::vector<uint8_t> out(2 + 11 + 6 + 10 + st.error_message().size());
  size_t n = 0;
  out[n++] = 0x10;
  out[n++] = 1;
  if (bytes) {
    out[n++] = 0x18;
    n += PutVarint(out.data() + n, bytes);
  }
  if (!st.ok()) {
    out[n++] = 0x20;
    n += PutVarint(out.data() + n, static_cast<uint64_t>(st.error_code()));
    out[n++] = 0x2a;
    n += PutVarint(out.data() + n, st.error_message().size());
    std::memcpy(out.data() + n, st.error_message().data(), st.error_message().size());
    n += st.error_message().size();
  }
  return Bytes(out.data(), n);
}

}  // namespace redblue::data
