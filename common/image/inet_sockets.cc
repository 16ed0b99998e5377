// Validation of the inet socket records of files.img
// (common/image/inet_sockets.h).
#include "common/image/inet_sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <map>
#include <set>

#include "common/image/files.h"

namespace cr {

namespace {
unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

bool valid_addr(int32_t family, const std::string& a) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(family, a.c_str(), buf) == 1;
}
}  // namespace

std::string inet_kind_name(int32_t family, int32_t type) {
  std::string s = type == SOCK_STREAM ? "tcp" : type == SOCK_DGRAM ? "udp" : "inet";
  return family == AF_INET6 ? s + "6" : s;
}

std::string inet_endpoint(int32_t family, const std::string& addr, uint32_t port) {
  if (family == AF_INET6) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

bool has_established_tcp(const Files& files) {
  for (auto& s : files.inet_sockets)
    if (s.state == "established") return true;
  return false;
}

Status validate_inet_sockets(const Files& files, uint64_t* bad_id) {
  std::set<uint64_t> inet_files;
  for (auto& f : files.files)
    if (f.type == "inet") inet_files.insert(f.id);
  std::set<uint64_t> seen;
  for (auto& s : files.inet_sockets) {
    if (!inet_files.count(s.file_id))
      return make_error("files.img: inet socket record for file %llu, which is no inet socket", ull(s.file_id));
    if (!seen.insert(s.file_id).second)
      return make_error("files.img: file %llu: two inet socket records", ull(s.file_id));
  }
  for (uint64_t id : inet_files)
    if (!seen.count(id)) return make_error("files.img: inet socket %llu has no record", ull(id));
  auto bad = [&](const InetSocketRec& s, const char* what) {
    if (bad_id) *bad_id = s.file_id;
    return make_error("files.img: inet socket %llu: %s", ull(s.file_id), what);
  };
  for (auto& s : files.inet_sockets) {
    if (s.family != AF_INET && s.family != AF_INET6) return bad(s, "unknown family");
    if (s.type != SOCK_STREAM && s.type != SOCK_DGRAM) return bad(s, "unknown type (neither TCP nor UDP)");
    bool tcp = s.type == SOCK_STREAM;
    if (s.state != "unconnected" && s.state != "listening" && s.state != "connected" && s.state != "established")
      return bad(s, "unknown state");
    if (tcp && s.state == "connected") return bad(s, "a TCP socket is established, not connected");
    if (!tcp && (s.state == "listening" || s.state == "established")) return bad(s, "a UDP socket cannot listen or be established");
    if (!valid_addr(s.family, s.local_addr)) return bad(s, "bad local address");
    if (s.local_port > 65535 || s.peer_port > 65535) return bad(s, "port out of range");
    bool peer = s.state == "connected" || s.state == "established";
    if (peer) {
      if (!valid_addr(s.family, s.peer_addr) || s.peer_port == 0) return bad(s, "connected without a peer address");
      if (s.local_port == 0) return bad(s, "connected without a local port");
    } else if (!s.peer_addr.empty() || s.peer_port) {
      return bad(s, "a peer address without being connected");
    }
    if (s.state == "listening" && s.local_port == 0) return bad(s, "listening without a port");
    if (s.state != "listening" && s.backlog) return bad(s, "a backlog without listening");
    if (s.backlog > (1u << 20)) return bad(s, "backlog out of range");
    if (s.family == AF_INET && s.v6only) return bad(s, "IPV6_V6ONLY on an IPv4 socket");
    if (!tcp && (s.nodelay || s.keepalive || s.keepidle || s.keepintvl || s.keepcnt))
      return bad(s, "TCP options on a UDP socket");
    // The kernel's bounds (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT).
    if (s.keepidle < 0 || s.keepidle > 32767 || s.keepintvl < 0 || s.keepintvl > 32767 || s.keepcnt < 0 ||
        s.keepcnt > 127)
      return bad(s, "keepalive setting out of range");
    if (s.sndbuf < 0 || s.rcvbuf < 0) return bad(s, "bad buffer size");
    if (s.state == "established") {
      if (s.tcp_send_queue.size() > kMaxTcpQueueBytes || s.tcp_recv_queue.size() > kMaxTcpQueueBytes)
        return bad(s, "queue too large");
      if (s.tcp_unsent > s.tcp_send_queue.size()) return bad(s, "more unsent bytes than its send queue holds");
      if (s.tcp_options & ~7u) return bad(s, "unknown TCP options");
      if (s.tcp_snd_wscale > kMaxTcpWscale || s.tcp_rcv_wscale > kMaxTcpWscale) return bad(s, "window scale above 14");
      if (!(s.tcp_options & 4) && (s.tcp_snd_wscale || s.tcp_rcv_wscale))
        return bad(s, "window scale without the window scale option");
      if (s.tcp_mss == 0 || s.tcp_mss > 65535) return bad(s, "bad MSS");
    } else if (s.tcp_snd_seq || s.tcp_rcv_seq || !s.tcp_send_queue.empty() || s.tcp_unsent ||
               !s.tcp_recv_queue.empty() || s.tcp_mss || s.tcp_options || s.tcp_snd_wscale || s.tcp_rcv_wscale ||
               s.tcp_timestamp || s.tcp_snd_wl1 || s.tcp_snd_wnd || s.tcp_max_window || s.tcp_rcv_wnd ||
               s.tcp_rcv_wup) {
      return bad(s, "TCP connection state without an established connection");
    }
  }
  return ok_status();
}

}  // namespace cr
