// Process probes: clone3 with set_tid, kcmp, pidfds, namespaces, the cgroup
// freezer.
#include <fcntl.h>
#include <linux/kcmp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/fd.h"
#include "common/kernel/probe_child.h"
#include "common/kernel/probes.h"
#include "common/strings.h"
#include "common/kernel/uapi.h"

namespace cr::probe {

namespace {


long sys_kcmp(pid_t a, pid_t b, int type, unsigned long x, unsigned long y) {
  return syscall(SYS_kcmp, a, b, type, x, y);
}

// Fork inside a probe child: the grandchild runs fn and exits with its
// result; the caller reaps it. Messages travel back over a pipe as one line.
struct Sub {
  pid_t pid = -1;
  int from = -1;
};

Result<Sub> fork_sub(std::function<std::string()> fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC)) return make_errno(errno, "pipe");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return make_errno(e, "fork");
  }
  if (pid == 0) {
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent && getppid() != 0) _exit(127);
    std::string msg = fn();
    (void)!write(p[1], msg.data(), msg.size());
    _exit(0);
  }
  close(p[1]);
  return Sub{pid, p[0]};
}

// Read the grandchild's whole message, then reap it.
std::string finish_sub(Sub s) {
  std::string msg;
  char b[512];
  while (true) {
    ssize_t n = read(s.from, b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(b, n);
  }
  close(s.from);
  int st = 0;
  while (waitpid(s.pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (msg.empty()) msg = "error the helper process " + describe_wait_status(st) + " without a word";
  return msg;
}

// "ok ..." → detail, "error ..." → Error.
Result<std::string> verdict(const std::string& msg) {
  if (msg.rfind("ok", 0) == 0) return msg.size() > 3 ? msg.substr(3) : std::string();
  return make_error("%s", msg.rfind("error ", 0) == 0 ? msg.c_str() + 6 : msg.c_str());
}

std::string errmsg(const char* what) { return std::string("error ") + what + ": " + strerror(errno); }

}  // namespace

// ---------------------------------------------------------------- clone3

Result<std::string> clone3_set_tid() {
  return run_in_child("clone3-set-tid", []() -> Result<std::string> {
    if (unshare(CLONE_NEWPID)) return make_errno(errno, "unshare(CLONE_NEWPID) for a scratch pid namespace");
    Sub init = TRY(fork_sub([]() -> std::string {
      // pid 1 of the new namespace: create pid 1234 as restore would.
      if (getpid() != 1) return strprintf("error the first task of a new pid namespace has pid %d, not 1", getpid());
      constexpr pid_t kWant = 1234;
      pid_t tid = kWant;
      struct clone_args a;
      memset(&a, 0, sizeof a);
      a.exit_signal = SIGCHLD;
      a.set_tid = reinterpret_cast<uintptr_t>(&tid);
      a.set_tid_size = 1;
      long r = syscall(SYS_clone3, &a, sizeof a);
      if (r == 0) _exit(getpid() == kWant ? 0 : 1);
      if (r < 0) return errmsg("clone3 with set_tid = {1234}");
      int st = 0;
      waitpid(static_cast<pid_t>(r), &st, 0);
      if (r != kWant) return strprintf("error clone3 with set_tid = {1234} created pid %ld", r);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return "error the task created as pid 1234 saw another pid";
      // A pid in use must fail with EEXIST: that is how restore tells a pid
      // held by a zombie.
      tid = 1;
      r = syscall(SYS_clone3, &a, sizeof a);
      if (r == 0) _exit(0);
      if (r > 0) {
        waitpid(static_cast<pid_t>(r), &st, 0);
        return "error clone3 with set_tid = {1} succeeded while pid 1 was alive";
      }
      if (errno != EEXIST) return errmsg("clone3 with a taken pid did not fail with EEXIST");
      return "ok";
    }));
    TRY(verdict(finish_sub(init)));
    return std::string("clone3 created pid 1234 in a new pid namespace; a taken pid failed with EEXIST");
  });
}

// ---------------------------------------------------------------- kcmp

Result<std::string> kcmp() {
  int p[2];
  if (pipe2(p, O_CLOEXEC)) return make_errno(errno, "pipe");
  UniqueFd r(p[0]), w(p[1]);
  auto child = TRY(ProbeChild::spawn("kcmp", [](ChildIo& io) {
    io.send("ready");
    io.recv();
    return 0;
  }));
  TRY_STATUS(child->expect("ready"));
  pid_t self = getpid(), pid = child->pid();
  struct Check {
    const char* what;
    int type;
    unsigned long a, b;
    bool same;
  } checks[] = {
      {"an inherited open file", KCMP_FILE, (unsigned long)r.get(), (unsigned long)r.get(), true},
      {"two different files", KCMP_FILE, (unsigned long)r.get(), (unsigned long)w.get(), false},
      {"the address spaces", KCMP_VM, 0, 0, false},
      {"the file tables", KCMP_FILES, 0, 0, false},
      {"the fs information", KCMP_FS, 0, 0, false},
  };
  for (auto& c : checks) {
    long v = sys_kcmp(self, pid, c.type, c.a, c.b);
    if (v < 0) return make_errno(errno, "kcmp of %s", c.what);
    if ((v == 0) != c.same) return make_error("kcmp called %s %s", c.what, v == 0 ? "the same" : "different");
  }
  if (sys_kcmp(self, self, KCMP_VM, 0, 0) != 0) return make_error("kcmp says this task's mm differs from itself");
  return std::string("kcmp told an inherited file shared, and two files, mm, file tables and fs apart");
}

// ---------------------------------------------------------------- pidfd

Result<std::string> pidfd_open() {
  auto child = TRY(ProbeChild::spawn("pidfd-open", [](ChildIo& io) {
    io.send("ready");
    io.recv();
    return 0;
  }));
  TRY_STATUS(child->expect("ready"));
  UniqueFd pfd(static_cast<int>(syscall(SYS_pidfd_open, child->pid(), 0)));
  if (!pfd.valid()) return make_pid_error(child->pid(), errno, "pidfd_open");
  struct pollfd p = {pfd.get(), POLLIN, 0};
  if (poll(&p, 1, 0) != 0) return make_error("a pidfd polls readable while its task is alive");
  if (syscall(SYS_pidfd_send_signal, pfd.get(), SIGKILL, nullptr, 0))
    return make_pid_error(child->pid(), errno, "pidfd_send_signal");
  p.revents = 0;
  int n = poll(&p, 1, kTimeoutMs);
  if (n != 1 || !(p.revents & POLLIN)) return make_error("a pidfd did not poll readable when its task died");
  int st = TRY(child->wait_exit());
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
    return make_error("the child %s instead of dying of pidfd_send_signal", describe_wait_status(st).c_str());
  return std::string("pidfd_open, pidfd_send_signal and exit notification by poll");
}

Result<std::string> pidfd_getfd() {
  auto child = TRY(ProbeChild::spawn("pidfd-getfd", [](ChildIo& io) {
    int q[2];
    if (pipe2(q, O_CLOEXEC)) {
      io.send("error pipe: " + std::string(strerror(errno)));
      return 1;
    }
    io.send("fd " + std::to_string(q[1]));
    if (io.recv() != "check") return 0;
    char c = 0;
    if (read(q[0], &c, 1) != 1) c = '?';
    io.send(std::string("got ") + c);
    io.recv();
    return 0;
  }));
  std::string l = TRY(child->recv());
  int fd = -1;
  if (sscanf(l.c_str(), "fd %d", &fd) != 1) return make_error("probe child: %s", l.c_str());
  UniqueFd pfd(static_cast<int>(syscall(SYS_pidfd_open, child->pid(), 0)));
  if (!pfd.valid()) return make_pid_error(child->pid(), errno, "pidfd_open");
  UniqueFd dup(static_cast<int>(syscall(SYS_pidfd_getfd, pfd.get(), fd, 0)));
  if (!dup.valid()) return make_pid_error(child->pid(), errno, "pidfd_getfd of fd %d", fd);
  if (write(dup.get(), "x", 1) != 1) return make_errno(errno, "write to the descriptor taken by pidfd_getfd");
  TRY_STATUS(child->send("check"));
  TRY_STATUS(child->expect("got x"));
  return std::string("pidfd_getfd took a child's pipe end; a byte written to it reached the child");
}

// ---------------------------------------------------------------- namespaces

namespace {

Result<ino_t> ns_inode(const char* file) {
  std::string p = std::string("/proc/self/ns/") + file;
  struct stat st;
  if (stat(p.c_str(), &st)) return make_errno(errno, "cannot stat %s", p.c_str());
  return st.st_ino;
}

// In a child: unshare(flag), check /proc/self/ns/<name> (or
// <name>_for_children) changed, then exercise the new namespace.
Result<std::string> ns_probe(const char* feature, int flag, const char* flag_name, const char* name,
                             bool for_children, std::function<Result<std::string>()> exercise) {
  return run_in_child(feature, [=]() -> Result<std::string> {
    ino_t before = TRY(ns_inode(name));
    if (unshare(flag)) return make_errno(errno, "unshare(%s)", flag_name);
    std::string after_name = std::string(name) + (for_children ? "_for_children" : "");
    ino_t after = TRY(ns_inode(after_name.c_str()));
    if (after == before) return make_error("unshare(%s) left /proc/self/ns/%s unchanged", flag_name, after_name.c_str());
    std::string more = exercise ? TRY(exercise()) : std::string();
    return strprintf("unshare(%s) made a new namespace%s%s", flag_name, more.empty() ? "" : "; ", more.c_str());
  });
}

}  // namespace

Result<std::string> ns_uts() {
  return ns_probe("ns-uts", CLONE_NEWUTS, "CLONE_NEWUTS", "uts", false, []() -> Result<std::string> {
    const char name[] = "crtools-probe";
    if (sethostname(name, sizeof name - 1)) return make_errno(errno, "sethostname in the new namespace");
    struct utsname u;
    if (uname(&u) || strcmp(u.nodename, name) != 0) return make_error("uname does not show the new hostname");
    return std::string("sethostname took effect in it");
  });
}

Result<std::string> ns_ipc() {
  return ns_probe("ns-ipc", CLONE_NEWIPC, "CLONE_NEWIPC", "ipc", false, nullptr);
}

Result<std::string> ns_net() {
  return ns_probe("ns-net", CLONE_NEWNET, "CLONE_NEWNET", "net", false, []() -> Result<std::string> {
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) return make_errno(errno, "socket in the new namespace");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s.get(), SIOCGIFFLAGS, &ifr)) return make_errno(errno, "SIOCGIFFLAGS lo");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s.get(), SIOCSIFFLAGS, &ifr)) return make_errno(errno, "bringing lo up");
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s.get(), (sockaddr*)&a, sizeof a)) return make_errno(errno, "bind to 127.0.0.1");
    socklen_t len = sizeof a;
    getsockname(s.get(), (sockaddr*)&a, &len);
    if (sendto(s.get(), "x", 1, 0, (sockaddr*)&a, sizeof a) != 1) return make_errno(errno, "sendto over lo");
    char c;
    struct pollfd p = {s.get(), POLLIN, 0};
    if (poll(&p, 1, 2000) != 1 || recv(s.get(), &c, 1, 0) != 1) return make_error("no datagram over lo");
    return std::string("lo came up and carried a datagram");
  });
}

