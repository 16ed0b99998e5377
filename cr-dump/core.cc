// Dump side of a task's core state (record: common/image/core.h; restore
// side: cr-restore/core.cc and the restorer): registers and xsave (from the
// remote session, which already put an interrupted system call back on its
// instruction), signal mask, pending signals (PTRACE_PEEKSIGINFO), rseq and
// robust list (ptrace and get_robust_list), dispositions, itimers,
// sigaltstack, umask and tid address (the parasite), credentials, limits,
// personality, cwd and root (/proc).
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/kernel/uapi.h"
#include "common/log.h"
#include "common/proc/limits.h"
#include "common/proc/misc.h"
#include "common/proc/stat.h"
#include "common/proc/status.h"
#include "common/remote/parasite_session.h"
#include "cr-dump/dump.h"
#include "parasite/restorer_task_abi.h"

namespace cr {

namespace {

GpRegs to_gpregs(const user_regs_struct& r) {
  return GpRegs{r.r15, r.r14, r.r13,    r.r12,    r.rbp,     r.rbx,     r.r11, r.r10, r.r9,
                r.r8,  r.rax, r.rcx,    r.rdx,    r.rsi,     r.rdi,     r.orig_rax, r.rip, r.cs,
                r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds, r.es, r.fs, r.gs};
}

// Queued signals, per-thread or process-wide, with their siginfo.
Result<std::vector<Bytes>> peek_pending(pid_t tid, bool shared) {
  std::vector<Bytes> out;
  for (uint64_t off = 0;; off++) {
    struct {
      uint64_t off;
      uint32_t flags;
      int32_t nr;
    } args = {off, shared ? 1u /* PTRACE_PEEKSIGINFO_SHARED */ : 0u, 1};
    siginfo_t si;
    long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, &si);
    if (n < 0) return make_pid_error(tid, errno, "PTRACE_PEEKSIGINFO");
    if (n == 0) break;
    Bytes b;
    b.data.assign(reinterpret_cast<uint8_t*>(&si), reinterpret_cast<uint8_t*>(&si) + sizeof si);
    out.push_back(std::move(b));
    if (out.size() > 65536) return make_pid_error(tid, 0, "too many pending signals");
  }
  return out;
}

// POSIX timers: what /proc/PID/timers tells, and each one's remaining time
// and interval from timer_gettime run in the task.
Result<std::vector<PosixTimerRec>> dump_posix_timers(pid_t pid, RemoteSession& rs) {
  auto timers = proc::read_timers(pid);
  if (!timers) {
    if (timers.error().err == ENOENT) return std::vector<PosixTimerRec>{};
    return std::move(timers).error();
  }
  std::vector<PosixTimerRec> out;
  if (timers->empty()) return out;
  auto scratch = TRY(rs.alloc_scratch(4096));
  RemotePtr<struct itimerspec> spec(scratch.addr());
  for (const auto& t : *timers) {
    long r = TRY(rs.syscall_raw(SYS_timer_gettime, t.id, spec));
    if (r < 0) return make_pid_error(pid, static_cast<int>(-r), "POSIX timer %d: timer_gettime", t.id);
    struct itimerspec its = TRY(rs.read(spec));
    long ov = TRY(rs.syscall_raw(SYS_timer_getoverrun, t.id));
    PosixTimerRec p;
    p.id = t.id;
    p.clock_id = t.clock_id;
    p.signo = t.signo;
    p.sigev_notify = t.sigev_notify();
    p.notify_tid = t.thread_id ? t.notify_pid : 0;
    p.sigev_value = t.sigev_value;
    p.interval_sec = its.it_interval.tv_sec;
    p.interval_nsec = its.it_interval.tv_nsec;
    p.value_sec = its.it_value.tv_sec;
    p.value_nsec = its.it_value.tv_nsec;
    p.overrun = ov > 0 ? static_cast<int32_t>(ov) : 0;
    out.push_back(p);
  }
  return out;
}

// The thread's seccomp mode and filters (PTRACE_SECCOMP_GET_FILTER: index 0
// is the newest), with their flags (PTRACE_SECCOMP_GET_METADATA).
Status dump_seccomp(pid_t pid, pid_t tid, ThreadCore& t) {
  auto st = TRY(proc::read_status(tid));
  t.seccomp_mode = st.seccomp;
  if (st.seccomp != 2) return ok_status();
  for (long index = 0;; index++) {
    long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, nullptr);
    if (n < 0 && errno == ENOENT) break;
    if (n <= 0) return make_pid_error(pid, errno, "thread %d: PTRACE_SECCOMP_GET_FILTER %ld", tid, index);
    SeccompFilterRec f;
    f.prog.data.resize(static_cast<size_t>(n) * 8);
    if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, f.prog.data.data()) != n)
      return make_pid_error(pid, errno, "thread %d: PTRACE_SECCOMP_GET_FILTER %ld", tid, index);
    struct {
      uint64_t filter_off, flags;
    } md = {static_cast<uint64_t>(index), 0};
    if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof md, &md) < 0)
      return make_pid_error(pid, errno, "thread %d: PTRACE_SECCOMP_GET_METADATA %ld", tid, index);
    f.flags = md.flags;
    t.seccomp_filters.insert(t.seccomp_filters.begin(), std::move(f));
    if (t.seccomp_filters.size() > 512) return make_pid_error(pid, 0, "thread %d: too many seccomp filters", tid);
  }
  return ok_status();
}

