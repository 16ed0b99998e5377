// Restore side of a task's core state (dump side: cr-dump/core.cc, records:
// common/image/core.h): what the restorer blob sets from inside the task —
// signal dispositions, pending signals, timers, limits, credentials, rseq,
// robust list, tid address — and the rt_sigframe it returns through, which
// carries the registers, the xsave state and the blocked mask.
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/image/pages.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

constexpr uint64_t kMaxVdsoParts = 8;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// memcpy of a possibly empty vector (whose data() may be null).
void copy_in(char* dst, const void* src, size_t n) {
  if (n) memcpy(dst, src, n);
}

uint64_t xgetbv0() {
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Offsets of the pieces in the args area.
struct Layout {
  uint64_t keep, vdso, vmas, pending, groups, auxv, xsave, frame, total;
};

Layout layout_of(const TaskImages& t) {
  const ThreadCore& th = t.core.threads[0];
  size_t pending = t.core.shared_pending.size() + th.pending.size();
  Layout l;
  uint64_t o = align_up(sizeof(RestoreTaskArgs), 64);
  l.keep = o;
  o += (t.mm.vmas.size() + kMaxVdsoParts + 1) * sizeof(RestoreRange);
  l.vdso = o;
  o += kMaxVdsoParts * sizeof(RestoreVdsoPart);
  l.vmas = o;
  o += t.mm.vmas.size() * sizeof(RestoreVma);
  l.pending = o;
  o += pending * sizeof(RestoreSiginfo);
  l.groups = o;
  o = align_up(o + t.core.creds.groups.size() * 4, 16);
  l.auxv = o;
  o = align_up(o + t.mm.auxv.size(), 64);
  l.xsave = o;
  o = align_up(o + th.xsave.size() + 4, 64);
  l.frame = o;
  o += sizeof(KRtSigframe) + 64;
  l.total = align_up(o, kPageSize);
  return l;
}

bool same_creds_as_self(const Creds& c) {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  if (c.uids[0] != r || c.uids[1] != e || c.uids[2] != s || c.uids[3] != e) return false;
  if (c.gids[0] != gr || c.gids[1] != ge || c.gids[2] != gs || c.gids[3] != ge) return false;
  std::vector<gid_t> g(getgroups(0, nullptr) + 1);
  int n = getgroups(static_cast<int>(g.size()), g.data());
  if (n < 0 || static_cast<size_t>(n) != c.groups.size()) return false;
  for (int i = 0; i < n; i++)
    if (g[i] != c.groups[i]) return false;
  // Capabilities too: a root process that dropped some must not come back
  // with cr-restore's full set.
  struct {
    uint32_t version;
    int pid;
  } hdr = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  auto cap64 = [&](uint32_t lo, uint32_t hi) { return (uint64_t(hi) << 32) | lo; };
  return cap64(data[0].effective, data[1].effective) == c.cap_eff &&
         cap64(data[0].permitted, data[1].permitted) == c.cap_prm &&
         cap64(data[0].inheritable, data[1].inheritable) == c.cap_inh;
}

}  // namespace

uint64_t task_args_size(const TaskImages& t) { return layout_of(t).total; }

