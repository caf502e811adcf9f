#include "hosts/mailbox.h"

#include <utility>

namespace redblue::data {
namespace {

// The run a tag belongs to: "run:layer" → "run".
std::string RunOf(const std::string& tag) {
  size_t colon = tag.rfind(':');
  return colon == std::string::npos ? tag : tag.substr(0, colon);
}

// Bounds what a misbehaving peer can make a host hold.
constexpr size_t kMaxBoxes = 4096;
constexpr size_t kMaxWaiting = 256;

}  // namespace

void Mailbox::Post(const std::string& tag, std::vector<uint8_t> data, int readers) {
  auto block = std::make_shared<const std::vector<uint8_t>>(std::move(data));
  std::vector<Deliver> now;
  {
    std::lock_guard<std::mutex> lk(mu_);
    Box& b = boxes_[tag];
    b.data = block;
    b.readers = readers;
    now.swap(b.waiting);
    b.fetched += static_cast<int>(now.size());
    if (b.fetched >= b.readers) boxes_.erase(tag);
  }
  for (auto& d : now) d(block, grpc::Status::OK);
}

void Mailbox::Fetch(const std::string& tag, Deliver deliver) {
  Block block;
  grpc::Status refused;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = boxes_.find(tag);
    if (it == boxes_.end() && boxes_.size() >= kMaxBoxes) {
      refused = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many pending exchanges");
    } else {
      Box& b = it == boxes_.end() ? boxes_[tag] : it->second;
      if (b.data) {
        block = b.data;
        if (++b.fetched >= b.readers) boxes_.erase(tag);
      } else if (b.waiting.size() >= kMaxWaiting) {
        refused = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many fetches wait for block " + tag);
      } else {
        b.waiting.push_back(std::move(deliver));
        return;
      }
    }
  }
  deliver(block, refused);
}

void Mailbox::ForgetOtherRuns(const std::string& run) {
  std::vector<Deliver> ended;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = boxes_.begin(); it != boxes_.end();) {
      if (RunOf(it->first) == run) {
        ++it;
        continue;
      }
      for (auto& d : it->second.waiting) ended.push_back(std::move(d));
      it = boxes_.erase(it);
    }
  }
  grpc::Status why(grpc::StatusCode::ABORTED, "run " + run + " replaced an earlier run");
  for (auto& d : ended) d(nullptr, why);
}

void Mailbox::Clear(const grpc::Status& why) {
  std::vector<Deliver> ended;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [tag, b] : boxes_)
      for (auto& d : b.waiting) ended.push_back(std::move(d));
    boxes_.clear();
  }
  for (auto& d : ended) d(nullptr, why);
}

}  // namespace redblue::data
