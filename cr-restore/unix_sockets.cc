// Restore side of UNIX domain sockets (dump side: cr-dump/unix_sockets.cc,
// records: common/image/sockets.h). Connections and names tie the sockets
// of a tree to each other, so one task makes them all (plan_tree: the
// nearest common ancestor of their holders), each at its transit fd:
//
//   1. a socketpair for two ends connected to each other (names bound on
//      them after), and for a socket whose peer closed its end (or is
//      outside the tree, --ext-unix-sk): the other end is closed once the
//      queue is filled; socket() for every other (a connection accepted
//      from a listener comes from accept() in 3.; a datagram socket whose
//      peer outside the tree has a name connects to it again in 3.);
//   2. names bound (a leftover socket file at the path is removed if no
//      live socket holds it), listeners listen;
//   3. each connection accepted from a listener: its client (or a stand-in
//      for a client that is gone) connects and the listener accepts, so the
//      accepted socket has the listener's name; then the pending connections connect, oldest first, and stay
//      in the listener's queue; datagram sockets connected one way connect
//      to their peer's name;
//   4. each queue is sent again by the peer (or the closed peer's stand-in,
//      or a temporary socket to a name), so it lands in the right receive
//      queue with its message boundaries;
//   5. options, shutdown, status flags; names unlinked at dump unlinked.
//
// A relative path name is bound and connected to from its directory (a
// chdir and back), so getsockname gives what it gave at dump.
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <functional>
#include <map>

#include "common/fd.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

std::string describe(const UnixSocketRec& s) {
  return "unix " + std::string(unix_type_name(s.type)) + " socket (inode " + std::to_string(s.ino) + ")";
}

std::string printable(const UnixSocketRec& s) {
  std::string n(s.name.data.begin(), s.name.data.end());
  if (!n.empty() && n[0] == 0) n[0] = '@';
  if (!s.dir.empty()) n = s.dir + "/" + n;
  return n;
}

socklen_t make_addr(const Bytes& name, struct sockaddr_un& a) {
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, name.data.data(), name.size());  // validated: fits
  bool abstract = name.data[0] == 0;
  return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));
}
socklen_t make_addr(const UnixSocketRec& s, struct sockaddr_un& a) { return make_addr(s.name, a); }

// Run `fn` in the directory of a relative path name.
Status in_dir(const std::string& dir, const std::function<Status()>& fn) {
  if (dir.empty()) return fn();
  UniqueFd here(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!here.valid()) return make_errno(errno, "cannot open the current directory");
  if (chdir(dir.c_str()) < 0) return make_errno(errno, "cannot enter %s", dir.c_str());
  Status st = fn();
  if (fchdir(here.get()) < 0 && st) return make_errno(errno, "cannot return to the current directory");
  return st;
}

