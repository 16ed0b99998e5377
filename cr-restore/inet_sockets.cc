// Restore side of inet sockets (dump side: cr-dump/inet_sockets.cc,
// records: common/image/inet_sockets.h). Each socket is made by the task
// that opens its description (or the common ancestor of those sharing it),
// like a regular file:
//
//   socket(); IPV6_V6ONLY; SO_REUSEPORT; SO_REUSEADDR on for the bind (a
//   listener must bind beside the established connections that share its
//   port, as accept made them; the dumped value is set after); bind;
//   listen (TCP) or connect (UDP);
//   an established connection in repair mode (TCP_REPAIR): bind (repair
//   mode forces the reuse of the port), both queue sequence numbers,
//   connect (no SYN is sent: the state becomes established), TCP options
//   (MSS, window scale, SACK, timestamps) and the timestamp clock, the
//   receive queue, the sent-but-unacknowledged part of the send queue,
//   the window; then repair mode off (the window probe it sends is dropped
//   by the network lock, which cr-restore lifts once the tree is back:
//   restore_tree), and the never-sent rest of the send queue sent as
//   usual;
//   then options, buffer sizes and status flags.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fd.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

socklen_t make_sockaddr(int family, const std::string& addr, uint32_t port, sockaddr_storage& a) {
  a = {};
  if (family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a);
    s->sin_family = AF_INET;
    s->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &s->sin_addr);  // validated
    return sizeof *s;
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&a);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET6, addr.c_str(), &s->sin6_addr);
  return sizeof *s;
}

struct Maker {
  const InetSocketRec& s;
  std::string what;
  int sk;

