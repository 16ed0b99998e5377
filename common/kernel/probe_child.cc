#include "common/kernel/probe_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/fd.h"

namespace cr::probe {

namespace {

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, nullptr);
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

bool write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += w;
  }
  return true;
}

}  // namespace

std::string describe_wait_status(int st) {
  char b[96];
  if (WIFEXITED(st)) snprintf(b, sizeof b, "exited with status %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    snprintf(b, sizeof b, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  else if (WIFSTOPPED(st)) snprintf(b, sizeof b, "stopped by signal %d (status 0x%x)", WSTOPSIG(st), st);
  else snprintf(b, sizeof b, "wait status 0x%x", st);
  return b;
}

// ---------------------------------------------------------------- ChildIo

bool ChildIo::send(const std::string& line) { return write_all(out_, one_line(line) + "\n"); }

std::string ChildIo::recv() {
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string l = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return l;
    }
    char b[512];
    ssize_t r = ::read(in_, b, sizeof b);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return "";
    buf_.append(b, r);
  }
}

// ---------------------------------------------------------------- ProbeChild

Result<std::unique_ptr<ProbeChild>> ProbeChild::spawn(const char* what, std::function<int(ChildIo&)> body) {
  int p2c[2], c2p[2];
  if (pipe2(p2c, O_CLOEXEC)) return make_errno(errno, "%s: pipe", what);
  if (pipe2(c2p, O_CLOEXEC)) {
    int e = errno;
    close(p2c[0]);
    close(p2c[1]);
    return make_errno(e, "%s: pipe", what);
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {p2c[0], p2c[1], c2p[0], c2p[1]}) close(fd);
    return make_errno(e, "%s: fork", what);
  }
  if (pid == 0) {
    close(p2c[1]);
    close(c2p[0]);
    // Own process group: the parent can kill whatever this child forks.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    signal(SIGPIPE, SIG_IGN);
    ChildIo io(p2c[0], c2p[1]);
    int rc = body(io);
    _exit(rc);
  }
  // Also from the parent, so that kill(-pid) works whichever runs first.
  setpgid(pid, pid);
  close(p2c[0]);
  close(c2p[1]);
  std::unique_ptr<ProbeChild> c(new ProbeChild());
  c->what_ = what;
  c->pid_ = pid;
  c->to_child_ = p2c[1];
  c->from_child_ = c2p[0];
  return c;
}

ProbeChild::~ProbeChild() {
  kill_and_reap();
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
}

void ProbeChild::kill_and_reap() {
  if (reaped_ || pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  while (true) {
    int st;
    pid_t r = waitpid(pid_, &st, __WALL);
    if (r == pid_) {
      if (WIFEXITED(st) || WIFSIGNALED(st)) {
        exit_status_ = st;
        break;
      }
      continue;  // a ptrace stop reported before the kill took effect
    }
    if (r < 0 && errno == EINTR) continue;
    break;  // ECHILD: nothing left to reap
  }
  reaped_ = true;
}

Status ProbeChild::send(const std::string& line) {
  if (!write_all(to_child_, one_line(line) + "\n"))
    return make_pid_error(pid_, errno, "%s: cannot write to the probe child", what_.c_str());
  return ok_status();
}

Result<std::string> ProbeChild::recv(int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string l = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return l;
    }
    int left = static_cast<int>(deadline - now_ms());
    if (left <= 0)
      return make_pid_error(pid_, 0, "%s: the probe child did not answer within %d ms", what_.c_str(),
                            timeout_ms);
    struct pollfd p = {from_child_, POLLIN, 0};
    int r = poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return make_errno(errno, "%s: poll", what_.c_str());
    if (r == 0) continue;
    char b[1024];
    ssize_t n = ::read(from_child_, b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_errno(errno, "%s: read from the probe child", what_.c_str());
    if (n == 0) {
      auto st = wait_exit(1000);
      std::string how = st ? describe_wait_status(*st) : st.error().message;
      return make_pid_error(pid_, 0, "%s: the probe child ended without answering (%s)", what_.c_str(),
                            how.c_str());
    }
    buf_.append(b, n);
  }
}

Status ProbeChild::expect(const std::string& want, int timeout_ms) {
  std::string got = TRY(recv(timeout_ms));
  if (got != want)
    return make_pid_error(pid_, 0, "%s: %s", what_.c_str(), got.rfind("error ", 0) == 0 ? got.c_str() + 6 : got.c_str());
  return ok_status();
}

