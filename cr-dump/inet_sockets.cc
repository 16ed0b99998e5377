// Dump side of inet sockets (records: common/image/inet_sockets.h; restore
// side: cr-restore/inet_sockets.cc). Everything is read on our copy of the
// fd (pidfd_getfd, taken by dump_socket: the same socket): names with
// getsockname/getpeername, the TCP state and a listener's accept queue
// from TCP_INFO, options with getsockopt. An established connection
// (--tcp-established) is locked first (NetLock: an nftables rule, then
// repair mode) and read in repair mode: sequence numbers (TCP_QUEUE_SEQ),
// both queues (MSG_PEEK on TCP_REPAIR_QUEUE), TCP options and window.
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/log.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

const char* tcp_state_name(int st) {
  static const char* const names[] = {"?",         "ESTABLISHED", "SYN_SENT", "SYN_RECV",   "FIN_WAIT1",
                                      "FIN_WAIT2", "TIME_WAIT",   "CLOSE",    "CLOSE_WAIT", "LAST_ACK",
                                      "LISTEN",    "CLOSING",     "NEW_SYN_RECV"};
  return st >= 0 && st < int(sizeof names / sizeof names[0]) ? names[st] : "?";
}

// An address and port from a sockaddr of `family`.
void from_sockaddr(int family, const sockaddr_storage& a, std::string& addr, uint32_t& port) {
  char b[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    auto* s = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &s->sin_addr, b, sizeof b);
    port = ntohs(s->sin_port);
  } else {
    auto* s = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &s->sin6_addr, b, sizeof b);
    port = ntohs(s->sin6_port);
  }
  addr = b;
}

struct Reader {
  pid_t pid;
  int fd, sk;
  std::string kind;  // "tcp socket", "udp6 socket", ... for messages

  Error err(int e, const std::string& what) const {
    return make_pid_error(pid, e, "fd %d: %s %s", fd, kind.c_str(), what.c_str());
  }
  Result<int> get(int level, int opt, const char* name) const {
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(sk, level, opt, &v, &l) < 0) return err(errno, std::string("getsockopt ") + name);
    return v;
  }
  Result<uint32_t> queue_seq(int q) const {
    if (setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) < 0) return err(errno, "TCP_REPAIR_QUEUE");
    uint32_t seq = 0;
    socklen_t l = sizeof seq;
    if (getsockopt(sk, SOL_TCP, TCP_QUEUE_SEQ, &seq, &l) < 0) return err(errno, "getsockopt TCP_QUEUE_SEQ");
    return seq;
  }
  // The `len` bytes of queue `q` (TCP_SEND_QUEUE, TCP_RECV_QUEUE), peeked
  // in repair mode (tcp_recvmsg: the send queue from its start, the receive
  // queue from its start unless SO_PEEK_OFF is set, which is turned off
  // for the read and put back).
  Result<Bytes> peek(int q, uint32_t len) const {
    Bytes out;
    if (len == 0) return out;
    if (len > kMaxTcpQueueBytes) return err(0, "holds more queued data than an image keeps (64 MiB)");
    if (setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) < 0) return err(errno, "TCP_REPAIR_QUEUE");
    int peek_off = TRY(get(SOL_SOCKET, SO_PEEK_OFF, "SO_PEEK_OFF"));
    int none = -1;
    if (peek_off >= 0) setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof none);
    out.data.resize(len);
    ssize_t n;
    do n = recv(sk, out.data.data(), len, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    int e = errno;
    if (peek_off >= 0) setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof peek_off);
    if (n != static_cast<ssize_t>(len))
      return err(n < 0 ? e : 0, std::string("reading its ") + (q == TCP_SEND_QUEUE ? "send" : "receive") +
                                    " queue: got " + std::to_string(n) + " of " + std::to_string(len) + " bytes");
    return out;
  }
};

