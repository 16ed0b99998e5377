// Integration test harness: run crtools commands and workload programs.
//
// Rules (DESIGN.md section 6/8): synchronise by handshakes (a READY line on
// the workload's stdout), never by sleeps; every process started here is
// ended by pid when its Workload object goes away; the test binary is a
// child subreaper (main.cc) so killed trees are reaped at once.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace harness {

// Directory of the built binaries and workloads (from the environment the
// Makefile sets: CRTOOLS_BIN, CRTOOLS_WORKLOADS).
std::string bin_dir();
std::string workload_path(const std::string& name);

struct RunResult {
  int status = -1;  // exit status, or 128+signal
  std::string out;
  std::string err;
};

// Run a program to completion with captured stdout/stderr and optional
// stdin text. `timeout` kills it (a hang is a failure, reported in err).
RunResult run(const std::vector<std::string>& argv, const std::string& input = "",
              std::chrono::seconds timeout = std::chrono::seconds(120));
// Run `crtools <args...>` from the build tree.
RunResult crtools(const std::vector<std::string>& args, const std::string& input = "");

// A workload program: started with a pipe on stdin (commands) and stdout
// (its lines). The first line it prints must be "READY" (anything after it
// on that line is kept as ready_info). Killed (SIGKILL) and reaped on
// destruction if still running.
class Workload {
 public:
  explicit Workload(const std::string& name, const std::vector<std::string>& args = {});
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& ready_info() const { return ready_info_; }
  // Read one line from the workload's stdout (without '\n'); "" at EOF or
  // after `timeout`.
  std::string read_line(std::chrono::seconds timeout = std::chrono::seconds(60));
  // Write a line to its stdin.
  void send(const std::string& line);
  // Close our end of its stdin.
  void close_stdin();
  // Wait for exit; returns exit status or 128+signal, -1 on timeout.
  int wait(std::chrono::seconds timeout = std::chrono::seconds(60));
  void kill_now();
  bool running() const;
  // Forget this process (it was handed to someone else, e.g. restored).
  void release() { pid_ = -1; }

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1;
  std::string buf_;
  std::string ready_info_;
};

// Poll until pred() or timeout; for waiting on *kernel* state that has no
// handshake (e.g. a process state in /proc). Polls with short sleeps.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// /proc helpers.
std::string read_text(const std::string& path);
char proc_state(pid_t pid);  // 'R', 'S', 'T', 't', 'Z', ... or 0 if gone
std::string proc_maps(pid_t pid);
bool pid_alive(pid_t pid);
// Kill a process and reap it if it is our child (or orphan reparented to
// us as subreaper).
void kill_and_reap(pid_t pid);

// A fresh temporary directory, removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace harness
