// Restore side of a task's core state (dump side: cr-dump/core.cc, records:
// common/image/core.h): what the restorer blob sets from inside the task —
// signal dispositions, pending signals, timers, limits, credentials, rseq,
// robust list, tid address — and the rt_sigframe it returns through, which
// carries the registers, the xsave state and the blocked mask.
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fault.h"
#include "common/image/pages.h"
#include "common/kernel/sigframe.h"
#include "common/kernel/uapi.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

constexpr uint64_t kMaxVdsoParts = 8;
constexpr int kArchGetXcompSupp = 0x1021;  // arch_prctl ARCH_GET_XCOMP_SUPP

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// memcpy of a possibly empty vector (whose data() may be null).
void copy_in(char* dst, const void* src, size_t n) {
  if (n) memcpy(dst, src, n);
}

// Offsets of the pieces in the args area.
struct Layout {
  uint64_t keep, vdso, vmas, pending, groups, auxv, timers, threads;
  uint64_t fault = 0;  // fault injection: a page for the shared count (RestoreFaultPage)
  struct Thread {
    uint64_t pending = 0, xsave = 0, frame = 0, stack_top = 0, filters = 0, groups = 0;
    std::vector<uint64_t> progs;
  };
  std::vector<Thread> thread;
  uint64_t total;
};

Layout layout_of(const TaskImages& t) {
  Layout l;
  uint64_t o = align_up(sizeof(RestoreTaskArgs), 64);
  l.keep = o;
  o += (t.mm.vmas.size() + kMaxVdsoParts + 1) * sizeof(RestoreRange);
  l.vdso = o;
  o += kMaxVdsoParts * sizeof(RestoreVdsoPart);
  l.vmas = o;
  o += t.mm.vmas.size() * sizeof(RestoreVma);
  l.pending = o;
  o += t.core.shared_pending.size() * sizeof(RestoreSiginfo);
  l.groups = o;
  o = align_up(o + t.core.creds.groups.size() * 4, 16);
  l.auxv = o;
  o = align_up(o + t.mm.auxv.size(), 64);
  l.timers = o;
  o += t.core.posix_timers.size() * sizeof(RestoreTimer);
  l.threads = o;
  o += t.core.threads.size() * sizeof(RestoreThread);
  for (const ThreadCore& th : t.core.threads) {
    Layout::Thread lt;
    lt.pending = align_up(o, 8);
    o = lt.pending + th.pending.size() * sizeof(RestoreSiginfo);
    lt.xsave = align_up(o, 64);
    o = align_up(lt.xsave + th.xsave.size() + 4, 64);
    lt.frame = o;
    o += sizeof(KRtSigframe) + 64;
    lt.groups = o;  // its own supplementary groups, if its credentials are its own
    o = align_up(o + (th.own_creds ? th.creds.groups.size() * 4 : 0), 8);
    lt.filters = o;
    o += th.seccomp_filters.size() * sizeof(RestoreSeccompFilter);
    for (auto& sf : th.seccomp_filters) {
      lt.progs.push_back(o);
      o = align_up(o + sf.prog.size(), 8);
    }
    o = align_up(o, 64);
    l.thread.push_back(lt);
  }
  // The restorer's stacks of the threads but the leader (which uses the
  // blob's own stack).
  o = align_up(o, kPageSize);
  for (size_t i = 1; i < l.thread.size(); i++) {
    o += kRestoreThreadStack;
    l.thread[i].stack_top = o;
  }
  if (fault_blob_params().page) {
    l.fault = o;
    o += kPageSize;
  }
  l.total = align_up(o, kPageSize);
  return l;
}

// The XSAVE features this process may use, after asking for those the
// dumped process had been given beyond the static ones (AMX tile data:
// ARCH_REQ_XCOMP_PERM, Linux 5.16; the permission is per process and
// inherited by the threads the restorer makes).
Result<uint64_t> take_xcomp_perm(const Core& c) {
  uint64_t perm = 0;
  if (syscall(SYS_arch_prctl, uapi::kArchGetXcompPerm, &perm) != 0) {
    if (errno != EINVAL) return make_errno(errno, "arch_prctl(ARCH_GET_XCOMP_PERM)");
    return xcr0_features();  // a kernel before 5.16: no dynamic features
  }
  for (unsigned f = uapi::XFEATURE_XTILE_DATA; f < 64; f++) {
    uint64_t bit = 1ull << f;
    if (!(c.xcomp_perm & bit) || (perm & bit)) continue;
    if (syscall(SYS_arch_prctl, uapi::kArchReqXcompPerm, f) != 0) {
      Error e = make_errno(errno, "pid %lld used XSAVE feature %u (AMX tile data), which this machine does not grant "
                           "(ARCH_REQ_XCOMP_PERM)", (long long)c.pid, f);
      e.remedy = "restore on a machine whose CPU and kernel offer it (crtools check: cpu-amx)";
      return e;
    }
    perm |= bit;
  }
  return xcr0_features() & perm;
}