// One thread's credentials: /proc/TID/status, and securebits from the
// thread itself.
Result<Creds> dump_creds(pid_t pid, const proc::ProcStatus& status, RemoteSession& rs) {
  Creds c;
  c.uids.assign(status.uid.begin(), status.uid.end());
  c.gids.assign(status.gid.begin(), status.gid.end());
  c.groups = status.groups;
  c.cap_inh = status.cap_inh;
  c.cap_prm = status.cap_prm;
  c.cap_eff = status.cap_eff;
  c.cap_bnd = status.cap_bnd;
  c.cap_amb = status.cap_amb;
  c.no_new_privs = status.no_new_privs;
  long sb = TRY(rs.syscall_raw(SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0));
  if (sb < 0) return make_pid_error(pid, static_cast<int>(-sb), "thread %d: PR_GET_SECUREBITS", rs.tid());
  c.securebits = static_cast<uint32_t>(sb);
  return c;
}

bool same_creds(const Creds& a, const Creds& b) {
  return a.uids == b.uids && a.gids == b.gids && a.groups == b.groups && a.cap_inh == b.cap_inh &&
         a.cap_prm == b.cap_prm && a.cap_eff == b.cap_eff && a.cap_bnd == b.cap_bnd && a.cap_amb == b.cap_amb &&
         a.securebits == b.securebits && a.no_new_privs == b.no_new_privs;
}

// What any thread's state needs from outside: rseq, robust list,
// scheduling, name.
Status dump_thread_outside(pid_t pid, pid_t tid, ThreadCore& t) {
  struct __ptrace_rseq_configuration rc;
  memset(&rc, 0, sizeof rc);
  if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof rc, &rc) < 0)
    return make_pid_error(pid, errno, "thread %d: PTRACE_GET_RSEQ_CONFIGURATION", tid);
  t.rseq_ptr = rc.rseq_abi_pointer;
  t.rseq_len = rc.rseq_abi_size;
  t.rseq_sig = rc.signature;

  uint64_t head = 0;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, tid, &head, &len) < 0)
    return make_pid_error(pid, errno, "thread %d: get_robust_list", tid);
  t.robust_list = head;
  t.robust_list_len = len;

  // sched_getattr: policy, real-time priority, flags (reset-on-fork).
  KSchedAttr attr = {};
  if (syscall(SYS_sched_getattr, tid, &attr, sizeof attr, 0) < 0)
    return make_pid_error(pid, errno, "thread %d: sched_getattr", tid);
  if (attr.policy == 6 /* SCHED_DEADLINE */)
    return make_pid_error(pid, 0, "thread %d: SCHED_DEADLINE is not supported", tid);
  t.sched_policy = static_cast<int32_t>(attr.policy);
  t.sched_priority = static_cast<int32_t>(attr.priority);
  t.sched_flags = attr.flags;
  t.nice = attr.nice;
  TRY_STATUS(dump_seccomp(pid, tid, t));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(tid, sizeof set, &set) < 0) return make_pid_error(pid, errno, "thread %d: sched_getaffinity", tid);
  t.affinity.assign(sizeof set / 8, 0);
  memcpy(t.affinity.data(), &set, sizeof set);
  while (!t.affinity.empty() && t.affinity.back() == 0) t.affinity.pop_back();
  return ok_status();
}

