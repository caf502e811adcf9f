#include "hosts/data_client.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <stdexcept>

#include "hosts/data_grpc.h"

namespace redblue::data {

using Deadline = std::chrono::system_clock::time_point;

// One Data.Pipe stream on a private completion queue, driven by the thread that uses it: each
// step waits for its own tag until the operation's deadline. Dropped (cancelled) once a step fails.
class Pipe {
 public:
  Pipe(grpc::GenericStub& stub, const std::string& token) {
    if (!token.empty()) ctx_.AddMetadata("authorization", "Bearer " + token);
    // The headers leave with the first request: no round trip of their own. A corked start
    // never returns its tag (gRPC joins it to the first write), so nothing waits for it.
    ctx_.set_initial_metadata_corked(true);
    rw_ = stub.PrepareCall(&ctx_, kPipe, &cq_);
    rw_->StartCall(nullptr);
  }
  ~Pipe() {
    ctx_.TryCancel();
    Drain();
    if (!finished_) {
      grpc::Status ignored;
      rw_->Finish(&ignored, Tag());
      Drain();
    }
    cq_.Shutdown();
    void* t;
    bool ok;
    while (cq_.Next(&t, &ok)) {
    }
  }
  bool Send(const grpc::ByteBuffer& bb, Deadline d) {
    void* t = Tag();
    rw_->Write(bb, t);
    return Wait(t, d);
  }
  bool Receive(grpc::ByteBuffer* bb, Deadline d) {
    void* t = Tag();
    rw_->Read(bb, t);
    return Wait(t, d);
  }
  // An operation's last request with the read of its first reply already posted: one wait for
  // both instead of one each (a wake-up less per operation).
  bool SendThenReceive(const grpc::ByteBuffer& out, grpc::ByteBuffer* in, Deadline d) {
    void* w = Tag();
    rw_->Write(out, w);
    void* r = Tag();
    rw_->Read(in, r);
    bool okW = false, okR = false;
    for (int seen = 0; seen < 2; ++seen) {
      void* t;
      bool ok = false;
      if (!Next(&t, &ok, d)) return false;
      if (t == w) okW = ok;
      if (t == r) okR = ok;
    }
    return okW && okR;
  }
  // Why the stream failed (after a step returned false).
  grpc::Status EndStatus(Deadline d) {
    if (timedOut_) return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
    grpc::Status st;
    void* t = Tag();
    rw_->Finish(&st, t);
    finished_ = true;
    // The stream has failed, so its status is due at once; a second of grace bounds a bad case.
    if (!Wait(t, std::max(d, std::chrono::system_clock::now() + std::chrono::seconds(1))))
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
    if (st.ok()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the peer ended the stream");
    return st;
  }
  bool timedOut() const { return timedOut_; }

 private:
  void* Tag() {
    ++pending_;
    return reinterpret_cast<void*>(++tag_);
  }
  // The next step that ended; false when the deadline passed first.
  bool Next(void** t, bool* ok, Deadline d) {
    auto st = cq_.AsyncNext(t, ok, d);
    if (st == grpc::CompletionQueue::TIMEOUT) timedOut_ = true;
    if (st != grpc::CompletionQueue::GOT_EVENT) return false;
    --pending_;
    return true;
  }
  // Waits for `want`; false when it failed or the deadline passed.
  bool Wait(void* want, Deadline d) {
    for (;;) {
      void* t;
      bool ok = false;
      if (!Next(&t, &ok, d)) return false;
      if (t == want) return ok;
    }
  }
  // Collects every step still in flight (after TryCancel, they all end soon).
  void Drain() {
    while (pending_ > 0) {
      void* t;
      bool ok;
      if (!cq_.Next(&t, &ok)) return;
      --pending_;
    }
  }
  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> rw_;
  uintptr_t tag_ = 0;
  int pending_ = 0;
  bool timedOut_ = false, finished_ = false;
};

namespace {

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

// What an operation on a pipe came to.
struct Outcome {
  bool broken = false;    // a step failed: the pipe is dropped and its status is the error
  bool replied = false;   // the peer answered (so the pipe was alive)
  std::string malformed;  // a reply that makes no sense: the pipe is dropped
  grpc::Status status;    // the operation's own status, from its last reply
};

// PipeRequest { read: ReadRequest { offset, bytes, chunk_bytes } }.
grpc::ByteBuffer ReadRequestMessage(uint64_t offset, uint64_t bytes, uint32_t chunk) {
  uint64_t f[3] = {offset, bytes, chunk};
  std::vector<uint8_t> inner = WriteVarints(f, 3);
  std::vector<uint8_t> out(11 + inner.size());
  size_t n = 0;
  out[n++] = 0x0a;
  n += PutVarint(out.data() + n, inner.size());
  std::memcpy(out.data() + n, inner.data(), inner.size());
  return Bytes(out.data(), n + inner.size());
}

// PipeRequest { fetch: FetchRequest { tag, from_host, follow } }.
grpc::ByteBuffer FetchRequestMessage(const std::string& tag, uint32_t fromHost, bool follow = false) {
  std::vector<uint8_t> inner(tag.size() + 24);
  size_t n = 0;
  inner[n++] = 0x0a;
  n += PutVarint(inner.data() + n, tag.size());
  std::memcpy(inner.data() + n, tag.data(), tag.size());
  n += tag.size();
  if (fromHost) {
    inner[n++] = 0x10;
    n += PutVarint(inner.data() + n, fromHost);
  }
  if (follow) {
    inner[n++] = 0x18;
    inner[n++] = 1;
  }
  std::vector<uint8_t> out(n + 11);
  size_t m = 0;
  out[m++] = 0x22;
  m += PutVarint(out.data() + m, n);
  std::memcpy(out.data() + m, inner.data(), n);
  return Bytes(out.data(), m + n);
}

// PipeRequest { write: Block { offset, data }, last } whose data is `src` itself, not a copy: the
// caller's bytes stay put until the write's reply, so until the peer has every byte.
grpc::ByteBuffer WriteChunkView(uint64_t offset, const uint8_t* src, uint64_t len, bool last) {
  uint8_t head[kMaxNestedBlockHeader];
  size_t h = NestedBlockHeader(head, 2, 3, last, offset, len);
  grpc::Slice parts[2] = {grpc::Slice(head, h), grpc::Slice(src, len, grpc::Slice::STATIC_SLICE)};
  return grpc::ByteBuffer(parts, len ? 2 : 1);
}

// The next reply of an operation (`first`: already received with the last request); false (and
// `o` says why) when there is none to use.
bool NextReply(Pipe& p, Deadline d, PipeReplyView& v, Outcome& o,
               const std::function<std::string(uint64_t, uint64_t, SliceReader&)>& data,
               grpc::ByteBuffer* first = nullptr) {
  grpc::ByteBuffer bb;
  if (first) {
    bb = std::move(*first);
  } else if (!p.Receive(&bb, d)) {
    o.broken = true;
    return false;
  }
  o.replied = true;
  std::vector<grpc::Slice> keep;
  Parts parts = PartsOf(bb, keep);
  try {
    WalkPipeReply(parts, v, data);
  } catch (const std::exception& e) {
    o.malformed = std::string("malformed PipeReply: ") + e.what();
  }
  return o.malformed.empty();
}

// Sends an operation's last request and takes its replies up to the one marked last (their data
// to `data`), which is left in `v`; false (and `o` says why) when there is no answer to use.
bool Exchange(Pipe& p, Deadline d, const grpc::ByteBuffer& request, Outcome& o, PipeReplyView& v,
              const std::function<std::string(uint64_t, uint64_t, SliceReader&)>& data) {
  grpc::ByteBuffer first;
  if (!p.SendThenReceive(request, &first, d)) {
    o.broken = true;
    return false;
  }
  if (!NextReply(p, d, v, o, data, &first)) return false;
  while (!v.last)
    if (!NextReply(p, d, v, o, data)) return false;
  o.status = grpc::Status(static_cast<grpc::StatusCode>(v.code), v.error);
  return true;
}

}  // namespace

struct DataClient::Stub {
  std::shared_ptr<grpc::Channel> channel;
  grpc::GenericStub stub;
  explicit Stub(std::shared_ptr<grpc::Channel> c) : channel(c), stub(c) {}
};

DataClient::DataClient(const std::string& address, const Credentials& creds)
    : address_(address), token_(creds.token) {
  KeepMallocArenas();
  grpc::ChannelArguments a;
  Tune(a);
  auto channelCreds = ChannelCredentialsFor(creds, a);
  stub_ = std::make_unique<Stub>(grpc::CreateCustomChannel(address, channelCreds, a));
}

DataClient::~DataClient() { idle_.clear(); }

bool DataClient::Connect(uint64_t deadlineMs) {
  return stub_->channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::milliseconds(deadlineMs));
}

// Runs `op(pipe, deadline) → Outcome` on an idle pipe (or a new one) and puts the pipe back
// when it is still good. A pipe that sat idle may have lost its connection (the peer restarted
// its data service): an operation that found it dead before any reply runs once more on a
// fresh pipe, which is safe as reads and writes of the same bytes can be repeated.
template <typename Op>
void DataClient::OnPipe(uint64_t deadlineMs, Op op) {
  Deadline d = std::chrono::system_clock::now() + std::chrono::milliseconds(deadlineMs);
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Pipe> p;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!idle_.empty()) {
        p = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    bool reused = p != nullptr;
    if (!p) p = std::make_unique<Pipe>(stub_->stub, token_);
    Outcome o = op(*p, d);
    if (!o.malformed.empty()) throw std::runtime_error("data path to " + address_ + ": " + o.malformed);
    if (o.broken) {
      grpc::Status st = p->EndStatus(d);
      bool retry = reused && !o.replied && !p->timedOut() && attempt == 0;
      p.reset();
      if (retry) continue;
      Fail(address_, st);
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (idle_.size() < 8) idle_.push_back(std::move(p));
    }
    if (!o.status.ok()) Fail(address_, o.status);
    return;
  }
}

