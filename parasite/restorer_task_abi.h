// What the restorer needs to finish restoring one task (RestorerCmd::kRestore),
// shared by cr-restore (which builds it) and the restorer blob (which obeys it).
//
// Host side (cr-restore, in the task being restored, before the jump):
//   - every dumped VMA except the vDSO parts is already mapped and filled in a
//     "premap" slot inside the restore hole [hole_start, hole_end), which also
//     holds the blob, this struct with its arrays, and a reserved slot for
//     moving the vDSO;
//   - all signals are blocked; the restored fds are in place;
//   - with fault injection on, the page of the command's count of fault
//     points is mapped in the args area too (fault_off).
// Restorer side, in order:
//   1. munmap everything in user space except the keep ranges: the hole, the
//      current vDSO parts, and the VMAs the host mapped in place (the rest
//      is the old address space of cr-restore);
//   2. move the vDSO parts to their dumped addresses (through the temp slot);
//   3. mremap each VMA premapped in the hole to its address (those mapped in
//      place stay), then shmat each SysV attach at its address (nothing is
//      there any more), set its protection and madvise flags;
//   4. PR_SET_MM_MAP (mm fields, auxv, exe_fd), then close exe_fd;
//   5. sigactions; drain every signal pending now (the SIGCHLDs of children
//      restored as zombies, ...) and queue the dumped process-wide ones;
//   6. create the other threads with their tids (clone3 + set_tid); each
//      runs restorer_thread (step 7 for itself, its credentials) and
//      counts itself in threads_done;
//   7. per thread: rseq, robust list, tid address, name, scheduling policy,
//      nice and affinity, its pending signals, fs/gs base;
//   8. the leader waits until every thread is done, then rlimits,
//      credentials, the dumpable flag (a change of uid resets it), itimers;
//      closes log_fd;
//      seccomp comes last of all, per thread (a filter may deny what the
//      steps before need); cr-restore suspends it while it finishes;
//   9. every thread executes int3 (cr-restore, tracing every thread, steps
//      each through rt_sigreturn and unmaps the hole once all are through),
//      then rt_sigreturn on its prebuilt frame: the dumped registers, xsave
//      state, blocked mask and sigaltstack.
// Fault injection (common/fault.h), when fault_off is set: before each
// fallible system call of steps 1-8 (the first of a loop; a thread's own
// in step 7 and its credentials too) the restorer counts a fault point on
// the command's shared count (RestoreFaultPage, which the host mapped in
// the args area) and fails the one numbered fault_target with EIO: it
// records the point in the page and writes "restorer: injected fault at
// point N (restorer what): errno 5" to log_fd. The page goes with the hole.
// All addresses are uint64_t; arrays are at offsets from the struct's start.
#pragma once

#include "parasite/blob_abi.h"
#include "parasite/parasite_abi.h"