// The XSAVE features the process may use (0 where the kernel predates
// ARCH_GET_XCOMP_PERM, Linux 5.16: only XCR0's static features then).
Result<uint64_t> read_xcomp_perm(RemoteSession& rs) {
  uint64_t zero = 0;
  RemotePtr<uint64_t> perm(TRY(rs.push_bytes(&zero, sizeof zero)).addr());
  long r = TRY(rs.syscall_raw(SYS_arch_prctl, uapi::kArchGetXcompPerm, perm, 0, 0, 0));
  if (r == -EINVAL) return 0;
  if (r < 0) return make_pid_error(rs.tid(), static_cast<int>(-r), "arch_prctl(ARCH_GET_XCOMP_PERM)");
  return TRY(rs.read(perm));
}

// Live AMX tile registers (XSTATE_BV bit 18, XTILE_DATA, not in its init
// state) at the moment of the freeze: the restored task's signal frame
// cannot carry them, as its kernel FPU buffer has the default size until
// the task's own first tile instruction enlarges it (arch/x86/kernel/fpu/
// xstate.c, Linux 5.16 to 6.18). Refused rather than lost.
Status check_no_live_tiles(pid_t pid, pid_t tid, const Bytes& xsave) {
  uint64_t bv = 0;
  if (xsave.size() >= uapi::kXstateHeaderOffset + 8) memcpy(&bv, xsave.data.data() + uapi::kXstateHeaderOffset, 8);
  if (bv & (1ull << uapi::XFEATURE_XTILE_DATA))
    return make_pid_error(pid, 0, "thread %d: AMX tile registers are live (in the middle of a tile computation); "
                          "not supported", tid);
  return ok_status();
}

// A thread other than the leader: its registers and mask from its own
// remote session (which settles an interrupted system call), its
// sigaltstack and tid address by system calls run in it.
Result<ThreadCore> dump_other_thread(pid_t pid, SeizedTask& task, const Creds& process_creds) {
  pid_t tid = task.tid();
  ThreadCore t;
  t.tid = tid;
  auto stat = TRY(proc::read_stat(tid));
  t.comm = stat.comm;
  auto rs = TRY(RemoteSession::start(task));
  t.regs = to_gpregs(rs.resume_regs());
  t.xsave.data = rs.saved_xstate().bytes;
  TRY_STATUS(check_no_live_tiles(pid, tid, t.xsave));
  t.blocked = rs.saved_sigmask();
  auto scratch = TRY(rs.alloc_scratch(4096));
  RemotePtr<stack_t> ss(scratch.addr());
  long r = TRY(rs.syscall_raw(SYS_sigaltstack, 0, ss));
  if (r < 0) return make_pid_error(pid, static_cast<int>(-r), "thread %d: sigaltstack", tid);
  stack_t s = TRY(rs.read(ss));
  t.altstack_sp = reinterpret_cast<uint64_t>(s.ss_sp);
  t.altstack_size = s.ss_size;
  t.altstack_flags = s.ss_flags;
  RemotePtr<uint64_t> ta(scratch.addr() + 64);
  r = TRY(rs.syscall_raw(SYS_prctl, PR_GET_TID_ADDRESS, ta, 0, 0, 0));
  if (r < 0) return make_pid_error(pid, static_cast<int>(-r), "thread %d: PR_GET_TID_ADDRESS", tid);
  t.clear_child_tid = TRY(rs.read(ta));
  // Credentials are per thread in Linux (a raw setresuid changes one).
  auto ts = TRY(proc::read_status(tid));
  Creds mine = TRY(dump_creds(pid, ts, rs));
  if (!same_creds(mine, process_creds)) {
    t.own_creds = true;
    t.creds = std::move(mine);
  }
  TRY_STATUS(rs.restore());
  t.pending = TRY(peek_pending(tid, false));
  TRY_STATUS(dump_thread_outside(pid, tid, t));
  return t;
}

}  // namespace

