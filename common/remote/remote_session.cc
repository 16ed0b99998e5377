#include "common/fault.h"
#include "common/remote/remote_session.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <sstream>

#include "common/fd.h"
#include "common/log.h"
#include "common/ptrace/task_state.h"
#include "common/remote/syscall_names.h"

namespace cr {

namespace {

constexpr uint64_t kAllSignals = ~0ULL;
constexpr uint64_t kEflagsTF = 0x100;  // trap flag (single step)
constexpr uint64_t kEflagsDF = 0x400;  // direction flag
constexpr uint8_t kSyscallInsn[2] = {0x0f, 0x05};
constexpr size_t kPage = 4096;

uint64_t sigbit(int sig) { return 1ULL << (sig - 1); }

size_t round_page(size_t n) { return (n + kPage - 1) & ~(kPage - 1); }

std::string call_name(long nr) {
  const char* n = syscall_name(nr);
  return n ? n : "syscall " + std::to_string(nr);
}

// A signal raised by the instruction the task executed (a fault), as
// opposed to one sent to it.
bool is_synchronous(const siginfo_t& si) {
  switch (si.si_signo) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGSYS:
      return si.si_code > 0;  // SI_KERNEL (0x80) and the fault codes; SI_USER etc. are <= 0
    default:
      return false;
  }
}

bool is_stop_signal(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

struct MapLine {
  uint64_t start = 0, end = 0;
  std::string perms;
  std::string path;
};

std::vector<MapLine> parse_maps(const std::string& text) {
  std::vector<MapLine> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    MapLine m;
    unsigned long long s = 0, e = 0;
    char perms[8] = {};
    int off = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %*s%n", &s, &e, perms, &off) < 3) continue;
    m.start = s;
    m.end = e;
    m.perms = perms;
    if (off > 0 && static_cast<size_t>(off) < line.size()) {
      size_t p = line.find_first_not_of(' ', off);
      if (p != std::string::npos) m.path = line.substr(p);
    }
    out.push_back(m);
  }
  return out;
}

}  // namespace

Result<RemoteSession> RemoteSession::start(SeizedTask& task, const RemoteSessionOptions& opts) {
  TRY_STATUS(fault_point("remote session"));
  if (!task.attached()) return make_pid_error(task.tid(), ESRCH, "task is not held");
  if (task.last_stop().kind == StopKind::SyscallEntry)
    return make_pid_error(task.tid(), 0, "task is at a system call entry; a session cannot start there");
  RemoteSession s(task);
  // From here on everything changed is undone by restore(), even if the
  // start fails halfway: the destructor of `s` runs on every return.
  s.resume_regs_ = TRY(task.get_regs());
  s.active_ = true;
  TRY_STATUS(s.plan_restart());
  s.saved_sigmask_ = TRY(task.get_sigmask());
  s.mask_saved_ = true;
  s.saved_xstate_ = TRY(task.get_xstate());
  s.xstate_saved_ = true;
  TRY_STATUS(task.set_sigmask(kAllSignals));
  TRY_STATUS(s.find_syscall_site(opts.site));
  pr_debug(task.tid(), "remote session: syscall at 0x%" PRIx64 "%s, resume at 0x%llx", s.site_.addr(),
           s.site_patched_ ? " (written)" : "", (unsigned long long)s.resume_regs_.rip);
  return s;
}

RemoteSession::RemoteSession(RemoteSession&& o) noexcept
    : task_(o.task_),
      active_(std::exchange(o.active_, false)),
      restoring_(false),
      exec_done_(o.exec_done_),
      mask_saved_(o.mask_saved_),
      xstate_saved_(o.xstate_saved_),
      resume_regs_(o.resume_regs_),
      restart_(o.restart_),
      saved_xstate_(std::move(o.saved_xstate_)),
      saved_sigmask_(o.saved_sigmask_),
      site_(o.site_),
      site_patched_(o.site_patched_),
      patches_(std::move(o.patches_)),
      scratch_(std::move(o.scratch_)),
      deferred_signals_(std::move(o.deferred_signals_)) {}

RemoteSession::~RemoteSession() { restore_or_log(); }

void RemoteSession::restore_or_log() {
  auto st = restore();
  if (!st) log_error(st.error());
}