Result<std::string> ns_mnt() {
  return ns_probe("ns-mnt", CLONE_NEWNS, "CLONE_NEWNS", "mnt", false, []() -> Result<std::string> {
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr))
      return make_errno(errno, "making / private in the new namespace");
    if (mount("crtools-probe", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k"))
      return make_errno(errno, "mounting a tmpfs in the new namespace");
    std::string mi = TRY(read_file("/proc/self/mountinfo"));
    if (mi.find(" /tmp ") == std::string::npos || mi.find("crtools-probe") == std::string::npos)
      return make_error("the new mount is not in /proc/self/mountinfo");
    return std::string("a private tmpfs mount showed in its mountinfo");
  });
}

Result<std::string> ns_pid() {
  // pid_for_children names the new namespace only once its first task
  // exists, so that task compares its own /proc/self/ns/pid.
  return run_in_child("ns-pid", []() -> Result<std::string> {
    ino_t before = TRY(ns_inode("pid"));
    if (unshare(CLONE_NEWPID)) return make_errno(errno, "unshare(CLONE_NEWPID)");
    Sub s = TRY(fork_sub([before]() -> std::string {
      auto now = ns_inode("pid");
      if (!now) return "error " + now.error().str();
      if (*now == before) return "error the first task after unshare(CLONE_NEWPID) is in the old namespace";
      return getpid() == 1 ? "ok" : strprintf("error the first task in it has pid %d, not 1", getpid());
    }));
    TRY(verdict(finish_sub(s)));
    return std::string("unshare(CLONE_NEWPID) made a new namespace; its first task is pid 1");
  });
}

