// The restorer's main job (RestorerCmd::kRestore): turn the task that
// cr-restore prepared into the dumped one, then rt_sigreturn into the dumped
// registers. The steps and their order are described in
// parasite/restorer_task_abi.h. Freestanding; see parasite/blob_rt.h.
#include "parasite/blob_rt.h"

#include <asm/prctl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/resource.h>

#include "parasite/restorer_task_abi.h"

#pragma GCC visibility push(hidden)

namespace {

using cr::RestoreTaskArgs;

constexpr const char kName[] = "restorer";
// Top of user space with 4-level page tables (x86-64 TASK_SIZE_MAX).
constexpr uint64_t kUserTop = (1ull << 47) - 4096;

// madvise values (asm-generic/mman-common.h).
constexpr int kMadvRandom = 1, kMadvSequential = 2, kMadvDontfork = 10, kMadvMergeable = 12,
              kMadvHugepage = 14, kMadvNohugepage = 15, kMadvDontdump = 16, kMadvWipeonfork = 18;

template <class T>
T* at(RestoreTaskArgs* a, uint64_t off) {
  return reinterpret_cast<T*>(reinterpret_cast<char*>(a) + off);
}

long fail(RestoreTaskArgs* a, cr::BlobResult* r, const char* what, uint64_t arg, long err) {
  return blob::fail_arg(r, a->log_fd, kName, what, arg, err);
}

// Fault injection (common/fault.h; off unless a->fault_off): a fault point
// before a fallible system call, on the count the command's processes
// share. The point numbered fault_target fails as the kernel would (EIO),
// with the line cr-restore reports: "restorer: injected fault at point N
// (restorer WHAT): errno 5". Returns 0 or -EIO.
long fault_step(RestoreTaskArgs* a, cr::BlobResult* r, const char* what) {
  if (!a->fault_off) return 0;
  auto* page = at<cr::RestoreFaultPage>(a, a->fault_off);
  uint64_t n = __atomic_add_fetch(&page->reached, 1, __ATOMIC_SEQ_CST);
  if (n != a->fault_target) return 0;
  // The line, in one write so that it is whole in the pipe.
  char line[160];
  size_t len = 0;
  auto put = [&](const char* s) {
    for (; *s && len < sizeof line - 1; s++) line[len++] = *s;
  };
  char num[24];
  int i = sizeof num;
  num[--i] = 0;
  uint64_t v = n;
  do {
    num[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  put("restorer: injected fault at point ");
  put(num + i);
  put(" (");
  size_t name = len;
  put("restorer ");
  put(what);
  line[len] = 0;
  blob::str_copy(page->what, sizeof page->what, line + name);
  __atomic_store_n(&page->failed, n, __ATOMIC_RELEASE);
  put("): errno 5\n");
  if (a->log_fd >= 0) blob::sys_write(a->log_fd, line, len);
  return blob::fail(r, -1, kName, what, -EIO);
}

// A loop's fault point: before its first call only (*done: passed).
long fault_step_once(RestoreTaskArgs* a, cr::BlobResult* r, bool* done, const char* what) {
  if (*done) return 0;
  *done = true;
  return fault_step(a, r, what);
}

// 1. Unmap the restore-time address space: every gap between the keep
// ranges (sorted by the host).
long unmap_old(RestoreTaskArgs* a, cr::BlobResult* r) {
  auto* keep = at<cr::RestoreRange>(a, a->keep_off);
  uint64_t from = 0;
  if (long ret = fault_step(a, r, "munmap old mapping")) return ret;
  for (uint32_t i = 0; i <= a->nr_keep; i++) {
    uint64_t to = i < a->nr_keep ? keep[i].start : kUserTop;
    if (to > from) {
      long ret = blob::sys_munmap(reinterpret_cast<void*>(from), to - from);
      if (blob::is_err(ret)) return fail(a, r, "munmap old mapping", from, ret);
    }
    if (i < a->nr_keep && keep[i].end > from) from = keep[i].end;
  }
  return 0;
}

long mremap_fixed(uint64_t from, uint64_t size, uint64_t to) {
  return blob::syscall5(__NR_mremap, blob::arg(from), blob::arg(size), blob::arg(size),
                        MREMAP_MAYMOVE | MREMAP_FIXED, blob::arg(to));
}

// 2. The vDSO parts go to the temp slot first, so that a part never lands on
// another one not yet moved, then to their dumped addresses.
long move_vdso(RestoreTaskArgs* a, cr::BlobResult* r) {
  auto* v = at<cr::RestoreVdsoPart>(a, a->vdso_off);
  uint64_t off = 0;
  if (!a->nr_vdso) return 0;
  if (long ret = fault_step(a, r, "mremap vdso to temp")) return ret;
  for (uint32_t i = 0; i < a->nr_vdso; i++) {
    long ret = mremap_fixed(v[i].cur, v[i].size, a->vdso_temp + off);
    if (blob::is_err(ret)) return fail(a, r, "mremap vdso to temp", v[i].cur, ret);
    off += v[i].size;
  }
  off = 0;
  if (long ret = fault_step(a, r, "mremap vdso to dumped address")) return ret;
  for (uint32_t i = 0; i < a->nr_vdso; i++) {
    long ret = mremap_fixed(a->vdso_temp + off, v[i].size, v[i].target);
    if (blob::is_err(ret)) return fail(a, r, "mremap vdso to dumped address", v[i].target, ret);
    off += v[i].size;
  }
  return 0;
}

// 3. Every premapped VMA to its place, its protection and advice.
long move_vmas(RestoreTaskArgs* a, cr::BlobResult* r) {
  auto* v = at<cr::RestoreVma>(a, a->vmas_off);
  static constexpr struct {
    uint64_t bit;
    int advice;
  } kAdvice[] = {{cr::kMadvDontfork, kMadvDontfork},     {cr::kMadvDontdump, kMadvDontdump},
                 {cr::kMadvWipeonfork, kMadvWipeonfork}, {cr::kMadvHugepage, kMadvHugepage},
                 {cr::kMadvNohugepage, kMadvNohugepage}, {cr::kMadvMergeable, kMadvMergeable},
                 {cr::kMadvSequential, kMadvSequential}, {cr::kMadvRandom, kMadvRandom}};
  bool mremapped = false, attached = false, protected_ = false, advised = false;
  long ret;
  for (uint32_t i = 0; i < a->nr_vmas; i++) {
    if (v[i].shmid >= 0 || v[i].premap == v[i].start) continue;
    if ((ret = fault_step_once(a, r, &mremapped, "mremap vma"))) return ret;
    ret = mremap_fixed(v[i].premap, v[i].end - v[i].start, v[i].start);
    if (blob::is_err(ret)) return fail(a, r, "mremap vma", v[i].start, ret);
  }
  // The SysV attaches once every premapped VMA is in place: their ranges
  // are free now (the old address space is gone, the hole and the vDSO
  // avoid every dumped VMA), so no SHM_REMAP.
  for (uint32_t i = 0; i < a->nr_vmas; i++) {
    if (v[i].shmid < 0) continue;
    if ((ret = fault_step_once(a, r, &attached, "shmat SysV segment"))) return ret;
    ret = blob::syscall3(__NR_shmat, v[i].shmid, blob::arg(v[i].start), v[i].shmflg);
    if (blob::is_err(ret)) return fail(a, r, "shmat SysV segment", uint64_t(v[i].shmid), ret);
    if (uint64_t(ret) != v[i].start) return fail(a, r, "shmat put the segment elsewhere", uint64_t(ret), -EFAULT);
  }
  for (uint32_t i = 0; i < a->nr_vmas; i++) {
    uint64_t size = v[i].end - v[i].start;
    if ((ret = fault_step_once(a, r, &protected_, "mprotect vma"))) return ret;
    ret = blob::syscall3(__NR_mprotect, blob::arg(v[i].start), blob::arg(size), v[i].prot);
    if (blob::is_err(ret)) return fail(a, r, "mprotect vma", v[i].start, ret);
    for (const auto& ad : kAdvice) {
      if (!(v[i].madv & ad.bit)) continue;
      if ((ret = fault_step_once(a, r, &advised, "madvise vma"))) return ret;
      ret = blob::syscall3(__NR_madvise, blob::arg(v[i].start), blob::arg(size), ad.advice);
      if (blob::is_err(ret)) return fail(a, r, "madvise vma", v[i].start, ret);
    }
  }
  return 0;
}

long restore_sigactions(RestoreTaskArgs* a, cr::BlobResult* r) {
  if (long ret = fault_step(a, r, "rt_sigaction")) return ret;
  for (int sig = 1; sig <= cr::kBlobNSig; sig++) {
    if (sig == 9 || sig == 19) continue;  // SIGKILL, SIGSTOP
    long ret = blob::sys_rt_sigaction(sig, &a->sigactions[sig - 1], nullptr);
    if (blob::is_err(ret)) return fail(a, r, "rt_sigaction", sig, ret);
  }
  return 0;
}

// Signals the restore itself caused (a child restored as a zombie sent
// SIGCHLD) are not the dumped ones: take every pending signal off the
// queues (all are blocked here) before queueing those of the images.
long drain_signals(RestoreTaskArgs* a, cr::BlobResult* r) {
  const uint64_t all = ~0ull;
  struct {
    long sec, nsec;
  } zero = {0, 0};
  if (long ret = fault_step(a, r, "rt_sigtimedwait")) return ret;
  for (int i = 0; i < 1 << 20; i++) {
    long ret = blob::syscall4(__NR_rt_sigtimedwait, blob::arg(&all), 0, blob::arg(&zero), 8);
    if (ret == -EAGAIN) return 0;
    if (blob::is_err(ret) && ret != -EINTR) return fail(a, r, "rt_sigtimedwait", 0, ret);
  }
  return fail(a, r, "signals keep arriving", 0, -EAGAIN);
}

long queue_pending(RestoreTaskArgs* a, cr::BlobResult* r, uint64_t off, uint32_t n, long tid) {
  auto* p = at<cr::RestoreSiginfo>(a, off);
  if (!n) return 0;
  if (long ret = fault_step(a, r, "queue pending signal")) return ret;
  long pid = blob::sys_getpid();
  for (uint32_t i = 0; i < n; i++) {
    long ret = p[i].shared
                   ? blob::syscall3(__NR_rt_sigqueueinfo, pid, p[i].sig, blob::arg(p[i].info))
                   : blob::syscall4(__NR_rt_tgsigqueueinfo, pid, tid, p[i].sig, blob::arg(p[i].info));
    if (blob::is_err(ret)) return fail(a, r, "queue pending signal", p[i].sig, ret);
  }
  return 0;
}

long restore_altstack(RestoreTaskArgs* a, cr::BlobResult* r) {
  if (!(a->altstack.flags & 2 /* SS_DISABLE */) || a->altstack.sp) {
    cr::BlobStack ss = a->altstack;
    ss.flags &= ~1;  // SS_ONSTACK is a state, not a setting
    if (long ret = fault_step(a, r, "sigaltstack")) return ret;
    long ret = blob::sys_sigaltstack(&ss, nullptr);
    if (blob::is_err(ret)) return fail(a, r, "sigaltstack", ss.sp, ret);
  }
  return 0;
}

// Step 7: what every thread sets for itself.
long restore_thread_fields(RestoreTaskArgs* a, cr::RestoreThread* t, cr::BlobResult* r) {
  long ret;
  if (t->rseq_ptr) {
    if ((ret = fault_step(a, r, "rseq"))) return ret;
    ret = blob::syscall4(__NR_rseq, blob::arg(t->rseq_ptr), t->rseq_len, 0, t->rseq_sig);
    if (blob::is_err(ret)) return fail(a, r, "rseq", t->rseq_ptr, ret);
  }
  if ((ret = fault_step(a, r, "set_robust_list"))) return ret;
  ret = blob::syscall2(__NR_set_robust_list, blob::arg(t->robust_list), blob::arg(t->robust_list_len));
  if (blob::is_err(ret)) return fail(a, r, "set_robust_list", t->robust_list, ret);
  blob::syscall1(__NR_set_tid_address, blob::arg(t->clear_child_tid));
  if ((ret = fault_step(a, r, "PR_SET_NAME"))) return ret;
  ret = blob::sys_prctl(PR_SET_NAME, blob::arg(t->comm));
  if (blob::is_err(ret)) return fail(a, r, "PR_SET_NAME", 0, ret);
  // SCHED_ATTR_SIZE_VER0 (48 bytes): no utilisation clamps.
  cr::KSchedAttr attr = {48, uint32_t(t->sched_policy), t->sched_flags, t->nice, uint32_t(t->sched_priority),
                         0, 0, 0, 0, 0};
  if ((ret = fault_step(a, r, "sched_setattr"))) return ret;
  ret = blob::syscall3(__NR_sched_setattr, 0, blob::arg(&attr), 0);
  if (blob::is_err(ret)) return fail(a, r, "sched_setattr", uint64_t(t->sched_policy), ret);
  if (t->nr_affinity) {
    if ((ret = fault_step(a, r, "sched_setaffinity"))) return ret;
    ret = blob::syscall3(__NR_sched_setaffinity, 0, t->nr_affinity * 8, blob::arg(t->affinity));
    if (blob::is_err(ret)) return fail(a, r, "sched_setaffinity", t->affinity[0], ret);
  }
  if ((ret = queue_pending(a, r, t->pending_off, t->nr_pending, blob::sys_gettid()))) return ret;
  if ((ret = fault_step(a, r, "ARCH_SET_FS"))) return ret;
  ret = blob::syscall2(__NR_arch_prctl, ARCH_SET_FS, blob::arg(t->fs_base));
  if (blob::is_err(ret)) return fail(a, r, "ARCH_SET_FS", t->fs_base, ret);
  if ((ret = fault_step(a, r, "ARCH_SET_GS"))) return ret;
  ret = blob::syscall2(__NR_arch_prctl, ARCH_SET_GS, blob::arg(t->gs_base));
  if (blob::is_err(ret)) return fail(a, r, "ARCH_SET_GS", t->gs_base, ret);
  return 0;
}

long restore_rlimits(RestoreTaskArgs* a, cr::BlobResult* r) {
  if (long ret = fault_step(a, r, "prlimit64")) return ret;
  for (uint32_t i = 0; i < a->nr_rlimits && i < 16; i++) {
    long ret = blob::syscall4(__NR_prlimit64, 0, i, blob::arg(&a->rlimits[i]), 0);
    if (blob::is_err(ret)) return fail(a, r, "prlimit64", i, ret);
  }
  return 0;
}

// Last of all, per thread: seccomp. cr-restore traces every task with
// PTRACE_O_SUSPEND_SECCOMP, so the filters do not apply to what the restore
// still does; they do from the moment it detaches.
long restore_seccomp(RestoreTaskArgs* a, cr::RestoreThread* t, cr::BlobResult* r) {
  if (t->seccomp_mode == 1) {
    if (long ret = fault_step(a, r, "PR_SET_SECCOMP strict")) return ret;
    long ret = blob::sys_prctl(PR_SET_SECCOMP, 1 /* SECCOMP_MODE_STRICT */);
    if (blob::is_err(ret)) return fail(a, r, "PR_SET_SECCOMP strict", 1, ret);
    return 0;
  }
  auto* f = at<cr::RestoreSeccompFilter>(a, t->filters_off);
  if (t->nr_filters) {
    if (long ret = fault_step(a, r, "seccomp filter")) return ret;
  }
  for (uint32_t i = 0; i < t->nr_filters; i++) {
    struct {
      uint16_t len;
      uint16_t pad[3];
      uint64_t filter;
    } prog = {static_cast<uint16_t>(f[i].len), {}, static_cast<uint64_t>(blob::arg(at<char>(a, f[i].prog_off)))};
    long ret = blob::syscall3(__NR_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, blob::arg(f[i].flags),
                              blob::arg(&prog));
    if (blob::is_err(ret)) return fail(a, r, "seccomp filter", i, ret);
  }
  return 0;
}

// Step 9: stop for cr-restore (it traces us: it reads the hole from
// rdi/rsi, steps us through rt_sigreturn and then unmaps the hole), then
// return into the dumped registers.
[[noreturn]] void sigreturn_into(RestoreTaskArgs* a, cr::RestoreThread* t) {
  register uint64_t hole_start asm("rdi") = a->hole_start;
  register uint64_t hole_end asm("rsi") = a->hole_end;
  asm volatile(
      "movq %0, %%rsp\n\t"
      "int3\n\t"
      "movl %3, %%eax\n\t"
      "syscall\n\t"
      "ud2"
      :
      : "r"(t->sigframe_sp), "r"(hole_start), "r"(hole_end), "i"(__NR_rt_sigreturn)
      : "memory");
  __builtin_unreachable();
}

// Credentials, per thread. Order matters: the bounding set can only shrink
// and securebits only change while we still hold CAP_SETPCAP (as root,
// before setresuid); SECBIT_KEEP_CAPS carries the permitted set across
// setresuid; ambient capabilities need them permitted and inheritable;
// locked securebits and no_new_privs come last, for they cannot be undone.
constexpr uint32_t kSecbitKeepCaps = 1u << 4, kSecbitLockedMask = 0x2au;  // *_LOCKED bits 1, 3, 5 (and 7)

long restore_creds(RestoreTaskArgs* a, const cr::RestoreCreds* c, cr::BlobResult* r) {
  if (!c->restore) return 0;
  long ret;
  bool dropped = false, raised = false;
  for (int cap = 0; cap < 64; cap++) {
    if (c->cap_bnd & (1ull << cap)) continue;
    if ((ret = fault_step_once(a, r, &dropped, "PR_CAPBSET_DROP"))) return ret;
    ret = blob::sys_prctl(PR_CAPBSET_DROP, cap);
    if (ret == -EINVAL) break;  // past the kernel's last capability
    if (blob::is_err(ret)) return fail(a, r, "PR_CAPBSET_DROP", cap, ret);
  }
  uint32_t bits = c->securebits & ~(kSecbitLockedMask | 0x80u);
  if ((ret = fault_step(a, r, "PR_SET_SECUREBITS"))) return ret;
  ret = blob::sys_prctl(PR_SET_SECUREBITS, bits | kSecbitKeepCaps);
  if (blob::is_err(ret)) return fail(a, r, "PR_SET_SECUREBITS", bits, ret);
  if ((ret = fault_step(a, r, "setgroups"))) return ret;
  ret = blob::syscall2(__NR_setgroups, c->nr_groups, blob::arg(at<uint32_t>(a, c->groups_off)));
  if (blob::is_err(ret)) return fail(a, r, "setgroups", c->nr_groups, ret);
  if ((ret = fault_step(a, r, "setresgid"))) return ret;
  ret = blob::syscall3(__NR_setresgid, c->gids[0], c->gids[1], c->gids[2]);
  if (blob::is_err(ret)) return fail(a, r, "setresgid", c->gids[1], ret);
  blob::syscall1(__NR_setfsgid, c->gids[3]);
  if ((ret = fault_step(a, r, "setresuid"))) return ret;
  ret = blob::syscall3(__NR_setresuid, c->uids[0], c->uids[1], c->uids[2]);
  if (blob::is_err(ret)) return fail(a, r, "setresuid", c->uids[1], ret);
  blob::syscall1(__NR_setfsuid, c->uids[3]);
  struct {
    uint32_t version;
    int pid;
  } hdr = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2] = {{uint32_t(c->cap_eff), uint32_t(c->cap_prm), uint32_t(c->cap_inh)},
               {uint32_t(c->cap_eff >> 32), uint32_t(c->cap_prm >> 32), uint32_t(c->cap_inh >> 32)}};
  if ((ret = fault_step(a, r, "capset"))) return ret;
  ret = blob::syscall2(__NR_capset, blob::arg(&hdr), blob::arg(data));
  if (blob::is_err(ret)) return fail(a, r, "capset", c->cap_eff, ret);
  if ((ret = fault_step(a, r, "PR_SET_KEEPCAPS"))) return ret;
  ret = blob::sys_prctl(PR_SET_KEEPCAPS, (c->securebits & kSecbitKeepCaps) ? 1 : 0);
  if (blob::is_err(ret)) return fail(a, r, "PR_SET_KEEPCAPS", 0, ret);
  if ((ret = fault_step(a, r, "PR_CAP_AMBIENT_CLEAR_ALL"))) return ret;
  ret = blob::sys_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (blob::is_err(ret)) return fail(a, r, "PR_CAP_AMBIENT_CLEAR_ALL", 0, ret);
  for (int cap = 0; cap < 64; cap++) {
    if (!(c->cap_amb & (1ull << cap))) continue;
    if ((ret = fault_step_once(a, r, &raised, "PR_CAP_AMBIENT_RAISE"))) return ret;
    ret = blob::sys_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    if (blob::is_err(ret)) return fail(a, r, "PR_CAP_AMBIENT_RAISE", cap, ret);
  }
  if (c->securebits & (kSecbitLockedMask | 0x80u)) {
    if ((ret = fault_step(a, r, "PR_SET_SECUREBITS (locked bits)"))) return ret;
    ret = blob::sys_prctl(PR_SET_SECUREBITS, c->securebits);
    if (blob::is_err(ret)) return fail(a, r, "PR_SET_SECUREBITS (locked bits)", c->securebits, ret);
  }
  if (c->no_new_privs) {
    if ((ret = fault_step(a, r, "PR_SET_NO_NEW_PRIVS"))) return ret;
    ret = blob::sys_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (blob::is_err(ret)) return fail(a, r, "PR_SET_NO_NEW_PRIVS", 1, ret);
  }
  return 0;
}

// POSIX timers with their ids (PR_TIMER_CREATE_RESTORE_IDS: timer_create
// takes the id from *created_timer_id), then armed.
long restore_posix_timers(RestoreTaskArgs* a, cr::BlobResult* r) {
  if (!a->nr_timers) return 0;
  auto* t = at<cr::RestoreTimer>(a, a->timers_off);
  long ret = fault_step(a, r, "PR_TIMER_CREATE_RESTORE_IDS");
  if (ret) return ret;
  ret = blob::sys_prctl(77 /* PR_TIMER_CREATE_RESTORE_IDS */, 1);
  if (blob::is_err(ret)) return fail(a, r, "PR_TIMER_CREATE_RESTORE_IDS", 1, ret);
  if ((ret = fault_step(a, r, "timer_create"))) return ret;
  for (uint32_t i = 0; i < a->nr_timers; i++) {
    struct {
      uint64_t value;
      int32_t signo, notify;
      int32_t tid;
      int32_t pad[11];
    } sev = {t[i].sigev_value, t[i].signo, t[i].sigev_notify, t[i].notify_tid, {}};
    int32_t id = t[i].id;
    ret = blob::syscall3(__NR_timer_create, t[i].clock_id, blob::arg(&sev), blob::arg(&id));
    if (blob::is_err(ret)) return fail(a, r, "timer_create", uint64_t(t[i].id), ret);
    if (id != t[i].id) return fail(a, r, "timer_create gave another id", uint64_t(id), -EEXIST);
  }
  blob::sys_prctl(77, 0);
  if ((ret = fault_step(a, r, "timer_settime"))) return ret;
  for (uint32_t i = 0; i < a->nr_timers; i++) {
    int64_t spec[4] = {t[i].interval_sec, t[i].interval_nsec, t[i].value_sec, t[i].value_nsec};
    ret = blob::syscall4(__NR_timer_settime, t[i].id, 0, blob::arg(spec), 0);
    if (blob::is_err(ret)) return fail(a, r, "timer_settime", uint64_t(t[i].id), ret);
  }
  return 0;
}

// clone_args of clone3 (linux/sched.h, CLONE_ARGS_SIZE_VER2).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
      cgroup;
};
static_assert(sizeof(CloneArgs) == 88);

constexpr uint64_t kThreadFlags = 0x100 /* CLONE_VM */ | 0x200 /* CLONE_FS */ | 0x400 /* CLONE_FILES */ |
                                  0x800 /* CLONE_SIGHAND */ | 0x10000 /* CLONE_THREAD */ |
                                  0x40000 /* CLONE_SYSVSEM */;
constexpr int kFutexWaitPrivate = 128, kFutexWakePrivate = 129;

// Step 6: one thread with its tid, on its own stack, running
// restorer_thread_main(a, t). Returns the tid or -errno.
long clone_thread(RestoreTaskArgs* a, cr::RestoreThread* t) {
  int32_t tid = t->tid;
  CloneArgs ca = {};
  ca.flags = kThreadFlags;
  ca.stack = t->stack_top - cr::kRestoreThreadStack;
  ca.stack_size = cr::kRestoreThreadStack;
  ca.set_tid = blob::arg(&tid);
  ca.set_tid_size = 1;
  register long rax asm("rax") = __NR_clone3;
  register long rdi asm("rdi") = blob::arg(&ca);
  register long rsi asm("rsi") = sizeof ca;
  register long r12 asm("r12") = blob::arg(a);
  register long r13 asm("r13") = blob::arg(t);
  asm volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      // The new thread: on its own stack (16-byte aligned), nothing of the
      // caller's frame is valid here.
      "movq %%r12, %%rdi\n\t"
      "movq %%r13, %%rsi\n\t"
      "call restorer_thread_main\n\t"
      "ud2\n\t"
      "1:"
      : "+r"(rax)
      : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
      : "rcx", "r11", "memory");
  return rax;
}

}  // namespace