// Decide how the task resumes if it was stopped inside a system call.
//
// The kernel restarts an interrupted call (rip -= 2, rax = orig_rax, or rax
// = restart_syscall) on its way back to user mode from the stop that
// interrupted it, in arch_do_signal_or_restart(). After we have run calls
// of our own the task returns from *their* exit stop instead, where that
// logic runs only if TIF_SIGPENDING is set: PTRACE_DETACH happens to set
// it, PTRACE_CONT does not (cr-dump may go on with the task). So the rewind
// is done here, on the registers restore() puts back; the kernel then finds
// no restart code in them and leaves them be. Two cases stay with the kernel:
//  * a signal is pending, unblocked, for this very thread: the kernel will
//    deliver it on the way out and apply its rules (SA_RESTART or EINTR) to
//    the untouched registers, as it would have without us;
//  * -EINTR that is the program's (see pending_restart()).
// The signal mask needs nothing special: PTRACE_GETSIGMASK returns the mask
// that ppoll/pselect/epoll_pwait/sigsuspend will put back, and
// PTRACE_SETSIGMASK drops their temporary one; the re-issued call applies
// it again.
Status RemoteSession::plan_restart() {
  pid_t tid = task_->tid();
  const user_regs_struct raw = resume_regs_;
  if (static_cast<long>(raw.orig_rax) < 0) return ok_status();
  uint64_t blocked = TRY(task_->get_sigmask());
  TaskState ts = TRY(read_task_state(tid));
  uint64_t for_program = (ts.sig_pending | ts.shd_pending) & ~blocked;
  uint64_t for_this_thread = ts.sig_pending & ~blocked;
  restart_ = pending_restart(raw, for_program != 0);
  if (restart_ == PendingRestart::None) return ok_status();
  if (for_this_thread) {
    pr_debug(tid, "stopped in %s with signals 0x%" PRIx64 " pending: the kernel restarts it",
             call_name((long)raw.orig_rax).c_str(), for_this_thread);
    restart_ = PendingRestart::None;
    return ok_status();
  }
  resume_regs_ = regs_to_reissue(raw, restart_);
  pr_debug(tid, "stopped in %s (rax %lld): it will be issued again", call_name((long)raw.orig_rax).c_str(),
           (long long)raw.rax);
  return ok_status();
}

Status RemoteSession::find_syscall_site(SyscallSite how) {
  pid_t tid = task_->tid();
  std::string maps_path = "/proc/" + std::to_string(tid) + "/maps";
  auto text = read_file(maps_path.c_str());
  if (!text) return make_pid_error(tid, text.error().err, "cannot read %s", maps_path.c_str());
  std::vector<MapLine> maps = parse_maps(*text);

  auto scan = [&](const MapLine& m) -> Result<uint64_t> {
    constexpr size_t kChunk = 64 << 10;
    std::vector<uint8_t> buf(kChunk + 1);
    uint8_t prev = 0;
    for (uint64_t a = m.start; a < m.end; a += kChunk) {
      size_t n = std::min<uint64_t>(kChunk, m.end - a);
      TRY_STATUS(task_->read_mem(RemotePtr<void>(a), buf.data(), n));
      if (a != m.start && prev == kSyscallInsn[0] && buf[0] == kSyscallInsn[1]) return a - 1;
      for (size_t i = 0; i + 1 < n; i++)
        if (buf[i] == kSyscallInsn[0] && buf[i + 1] == kSyscallInsn[1]) return a + i;
      prev = buf[n - 1];
    }
    return 0;
  };

  if (how != SyscallSite::PatchAtRip) {
    for (const auto& m : maps) {
      if (m.path != "[vdso]") continue;
      auto a = scan(m);
      if (a && *a) {
        site_ = RemotePtr<void>(*a);
        return ok_status();
      }
    }
    if (how == SyscallSite::Vdso) return make_pid_error(tid, 0, "no syscall instruction in the task's vDSO");
    for (const auto& m : maps) {
      if (m.perms.size() < 3 || m.perms[2] != 'x' || m.path == "[vsyscall]" || m.path == "[vdso]") continue;
      auto a = scan(m);
      if (a && *a) {
        site_ = RemotePtr<void>(*a);
        return ok_status();
      }
    }
  }
  // Last resort: write the instruction over the code at rip (a private
  // mapping only; a shared one would change a file).
  uint64_t rip = resume_regs_.rip;
  const MapLine* at = nullptr;
  for (const auto& m : maps)
    if (rip >= m.start && rip + sizeof kSyscallInsn <= m.end) at = &m;
  if (!at || at->perms.size() < 4 || at->perms[3] != 'p')
    return make_pid_error(tid, 0, "no syscall instruction found, and rip 0x%" PRIx64 " is not in a private mapping to write one",
                          rip);
  TRY_STATUS(write_restored_on_exit(RemotePtr<void>(rip), kSyscallInsn, sizeof kSyscallInsn));
  site_ = RemotePtr<void>(rip);
  site_patched_ = true;
  return ok_status();
}

