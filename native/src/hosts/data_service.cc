#include "hosts/data_service.h"

#include <grpc/slice.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "hosts/data_wire.h"

namespace redblue::data {
namespace {

const char kRead[] = "/redblue.hosts.v1.Data/Read";
const char kWrite[] = "/redblue.hosts.v1.Data/Write";
constexpr int kMaxMessage = static_cast<int>(kMaxChunk) + 4096;

using Parts = std::vector<std::pair<const uint8_t*, size_t>>;

// The slices of a received message, as (pointer, length) pairs the SliceReader walks.
Parts PartsOf(const grpc::ByteBuffer& bb, std::vector<grpc::Slice>& keep) {
  keep.clear();
  Parts parts;
  if (!bb.Dump(&keep).ok()) return parts;
  for (auto& s : keep) parts.emplace_back(s.begin(), s.size());
  return parts;
}

// One slice holding a Block header and `len` bytes copied from src (a chunk of the area: copied
// under the lock, so the area may be replaced as soon as the copy is made).
grpc::ByteBuffer BlockMessage(uint64_t offset, const uint8_t* src, uint64_t len) {
  uint8_t head[kMaxBlockHeader];
  size_t h = BlockHeader(head, offset, len);
  grpc_slice s = grpc_slice_malloc(h + len);
  std::memcpy(GRPC_SLICE_START_PTR(s), head, h);
  if (len) std::memcpy(GRPC_SLICE_START_PTR(s) + h, src, len);
  grpc::Slice slice(s, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&slice, 1);
}

// Walks the Blocks of a message: `data(offset, len, reader)` must consume the len bytes (copy
// or skip) or return a non-empty error, which stops the walk and is returned.
template <typename OnData>
std::string ForEachBlock(const Parts& parts, OnData data) {
  SliceReader r(parts);
  uint64_t offset = 0;
  while (!r.done()) {
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
  return "";
}

// A Block whose data is `src` itself, not a copy: for a client's Write, whose source stays put
// until the call has finished (so until the peer has every byte).
grpc::ByteBuffer BlockView(uint64_t offset, const uint8_t* src, uint64_t len) {
  uint8_t head[kMaxBlockHeader];
  size_t h = BlockHeader(head, offset, len);
  grpc::Slice parts[2] = {grpc::Slice(head, h), grpc::Slice(src, len, grpc::Slice::STATIC_SLICE)};
  return grpc::ByteBuffer(parts, len ? 2 : 1);
}

grpc::ByteBuffer Bytes(const std::vector<uint8_t>& v) {
  grpc::Slice slice(v.data(), v.size());
  return grpc::ByteBuffer(&slice, 1);
}

bool SameToken(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

// The words of the Host service's own check (executor/host-validate.ts), so that both paths
// fail alike.
std::string Range(uint64_t offset, uint64_t bytes, uint64_t size) {
  return "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) + ") lie outside the " +
         std::to_string(size) + "-byte staging area";
}

// Ends a call at once with a status (bad token, unknown method).
class Refuse : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refuse(grpc::Status s) { Finish(std::move(s)); }
  void OnDone() override { delete this; }
};

// Read(ReadRequest) returns (stream Block): chunks of the area, each copied under the shared lock.
class ReadCall : public grpc::ServerGenericBidiReactor {
 public:
  explicit ReadCall(std::shared_ptr<Area> area) : area_(std::move(area)) { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Read needs a ReadRequest"));
    uint64_t f[3] = {0, 0, 0};
    try {
      std::vector<grpc::Slice> keep;
      Parts parts = PartsOf(in_, keep);
      SliceReader r(parts);
      ReadVarints(r, f, 3);
    } catch (const std::exception& e) {
      return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string("ReadRequest: ") + e.what()));
    }
    offset_ = f[0];
    left_ = f[1];
    chunk_ = f[2] == 0 ? kDefaultChunk : f[2];
    if (chunk_ < 4096 || chunk_ > kMaxChunk)
      return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "chunk_bytes must lie in 4096..4194304"));
    {
      std::shared_lock<std::shared_mutex> lk(area_->mu);
      if (!area_->base) return Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no staging area: call Stage first"));
      if (offset_ > area_->size || left_ > area_->size - offset_)
        return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "read: " + Range(offset_, left_, area_->size)));
      generation_ = area_->generation;
    }
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the reader went away"));
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (left_ == 0 && sent_any_) return Finish(grpc::Status::OK);
    uint64_t n = std::min<uint64_t>(left_, chunk_);
    {
      std::shared_lock<std::shared_mutex> lk(area_->mu);
      if (area_->generation != generation_)
        return Finish(grpc::Status(grpc::StatusCode::ABORTED, "the staging area was replaced during the read"));
      out_ = BlockMessage(done_, area_->base + offset_ + done_, n);
    }
    done_ += n;
    left_ -= n;
    sent_any_ = true;
    StartWrite(&out_);
  }
  std::shared_ptr<Area> area_;
  grpc::ByteBuffer in_, out_;
  uint64_t offset_ = 0, left_ = 0, done_ = 0, generation_ = 0;
  uint32_t chunk_ = kDefaultChunk;
  bool sent_any_ = false;
};

