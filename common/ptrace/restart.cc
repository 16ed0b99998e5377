#include "common/ptrace/restart.h"

#include <sys/syscall.h>

#include <cerrno>

namespace cr {

bool eintr_on_stop(long nr) {
  switch (nr) {
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_rt_sigtimedwait:
    case SYS_semop:
    case SYS_semtimedop:
    case SYS_io_pgetevents:
      return true;
    default:
      return false;
  }
}

bool is_restart_errno(long err) {
  return err == kERESTARTSYS || err == kERESTARTNOINTR || err == kERESTARTNOHAND ||
         err == kERESTART_RESTARTBLOCK;
}

PendingRestart pending_restart(const user_regs_struct& r, bool signal_for_program) {
  // orig_rax is -1 unless the task entered the kernel by a system call.
  long nr = static_cast<long>(r.orig_rax);
  if (nr < 0) return PendingRestart::None;
  long ret = static_cast<long>(r.rax);
  switch (-ret) {
    case kERESTARTSYS:
    case kERESTARTNOINTR:
    case kERESTARTNOHAND:
      return PendingRestart::Rewind;
    case kERESTART_RESTARTBLOCK:
      return PendingRestart::RestartBlock;
    case EINTR:
      return (!signal_for_program && eintr_on_stop(nr)) ? PendingRestart::RewindEintr
                                                        : PendingRestart::None;
    default:
      return PendingRestart::None;
  }
}

user_regs_struct regs_to_reissue(const user_regs_struct& r, PendingRestart k) {
  user_regs_struct o = r;
  switch (k) {
    case PendingRestart::None:
      break;
    case PendingRestart::Rewind:
    case PendingRestart::RewindEintr:
      o.rax = r.orig_rax;
      o.rip -= kSyscallInsnLen;
      break;
    case PendingRestart::RestartBlock:
      o.rax = kNrRestartSyscall;
      o.rip -= kSyscallInsnLen;
      break;
  }
  return o;
}

}  // namespace cr