  Status set(int level, int opt, int v, const char* name) const {
    if (setsockopt(sk, level, opt, &v, sizeof v) < 0) return make_errno(errno, "%s: setsockopt %s", what.c_str(), name);
    return ok_status();
  }
  Status send_all(const uint8_t* p, size_t len, const char* queue) const {
    size_t off = 0;
    while (off < len) {
      ssize_t n = send(sk, p + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return make_errno(n < 0 ? errno : 0, "%s: cannot put back its %s queue (%zu of %zu bytes)", what.c_str(), queue,
                          off, len);
      off += static_cast<size_t>(n);
    }
    return ok_status();
  }

  Status established() const {
    TRY_STATUS(set(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE"));
    TRY_STATUS(set(SOL_TCP, TCP_QUEUE_SEQ, static_cast<int>(s.tcp_snd_seq - uint32_t(s.tcp_send_queue.size())),
                   "TCP_QUEUE_SEQ (send)"));
    TRY_STATUS(set(SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE"));
    TRY_STATUS(set(SOL_TCP, TCP_QUEUE_SEQ, static_cast<int>(s.tcp_rcv_seq - uint32_t(s.tcp_recv_queue.size())),
                   "TCP_QUEUE_SEQ (receive)"));
    // The dumped buffer sizes before connect: it derives the window clamp
    // and the receive window threshold from them (tcp_connect_init). A
    // connection made with the larger sizes used to fill the queues
    // announced windows its real buffer cannot back, and, a small buffer
    // (SO_RCVBUF 4096) after that, no window updates: the peer then sent
    // one window per persist probe (6.18).
    if (s.sndbuf) TRY_STATUS(set(SOL_SOCKET, SO_SNDBUFFORCE, s.sndbuf / 2, "SO_SNDBUFFORCE"));
    if (s.rcvbuf) TRY_STATUS(set(SOL_SOCKET, SO_RCVBUFFORCE, s.rcvbuf / 2, "SO_RCVBUFFORCE"));
    sockaddr_storage a;
    socklen_t al = make_sockaddr(s.family, s.peer_addr, s.peer_port, a);
    if (connect(sk, reinterpret_cast<sockaddr*>(&a), al) < 0) {
      Error e = make_errno(errno, "%s: connect in repair mode", what.c_str());
      if (errno == EADDRNOTAVAIL) e.remedy = "is the dumped connection still open (the dumped tree left running)?";
      return e;
    }
    struct tcp_repair_opt opts[4];
    int n = 0;
    opts[n++] = {TCPOPT_MAXSEG, s.tcp_mss};
    if (s.tcp_options & TCPI_OPT_SACK) opts[n++] = {TCPOPT_SACK_PERMITTED, 0};
    if (s.tcp_options & TCPI_OPT_WSCALE) opts[n++] = {TCPOPT_WINDOW, s.tcp_snd_wscale | (s.tcp_rcv_wscale << 16)};
    if (s.tcp_options & TCPI_OPT_TIMESTAMPS) opts[n++] = {TCPOPT_TIMESTAMP, 0};
    if (setsockopt(sk, SOL_TCP, TCP_REPAIR_OPTIONS, opts, static_cast<socklen_t>(n * sizeof opts[0])) < 0)
      return make_errno(errno, "%s: setsockopt TCP_REPAIR_OPTIONS", what.c_str());
    if (s.tcp_options & TCPI_OPT_TIMESTAMPS)
      TRY_STATUS(set(SOL_TCP, TCP_TIMESTAMP, static_cast<int>(s.tcp_timestamp), "TCP_TIMESTAMP"));
    // Known limit (6.18): connect sized the segments it sends from the MSS
    // clamp it found (536: tcp_connect_init -> tcp_sync_mss) before the
    // options above set the dumped one, so the connection sends 524-byte
    // segments until its MSS is synced again. Syncing it (TCP_MAXSEG
    // before connect, or IP_OPTIONS after) was tried: with a peer whose
    // window is below the MSS (ckpt_tcp_echo's 4 KiB receive buffer) the
    // restored pair then moved one window per persist probe (1 MiB in
    // 54 s instead of 0.5 s), so it is left so for now.
    // Room for both queues while they are filled (the dumped sizes are
    // set again at the end).
    int room = static_cast<int>(std::min<uint64_t>(2 * (s.tcp_send_queue.size() + s.tcp_recv_queue.size()) + (1 << 20),
                                                   1u << 30));
    TRY_STATUS(set(SOL_SOCKET, SO_SNDBUFFORCE, room, "SO_SNDBUFFORCE"));
    TRY_STATUS(set(SOL_SOCKET, SO_RCVBUFFORCE, room, "SO_RCVBUFFORCE"));
    TRY_STATUS(set(SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE"));
    TRY_STATUS(send_all(s.tcp_recv_queue.data.data(), s.tcp_recv_queue.size(), "receive"));
    size_t sent = s.tcp_send_queue.size() - s.tcp_unsent;
    TRY_STATUS(set(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE"));
    TRY_STATUS(send_all(s.tcp_send_queue.data.data(), sent, "send"));
    struct tcp_repair_window w = {s.tcp_snd_wl1, s.tcp_snd_wnd, s.tcp_max_window, s.tcp_rcv_wnd, s.tcp_rcv_wup};
    if (setsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) < 0)
      return make_errno(errno, "%s: setsockopt TCP_REPAIR_WINDOW", what.c_str());
    TRY_STATUS(set(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE"));
    TRY_STATUS(set(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF, "TCP_REPAIR off"));
    // Never sent: sent now, as the program would have (the lock drops it;
    // the retransmission timer sends it again once the lock is lifted).
    return send_all(s.tcp_send_queue.data.data() + sent, s.tcp_unsent, "send");
  }
};

}  // namespace

Result<int> open_inet_socket(const Files& files, const FileRec& f, const std::string& what) {
  const InetSocketRec* rec = nullptr;
  for (auto& s : files.inet_sockets)
    if (s.file_id == f.id) rec = &s;
  if (!rec) return make_error("%s: inet socket %llu has no record", what.c_str(), (unsigned long long)f.id);
  const InetSocketRec& s = *rec;
  std::string desc = what + ": " + inet_kind_name(s.family, s.type) + " socket " +
                     inet_endpoint(s.family, s.local_addr, s.local_port);
  if (!s.peer_addr.empty()) desc += " -> " + inet_endpoint(s.family, s.peer_addr, s.peer_port);
  UniqueFd sk(socket(s.family, s.type | SOCK_CLOEXEC, 0));
  if (!sk.valid()) return make_errno(errno, "%s: socket", desc.c_str());
  Maker m{s, desc, sk.get()};
  bool est = s.state == "established";
  if (s.family == AF_INET6) TRY_STATUS(m.set(SOL_IPV6, IPV6_V6ONLY, s.v6only, "IPV6_V6ONLY"));
  if (s.reuseport) TRY_STATUS(m.set(SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"));
  TRY_STATUS(m.set(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"));
  if (est) {
    Status st = m.set(SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR");
    if (!st) {
      Error e = st.error();
      e.remedy = "cr-restore needs CAP_NET_ADMIN for established TCP connections; see 'crtools check' (tcp-repair)";
      return e;
    }
  }
  if (s.local_port || est) {
    sockaddr_storage a;
    socklen_t al = make_sockaddr(s.family, s.local_addr, s.local_port, a);
    if (bind(sk.get(), reinterpret_cast<sockaddr*>(&a), al) < 0) {
      Error e = make_errno(errno, "%s: bind", desc.c_str());
      if (errno == EADDRINUSE) e.remedy = "another socket holds the address (the dumped tree left running?)";
      return e;
    }
  }
  if (s.state == "listening" && listen(sk.get(), static_cast<int>(s.backlog)) < 0)
    return make_errno(errno, "%s: listen", desc.c_str());
  if (s.state == "connected") {
    sockaddr_storage a;
    socklen_t al = make_sockaddr(s.family, s.peer_addr, s.peer_port, a);
    if (connect(sk.get(), reinterpret_cast<sockaddr*>(&a), al) < 0) return make_errno(errno, "%s: connect", desc.c_str());
  }
  if (est) TRY_STATUS(m.established());
  // Options. Leaving repair mode cleared SO_REUSEADDR: set after it.
  TRY_STATUS(m.set(SOL_SOCKET, SO_REUSEADDR, s.reuseaddr, "SO_REUSEADDR"));
  if (s.type == SOCK_STREAM) {
    TRY_STATUS(m.set(SOL_SOCKET, SO_KEEPALIVE, s.keepalive, "SO_KEEPALIVE"));
    TRY_STATUS(m.set(SOL_TCP, TCP_NODELAY, s.nodelay, "TCP_NODELAY"));
    if (s.keepidle) TRY_STATUS(m.set(SOL_TCP, TCP_KEEPIDLE, s.keepidle, "TCP_KEEPIDLE"));
    if (s.keepintvl) TRY_STATUS(m.set(SOL_TCP, TCP_KEEPINTVL, s.keepintvl, "TCP_KEEPINTVL"));
    if (s.keepcnt) TRY_STATUS(m.set(SOL_TCP, TCP_KEEPCNT, s.keepcnt, "TCP_KEEPCNT"));
  }
  // Buffer sizes: set (halved: the kernel doubles what it is given) only
  // when they differ from a new socket's, so that a size the kernel tunes
  // by itself is not pinned.
  auto buf = [&](int opt, int force, int32_t want, const char* name) -> Status {
    int cur = 0;
    socklen_t l = sizeof cur;
    if (getsockopt(sk.get(), SOL_SOCKET, opt, &cur, &l) < 0) return make_errno(errno, "%s: getsockopt %s", desc.c_str(), name);
    if (cur == want) return ok_status();
    return m.set(SOL_SOCKET, force, want / 2, name);
  };
  if (!est || s.sndbuf) TRY_STATUS(buf(SO_SNDBUF, SO_SNDBUFFORCE, s.sndbuf, "SO_SNDBUFFORCE"));
  if (!est || s.rcvbuf) TRY_STATUS(buf(SO_RCVBUF, SO_RCVBUFFORCE, s.rcvbuf, "SO_RCVBUFFORCE"));
  TRY_STATUS(set_status_flags(sk.get(), f.flags, desc.c_str()));
  return sk.release();
}

}  // namespace cr

namespace cr {

namespace {

// sock_diag request for one TCP socket by its 4-tuple (as seen from its
// local end).
struct DiagReq {
  struct nlmsghdr nlh;
  struct inet_diag_req_v2 r;
};

DiagReq diag_req(const InetSocketRec& s, uint16_t type, uint16_t flags) {
  DiagReq q = {};
  q.nlh.nlmsg_len = sizeof q;
  q.nlh.nlmsg_type = type;
  q.nlh.nlmsg_flags = flags;
  q.r.sdiag_family = static_cast<uint8_t>(s.family);
  q.r.sdiag_protocol = IPPROTO_TCP;
  q.r.idiag_states = ~0u;
  q.r.id.idiag_sport = htons(static_cast<uint16_t>(s.local_port));
  q.r.id.idiag_dport = htons(static_cast<uint16_t>(s.peer_port));
  inet_pton(s.family, s.local_addr.c_str(), q.r.id.idiag_src);  // validated
  inet_pton(s.family, s.peer_addr.c_str(), q.r.id.idiag_dst);
  q.r.id.idiag_cookie[0] = q.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  return q;
}

// Send `q` and read the answer: the socket's inet_diag_msg (lookup), or
// the error of the ack (errno, 0 for success).
int diag_talk(int nl, DiagReq q, struct inet_diag_msg* found) {
  if (send(nl, &q, sizeof q, 0) != static_cast<ssize_t>(sizeof q)) return errno;
  alignas(struct nlmsghdr) char buf[8192];
  ssize_t n = recv(nl, buf, sizeof buf, 0);
  if (n < 0) return errno;
  for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, static_cast<size_t>(n));
       h = NLMSG_NEXT(h, n)) {
    if (h->nlmsg_type == NLMSG_ERROR) {
      auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
      return -e->error;
    }
    if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && found && h->nlmsg_len >= NLMSG_LENGTH(sizeof *found)) {
      memcpy(found, NLMSG_DATA(h), sizeof *found);
      return 0;
    }
  }
  return ENOENT;
}

}  // namespace

Status destroy_orphan_connections(const Files& files) {
  UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return make_errno(errno, "sock_diag: cannot open a NETLINK_SOCK_DIAG socket");
  for (auto& s : files.inet_sockets) {
    if (s.state != "established") continue;
    struct inet_diag_msg m = {};
    if (diag_talk(nl.get(), diag_req(s, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST), &m) != 0) continue;
    // The lookup answers as for a packet to the local end: the connection
    // itself (established or waiting in TIME_WAIT, which a repair-mode
    // connect takes over), or else a listener. Only a socket of this
    // exact 4-tuple that no file holds any more (inode 0) and not in
    // TIME_WAIT is an orphan: a closed connection still sending its FIN.
    if (m.idiag_inode != 0 || m.idiag_state == TCP_TIME_WAIT || m.idiag_state == TCP_LISTEN) continue;
    if (m.id.idiag_sport != htons(static_cast<uint16_t>(s.local_port)) ||
        m.id.idiag_dport != htons(static_cast<uint16_t>(s.peer_port)))
      continue;
    int e = diag_talk(nl.get(), diag_req(s, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK), nullptr);
    if (e != 0) {
      Error err = make_errno(e, "%s socket %s -> %s: an orphaned connection (a closed socket still sending, "
                             "left by an earlier restore that failed) holds its 4-tuple and cannot be destroyed "
                             "(SOCK_DESTROY)", inet_kind_name(s.family, s.type).c_str(),
                             inet_endpoint(s.family, s.local_addr, s.local_port).c_str(),
                             inet_endpoint(s.family, s.peer_addr, s.peer_port).c_str());
      err.remedy = "wait until it times out (ss -tan shows it), or a kernel with CONFIG_INET_DIAG_DESTROY";
      return err;
    }
  }
  return ok_status();
}

}  // namespace cr
