// The guard of the network lock (cr-dump/dump.h NetLockGuard): a process
// that outlives a SIGKILLed cr-dump long enough to lift its lock.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fault.h"
#include "common/log.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

constexpr char kSocket = 'S', kKilling = 'K';

// One message: a kind and an int, with at most one fd.
Status send_msg(int ch, char kind, int value = 0, int fd = -1) {
  char b[1 + sizeof(int)];
  b[0] = kind;
  memcpy(b + 1, &value, sizeof value);
  struct iovec iov = {b, sizeof b};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  for (;;) {
    if (sendmsg(ch, &mh, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof b)) return ok_status();
    if (errno != EINTR) return make_errno(errno, "network lock guard: sendmsg");
  }
}

// Close every fd from 3 up but those in `keep`.
void close_all_but(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned lo = 3;
  for (int k : keep) {
    if (k < static_cast<int>(lo)) continue;
    if (static_cast<unsigned>(k) > lo) close_range(lo, static_cast<unsigned>(k) - 1, 0);
    lo = static_cast<unsigned>(k) + 1;
  }
  close_range(lo, ~0U, 0);
}

struct Held {
  UniqueFd fd;
  int reuse;
};

// The guard's life, in the forked child.
[[noreturn]] void guard_main(int ch, pid_t root) {
  FaultsOff off;  // it shares cr-dump's count (common/fault.h): it reaches no point
  // Not in the terminal's process group, deaf to what cr-dump catches:
  // only the end of the channel ends it.
  setsid();
  prctl(PR_SET_NAME, "cr-dump-guard");
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) signal(sig, SIG_IGN);
  // Nothing of cr-dump's: no image (stdout may be the stream), no pidfd,
  // no lock file; stderr and the log file stay for its one line.
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
  }
  close_all_but({ch, log_file_fd()});
  fcntl(ch, F_SETFD, FD_CLOEXEC);  // not for its own nft
  // Whether the root dies, after "killing" (none on a kernel before 5.3).
  UniqueFd root_fd(static_cast<int>(syscall(SYS_pidfd_open, root, 0)));
  std::vector<Held> held;
  bool killing = false;
  for (;;) {
    char b[1 + sizeof(int)] = {};
    struct iovec iov = {b, sizeof b};
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(ch, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    UniqueFd fd;
    for (struct cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&mh) : nullptr; c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
        int x;
        memcpy(&x, CMSG_DATA(c), sizeof x);
        fd.reset(x);
      }
    if (n <= 0) break;  // cr-dump is gone (a broken channel counts as gone)
    int value;
    memcpy(&value, b + 1, sizeof value);
    if (b[0] == kSocket && fd.valid()) held.push_back({std::move(fd), value});
    if (b[0] == kKilling) killing = true;
    if (b[0] == NetLockGuard::kClosed) {
      held.clear();  // in repair mode: closing sends nothing
      _exit(0);
    }
    if (b[0] == NetLockGuard::kUndone) _exit(0);
  }
  // cr-dump ended without saying how the lock ends. If it was killing the
  // tree and the tree dies, the lock stays as after a kill.
  if (killing && root_fd.valid()) {
    struct pollfd p = {root_fd.get(), POLLIN, 0};
    int k;
    while ((k = poll(&p, 1, 5000)) < 0 && errno == EINTR) {
    }
    if (k == 1) {
      pr_warn(root, "network lock guard: cr-dump ended while it killed the tree; the lock stays for restore (nft table inet %s)",
              net_lock_table(root).c_str());
      held.clear();
      _exit(0);
    }
  }
  // Otherwise the tree runs on: lift the lock as NetLock::undo does.
  int failed = 0;
  for (auto& h : held) {
    int off_ = TCP_REPAIR_OFF;
    if (setsockopt(h.fd.get(), SOL_TCP, TCP_REPAIR, &off_, sizeof off_) < 0 ||
        setsockopt(h.fd.get(), SOL_SOCKET, SO_REUSEADDR, &h.reuse, sizeof h.reuse) < 0) {
      pr_err(root, "network lock guard: a TCP connection stays in repair mode: %s", strerror(errno));
      failed++;
    }
  }
  size_t nr = held.size();
  held.clear();
  auto st = net_unlock(root);
  if (!st) log_error(st.error());
  pr_warn(root, "network lock guard: cr-dump ended without lifting its network lock: %zu TCP connections out of repair mode, nft table inet %s %s",
          nr - failed, net_lock_table(root).c_str(), st ? "deleted" : "NOT deleted");
  _exit(st && !failed ? 0 : 1);
}

}  // namespace

Status NetLockGuard::start(pid_t root) {
  TRY_STATUS(fault_point("fork the network lock guard"));
  int sv[2];
  // Ours is inherited by the nft that NetLock runs: the guard's end of
  // file comes only once that nft has ended too (its table made or not).
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) return make_errno(errno, "network lock guard: socketpair");
  UniqueFd ours(sv[0]), theirs(sv[1]);
  pid_t c = fork();
  if (c < 0) return make_errno(errno, "network lock guard: fork");
  if (c == 0) guard_main(theirs.get(), root);
  pr_debug(root, "network lock guard: pid %d", c);
  pid_ = c;
  ch_ = std::move(ours);
  return ok_status();
}

Status NetLockGuard::hand(int sk, int reuse) { return send_msg(ch_.get(), kSocket, reuse, sk); }

void NetLockGuard::killing() {
  if (pid_ <= 0) return;
  if (auto st = send_msg(ch_.get(), kKilling); !st) pr_debug(0, "%s", st.error().message.c_str());
}

void NetLockGuard::end(char how) {
  if (pid_ <= 0) return;
  if (auto st = send_msg(ch_.get(), how); !st) pr_debug(0, "%s", st.error().message.c_str());
  ch_.reset();
  int ws;
  while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace cr