// An established connection, read in repair mode (the lock is set).
Status read_established(const Reader& r, InetSocketRec& s) {
  int outq = 0, unsent = 0, inq = 0;
  if (ioctl(r.sk, SIOCOUTQ, &outq) < 0) return r.err(errno, "SIOCOUTQ");
  if (ioctl(r.sk, SIOCOUTQNSD, &unsent) < 0) return r.err(errno, "SIOCOUTQNSD");
  if (ioctl(r.sk, SIOCINQ, &inq) < 0) return r.err(errno, "SIOCINQ");
  s.tcp_snd_seq = TRY(r.queue_seq(TCP_SEND_QUEUE));
  s.tcp_rcv_seq = TRY(r.queue_seq(TCP_RECV_QUEUE));
  s.tcp_send_queue = TRY(r.peek(TCP_SEND_QUEUE, static_cast<uint32_t>(outq)));
  s.tcp_unsent = static_cast<uint32_t>(unsent);
  s.tcp_recv_queue = TRY(r.peek(TCP_RECV_QUEUE, static_cast<uint32_t>(inq)));
  int noq = TCP_NO_QUEUE;
  setsockopt(r.sk, SOL_TCP, TCP_REPAIR_QUEUE, &noq, sizeof noq);
  struct tcp_info ti = {};
  socklen_t l = sizeof ti;
  if (getsockopt(r.sk, SOL_TCP, TCP_INFO, &ti, &l) < 0) return r.err(errno, "getsockopt TCP_INFO");
  s.tcp_options = ti.tcpi_options & (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
  if (s.tcp_options & TCPI_OPT_WSCALE) {
    s.tcp_snd_wscale = ti.tcpi_snd_wscale;
    s.tcp_rcv_wscale = ti.tcpi_rcv_wscale;
  }
  s.tcp_mss = static_cast<uint32_t>(TRY(r.get(SOL_TCP, TCP_MAXSEG, "TCP_MAXSEG")));
  s.tcp_timestamp = static_cast<uint32_t>(TRY(r.get(SOL_TCP, TCP_TIMESTAMP, "TCP_TIMESTAMP")));
  struct tcp_repair_window w = {};
  l = sizeof w;
  if (getsockopt(r.sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, &l) < 0) return r.err(errno, "getsockopt TCP_REPAIR_WINDOW");
  s.tcp_snd_wl1 = w.snd_wl1;
  s.tcp_snd_wnd = w.snd_wnd;
  s.tcp_max_window = w.max_window;
  s.tcp_rcv_wnd = w.rcv_wnd;
  s.tcp_rcv_wup = w.rcv_wup;
  return ok_status();
}

}  // namespace