Status bind_name(int sk, const UnixSocketRec& s) {
  struct sockaddr_un a;
  socklen_t len = make_addr(s, a);
  std::string what = describe(s) + ": " + printable(s);
  return in_dir(s.dir, [&]() -> Status {
    if (a.sun_path[0] != 0) {
      struct stat st;
      if (lstat(a.sun_path, &st) == 0) {
        // A leftover socket file (its socket is gone) is removed; a live
        // socket or another kind of file is left alone.
        if (!S_ISSOCK(st.st_mode)) return make_error("%s: the path exists and is not a socket", what.c_str());
        UniqueFd probe(socket(AF_UNIX, s.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (probe.valid() && (connect(probe.get(), reinterpret_cast<sockaddr*>(&a), len) == 0 ||
                              errno != ECONNREFUSED)) {
          Error e = make_error("%s: a live socket holds the path", what.c_str());
          e.remedy = "stop the program that holds it (the dumped tree, if it was left running) or remove the path";
          return e;
        }
        if (unlink(a.sun_path) < 0) return make_errno(errno, "%s: cannot remove the old socket file", what.c_str());
      }
    }
    if (bind(sk, reinterpret_cast<sockaddr*>(&a), len) < 0) return make_errno(errno, "%s: bind", what.c_str());
    return ok_status();
  });
}

// Connect `s` (made as `sk`) to `name` (relative to `dir` if not empty).
Status connect_name(int sk, const UnixSocketRec& s, const Bytes& name, const std::string& dir) {
  struct sockaddr_un a;
  socklen_t len = make_addr(name, a);
  return in_dir(dir, [&]() -> Status {
    if (connect(sk, reinterpret_cast<sockaddr*>(&a), len) < 0) {
      std::string n(name.data.begin(), name.data.end());
      if (!n.empty() && n[0] == 0) n[0] = '@';
      return make_errno(errno, "%s: cannot connect to %s%s%s", describe(s).c_str(), dir.c_str(),
                        dir.empty() ? "" : "/", n.c_str());
    }
    return ok_status();
  });
}

Status connect_to(int sk, const UnixSocketRec& s, const UnixSocketRec& to) {
  return connect_name(sk, s, to.name, to.dir);
}

// Send every message of `s`'s queue from `from` (to `to`'s name if given).
Status fill_queue(const UnixSocketRec& s, int from, const UnixSocketRec* to) {
  uint64_t total = 0;
  for (auto& m : s.queue) total += m.size();
  // The data is charged to the sender until read: make room for all of it.
  int room = static_cast<int>(std::min<uint64_t>(total + (1 << 16), 1u << 30));
  setsockopt(from, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room);
  for (auto& m : s.queue) {
    size_t off = 0;
    do {
      ssize_t n;
      if (to) {
        struct sockaddr_un a;
        socklen_t len = make_addr(*to, a);
        Status st = in_dir(to->dir, [&]() -> Status {
          n = sendto(from, m.data.data() + off, m.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL,
                     reinterpret_cast<sockaddr*>(&a), len);
          return ok_status();
        });
        TRY_STATUS(st);
      } else {
        n = send(from, m.data.data() + off, m.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return make_errno(errno, "%s: cannot put back the %llu bytes queued to it", describe(s).c_str(),
                          (unsigned long long)total);
      off += static_cast<size_t>(n);
    } while (off < m.size());
  }
  return ok_status();
}

Status set_options(int sk, const UnixSocketRec& s) {
  std::string what = describe(s);
  auto set = [&](int opt, const char* name, const void* v, socklen_t l) -> Status {
    if (setsockopt(sk, SOL_SOCKET, opt, v, l) < 0) return make_errno(errno, "%s: setsockopt %s", what.c_str(), name);
    return ok_status();
  };
  int v = s.passcred;
  TRY_STATUS(set(SO_PASSCRED, "SO_PASSCRED", &v, sizeof v));
  v = s.passsec;
  TRY_STATUS(set(SO_PASSSEC, "SO_PASSSEC", &v, sizeof v));
  // getsockopt gave twice what setsockopt takes (the kernel doubles it).
  v = s.sndbuf / 2;
  TRY_STATUS(set(SO_SNDBUFFORCE, "SO_SNDBUFFORCE", &v, sizeof v));
  v = s.rcvbuf / 2;
  TRY_STATUS(set(SO_RCVBUFFORCE, "SO_RCVBUFFORCE", &v, sizeof v));
  struct timeval tv = {static_cast<time_t>(s.sndtimeo_us / 1000000), static_cast<suseconds_t>(s.sndtimeo_us % 1000000)};
  TRY_STATUS(set(SO_SNDTIMEO, "SO_SNDTIMEO", &tv, sizeof tv));
  tv = {static_cast<time_t>(s.rcvtimeo_us / 1000000), static_cast<suseconds_t>(s.rcvtimeo_us % 1000000)};
  TRY_STATUS(set(SO_RCVTIMEO, "SO_RCVTIMEO", &tv, sizeof tv));
  if (s.peek_off != -1) TRY_STATUS(set(SO_PEEK_OFF, "SO_PEEK_OFF", &s.peek_off, sizeof s.peek_off));
  return ok_status();
}

}  // namespace

Status make_unix_sockets(const Files& files, const TreePlan& plan) {
  std::map<uint64_t, const UnixSocketRec*> rec;
  for (auto& s : files.unix_sockets) rec[s.file_id] = &s;
  std::map<uint64_t, UniqueFd> fd;        // file id -> the socket made
  std::map<uint64_t, UniqueFd> partner;   // file id -> the stand-in of its closed peer
  const int kFlags = SOCK_CLOEXEC | SOCK_NONBLOCK;
  auto accepted = [](const UnixSocketRec& s) { return s.listener && s.peer_kind != "pending"; };
  auto back = [&](const UnixSocketRec& s) {  // its peer in the tree is connected back to it
    if (s.peer_kind != "tree") return false;
    const UnixSocketRec& p = *rec.at(s.peer);
    return p.peer_kind == "tree" && p.peer == s.file_id;
  };
  // 1. Make them.
  for (auto& s : files.unix_sockets) {
    if (fd.count(s.file_id) || accepted(s)) continue;
    bool pair = back(s) && !rec.at(s.peer)->listener;
    bool stand_in = s.peer_kind == "closed" || (s.peer_kind == "external" && s.peer_name.empty());
    if (pair || stand_in) {
      int sv[2];
      if (socketpair(AF_UNIX, s.type | kFlags, 0, sv) < 0) return make_errno(errno, "%s: socketpair", describe(s).c_str());
      fd[s.file_id] = UniqueFd(sv[0]);
      (pair ? fd[s.peer] : partner[s.file_id]) = UniqueFd(sv[1]);
      continue;
    }
    UniqueFd sk(socket(AF_UNIX, s.type | kFlags, 0));
    if (!sk.valid()) return make_errno(errno, "%s: socket", describe(s).c_str());
    fd[s.file_id] = std::move(sk);
  }
  // 2. Names and listeners.
  for (auto& s : files.unix_sockets)
    if (!s.name.empty() && !accepted(s)) TRY_STATUS(bind_name(fd.at(s.file_id).get(), s));
  for (auto& s : files.unix_sockets)
    if (s.state == "listening" && listen(fd.at(s.file_id).get(), static_cast<int>(s.backlog)) < 0)
      return make_errno(errno, "%s: listen", describe(s).c_str());
  // 3. Connections through listeners, then datagram sockets connected one way.
  for (auto& l : files.unix_sockets) {
    if (l.state != "listening") continue;
    for (auto& s : files.unix_sockets) {
      if (s.listener != l.file_id || !accepted(s)) continue;
      if (s.peer_kind == "tree") {
        TRY_STATUS(connect_to(fd.at(s.peer).get(), *rec.at(s.peer), l));
      } else {  // its client is gone: a stand-in connects, closed once the queue is filled
        UniqueFd c(socket(AF_UNIX, s.type | kFlags, 0));
        if (!c.valid()) return make_errno(errno, "%s: socket", describe(s).c_str());
        TRY_STATUS(connect_to(c.get(), s, l));
        partner[s.file_id] = std::move(c);
      }
      UniqueFd a(accept4(fd.at(l.file_id).get(), nullptr, nullptr, kFlags));
      if (!a.valid()) return make_errno(errno, "%s: accept on %s", describe(s).c_str(), printable(l).c_str());
      fd[s.file_id] = std::move(a);
    }
    for (uint64_t c : l.pending) TRY_STATUS(connect_to(fd.at(c).get(), *rec.at(c), l));
  }
  for (auto& s : files.unix_sockets)
    if (s.type == SOCK_DGRAM && s.peer_kind == "tree" && !back(s))
      TRY_STATUS(connect_to(fd.at(s.file_id).get(), s, *rec.at(s.peer)));
    else if (!s.peer_name.empty())  // its peer outside the tree, by name
      TRY_STATUS(connect_name(fd.at(s.file_id).get(), s, s.peer_name, ""));
  // 4. Queues, sent by whoever can send to each socket.
  for (auto& s : files.unix_sockets) {
    if (s.queue.empty()) continue;
    if (partner.count(s.file_id)) {
      TRY_STATUS(fill_queue(s, partner.at(s.file_id).get(), nullptr));
    } else if (back(s)) {
      TRY_STATUS(fill_queue(s, fd.at(s.peer).get(), nullptr));
    } else if (s.peer_kind == "tree") {  // a datagram socket connected to a peer not connected back
      TRY_STATUS(fill_queue(s, fd.at(s.peer).get(), &s));
    } else {  // an unconnected datagram socket with a name
      UniqueFd tmp(socket(AF_UNIX, s.type | kFlags, 0));
      if (!tmp.valid()) return make_errno(errno, "%s: socket", describe(s).c_str());
      TRY_STATUS(fill_queue(s, tmp.get(), &s));
    }
  }
  // 5. Options, shutdown, the stand-ins closed, unlinked names, status
  // flags, and each at its transit number.
  for (auto& s : files.unix_sockets) {
    int sk = fd.at(s.file_id).get();
    TRY_STATUS(set_options(sk, s));
    int how = (s.shutdown & 3) == 3 ? SHUT_RDWR : (s.shutdown & 1) ? SHUT_RD : (s.shutdown & 2) ? SHUT_WR : -1;
    if (how >= 0 && !partner.count(s.file_id) && shutdown(sk, how) < 0)
      return make_errno(errno, "%s: shutdown", describe(s).c_str());
  }
  partner.clear();
  for (auto& s : files.unix_sockets) {
    if (!s.unlinked || accepted(s)) continue;
    TRY_STATUS(in_dir(s.dir, [&]() -> Status {
      std::string path(s.name.data.begin(), s.name.data.end());
      if (unlink(path.c_str()) < 0) return make_errno(errno, "%s: cannot unlink %s again", describe(s).c_str(), path.c_str());
      return ok_status();
    }));
  }
  for (auto& f : files.files) {
    if (f.type != "unix") continue;
    auto t = plan.transit_fd.find(f.id);
    if (t == plan.transit_fd.end()) continue;
    int sk = fd.at(f.id).get();
    int fl = fcntl(sk, F_GETFL);
    if (fl < 0 || fcntl(sk, F_SETFL, (fl & ~O_NONBLOCK) | (f.flags & O_NONBLOCK)) < 0)
      return make_errno(errno, "unix socket %llu: F_SETFL", (unsigned long long)f.id);
    if (dup3(sk, t->second, O_CLOEXEC) < 0)
      return make_errno(errno, "unix socket %llu: cannot place it at fd %d", (unsigned long long)f.id, t->second);
  }
  return ok_status();
}

Status check_unix_sockets_here(const Files& files) {
  for (const UnixSocketRec& s : files.unix_sockets) {
    const std::string what = "files.img: " + describe(s);
    struct stat st;
    if (!s.dir.empty() && (stat(s.dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)))
      return make_error("%s: dir %s is not a directory here", what.c_str(), s.dir.c_str());
    // A path it binds: its directory is there, and the path holds nothing
    // but maybe an old socket file (bind_name removes that one).
    if (s.name.empty() || s.name.data[0] == 0 || (s.listener && s.peer_kind != "pending")) continue;  // accepted: the listener's name
    std::string path(s.name.data.begin(), s.name.data.end());
    path.resize(strnlen(path.c_str(), path.size()));
    if (!s.dir.empty() && path[0] != '/') path = s.dir + "/" + path;
    const size_t slash = path.rfind('/');
    const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (stat(parent.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
      return make_error("%s: name %s: its directory is not there", what.c_str(), path.c_str());
    if (lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
      return make_error("%s: name %s: the path exists and is not a socket", what.c_str(), path.c_str());
  }
  return ok_status();
}

}  // namespace cr
