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
pid_t proc_ppid(pid_t pid);  // the parent's pid (field 4 of /proc/PID/stat), -1 if gone
std::string proc_maps(pid_t pid);
bool pid_alive(pid_t pid);
// Kill a process and reap it if it is our child (or orphan reparented to
// us as subreaper).
void kill_and_reap(pid_t pid);

// ---------------------------------------------------------------- dumpees
//
// A dumpee is a workload that holds only state crtools can checkpoint (the
// protocol of test/workloads/ckpt_common.h): stdin /dev/null, stdout and
// stderr one regular file (O_APPEND) in a temp dir, fd 3 the write end of the
// ready pipe, which it closes after writing "READY [info]". On SIGTERM it
// checks its state and writes "PASS" or "FAIL: <what differs>" to stdout.
//
// After a restore the process is no longer our child: it is cr-restore's
// (attached restore) or, with -d, reparented to us as child subreaper. So
// collecting its verdict goes by pid (terminate_and_collect), not through
// the Dumpee object.

// What a dumpee said after SIGTERM.
struct Verdict {
  int status = -1;      // exit status or 128+signal; -1 if unknown or not exited
  bool exited = false;  // the process is gone (or a zombie we cannot reap)
  std::string line;     // its verdict line: "PASS" or "FAIL: ...", "" if none
  std::string output;   // everything it wrote after the SIGTERM
  // "PASS" and, where the exit status is known, 0.
  bool passed() const { return line == "PASS" && exited && (status == 0 || status == -1); }
  // One line for test messages.
  std::string describe() const;
};

class Background;
class TempDir;

// Send SIGTERM to pid and wait until it exits; its verdict is read from
// output_file (what was appended after the signal). Works for our own
// children, for orphans reparented to us (we reap them) and for processes
// that are neither (then we wait for the pid to vanish or become a zombie,
// whose exit code /proc/PID/stat still shows). On timeout the process is
// left alone: exited=false.
Verdict terminate_and_collect(pid_t pid, const std::string& output_file,
                              std::chrono::seconds timeout = std::chrono::seconds(60));
// The same for a grandchild whose parent (e.g. an attached cr-restore, or a
// shell pipeline around it) is `parent`: the status is the parent's.
Verdict terminate_and_collect(pid_t pid, const std::string& output_file, Background& parent,
                              std::chrono::seconds timeout = std::chrono::seconds(60));
// The same with a parent that is our direct child, given by pid.
Verdict terminate_and_collect(pid_t pid, const std::string& output_file, pid_t parent,
                              std::chrono::seconds timeout = std::chrono::seconds(60));

// After a restore: wait until pid runs the program it ran before the dump
// again (readlink /proc/PID/exe == exe, /proc/PID/cmdline == cmdline, not
// traced, not stopped, not a zombie): the restore has handed it its own
// registers and mm, so a signal now reaches the workload's handler.
// Polls kernel state (there is no handshake to wait for); false on timeout.
bool wait_restored(pid_t pid, const std::string& exe, const std::string& cmdline,
                   std::chrono::seconds timeout = std::chrono::seconds(60));
// The test wait_restored() polls, once.
bool looks_restored(pid_t pid, const std::string& exe, const std::string& cmdline);

// A command running in the background (e.g. an attached cr-restore, or a
// `bash -c` pipeline) with stdin from a file (default /dev/null) and
// stdout/stderr captured in files. Only fds 0-2 are passed on. Killed
// (SIGKILL) and reaped on destruction if still running.
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv, const std::string& stdin_file = "/dev/null");
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  // Still running? (Reaps it if it has exited.)
  bool running();
  // Wait for exit: status (or 128+signal) with everything it wrote; status
  // -1 if it is still running at the timeout (it is not killed).
  RunResult wait(std::chrono::seconds timeout = std::chrono::seconds(120));
  std::string out() const;
  std::string err() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::unique_ptr<TempDir> dir_;
};