Result<std::string> ns_user() {
  return run_in_child("ns-user", []() -> Result<std::string> {
    // Restore creates the namespace in a child and writes its maps from outside.
    int go[2];
    if (pipe2(go, O_CLOEXEC)) return make_errno(errno, "pipe");
    UniqueFd go_r(go[0]), go_w(go[1]);
    ino_t before = TRY(ns_inode("user"));
    int ready[2];
    if (pipe2(ready, O_CLOEXEC)) return make_errno(errno, "pipe");
    UniqueFd ready_r(ready[0]), ready_w(ready[1]);
    int gr = go_r.get(), gw = go_w.get(), rr = ready_r.get(), rw = ready_w.get();
    Sub s = TRY(fork_sub([gr, gw, rr, rw, before]() -> std::string {
      // Keep only our ends, so that the parent closing its end is an EOF here.
      close(gw);
      close(rr);
      if (unshare(CLONE_NEWUSER)) return errmsg("unshare(CLONE_NEWUSER)");
      auto after = ns_inode("user");
      if (!after || *after == before) return "error unshare(CLONE_NEWUSER) left /proc/self/ns/user unchanged";
      (void)!write(rw, "u", 1);
      char c;
      if (read(gr, &c, 1) != 1) return "error the parent did not write the id maps";
      if (getuid() != 0 || getgid() != 0)
        return strprintf("error after the maps were written the task has uid %d gid %d, not 0", getuid(), getgid());
      // Root of the new namespace may create namespaces it owns.
      if (unshare(CLONE_NEWUTS)) return errmsg("unshare(CLONE_NEWUTS) as root of the new user namespace");
      return "ok";
    }));
    ready_w.reset();
    go_r.reset();
    char c;
    if (read(ready_r.get(), &c, 1) != 1) return verdict(finish_sub(s));
    for (const char* f : {"uid_map", "gid_map"}) {
      std::string p = "/proc/" + std::to_string(s.pid) + "/" + f;
      UniqueFd m(open(p.c_str(), O_WRONLY | O_CLOEXEC));
      if (!m.valid() || write(m.get(), "0 0 1\n", 6) != 6) {
        int e = errno;
        go_w.reset();
        (void)finish_sub(s);
        return make_errno(e, "writing %s", p.c_str());
      }
    }
    (void)!write(go_w.get(), "g", 1);
    go_w.reset();
    TRY(verdict(finish_sub(s)));
    return std::string("unshare(CLONE_NEWUSER) in a child, its uid/gid maps written from outside, and it acted as "
                       "root inside");
  });
}