// Write(stream Block) returns (WriteReply): each block copied into the area under the shared lock.
class WriteCall : public grpc::ServerGenericBidiReactor {
 public:
  explicit WriteCall(std::shared_ptr<Area> area) : area_(std::move(area)) {
    std::shared_lock<std::shared_mutex> lk(area_->mu);
    if (!area_->base) {
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no staging area: call Stage first"));
      return;
    }
    generation_ = area_->generation;
    StartRead(&in_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      uint64_t f[1] = {bytes_};
      out_ = Bytes(WriteVarints(f, 1));
      return StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
    }
    grpc::Status st = Apply();
    if (!st.ok()) return Finish(st);
    StartRead(&in_);
  }
  void OnWriteDone(bool) override {}
  void OnDone() override { delete this; }

 private:
  grpc::Status Apply() {
    std::vector<grpc::Slice> keep;
    Parts parts = PartsOf(in_, keep);
    grpc::StatusCode code = grpc::StatusCode::OK;
    std::string err;
    try {
      err = ForEachBlock(parts, [&](uint64_t offset, uint64_t len, SliceReader& r) -> std::string {
        std::shared_lock<std::shared_mutex> lk(area_->mu);
        if (area_->generation != generation_ || !area_->base) {
          code = grpc::StatusCode::ABORTED;
          return "the staging area was replaced during the write";
        }
        if (offset > area_->size || len > area_->size - offset) {
          code = grpc::StatusCode::INVALID_ARGUMENT;
          return "write: " + Range(offset, len, area_->size);
        }
        r.Copy(area_->base + offset, len);
        bytes_ += len;
        return "";
      });
    } catch (const std::exception& e) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string("Block: ") + e.what());
    }
    return err.empty() ? grpc::Status::OK : grpc::Status(code, err);
  }
  std::shared_ptr<Area> area_;
  grpc::ByteBuffer in_, out_;
  uint64_t bytes_ = 0, generation_ = 0;
};