Status dump_inet_socket(pid_t pid, int fd, int sk, int type, const FileRec& f, Files& files) {
  int family = 0;
  socklen_t l = sizeof family;
  if (getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &l) < 0)
    return make_pid_error(pid, errno, "fd %d: getsockopt SO_DOMAIN", fd);
  int proto = 0;
  l = sizeof proto;
  if (getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &proto, &l) < 0)
    return make_pid_error(pid, errno, "fd %d: getsockopt SO_PROTOCOL", fd);
  const char* fam = family == AF_INET6 ? "inet6 (IPv6)" : "inet (IPv4)";
  bool tcp = type == SOCK_STREAM && proto == IPPROTO_TCP;
  bool udp = type == SOCK_DGRAM && proto == IPPROTO_UDP;
  if (!tcp && !udp) {
    const char* t = type == SOCK_RAW ? "raw" : type == SOCK_DGRAM ? "dgram" : type == SOCK_STREAM ? "stream" : "other";
    return make_pid_error(pid, 0, "fd %d: %s %s socket of protocol %d is not supported (only TCP and UDP)", fd, fam, t,
                          proto);
  }
  InetSocketRec s;
  s.file_id = f.id;
  s.ino = f.ino;
  s.family = family;
  s.type = type;
  Reader r{pid, fd, sk, inet_kind_name(family, type) + " socket"};
  sockaddr_storage a = {};
  l = sizeof a;
  if (getsockname(sk, reinterpret_cast<sockaddr*>(&a), &l) < 0) return r.err(errno, "getsockname");
  from_sockaddr(family, a, s.local_addr, s.local_port);
  std::string peer_addr;
  uint32_t peer_port = 0;
  a = {};
  l = sizeof a;
  bool has_peer = getpeername(sk, reinterpret_cast<sockaddr*>(&a), &l) == 0;
  if (has_peer) from_sockaddr(family, a, peer_addr, peer_port);
  std::string local = inet_endpoint(family, s.local_addr, s.local_port);
  std::string conn = local + " -> " + inet_endpoint(family, peer_addr, peer_port);
  r.kind += " " + (has_peer ? conn : local);
  // Options (before any repair mode, which changes SO_REUSEADDR).
  s.reuseaddr = TRY(r.get(SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR")) != 0;
  s.reuseport = TRY(r.get(SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT")) != 0;
  s.sndbuf = TRY(r.get(SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"));
  s.rcvbuf = TRY(r.get(SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"));
  if (family == AF_INET6) s.v6only = TRY(r.get(SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY")) != 0;
  if (udp) {
    s.state = has_peer ? "connected" : "unconnected";
    if (has_peer) s.peer_addr = peer_addr, s.peer_port = peer_port;
    char b;
    ssize_t n = recv(sk, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) {
      int inq = 0;
      ioctl(sk, SIOCINQ, &inq);
      Error e = r.err(0, "has datagrams in its receive queue (the first of " + std::to_string(inq) +
                             " bytes); not supported");
      e.remedy = "dump when the program has read them";
      return e;
    }
    files.inet_sockets.push_back(std::move(s));
    return ok_status();
  }
  s.keepalive = TRY(r.get(SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE")) != 0;
  s.nodelay = TRY(r.get(SOL_TCP, TCP_NODELAY, "TCP_NODELAY")) != 0;
  s.keepidle = TRY(r.get(SOL_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE"));
  s.keepintvl = TRY(r.get(SOL_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL"));
  s.keepcnt = TRY(r.get(SOL_TCP, TCP_KEEPCNT, "TCP_KEEPCNT"));
  struct tcp_info ti = {};
  l = sizeof ti;
  if (getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &l) < 0) return r.err(errno, "getsockopt TCP_INFO");
  switch (ti.tcpi_state) {
    case TCP_CLOSE:
      s.state = "unconnected";
      break;
    case TCP_LISTEN:
      s.state = "listening";
      // A listener's TCP_INFO: tcpi_unacked is its accept queue's length,
      // tcpi_sacked listen()'s backlog (6.18 tcp_get_info).
      s.backlog = ti.tcpi_sacked;
      if (ti.tcpi_unacked) {
        Error e = r.err(0, "is listening with " + std::to_string(ti.tcpi_unacked) +
                               " connections not yet accepted; not supported");
        e.remedy = "dump when the program has accepted them";
        return e;
      }
      break;
    case TCP_ESTABLISHED: {
      NetLock* lock = current_net_lock();
      if (!lock || !lock->tcp_established()) {
        Error e = make_pid_error(pid, 0, "fd %d: established TCP connection %s: give --tcp-established", fd,
                                 conn.c_str());
        e.remedy = "with --tcp-established the connection is dumped in repair mode and the peer keeps it";
        return e;
      }
      s.state = "established";
      s.peer_addr = peer_addr;
      s.peer_port = peer_port;
      TRY_STATUS(lock->add(pid, fd, sk, TcpTuple{family, s.local_addr, s.peer_addr, s.local_port, s.peer_port}));
      // A FIN that arrived before the rule did moved it on: look again now
      // that nothing can reach it.
      l = sizeof ti;
      if (getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &l) < 0) return r.err(errno, "getsockopt TCP_INFO");
      if (ti.tcpi_state != TCP_ESTABLISHED) {
        Error e = r.err(0, std::string("went to state ") + tcp_state_name(ti.tcpi_state) +
                               " while it was dumped; not supported");
        e.remedy = "dump when the connection is established or closed";
        return e;
      }
      TRY_STATUS(read_established(r, s));
      pr_debug(pid, "fd %d: tcp %s: snd %u rcv %u, %zu bytes to send (%u unsent), %zu received", fd, conn.c_str(),
               s.tcp_snd_seq, s.tcp_rcv_seq, s.tcp_send_queue.size(), s.tcp_unsent, s.tcp_recv_queue.size());
      break;
    }
    default: {
      Error e = r.err(0, std::string("in state ") + tcp_state_name(ti.tcpi_state) + "; not supported");
      e.remedy = "dump when the connection is established or closed";
      return e;
    }
  }
  files.inet_sockets.push_back(std::move(s));
  return ok_status();
}

}  // namespace cr