Result<std::string> ns_cgroup() {
  return ns_probe("ns-cgroup", CLONE_NEWCGROUP, "CLONE_NEWCGROUP", "cgroup", false, []() -> Result<std::string> {
    std::string cg = TRY(read_file("/proc/self/cgroup"));
    size_t at = cg.find("0::");
    if (at != std::string::npos && cg.compare(at, 5, "0::/\n") != 0)
      return make_error("/proc/self/cgroup does not show '/' as the cgroup v2 root inside the namespace");
    return std::string("its cgroup root is '/'");
  });
}

Result<std::string> ns_time() {
  return ns_probe("ns-time", CLONE_NEWTIME, "CLONE_NEWTIME", "time", true, []() -> Result<std::string> {
    constexpr long kOffset = 86400;
    {
      UniqueFd f(open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
      std::string off = strprintf("monotonic %ld 0\nboottime %ld 0\n", kOffset, kOffset);
      if (!f.valid() || write(f.get(), off.data(), off.size()) != (ssize_t)off.size())
        return make_errno(errno, "writing /proc/self/timens_offsets");
    }
    struct timespec outside;
    clock_gettime(CLOCK_MONOTONIC, &outside);
    Sub s = TRY(fork_sub([outside]() -> std::string {
      struct timespec inside;
      clock_gettime(CLOCK_MONOTONIC, &inside);
      if (inside.tv_sec < outside.tv_sec + kOffset - 1)
        return strprintf("error CLOCK_MONOTONIC inside is %ld s, outside %ld s: the offset did not apply",
                   (long)inside.tv_sec, (long)outside.tv_sec);
      return "ok";
    }));
    TRY(verdict(finish_sub(s)));
    return std::string("a monotonic offset written to timens_offsets showed inside");
  });
}

// ---------------------------------------------------------------- freezer

namespace {

struct MountPoint {
  std::string path, fstype, superopts;
};

Result<std::vector<MountPoint>> mounts() {
  std::string mi = TRY(read_file("/proc/self/mountinfo"));
  std::vector<MountPoint> out;
  size_t pos = 0;
  while (pos < mi.size()) {
    size_t nl = mi.find('\n', pos);
    std::string line = mi.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? mi.size() : nl + 1;
    std::vector<std::string> f;
    size_t p = 0;
    while (p < line.size()) {
      size_t sp = line.find(' ', p);
      f.push_back(line.substr(p, sp == std::string::npos ? std::string::npos : sp - p));
      p = sp == std::string::npos ? line.size() : sp + 1;
    }
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); i++)
      if (f[i] == "-") {
        dash = i;
        break;
      }
    if (dash == 0 || dash + 1 >= f.size()) continue;
    MountPoint m;
    m.path = f[4];
    m.fstype = f[dash + 1];
    m.superopts = dash + 3 < f.size() ? f[dash + 3] : "";
    out.push_back(m);
  }
  return out;
}

