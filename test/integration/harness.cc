#include "test/integration/harness.h"

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/handles.hpp>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
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

pid_t proc_ppid(pid_t pid) {
  std::string st = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t p = st.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream in(st.substr(p + 2));
  std::string state;
  pid_t pp = -1;
  in >> state >> pp;
  return pp;
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

// ---------------------------------------------------------------- dumpees

namespace harness {

namespace {

off_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

std::string read_from(const std::string& path, off_t from) {
  std::string all = read_text(path);
  return from > 0 && size_t(from) <= all.size() ? all.substr(size_t(from)) : from > 0 ? "" : all;
}

// The last line starting with PASS or FAIL.
std::string verdict_line(const std::string& out) {
  std::string found;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l == "PASS" || l.rfind("FAIL", 0) == 0) found = l;
  return found;
}

// Field 52 of /proc/PID/stat: the wait status of a zombie.
int zombie_status(pid_t pid) {
  std::string s = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t p = s.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream in(s.substr(p + 2));
  std::string f;
  for (int i = 3; i <= 52 && in >> f; i++)
    if (i == 52) return status_of(std::stoi(f));
  return -1;
}

// Move an fd above the range a child's 0-3 could collide with, CLOEXEC.
int high_fd(int fd) {
  if (fd < 0) throw std::runtime_error(std::string("open: ") + strerror(errno));
  int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  if (h < 0) throw std::runtime_error(std::string("F_DUPFD_CLOEXEC: ") + strerror(errno));
  return h;
}

// SIGTERM, then wait by `waiter` (returns the status, or -1 with exited
// false on timeout) and read the verdict.
Verdict collect(pid_t pid, const std::string& out, const std::function<int(bool&)>& waiter) {
  Verdict v;
  off_t from = file_size(out);
  // Never kill(0 or -1, ...): that signals a process group or everything.
  if (pid <= 0) {
    v.output = "[harness: no pid to signal (" + std::to_string(pid) + ")]";
    return v;
  }
  if (::kill(pid, SIGTERM) != 0) {
    v.output = "[harness: kill(" + std::to_string(pid) + ", SIGTERM): " + strerror(errno) + "]";
    return v;
  }
  v.status = waiter(v.exited);
  v.output = read_from(out, from);
  v.line = verdict_line(v.output);
  return v;
}

}  // namespace

std::string Verdict::describe() const {
  std::string s = "verdict '" + line + "', ";
  s += exited ? "exit status " + (status >= 0 ? std::to_string(status) : std::string("unknown")) : "did not exit";
  if (output != line + "\n") s += "; output after SIGTERM: '" + output + "'";
  return s;
}

Verdict terminate_and_collect(pid_t pid, const std::string& output_file, seconds timeout) {
  return collect(pid, output_file, [&](bool& exited) {
    auto deadline = steady_clock::now() + timeout;
    while (true) {
      int wst;
      pid_t r = waitpid(pid, &wst, WNOHANG);
      if (r == pid) {
        exited = true;
        return status_of(wst);
      }
      if (r < 0 && errno == ECHILD) {  // not ours (yet): watch /proc
        char st = proc_state(pid);
        if (st == 0) {
          exited = true;
          return -1;
        }
        if (st == 'Z' || st == 'X') {
          exited = true;
          return zombie_status(pid);
        }
      }
      if (steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(milliseconds(2));
    }
  });
}

Verdict terminate_and_collect(pid_t pid, const std::string& output_file, Background& parent, seconds timeout) {
  return collect(pid, output_file, [&](bool& exited) {
    RunResult r = parent.wait(timeout);
    exited = r.status >= 0;
    return r.status;
  });
}

Verdict terminate_and_collect(pid_t pid, const std::string& output_file, pid_t parent, seconds timeout) {
  return collect(pid, output_file, [&](bool& exited) {
    int st = waitpid_deadline(parent, steady_clock::now() + timeout);
    exited = st >= 0;
    return st;
  });
}

std::string proc_exe(pid_t pid) {
  char b[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), b, sizeof b);
  return n > 0 ? std::string(b, size_t(n)) : "";
}

std::string proc_cmdline(pid_t pid) { return read_text("/proc/" + std::to_string(pid) + "/cmdline"); }

int proc_tracer(pid_t pid) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string l; std::getline(in, l);)
    if (l.rfind("TracerPid:", 0) == 0) return std::stoi(l.substr(10));
  return -1;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> res;
  std::error_code ec;
  for (auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::istringstream in(read_text(t.path().string() + "/children"));
    for (pid_t c; in >> c;) res.push_back(c);
  }
  return res;
}

