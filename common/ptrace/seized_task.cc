#include "common/fault.h"
#include "common/ptrace/seized_task.h"

#include <cpuid.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/proc/status.h"
#include "common/ptrace/task_state.h"

namespace cr {

namespace {

// ptrace(2) through the raw system call: no glibc PEEK conventions, and an
// int request (glibc's prototype wants its own enum in C++).
long pt(long request, pid_t tid, uint64_t addr, uint64_t data) {
  return syscall(SYS_ptrace, request, tid, addr, data);
}

bool is_stop_signal(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

size_t xstate_buffer_size() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  size_t n = 0;
  if (__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx)) n = ecx;
  if (n < 4096) n = 4096;
  return (n + 63) & ~size_t(63);
}

// Explain a PTRACE_SEIZE failure from what /proc says now.
Error seize_error(pid_t tid, int err) {
  if (err == ESRCH) return make_pid_error(tid, ESRCH, "task not found");
  auto st = read_task_state(tid);
  if (!st) return std::move(st).error();
  if (auto c = check_task_enterable(*st); !c) return std::move(c).error();
  if (err == EPERM) {
    Error e = make_pid_error(tid, EPERM, "permission denied: cannot trace the task");
    e.remedy = "crtools needs CAP_SYS_PTRACE over the task: run it as root, in the task's user namespace";
    return e;
  }
  return make_pid_error(tid, err, "cannot seize the task (PTRACE_SEIZE)");
}

}  // namespace

Status check_may_trace(pid_t pid) {
  const std::string mem = "/proc/" + std::to_string(pid) + "/mem";
  int fd = open(mem.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return ok_status();
  }
  if (errno != EACCES && errno != EPERM) return ok_status();
  auto st = proc::read_status(pid);
  Error e = st ? make_pid_error(pid, EPERM, "permission denied: cannot trace the task (it runs as uid %u, crtools as "
                                            "uid %u)", st->uid[1], geteuid())
               : make_pid_error(pid, EPERM, "permission denied: cannot trace the task (crtools runs as uid %u)",
                                geteuid());
  e.remedy = "crtools needs CAP_SYS_PTRACE over the task: run it as root, in the task's user namespace";
  return e;
}

std::string describe_wait_status(int st) {
  if (WIFEXITED(st)) return "exited with " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) {
    const char* n = sigabbrev_np(WTERMSIG(st));
    return std::string("killed by SIG") + (n ? n : std::to_string(WTERMSIG(st)).c_str());
  }
  if (WIFSTOPPED(st)) return "stopped by signal " + std::to_string(WSTOPSIG(st));
  return "wait status " + std::to_string(st);
}

Result<SeizedTask> SeizedTask::seize(pid_t tid, const SeizeOptions& opts) {
  SeizedTask t = TRY(seize_start(tid, opts));
  TRY_STATUS(t.wait_seized(opts));
  return t;
}

