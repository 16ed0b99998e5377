// Dump side of UNIX domain sockets (records: common/image/sockets.h;
// restore side: cr-restore/unix_sockets.cc). What the kernel tells of every
// unix socket (type, state, name, socket file, peer, pending connections,
// shutdown, queue length) comes from sock_diag, read once per dump and
// kept by inode. Options and the queued data are read on a copy of the fd
// (pidfd_getfd: the same open file description): the data with MSG_PEEK
// from SO_PEEK_OFF, which is put back as it was. Peers, listeners and
// pending connections are resolved once every process's fds are read.
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "common/fd.h"
#include "common/log.h"
#include "common/proc/misc.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

// What sock_diag says of one unix socket.
struct DiagSock {
  uint32_t ino = 0;
  uint8_t type = 0, state = 0, shutdown = 0;
  Bytes name;
  bool has_vfs = false;
  uint64_t vfs_dev = 0, vfs_ino = 0;
  uint32_t peer = 0;
  std::vector<uint32_t> icons;  // listening: the pending connections' (embryo) sockets
  uint32_t rqueue = 0, wqueue = 0;
};

// Where a socket of the tree was first seen, for messages, and what the
// resolution needs besides the record.
struct Holder {
  pid_t pid;
  int fd;
  std::string cwd;  // the holder's cwd at dump
};

std::optional<std::map<uint32_t, DiagSock>> g_diag;
std::map<uint64_t, Holder> g_holders;  // file id -> its first holder

Result<std::map<uint32_t, DiagSock>> read_unix_diag() {
  UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return make_errno(errno, "sock_diag: cannot open a NETLINK_SOCK_DIAG socket");
  struct {
    struct nlmsghdr nlh;
    struct unix_diag_req req;
  } msg = {};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.nlh.nlmsg_seq = 1;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_states = ~0u;
  msg.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
  struct sockaddr_nl sa = {};
  sa.nl_family = AF_NETLINK;
  if (sendto(nl.get(), &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != sizeof msg)
    return make_errno(errno, "sock_diag: cannot send the unix socket request");
  std::map<uint32_t, DiagSock> out;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(nl.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_errno(n < 0 ? errno : 0, "sock_diag: reading the unix socket answer");
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return out;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
        return make_errno(-e->error, "sock_diag: the kernel refused the unix socket request");
      }
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg))) continue;
      auto* m = static_cast<struct unix_diag_msg*>(NLMSG_DATA(h));
      DiagSock d;
      d.ino = m->udiag_ino;
      d.type = m->udiag_type;
      d.state = m->udiag_state;
      int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
      for (auto* a = reinterpret_cast<struct rtattr*>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        auto* p = static_cast<const uint8_t*>(RTA_DATA(a));
        size_t plen = RTA_PAYLOAD(a);
        switch (a->rta_type) {
          case UNIX_DIAG_NAME: d.name.data.assign(p, p + plen); break;
          case UNIX_DIAG_VFS:
            if (plen >= sizeof(struct unix_diag_vfs)) {
              auto* v = reinterpret_cast<const struct unix_diag_vfs*>(p);
              d.has_vfs = true;
              // The kernel's dev_t (major << 20 | minor), as stat(2) shows it.
              d.vfs_dev = makedev(v->udiag_vfs_dev >> 20, v->udiag_vfs_dev & 0xfffff);
              d.vfs_ino = v->udiag_vfs_ino;
            }
            break;
          case UNIX_DIAG_PEER:
            if (plen >= 4) memcpy(&d.peer, p, 4);
            break;
          case UNIX_DIAG_ICONS:
            for (size_t i = 0; i + 4 <= plen; i += 4) {
              uint32_t v;
              memcpy(&v, p + i, 4);
              d.icons.push_back(v);
            }
            break;
          case UNIX_DIAG_RQLEN:
            if (plen >= sizeof(struct unix_diag_rqlen)) {
              auto* r = reinterpret_cast<const struct unix_diag_rqlen*>(p);
              d.rqueue = r->udiag_rqueue;
              d.wqueue = r->udiag_wqueue;
            }
            break;
          case UNIX_DIAG_SHUTDOWN:
            if (plen >= 1) d.shutdown = p[0];
            break;
        }
      }
      out[d.ino] = std::move(d);
    }
  }
}

std::string family_name(int family) {
  switch (family) {
    case AF_INET: return "inet (IPv4)";
    case AF_INET6: return "inet6 (IPv6)";
    case AF_NETLINK: return "netlink";
    case AF_PACKET: return "packet";
    case AF_UNIX: return "unix";
    default: return "family " + std::to_string(family);
  }
}

std::string sock_type_name(int type) {
  switch (type) {
    case SOCK_STREAM: return "stream";
    case SOCK_DGRAM: return "dgram";
    case SOCK_SEQPACKET: return "seqpacket";
    case SOCK_RAW: return "raw";
    default: return "type " + std::to_string(type);
  }
}

