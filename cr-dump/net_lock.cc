// The network lock of a dump (cr-dump/dump.h NetLock; the nftables side:
// common/net_lock.cc).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/kernel/features.h"
#include "common/log.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {
NetLock* g_current = nullptr;
}  // namespace

NetLock* current_net_lock() { return g_current; }

NetLock::NetLock(pid_t root, bool tcp_established) : root_(root), tcp_established_(tcp_established) {
  g_current = this;
}

NetLock::~NetLock() {
  if (auto st = undo(); !st) log_error(st.error());
  if (g_current == this) g_current = nullptr;
}

Status NetLock::add(pid_t pid, int fd, int sk, const TcpTuple& t) {
  if (!table_made_) {
    if (auto st = require_feature(Feature::NftNetLock); !st) {
      Error e = make_pid_error(pid, 0, "fd %d: established TCP connection: cannot lock the network until restore (%s)",
                               fd, st.error().message.c_str());
      e.remedy = "install nftables (the nft command); see 'crtools check'";
      return e;
    }
  }
  // The guard first (cr-dump/dump.h NetLockGuard): whatever is locked
  // from here is lifted even if cr-dump is SIGKILLed.
  if (!guard_.running())
    if (auto st = guard_.start(root_); !st)
      return make_pid_error(pid, 0, "fd %d: cannot lock its TCP connection: %s", fd, st.error().message.c_str());
  // The rule first: from here nothing reaches either end. Both ends of a
  // connection inside the tree share one pair of rules.
  // (An IPv4-mapped address is its IPv4 one: the two ends of an IPv4
  // connection accepted by a dual-stack listener show both forms.)
  auto plain = [](const std::string& a) {
    return a.rfind("::ffff:", 0) == 0 && a.find('.') != std::string::npos ? a.substr(7) : a;
  };
  std::string here = plain(t.local_addr) + " " + std::to_string(t.local_port);
  std::string there = plain(t.peer_addr) + " " + std::to_string(t.peer_port);
  if (locked_tuples_.insert(here < there ? here + " " + there : there + " " + here).second) {
    table_made_ = true;  // (a failed nft -f makes nothing, and undo's delete finds no table)
    if (auto st = net_lock(root_, {t}); !st)
      return make_pid_error(pid, 0, "fd %d: cannot lock its TCP connection: %s", fd, st.error().message.c_str());
  }
  UniqueFd copy(fcntl(sk, F_DUPFD_CLOEXEC, 0));
  if (!copy.valid()) return make_pid_error(pid, errno, "fd %d: dup of its socket", fd);
  // Repair mode sets sk_reuse to SK_FORCE_REUSE and leaving it to
  // SK_NO_REUSE (6.18 do_tcp_setsockopt): the program's SO_REUSEADDR is
  // kept here to be put back by undo().
  int reuse = 0;
  socklen_t rl = sizeof reuse;
  if (getsockopt(copy.get(), SOL_SOCKET, SO_REUSEADDR, &reuse, &rl) < 0)
    return make_pid_error(pid, errno, "fd %d: getsockopt SO_REUSEADDR", fd);
  // The guard gets its copy before repair mode: it can only undo what it
  // holds (taking a socket out of repair mode that is not in it is
  // harmless: a window probe).
  if (auto st = guard_.hand(copy.get(), reuse); !st)
    return make_pid_error(pid, 0, "fd %d: cannot lock its TCP connection: %s", fd, st.error().message.c_str());
  int on = TCP_REPAIR_ON;
  if (setsockopt(copy.get(), SOL_TCP, TCP_REPAIR, &on, sizeof on) < 0) {
    Error e = make_pid_error(pid, errno, "fd %d: cannot put its TCP connection in repair mode (TCP_REPAIR)", fd);
    e.remedy = "see 'crtools check' (tcp-repair); cr-dump needs CAP_NET_ADMIN";
    return e;
  }
  repaired_.push_back({std::move(copy), reuse});
  locked_++;
  return ok_status();
}

void NetLock::killing() { guard_.killing(); }

void NetLock::release_killed() {
  // Closed in repair mode: tcp_disconnect sends no RST (6.18 tcp_close ->
  // tcp_disconnect, repair branch), and the rule drops anything else. The
  // guard closes its copies too, before this returns.
  repaired_.clear();
  table_made_ = false;
  guard_.closed();
}

Status NetLock::undo() {
  Status first = ok_status();
  for (auto& s : repaired_) {
    // TCP_REPAIR_OFF also sends a window probe, which the rule drops; the
    // connection's timers take over once the table is gone. Leaving repair
    // mode resets SO_REUSEADDR: put the program's back.
    int off = TCP_REPAIR_OFF;
    if (setsockopt(s.fd.get(), SOL_TCP, TCP_REPAIR, &off, sizeof off) < 0 && first)
      first = make_errno(errno, "cannot take a TCP connection out of repair mode");
    if (setsockopt(s.fd.get(), SOL_SOCKET, SO_REUSEADDR, &s.reuse, sizeof s.reuse) < 0 && first)
      first = make_errno(errno, "cannot give a TCP connection its SO_REUSEADDR back");
  }
  repaired_.clear();
  if (table_made_) {
    table_made_ = false;
    if (auto st = net_unlock(root_); !st && first) first = st;
  }
  guard_.undone();
  return first;
}

}  // namespace cr
