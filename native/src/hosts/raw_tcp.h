// A plain TCP socket, the reference the gRPC data path is measured against (bench transport):
// a server that answers "send me N bytes" (8 bytes, little-endian) with N bytes, or, with the top
// bit of the 8 bytes set, takes the N bytes that follow and answers with 8; and a client that
// sends and receives straight from and into its buffer. No framing, no copies beyond the kernel's.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace redblue::data {

class RawTcpServer {
 public:
  RawTcpServer(const std::string& host, int port);  // port 0 picks one
  ~RawTcpServer();
  int port() const { return port_; }

 private:
  void Serve(int fd);
  int listen_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> conns_;
};

// Connects, asks for `bytes` `reps + 1` times (the first is a warm-up), and returns the seconds
// the last `reps` took.
double RawTcpFetch(const std::string& host, int port, uint64_t bytes, int reps);
// The same, sending `bytes` to the server each time (the direction of a write).
double RawTcpPush(const std::string& host, int port, uint64_t bytes, int reps);

}  // namespace redblue::data