Result<int> ProbeChild::wait_status(int timeout_ms) {
  if (reaped_) return exit_status_;
  int64_t deadline = now_ms() + timeout_ms;
  long nap = 50;
  while (true) {
    int st;
    pid_t r = waitpid(pid_, &st, WNOHANG | __WALL);
    if (r == pid_) {
      if (WIFEXITED(st) || WIFSIGNALED(st)) {
        reaped_ = true;
        exit_status_ = st;
      }
      return st;
    }
    if (r < 0 && errno != EINTR) return make_pid_error(pid_, errno, "%s: waitpid", what_.c_str());
    if (now_ms() >= deadline)
      return make_pid_error(pid_, 0, "%s: the probe child did not change state within %d ms", what_.c_str(),
                            timeout_ms);
    sleep_us(nap);
    if (nap < 5000) nap *= 2;
  }
}

Result<int> ProbeChild::wait_exit(int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  while (!reaped_) {
    int left = static_cast<int>(deadline - now_ms());
    auto st = wait_status(left > 0 ? left : 0);
    if (!st) {
      kill_and_reap();
      return make_pid_error(pid_, 0, "%s: the probe child did not finish within %d ms (killed)", what_.c_str(),
                            timeout_ms);
    }
  }
  return exit_status_;
}

// ---------------------------------------------------------------- run_in_child

Result<std::string> run_in_child(const char* what, std::function<Result<std::string>()> body, int timeout_ms) {
  auto child = TRY(ProbeChild::spawn(what, [&body](ChildIo& io) {
    Result<std::string> r = body();
    if (r) io.send("Y " + *r);
    else io.send("N " + std::to_string(r.error().err) + " " + r.error().message);
    return 0;
  }));
  std::string line = TRY(child->recv(timeout_ms));
  auto st = child->wait_exit(timeout_ms);
  if (line.size() >= 2 && line[0] == 'Y' && line[1] == ' ') {
    if (!st) return st.error();
    return line.substr(2);
  }
  if (line.size() >= 2 && line[0] == 'N' && line[1] == ' ') {
    char* end = nullptr;
    long err = strtol(line.c_str() + 2, &end, 10);
    std::string msg = end && *end == ' ' ? std::string(end + 1) : line.substr(2);
    return make_errno(static_cast<int>(err), "%s", msg.c_str());
  }
  return make_error("%s: unexpected answer from the probe child: '%s'", what, line.c_str());
}

// ---------------------------------------------------------------- Mapping

Result<Mapping> Mapping::anon(size_t len, int prot, int flags) {
  void* p = mmap(nullptr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  if (p == MAP_FAILED) return make_errno(errno, "mmap of %zu anonymous bytes", len);
  Mapping m;
  m.addr_ = p;
  m.len_ = len;
  return m;
}

Result<Mapping> Mapping::file(int fd, size_t len, int prot, int flags) {
  void* p = mmap(nullptr, len, prot, flags, fd, 0);
  if (p == MAP_FAILED) return make_errno(errno, "mmap of %zu bytes of fd %d", len, fd);
  Mapping m;
  m.addr_ = p;
  m.len_ = len;
  return m;
}

Mapping::Mapping(Mapping&& o) noexcept : addr_(o.addr_), len_(o.len_) {
  o.addr_ = nullptr;
  o.len_ = 0;
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (addr_) munmap(addr_, len_);
    addr_ = o.addr_;
    len_ = o.len_;
    o.addr_ = nullptr;
    o.len_ = 0;
  }
  return *this;
}

Mapping::~Mapping() {
  if (addr_) munmap(addr_, len_);
}

// ---------------------------------------------------------------- /proc

static std::string proc_path(pid_t pid, const char* file) {
  return pid > 0 ? "/proc/" + std::to_string(pid) + "/" + file : std::string("/proc/self/") + file;
}

Result<uint64_t> pagemap_entry(pid_t pid, uintptr_t vaddr) {
  std::string path = proc_path(pid, "pagemap");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_errno(errno, "cannot open %s", path.c_str());
  uint64_t e = 0;
  size_t n = TRY(pread_full(fd.get(), &e, sizeof e, (vaddr / 4096) * sizeof e));
  if (n != sizeof e) return make_error("%s: short read at 0x%" PRIxPTR, path.c_str(), vaddr);
  return e;
}

Result<std::vector<MapsEntry>> read_maps(pid_t pid) {
  std::string path = proc_path(pid, "maps");
  std::string text = TRY(read_file(path.c_str()));
  std::vector<MapsEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    MapsEntry e;
    char perms[8] = {};
    int name_at = 0;
    unsigned long s, en;
    if (sscanf(line.c_str(), "%lx-%lx %7s %*s %*s %*s %n", &s, &en, perms, &name_at) < 3) continue;
    e.start = s;
    e.end = en;
    e.perms = perms;
    if (name_at > 0 && static_cast<size_t>(name_at) <= line.size()) e.name = line.substr(name_at);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace cr::probe