Status RemoteSession::write_restored_on_exit(RemotePtr<void> dst, const void* src, size_t len) {
  if (!active_) return make_pid_error(tid(), 0, "remote session is over");
  Patch p;
  p.at = dst;
  p.old.resize(len);
  TRY_STATUS(task_->read_mem(dst, p.old.data(), len));
  // Saved before writing: restore() puts these bytes back even if the write
  // below fails halfway.
  patches_.push_back(std::move(p));
  return task_->write_mem(dst, src, len);
}

// Resume with `request` until the stop the caller waits for: the exit of a
// system call (want_exit) or the int3 trap of run_until_int3.
Result<Stop> RemoteSession::run_to_stop(int request, bool want_exit) {
  pid_t tid = task_->tid();
  int inject = 0;
  while (true) {
    TRY_STATUS(task_->resume(request, inject));
    inject = 0;
    Stop s = TRY(task_->wait_stop());
    switch (s.kind) {
      case StopKind::Exited:
        return make_pid_error(tid, ESRCH, "task %s", describe_wait_status(s.wait_status).c_str());
      case StopKind::SyscallExit:
        if (want_exit) return s;
        break;
      case StopKind::SyscallEntry:
      case StopKind::Trap:       // a pending interrupt
      case StopKind::GroupStop:  // its process was stopped meanwhile: run on, it stays stopped
      case StopKind::Event:
        break;
      case StopKind::Signal:
        if (!want_exit && s.sig == SIGTRAP && s.info.si_code == SI_KERNEL) return s;  // int3
        if (is_synchronous(s.info)) {
          user_regs_struct r{};
          if (auto g = task_->get_regs(); g) r = *g;
          return make_pid_error(tid, 0, "code run in the task faulted: signal %d (code %d) at rip 0x%llx, address %p",
                                s.sig, s.info.si_code, (unsigned long long)r.rip, s.info.si_addr);
        }
        if (is_stop_signal(s.sig)) {
          inject = s.sig;  // deliver it: the process stops (and stays stopped after us)
        } else {
          // Cannot be blocked here (only SIGTRAP is unblocked, in
          // run_until_int3): keep it for the program, send it again at the end.
          deferred_signals_.push_back(s.info);
        }
        break;
    }
  }
}

Result<long> RemoteSession::syscall_raw(long nr, std::span<const uint64_t> args) {
  TRY_STATUS(fault_point("remote system call"));
  pid_t tid = task_->tid();
  if (!active_ && !restoring_) return make_pid_error(tid, 0, "remote session is over");
  if (args.size() > 6) return make_pid_error(tid, E2BIG, "a system call takes at most six arguments");
  uint64_t a[6] = {};
  for (size_t i = 0; i < args.size(); i++) a[i] = args[i];

  user_regs_struct r = resume_regs_;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = static_cast<uint64_t>(-1);  // no restart processing on the way in
  r.rdi = a[0];
  r.rsi = a[1];
  r.rdx = a[2];
  r.r10 = a[3];
  r.r8 = a[4];
  r.r9 = a[5];
  r.rip = site_.addr();
  r.eflags &= ~(kEflagsTF | kEflagsDF);
  TRY_STATUS(task_->set_regs(r));

  // From the stop we are in to the entry of our call, then to its exit.
  int inject = 0;
  bool entered = false;
  while (true) {
    TRY_STATUS(task_->resume(PTRACE_SYSCALL, inject));
    inject = 0;
    Stop s = TRY(task_->wait_stop());
    if (s.kind == StopKind::Exited) {
      active_ = false;
      return make_pid_error(tid, ESRCH, "task %s in %s", describe_wait_status(s.wait_status).c_str(),
                            call_name(nr).c_str());
    }
    if (s.kind == StopKind::SyscallEntry) {
      if (s.syscall_nr != nr)
        return make_pid_error(tid, 0, "task entered %s instead of %s", call_name(s.syscall_nr).c_str(),
                              call_name(nr).c_str());
      entered = true;
      continue;
    }
    if (s.kind == StopKind::SyscallExit) {
      if (!entered) return make_pid_error(tid, 0, "task left a system call it was not sent into");
      long ret = s.syscall_ret;
      if ((nr == SYS_execve || nr == SYS_execveat) && ret == 0) {
        // The old program is gone: so are its registers, memory and our
        // scratch and site. Only the signal mask survives an exec.
        exec_done_ = true;
      }
      pr_debug(tid, "%s = %ld", call_name(nr).c_str(), ret);
      return ret;
    }
    if (s.kind == StopKind::Signal) {
      if (is_synchronous(s.info))
        return make_pid_error(tid, 0, "task got signal %d (code %d) running %s", s.sig, s.info.si_code,
                              call_name(nr).c_str());
      if (is_stop_signal(s.sig)) inject = s.sig;
      else deferred_signals_.push_back(s.info);
    }
    // Trap (a pending interrupt), GroupStop, Event: go on.
  }
}

