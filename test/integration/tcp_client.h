// A TCP client of the echo workload (ckpt_tcp_echo) that checks every
// byte, and the network lock's table, for the tests of established TCP.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "test/integration/harness.h"

namespace harness {

// The network lock table of the tree rooted at `pid` exists.
inline bool net_lock_exists(pid_t pid) {
  return run({"/usr/sbin/nft", "list", "table", "inet", "crtools-" + std::to_string(pid)}).status == 0;
}

// One connection to the echo server; byte i of the stream is stream_byte(i).
class EchoClient {
 public:
  explicit EchoClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~EchoClient() {
    if (fd_ >= 0) close(fd_);
  }
  static uint8_t stream_byte(uint64_t i) { return static_cast<uint8_t>(i * 131 + (i >> 9) + 7); }
  // Queue n more bytes (they fit in the socket buffers: a frozen or
  // restored server may not read for a while).
  void send_n(size_t n) {
    std::vector<uint8_t> b(n);
    for (size_t i = 0; i < n; i++) b[i] = stream_byte(sent_ + i);
    size_t off = 0;
    while (off < n) {
      ssize_t w = send(fd_, b.data() + off, n - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      REQUIRE_MESSAGE(w > 0, "send: ", strerror(errno));
      off += static_cast<size_t>(w);
    }
    sent_ += n;
  }
  // Read the echo of everything sent so far, checking each byte; "" or
  // what went wrong.
  std::string receive_all(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    std::vector<uint8_t> b(1 << 16);
    while (got_ < sent_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "timed out after " + std::to_string(got_) + " of " + std::to_string(sent_) + " bytes";
      struct pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      ssize_t r = recv(fd_, b.data(), std::min<uint64_t>(b.size(), sent_ - got_), MSG_DONTWAIT);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0)
        return (r == 0 ? std::string("end of file") : std::string(strerror(errno))) + " after " +
               std::to_string(got_) + " of " + std::to_string(sent_) + " bytes";
      for (ssize_t i = 0; i < r; i++)
        if (b[i] != stream_byte(got_ + i))
          return "byte " + std::to_string(got_ + i) + " of the echo differs";
      got_ += static_cast<uint64_t>(r);
    }
    return "";
  }
  void close_now() {
    close(fd_);
    fd_ = -1;
  }
  uint64_t sent() const { return sent_; }

 private:
  int fd_ = -1;
  uint64_t sent_ = 0, got_ = 0;
};

// n more bytes sent and their echo read back: "" or what went wrong.
inline std::string echo_round(EchoClient& c, size_t n) {
  c.send_n(n);
  return c.receive_all();
}

}  // namespace harness