// Our cgroup path in the hierarchy whose /proc/self/cgroup line starts with key.
std::string own_cgroup(const std::string& text, const std::string& key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string ctl = line.substr(c1 + 1, c2 - c1 - 1);
    bool match = key.empty() ? line.compare(0, 3, "0::") == 0 : ("," + ctl + ",").find("," + key + ",") != std::string::npos;
    if (match) return line.substr(c2 + 1);
  }
  return "";
}

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

Status write_text(const std::string& path, const std::string& text) {
  UniqueFd f(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!f.valid()) return make_errno(errno, "cannot open %s", path.c_str());
  if (write(f.get(), text.data(), text.size()) != (ssize_t)text.size())
    return make_errno(errno, "writing '%s' to %s", text.c_str(), path.c_str());
  return ok_status();
}

// Poll a cgroup file until it contains `want`.
Status wait_for(const std::string& path, const std::string& want) {
  for (int i = 0; i < 2000; i++) {
    auto t = read_file(path.c_str());
    if (t && t->find(want) != std::string::npos) return ok_status();
    struct timespec ts = {0, 2500000};
    nanosleep(&ts, nullptr);
  }
  return make_error("%s did not show '%s' within 5 s", path.c_str(), want.c_str());
}

// A scratch cgroup, removed on destruction (after its task is reaped).
struct ScratchCgroup {
  std::string path;
  ~ScratchCgroup() {
    if (path.empty()) return;
    for (int i = 0; i < 200 && rmdir(path.c_str()) != 0 && errno == EBUSY; i++) {
      struct timespec ts = {0, 5000000};
      nanosleep(&ts, nullptr);
    }
  }
};

// Thaws the cgroup when it goes away, on every path: a task frozen by the
// v1 freezer cannot even die of SIGKILL until it is thawed.
struct Thaw {
  std::string ctl;
  bool v2;
  ~Thaw() {
    if (!ctl.empty()) (void)write_text(ctl, v2 ? "0" : "THAWED");
  }
};

// Freeze a child through a scratch cgroup under parent_dir.
Result<std::string> freeze_child(const std::string& parent_dir, bool v2) {
  ScratchCgroup cg;  // destroyed last: removed once its task is reaped
  std::string dir = parent_dir + "/crtools-probe-" + std::to_string(getpid());
  if (mkdir(dir.c_str(), 0700) && errno != EEXIST) return make_errno(errno, "cannot create cgroup %s", dir.c_str());
  cg.path = dir;
  std::string ctl = dir + (v2 ? "/cgroup.freeze" : "/freezer.state");
  if (!exists(ctl)) return make_error("%s is missing", ctl.c_str());
  auto child = TRY(ProbeChild::spawn("cgroup-freezer", [](ChildIo& io) {
    io.send("ready");
    while (io.recv() == "ping") io.send("pong");
    return 0;
  }));
  TRY_STATUS(child->expect("ready"));
  TRY_STATUS(write_text(dir + "/cgroup.procs", std::to_string(child->pid())));
  std::string state = v2 ? dir + "/cgroup.events" : ctl;
  Thaw thaw{ctl, v2};  // destroyed first: thawed before the child is killed
  TRY_STATUS(write_text(ctl, v2 ? "1" : "FROZEN"));
  TRY_STATUS(wait_for(state, v2 ? "frozen 1" : "FROZEN"));
  // A frozen task must not answer.
  TRY_STATUS(child->send("ping"));
  auto early = child->recv(100);
  if (early) return make_error("a task in a frozen cgroup still ran");
  TRY_STATUS(write_text(ctl, v2 ? "0" : "THAWED"));
  TRY_STATUS(wait_for(state, v2 ? "frozen 0" : "THAWED"));
  TRY_STATUS(child->expect("pong"));
  thaw.ctl.clear();
  child->kill_and_reap();
  return strprintf("froze and thawed a child through %s", ctl.c_str());
}

}  // namespace

