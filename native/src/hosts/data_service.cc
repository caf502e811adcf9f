#include "hosts/data_service.h"

#include <grpc/slice.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "core/shared_file.h"
#include "hosts/data_grpc.h"
#include "hosts/mailbox.h"

namespace redblue::data {
namespace {

// A message of a header and `len` bytes at `src` owned by `owner` (the area's mapping, a
// mailbox block), not copied: the data slice holds a reference to the owner, released when
// gRPC is done with the slice.
template <typename T>
grpc::ByteBuffer Pinned(const uint8_t* head, size_t h, const std::shared_ptr<T>& owner, const uint8_t* src,
                        uint64_t len) {
  grpc::Slice parts[2] = {grpc::Slice(head, h), grpc::Slice()};
  if (len) {
    auto* ref = new std::shared_ptr<T>(owner);
    grpc_slice s = grpc_slice_new_with_user_data(
        const_cast<uint8_t*>(src), len, [](void* r) { delete static_cast<std::shared_ptr<T>*>(r); }, ref);
    parts[1] = grpc::Slice(s, grpc::Slice::STEAL_REF);
  }
  return grpc::ByteBuffer(parts, len ? 2 : 1);
}

bool SameToken(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

// A read of the area in chunks (Read, and a read on a Pipe): checked once, then each chunk sent
// from the mapping, as long as the area is the one the read started on.
class ReadOp {
 public:
  grpc::Status Start(Area& area, const uint64_t f[3]) {
    offset_ = f[0];
    left_ = f[1];
    done_ = 0;
    chunk_ = f[2] == 0 ? kDefaultChunk : f[2];
    if (chunk_ < 4096 || chunk_ > kMaxChunk)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "chunk_bytes must lie in 4096..4194304");
    std::shared_lock<std::shared_mutex> lk(area.mu);
    if (!area.base) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no staging area: call Stage first");
    if (offset_ > area.size || left_ > area.size - offset_)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "read: " + Range(offset_, left_, area.size));
    generation_ = area.generation;
    return grpc::Status::OK;
  }
  bool more() const { return left_ > 0; }
  // The next chunk as a message: `header(buf, offsetInRead, len, last)` writes its header.
  template <typename Header>
  grpc::Status Next(Area& area, grpc::ByteBuffer* out, Header header) {
    uint64_t n = std::min<uint64_t>(left_, chunk_);
    uint8_t head[kMaxNestedBlockHeader];
    size_t h = header(head, done_, n, n == left_);
    {
      std::shared_lock<std::shared_mutex> lk(area.mu);
      if (area.generation != generation_)
        return grpc::Status(grpc::StatusCode::ABORTED, "the staging area was replaced during the read");
      *out = Pinned(head, h, area.file, area.base + offset_ + done_, n);
    }
    done_ += n;
    left_ -= n;
    return grpc::Status::OK;
  }

 private:
  uint64_t offset_ = 0, left_ = 0, done_ = 0, generation_ = 0;
  uint32_t chunk_ = kDefaultChunk;
};

// A write into the area (Write, and a write on a Pipe): each chunk copied under the shared lock,
// as long as the area is the one the write started on.
class WriteOp {
 public:
  grpc::Status Start(Area& area) {
    bytes_ = 0;
    std::shared_lock<std::shared_mutex> lk(area.mu);
    if (!area.base) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no staging area: call Stage first");
    generation_ = area.generation;
    return grpc::Status::OK;
  }
  // The copy of one Block's data (a callback of ForEachBlock, WalkPipeRequest).
  std::string Apply(Area& area, uint64_t offset, uint64_t len, SliceReader& r) {
    std::shared_lock<std::shared_mutex> lk(area.mu);
    if (area.generation != generation_ || !area.base) {
      code_ = grpc::StatusCode::ABORTED;
      return "the staging area was replaced during the write";
    }
    if (offset > area.size || len > area.size - offset) {
      code_ = grpc::StatusCode::INVALID_ARGUMENT;
      return "write: " + Range(offset, len, area.size);
    }
    r.Copy(area.base + offset, len);
    bytes_ += len;
    return "";
  }
  // The status of a walk that returned `err` (Apply's, or a malformed message's).
  grpc::Status Result(const std::string& err) const { return err.empty() ? grpc::Status::OK : grpc::Status(code_, err); }
  uint64_t bytes() const { return bytes_; }

 private:
  uint64_t bytes_ = 0, generation_ = 0;
  grpc::StatusCode code_ = grpc::StatusCode::INVALID_ARGUMENT;
};

// Ends a call at once with a status (bad token, unknown method).
class Refuse : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refuse(grpc::Status s) { Finish(std::move(s)); }
  void OnDone() override { delete this; }
};