Result<uint64_t> RemoteSession::check_return(long nr, long r) {
  if (r < 0 && r >= -4095) return make_pid_error(tid(), static_cast<int>(-r), "%s failed in the task", call_name(nr).c_str());
  return static_cast<uint64_t>(r);
}

Result<RemotePtr<void>> RemoteSession::alloc_scratch(size_t size, int prot) {
  size_t len = round_page(size ? size : 1);
  uint64_t a = TRY(syscall_checked(SYS_mmap, 0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  Scratch s;
  s.base = RemotePtr<void>(a);
  s.size = len;
  s.used = len;  // not for push_*
  scratch_.push_back(s);
  pr_debug(tid(), "scratch mapping 0x%" PRIx64 "-0x%" PRIx64, a, a + len);
  return s.base;
}

Result<RemotePtr<void>> RemoteSession::push_bytes(const void* data, size_t len) {
  size_t need = (len + 15) & ~size_t(15);
  Scratch* arena = nullptr;
  for (auto& s : scratch_)
    if (s.size - s.used >= need) arena = &s;
  if (!arena) {
    RemotePtr<void> base = TRY(alloc_scratch(need));
    arena = &scratch_.back();
    arena->used = 0;
    (void)base;
  }
  RemotePtr<void> at = arena->base + static_cast<std::ptrdiff_t>(arena->used);
  arena->used += need;
  TRY_STATUS(task_->write_mem(at, data, len));
  return at;
}

Result<RemotePtr<char>> RemoteSession::push_string(std::string_view s) {
  std::string copy(s);  // with its NUL
  RemotePtr<void> p = TRY(push_bytes(copy.c_str(), copy.size() + 1));
  return p.cast<char>();
}

Result<user_regs_struct> RemoteSession::run_until_int3(const user_regs_struct& regs) {
  if (!active_) return make_pid_error(tid(), 0, "remote session is over");
  TRY_STATUS(task_->set_sigmask(kAllSignals & ~sigbit(SIGTRAP)));
  user_regs_struct r = regs;
  r.orig_rax = static_cast<uint64_t>(-1);
  r.eflags &= ~kEflagsTF;
  Result<user_regs_struct> out = make_error("not run");
  if (auto st = task_->set_regs(r); !st) {
    out = std::move(st).error();
  } else if (auto s = run_to_stop(PTRACE_CONT, /*want_exit=*/false); !s) {
    out = std::move(s).error();
  } else {
    out = task_->get_regs();
  }
  if (!task_->exited()) {
    if (auto st = task_->set_sigmask(kAllSignals); !st && out.ok()) out = std::move(st).error();
  } else {
    active_ = false;
  }
  return out;
}

Status RemoteSession::restore() {
  if (!active_) return ok_status();
  FaultsOff undo;  // putting the task back is what a failure relies on
  active_ = false;
  if (task_->exited()) return ok_status();
  pid_t tid = task_->tid();
  Status first;
  auto note = [&](Status s) {
    if (!s) {
      if (first.ok()) first = s;
      else log_error(s.error());
    }
  };

  if (!exec_done_) {
    restoring_ = true;
    for (auto it = scratch_.rbegin(); it != scratch_.rend() && !task_->exited(); ++it) {
      auto r = syscall_raw(SYS_munmap, it->base, it->size);
      if (!r) note(std::move(r).error());
      else if (*r != 0)
        note(make_pid_error(tid, static_cast<int>(-*r), "cannot unmap scratch memory at 0x%" PRIx64,
                            it->base.addr()));
    }
    restoring_ = false;
    scratch_.clear();
    for (auto it = patches_.rbegin(); it != patches_.rend() && !task_->exited(); ++it)
      note(task_->write_mem(it->at, it->old.data(), it->old.size()));
    patches_.clear();
  }
  if (task_->exited()) return first;
  if (mask_saved_) note(task_->set_sigmask(saved_sigmask_));
  if (!exec_done_) {
    if (xstate_saved_) {
      auto now = task_->get_xstate();
      if (!now) note(std::move(now).error());
      else if (!(*now == saved_xstate_)) note(task_->set_xstate(saved_xstate_));
    }
    note(task_->set_regs(resume_regs_));
  }
  for (const siginfo_t& si : deferred_signals_) {
    siginfo_t copy = si;
    if (syscall(SYS_rt_tgsigqueueinfo, task_->tgid(), tid, si.si_signo, &copy) != 0 &&
        syscall(SYS_tgkill, task_->tgid(), tid, si.si_signo) != 0)
      note(make_pid_error(tid, errno, "cannot send signal %d back to the task", si.si_signo));
  }
  deferred_signals_.clear();
  pr_debug(tid, "remote session restored");
  return first;
}

}  // namespace cr
