// Validation of the inet socket records in files.img: a good set (TCP
// listeners IPv4, IPv6 and dual-stack, an established connection with both
// queues, UDP bound and connected) passes; each rule refuses one broken
// field. Also the network lock's nft script.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <functional>

#include "common/image/task_images.h"
#include "common/net_lock.h"

using namespace cr;

namespace {

InetSocketRec sock(uint64_t id, int family, int type, const char* state, const char* addr, uint32_t port) {
  InetSocketRec s;
  s.file_id = id;
  s.ino = 2000 + id;
  s.family = family;
  s.type = type;
  s.state = state;
  s.local_addr = addr;
  s.local_port = port;
  s.sndbuf = 16384;
  s.rcvbuf = 131072;
  return s;
}

// 1 TCP v4 listener, 2 TCP v6 listener (v6only), 3 dual-stack listener,
// 4 an established connection accepted from 1, 5 UDP v4 bound, 6 UDP v6
// connected, 7 an unbound TCP socket.
Files good_files() {
  Files f;
  for (uint64_t id = 1; id <= 7; id++) {
    FileRec r;
    r.id = id;
    r.type = "inet";
    f.files.push_back(r);
  }
  InetSocketRec l4 = sock(1, AF_INET, SOCK_STREAM, "listening", "127.0.0.1", 8080);
  l4.backlog = 128;
  l4.reuseaddr = true;
  l4.keepalive = true;
  l4.keepidle = 300;
  l4.keepintvl = 75;
  l4.keepcnt = 9;
  InetSocketRec l6 = sock(2, AF_INET6, SOCK_STREAM, "listening", "::1", 8081);
  l6.backlog = 5;
  l6.v6only = true;
  InetSocketRec d = sock(3, AF_INET6, SOCK_STREAM, "listening", "::", 8082);
  d.backlog = 3;
  InetSocketRec e = sock(4, AF_INET, SOCK_STREAM, "established", "127.0.0.1", 8080);
  e.peer_addr = "127.0.0.1";
  e.peer_port = 40000;
  e.tcp_snd_seq = 1000;
  e.tcp_rcv_seq = 2000;
  e.tcp_send_queue = Bytes{{'a', 'b', 'c', 'd'}};
  e.tcp_unsent = 2;
  e.tcp_recv_queue = Bytes{{'x'}};
  e.tcp_mss = 65483;
  e.tcp_options = 7;
  e.tcp_snd_wscale = 7;
  e.tcp_rcv_wscale = 7;
  e.tcp_timestamp = 12345;
  e.tcp_snd_wnd = e.tcp_rcv_wnd = e.tcp_max_window = 65536;
  InetSocketRec u4 = sock(5, AF_INET, SOCK_DGRAM, "unconnected", "0.0.0.0", 5353);
  InetSocketRec u6 = sock(6, AF_INET6, SOCK_DGRAM, "connected", "::1", 40001);
  u6.peer_addr = "::1";
  u6.peer_port = 53;
  InetSocketRec n = sock(7, AF_INET, SOCK_STREAM, "unconnected", "0.0.0.0", 0);
  f.inet_sockets = {l4, l6, d, e, u4, u6, n};
  return f;
}

FdTable good_table() {
  FdTable t;
  t.pid = 100;
  for (int i = 1; i <= 7; i++) t.fds.push_back({10 + i, false, static_cast<uint64_t>(i)});
  return t;
}

std::string refusal(const Files& f) {
  auto st = validate_files(f, good_table(), "fdinfo-100.img");
  return st ? std::string() : st.error().str();
}

void refused(const std::function<void(Files&)>& change, const std::string& says) {
  Files f = good_files();
  change(f);
  std::string r = refusal(f);
  CAPTURE(says);
  CAPTURE(r);
  CHECK(r.find(says) != std::string::npos);
}

InetSocketRec& rec(Files& f, uint64_t id) {
  for (auto& s : f.inet_sockets)
    if (s.file_id == id) return s;
  throw std::runtime_error("no such record");
}

}  // namespace

TEST_CASE("inet sockets: a good set passes") {
  CHECK(refusal(good_files()) == "");
  CHECK(has_established_tcp(good_files()));
}

TEST_CASE("inet sockets: records match the files of type inet") {
  refused([](Files& f) { f.inet_sockets.push_back(rec(f, 1)); }, "two inet socket records");
  refused([](Files& f) { f.inet_sockets.erase(f.inet_sockets.begin()); }, "inet socket 1 has no record");
  refused([](Files& f) { rec(f, 1).file_id = 77; }, "which is no inet socket");
}