template <typename Into>
void DataClient::ReadInto(uint64_t offset, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs, Into into) {
  OnPipe(deadlineMs, [&](Pipe& p, Deadline d) {
    Outcome o;
    uint64_t got = 0;
    auto data = [&](uint64_t at, uint64_t len, SliceReader& r) -> std::string {
      if (at > bytes || len > bytes - at)
        return "a chunk at " + std::to_string(at) + " (" + std::to_string(len) + " bytes) lies outside the block";
      std::string err = into(at, len, r);
      if (err.empty()) got += len;
      return err;
    };
    PipeReplyView v;
    if (!Exchange(p, d, ReadRequestMessage(offset, bytes, chunk), o, v, data)) return o;
    if (o.status.ok() && got != bytes)
      o.malformed = "read " + std::to_string(got) + " of " + std::to_string(bytes) + " bytes";
    return o;
  });
}

void DataClient::Read(uint64_t offset, uint8_t* dst, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs) {
  ReadInto(offset, bytes, chunk, deadlineMs, [&](uint64_t at, uint64_t len, SliceReader& r) -> std::string {
    r.Copy(dst + at, len);
    return "";
  });
}

void DataClient::ReadAdd(uint64_t offset, float* dst, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs) {
  if (bytes % 4 || chunk % 4) throw std::runtime_error("readAdd moves whole f32 values: bytes and chunk must be multiples of 4");
  ReadInto(offset, bytes, chunk, deadlineMs, [&](uint64_t at, uint64_t len, SliceReader& r) -> std::string {
    if (at % 4 || len % 4) return "a chunk at " + std::to_string(at) + " splits an f32 value";
    F32Adder add(dst + at / 4);
    r.Visit(len, [&](const uint8_t* q, size_t n) { add.Feed(q, n); });
    return "";
  });
}

