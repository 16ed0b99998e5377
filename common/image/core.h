// core-<pid>.img: one task — registers and xsave of each thread, signal
// dispositions and masks, pending signals, timers, limits, credentials.
// Dump side: cr-dump/core.cc; restore side: cr-restore/core.cc and the
// restorer blob.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/image/bytes.h"
#include "common/image/format.h"

namespace cr {

// user_regs_struct, by name.
struct GpRegs {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
      eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GpRegs, r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi,
                                   rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs)

struct SigactionRec {
  int32_t sig = 0;
  uint64_t handler = 0;  // SIG_DFL 0, SIG_IGN 1, or an address
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SigactionRec, sig, handler, flags, restorer, mask)

struct ItimerRec {
  int32_t which = 0;  // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  int64_t interval_sec = 0, interval_usec = 0, value_sec = 0, value_usec = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ItimerRec, which, interval_sec, interval_usec, value_sec, value_usec)

// A POSIX timer (timer_create), from /proc/PID/timers and timer_gettime.
struct PosixTimerRec {
  int32_t id = 0;
  int32_t clock_id = 0;
  int32_t signo = 0;
  int32_t sigev_notify = 0;  // SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, or SIGEV_THREAD_ID
  int32_t notify_tid = 0;    // for SIGEV_THREAD_ID
  uint64_t sigev_value = 0;
  int64_t interval_sec = 0, interval_nsec = 0, value_sec = 0, value_nsec = 0;
  int32_t overrun = 0;       // timer_getoverrun at dump (not restored: no interface sets it)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PosixTimerRec, id, clock_id, signo, sigev_notify, notify_tid, sigev_value,
                                   interval_sec, interval_nsec, value_sec, value_nsec, overrun)

struct RlimitRec {
  int32_t resource = 0;
  uint64_t cur = 0, max = 0;  // RLIM_INFINITY as ~0
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RlimitRec, resource, cur, max)

struct Creds {
  std::vector<uint32_t> uids;  // real, effective, saved, fs
  std::vector<uint32_t> gids;
  std::vector<uint32_t> groups;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  uint32_t securebits = 0;
  bool no_new_privs = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Creds, uids, gids, groups, cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb,
                                   securebits, no_new_privs)

// One seccomp filter of a thread: its classic BPF program (struct
// sock_filter, 8 bytes per instruction) and the flags it was installed with.
struct SeccompFilterRec {
  Bytes prog;
  uint64_t flags = 0;  // SECCOMP_FILTER_FLAG_LOG, ...
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SeccompFilterRec, prog, flags)

struct ThreadCore {
  int64_t tid = 0;
  std::string comm;
  GpRegs regs{};
  Bytes xsave;         // NT_X86_XSTATE as the kernel gave it
  uint64_t blocked = 0;  // signal mask
  std::vector<Bytes> pending;  // per-thread queued siginfo (128 bytes each)
  uint64_t altstack_sp = 0, altstack_size = 0;
  int32_t altstack_flags = 0;
  uint64_t rseq_ptr = 0;
  uint32_t rseq_len = 0, rseq_sig = 0;
  uint64_t robust_list = 0, robust_list_len = 0;
  uint64_t clear_child_tid = 0;
  // Scheduling (sched_getattr, getpriority, sched_getaffinity).
  int32_t sched_policy = 0;    // SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR
  int32_t sched_priority = 0;  // real-time priority
  uint64_t sched_flags = 0;    // SCHED_FLAG_RESET_ON_FORK, ...
  int32_t nice = 0;
  std::vector<uint64_t> affinity;  // CPU mask, 64 CPUs per word; empty: all
  int32_t seccomp_mode = 0;        // SECCOMP_MODE_DISABLED, STRICT or FILTER
  std::vector<SeccompFilterRec> seccomp_filters;  // oldest first
  bool own_creds = false;          // creds below differ from the process's (Core::creds)
  Creds creds;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ThreadCore, tid, comm, regs, xsave, blocked, pending, altstack_sp,
                                   altstack_size, altstack_flags, rseq_ptr, rseq_len, rseq_sig, robust_list,
                                   robust_list_len, clear_child_tid, sched_policy, sched_priority, sched_flags,
                                   nice, affinity, seccomp_mode, seccomp_filters, own_creds, creds)

struct Core {
  static constexpr ImageKind kKind = ImageKind::Core;
  int64_t pid = 0;
  std::string comm;
  uint64_t personality = 0;
  uint32_t umask = 022;
  int32_t dumpable = 1;  // PR_GET_DUMPABLE
  bool child_subreaper = false;  // PR_SET_CHILD_SUBREAPER: orphans below it become its children
  // The XSAVE features the process may use (arch_prctl ARCH_GET_XCOMP_PERM,
  // Linux 5.16): beyond XCR0's default ones, the dynamically enabled AMX tile
  // data once it asked for ARCH_REQ_XCOMP_PERM. 0: not known (older kernel).
  uint64_t xcomp_perm = 0;
  std::string cwd;
  std::string root;
  Creds creds;
  std::vector<SigactionRec> sigactions;  // signals 1..64 except SIGKILL, SIGSTOP
  std::vector<ItimerRec> itimers;
  std::vector<PosixTimerRec> posix_timers;
  std::vector<RlimitRec> rlimits;
  std::vector<Bytes> shared_pending;  // process-wide queued siginfo
  std::vector<ThreadCore> threads;    // the leader first
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Core, pid, comm, personality, umask, dumpable, child_subreaper, xcomp_perm, cwd,
                                   root, creds, sigactions, itimers, posix_timers, rlimits, shared_pending, threads)

}  // namespace cr
