// Dump side of a task's core state (record: common/image/core.h; restore
// side: cr-restore/core.cc and the restorer): registers and xsave (from the
// remote session, which already put an interrupted system call back on its
// instruction), signal mask, pending signals (PTRACE_PEEKSIGINFO), rseq and
// robust list (ptrace and get_robust_list), dispositions, itimers,
// sigaltstack, umask and tid address (the parasite), credentials, limits,
// personality, cwd and root (/proc).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "common/proc/limits.h"
#include "common/proc/misc.h"
#include "common/proc/stat.h"
#include "common/proc/status.h"
#include "common/remote/parasite_session.h"
#include "cr-dump/dump.h"

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

}  // namespace

Result<Core> dump_core(pid_t pid, RemoteSession& rs) {
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

  c.creds.uids.assign(status.uid.begin(), status.uid.end());
  c.creds.gids.assign(status.gid.begin(), status.gid.end());
  c.creds.groups = status.groups;
  c.creds.cap_inh = status.cap_inh;
  c.creds.cap_prm = status.cap_prm;
  c.creds.cap_eff = status.cap_eff;
  c.creds.cap_bnd = status.cap_bnd;
  c.creds.cap_amb = status.cap_amb;
  c.creds.no_new_privs = status.no_new_privs;
  long sb = TRY(rs.syscall_raw(SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0));
  if (sb < 0) return make_pid_error(pid, static_cast<int>(-sb), "PR_GET_SECUREBITS");
  c.creds.securebits = static_cast<uint32_t>(sb);
  long dumpable = TRY(rs.syscall_raw(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0));
  if (dumpable < 0) return make_pid_error(pid, static_cast<int>(-dumpable), "PR_GET_DUMPABLE");
  c.dumpable = static_cast<int32_t>(dumpable);

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
  ParasiteArgs misc = TRY(ps.run(ParasiteCmd::kGetMisc));
  c.umask = misc.u.misc.umask;
  c.personality = TRY(proc::read_personality(pid));

  ThreadCore t;
  t.tid = pid;
  t.comm = stat.comm;
  t.regs = to_gpregs(rs.resume_regs());
  t.xsave.data = rs.saved_xstate().bytes;
  t.blocked = rs.saved_sigmask();
  t.pending = TRY(peek_pending(pid, false));
  c.shared_pending = TRY(peek_pending(pid, true));
  t.altstack_sp = as.u.sigaltstack.ss.sp;
  t.altstack_size = as.u.sigaltstack.ss.size;
  t.altstack_flags = as.u.sigaltstack.ss.flags;
  t.clear_child_tid = misc.u.misc.clear_child_tid;

  struct __ptrace_rseq_configuration rc;
  memset(&rc, 0, sizeof rc);
  if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof rc, &rc) < 0)
    return make_pid_error(pid, errno, "PTRACE_GET_RSEQ_CONFIGURATION");
  t.rseq_ptr = rc.rseq_abi_pointer;
  t.rseq_len = rc.rseq_abi_size;
  t.rseq_sig = rc.signature;

  uint64_t head = 0;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, pid, &head, &len) < 0) return make_pid_error(pid, errno, "get_robust_list");
  t.robust_list = head;
  t.robust_list_len = len;
  c.threads.push_back(std::move(t));
  pr_debug(pid, "core: rip %#llx, %zu pending signals, rseq at %#llx", (unsigned long long)c.threads[0].regs.rip,
           c.threads[0].pending.size() + c.shared_pending.size(), (unsigned long long)c.threads[0].rseq_ptr);
  return c;
}

}  // namespace cr
