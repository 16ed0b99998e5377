// SeizedTask: one thread held with ptrace.
//
//   auto t = TRY(SeizedTask::seize(tid));   // PTRACE_SEIZE + INTERRUPT, wait for the stop
//   auto regs = TRY(t.get_regs());
//   ...                                     // ~SeizedTask detaches
//
// The task is held by *thread*: every call must come from the thread that
// seized it (a ptrace rule). A task seized elsewhere (cr-dump seizes a whole
// tree first) is used through SeizedTask::adopt_stopped(), which never
// detaches.
//
// Group stop. A task stopped by SIGSTOP is seized in a group-stop trap
// (group_stopped() is true). Resuming it with PTRACE_CONT/PTRACE_SYSCALL runs
// it although its process stays stopped; on PTRACE_DETACH the kernel puts it
// back into the group stop (the process is still marked stopped), so a
// stopped task stays stopped without PTRACE_LISTEN or a new SIGSTOP, and its
// parent sees no new notification.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/remote/remote_ptr.h"

namespace cr {

// The extended register state (x87, SSE, AVX, AVX-512, PKRU, ...) in the
// XSAVE standard format of the NT_X86_XSTATE regset; its size is what the
// kernel returns for this machine.
struct XState {
  std::vector<uint8_t> bytes;
  friend bool operator==(const XState&, const XState&) = default;
};

// Why the task is stopped, as the last wait saw it.
enum class StopKind {
  Trap,           // PTRACE_EVENT_STOP from PTRACE_INTERRUPT (stop signal SIGTRAP)
  GroupStop,      // PTRACE_EVENT_STOP of a group stop (SIGSTOP, SIGTSTP, ...)
  SyscallEntry,   // syscall-enter-stop
  SyscallExit,    // syscall-exit-stop
  Signal,         // signal-delivery-stop: `sig` is about to be delivered
  Event,          // another PTRACE_EVENT_* (`event`)
  Exited,         // the task is gone (exit or killed); `wait_status` tells
};

struct Stop {
  StopKind kind = StopKind::Trap;
  int sig = 0;          // stop signal / signal about to be delivered
  int event = 0;        // PTRACE_EVENT_*
  int wait_status = 0;  // raw status from waitpid
  siginfo_t info{};     // for Signal stops
  long syscall_nr = -1;   // SyscallEntry
  long syscall_ret = 0;   // SyscallExit
};

struct SeizeOptions {
  // PTRACE_O_* to set in addition to PTRACE_O_TRACESYSGOOD (and
  // PTRACE_O_SUSPEND_SECCOMP, added when the task runs under seccomp).
  unsigned long ptrace_options = 0;
  // How long to wait for the task to stop. A task in uninterruptible sleep
  // (state D) does not stop until it wakes.
  std::chrono::milliseconds stop_timeout{10000};
};

class SeizedTask {
 public:
  // Seize thread `tid` and stop it. Refuses, with an Error saying why, a task
  // that is gone, a zombie, a kernel thread, crtools itself, traced by
  // someone else, or waiting for a vfork child; a task it may not trace is
  // reported as permission denied. A signal arriving meanwhile is delivered
  // as it would have been.
  static Result<SeizedTask> seize(pid_t tid, const SeizeOptions& opts = {});
  // The same in two halves, to freeze many threads at once: seize_start()
  // attaches and asks for the stop; wait_seized() waits for it (the Errors
  // of seize() come from one or the other).
  static Result<SeizedTask> seize_start(pid_t tid, const SeizeOptions& opts = {});
  Status wait_seized(const SeizeOptions& opts = {});

  // A task already seized (PTRACE_SEIZE) and stopped by other code of this
  // thread. Never detaches; `group_stopped` says whether its process is in a
  // group stop.
  static SeizedTask adopt_stopped(pid_t tid, pid_t tgid, bool group_stopped);

  SeizedTask(SeizedTask&& o) noexcept;
  SeizedTask& operator=(SeizedTask&& o) noexcept;
  SeizedTask(const SeizedTask&) = delete;
  SeizedTask& operator=(const SeizedTask&) = delete;
  // Detaches if seized here and still attached (errors are logged).
  ~SeizedTask();

  pid_t tid() const { return tid_; }
  pid_t tgid() const { return tgid_; }
  bool owned() const { return owned_; }
  bool attached() const { return attached_; }
  // The process was in a group stop when seized (or entered one since).
  bool group_stopped() const { return group_stopped_; }
  // The task has exited (or was killed) while held; wait_status() tells how.
  bool exited() const { return exited_; }
  int wait_status() const { return exit_wait_status_; }
  // The last stop seen.
  const Stop& last_stop() const { return last_stop_; }

  // Registers. The task must be in a ptrace stop.
  Result<user_regs_struct> get_regs();
  Status set_regs(const user_regs_struct& r);
  Result<XState> get_xstate();
  Status set_xstate(const XState& x);
  Result<uint64_t> get_sigmask();
  Status set_sigmask(uint64_t mask);
  Result<siginfo_t> get_siginfo();

  // Task memory through /proc/TID/mem: all bytes or an Error. Writing works
  // on read-only private mappings too (code), as a debugger's breakpoints do.
  Status read_mem(RemotePtr<void> addr, void* buf, size_t len);
  Status write_mem(RemotePtr<void> addr, const void* buf, size_t len);

  // Resume with `request` (PTRACE_CONT or PTRACE_SYSCALL), delivering `sig`
  // if the task is in a signal-delivery-stop (0: none).
  Status resume(int request, int sig = 0);
  // Ask for a trap (PTRACE_INTERRUPT).
  Status interrupt();
  // Wait for the next stop. If the wait is interrupted by a signal to this
  // thread (a handler installed without SA_RESTART, e.g. for SIGINT), the
  // task is sent PTRACE_INTERRUPT once, so a blocking call it runs for us
  // ends, and the wait goes on; cancel_requested() then tells.
  Result<Stop> wait_stop();
  // The same with a deadline; returns an Error with err == ETIMEDOUT when
  // the task did not stop in time.
  Result<Stop> wait_stop_for(std::chrono::milliseconds timeout);
  bool cancel_requested() const { return cancel_requested_; }

  // Detach now (PTRACE_DETACH); the task goes on (or back into its group
  // stop). No-op for an adopted task or a task that exited.
  Status detach();

 private:
  SeizedTask(pid_t tid, pid_t tgid, bool owned) : tid_(tid), tgid_(tgid), owned_(owned), attached_(true) {}
  Result<Stop> classify(int wait_status);
  Status open_mem();

  pid_t tid_ = 0;
  pid_t tgid_ = 0;
  bool owned_ = false;
  bool attached_ = false;
  bool group_stopped_ = false;
  bool exited_ = false;
  bool cancel_requested_ = false;
  int exit_wait_status_ = 0;
  Stop last_stop_;
  UniqueFd mem_;
};

// Could the caller trace `pid` (the kernel's ptrace access check, made by
// opening /proc/PID/mem, which touches nothing)? An Error naming the pid,
// its owner and the remedy when it could not; ok otherwise, also when the
// task is gone (the caller's next step says so).
Status check_may_trace(pid_t pid);

// Human-readable name of a wait status ("exited with 3", "killed by SIGKILL").
std::string describe_wait_status(int wait_status);

}  // namespace cr