// A name for messages: a path, or "@name" for an abstract one.
std::string printable(const Bytes& name) {
  std::string s;
  for (size_t i = 0; i < name.size(); i++) {
    uint8_t c = name.data[i];
    if (i == 0 && c == 0) s += '@';
    else if (c >= 0x20 && c < 0x7f) s += static_cast<char>(c);
    else s += '?';
  }
  return s;
}

// A name as sock_diag gives it, as the image keeps it: a path name
// without its terminating NUL (bind adds it again), an abstract one whole.
Bytes stored_name(const Bytes& diag) {
  Bytes n = diag;
  if (!n.empty() && n.data[0] != 0) n.data.erase(std::find(n.data.begin(), n.data.end(), 0), n.data.end());
  return n;
}

// SO_PEEK_OFF put back as it was on every path.
struct PeekOffGuard {
  int fd, old;
  ~PeekOffGuard() { setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof old); }
};

// The data in the receive queue of `sk` (our copy of pid's fd), without
// consuming it: MSG_PEEK from offset `total` (SO_PEEK_OFF) each time, so
// each peek gives the next message (dgram, seqpacket) or the next bytes
// (stream). Ancillary data with file descriptors is refused.
Status peek_queue(pid_t pid, int fd, int sk, const DiagSock& d, UnixSocketRec& r) {
  const char* tname = unix_type_name(r.type);
  uint64_t total = 0;
  std::vector<uint8_t> buf(std::max<size_t>(d.rqueue, 1 << 16) + 1);
  std::vector<char> ctl(4096);
  Bytes stream;
  for (;;) {
    if (r.type != SOCK_DGRAM && total >= d.rqueue) break;  // rqueue: every byte queued (stream, seqpacket)
    if (total > kMaxUnixQueueBytes || r.queue.size() >= kMaxUnixQueueMessages)
      return make_pid_error(pid, 0, "fd %d: unix %s socket holds more queued data than an image keeps (%llu bytes)",
                            fd, tname, static_cast<unsigned long long>(kMaxUnixQueueBytes));
    int off = static_cast<int>(total);
    // MSG_TRUNC: a message's whole length, to read a longer one again.
    int trunc = r.type == SOCK_STREAM ? 0 : MSG_TRUNC;
    if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off) < 0)
      return make_pid_error(pid, errno, "fd %d: unix %s socket: cannot set SO_PEEK_OFF to read its queue", fd, tname);
    struct iovec iov = {buf.data(), buf.size()};
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.data();
    mh.msg_controllen = ctl.size();
    ssize_t n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | trunc | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return make_pid_error(pid, errno, "fd %d: unix %s socket: reading its queue", fd, tname);
    bool rights = false;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      rights = true;
      // The peek gave us copies of the passed fds: close them.
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int passed;
        memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
        close(passed);
      }
    }
    if (rights || (mh.msg_flags & MSG_CTRUNC))
      return make_pid_error(pid, 0, "fd %d: unix %s socket has file descriptors passed in its queue (SCM_RIGHTS); "
                            "not supported", fd, tname);
    if (r.type == SOCK_STREAM) {
      if (n == 0) break;  // end of file: the peer shut down its sending
      stream.data.insert(stream.data.end(), buf.begin(), buf.begin() + n);
      total += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0)
      return make_pid_error(pid, 0, "fd %d: unix %s socket has an empty message in its queue; not supported", fd,
                            tname);
    if (static_cast<size_t>(n) > buf.size()) {  // truncated: read it again whole
      if (static_cast<uint64_t>(n) > kMaxUnixQueueBytes) continue;  // caught above
      buf.resize(static_cast<size_t>(n));
      continue;
    }
    r.queue.push_back(Bytes{{buf.begin(), buf.begin() + n}});
    total += static_cast<uint64_t>(n);
  }
  if (!stream.empty()) r.queue.push_back(std::move(stream));
  return ok_status();
}