// A thread other than the leader, right after clone3.
extern "C" [[noreturn]] __attribute__((used)) void restorer_thread_main(RestoreTaskArgs* a, cr::RestoreThread* t) {
  cr::BlobResult res = {};
  if (restore_thread_fields(a, t, &res) || restore_creds(a, t->own_creds ? &t->creds : &a->creds, &res) ||
      restore_seccomp(a, t, &res))
    blob::sys_exit_group(1);
  __atomic_add_fetch(&a->threads_done, 1, __ATOMIC_RELEASE);
  blob::syscall3(__NR_futex, blob::arg(&a->threads_done), kFutexWakePrivate, 1);
  sigreturn_into(a, t);
}

// Called by restorer_main for RestorerCmd::kRestore. Returns only on failure.
extern "C" long restorer_restore_task(RestoreTaskArgs* a, cr::BlobResult* r) {
  if (a->magic != cr::kRestoreTaskMagic) return fail(a, r, "task args: bad magic", a->magic, -EPROTO);
  if (a->nr_threads < 1) return fail(a, r, "task args: no threads", 0, -EPROTO);
  auto* threads = at<cr::RestoreThread>(a, a->threads_off);
  long ret;
  if ((ret = unmap_old(a, r))) return ret;
  if ((ret = move_vdso(a, r))) return ret;
  if ((ret = move_vmas(a, r))) return ret;
  if ((ret = fault_step(a, r, "PR_SET_MM_MAP"))) return ret;
  ret = blob::sys_prctl(PR_SET_MM, PR_SET_MM_MAP, blob::arg(&a->mm), sizeof(a->mm));
  if (blob::is_err(ret)) return fail(a, r, "PR_SET_MM_MAP", a->mm.start_brk, ret);
  if (a->mm.exe_fd != ~0u) blob::syscall1(__NR_close, a->mm.exe_fd);
  if ((ret = restore_sigactions(a, r))) return ret;
  if ((ret = drain_signals(a, r))) return ret;
  if ((ret = queue_pending(a, r, a->pending_off, a->nr_pending, 0))) return ret;
  if ((ret = restore_altstack(a, r))) return ret;
  // Threads before any credentials change: clone3 with set_tid needs
  // CAP_CHECKPOINT_RESTORE, which the dumped credentials may lack.
  if (a->nr_threads > 1 && (ret = fault_step(a, r, "clone3 thread"))) return ret;
  for (uint32_t i = 1; i < a->nr_threads; i++) {
    ret = clone_thread(a, &threads[i]);
    if (blob::is_err(ret)) return fail(a, r, "clone3 thread", uint64_t(threads[i].tid), ret);
  }
  if ((ret = restore_thread_fields(a, &threads[0], r))) return ret;
  if ((ret = restore_rlimits(a, r))) return ret;
  for (;;) {
    uint32_t done = __atomic_load_n(&a->threads_done, __ATOMIC_ACQUIRE);
    if (done >= a->nr_threads - 1) break;
    blob::syscall4(__NR_futex, blob::arg(&a->threads_done), kFutexWaitPrivate, done, 0);
  }
  if ((ret = restore_creds(a, threads[0].own_creds ? &threads[0].creds : &a->creds, r))) return ret;
  // After the credentials: changing uids resets the dumpable flag. The
  // kernel takes only 0 and 1 here; 2 (suid_dumpable) is what it set itself.
  if (a->dumpable == 0 || a->dumpable == 1) {
    if ((ret = fault_step(a, r, "PR_SET_DUMPABLE"))) return ret;
    ret = blob::sys_prctl(PR_SET_DUMPABLE, a->dumpable);
    if (blob::is_err(ret)) return fail(a, r, "PR_SET_DUMPABLE", a->dumpable, ret);
  }
  // Interval timers last: ITIMER_REAL starts counting now.
  if ((ret = fault_step(a, r, "setitimer"))) return ret;
  for (int w = 0; w < 3; w++) {
    ret = blob::syscall3(__NR_setitimer, w, blob::arg(&a->itimers[w]), 0);
    if (blob::is_err(ret)) return fail(a, r, "setitimer", w, ret);
  }
  if ((ret = restore_posix_timers(a, r))) return ret;
  if ((ret = restore_seccomp(a, &threads[0], r))) return ret;
  if (a->log_fd >= 0) blob::syscall1(__NR_close, a->log_fd);
  sigreturn_into(a, &threads[0]);
}

#pragma GCC visibility pop