std::vector<uint8_t> DataClient::Fetch(const std::string& tag, uint32_t fromHost, uint64_t deadlineMs) {
  if (tag.empty() || tag.size() > kMaxTag) throw std::runtime_error("a block tag has 1-200 characters");
  std::vector<uint8_t> block;
  OnPipe(deadlineMs, [&](Pipe& p, Deadline d) {
    Outcome o;
    block.clear();
    auto data = [&](uint64_t at, uint64_t len, SliceReader& r) -> std::string {
      if (at != block.size()) return "a chunk at " + std::to_string(at) + ", expected " + std::to_string(block.size());
      if (len > (uint64_t(1) << 32)) return "a chunk of " + std::to_string(len) + " bytes";
      block.resize(at + len);
      r.Copy(block.data() + at, len);
      return "";
    };
    PipeReplyView v;
    Exchange(p, d, FetchRequestMessage(tag, fromHost), o, v, data);
    return o;
  });
  return block;
}

void DataClient::Write(uint64_t offset, const uint8_t* src, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs) {
  if (chunk == 0) chunk = kDefaultChunk;
  OnPipe(deadlineMs, [&](Pipe& p, Deadline d) {
    Outcome o;
    uint64_t done = 0;
    for (; bytes - done > chunk; done += chunk) {
      if (!p.Send(WriteChunkView(offset + done, src + done, chunk, false), d)) {
        o.broken = true;
        return o;
      }
    }
    PipeReplyView v;
    auto noData = [](uint64_t, uint64_t, SliceReader&) -> std::string { return "a write's reply carries data"; };
    if (!Exchange(p, d, WriteChunkView(offset + done, src + done, bytes - done, true), o, v, noData)) return o;
    if (o.status.ok() && v.bytes != bytes)
      o.malformed = "wrote " + std::to_string(v.bytes) + " of " + std::to_string(bytes) + " bytes";
    return o;
  });
}