// The options programs set, read on our copy.
Status read_options(pid_t pid, int fd, int sk, UnixSocketRec& r) {
  auto get_int = [&](int opt, const char* name, int32_t& v) -> Status {
    int x = 0;
    socklen_t l = sizeof x;
    if (getsockopt(sk, SOL_SOCKET, opt, &x, &l) < 0) return make_pid_error(pid, errno, "fd %d: getsockopt %s", fd, name);
    v = x;
    return ok_status();
  };
  auto get_tv = [&](int opt, const char* name, int64_t& us) -> Status {
    struct timeval tv = {};
    socklen_t l = sizeof tv;
    if (getsockopt(sk, SOL_SOCKET, opt, &tv, &l) < 0) return make_pid_error(pid, errno, "fd %d: getsockopt %s", fd, name);
    us = int64_t(tv.tv_sec) * 1000000 + tv.tv_usec;
    return ok_status();
  };
  int32_t v;
  TRY_STATUS(get_int(SO_PASSCRED, "SO_PASSCRED", v));
  r.passcred = v;
  TRY_STATUS(get_int(SO_PASSSEC, "SO_PASSSEC", v));
  r.passsec = v;
  TRY_STATUS(get_int(SO_SNDBUF, "SO_SNDBUF", r.sndbuf));
  TRY_STATUS(get_int(SO_RCVBUF, "SO_RCVBUF", r.rcvbuf));
  TRY_STATUS(get_int(SO_PEEK_OFF, "SO_PEEK_OFF", r.peek_off));
  TRY_STATUS(get_tv(SO_SNDTIMEO, "SO_SNDTIMEO", r.sndtimeo_us));
  TRY_STATUS(get_tv(SO_RCVTIMEO, "SO_RCVTIMEO", r.rcvtimeo_us));
  return ok_status();
}

}  // namespace

Status dump_socket(pid_t pid, int fd, FileRec& f, Files& files) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return make_pid_error(pid, errno, "fd %d: pidfd_open to read its socket", fd);
  UniqueFd sk(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!sk.valid()) return make_pid_error(pid, errno, "fd %d: pidfd_getfd to read its socket", fd);
  int family = 0, type = 0;
  socklen_t l = sizeof family;
  if (getsockopt(sk.get(), SOL_SOCKET, SO_DOMAIN, &family, &l) < 0)
    return make_pid_error(pid, errno, "fd %d: getsockopt SO_DOMAIN", fd);
  l = sizeof type;
  if (getsockopt(sk.get(), SOL_SOCKET, SO_TYPE, &type, &l) < 0)
    return make_pid_error(pid, errno, "fd %d: getsockopt SO_TYPE", fd);
  if (family == AF_INET || family == AF_INET6) {
    f.type = "inet";
    return dump_inet_socket(pid, fd, sk.get(), type, f, files);
  }
  if (family != AF_UNIX || (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET))
    return make_pid_error(pid, 0, "fd %d: %s %s socket is not supported", fd, family_name(family).c_str(),
                          sock_type_name(type).c_str());
  if (!g_diag) g_diag = TRY(read_unix_diag());
  auto it = g_diag->find(static_cast<uint32_t>(f.ino));
  if (it == g_diag->end())
    return make_pid_error(pid, 0, "fd %d: unix %s socket (inode %llu) is not in sock_diag's list (another network "
                          "namespace?); not supported", fd, sock_type_name(type).c_str(), (unsigned long long)f.ino);
  const DiagSock& d = it->second;
  UnixSocketRec r;
  r.file_id = f.id;
  r.ino = f.ino;
  r.type = d.type;
  r.shutdown = d.shutdown & 3;
  if (d.state == 10 /* TCP_LISTEN */) {
    r.state = "listening";
    r.backlog = d.wqueue;  // a listener's "write queue" is its backlog
  } else if (d.state == 1 /* TCP_ESTABLISHED */ && r.type == SOCK_DGRAM) {
    // A datagram socket that another one connected to shows established
    // too (since 5.15): connected only if it has a peer of its own, alive
    // or not, which getpeername tells.
    struct sockaddr_un a;
    socklen_t al = sizeof a;
    r.state = getpeername(sk.get(), reinterpret_cast<sockaddr*>(&a), &al) == 0 ? "connected" : "unconnected";
  } else if (d.state == 1 /* TCP_ESTABLISHED */) {
    r.state = "connected";
  } else if (d.state == 7 /* TCP_CLOSE */) {
    r.state = "unconnected";
  } else {
    return make_pid_error(pid, 0, "fd %d: unix %s socket in state %u; not supported", fd, unix_type_name(r.type),
                          d.state);
  }
  r.name = stored_name(d.name);
  if (!r.name.empty() && r.name.data[0] != 0) {
    r.vfs_dev = d.vfs_dev;
    r.vfs_ino = d.vfs_ino;
  }
  TRY_STATUS(read_options(pid, fd, sk.get(), r));
  if (r.state != "listening" && d.rqueue > 0) {
    PeekOffGuard guard{sk.get(), r.peek_off};
    TRY_STATUS(peek_queue(pid, fd, sk.get(), d, r));
  }
  Holder h{pid, fd, ""};
  if (auto cwd = proc::read_cwd(pid)) h.cwd = cwd->path;
  g_holders[f.id] = h;
  files.unix_sockets.push_back(std::move(r));
  return ok_status();
}