TEST_CASE("inet sockets: family, type and state") {
  refused([](Files& f) { rec(f, 1).family = AF_UNIX; }, "unknown family");
  refused([](Files& f) { rec(f, 1).type = SOCK_RAW; }, "unknown type");
  refused([](Files& f) { rec(f, 1).state = "syn-sent"; }, "unknown state");
  refused([](Files& f) { rec(f, 5).state = "listening"; }, "a UDP socket cannot listen");
  refused([](Files& f) { rec(f, 7).state = "connected"; }, "a TCP socket is established, not connected");
  refused([](Files& f) { rec(f, 1).v6only = false, rec(f, 4).v6only = true; }, "IPV6_V6ONLY on an IPv4 socket");
  refused([](Files& f) { rec(f, 5).nodelay = true; }, "TCP options on a UDP socket");
  refused([](Files& f) { rec(f, 5).sndbuf = -1; }, "bad buffer size");
  refused([](Files& f) { rec(f, 5).keepidle = 60; }, "TCP options on a UDP socket");
  refused([](Files& f) { rec(f, 1).keepidle = 40000; }, "keepalive setting out of range");
  refused([](Files& f) { rec(f, 1).keepcnt = 128; }, "keepalive setting out of range");
  refused([](Files& f) { rec(f, 1).keepintvl = -1; }, "keepalive setting out of range");
}

TEST_CASE("inet sockets: addresses and ports") {
  refused([](Files& f) { rec(f, 1).local_addr = "::1"; }, "bad local address");
  refused([](Files& f) { rec(f, 2).local_addr = "127.0.0.1"; }, "bad local address");
  refused([](Files& f) { rec(f, 1).local_addr = "localhost"; }, "bad local address");
  refused([](Files& f) { rec(f, 1).local_port = 70000; }, "port out of range");
  refused([](Files& f) { rec(f, 1).local_port = 0; }, "listening without a port");
  refused([](Files& f) { rec(f, 4).peer_addr = ""; }, "connected without a peer address");
  refused([](Files& f) { rec(f, 6).peer_port = 0; }, "connected without a peer address");
  refused([](Files& f) { rec(f, 6).local_port = 0; }, "connected without a local port");
  refused([](Files& f) { rec(f, 5).peer_addr = "127.0.0.1"; }, "a peer address without being connected");
  refused([](Files& f) { rec(f, 5).backlog = 4; }, "a backlog without listening");
  refused([](Files& f) { rec(f, 1).backlog = 1u << 30; }, "backlog out of range");
}

TEST_CASE("inet sockets: established TCP state") {
  refused([](Files& f) { rec(f, 4).tcp_unsent = 5; }, "more unsent bytes than its send queue holds");
  refused([](Files& f) { rec(f, 4).tcp_send_queue = Bytes{std::vector<uint8_t>(kMaxTcpQueueBytes + 1)}; },
          "queue too large");
  refused([](Files& f) { rec(f, 4).tcp_options = 8; }, "unknown TCP options");
  refused([](Files& f) { rec(f, 4).tcp_snd_wscale = 15; }, "window scale above 14");
  refused([](Files& f) { rec(f, 4).tcp_options = 3; }, "window scale without the window scale option");
  refused([](Files& f) { rec(f, 4).tcp_mss = 0; }, "bad MSS");
  refused([](Files& f) { rec(f, 1).tcp_snd_seq = 5; }, "TCP connection state without an established connection");
  refused([](Files& f) { rec(f, 5).tcp_recv_queue = Bytes{{'x'}}; },
          "TCP connection state without an established connection");
}

TEST_CASE("net lock: the nft script drops exactly the connections' 4-tuples, both ways") {
  std::string s = net_lock_script(42, {{AF_INET, "127.0.0.1", "127.0.0.2", 8080, 40000},
                                       {AF_INET6, "::ffff:10.0.0.1", "::ffff:10.0.0.2", 1, 2},
                                       {AF_INET6, "::1", "::1", 3, 4}});
  CAPTURE(s);
  CHECK(net_lock_table(42) == "crtools-42");
  CHECK(s.find("table inet crtools-42 {") == 0);
  CHECK(s.find("hook input priority -300") != std::string::npos);
  CHECK(s.find("hook output priority -300") != std::string::npos);
  CHECK(s.find("add rule inet crtools-42 input ip saddr 127.0.0.1 tcp sport 8080 ip daddr 127.0.0.2 tcp dport 40000 drop") !=
        std::string::npos);
  CHECK(s.find("add rule inet crtools-42 output ip saddr 127.0.0.2 tcp sport 40000 ip daddr 127.0.0.1 tcp dport 8080 drop") !=
        std::string::npos);
  // An IPv4-mapped address travels as IPv4.
  CHECK(s.find("ip saddr 10.0.0.1 tcp sport 1 ip daddr 10.0.0.2 tcp dport 2 drop") != std::string::npos);
  CHECK(s.find("ip6 saddr ::1 tcp sport 3 ip6 daddr ::1 tcp dport 4 drop") != std::string::npos);
  CHECK(s.find("ip6 saddr ::ffff") == std::string::npos);
}
