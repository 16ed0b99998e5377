// Throwaway child processes for kernel feature probes.
//
// A probe that must act on another process (ptrace, map_files, pidfd_getfd,
// PAGEMAP_SCAN from outside) or that changes the calling process (unshare,
// PR_SET_MM_MAP, clear_refs, moving the vDSO) forks a ProbeChild. The child
// runs in its own process group with PR_SET_PDEATHSIG(SIGKILL); parent and
// child exchange text lines over two pipes; every wait has a deadline; the
// destructor kills the child's process group and reaps the child, so no
// probe leaves a process behind or hangs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr::probe {

constexpr int kTimeoutMs = 5000;

// The child's side of the pipes.
class ChildIo {
 public:
  ChildIo(int in, int out) : in_(in), out_(out) {}
  // Send one line (a '\n' in text is replaced by ' '). false if the parent is gone.
  bool send(const std::string& line);
  // Block until the parent sends a line; "" at EOF (the parent gave up).
  std::string recv();
  // The raw descriptors, for a child that must not call into libc any more.
  int in_fd() const { return in_; }
  int out_fd() const { return out_; }

 private:
  int in_, out_;
  std::string buf_;
};

class ProbeChild {
 public:
  // Fork a child that runs body(io) and _exits with its return value.
  static Result<std::unique_ptr<ProbeChild>> spawn(const char* what, std::function<int(ChildIo&)> body);
  ~ProbeChild();
  ProbeChild(const ProbeChild&) = delete;
  ProbeChild& operator=(const ProbeChild&) = delete;

  pid_t pid() const { return pid_; }
  Status send(const std::string& line);
  // The next line from the child; an error on timeout, or if the child
  // exits first (saying how it ended).
  Result<std::string> recv(int timeout_ms = kTimeoutMs);
  // Expect the child to send exactly `want`.
  Status expect(const std::string& want, int timeout_ms = kTimeoutMs);
  // Wait for the child to exit (waitpid status); kills it on timeout and
  // returns an error then.
  Result<int> wait_exit(int timeout_ms = kTimeoutMs);
  // waitpid(pid, __WALL) with a deadline, for ptrace stops.
  Result<int> wait_status(int timeout_ms = kTimeoutMs);
  // SIGKILL the child's process group and reap the child (idempotent).
  void kill_and_reap();

 private:
  ProbeChild() = default;
  std::string what_;
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  std::string buf_;
  bool reaped_ = false;
  int exit_status_ = 0;
};

// Run body in a ProbeChild and return its verdict: the child's Result (value
// = detail, or Error) travels back over the pipe. A child that crashes,
// hangs past timeout_ms or exits without a verdict is an error.
Result<std::string> run_in_child(const char* what, std::function<Result<std::string>()> body,
                                 int timeout_ms = kTimeoutMs);

// "exited with status 3" / "killed by signal 9 (Killed)".
std::string describe_wait_status(int st);

// An anonymous or file mapping that unmaps itself.
class Mapping {
 public:
  Mapping() = default;
  static Result<Mapping> anon(size_t len, int prot = 3 /* PROT_READ|PROT_WRITE */, int flags = 0);
  static Result<Mapping> file(int fd, size_t len, int prot, int flags);
  Mapping(Mapping&& o) noexcept;
  Mapping& operator=(Mapping&& o) noexcept;
  ~Mapping();
  char* get() const { return static_cast<char*>(addr_); }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(addr_); }
  size_t size() const { return len_; }

 private:
  void* addr_ = nullptr;
  size_t len_ = 0;
};

// Read one /proc/PID/pagemap entry for vaddr ("self" for pid 0).
Result<uint64_t> pagemap_entry(pid_t pid, uintptr_t vaddr);

// A line of /proc/PID/maps.
struct MapsEntry {
  uintptr_t start = 0, end = 0;
  std::string perms, name;
};
Result<std::vector<MapsEntry>> read_maps(pid_t pid);

}  // namespace cr::probe