Result<SeizedTask> SeizedTask::seize_start(pid_t tid, const SeizeOptions& opts) {
  TRY_STATUS(fault_point("ptrace seize"));
  TaskState st = TRY(read_task_state(tid));
  TRY_STATUS(check_task_enterable(st));

  unsigned long options = opts.ptrace_options | PTRACE_O_TRACESYSGOOD;
  if (st.seccomp != 0) options |= PTRACE_O_SUSPEND_SECCOMP;
  if (pt(PTRACE_SEIZE, tid, 0, options) != 0) {
    int e = errno;
    if (e == EINVAL && (options & PTRACE_O_SUSPEND_SECCOMP))
      return make_pid_error(tid, e,
                            "task runs under seccomp and this kernel cannot suspend it for a tracer");
    return seize_error(tid, e);
  }
  SeizedTask t(tid, st.tgid, true);
  pr_debug(tid, "seized (state %c, options 0x%lx)", st.state, options);
  if (pt(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
    int e = errno;
    // Gone already: the destructor's detach is moot.
    t.attached_ = false;
    return make_pid_error(tid, e, "cannot interrupt the task (PTRACE_INTERRUPT)");
  }
  return t;
}

Status SeizedTask::wait_seized(const SeizeOptions& opts) {
  SeizedTask& t = *this;
  pid_t tid = tid_;
  auto deadline = std::chrono::steady_clock::now() + opts.stop_timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    auto stop = t.wait_stop_for(left);
    if (!stop) {
      Error e = std::move(stop).error();
      if (e.err == ETIMEDOUT) {
        auto now = read_task_state(tid);
        char state = now ? now->state : '?';
        std::string wchan;
        if (auto w = read_file(("/proc/" + std::to_string(tid) + "/wchan").c_str(), 256); w && *w != "0")
          wchan = " in " + *w;
        e = make_pid_error(tid, 0, "task did not stop within %lld ms (state %c%s); it cannot be entered now",
                           (long long)opts.stop_timeout.count(), state, wchan.c_str());
        e.remedy = state == 'D' ? "it is in uninterruptible sleep; try again later" : "";
        // A task that never stopped cannot be detached; the kernel releases
        // it when this thread exits.
        t.attached_ = false;
      }
      return e;
    }
    switch (stop->kind) {
      case StopKind::Trap:
      case StopKind::GroupStop:
        pr_debug(tid, "stopped%s", t.group_stopped_ ? " (in group stop)" : "");
        return ok_status();
      case StopKind::Exited:
        return make_pid_error(tid, ESRCH, "task %s while being seized",
                              describe_wait_status(stop->wait_status).c_str());
      case StopKind::Signal:
        // A signal reached the task first (that stop consumed our
        // interrupt): deliver it as it would have been, and ask again.
        pr_debug(tid, "signal %d before the interrupt; delivering it", stop->sig);
        TRY_STATUS(t.interrupt());
        TRY_STATUS(t.resume(PTRACE_CONT, stop->sig));
        break;
      default:
        TRY_STATUS(t.resume(PTRACE_CONT, 0));
        break;
    }
  }
}

SeizedTask SeizedTask::adopt_stopped(pid_t tid, pid_t tgid, bool group_stopped) {
  SeizedTask t(tid, tgid, false);
  t.group_stopped_ = group_stopped;
  return t;
}

SeizedTask::SeizedTask(SeizedTask&& o) noexcept { *this = std::move(o); }

SeizedTask& SeizedTask::operator=(SeizedTask&& o) noexcept {
  if (this != &o) {
    if (owned_ && attached_) (void)detach();
    tid_ = o.tid_;
    tgid_ = o.tgid_;
    owned_ = std::exchange(o.owned_, false);
    attached_ = std::exchange(o.attached_, false);
    group_stopped_ = o.group_stopped_;
    exited_ = o.exited_;
    cancel_requested_ = o.cancel_requested_;
    exit_wait_status_ = o.exit_wait_status_;
    last_stop_ = o.last_stop_;
    mem_ = std::move(o.mem_);
  }
  return *this;
}

SeizedTask::~SeizedTask() {
  if (owned_ && attached_) {
    auto st = detach();
    // ESRCH: killed meanwhile (by someone else, or by us): nothing to let go.
    if (!st && st.error().err == ESRCH) pr_debug(tid_, "%s", st.error().str().c_str());
    else if (!st) log_error(st.error());
  }
}

Result<user_regs_struct> SeizedTask::get_regs() {
  TRY_STATUS(fault_point("ptrace getregs"));
  user_regs_struct r;
  if (pt(PTRACE_GETREGS, tid_, 0, reinterpret_cast<uint64_t>(&r)) != 0)
    return make_pid_error(tid_, errno, "cannot read registers (PTRACE_GETREGS)");
  return r;
}

Status SeizedTask::set_regs(const user_regs_struct& r) {
  if (pt(PTRACE_SETREGS, tid_, 0, reinterpret_cast<uint64_t>(&r)) != 0)
    return make_pid_error(tid_, errno, "cannot write registers (PTRACE_SETREGS)");
  return ok_status();
}

