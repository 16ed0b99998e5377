// System call restart: what a task stopped in the middle of a system call
// must do when it goes on.
//
// A task blocked in read(), nanosleep(), wait4() ... that is stopped by
// PTRACE_INTERRUPT leaves the call with a kernel-internal code in rax
// (-ERESTARTSYS and friends) and orig_rax still naming the call. The kernel
// turns that into a restart (rip -= 2, rax = orig_rax, or rax =
// __NR_restart_syscall) only on its way back to user mode from *that* stop.
// Once a tracer has run other code in the task, the task returns to user
// mode from somewhere else and the restart must be done by the tracer: this
// header is that logic, free of ptrace so it can be unit-tested.
#pragma once

#include <sys/user.h>

#include <cstdint>

namespace cr {

// Kernel-internal errno values (include/linux/errno.h), never seen by
// programs but seen in rax by a tracer.
constexpr long kERESTARTSYS = 512;
constexpr long kERESTARTNOINTR = 513;
constexpr long kERESTARTNOHAND = 514;
constexpr long kERESTART_RESTARTBLOCK = 516;

// x86-64 `syscall` and `int $0x80` are both two bytes long.
constexpr uint64_t kSyscallInsnLen = 2;
// __NR_restart_syscall on x86-64.
constexpr long kNrRestartSyscall = 219;

enum class PendingRestart {
  None,          // not in a system call, or it completed: resume as is
  Rewind,        // -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND: run the call again
  RestartBlock,  // -ERESTART_RESTARTBLOCK: run restart_syscall (keeps deadlines)
  RewindEintr,   // -EINTR from a call that Linux fails with EINTR merely
                 // because the task was stopped (epoll_wait, sigtimedwait,
                 // semop, ...): run it again, as if never stopped
};

// Calls that return -EINTR (not a restart code) when woken by a stop or a
// ptrace trap without any signal for the program (signal(7), "Interruption
// of system calls and library functions by stop signals").
bool eintr_on_stop(long nr);

// Classify the registers of a task stopped by a trap. `signal_for_program`
// is true when an unblocked signal is pending for the task: then an -EINTR
// is genuine and stays.
PendingRestart pending_restart(const user_regs_struct& r, bool signal_for_program);

// The registers that make the task issue the interrupted call again when it
// returns to user mode from any ptrace stop: rip back onto the syscall
// instruction, rax = the call (or restart_syscall). Identity for None.
user_regs_struct regs_to_reissue(const user_regs_struct& r, PendingRestart k);

// One of the four ERESTART* codes (as a positive errno)?
bool is_restart_errno(long err);

}  // namespace cr