// The rt_sigframe one thread returns through: its registers, its XSAVE
// area (common/kernel/sigframe.h: just the features the task's FPU buffer
// holds, with the software bytes the kernel checks), its blocked mask and
// sigaltstack.
Status build_sigframe(const ThreadCore& th, char* base, uint64_t args_at, const Layout::Thread& lt,
                      uint64_t features) {
  // Not the tile data either, even with the permission: the task's buffer
  // grows only at its first tile instruction after the restore, and the
  // dump refused live tile registers (cr-dump/core.cc check_no_live_tiles).
  features = sigframe_features(features);
  std::span<uint8_t> xs(reinterpret_cast<uint8_t*>(base + lt.xsave), th.xsave.size() + 4);
  if (auto st = put_sigframe_xstate(xs, th.xsave.data, features); !st)
    return make_error("thread %lld: %s", (long long)th.tid, st.error().message.c_str());

  auto* f = reinterpret_cast<KRtSigframe*>(base + lt.frame);
  const GpRegs& g = th.regs;
  f->uc.uc_flags = kUcFpXstate | kUcSigcontextSs | kUcStrictRestoreSs;
  f->uc.ss_sp = th.altstack_sp;
  f->uc.ss_flags = th.altstack_flags & ~SS_ONSTACK;
  f->uc.ss_size = th.altstack_size;
  KSigcontext& sc = f->uc.mcontext;
  put_sigframe_regs(sc, g);
  sc.fpstate = args_at + lt.xsave;
  f->uc.sigmask = th.blocked;
  return ok_status();
}

// Credentials for the restorer; the groups go to `groups_at` in the args.
void fill_creds(RestoreCreds& r, const Creds& c, char* base, uint64_t groups_at, bool restore) {
  r.restore = restore;
  for (int i = 0; i < 4; i++) {
    r.uids[i] = c.uids[i];
    r.gids[i] = c.gids[i];
  }
  r.groups_off = groups_at;
  r.nr_groups = static_cast<uint32_t>(c.groups.size());
  copy_in(base + groups_at, c.groups.data(), c.groups.size() * 4);
  r.cap_inh = c.cap_inh;
  r.cap_prm = c.cap_prm;
  r.cap_eff = c.cap_eff;
  r.cap_bnd = c.cap_bnd;
  r.cap_amb = c.cap_amb;
  r.securebits = c.securebits;
  r.no_new_privs = c.no_new_privs;
}

void fill_siginfo(RestoreSiginfo& s, const Bytes& info, bool shared) {
  s.shared = shared;
  memcpy(&s.sig, info.data.data(), 4);  // si_signo
  memcpy(s.info, info.data.data(), 128);
}

// cr-restore's own capability sets (capget, version 3: 64 bits each).
struct CapSets {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};
Result<CapSets> own_caps() {
  struct {
    uint32_t version;
    int pid;
  } hdr = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return make_errno(errno, "capget");
  auto cap64 = [&](uint32_t lo, uint32_t hi) { return (uint64_t(hi) << 32) | lo; };
  return CapSets{cap64(data[0].effective, data[1].effective), cap64(data[0].permitted, data[1].permitted),
                 cap64(data[0].inheritable, data[1].inheritable)};
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
  auto caps = own_caps();
  if (!caps) return false;
  // The bounding and ambient sets, securebits and no_new_privs as well.
  for (int cap = 0; cap < 64; cap++) {
    int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in < 0) break;
    if (bool(in) != bool(c.cap_bnd & (1ull << cap))) return false;
    if (bool(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) != bool(c.cap_amb & (1ull << cap)))
      return false;
  }
  if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != static_cast<int>(c.securebits)) return false;
  if (bool(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) != c.no_new_privs) return false;
  return caps->effective == c.cap_eff && caps->permitted == c.cap_prm && caps->inheritable == c.cap_inh;
}

}  // namespace