Result<XState> SeizedTask::get_xstate() {
  TRY_STATUS(fault_point("ptrace getregset"));
  XState x;
  x.bytes.resize(xstate_buffer_size());
  struct iovec iov = {x.bytes.data(), x.bytes.size()};
  if (pt(PTRACE_GETREGSET, tid_, NT_X86_XSTATE, reinterpret_cast<uint64_t>(&iov)) != 0)
    return make_pid_error(tid_, errno, "cannot read FPU/vector registers (PTRACE_GETREGSET NT_X86_XSTATE)");
  x.bytes.resize(iov.iov_len);
  return x;
}

Status SeizedTask::set_xstate(const XState& x) {
  struct iovec iov = {const_cast<uint8_t*>(x.bytes.data()), x.bytes.size()};
  if (pt(PTRACE_SETREGSET, tid_, NT_X86_XSTATE, reinterpret_cast<uint64_t>(&iov)) != 0)
    return make_pid_error(tid_, errno, "cannot write FPU/vector registers (PTRACE_SETREGSET NT_X86_XSTATE)");
  return ok_status();
}

Result<uint64_t> SeizedTask::get_sigmask() {
  TRY_STATUS(fault_point("ptrace getsigmask"));
  uint64_t m = 0;
  if (pt(PTRACE_GETSIGMASK, tid_, sizeof m, reinterpret_cast<uint64_t>(&m)) != 0)
    return make_pid_error(tid_, errno, "cannot read the signal mask (PTRACE_GETSIGMASK)");
  return m;
}

Status SeizedTask::set_sigmask(uint64_t m) {
  if (pt(PTRACE_SETSIGMASK, tid_, sizeof m, reinterpret_cast<uint64_t>(&m)) != 0)
    return make_pid_error(tid_, errno, "cannot set the signal mask (PTRACE_SETSIGMASK)");
  return ok_status();
}

Result<siginfo_t> SeizedTask::get_siginfo() {
  TRY_STATUS(fault_point("ptrace getsiginfo"));
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (pt(PTRACE_GETSIGINFO, tid_, 0, reinterpret_cast<uint64_t>(&si)) != 0)
    return make_pid_error(tid_, errno, "cannot read the signal information (PTRACE_GETSIGINFO)");
  return si;
}