Status fill_task_args(const TaskImages& t, const MemoryPlan& plan, int exe_fd, int log_fd) {
  const Core& c = t.core;
  const ThreadCore& th = c.threads[0];
  Layout l = layout_of(t);
  char* base = reinterpret_cast<char*>(plan.args_at);
  memset(base, 0, l.total);
  auto* a = reinterpret_cast<RestoreTaskArgs*>(base);
  a->magic = kRestoreTaskMagic;
  a->size = static_cast<uint32_t>(l.total);
  a->hole_start = plan.hole_start;
  a->hole_end = plan.hole_end;
  a->vdso_temp = plan.vdso_temp;
  if (plan.vdso.size() > kMaxVdsoParts) return make_error("too many vDSO parts");
  a->vdso_off = l.vdso;
  a->nr_vdso = static_cast<uint32_t>(plan.vdso.size());
  copy_in(base + l.vdso, plan.vdso.data(), plan.vdso.size() * sizeof(RestoreVdsoPart));
  if (plan.keep.size() > t.mm.vmas.size() + kMaxVdsoParts + 1) return make_error("too many keep ranges");
  a->keep_off = l.keep;
  a->nr_keep = static_cast<uint32_t>(plan.keep.size());
  copy_in(base + l.keep, plan.keep.data(), plan.keep.size() * sizeof(RestoreRange));
  a->vmas_off = l.vmas;
  a->nr_vmas = static_cast<uint32_t>(plan.vmas.size());
  copy_in(base + l.vmas, plan.vmas.data(), plan.vmas.size() * sizeof(RestoreVma));

  // Pending signals: process-wide, then this thread's.
  auto* p = reinterpret_cast<RestoreSiginfo*>(base + l.pending);
  uint32_t np = 0;
  auto add = [&](const Bytes& info, bool shared) {
    RestoreSiginfo& s = p[np++];
    s.shared = shared;
    memcpy(&s.sig, info.data.data(), 4);  // si_signo
    memcpy(s.info, info.data.data(), 128);
  };
  for (auto& i : c.shared_pending) add(i, true);
  for (auto& i : th.pending) add(i, false);
  a->pending_off = l.pending;
  a->nr_pending = np;

  // mm fields for PR_SET_MM_MAP.
  const Mm& mm = t.mm;
  a->mm = {mm.start_code, mm.end_code, mm.start_data, mm.end_data, mm.start_brk, mm.brk, mm.start_stack,
           mm.arg_start,  mm.arg_end,  mm.env_start,  mm.env_end,  0,            0,      0};
  copy_in(base + l.auxv, mm.auxv.data.data(), mm.auxv.size());
  a->mm.auxv = plan.args_at + l.auxv;
  a->mm.auxv_size = static_cast<uint32_t>(mm.auxv.size());
  a->mm.exe_fd = exe_fd >= 0 ? static_cast<uint32_t>(exe_fd) : ~0u;

  for (auto& s : c.sigactions) a->sigactions[s.sig - 1] = {s.handler, s.flags, s.restorer, s.mask};
  for (auto& it : c.itimers) {
    a->itimers[it.which] = {it.interval_sec, it.interval_usec, it.value_sec, it.value_usec};
    // Kernel quirk, seen on 6.18 (test/workloads/ckpt_itimer.c): a periodic
    // ITIMER_REAL that fired while its SIGALRM waits undelivered reads as
    // value 0 with its interval — the kernel re-arms it when the signal is
    // dequeued, not when it fires. setitimer() with value 0 would disarm
    // it, so arm it for one interval; the waiting SIGALRM itself comes back
    // with the pending signals.
    if (it.which == ITIMER_REAL && it.value_sec == 0 && it.value_usec == 0 &&
        (it.interval_sec || it.interval_usec)) {
      a->itimers[it.which].value_sec = it.interval_sec;
      a->itimers[it.which].value_usec = it.interval_usec;
    }
  }
  a->altstack = {th.altstack_sp, th.altstack_flags, 0, th.altstack_size};
  a->nr_rlimits = 0;
  for (int i = 0; i < 16; i++) {  // current values for any limit the image lacks
    struct rlimit rl;
    getrlimit(static_cast<__rlimit_resource>(i), &rl);
    a->rlimits[i] = {rl.rlim_cur, rl.rlim_max};
  }
  for (auto& r : c.rlimits) a->rlimits[r.resource] = {r.cur, r.max};
  a->nr_rlimits = 16;

  a->restore_creds = !same_creds_as_self(c.creds);
  for (int i = 0; i < 4; i++) {
    a->uids[i] = c.creds.uids[i];
    a->gids[i] = c.creds.gids[i];
  }
  a->groups_off = l.groups;
  a->nr_groups = static_cast<uint32_t>(c.creds.groups.size());
  copy_in(base + l.groups, c.creds.groups.data(), c.creds.groups.size() * 4);
  a->cap_inh = c.creds.cap_inh;
  a->cap_prm = c.creds.cap_prm;
  a->cap_eff = c.creds.cap_eff;

  a->rseq_ptr = th.rseq_ptr;
  a->rseq_len = th.rseq_len;
  a->rseq_sig = th.rseq_sig;
  a->robust_list = th.robust_list;
  a->robust_list_len = th.robust_list_len;
  a->clear_child_tid = th.clear_child_tid;
  a->fs_base = th.regs.fs_base;
  a->gs_base = th.regs.gs_base;
  strncpy(a->comm, th.comm.empty() ? c.comm.c_str() : th.comm.c_str(), sizeof a->comm - 1);
  a->log_fd = log_fd;
  a->dumpable = c.dumpable;

  // The XSAVE area for the frame: the dumped one, with the software bytes
  // the kernel checks before it trusts an extended state in a signal frame
  // (fpu__restore_sig: magic1, sizes, magic2 after the area).
  uint8_t* xs = reinterpret_cast<uint8_t*>(base + l.xsave);
  uint32_t n = static_cast<uint32_t>(th.xsave.size());
  memcpy(xs, th.xsave.data.data(), n);
  uint32_t magic1 = kFpXstateMagic1, ext = n + 4, magic2 = kFpXstateMagic2;
  uint64_t features = xgetbv0();
  memcpy(xs + 464, &magic1, 4);
  memcpy(xs + 468, &ext, 4);
  memcpy(xs + 472, &features, 8);
  memcpy(xs + 480, &n, 4);
  memcpy(xs + n, &magic2, 4);

  auto* f = reinterpret_cast<KRtSigframe*>(base + l.frame);
  const GpRegs& g = th.regs;
  f->uc.uc_flags = kUcFpXstate | kUcSigcontextSs | kUcStrictRestoreSs;
  f->uc.ss_sp = th.altstack_sp;
  f->uc.ss_flags = th.altstack_flags & ~SS_ONSTACK;
  f->uc.ss_size = th.altstack_size;
  KSigcontext& sc = f->uc.mcontext;
  sc.r8 = g.r8, sc.r9 = g.r9, sc.r10 = g.r10, sc.r11 = g.r11, sc.r12 = g.r12, sc.r13 = g.r13;
  sc.r14 = g.r14, sc.r15 = g.r15, sc.rdi = g.rdi, sc.rsi = g.rsi, sc.rbp = g.rbp, sc.rbx = g.rbx;
  sc.rdx = g.rdx, sc.rax = g.rax, sc.rcx = g.rcx, sc.rsp = g.rsp, sc.rip = g.rip, sc.eflags = g.eflags;
  sc.cs = static_cast<uint16_t>(g.cs);
  sc.ss = static_cast<uint16_t>(g.ss);
  sc.fs = static_cast<uint16_t>(g.fs);
  sc.gs = static_cast<uint16_t>(g.gs);
  sc.fpstate = plan.args_at + l.xsave;
  f->uc.sigmask = th.blocked;
  a->sigframe_sp = plan.args_at + l.frame + offsetof(KRtSigframe, uc);
  return ok_status();
}

}  // namespace cr