Status check_creds_allowed(const SetImages& imgs) {
  uid_t r, e, sv;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &sv);
  getresgid(&gr, &ge, &gs);
  const uint64_t mine = TRY(own_caps()).permitted;
  // With CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN (root, as a restore
  // needs anyway) every recorded identity can be given; else only ours.
  const uint64_t kAll = (1ull << 6) | (1ull << 7) | (1ull << 21);
  if ((mine & kAll) == kAll) return ok_status();
  std::vector<gid_t> groups(getgroups(0, nullptr) + 1);
  int ng = getgroups(static_cast<int>(groups.size()), groups.data());
  groups.resize(ng > 0 ? ng : 0);
  auto check = [&](int64_t pid, const Creds& c) -> Status {
    bool ok = true;
    for (uint32_t u : c.uids) ok &= u == r || u == e || u == sv;
    for (uint32_t g : c.gids) ok &= g == gr || g == ge || g == gs;
    for (uint32_t g : c.groups) ok &= std::find(groups.begin(), groups.end(), g) != groups.end();
    ok &= !(c.cap_prm & ~mine) && !(c.cap_eff & ~mine) && !(c.cap_amb & ~mine) && !(c.cap_inh & ~mine);
    if (ok) return ok_status();
    Error err = make_pid_error(static_cast<pid_t>(pid), EPERM,
                               "ran with credentials cr-restore cannot give (uid %u, gid %u, capabilities %#llx; "
                               "cr-restore has uid %u, capabilities %#llx): not restored",
                               c.uids.empty() ? 0 : c.uids[1], c.gids.empty() ? 0 : c.gids[1],
                               (unsigned long long)c.cap_prm, e, (unsigned long long)mine);
    err.remedy = "restore as root";
    return err;
  };
  for (auto& t : imgs.tasks) {
    if (t.entry.zombie) continue;
    TRY_STATUS(check(t.entry.pid, t.core.creds));
    for (auto& th : t.core.threads)
      if (th.own_creds) TRY_STATUS(check(t.entry.pid, th.creds));
  }
  return ok_status();
}

namespace {

// The online CPUs (/sys/devices/system/cpu/online: "0-3,6"), 64 to a word.
std::vector<uint64_t> online_cpus() {
  std::vector<uint64_t> m;
  FILE* f = fopen("/sys/devices/system/cpu/online", "re");
  if (!f) return m;
  char buf[4096] = "";
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  for (char* p = buf; *p && *p != '\n';) {
    char* e;
    unsigned long a = strtoul(p, &e, 10), b = a;
    if (e == p) break;
    if (*e == '-') b = strtoul(e + 1, &e, 10);
    for (unsigned long c = a; c <= b && c < 64 * 128; c++) {
      if (m.size() <= c / 64) m.resize(c / 64 + 1, 0);
      m[c / 64] |= 1ull << (c % 64);
    }
    p = *e == ',' ? e + 1 : e;
  }
  return m;
}

}  // namespace