// A dumpee workload started as above. The constructor returns after its
// READY line (throws, quoting its output file, if it exits or times out
// first). Killed by pid and reaped on destruction -- also after a restore,
// as long as the pid still runs the same executable.
class Dumpee {
 public:
  struct Options {
    std::vector<std::string> args;
    // Working directory; the output file "<name>.out" goes there too.
    // Empty: a temp dir of its own.
    std::string dir;
    // Its own session and process group (setsid), so the dumped tree is the
    // process alone.
    bool setsid = true;
    std::chrono::seconds ready_timeout{60};
    // Run the workload through this command prefix (e.g. {"/bin/sh", "-c",
    // "\"$@\" & echo PID $! >&3; wait $!", "sh"}): the wrapper must write
    // "PID <n>" to fd 3 before the workload's READY; pid() is then <n> and
    // wrapper_pid() the wrapper. Used to test the harness on grandchildren
    // and orphans.
    std::vector<std::string> wrapper;
  };
  explicit Dumpee(const std::string& workload, const std::vector<std::string>& args = {});
  Dumpee(const std::string& workload, const Options& opt);
  ~Dumpee();
  Dumpee(const Dumpee&) = delete;
  Dumpee& operator=(const Dumpee&) = delete;

  pid_t pid() const { return pid_; }
  pid_t wrapper_pid() const { return wrapper_pid_; }
  const std::string& name() const { return name_; }
  const std::string& ready_info() const { return ready_info_; }
  const std::string& dir() const { return dir_; }
  const std::string& output_path() const { return out_path_; }
  std::string output() const;
  off_t output_size() const;
  // Cut the output file back to `size` bytes (e.g. to the size it had at a
  // --leave-running dump, after the original wrote its verdict, so a
  // restore from those images finds the file as it was dumped).
  void truncate_output(off_t size) const;
  // /proc/PID/exe and /proc/PID/cmdline (NUL-separated) as they were at READY.
  const std::string& exe() const { return exe_; }
  const std::string& cmdline() const { return cmdline_; }

  // SIGTERM, wait (our child), read the verdict. The process is forgotten
  // once it has exited.
  Verdict verdict(std::chrono::seconds timeout = std::chrono::seconds(60));
  // Wait for it to end by someone else's hand (a dump that kills it) and
  // reap it; exit status or 128+signal, -1 on timeout.
  int wait_exit(std::chrono::seconds timeout = std::chrono::seconds(60));
  // Wait for the wrapper (if any) to exit and reap it; its status.
  int wait_wrapper(std::chrono::seconds timeout = std::chrono::seconds(60));
  // wait_restored(pid(), exe(), cmdline(), timeout).
  bool wait_restored(std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  // Forget the process (no kill on destruction).
  void release() { pid_ = -1; }

 private:
  std::string name_, dir_, out_path_, exe_, cmdline_, ready_info_;
  std::unique_ptr<TempDir> own_dir_;
  pid_t pid_ = -1, wrapper_pid_ = -1;
};

// Children of a process (/proc/PID/task/*/children).
std::vector<pid_t> children_of(pid_t pid);
// /proc/PID/exe, /proc/PID/cmdline (NUL-separated), TracerPid of
// /proc/PID/status (-1 if unreadable).
std::string proc_exe(pid_t pid);
std::string proc_cmdline(pid_t pid);
int proc_tracer(pid_t pid);

// ---------------------------------------------------------------- trees
//
// A tree workload (ckpt_tree, ckpt_pipes, ckpt_threads) lists its pids or
// tids in its READY line: "pids=ROOT,A,B,... zombies=Z1,Z2 tids=MAIN,T1,...".

// The numbers after "key=" in a READY line (comma-separated, up to a space);
// empty if the key is absent.
std::vector<pid_t> ready_list(const std::string& info, const std::string& key);
// Reap each of `pids` that is or becomes our child (killed trees are
// reparented to us, the child subreaper), polling until every one is gone
// or `timeout`. Returns, per pid: its status (exit or 128+signal) if we
// reaped it, -1 if it vanished otherwise (someone else reaped it), -2 if it
// is still there (alive, or a zombie that is not ours) at the timeout. Never
// waits for pid <= 0 (reported -1).
std::vector<int> reap_pids(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout);
// End what is left of a tree: SIGKILL each pid > 0 that runs `exe` (checked
// in /proc/PID/exe first: a pid we saw die may be someone else's now), then
// reap those that are or become ours (up to 10 s).
void kill_tree(const std::vector<pid_t>& pids, const std::string& exe);

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