namespace cr {

inline constexpr uint32_t kRestoreTaskMagic = 0x52546b31;  // "RTk1"

// madvise advice to apply to a VMA after the move, one bit each.
enum : uint64_t {
  kMadvDontfork = 1 << 0,    // dc
  kMadvDontdump = 1 << 1,    // dd
  kMadvWipeonfork = 1 << 2,  // wf
  kMadvHugepage = 1 << 3,    // hg
  kMadvNohugepage = 1 << 4,  // nh
  kMadvMergeable = 1 << 5,   // mg
  kMadvSequential = 1 << 6,  // sr
  kMadvRandom = 1 << 7,      // rr
};

struct RestoreVma {
  uint64_t premap;  // where the host mapped and filled it (== start: mapped in place, or a SysV attach)
  uint64_t start;   // where it goes
  uint64_t end;
  uint64_t madv;    // kMadv* bits
  int32_t prot;     // final PROT_*
  int32_t shmid;    // >= 0: a SysV shared memory segment the restorer attaches
                    // here (shmat after step 3's moves; the host premaps nothing); -1: none
  uint32_t shmflg;  // for shmat: SHM_RDONLY, SHM_EXEC
  uint32_t pad;
};
static_assert(sizeof(RestoreVma) == 48);
static_assert(offsetof(RestoreVma, madv) == 24);
static_assert(offsetof(RestoreVma, prot) == 32);
static_assert(offsetof(RestoreVma, shmid) == 36);
static_assert(offsetof(RestoreVma, shmflg) == 40);

struct RestoreVdsoPart {
  uint64_t cur;     // where it is now
  uint64_t size;
  uint64_t target;  // where it was at dump time
};
static_assert(sizeof(RestoreVdsoPart) == 24);

struct RestoreSiginfo {
  int32_t shared;   // 1: process-wide (rt_sigqueueinfo), 0: this thread
  int32_t sig;
  uint8_t info[128];
};
static_assert(sizeof(RestoreSiginfo) == 136);

// A range the restorer must not unmap: the hole, the vDSO parts, and the
// VMAs the host could map at their own address.
struct RestoreRange {
  uint64_t start, end;
};
static_assert(sizeof(RestoreRange) == 16);

struct RestoreRlimit {
  uint64_t cur, max;
};

// The kernel's struct sched_attr up to SCHED_ATTR_SIZE_VER1 (linux/sched/
// types.h), read by cr-dump (sched_getattr) and written by the restorer
// (sched_setattr).
struct KSchedAttr {
  uint32_t size, policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime, deadline, period;
  uint32_t util_min, util_max;
};
static_assert(sizeof(KSchedAttr) == 56);
static_assert(offsetof(KSchedAttr, runtime) == 24);

// Credentials to set (per thread: they are a thread's own in Linux).
struct RestoreCreds {
  int32_t restore;            // 0: keep cr-restore's (the same as dumped)
  uint32_t nr_groups;         // uint32_t[nr_groups] at groups_off
  uint64_t groups_off;
  uint32_t uids[4], gids[4];  // real, effective, saved, fs
  uint64_t cap_inh, cap_prm, cap_eff;
  uint64_t cap_bnd, cap_amb;  // bounding and ambient sets
  uint32_t securebits;        // SECBIT_* (PR_GET_SECUREBITS)
  int32_t no_new_privs;       // PR_SET_NO_NEW_PRIVS (set last; it cannot be undone)
};
static_assert(sizeof(RestoreCreds) == 96);
static_assert(offsetof(RestoreCreds, cap_inh) == 48);

// The restorer's stack of each thread but the leader (in the args area).
inline constexpr uint64_t kRestoreThreadStack = 16384;

// A POSIX timer to create with its id and arm (timer_create, timer_settime).
struct RestoreTimer {
  int32_t id, clock_id;
  int32_t signo, sigev_notify;
  int32_t notify_tid, pad;
  uint64_t sigev_value;
  int64_t interval_sec, interval_nsec, value_sec, value_nsec;
};
static_assert(sizeof(RestoreTimer) == 64);
CR_BLOB_ABI_TYPE(RestoreTimer);

// One thread (the leader is threads[0]).
struct RestoreThread {
  int32_t tid;
  uint32_t nr_pending;   // its own queued signals: RestoreSiginfo[] at pending_off
  uint64_t pending_off;
  uint64_t sigframe_sp;  // rsp for rt_sigreturn: the address of the frame's ucontext
  uint64_t stack_top;    // the restorer's stack for this thread (not the leader's)
  uint64_t rseq_ptr;
  uint32_t rseq_len, rseq_sig;
  uint64_t robust_list, robust_list_len;
  uint64_t clear_child_tid;
  uint64_t fs_base, gs_base;
  int32_t sched_policy, sched_priority;
  uint64_t sched_flags;
  int32_t nice;
  uint32_t nr_affinity;  // words of affinity; 0: leave it
  uint64_t affinity[16];
  char comm[16];
  int32_t seccomp_mode;   // 1: strict; 2: the filters
  uint32_t nr_filters;    // RestoreSeccompFilter[] at filters_off, oldest first
  uint64_t filters_off;
  int32_t own_creds;      // 1: `creds` are this thread's, not its process's
  uint32_t pad;
  RestoreCreds creds;
};
static_assert(offsetof(RestoreThread, pending_off) == 8);
static_assert(offsetof(RestoreThread, rseq_len) == 40);
static_assert(offsetof(RestoreThread, sched_policy) == 88);
static_assert(offsetof(RestoreThread, affinity) == 112);
static_assert(sizeof(RestoreThread) == 376);

struct RestoreSeccompFilter {
  uint64_t flags;     // SECCOMP_FILTER_FLAG_*
  uint64_t prog_off;  // sock_filter[len] at this offset from the args
  uint32_t len, pad;
};
static_assert(sizeof(RestoreSeccompFilter) == 24);
CR_BLOB_ABI_TYPE(RestoreThread);

// The kernel's prctl_mm_map (linux/prctl.h), by field.
struct RestoreMmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;       // address of the auxv array (in the args area)
  uint32_t auxv_size;  // bytes
  uint32_t exe_fd;
};
static_assert(sizeof(RestoreMmMap) == 104);