// Read(ReadRequest) returns (stream Block): chunks of the area.
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
    grpc::Status st = op_.Start(*area_, f);
    if (!st.ok()) return Finish(st);
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the reader went away"));
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    // An empty read still answers with one (empty) Block.
    if (!op_.more() && sent_any_) return Finish(grpc::Status::OK);
    grpc::Status st = op_.Next(*area_, &out_, [](uint8_t* p, uint64_t at, uint64_t n, bool) { return BlockHeader(p, at, n); });
    if (!st.ok()) return Finish(st);
    sent_any_ = true;
    StartWrite(&out_);
  }
  std::shared_ptr<Area> area_;
  grpc::ByteBuffer in_, out_;
  ReadOp op_;
  bool sent_any_ = false;
};

// Write(stream Block) returns (WriteReply): each block copied into the area.
class WriteCall : public grpc::ServerGenericBidiReactor {
 public:
  explicit WriteCall(std::shared_ptr<Area> area) : area_(std::move(area)) {
    grpc::Status st = op_.Start(*area_);
    if (!st.ok()) {
      Finish(st);
      return;
    }
    StartRead(&in_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      uint64_t f[1] = {op_.bytes()};
      out_ = Bytes(WriteVarints(f, 1));
      return StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
    }
    std::vector<grpc::Slice> keep;
    Parts parts = PartsOf(in_, keep);
    std::string err;
    try {
      err = ForEachBlock(parts, [&](uint64_t at, uint64_t len, SliceReader& r) { return op_.Apply(*area_, at, len, r); });
    } catch (const std::exception& e) {
      return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string("Block: ") + e.what()));
    }
    if (!err.empty()) return Finish(op_.Result(err));
    StartRead(&in_);
  }
  void OnWriteDone(bool) override {}
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<Area> area_;
  grpc::ByteBuffer in_, out_;
  WriteOp op_;
};

// Pipe(stream PipeRequest) returns (stream PipeReply): reads and writes one after another. A
// failed operation is answered with its status and the stream goes on; a malformed message ends
// the stream.
class PipeCall : public grpc::ServerGenericBidiReactor {
 public:
  PipeCall(std::shared_ptr<Area> area, std::shared_ptr<Mailbox> mailbox)
      : area_(std::move(area)), mailbox_(std::move(mailbox)) {
    StartRead(&in_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // the client closed its side, or went away
    std::vector<grpc::Slice> keep;
    Parts parts = PartsOf(in_, keep);
    PipeRequestView v;
    try {
      WalkPipeRequest(parts, v, [&](uint64_t at, uint64_t len, SliceReader& r) -> std::string {
        if (!writing_) {
          writing_ = true;
          writeStatus_ = write_.Start(*area_);
        }
        if (writeStatus_.ok()) {
          std::string err = write_.Apply(*area_, at, len, r);
          if (err.empty()) return "";
          writeStatus_ = write_.Result(err);
        }
        r.Copy(nullptr, len);  // the write failed: the rest of its chunks is dropped
        return "";
      });
    } catch (const std::exception& e) {
      return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string("PipeRequest: ") + e.what()));
    }
    if (v.kinds() != 1)
      return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a PipeRequest is a read, a write or a fetch"));
    if ((v.read || v.fetch) && writing_)
      return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a read in the middle of a write"));
    if (v.fetch) {
      if (v.follow) {
        // "run:N": then "run:N+1", … each fetched once the one before has gone out.
        size_t colon = v.fetchTag.rfind(':');
        const char* digits = colon == std::string::npos ? "" : v.fetchTag.c_str() + colon + 1;
        char* end = nullptr;
        errno = 0;
        unsigned long long seq = std::strtoull(digits, &end, 10);
        if (!*digits || *digits < '0' || *digits > '9' || *end || errno == ERANGE)
          return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "a followed fetch's tag ends in ':<sequence number>', got " + v.fetchTag));
        followRun_ = v.fetchTag.substr(0, colon + 1);
        followNext_ = seq + 1;
        following_ = true;
      }
      return Fetch(v.fetchTag);
    }
    if (v.read) {
      grpc::Status st = read_.Start(*area_, v.readFields);
      if (!st.ok()) return Reply(PipeDone(0, st));
      reading_ = true;
      return NextChunk();
    }
    if (!writing_) {  // a chunk without data (an empty write)
      writing_ = true;
      writeStatus_ = write_.Start(*area_);
    }
    if (!v.last) return StartRead(&in_);
    writing_ = false;
    Reply(PipeDone(write_.bytes(), writeStatus_));
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    if (reading_) return NextChunk();
    if (block_) return NextBlockChunk();
    AfterReply();
  }
  void OnDone() override { delete this; }

 private:
  // Answered now, or from the thread that posts the block (or ends the run): until then this
  // call has nothing in flight, so it stays as it is.
  void Fetch(const std::string& tag) {
    mailbox_->Fetch(tag, [this](Mailbox::Block b, grpc::Status st) { Fetched(std::move(b), st); });
  }
  void Fetched(Mailbox::Block b, const grpc::Status& st) {
    if (!st.ok()) {
      following_ = false;
      return Reply(PipeDone(0, st));
    }
    if (b->empty()) return Reply(PipeDone(0, grpc::Status::OK));
    block_ = std::move(b);
    blockDone_ = 0;
    NextBlockChunk();
  }
  // A reply has gone out: the next block of a followed run (a followed call reads no more
  // requests, so every reply it sends answers the fetch), or the next request.
  void AfterReply() {
    if (following_) return Fetch(followRun_ + std::to_string(followNext_++));
    StartRead(&in_);
  }
  // The next chunk of a fetched block, sent from the block itself.
  void NextBlockChunk() {
    if (blockDone_ == block_->size()) {
      block_.reset();
      return AfterReply();
    }
    uint64_t n = std::min<uint64_t>(block_->size() - blockDone_, kDefaultChunk);
    uint8_t head[kMaxNestedBlockHeader];
    size_t h = NestedBlockHeader(head, 1, 2, blockDone_ + n == block_->size(), blockDone_, n);
    out_ = Pinned(head, h, block_, block_->data() + blockDone_, n);
    blockDone_ += n;
    StartWrite(&out_);
  }
  void Reply(grpc::ByteBuffer bb) {
    out_ = std::move(bb);
    StartWrite(&out_);
  }
  void NextChunk() {
    if (!read_.more()) {
      reading_ = false;
      if (!sentLast_) return Reply(PipeDone(0, grpc::Status::OK));  // an empty read
      sentLast_ = false;
      return StartRead(&in_);
    }
    grpc::Status st = read_.Next(*area_, &out_, [&](uint8_t* p, uint64_t at, uint64_t n, bool last) {
      sentLast_ = last;
      return NestedBlockHeader(p, 1, 2, last, at, n);
    });
    if (!st.ok()) {
      reading_ = false;
      sentLast_ = false;
      return Reply(PipeDone(0, st));
    }
    StartWrite(&out_);
  }
  std::shared_ptr<Area> area_;
  std::shared_ptr<Mailbox> mailbox_;
  grpc::ByteBuffer in_, out_;
  ReadOp read_;
  WriteOp write_;
  grpc::Status writeStatus_;
  bool reading_ = false, writing_ = false, sentLast_ = false;
  Mailbox::Block block_;  // a fetched block being sent
  uint64_t blockDone_ = 0;
  // A followed run: every block from followRun_ + followNext_ on is sent unasked.
  bool following_ = false;
  std::string followRun_;
  uint64_t followNext_ = 0;
};