class Service : public grpc::CallbackGenericService {
 public:
  Service(std::shared_ptr<Area> area, std::string token) : area_(std::move(area)), token_(std::move(token)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    if (!token_.empty()) {
      std::string got;
      auto it = ctx->client_metadata().find("authorization");
      if (it != ctx->client_metadata().end()) got.assign(it->second.data(), it->second.size());
      if (!SameToken(got, "Bearer " + token_))
        return new Refuse(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unauthenticated: missing or wrong token"));
    }
    if (ctx->method() == kRead) return new ReadCall(area_);
    if (ctx->method() == kWrite) return new WriteCall(area_);
    return new Refuse(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no method " + ctx->method()));
  }

 private:
  std::shared_ptr<Area> area_;
  std::string token_;
};

// Bulk-data settings for both ends: big frames and reads, keepalives that notice a dead link
// within seconds (as the grpc-js channels do).
void Tune(grpc::ChannelArguments& a) {
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

// A blocking call on a private completion queue: each step waits for its own tag.
class Call {
 public:
  Call(grpc::GenericStub& stub, const char* method, const std::string& token, uint64_t deadlineMs) {
    if (!token.empty()) ctx_.AddMetadata("authorization", "Bearer " + token);
    // The headers leave with the first message: one round trip fewer per call.
    ctx_.set_initial_metadata_corked(true);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadlineMs));
    rw_ = stub.PrepareCall(&ctx_, method, &cq_);
    // Corked: StartCall completes only once the first message goes, so it is not waited for here
    // but together with that message (Wait collects it).
    startTag_ = Tag();
    rw_->StartCall(startTag_);
    ok_ = true;
  }
  ~Call() {
    if (!finished_) {
      ctx_.TryCancel();
      grpc::Status ignored;
      rw_->Finish(&ignored, Tag());
      Wait();
    }
    cq_.Shutdown();
    void* t;
    bool ok;
    while (cq_.Next(&t, &ok)) {
    }
  }
  bool ok() const { return ok_; }
  bool Write(const grpc::ByteBuffer& bb) {
    rw_->Write(bb, Tag());
    return ok_ = Wait();
  }
  // The one request of a server-streaming call, with the end of the client's side.
  bool WriteLast(const grpc::ByteBuffer& bb) {
    rw_->WriteLast(bb, grpc::WriteOptions(), Tag());
    return ok_ = Wait();
  }
  bool WritesDone() {
    rw_->WritesDone(Tag());
    return ok_ = Wait();
  }
  bool Read(grpc::ByteBuffer* bb) {
    rw_->Read(bb, Tag());
    return Wait();
  }
  grpc::Status Finish() {
    grpc::Status st;
    rw_->Finish(&st, Tag());
    Wait();
    finished_ = true;
    return st;
  }

 private:
  void* Tag() { return reinterpret_cast<void*>(++tag_); }
  // Waits for the latest operation's tag; the start of the call, if it completes first, only
  // counts when it failed.
  bool Wait() {
    void* want = reinterpret_cast<void*>(tag_);
    for (;;) {
      void* t;
      bool ok = false;
      if (!cq_.Next(&t, &ok)) return false;
      if (t == startTag_) {
        startTag_ = nullptr;
        if (!ok) startFailed_ = true;
        if (want == t) return ok;
        continue;
      }
      if (t == want) return ok && !startFailed_;
    }
  }
  void* startTag_ = nullptr;
  bool startFailed_ = false;
  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> rw_;
  uintptr_t tag_ = 0;
  bool ok_ = false, finished_ = false;
};

[[noreturn]] void Fail(const std::string& address, const grpc::Status& st) {
  std::string code;
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: code = "unreachable"; break;
    case grpc::StatusCode::DEADLINE_EXCEEDED: code = "unreachable (deadline exceeded)"; break;
    case grpc::StatusCode::UNAUTHENTICATED: code = "refused"; break;
    default: code = "failed";
  }
  // "[grpc N]" carries the status code to JS (transport/native-data.ts takes it off).
  throw std::runtime_error((code == "failed" ? "" : code + " (data path to " + address + "): ") + st.error_message() +
                           " [grpc " + std::to_string(static_cast<int>(st.error_code())) + "]");
}

}  // namespace