Status resolve_unix_sockets(Files& files, const std::vector<std::string>& external) {
  if (files.unix_sockets.empty()) return ok_status();
  std::map<uint32_t, UnixSocketRec*> by_ino;
  std::map<uint64_t, UnixSocketRec*> by_id;
  for (auto& s : files.unix_sockets) by_ino[static_cast<uint32_t>(s.ino)] = &s, by_id[s.file_id] = &s;
  auto where = [&](const UnixSocketRec& s) { return g_holders.at(s.file_id); };
  auto refuse = [&](const UnixSocketRec& s, const std::string& what) {
    Holder h = where(s);
    return make_pid_error(h.pid, 0, "fd %d: unix %s socket %s; not supported", h.fd, unix_type_name(s.type),
                          what.c_str());
  };
  // Path names: where the socket file is, as an absolute directory for a
  // relative name; a file removed since bind is marked unlinked.
  for (auto& s : files.unix_sockets) {
    if (s.name.empty() || s.name.data[0] == 0) continue;
    std::string name(s.name.data.begin(), s.name.data.end());
    if (name[0] != '/') s.dir = where(s).cwd;
    std::string full = s.dir.empty() ? name : s.dir + "/" + name;
    struct stat st;
    if (stat(full.c_str(), &st) < 0) {
      s.unlinked = true;
    } else if (st.st_dev != s.vfs_dev || st.st_ino != s.vfs_ino) {
      return refuse(s, "bound to " + full + ", which is now another file (the socket file was moved or replaced, "
                    "or the process changed directory since bind)");
    }
  }
  // Listeners: their pending connections, oldest first. sock_diag names
  // each by its client (the embryo socket has no inode yet); the client
  // shows no peer. Data the client sent before accept sits in the embryo,
  // which nothing can read: its amount shows in the client's send queue.
  for (auto& s : files.unix_sockets) {
    if (s.state != "listening") continue;
    for (uint32_t e : g_diag->at(static_cast<uint32_t>(s.ino)).icons) {
      auto c = by_ino.find(e);
      if (c == by_ino.end())
        return refuse(s, "listening on " + printable(s.name) + " has a pending connection from outside the tree "
                      "(client inode " + std::to_string(e) + ")");
      if (g_diag->at(e).wqueue)
        return refuse(*c->second, "has a pending connection to " + printable(s.name) +
                      " with data sent before accept");
      c->second->peer_kind = "pending";
      c->second->listener = s.file_id;
      s.pending.push_back(c->second->file_id);
    }
  }
  // Peers.
  for (auto& s : files.unix_sockets) {
    if (s.state != "connected" || s.peer_kind == "pending") continue;
    uint32_t peer = g_diag->at(static_cast<uint32_t>(s.ino)).peer;
    if (peer == 0) {
      s.peer_kind = "closed";
      continue;
    }
    auto p = by_ino.find(peer);
    if (p != by_ino.end()) {
      s.peer_kind = "tree";
      s.peer = p->second->file_id;
      continue;
    }
    std::string ino = std::to_string(peer);
    if (std::find(external.begin(), external.end(), ino) != external.end() ||
        std::find(external.begin(), external.end(), std::to_string(s.ino)) != external.end()) {
      s.peer_kind = "external";
      // A datagram socket connected to a named socket outside (a syslog
      // client to /dev/log) connects to that name again at restore.
      auto pd = g_diag->find(peer);
      if (s.type == SOCK_DGRAM && pd != g_diag->end() && !pd->second.name.empty() &&
          (pd->second.name.data[0] == 0 || pd->second.name.data[0] == '/')) {
        s.peer_name = stored_name(pd->second.name);
      }
      continue;
    }
    Error e = refuse(s, "connected to a peer outside the tree (inode " + ino + ")");
    e.remedy = "--ext-unix-sk " + ino + " restores it as if that peer had closed its end";
    return e;
  }
  // Accepted connections: a connected stream or seqpacket socket named as
  // a listener of the tree is one it accepted (its client in the tree,
  // gone, or outside).
  for (auto& s : files.unix_sockets) {
    if (s.state != "connected" || s.peer_kind == "pending" || s.type == SOCK_DGRAM || s.name.empty()) continue;
    for (auto& l : files.unix_sockets) {
      bool same = l.state == "listening" && l.type == s.type && l.name == s.name &&
                  (s.name.data[0] == 0 || (l.vfs_dev == s.vfs_dev && l.vfs_ino == s.vfs_ino));
      if (!same) continue;
      s.listener = l.file_id;
      s.dir = l.dir;
      s.unlinked = l.unlinked;
    }
  }
  uint64_t bad = 0;
  Status st = validate_unix_sockets(files, &bad);
  if (!st && by_id.count(bad)) {
    Holder h = where(*by_id[bad]);
    std::string msg = st.error().message;
    if (msg.rfind("files.img: ", 0) == 0) msg = msg.substr(11);
    return make_pid_error(h.pid, 0, "fd %d: %s; not supported", h.fd, msg.c_str());
  }
  return st;
}

}  // namespace cr