class Service : public grpc::CallbackGenericService {
 public:
  Service(std::shared_ptr<Area> area, std::shared_ptr<Mailbox> mailbox, std::string token)
      : area_(std::move(area)), mailbox_(std::move(mailbox)), token_(std::move(token)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    if (!token_.empty()) {
      std::string got;
      auto it = ctx->client_metadata().find("authorization");
      if (it != ctx->client_metadata().end()) got.assign(it->second.data(), it->second.size());
      if (!SameToken(got, "Bearer " + token_))
        return new Refuse(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unauthenticated: missing or wrong token"));
    }
    if (ctx->method() == kPipe) return new PipeCall(area_, mailbox_);
    if (ctx->method() == kRead) return new ReadCall(area_);
    if (ctx->method() == kWrite) return new WriteCall(area_);
    return new Refuse(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no method " + ctx->method()));
  }

 private:
  std::shared_ptr<Area> area_;
  std::shared_ptr<Mailbox> mailbox_;
  std::string token_;
};

}  // namespace

DataServer::DataServer(const std::string& address, const Credentials& creds)
    : area_(std::make_shared<Area>()),
      mailbox_(std::make_shared<Mailbox>()),
      service_(std::make_unique<Service>(area_, mailbox_, creds.token)) {
  KeepMallocArenas();
  grpc::ServerBuilder b;
  b.AddListeningPort(address, ServerCredentialsFor(creds), &port_);
  b.RegisterCallbackGenericService(service_.get());
  grpc::ChannelArguments a;
  Tune(a);
  b.SetMaxReceiveMessageSize(kMaxMessage);
  b.SetMaxSendMessageSize(kMaxMessage);
  // A port already served by another process is an error, not a share (gRPC's default).
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
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
  if (!server_ || port_ == 0)
    throw std::runtime_error("the data service cannot listen on " + address +
                             " (is the port taken? --data-port picks another, 0 any free one)");
}

DataServer::~DataServer() { Shutdown(); }

void DataServer::Shutdown() {
  // Fetches waiting for a block end first: a call with nothing in flight would hold up shutdown.
  mailbox_->Clear(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the host is stopping"));
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    server_->Wait();
    server_.reset();
  }
  SetArea("");
}

void DataServer::SetArea(const std::string& name, size_t bytes) {
  // Mapped before the lock is taken: calls in flight go on meanwhile.
  auto file = name.empty() ? nullptr : std::make_shared<SharedFile>(name, bytes, false);
  std::shared_ptr<SharedFile> old;
  {
    std::unique_lock<std::shared_mutex> lk(area_->mu);
    old = std::move(area_->file);
    area_->file = file;
    area_->base = file ? static_cast<uint8_t*>(file->data()) : nullptr;
    area_->size = file ? file->size() : 0;
    ++area_->generation;
  }
  // `old` is unmapped here unless chunks of it are still on their way.
}

}  // namespace redblue::data