bool looks_restored(pid_t pid, const std::string& exe, const std::string& cmdline) {
  char st = proc_state(pid);
  return st != 0 && st != 'Z' && st != 'X' && st != 'T' && st != 't' && proc_tracer(pid) == 0 &&
         proc_exe(pid) == exe && proc_cmdline(pid) == cmdline;
}

bool wait_restored(pid_t pid, const std::string& exe, const std::string& cmdline, seconds timeout) {
  return wait_until([&] { return looks_restored(pid, exe, cmdline); }, duration_cast<milliseconds>(timeout));
}

// ---------------------------------------------------------------- trees

std::vector<pid_t> ready_list(const std::string& info, const std::string& key) {
  std::vector<pid_t> res;
  std::string k = key + "=";
  size_t at = 0;
  while ((at = info.find(k, at)) != std::string::npos && at > 0 && info[at - 1] != ' ') at += k.size();
  if (at == std::string::npos) return res;
  std::string v = info.substr(at + k.size());
  v = v.substr(0, v.find(' '));
  std::istringstream in(v);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) res.push_back(pid_t(std::stol(item)));
  return res;
}

std::vector<int> reap_pids(const std::vector<pid_t>& pids, milliseconds timeout) {
  std::vector<int> st(pids.size(), -2);
  std::vector<bool> done(pids.size(), false);
  auto deadline = steady_clock::now() + timeout;
  while (true) {
    bool all = true;
    for (size_t i = 0; i < pids.size(); i++) {
      if (done[i]) continue;
      if (pids[i] <= 0) {
        done[i] = true, st[i] = -1;
        continue;
      }
      int wst;
      pid_t r = waitpid(pids[i], &wst, WNOHANG);
      if (r == pids[i]) {
        done[i] = true, st[i] = status_of(wst);
        continue;
      }
      if (r < 0 && errno == ECHILD && proc_state(pids[i]) == 0) {
        done[i] = true, st[i] = -1;
        continue;
      }
      all = false;
    }
    if (all || steady_clock::now() > deadline) return st;
    std::this_thread::sleep_for(milliseconds(1));
  }
}

void kill_tree(const std::vector<pid_t>& pids, const std::string& exe) {
  std::vector<pid_t> killed;
  for (pid_t p : pids) {
    if (p <= 0) continue;
    int wst;
    if (waitpid(p, &wst, WNOHANG) == p) continue;  // a zombie of ours: reaped now
    if (exe.empty() || proc_exe(p) != exe) continue;
    ::kill(p, SIGKILL);
    killed.push_back(p);
  }
  // Wait for the killed ones and reap what comes to us. (Not by exe: a
  // process on its way out has no exe link any more.) A zombie that is not
  // ours is left to its parent.
  wait_until(
      [&] {
        bool all = true;
        for (pid_t p : killed) {
          int wst;
          pid_t r = waitpid(p, &wst, WNOHANG);
          if (r == p) continue;  // reaped
          char s = proc_state(p);
          if (s == 0) continue;                           // gone
          if ((s == 'Z' || s == 'X') && r < 0) continue;  // someone else's zombie
          all = false;
        }
        return all;
      },
      seconds(10));
}

// ---------------------------------------------------------------- Background

