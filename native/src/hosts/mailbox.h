// The blocks a host leader puts out for its peers' all-gather (a layer stack across hosts): the
// supervisor posts its block under the run's tag, peers fetch it over the data path (Pipe), and a
// fetch that comes first waits for the post. Nothing here blocks a thread: a waiting fetch is a
// callback, called when the block is posted or the run or session ends.
#pragma once
#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace redblue::data {

class Mailbox {
 public:
  using Block = std::shared_ptr<const std::vector<uint8_t>>;
  // Called once, with the block or why there is none (never under the mailbox's lock).
  using Deliver = std::function<void(Block, grpc::Status)>;

  // Posts `tag`'s block, to be fetched by `readers` peers (then dropped). Waiting fetches get it now.
  void Post(const std::string& tag, std::vector<uint8_t> data, int readers);
  // Hands `tag`'s block to `deliver`, now (inline) or when it is posted.
  void Fetch(const std::string& tag, Deliver deliver);
  // A new run (`run`: the tag before its last ':'): every block and wait of another run ends
  // (waits with ABORTED).
  void ForgetOtherRuns(const std::string& run);
  // Everything ends (the session did): waits fail with `why`.
  void Clear(const grpc::Status& why);

 private:
  struct Box {
    Block data;
    int readers = 0, fetched = 0;
    std::vector<Deliver> waiting;
  };
  std::mutex mu_;
  std::map<std::string, Box> boxes_;
};

}  // namespace redblue::data