std::unique_ptr<DataClient::FetchStream> DataClient::OpenFetches() {
  return std::unique_ptr<FetchStream>(new FetchStream(*this));
}

DataClient::FetchStream::FetchStream(DataClient& client)
    : client_(client), pipe_(std::make_unique<Pipe>(client.stub_->stub, client.token_)) {}

DataClient::FetchStream::~FetchStream() = default;

void DataClient::FetchStream::Ask(const std::string& tag, uint32_t fromHost, uint64_t deadlineMs, bool follow) {
  if (broken_) throw std::runtime_error("data path to " + client_.address_ + ": the stream failed before");
  if (tag.empty() || tag.size() > kMaxTag) throw std::runtime_error("a block tag has 1-200 characters");
  Deadline d = std::chrono::system_clock::now() + std::chrono::milliseconds(deadlineMs);
  if (!pipe_->Send(FetchRequestMessage(tag, fromHost, follow), d)) {
    broken_ = true;
    Fail(client_.address_, pipe_->EndStatus(d));
  }
}

void DataClient::FetchStream::Take(uint8_t* dst, uint64_t bytes, uint64_t deadlineMs) {
  if (broken_) throw std::runtime_error("data path to " + client_.address_ + ": the stream failed before");
  Deadline d = std::chrono::system_clock::now() + std::chrono::milliseconds(deadlineMs);
  Outcome o;
  PipeReplyView v;
  uint64_t got = 0;
  auto data = [&](uint64_t at, uint64_t len, SliceReader& r) -> std::string {
    if (at > bytes || len > bytes - at)
      return "a block of more than the " + std::to_string(bytes) + " bytes expected";
    r.Copy(dst + at, len);
    got += len;
    return "";
  };
  do {
    if (!NextReply(*pipe_, d, v, o, data)) break;
  } while (!v.last);
  if (!o.malformed.empty()) {
    broken_ = true;
    throw std::runtime_error("data path to " + client_.address_ + ": " + o.malformed);
  }
  if (o.broken) {
    broken_ = true;
    Fail(client_.address_, pipe_->EndStatus(d));
  }
  grpc::Status st(static_cast<grpc::StatusCode>(v.code), v.error);
  if (!st.ok()) {
    broken_ = true;
    Fail(client_.address_, st);
  }
  if (got != bytes) {
    broken_ = true;
    throw std::runtime_error("data path to " + client_.address_ + ": a block of " + std::to_string(got) +
                             " bytes, expected " + std::to_string(bytes));
  }
}

}  // namespace redblue::data