Status check_core_here(const SetImages& imgs) {
  constexpr int kCapSysResource = 24;
  const uint64_t last_cap = read_sys_u64("/proc/sys/kernel/cap_last_cap", 40);
  const uint64_t known_caps = last_cap >= 63 ? ~0ull : (2ull << last_cap) - 1;
  const uint64_t nr_open = read_sys_u64("/proc/sys/fs/nr_open", 1048576);
  const CapSets mine = TRY(own_caps());
  const std::vector<uint64_t> online = online_cpus();
  // The XSAVE features a task may use here (as take_xcomp_perm will ask).
  uint64_t perm = 0, supp = 0;
  const bool dyn = syscall(SYS_arch_prctl, uapi::kArchGetXcompPerm, &perm) == 0 &&
                   syscall(SYS_arch_prctl, kArchGetXcompSupp, &supp) == 0;
  for (const TaskImages& t : imgs.tasks) {
    if (t.entry.zombie) continue;
    const Core& c = t.core;
    const std::string cn = image_name(ImageKind::Core, t.entry.pid);
    const char* f = cn.c_str();
    // Capabilities this kernel knows (capset refuses others).
    auto caps_known = [&](const Creds& cr, long long tid) -> Status {
      for (uint64_t set : {cr.cap_eff, cr.cap_prm, cr.cap_inh, cr.cap_amb})
        if (set & ~known_caps)
          return make_error("%s: thread %lld: credentials: capabilities %#llx beyond this kernel's last (%llu)", f,
                            tid, (unsigned long long)set, (unsigned long long)last_cap);
      return ok_status();
    };
    TRY_STATUS(caps_known(c.creds, static_cast<long long>(c.pid)));
    // The dynamic XSAVE features it had been granted (take_xcomp_perm asks
    // for each): ones this machine supports.
    const uint64_t dyn_perm = c.xcomp_perm & ~((1ull << uapi::XFEATURE_XTILE_DATA) - 1);
    if (dyn && (dyn_perm & ~(supp | perm)))
      return make_error("%s: xcomp_perm %#llx: XSAVE features %#llx that this machine does not grant", f,
                        (unsigned long long)c.xcomp_perm, (unsigned long long)(dyn_perm & ~(supp | perm)));
    // Limits: a hard limit above cr-restore's needs CAP_SYS_RESOURCE (which
    // root lacks on some machines), and fs.nr_open bounds RLIMIT_NOFILE.
    for (auto& r : c.rlimits) {
      struct rlimit own;
      if (getrlimit(static_cast<__rlimit_resource>(r.resource), &own) < 0) continue;
      if (!(mine.effective & (1ull << kCapSysResource)) && r.max > own.rlim_max)
        return make_error("%s: rlimit %d: hard limit %llu is above cr-restore's %llu, and raising it needs "
                          "CAP_SYS_RESOURCE", f, r.resource, (unsigned long long)r.max,
                          (unsigned long long)own.rlim_max);
      if (r.resource == RLIMIT_NOFILE && r.max > nr_open)
        return make_error("%s: rlimit %d (RLIMIT_NOFILE): hard limit %llu is above fs.nr_open (%llu)", f,
                          r.resource, (unsigned long long)r.max, (unsigned long long)nr_open);
    }
    for (auto& th : c.threads) {
      if (th.own_creds) TRY_STATUS(caps_known(th.creds, static_cast<long long>(th.tid)));
      // sched_setaffinity wants an online CPU among the dumped ones.
      if (!th.affinity.empty() && !online.empty()) {
        bool any = false;
        for (size_t i = 0; i < th.affinity.size() && i < online.size(); i++) any |= (th.affinity[i] & online[i]) != 0;
        if (!any)
          return make_error("%s: thread %lld: affinity holds no CPU online here", f, static_cast<long long>(th.tid));
      }
      // The XSAVE state: only features this process may use here (the
      // AMX tile data never: see build_sigframe).
      uint64_t features = xcr0_features();
      if (dyn) features &= perm | (c.xcomp_perm & supp & ~((1ull << uapi::XFEATURE_XTILE_DATA) - 1));
      features = sigframe_features(features);
      uint64_t bv = 0;
      if (th.xsave.size() >= uapi::kXstateHeaderOffset + 8)
        memcpy(&bv, th.xsave.data.data() + uapi::kXstateHeaderOffset, 8);
      if (bv & ~features)
        return make_error("%s: thread %lld: its XSAVE state holds features %#llx that this CPU or process cannot "
                          "restore", f, static_cast<long long>(th.tid), (unsigned long long)(bv & ~features));
    }
  }
  return ok_status();
}

uint64_t task_args_size(const TaskImages& t) { return layout_of(t).total; }

