#include "common/fault.h"
#include "common/remote/remote_session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>

#include "common/fd.h"
#include "common/kernel/sigframe.h"
#include "common/log.h"
#include "common/ptrace/task_state.h"
#include "common/remote/syscall_names.h"
#include "parasite/restorer_task_abi.h"

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

// --- Armour (remote_session.h) ---

// Where the `ret` that ends the code after a `syscall` takes its return
// address, as an offset from rsp at the `syscall` (rbp equal to rsp then),
// or -1 if that code is not one we can follow: xor reg,reg; pop reg (not
// rsp); leave (once); add $imm8,%rsp; nop; ret. The vDSO's fallbacks are
// such code (6.x: `syscall; xor %edx,%edx; ...; ret` in clock_getres).
long ret_slot_after(const uint8_t* p, size_t len) {
  long sp = 0;
  bool left = false;
  size_t i = 0;
  for (int insns = 0; insns < 16 && i < len; insns++) {
    uint8_t rex = 0, b = p[i];
    if ((b & 0xf0) == 0x40) {
      rex = b;
      if (++i >= len) return -1;
      b = p[i];
    }
    if (b == 0xc3 && !rex) return sp;
    if (b == 0x90 && !rex) {
      i++;
    } else if (b >= 0x58 && b <= 0x5f) {  // pop
      if (b == 0x5c && !(rex & 1)) return -1;  // pop %rsp
      sp += 8;
      i++;
    } else if (b == 0xc9 && !rex && !left) {  // leave: rsp = rbp + 8
      sp = 8;
      left = true;
      i++;
    } else if ((b == 0x31 || b == 0x33) && i + 1 < len && (p[i + 1] & 0xc0) == 0xc0) {  // xor reg,reg
      unsigned dst = b == 0x31 ? (p[i + 1] & 7) | (rex & 1) << 3 : (p[i + 1] >> 3 & 7) | (rex & 4) << 1;
      if (dst == 4) return -1;  // rsp
      i += 2;
    } else if (b == 0x83 && rex == 0x48 && i + 2 < len && p[i + 1] == 0xc4 && static_cast<int8_t>(p[i + 2]) >= 0) {
      sp += static_cast<int8_t>(p[i + 2]);  // add $imm8,%rsp
      i += 3;
    } else {
      return -1;
    }
  }
  return -1;
}

struct Gadgets {
  uint64_t call = 0;       // a `syscall` whose code after it reaches `ret`
  long slot = -1;          // ... taking the return address at rsp + slot
  uint64_t sigreturn = 0;  // `mov $15,%eax; syscall` (or mov $15,%rax)
};

