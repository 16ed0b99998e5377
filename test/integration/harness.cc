#include "test/integration/harness.h"

#include <boost/process.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace bp = boost::process;
using namespace std::chrono;

namespace harness {

namespace {

std::string env_or(const char* name, const char* def) {
  const char* v = getenv(name);
  return v && *v ? v : def;
}

int status_of(int wst) {
  if (WIFEXITED(wst)) return WEXITSTATUS(wst);
  if (WIFSIGNALED(wst)) return 128 + WTERMSIG(wst);
  return -1;
}

// Wait for pid with a deadline; -1 on timeout.
int waitpid_deadline(pid_t pid, steady_clock::time_point deadline) {
  while (true) {
    int wst;
    pid_t r = waitpid(pid, &wst, WNOHANG);
    if (r == pid) return status_of(wst);
    if (r < 0 && errno != EINTR) return -1;
    if (steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(milliseconds(2));
  }
}

void close_sink(bp::pipe& p) {
  if (p.native_sink() >= 0) ::close(p.native_sink());
  p.assign_sink(-1);
}
void close_source(bp::pipe& p) {
  if (p.native_source() >= 0) ::close(p.native_source());
  p.assign_source(-1);
}

}  // namespace

std::string bin_dir() { return env_or("CRTOOLS_BIN", "build/bin"); }
std::string workload_path(const std::string& name) {
  return env_or("CRTOOLS_WORKLOADS", "build/test/workloads") + "/" + name;
}

RunResult run(const std::vector<std::string>& argv, const std::string& input, seconds timeout) {
  RunResult res;
  bp::pipe out, err, in;
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  bp::child c(argv[0], bp::args(args), bp::std_out > out, bp::std_err > err, bp::std_in < in);
  pid_t pid = c.id();
  c.detach();
  int ofd = out.native_source(), efd = err.native_source();
  close_sink(out);
  close_sink(err);
  close_source(in);
  if (!input.empty()) {
    // Inputs are small (a few KiB); a pipe holds 64 KiB.
    (void)!write(in.native_sink(), input.data(), input.size());
  }
  close_sink(in);
  auto deadline = steady_clock::now() + timeout;
  bool oe = false, ee = false;
  while (!(oe && ee)) {
    struct pollfd p[2] = {{oe ? -1 : ofd, POLLIN, 0}, {ee ? -1 : efd, POLLIN, 0}};
    int left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      kill(pid, SIGKILL);
      res.err += "\n[harness: timed out, killed]";
      break;
    }
    int n = poll(p, 2, left);
    if (n < 0 && errno == EINTR) continue;
    char buf[65536];
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !p[i].revents) continue;
      ssize_t r = read(p[i].fd, buf, sizeof buf);
      if (r <= 0) (i ? ee : oe) = true;
      else (i ? res.err : res.out).append(buf, r);
    }
  }
  res.status = waitpid_deadline(pid, steady_clock::now() + seconds(10));
  if (res.status < 0) {
    kill(pid, SIGKILL);
    res.status = waitpid_deadline(pid, steady_clock::now() + seconds(10));
  }
  return res;
}

RunResult crtools(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv = {bin_dir() + "/crtools"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, input);
}

Workload::Workload(const std::string& name, const std::vector<std::string>& args) {
  bp::pipe out, in;
  bp::child c(workload_path(name), bp::args(args), bp::std_out > out, bp::std_in < in);
  pid_ = c.id();
  c.detach();
  out_fd_ = dup(out.native_source());
  in_fd_ = dup(in.native_sink());
  fcntl(out_fd_, F_SETFD, FD_CLOEXEC);
  fcntl(in_fd_, F_SETFD, FD_CLOEXEC);
  std::string line = read_line();
  if (line.rfind("READY", 0) != 0) {
    kill_now();
    throw std::runtime_error("workload " + name + " did not get ready: '" + line + "'");
  }
  ready_info_ = line.size() > 6 ? line.substr(6) : "";
}

Workload::~Workload() {
  kill_now();
  if (in_fd_ >= 0) close(in_fd_);
  if (out_fd_ >= 0) close(out_fd_);
}

std::string Workload::read_line(seconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string l = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return l;
    }
    int left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0 || out_fd_ < 0) return "";
    struct pollfd p = {out_fd_, POLLIN, 0};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    char b[4096];
    ssize_t r = read(out_fd_, b, sizeof b);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      std::string l = buf_;
      buf_.clear();
      return l;
    }
    buf_.append(b, r);
  }
}

void Workload::send(const std::string& line) {
  std::string l = line + "\n";
  if (in_fd_ >= 0) (void)!write(in_fd_, l.data(), l.size());
}

void Workload::close_stdin() {
  if (in_fd_ >= 0) close(in_fd_);
  in_fd_ = -1;
}

int Workload::wait(seconds timeout) {
  if (pid_ < 0) return -1;
  int st = waitpid_deadline(pid_, steady_clock::now() + timeout);
  if (st >= 0) pid_ = -1;
  return st;
}

void Workload::kill_now() {
  if (pid_ > 0) kill_and_reap(pid_);
  pid_ = -1;
}

bool Workload::running() const { return pid_ > 0 && pid_alive(pid_); }

bool wait_until(const std::function<bool()>& pred, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (!pred()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

char proc_state(pid_t pid) {
  std::string s = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t p = s.rfind(')');
  if (p == std::string::npos || p + 2 >= s.size()) return 0;
  return s[p + 2];
}

std::string proc_maps(pid_t pid) { return read_text("/proc/" + std::to_string(pid) + "/maps"); }

bool pid_alive(pid_t pid) {
  char st = proc_state(pid);
  return st != 0 && st != 'Z' && st != 'X';
}

void kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid_deadline(pid, steady_clock::now() + seconds(10));
}

TempDir::TempDir() {
  std::string base = env_or("TMPDIR", "/tmp");
  std::string tmpl = base + "/crtools-test-XXXXXX";
  std::vector<char> b(tmpl.begin(), tmpl.end());
  b.push_back(0);
  if (!mkdtemp(b.data())) throw std::runtime_error("mkdtemp failed");
  path_ = b.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace harness