Background::Background(const std::vector<std::string>& argv, const std::string& stdin_file) {
  dir_ = std::make_unique<TempDir>();
  int in = ::open(stdin_file.c_str(), O_RDONLY);
  if (in < 0) throw std::runtime_error("open " + stdin_file + ": " + strerror(errno));
  in = high_fd(in);
  int out = high_fd(::open((*dir_ / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  int err = high_fd(::open((*dir_ / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  try {
    bp::child c(argv[0], bp::args(args), bp::posix::fd.bind(0, in), bp::posix::fd.bind(1, out),
                bp::posix::fd.bind(2, err), bp::limit_handles);
    pid_ = c.id();
    c.detach();
  } catch (...) {
    ::close(in), ::close(out), ::close(err);
    throw;
  }
  ::close(in), ::close(out), ::close(err);
}

Background::~Background() {
  if (pid_ > 0 && status_ < 0) kill_and_reap(pid_);
}

bool Background::running() {
  if (status_ >= 0 || pid_ <= 0) return false;
  int wst;
  pid_t r = waitpid(pid_, &wst, WNOHANG);
  if (r == pid_) status_ = status_of(wst);
  return status_ < 0;
}

RunResult Background::wait(seconds timeout) {
  if (status_ < 0 && pid_ > 0) status_ = waitpid_deadline(pid_, steady_clock::now() + timeout);
  RunResult r;
  r.status = status_;
  r.out = out();
  r.err = err();
  return r;
}

std::string Background::out() const { return read_text(*dir_ / "out"); }
std::string Background::err() const { return read_text(*dir_ / "err"); }

// ---------------------------------------------------------------- Dumpee

Dumpee::Dumpee(const std::string& workload, const std::vector<std::string>& args)
    : Dumpee(workload, Options{args, "", true, seconds(60), {}}) {}

Dumpee::Dumpee(const std::string& workload, const Options& opt) : name_(workload) {
  if (opt.dir.empty()) {
    own_dir_ = std::make_unique<TempDir>();
    dir_ = own_dir_->path();
  } else {
    dir_ = opt.dir;
  }
  std::string base = workload.substr(workload.rfind('/') + 1);
  out_path_ = dir_ + "/" + base + ".out";
  std::string exe_path = std::filesystem::absolute(
      workload.find('/') == std::string::npos ? workload_path(workload) : workload).string();

  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC)) throw std::runtime_error(std::string("pipe2: ") + strerror(errno));
  int rd = high_fd(pfd[0]), wr = high_fd(pfd[1]);
  int nul = high_fd(::open("/dev/null", O_RDONLY));
  int out = high_fd(::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644));

  std::vector<std::string> argv = opt.wrapper;
  argv.push_back(exe_path);
  argv.insert(argv.end(), opt.args.begin(), opt.args.end());
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  bool do_setsid = opt.setsid;
  pid_t spawned = -1;
  try {
    bp::child c(argv[0], bp::args(args), bp::start_dir(dir_), bp::posix::fd.bind(0, nul),
                bp::posix::fd.bind(1, out), bp::posix::fd.bind(2, out), bp::posix::fd.bind(3, wr),
                bp::limit_handles, bp::extend::on_exec_setup([do_setsid](auto&) {
                  if (do_setsid) ::setsid();
                }));
    spawned = c.id();
    c.detach();
  } catch (...) {
    ::close(rd), ::close(wr), ::close(nul), ::close(out);
    throw;
  }
  ::close(wr), ::close(nul), ::close(out);
  if (opt.wrapper.empty())
    pid_ = spawned;
  else
    wrapper_pid_ = spawned;

  // Lines from the ready pipe until READY (a wrapper's "PID <n>" first).
  std::string buf, line, problem;
  auto deadline = steady_clock::now() + opt.ready_timeout;
  while (true) {
    size_t nl = buf.find('\n');
    if (nl != std::string::npos) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line.rfind("PID ", 0) == 0 && !opt.wrapper.empty()) {
        pid_ = std::stoi(line.substr(4));
        continue;
      }
      if (line.rfind("READY", 0) != 0) problem = "said '" + line + "' instead of READY";
      break;
    }
    int left = int(duration_cast<milliseconds>(deadline - steady_clock::now()).count());
    if (left <= 0) {
      problem = "was not ready within " + std::to_string(opt.ready_timeout.count()) + " s";
      break;
    }
    struct pollfd p = {rd, POLLIN, 0};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char b[512];
    ssize_t r = read(rd, b, sizeof b);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      problem = "closed its ready channel without READY" + (buf.empty() ? "" : " (it said '" + buf + "')");
      break;
    }
    buf.append(b, size_t(r));
  }
  ::close(rd);
  if (!problem.empty() || pid_ <= 0) {
    if (pid_ > 0) kill_and_reap(pid_);
    if (wrapper_pid_ > 0) kill_and_reap(wrapper_pid_);
    std::string o = read_text(out_path_);
    pid_ = wrapper_pid_ = -1;
    throw std::runtime_error("workload " + workload + " " + (problem.empty() ? "gave no PID" : problem) +
                             "; its output: '" + o + "'");
  }
  ready_info_ = line.size() > 6 ? line.substr(6) : "";
  // The workload closes fd 3 right after READY; a dump must not find it
  // there (a pipe), so wait until it is gone.
  std::string fd3 = "/proc/" + std::to_string(pid_) + "/fd/3";
  if (!wait_until([&] { return ::access(fd3.c_str(), F_OK) != 0; }, duration_cast<milliseconds>(opt.ready_timeout))) {
    kill_and_reap(pid_);
    if (wrapper_pid_ > 0) kill_and_reap(wrapper_pid_);
    pid_ = wrapper_pid_ = -1;
    throw std::runtime_error("workload " + workload + " kept its ready channel (fd 3) open after READY");
  }
  exe_ = proc_exe(pid_);
  cmdline_ = proc_cmdline(pid_);
}

