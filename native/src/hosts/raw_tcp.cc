#include "hosts/raw_tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace redblue::data {
namespace {

sockaddr_in Address(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1)
    throw std::runtime_error("raw tcp: " + host + " is not an IPv4 address");
  return a;
}

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool RecvAll(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

RawTcpServer::RawTcpServer(const std::string& host, int port) {
  listen_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = Address(host, port);
  if (bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listen_, 8) != 0) {
    int e = errno;
    close(listen_);
    throw std::runtime_error("raw tcp: cannot listen on " + host + ":" + std::to_string(port) + ": " + strerror(e));
  }
  socklen_t len = sizeof a;
  getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] {
    while (!stop_) {
      pollfd p{listen_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      NoDelay(fd);
      conns_.emplace_back([this, fd] { Serve(fd); });
    }
  });
}

constexpr uint64_t kPush = uint64_t(1) << 63;

void RawTcpServer::Serve(int fd) {
  std::vector<char> block(64u << 20, 7);
  uint64_t want = 0;
  while (!stop_ && RecvAll(fd, reinterpret_cast<char*>(&want), 8)) {
    if (want & kPush) {
      for (uint64_t left = want & ~kPush; left > 0;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, block.size()));
        if (!RecvAll(fd, block.data(), n)) break;
        left -= n;
      }
      if (!SendAll(fd, reinterpret_cast<const char*>(&want), 8)) break;
      continue;
    }
    while (want > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(want, block.size()));
      if (!SendAll(fd, block.data(), n)) break;
      want -= n;
    }
  }
  close(fd);
}

RawTcpServer::~RawTcpServer() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  shutdown(listen_, SHUT_RDWR);
  close(listen_);
  for (auto& t : conns_) t.detach();  // each ends when its peer closes
}

namespace {

double RawTcpMove(const std::string& host, int port, uint64_t bytes, int reps, bool push) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Address(host, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error("raw tcp: cannot connect to " + host + ":" + std::to_string(port) + ": " + strerror(e));
  }
  NoDelay(fd);
  std::vector<char> buf(static_cast<size_t>(std::max<uint64_t>(bytes, 8)), 3);
  uint64_t head = push ? bytes | kPush : bytes;
  auto once = [&] {
    bool ok = SendAll(fd, reinterpret_cast<const char*>(&head), 8) &&
              (push ? SendAll(fd, buf.data(), bytes) && RecvAll(fd, buf.data(), 8) : RecvAll(fd, buf.data(), bytes));
    if (!ok) {
      close(fd);
      throw std::runtime_error("raw tcp: the connection to " + host + " broke");
    }
  };
  once();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) once();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(fd);
  return s;
}

}  // namespace

double RawTcpFetch(const std::string& host, int port, uint64_t bytes, int reps) {
  return RawTcpMove(host, port, bytes, reps, false);
}

double RawTcpPush(const std::string& host, int port, uint64_t bytes, int reps) {
  return RawTcpMove(host, port, bytes, reps, true);
}

}  // namespace redblue::data