Status fill_task_args(const TaskImages& t, const MemoryPlan& plan, int exe_fd, int log_fd) {
  const Core& c = t.core;
  const ThreadCore& th = c.threads[0];
  const uint64_t features = TRY(take_xcomp_perm(c));
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
  // Fault injection: the restorer's points count on the command's shared
  // page, mapped again (the same pages) in the args area, so that the
  // hole's unmap takes it away with the rest.
  if (FaultBlobParams f = fault_blob_params(); f.page) {
    void* at = reinterpret_cast<void*>(plan.args_at + l.fault);
    if ((plan.args_at + l.fault) % kPageSize) return make_error("restorer args at %p: not page-aligned", at);
    if (mremap(f.page, 0, kPageSize, MREMAP_MAYMOVE | MREMAP_FIXED, at) != at)
      return make_errno(errno, "cannot map the fault injection count into the restore hole at %p", at);
    a->fault_off = l.fault;
    a->fault_target = f.target;
  }

  // Process-wide pending signals; each thread's own are with the thread.
  auto* p = reinterpret_cast<RestoreSiginfo*>(base + l.pending);
  for (size_t i = 0; i < c.shared_pending.size(); i++) fill_siginfo(p[i], c.shared_pending[i], true);
  a->pending_off = l.pending;
  a->nr_pending = static_cast<uint32_t>(c.shared_pending.size());

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

  fill_creds(a->creds, c.creds, base, l.groups, !same_creds_as_self(c.creds));

  a->log_fd = log_fd;
  a->dumpable = c.dumpable;

  a->timers_off = l.timers;
  a->nr_timers = static_cast<uint32_t>(c.posix_timers.size());
  auto* tm = reinterpret_cast<RestoreTimer*>(base + l.timers);
  for (size_t i = 0; i < c.posix_timers.size(); i++) {
    const PosixTimerRec& p = c.posix_timers[i];
    tm[i] = {p.id, p.clock_id, p.signo, p.sigev_notify, p.notify_tid, 0, p.sigev_value, p.interval_sec,
             p.interval_nsec, p.value_sec, p.value_nsec};
    // The same kernel quirk as ITIMER_REAL above: a periodic timer whose
    // signal waits undelivered reads as value 0 (re-armed when the signal is
    // dequeued); value 0 would disarm it, so arm it for one interval.
    if (!p.value_sec && !p.value_nsec && (p.interval_sec || p.interval_nsec)) {
      tm[i].value_sec = p.interval_sec;
      tm[i].value_nsec = p.interval_nsec;
    }
  }
  a->threads_off = l.threads;
  a->nr_threads = static_cast<uint32_t>(c.threads.size());
  auto* ts = reinterpret_cast<RestoreThread*>(base + l.threads);
  for (size_t i = 0; i < c.threads.size(); i++) {
    const ThreadCore& tc = c.threads[i];
    const Layout::Thread& lt = l.thread[i];
    RestoreThread& rt = ts[i];
    rt.tid = static_cast<int32_t>(tc.tid);
    auto* tp = reinterpret_cast<RestoreSiginfo*>(base + lt.pending);
    for (size_t k = 0; k < tc.pending.size(); k++) fill_siginfo(tp[k], tc.pending[k], false);
    rt.pending_off = lt.pending;
    rt.nr_pending = static_cast<uint32_t>(tc.pending.size());
    rt.stack_top = i ? plan.args_at + lt.stack_top : 0;
    rt.rseq_ptr = tc.rseq_ptr;
    rt.rseq_len = tc.rseq_len;
    rt.rseq_sig = tc.rseq_sig;
    rt.robust_list = tc.robust_list;
    rt.robust_list_len = tc.robust_list_len;
    rt.clear_child_tid = tc.clear_child_tid;
    rt.fs_base = tc.regs.fs_base;
    rt.gs_base = tc.regs.gs_base;
    rt.sched_policy = tc.sched_policy;
    rt.sched_priority = tc.sched_priority;
    rt.sched_flags = tc.sched_flags;
    rt.nice = tc.nice;
    rt.nr_affinity = static_cast<uint32_t>(std::min<size_t>(tc.affinity.size(), 16));
    copy_in(reinterpret_cast<char*>(rt.affinity), tc.affinity.data(), rt.nr_affinity * 8);
    strncpy(rt.comm, tc.comm.empty() ? c.comm.c_str() : tc.comm.c_str(), sizeof rt.comm - 1);
    TRY_STATUS(build_sigframe(tc, base, plan.args_at, lt, features));
    rt.own_creds = tc.own_creds;
    if (tc.own_creds) fill_creds(rt.creds, tc.creds, base, lt.groups, true);
    rt.seccomp_mode = tc.seccomp_mode;
    rt.nr_filters = static_cast<uint32_t>(tc.seccomp_filters.size());
    rt.filters_off = lt.filters;
    auto* sf = reinterpret_cast<RestoreSeccompFilter*>(base + lt.filters);
    for (size_t k = 0; k < tc.seccomp_filters.size(); k++) {
      const SeccompFilterRec& fr = tc.seccomp_filters[k];
      sf[k] = {fr.flags, lt.progs[k], static_cast<uint32_t>(fr.prog.size() / 8), 0};
      copy_in(base + lt.progs[k], fr.prog.data.data(), fr.prog.size());
    }
    rt.sigframe_sp = plan.args_at + lt.frame + offsetof(KRtSigframe, uc);
  }
  return ok_status();
}

}  // namespace cr