DataServer::DataServer(const std::string& address, const std::string& token)
    : area_(std::make_shared<Area>()), service_(std::make_unique<Service>(area_, token)) {
  grpc::ServerBuilder b;
  b.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
  b.RegisterCallbackGenericService(service_.get());
  grpc::ChannelArguments a;
  Tune(a);
  b.SetMaxReceiveMessageSize(kMaxMessage);
  b.SetMaxSendMessageSize(kMaxMessage);
  for (const char* key : {GRPC_ARG_HTTP2_MAX_FRAME_SIZE, GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, GRPC_ARG_TCP_READ_CHUNK_SIZE,
                          GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, GRPC_ARG_KEEPALIVE_TIME_MS,
                          GRPC_ARG_KEEPALIVE_TIMEOUT_MS, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                          GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                          GRPC_ARG_HTTP2_MAX_PING_STRIKES}) {
    grpc_channel_args raw = a.c_channel_args();
    for (size_t i = 0; i < raw.num_args; ++i)
      if (std::string(raw.args[i].key) == key && raw.args[i].type == GRPC_ARG_INTEGER)
        b.AddChannelArgument(key, raw.args[i].value.integer);
  }
  server_ = b.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("the data service cannot listen on " + address);
}

DataServer::~DataServer() { Shutdown(); }

void DataServer::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    server_->Wait();
    server_.reset();
  }
  SetArea(nullptr, 0);
}

void DataServer::SetArea(uint8_t* base, uint64_t size) {
  std::unique_lock<std::shared_mutex> lk(area_->mu);
  area_->base = base;
  area_->size = base ? size : 0;
  ++area_->generation;
}

struct DataClient::Stub {
  std::shared_ptr<grpc::Channel> channel;
  grpc::GenericStub stub;
  explicit Stub(std::shared_ptr<grpc::Channel> c) : channel(c), stub(c) {}
};

DataClient::DataClient(const std::string& address, const std::string& token) : address_(address), token_(token) {
  grpc::ChannelArguments a;
  Tune(a);
  stub_ = std::make_unique<Stub>(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), a));
}

DataClient::~DataClient() = default;

void DataClient::Read(uint64_t offset, uint8_t* dst, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs) {
  Call c(stub_->stub, kRead, token_, deadlineMs);
  uint64_t f[3] = {offset, bytes, chunk};
  if (c.ok()) c.WriteLast(Bytes(WriteVarints(f, 3)));
  uint64_t got = 0;
  grpc::ByteBuffer bb;
  std::vector<grpc::Slice> keep;
  std::string bad;
  while (bad.empty() && c.Read(&bb)) {
    Parts parts = PartsOf(bb, keep);
    try {
      bad = ForEachBlock(parts, [&](uint64_t at, uint64_t len, SliceReader& r) -> std::string {
        if (at > bytes || len > bytes - at)
          return "a chunk at " + std::to_string(at) + " (" + std::to_string(len) + " bytes) lies outside the block";
        r.Copy(dst + at, len);
        got += len;
        return "";
      });
    } catch (const std::exception& e) {
      bad = std::string("malformed Block: ") + e.what();
    }
  }
  if (!bad.empty()) throw std::runtime_error("data path to " + address_ + ": " + bad);
  grpc::Status st = c.Finish();
  if (!st.ok()) Fail(address_, st);
  if (got != bytes)
    throw std::runtime_error("data path to " + address_ + ": read " + std::to_string(got) + " of " +
                             std::to_string(bytes) + " bytes");
}

void DataClient::Write(uint64_t offset, const uint8_t* src, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs) {
  if (chunk == 0) chunk = kDefaultChunk;
  Call c(stub_->stub, kWrite, token_, deadlineMs);
  for (uint64_t done = 0; c.ok() && done < bytes; done += chunk) {
    uint64_t n = std::min<uint64_t>(chunk, bytes - done);
    c.Write(BlockView(offset + done, src + done, n));
  }
  if (c.ok()) c.WritesDone();
  grpc::ByteBuffer reply;
  c.Read(&reply);
  grpc::Status st = c.Finish();
  if (!st.ok()) Fail(address_, st);
}

}  // namespace redblue::data