// Fault injection: the page of the command's count of fault points
// (common/fault.cc, struct Shared), which cr-restore and the tasks it
// forks share; cr-restore maps its pages again into the args area (so the
// hole's unmap takes them away with the rest).
struct RestoreFaultPage {
  uint64_t reached;  // points reached so far by every process of the command (atomic)
  uint64_t failed;   // restorer: the point it failed, for cr-restore to log,
  char what[48];     // and what it guarded ("restorer ...", NUL-terminated)
};
static_assert(sizeof(RestoreFaultPage) == 64);

struct RestoreTaskArgs {
  uint32_t magic;  // kRestoreTaskMagic
  uint32_t size;   // bytes of this struct plus its arrays
  uint64_t hole_start, hole_end;
  uint64_t vdso_temp;  // slot in the hole, at least the sum of vDSO sizes
  uint64_t vdso_off;   // RestoreVdsoPart[nr_vdso]
  uint64_t vmas_off;   // RestoreVma[nr_vmas]
  uint64_t pending_off;  // RestoreSiginfo[nr_pending]
  uint32_t nr_vdso, nr_vmas, nr_pending, pad2;
  uint64_t keep_off;     // RestoreRange[nr_keep], sorted by address
  uint32_t nr_keep, pad0;

  RestoreMmMap mm;
  BlobSigaction sigactions[kBlobNSig];  // [sig - 1]; SIGKILL, SIGSTOP ignored
  BlobItimerval itimers[3];             // ITIMER_REAL, VIRTUAL, PROF
  BlobStack altstack;
  RestoreRlimit rlimits[16];
  uint32_t nr_rlimits;  // 16 normally

  RestoreCreds creds;    // the process's; a thread may have its own

  uint64_t timers_off;   // RestoreTimer[nr_timers]
  uint32_t nr_timers, pad1;
  uint64_t threads_off;  // RestoreThread[nr_threads], the leader first
  uint32_t nr_threads;
  uint32_t threads_done;  // futex: threads (not the leader) through step 7 and their credentials

  int32_t log_fd;        // closed before the final step
  int32_t dumpable;      // PR_SET_DUMPABLE after the credentials (0 or 1; 2 is kept)

  // Fault injection (CRTOOLS_FAULT_INJECT or CRTOOLS_FAULT_REPORT set):
  // a RestoreFaultPage at this offset, page-aligned; 0: off.
  uint64_t fault_off;
  uint64_t fault_target;  // the point to fail with EIO; 0: only count
};
static_assert(offsetof(RestoreTaskArgs, hole_start) == 8);
static_assert(offsetof(RestoreTaskArgs, nr_vdso) == 56);
static_assert(offsetof(RestoreTaskArgs, mm) == 88);
static_assert(offsetof(RestoreTaskArgs, sigactions) == 192);
static_assert(offsetof(RestoreTaskArgs, itimers) == 192 + 64 * 32);
static_assert(offsetof(RestoreTaskArgs, fault_off) == 2760);
static_assert(offsetof(RestoreTaskArgs, fault_target) == 2768);
static_assert(sizeof(RestoreTaskArgs) == 2776);
static_assert(sizeof(RestoreTaskArgs) % 8 == 0);
CR_BLOB_ABI_TYPE(RestoreTaskArgs);

// The x86-64 kernel signal frame (arch/x86/include/asm/sigframe.h,
// uapi asm/sigcontext.h, asm/ucontext.h): what rt_sigreturn reads at rsp-8.
struct KSigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2;
  uint64_t fpstate;  // 64-byte aligned XSAVE area, or 0
  uint64_t reserved1[8];
};
static_assert(sizeof(KSigcontext) == 256);
static_assert(offsetof(KSigcontext, cs) == 144);
static_assert(offsetof(KSigcontext, fpstate) == 184);

struct KUcontext {
  uint64_t uc_flags;  // UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
  uint64_t uc_link;
  uint64_t ss_sp;
  int32_t ss_flags;
  int32_t pad;
  uint64_t ss_size;
  KSigcontext mcontext;
  uint64_t sigmask;
};
static_assert(offsetof(KUcontext, mcontext) == 40);
static_assert(offsetof(KUcontext, sigmask) == 296);
static_assert(sizeof(KUcontext) == 304);

struct KRtSigframe {
  uint64_t pretcode;
  KUcontext uc;
  uint8_t info[128];
};
static_assert(offsetof(KRtSigframe, uc) == 8);
static_assert(sizeof(KRtSigframe) == 440);

inline constexpr uint64_t kUcFpXstate = 0x1;
inline constexpr uint64_t kUcSigcontextSs = 0x2;
inline constexpr uint64_t kUcStrictRestoreSs = 0x4;
inline constexpr uint32_t kFpXstateMagic1 = 0x46505853;
inline constexpr uint32_t kFpXstateMagic2 = 0x46505845;

}  // namespace cr