// Search the task's code for the two pieces, the vDSO first. Read-only.
Result<Gadgets> find_gadgets(pid_t tid, const std::vector<proc::VmaInfo>& maps) {
  TRY_STATUS(fault_point("syscall gadget search"));
  std::string mem_path = "/proc/" + std::to_string(tid) + "/mem";
  UniqueFd mem(open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) return make_pid_error(tid, errno, "cannot open %s", mem_path.c_str());
  static constexpr uint8_t kSigreturn32[] = {0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
  static constexpr uint8_t kSigreturn64[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
  Gadgets g;
  std::vector<const proc::VmaInfo*> order;
  for (const auto& m : maps)
    if (m.path == "[vdso]") order.push_back(&m);
  for (const auto& m : maps)
    if ((m.prot & PROT_EXEC) && m.path != "[vdso]" && m.path != "[vsyscall]") order.push_back(&m);
  std::vector<uint8_t> buf;
  for (const proc::VmaInfo* m : order) {
    if (g.call && g.sigreturn) break;
    constexpr size_t kMax = 64 << 20;
    size_t len = std::min<uint64_t>(m->end - m->start, kMax);
    buf.resize(len);
    ssize_t n = pread(mem.get(), buf.data(), len, static_cast<off_t>(m->start));
    if (n <= 0) continue;  // (a mapping not readable through /proc: skip it)
    const uint8_t* b = buf.data();
    for (size_t i = 0; i + 2 <= static_cast<size_t>(n); i++) {
      if (b[i] != 0x0f || b[i + 1] != 0x05) continue;
      if (!g.sigreturn) {
        if (i >= 5 && memcmp(b + i - 5, kSigreturn32, sizeof kSigreturn32) == 0) g.sigreturn = m->start + i - 5;
        else if (i >= 7 && memcmp(b + i - 7, kSigreturn64, sizeof kSigreturn64) == 0) g.sigreturn = m->start + i - 7;
      }
      if (!g.call) {
        long slot = ret_slot_after(b + i + 2, static_cast<size_t>(n) - i - 2);
        if (slot >= 0 && slot <= 256) {
          g.call = m->start + i;
          g.slot = slot;
        }
      }
      if (g.call && g.sigreturn) break;
    }
  }
  return g;
}

// Offsets in a return frame: the rt_sigframe, then its XSAVE area.
constexpr size_t kFrameXsave = (sizeof(KRtSigframe) + 63) & ~size_t(63);

// The same user state: what rt_sigreturn gives back (orig_rax it sets to
// -1; eflags only through the kernel's FIX_EFLAGS mask).
bool same_user_state(const user_regs_struct& a, const user_regs_struct& b) {
  constexpr uint64_t kFixEflags = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
  return a.r15 == b.r15 && a.r14 == b.r14 && a.r13 == b.r13 && a.r12 == b.r12 && a.rbp == b.rbp &&
         a.rbx == b.rbx && a.r11 == b.r11 && a.r10 == b.r10 && a.r9 == b.r9 && a.r8 == b.r8 && a.rax == b.rax &&
         a.rcx == b.rcx && a.rdx == b.rdx && a.rsi == b.rsi && a.rdi == b.rdi && a.rip == b.rip &&
         a.rsp == b.rsp && a.cs == b.cs && a.ss == b.ss && a.fs_base == b.fs_base && a.gs_base == b.gs_base &&
         (a.eflags & kFixEflags) == (b.eflags & kFixEflags);
}

// sigaltstack's mode in the frame: not one do_sigaltstack accepts, so the
// restore_altstack of rt_sigreturn fails (EINVAL, ignored there) and the
// task keeps the sigaltstack it has, which we do not know here (6.18
// kernel/signal.c restore_altstack, do_sigaltstack).
constexpr int32_t kKeepAltstack = 0x7;

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
  std::vector<proc::VmaInfo> maps = TRY(proc::read_maps(task.tid()));
  // Armed before any signal is blocked: a task let go before the mask is
  // set has its own mask still.
  if (opts.site == SyscallSite::Auto) TRY_STATUS(s.arm(maps));
  TRY_STATUS(s.block_signals_armed());
  if (!s.armed_) TRY_STATUS(s.find_syscall_site(opts.site, maps));
  pr_debug(task.tid(), "remote session: syscall at 0x%" PRIx64 "%s, resume at 0x%llx", s.site_.addr(),
           s.armed_ ? " (armed)" : s.site_patched_ ? " (written)" : "", (unsigned long long)s.resume_regs_.rip);
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
      deferred_signals_(std::move(o.deferred_signals_)),
      armed_(std::exchange(o.armed_, false)),
      armed_rsp_(o.armed_rsp_),
      frame_at_(o.frame_at_),
      frame_old_(std::move(o.frame_old_)) {}

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

Status RemoteSession::find_syscall_site(SyscallSite how, const std::vector<proc::VmaInfo>& maps) {
  pid_t tid = task_->tid();

  auto scan = [&](const proc::VmaInfo& m) -> Result<uint64_t> {
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
      if (!(m.prot & PROT_EXEC) || m.path == "[vsyscall]" || m.path == "[vdso]") continue;
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
  const proc::VmaInfo* at = nullptr;
  for (const auto& m : maps)
    if (rip >= m.start && rip + sizeof kSyscallInsn <= m.end) at = &m;
  if (!at || at->shared)
    return make_pid_error(tid, 0, "no syscall instruction found, and rip 0x%" PRIx64 " is not in a private mapping to write one",
                          rip);
  TRY_STATUS(write_restored_on_exit(RemotePtr<void>(rip), kSyscallInsn, sizeof kSyscallInsn));
  site_ = RemotePtr<void>(rip);
  site_patched_ = true;
  return ok_status();
}


Result<std::vector<uint8_t>> RemoteSession::return_frame_bytes(uint64_t at, uint64_t pretcode) {
  const uint64_t features = sigframe_features(xcr0_features());
  std::vector<uint8_t> b(kFrameXsave + sigframe_xstate_room(features));
  TRY_STATUS(put_sigframe_xstate(std::span<uint8_t>(b).subspan(kFrameXsave), saved_xstate_.bytes, features));
  KRtSigframe f{};
  f.pretcode = pretcode;
  f.uc.uc_flags = kUcFpXstate | kUcSigcontextSs | kUcStrictRestoreSs;
  f.uc.ss_flags = kKeepAltstack;
  const user_regs_struct& g = resume_regs_;
  KSigcontext& sc = f.uc.mcontext;
  put_sigframe_regs(sc, g);
  sc.fpstate = at + kFrameXsave;
  f.uc.sigmask = saved_sigmask_;
  memcpy(b.data(), &f, sizeof f);
  return b;
}

Status RemoteSession::arm(const std::vector<proc::VmaInfo>& maps) {
  pid_t tid = task_->tid();
  auto not_armed = [&](const char* why) {
    pr_debug(tid, "remote session not armed against the end of crtools: %s", why);
    return ok_status();
  };
  const user_regs_struct& r = resume_regs_;
  if (static_cast<long>(r.orig_rax) >= 0 && restart_ == PendingRestart::None &&
      is_restart_errno(-static_cast<long>(r.rax)))
    return not_armed("a signal is about to interrupt its system call");
  std::string status_path = "/proc/" + std::to_string(tid) + "/status";
  if (auto st = read_file(status_path.c_str()); st) {
    size_t at = st->find("x86_Thread_features:");
    if (at != std::string::npos && st->substr(at, st->find('\n', at) - at).find("shstk") != std::string::npos)
      return not_armed("it runs with a shadow stack");
  }
  Gadgets g = TRY(find_gadgets(tid, maps));
  if (!g.call) return not_armed("no `syscall ... ret` code in the task");
  if (!g.sigreturn) return not_armed("no rt_sigreturn code (__restore_rt) in the task");
  // The frame below the red zone, 64-byte aligned for its XSAVE area; the
  // slots the code after the `syscall` pops below it.
  const proc::VmaInfo* stack = nullptr;
  for (const auto& m : maps)
    if (r.rsp > m.start && r.rsp <= m.end && (m.prot & PROT_WRITE)) stack = &m;
  if (!stack) return not_armed("its stack pointer is not in a writable mapping");
  auto probe = return_frame_bytes(0, 0);
  if (!probe) return not_armed("its XSAVE state cannot go in a signal frame (live AMX tiles)");
  const uint64_t size = probe->size();
  if (r.rsp - stack->start < 128 + size + 64 + static_cast<uint64_t>(g.slot))
    return not_armed("no room on its stack for a signal frame");
  const uint64_t at = (r.rsp - 128 - size) & ~uint64_t(63);
  const uint64_t rsp = at - static_cast<uint64_t>(g.slot);
  auto bytes = TRY(return_frame_bytes(at, g.sigreturn));

  frame_old_.at = RemotePtr<void>(at);
  frame_old_.old.resize(bytes.size());
  TRY_STATUS(task_->read_mem(frame_old_.at, frame_old_.old.data(), bytes.size()));
  frame_at_ = at;  // from here put_frame_back() writes the old bytes back
  TRY_STATUS(task_->write_mem(frame_old_.at, bytes.data(), bytes.size()));

  site_ = RemotePtr<void>(g.call);
  armed_rsp_ = rsp;
  if (restart_ == PendingRestart::RestartBlock) {
    // Not checked: rt_sigreturn would cancel its restart (remote_session.h).
    pr_debug(tid, "remote session armed, its frame unchecked (a call restarts through restart_syscall)");
    armed_ = true;
    return ok_status();
  }
  // Check the frame once: rt_sigreturn through it must give the task its
  // resume registers and mask (it also undoes our mask; start() blocks
  // signals again after this).
  user_regs_struct sr = r;
  sr.rax = SYS_rt_sigreturn;
  sr.rip = g.call;
  sr.rsp = at + 8;
  long ret = TRY(run_call(SYS_rt_sigreturn, sr));
  (void)ret;
  user_regs_struct now = TRY(task_->get_regs());
  uint64_t mask = TRY(task_->get_sigmask());
  if (!same_user_state(now, resume_regs_) || mask != saved_sigmask_)
    return make_pid_error(tid, 0, "rt_sigreturn through the session's frame at 0x%" PRIx64
                          " did not give the task its registers back (rip 0x%llx, want 0x%llx)",
                          at, (unsigned long long)now.rip, (unsigned long long)resume_regs_.rip);
  armed_ = true;
  return ok_status();
}

void RemoteSession::put_frame_back() {
  if (!frame_at_) return;
  frame_at_ = 0;
  armed_ = false;
  if (task_->exited() || exec_done_) return;
  // Dead bytes below the stack pointer by now; put back all the same.
  if (auto st = task_->write_mem(frame_old_.at, frame_old_.old.data(), frame_old_.old.size()); !st) {
    if (st.error().err == ESRCH) pr_debug(task_->tid(), "frame bytes not put back: %s", st.error().str().c_str());
    else log_error(st.error());
  }
}

Status RemoteSession::run_until_call(const user_regs_struct& regs, long nr, RemotePtr<void> after_syscall) {
  pid_t tid = task_->tid();
  if (!active_) return make_pid_error(tid, 0, "remote session is over");
  TRY_STATUS(leave_syscall_entry());
  user_regs_struct r = regs;
  r.orig_rax = static_cast<uint64_t>(-1);
  r.eflags &= ~(kEflagsTF | kEflagsDF);
  TRY_STATUS(task_->set_regs(r));
  bool in_call = false;
  while (true) {
    Stop s = TRY(next_syscall_stop("running code in the task"));
    if (s.kind == StopKind::SyscallEntry) {
      // Its own calls, and then the one that says it is done.
      if (s.syscall_nr == nr) in_call = TRY(task_->get_regs()).rip == after_syscall.addr();
      continue;
    }
    if (in_call) break;
  }
  // The code is about to return to the task's registers with the task's
  // mask: not with ours.
  return block_signals_armed();
}

Status RemoteSession::block_signals_armed() {
  TRY_STATUS(leave_syscall_entry());
  if (armed_) {
    user_regs_struct r = resume_regs_;
    r.rax = SYS_getpid;
    r.orig_rax = static_cast<uint64_t>(-1);
    r.rip = site_.addr();
    r.rsp = r.rbp = armed_rsp_;
    r.eflags &= ~(kEflagsTF | kEflagsDF);
    TRY_STATUS(task_->set_regs(r));
  }
  return task_->set_sigmask(kAllSignals);
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
  r.rdi = a[0];
  r.rsi = a[1];
  r.rdx = a[2];
  r.r10 = a[3];
  r.r8 = a[4];
  r.r9 = a[5];
  r.rip = site_.addr();
  if (armed_) r.rsp = r.rbp = armed_rsp_;  // the `ret` after the call finds the frame
  return run_call(nr, r);
}

Error RemoteSession::fault_error(const Stop& s, const std::string& doing) {
  user_regs_struct r{};
  if (auto g = task_->get_regs(); g) r = *g;
  return make_pid_error(task_->tid(), 0, "code run in the task faulted: signal %d (code %d) at rip 0x%llx, address %p (%s)",
                        s.sig, s.info.si_code, (unsigned long long)r.rip, s.info.si_addr, doing.c_str());
}

Result<Stop> RemoteSession::next_syscall_stop(const std::string& doing) {
  int inject = 0;
  while (true) {
    TRY_STATUS(task_->resume(PTRACE_SYSCALL, inject));
    inject = 0;
    Stop s = TRY(task_->wait_stop());
    switch (s.kind) {
      case StopKind::Exited:
        active_ = false;
        return make_pid_error(task_->tid(), ESRCH, "task %s (%s)", describe_wait_status(s.wait_status).c_str(),
                              doing.c_str());
      case StopKind::SyscallEntry:
      case StopKind::SyscallExit:
        return s;
      case StopKind::Signal:
        if (is_synchronous(s.info)) return fault_error(s, doing);
        if (is_stop_signal(s.sig)) inject = s.sig;  // delivered: the process stops (and stays so after us)
        else deferred_signals_.push_back(s.info);   // blocked meanwhile? not for ptrace: sent back at the end
        break;
      case StopKind::Trap:       // a pending interrupt
      case StopKind::GroupStop:  // its process was stopped meanwhile: run on, it stays stopped
      case StopKind::Event:
        break;
    }
  }
}

Status RemoteSession::leave_syscall_entry() {
  if (task_->exited() || task_->last_stop().kind != StopKind::SyscallEntry) return ok_status();
  user_regs_struct cur = TRY(task_->get_regs());
  cur.orig_rax = static_cast<uint64_t>(-1);  // skipped: the exit stop comes straight away
  TRY_STATUS(task_->set_regs(cur));
  while (TRY(next_syscall_stop("leaving a system call")).kind != StopKind::SyscallExit) {
  }
  return ok_status();
}

Result<long> RemoteSession::run_call(long nr, const user_regs_struct& regs) {
  pid_t tid = task_->tid();
  TRY_STATUS(leave_syscall_entry());
  user_regs_struct r = regs;
  r.orig_rax = static_cast<uint64_t>(-1);  // no restart processing on the way in
  r.eflags &= ~(kEflagsTF | kEflagsDF);
  TRY_STATUS(task_->set_regs(r));

  // From the stop we are in to the entry of our call, then to its exit.
  const std::string doing = "running " + call_name(nr);
  bool entered = false;
  while (true) {
    Stop s = TRY(next_syscall_stop(doing));
    if (s.kind == StopKind::SyscallEntry) {
      if (s.syscall_nr != nr)
        return make_pid_error(tid, 0, "task entered %s instead of %s", call_name(s.syscall_nr).c_str(),
                              call_name(nr).c_str());
      entered = true;
      continue;
    }
    if (!entered) return make_pid_error(tid, 0, "task left a system call it was not sent into");
    long ret = s.syscall_ret;
    if ((nr == SYS_execve || nr == SYS_execveat) && ret == 0) {
      // The old program is gone: so are its registers, memory and our
      // scratch and site. Only the signal mask survives an exec.
      exec_done_ = true;
      armed_ = false;
    }
    pr_debug(tid, "%s = %ld", call_name(nr).c_str(), ret);
    return ret;
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
      // A task killed under us (ESRCH) has nothing left to put back.
      if (s.error().err == ESRCH) pr_debug(tid, "not put back: %s", s.error().str().c_str());
      else if (first.ok()) first = s;
      else log_error(s.error());
    }
  };

  note(leave_syscall_entry());
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
  if (task_->exited()) {
    frame_at_ = 0;
    return first;
  }
  if (mask_saved_) note(task_->set_sigmask(saved_sigmask_));
  if (!exec_done_) {
    if (xstate_saved_) {
      auto now = task_->get_xstate();
      if (!now) note(std::move(now).error());
      else if (!(*now == saved_xstate_)) note(task_->set_xstate(saved_xstate_));
    }
    note(task_->set_regs(resume_regs_));
  }
  // Last: until the registers above were set, the frame was what a task
  // let go would have returned through.
  put_frame_back();
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