Result<bool> read_child_subreaper(RemoteSession& rs) {
  int zero = 0;
  RemotePtr<int> flag(TRY(rs.push_bytes(&zero, sizeof zero)).addr());
  long r = TRY(rs.syscall_raw(SYS_prctl, PR_GET_CHILD_SUBREAPER, flag, 0, 0, 0));
  if (r < 0) return make_pid_error(rs.tid(), static_cast<int>(-r), "PR_GET_CHILD_SUBREAPER");
  return TRY(rs.read(flag)) != 0;
}

Result<Core> dump_core(FrozenProc& p, RemoteSession& rs) {
  pid_t pid = p.pid;
  Core c;
  c.pid = pid;
  auto stat = TRY(proc::read_stat(pid));
  auto status = TRY(proc::read_status(pid));
  c.comm = stat.comm;
  auto cwd = TRY(proc::read_cwd(pid));
  auto root = TRY(proc::read_root(pid));
  if (cwd.deleted) return make_pid_error(pid, 0, "its working directory %s was deleted", cwd.path.c_str());
  if (root.deleted) return make_pid_error(pid, 0, "its root directory %s was deleted", root.path.c_str());
  c.cwd = cwd.path;
  c.root = root.path;

  c.creds = TRY(dump_creds(pid, status, rs));
  long dumpable = TRY(rs.syscall_raw(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0));
  if (dumpable < 0) return make_pid_error(pid, static_cast<int>(-dumpable), "PR_GET_DUMPABLE");
  c.dumpable = static_cast<int32_t>(dumpable);
  c.child_subreaper = TRY(read_child_subreaper(rs));
  c.xcomp_perm = TRY(read_xcomp_perm(rs));

  auto limits = TRY(proc::read_limits(pid));
  for (int i = 0; i < proc::kRlimits; i++) c.rlimits.push_back({i, limits[i].rlim_cur, limits[i].rlim_max});

  // What only the task can tell: the parasite.
  auto ps = TRY(ParasiteSession::inject(rs));
  ParasiteArgs sa = TRY(ps.run(ParasiteCmd::kGetSigactions));
  for (int sig = 1; sig <= kBlobNSig; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const BlobSigaction& s = sa.u.sigactions.sa[sig - 1];
    c.sigactions.push_back({sig, s.handler, s.flags, s.restorer, s.mask});
  }
  ParasiteArgs it = TRY(ps.run(ParasiteCmd::kGetItimers));
  const BlobItimerval* tv[3] = {&it.u.itimers.real, &it.u.itimers.virt, &it.u.itimers.prof};
  for (int w = 0; w < 3; w++)
    c.itimers.push_back({w, tv[w]->interval_sec, tv[w]->interval_usec, tv[w]->value_sec, tv[w]->value_usec});
  ParasiteArgs as = TRY(ps.run(ParasiteCmd::kGetSigaltstack));
  c.posix_timers = TRY(dump_posix_timers(pid, rs));
  ParasiteArgs misc = TRY(ps.run(ParasiteCmd::kGetMisc));
  c.umask = misc.u.misc.umask;
  c.personality = TRY(proc::read_personality(pid));

  ThreadCore t;
  t.tid = pid;
  t.comm = stat.comm;
  t.regs = to_gpregs(rs.resume_regs());
  t.xsave.data = rs.saved_xstate().bytes;
  TRY_STATUS(check_no_live_tiles(pid, pid, t.xsave));
  t.blocked = rs.saved_sigmask();
  t.pending = TRY(peek_pending(pid, false));
  c.shared_pending = TRY(peek_pending(pid, true));
  t.altstack_sp = as.u.sigaltstack.ss.sp;
  t.altstack_size = as.u.sigaltstack.ss.size;
  t.altstack_flags = as.u.sigaltstack.ss.flags;
  t.clear_child_tid = misc.u.misc.clear_child_tid;

  TRY_STATUS(dump_thread_outside(pid, pid, t));
  c.threads.push_back(std::move(t));
  // The other threads each get a short session of their own.
  for (size_t i = 1; i < p.threads.size(); i++) c.threads.push_back(TRY(dump_other_thread(pid, p.threads[i], c.creds)));
  pr_debug(pid, "core: rip %#llx, %zu pending signals, rseq at %#llx", (unsigned long long)c.threads[0].regs.rip,
           c.threads[0].pending.size() + c.shared_pending.size(), (unsigned long long)c.threads[0].rseq_ptr);
  return c;
}

}  // namespace cr