Dumpee::~Dumpee() {
  if (pid_ > 0) {
    int wst;
    pid_t r = waitpid(pid_, &wst, WNOHANG);
    if (r == 0) {
      kill_and_reap(pid_);  // our child (or orphan), still running
    } else if (r < 0 && errno == ECHILD && !exe_.empty() && proc_exe(pid_) == exe_) {
      // Not ours (a restored process whose parent is someone else), but it
      // runs our workload: end it and wait until it is gone or a zombie.
      ::kill(pid_, SIGKILL);
      wait_until([&] { return !pid_alive(pid_); }, seconds(10));
    }
  }
  // The wrapper only while it is our unreaped child (someone may have waited
  // for it already; its pid could then belong to anyone).
  if (wrapper_pid_ > 0 && waitpid(wrapper_pid_, nullptr, WNOHANG) == 0) kill_and_reap(wrapper_pid_);
}

std::string Dumpee::output() const { return read_text(out_path_); }
off_t Dumpee::output_size() const { return file_size(out_path_); }
void Dumpee::truncate_output(off_t size) const {
  if (::truncate(out_path_.c_str(), size) != 0)
    throw std::runtime_error("truncate " + out_path_ + ": " + strerror(errno));
}

Verdict Dumpee::verdict(seconds timeout) {
  Verdict v = terminate_and_collect(pid_, out_path_, timeout);
  if (v.exited) pid_ = -1;
  return v;
}

int Dumpee::wait_exit(seconds timeout) {
  if (pid_ <= 0) return -1;
  int st = waitpid_deadline(pid_, steady_clock::now() + timeout);
  if (st >= 0) pid_ = -1;
  return st;
}

int Dumpee::wait_wrapper(seconds timeout) {
  if (wrapper_pid_ <= 0) return -1;
  int st = waitpid_deadline(wrapper_pid_, steady_clock::now() + timeout);
  if (st >= 0) wrapper_pid_ = -1;
  return st;
}

bool Dumpee::wait_restored(seconds timeout) const { return harness::wait_restored(pid_, exe_, cmdline_, timeout); }

}  // namespace harness