Status SeizedTask::open_mem() {
  if (mem_.valid()) return ok_status();
  std::string p = "/proc/" + std::to_string(tid_) + "/mem";
  int fd = open(p.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return make_pid_error(tid_, errno, "cannot open %s", p.c_str());
  mem_.reset(fd);
  return ok_status();
}

Status SeizedTask::read_mem(RemotePtr<void> addr, void* buf, size_t len) {
  TRY_STATUS(fault_point("task memory read"));
  TRY_STATUS(open_mem());
  auto r = pread_full(mem_.get(), buf, len, addr.addr());
  if (!r) return make_pid_error(tid_, r.error().err, "cannot read %zu bytes of task memory at 0x%llx", len,
                                (unsigned long long)addr.addr());
  if (*r != len)
    return make_pid_error(tid_, EIO, "cannot read %zu bytes of task memory at 0x%llx (only %zu)", len,
                          (unsigned long long)addr.addr(), *r);
  return ok_status();
}

Status SeizedTask::write_mem(RemotePtr<void> addr, const void* buf, size_t len) {
  TRY_STATUS(fault_point("task memory write"));
  TRY_STATUS(open_mem());
  auto r = pwrite_full(mem_.get(), buf, len, addr.addr());
  if (!r) return make_pid_error(tid_, r.error().err, "cannot write %zu bytes of task memory at 0x%llx", len,
                                (unsigned long long)addr.addr());
  return ok_status();
}

Status SeizedTask::resume(int request, int sig) {
  if (!attached_) return make_pid_error(tid_, ESRCH, "task is not held");
  if (pt(request, tid_, 0, static_cast<uint64_t>(sig)) != 0)
    return make_pid_error(tid_, errno, "cannot resume the task (ptrace request 0x%x)", request);
  return ok_status();
}

Status SeizedTask::interrupt() {
  if (pt(PTRACE_INTERRUPT, tid_, 0, 0) != 0)
    return make_pid_error(tid_, errno, "cannot interrupt the task (PTRACE_INTERRUPT)");
  return ok_status();
}

Result<Stop> SeizedTask::classify(int ws) {
  Stop s;
  s.wait_status = ws;
  if (WIFEXITED(ws) || WIFSIGNALED(ws)) {
    s.kind = StopKind::Exited;
    exited_ = true;
    attached_ = false;
    exit_wait_status_ = ws;
    last_stop_ = s;
    return s;
  }
  if (!WIFSTOPPED(ws)) return make_pid_error(tid_, 0, "unexpected wait status 0x%x", ws);
  s.sig = WSTOPSIG(ws);
  s.event = (ws >> 16) & 0xff;
  if (s.event == PTRACE_EVENT_STOP) {
    // The stop signal says whether the process is in a group stop.
    group_stopped_ = is_stop_signal(s.sig);
    s.kind = group_stopped_ ? StopKind::GroupStop : StopKind::Trap;
  } else if (s.event != 0) {
    s.kind = StopKind::Event;
  } else if (s.sig == (SIGTRAP | 0x80) || s.sig == SIGTRAP) {
    struct __ptrace_syscall_info info;
    memset(&info, 0, sizeof info);
    long n = pt(PTRACE_GET_SYSCALL_INFO, tid_, sizeof info, reinterpret_cast<uint64_t>(&info));
    if (n > 0 && info.op == PTRACE_SYSCALL_INFO_ENTRY) {
      s.kind = StopKind::SyscallEntry;
      s.syscall_nr = static_cast<long>(info.entry.nr);
    } else if (n > 0 && info.op == PTRACE_SYSCALL_INFO_EXIT) {
      s.kind = StopKind::SyscallExit;
      s.syscall_ret = static_cast<long>(info.exit.rval);
    } else {
      s.kind = StopKind::Signal;
      s.sig = SIGTRAP;
      s.info = TRY(get_siginfo());
    }
  } else {
    s.kind = StopKind::Signal;
    s.info = TRY(get_siginfo());
  }
  last_stop_ = s;
  return s;
}

Result<Stop> SeizedTask::wait_stop() {
  if (!attached_) return make_pid_error(tid_, ESRCH, "task is not held");
  while (true) {
    int ws = 0;
    pid_t r = waitpid(tid_, &ws, __WALL);
    if (r == tid_) return classify(ws);
    if (r < 0 && errno == EINTR) {
      if (!cancel_requested_) {
        cancel_requested_ = true;
        pr_debug(tid_, "interrupted: asking the task to stop");
        (void)interrupt();
      }
      continue;
    }
    return make_pid_error(tid_, errno, "cannot wait for the task");
  }
}

Result<Stop> SeizedTask::wait_stop_for(std::chrono::milliseconds timeout) {
  if (!attached_) return make_pid_error(tid_, ESRCH, "task is not held");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(50);
  while (true) {
    int ws = 0;
    pid_t r = waitpid(tid_, &ws, __WALL | WNOHANG);
    if (r == tid_) return classify(ws);
    if (r < 0 && errno != EINTR) return make_pid_error(tid_, errno, "cannot wait for the task");
    if (std::chrono::steady_clock::now() >= deadline)
      return make_pid_error(tid_, ETIMEDOUT, "task did not stop in time");
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(10)) pause *= 2;
  }
}

Status SeizedTask::detach() {
  if (!owned_ || !attached_) return ok_status();
  attached_ = false;
  mem_.reset();
  if (pt(PTRACE_DETACH, tid_, 0, 0) != 0) {
    int e = errno;
    if (e == ESRCH) {
      // Not in a ptrace stop (it never stopped) or gone: the kernel releases
      // it when this thread exits.
      return make_pid_error(tid_, e, "cannot detach: the task is not stopped");
    }
    return make_pid_error(tid_, e, "cannot detach (PTRACE_DETACH)");
  }
  pr_debug(tid_, "detached%s", group_stopped_ ? " (back into its group stop)" : "");
  return ok_status();
}

}  // namespace cr