Result<std::string> cgroup_freezer() {
  auto ms = TRY(mounts());
  std::string cgtext = TRY(read_file("/proc/self/cgroup"));
  std::string why;
  for (auto& m : ms) {
    if (m.fstype != "cgroup2") continue;
    std::string own = own_cgroup(cgtext, "");
    std::string dir = m.path + (own == "/" ? "" : own);
    if (!exists(dir)) dir = m.path;
    auto r = freeze_child(dir, true);
    if (r) return "cgroup v2: " + *r;
    why = "cgroup v2: " + r.error().str();
    break;
  }
  for (auto& m : ms) {
    if (m.fstype != "cgroup" || ("," + m.superopts + ",").find(",freezer,") == std::string::npos) continue;
    std::string own = own_cgroup(cgtext, "freezer");
    std::string dir = m.path + (own == "/" ? "" : own);
    if (!exists(dir)) dir = m.path;
    auto r = freeze_child(dir, false);
    if (r) return "cgroup v1 freezer (" + *r + ")" + (why.empty() ? "" : "; " + why);
    why += (why.empty() ? "" : "; ") + std::string("cgroup v1: ") + r.error().str();
    break;
  }
  if (why.empty()) return make_error("no cgroup2 mount and no cgroup v1 freezer mount");
  return make_error("%s", why.c_str());
}

// ---------------------------------------------------------------- posix timers

Result<std::string> posix_timer_ids() {
  return run_in_child("posix-timer-ids", []() -> Result<std::string> {
    if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) != 0)
      return make_errno(errno, "prctl(PR_TIMER_CREATE_RESTORE_IDS)");
    int id = 7;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id) != 0) return make_errno(errno, "timer_create id 7");
    if (id != 7) return make_error("timer_create gave id %d, not the 7 asked for", id);
    id = 7;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id) == 0 || errno != EBUSY)
      return make_error("a second timer_create with id 7 did not fail with EBUSY");
    return std::string("timer_create made timer 7 as asked; asking again for 7 failed with EBUSY");
  });
}

// ---------------------------------------------------------------- SysV shm ids

// In a new IPC namespace of its own (shm_next_id is per namespace since
// Linux 5.x's per-namespace ipc sysctls), so that the probe neither leaves
// a segment nor takes the next id a restore running meanwhile has just
// written in the host's: ask for id 5 * 32768 + 7, make a segment, check.
Result<std::string> sysv_shm_next_id() {
  return ns_probe("sysv-shm-next-id", CLONE_NEWIPC, "CLONE_NEWIPC", "ipc", false, []() -> Result<std::string> {
    const int want = 5 * 32768 + 7;  // sequence 5, index 7 (ipcmni 32768)
    {
      UniqueFd f(open("/proc/sys/kernel/shm_next_id", O_WRONLY | O_CLOEXEC));
      if (!f.valid()) return make_errno(errno, "cannot open /proc/sys/kernel/shm_next_id for writing");
      std::string v = std::to_string(want);
      if (write(f.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size()))
        return make_errno(errno, "cannot write /proc/sys/kernel/shm_next_id");
    }
    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | IPC_EXCL | 0600);
    if (id < 0) return make_errno(errno, "shmget after setting shm_next_id");
    shmctl(id, IPC_RMID, nullptr);
    if (id != want) return make_error("shmget made segment %d, not the %d written to shm_next_id", id, want);
    return strprintf("shmget made segment %d as written to shm_next_id", id);
  });
}

}  // namespace cr::probe
