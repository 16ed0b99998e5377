#include "common/image/task_images.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <set>

namespace cr {

namespace {
unsigned long long ull(uint64_t v) { return v; }

bool known_vma_kind(const std::string& k) {
  for (const char* n : {"anon", "file", "shmem", "sysv", "heap", "stack", "vdso", "vvar", "vsyscall"})
    if (k == n) return true;
  return false;
}

constexpr uint64_t kUserCs = 0x33, kUserDs = 0x2b;  // __USER_CS, __USER_DS
constexpr uint64_t kSchedFlagResetOnFork = 1;
constexpr uint32_t kSecureAllBits = 0x555, kSecureAllLocks = 0xaaa;  // securebits.h (6.14: exec bits)
constexpr uint32_t kSecbitNoCapAmbientRaise = 1u << 6;
constexpr int kCapSetpcap = 8;
constexpr uint64_t kMinSigStkSz = 2048;  // the kernel's MINSIGSTKSZ (glibc's may be a sysconf call)

// The capability sets and securebits as the restorer gives them: capset
// takes an effective set inside the permitted one and an inheritable one
// inside the bounding set (dropped first); PR_CAP_AMBIENT_RAISE a
// permitted and inheritable capability, and not under
// SECBIT_NO_CAP_AMBIENT_RAISE; PR_SET_SECUREBITS known bits, and locked
// ones only with CAP_SETPCAP left.
Status validate_creds(const Creds& c, const std::string& file, int64_t tid) {
  const char* f = file.c_str();
  auto bad = [&](const char* why) {
    return make_error("%s: thread %lld: credentials: %s (effective %#llx, permitted %#llx, inheritable %#llx, "
                      "bounding %#llx, ambient %#llx, securebits %#x)", f, (long long)tid, why, ull(c.cap_eff),
                      ull(c.cap_prm), ull(c.cap_inh), ull(c.cap_bnd), ull(c.cap_amb), c.securebits);
  };
  if (c.cap_eff & ~c.cap_prm) return bad("cap_eff is not inside cap_prm");
  if (c.cap_inh & ~c.cap_bnd) return bad("cap_inh is not inside cap_bnd");
  if (c.cap_amb & ~(c.cap_prm & c.cap_inh)) return bad("cap_amb is not inside cap_prm and cap_inh");
  if (c.securebits & ~(kSecureAllBits | kSecureAllLocks)) return bad("securebits has unknown bits");
  if (c.cap_amb && (c.securebits & kSecbitNoCapAmbientRaise))
    return bad("cap_amb with SECBIT_NO_CAP_AMBIENT_RAISE");
  if ((c.securebits & kSecureAllLocks) && !(c.cap_eff & (1ull << kCapSetpcap)))
    return bad("locked securebits without CAP_SETPCAP to set them");
  return ok_status();
}

// A queued siginfo: its signal number (si_signo, the first int) 1..64.
Status validate_siginfo(const Bytes& info, const std::string& file, int64_t tid) {
  int32_t sig = 0;
  if (info.size() >= 4) memcpy(&sig, info.data.data(), 4);
  if (sig < 1 || sig > 64)
    return make_error("%s: thread %lld: a pending signal with si_signo %d", file.c_str(), (long long)tid, sig);
  return ok_status();
}

bool known_vmflag(const std::string& f) {
  for (const char* n : {"dc", "dd", "wf", "hg", "nh", "mg", "sr", "rr"})
    if (f == n) return true;
  return false;
}
}  // namespace

Status validate_core(const Core& c, const std::string& file) {
  const char* f = file.c_str();
  if (c.pid <= 0 || c.pid > (1 << 22)) return make_error("%s: bad pid %lld", f, (long long)c.pid);
  if (c.threads.empty()) return make_error("%s: no threads", f);
  if (c.threads.size() > 65536) return make_error("%s: too many threads", f);
  if (c.threads[0].tid != c.pid) return make_error("%s: the first thread is not the leader", f);
  for (auto& t : c.threads) {
    if (t.xsave.size() < 576 || t.xsave.size() > 65536)
      return make_error("%s: thread %lld: xsave area of %zu bytes", f, (long long)t.tid, t.xsave.size());
    for (auto& p : t.pending)
      if (p.size() != 128) return make_error("%s: thread %lld: siginfo of %zu bytes", f, (long long)t.tid, p.size());
    if (t.pending.size() > 1 << 16) return make_error("%s: too many pending signals", f);
    if (t.regs.rip >= kTaskSizeMax || t.regs.rsp >= kTaskSizeMax)
      return make_error("%s: thread %lld: rip/rsp outside user space", f, (long long)t.tid);
    // What the restorer's own system calls take (a value they refuse would
    // fail the restore only after the tree exists).
    // rt_sigreturn: a 64-bit user code and stack segment (__USER_CS,
    // __USER_DS); any other ss kills the task with SIGSEGV.
    if (t.regs.cs != kUserCs || t.regs.ss != kUserDs)
      return make_error("%s: thread %lld: segment cs %#llx / ss %#llx: not 64-bit user segments (cs 0x33, ss 0x2b)",
                        f, (long long)t.tid, ull(t.regs.cs), ull(t.regs.ss));
    // arch_prctl ARCH_SET_FS/GS: EPERM at or above TASK_SIZE_MAX.
    if (t.regs.fs_base >= kTaskSizeMax || t.regs.gs_base >= kTaskSizeMax)
      return make_error("%s: thread %lld: fs_base %#llx / gs_base %#llx outside user space", f, (long long)t.tid,
                        ull(t.regs.fs_base), ull(t.regs.gs_base));
    // rseq: an area aligned to 32 bytes, 32 bytes long or a larger multiple.
    if (t.rseq_ptr && (t.rseq_ptr % 32 || t.rseq_len < 32 || t.rseq_len % 32 || t.rseq_ptr >= kTaskSizeMax ||
                       kTaskSizeMax - t.rseq_ptr < t.rseq_len))
      return make_error("%s: thread %lld: rseq area %#llx of %u bytes: not one the kernel registers", f,
                        (long long)t.tid, ull(t.rseq_ptr), t.rseq_len);
    // set_robust_list takes exactly sizeof(struct robust_list_head).
    if (t.robust_list_len != 24 || t.robust_list >= kTaskSizeMax || t.clear_child_tid >= kTaskSizeMax)
      return make_error("%s: thread %lld: robust list %#llx of %llu bytes or clear_child_tid %#llx: bad", f,
                        (long long)t.tid, ull(t.robust_list), ull(t.robust_list_len), ull(t.clear_child_tid));
    // sigaltstack: SS_DISABLE or enabled (SS_ONSTACK is a state), maybe
    // with SS_AUTODISARM; an enabled one of at least MINSIGSTKSZ.
    {
      const uint32_t mode = static_cast<uint32_t>(t.altstack_flags) & ~(1u << 31);
      if ((mode != 0 && mode != SS_ONSTACK && mode != SS_DISABLE) ||
          (mode != SS_DISABLE && (t.altstack_size < kMinSigStkSz || t.altstack_sp >= kTaskSizeMax)))
        return make_error("%s: thread %lld: sigaltstack %#llx of %llu bytes, flags %#x: bad", f, (long long)t.tid,
                          ull(t.altstack_sp), ull(t.altstack_size), (unsigned)t.altstack_flags);
    }
    if (t.comm.size() > 15) return make_error("%s: thread name too long", f);
    // SCHED_OTHER, FIFO, RR, BATCH or IDLE (the dump refuses DEADLINE); a
    // real-time priority for FIFO and RR only; reset-on-fork the one flag.
    const bool rt = t.sched_policy == SCHED_FIFO || t.sched_policy == SCHED_RR;
    if (t.sched_policy < 0 || t.sched_policy > 5 || t.sched_policy == 4 ||
        (rt ? t.sched_priority < 1 || t.sched_priority > 99 : t.sched_priority != 0))
      return make_error("%s: thread %lld: bad scheduling settings: sched_policy %d with sched_priority %d", f, (long long)t.tid,
                        t.sched_policy, t.sched_priority);
    if (t.sched_flags & ~kSchedFlagResetOnFork)
      return make_error("%s: thread %lld: bad scheduling settings: unknown sched_flags %#llx", f, (long long)t.tid, ull(t.sched_flags));
    if (t.nice < -20 || t.nice > 19) return make_error("%s: thread %lld: bad scheduling settings: nice %d", f, (long long)t.tid, t.nice);
    if (t.affinity.size() > 128) return make_error("%s: thread %lld: bad scheduling settings: affinity of %zu words", f, (long long)t.tid, t.affinity.size());
    if (!t.affinity.empty() && std::all_of(t.affinity.begin(), t.affinity.end(), [](uint64_t w) { return w == 0; }))
      return make_error("%s: thread %lld: bad scheduling settings: affinity holds no CPU", f, (long long)t.tid);
    if (t.own_creds && (t.creds.uids.size() != 4 || t.creds.gids.size() != 4 || t.creds.groups.size() > 65536))
      return make_error("%s: thread %lld: bad credentials", f, (long long)t.tid);
    if (t.own_creds) TRY_STATUS(validate_creds(t.creds, file, t.tid));
    for (auto& p : t.pending) TRY_STATUS(validate_siginfo(p, file, t.tid));
    if (t.seccomp_mode < 0 || t.seccomp_mode > 2 || (t.seccomp_mode != 2 && !t.seccomp_filters.empty()) ||
        t.seccomp_filters.size() > 512)
      return make_error("%s: thread %lld: bad seccomp state", f, (long long)t.tid);
    for (auto& sf : t.seccomp_filters)
      if (sf.prog.empty() || sf.prog.size() % 8 || sf.prog.size() > 4096 * 8)
        return make_error("%s: thread %lld: bad seccomp filter of %zu bytes", f, (long long)t.tid, sf.prog.size());
  }
  if (c.comm.size() > 15) return make_error("%s: comm too long", f);
  std::set<int> sigs;
  for (auto& s : c.sigactions) {
    if (s.sig < 1 || s.sig > 64 || s.sig == SIGKILL || s.sig == SIGSTOP || !sigs.insert(s.sig).second)
      return make_error("%s: bad sigaction for signal %d", f, s.sig);
  }
  for (auto& t : c.itimers)
    if (t.which < 0 || t.which > 2 || t.interval_usec < 0 || t.interval_usec >= 1000000 || t.value_usec < 0 ||
        t.value_usec >= 1000000 || t.interval_sec < 0 || t.value_sec < 0)
      return make_error("%s: bad itimer %d", f, t.which);
  std::set<int> timer_ids;
  for (auto& t : c.posix_timers) {
    bool notify_ok = (t.sigev_notify >= 0 && t.sigev_notify <= 2) || t.sigev_notify == 4;
    // timer_create: the clocks it takes (not the raw and coarse ones),
    // a signal to send unless SIGEV_NONE, a thread of the task to send it
    // to with SIGEV_THREAD_ID.
    const bool clock_ok = t.clock_id <= 3 || t.clock_id == 7 || t.clock_id == 8 || t.clock_id == 9 ||
                          t.clock_id == 11;
    bool tid_ok = t.sigev_notify != 4;
    for (auto& th : c.threads) tid_ok |= th.tid == t.notify_tid;
    if (!clock_ok || !tid_ok || (t.sigev_notify != 1 && t.signo < 1))
      return make_error("%s: POSIX timer %d: clock %d, signal %d, notify %d (thread %d): not one timer_create takes", f,
                        t.id, t.clock_id, t.signo, t.sigev_notify, t.notify_tid);
    if (t.id < 0 || !timer_ids.insert(t.id).second || t.clock_id < 0 || t.clock_id > 11 || t.signo < 0 ||
        t.signo > 64 || !notify_ok || t.interval_sec < 0 || t.value_sec < 0 || t.interval_nsec < 0 ||
        t.interval_nsec >= 1000000000 || t.value_nsec < 0 || t.value_nsec >= 1000000000)
      return make_error("%s: bad POSIX timer %d", f, t.id);
  }
  if (c.posix_timers.size() > 65536) return make_error("%s: too many POSIX timers", f);
  for (auto& r : c.rlimits)
    if (r.resource < 0 || r.resource >= RLIM_NLIMITS || r.cur > r.max)
      return make_error("%s: bad rlimit %d", f, r.resource);
  for (auto& p : c.shared_pending) {
    if (p.size() != 128) return make_error("%s: siginfo of %zu bytes", f, p.size());
    TRY_STATUS(validate_siginfo(p, file, c.pid));
  }
  if (c.creds.uids.size() != 4 || c.creds.gids.size() != 4) return make_error("%s: credentials need 4 uids and 4 gids", f);
  TRY_STATUS(validate_creds(c.creds, file, c.pid));
  if (c.creds.groups.size() > 65536) return make_error("%s: too many groups", f);
  if (c.cwd.empty() || c.cwd[0] != '/' || c.root.empty() || c.root[0] != '/')
    return make_error("%s: cwd and root must be absolute paths", f);
  if (c.umask > 0777) return make_error("%s: bad umask", f);
  if (c.dumpable < 0 || c.dumpable > 2) return make_error("%s: bad dumpable value %d", f, c.dumpable);
  return ok_status();
}

Status validate_mm(const Mm& mm, const std::string& file) {
  const char* f = file.c_str();
  uint64_t prev = 0;
  for (size_t i = 0; i < mm.vmas.size(); i++) {
    const auto& v = mm.vmas[i];
    if (v.start % kPageSize || v.end % kPageSize || v.start >= v.end || v.start < prev)
      return make_error("%s: vma %zu: bad range %#llx-%#llx", f, i, ull(v.start), ull(v.end));
    if (!known_vma_kind(v.kind)) return make_error("%s: vma %zu: unknown kind '%s'", f, i, v.kind.c_str());
    if (v.kind != "vsyscall" && v.end > kTaskSizeMax)
      return make_error("%s: vma %zu: %#llx is outside user space", f, i, ull(v.start));
    if (v.prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return make_error("%s: vma %zu: bad protection", f, i);
    if (v.kind == "file" && (v.name.empty() || v.name[0] != '/'))
      return make_error("%s: vma %zu: file mapping without an absolute path", f, i);
    if (v.pgoff % kPageSize || v.pgoff > (1ull << 62)) return make_error("%s: vma %zu: bad file offset pgoff %#llx", f, i, ull(v.pgoff));
    for (auto& fl : v.vmflags)
      if (!known_vmflag(fl)) return make_error("%s: vma %zu: unknown VmFlag '%s'", f, i, fl.c_str());
    if (v.kind != "vsyscall") prev = v.end;
  }
  if (mm.auxv.size() % 16 || mm.auxv.size() > 4096) return make_error("%s: bad auxv size %zu", f, mm.auxv.size());
  // What PR_SET_MM_MAP checks (kernel/sys.c validate_prctl_map_addr):
  // every field below TASK_SIZE (and at or above vm.mmap_min_addr, which
  // cr-restore checks on the machine), the pairs ordered, start_code
  // strictly below end_code.
  const struct {
    const char* name;
    uint64_t v;
  } fields[] = {{"start_code", mm.start_code}, {"end_code", mm.end_code},   {"start_data", mm.start_data},
                {"end_data", mm.end_data},     {"start_brk", mm.start_brk}, {"brk", mm.brk},
                {"start_stack", mm.start_stack}, {"arg_start", mm.arg_start}, {"arg_end", mm.arg_end},
                {"env_start", mm.env_start},   {"env_end", mm.env_end}};
  for (auto& fl : fields)
    if (fl.v >= kTaskSizeMax) return make_error("%s: mm field %s %#llx is outside user space", f, fl.name, ull(fl.v));
  auto order = [&](const char* a, uint64_t va, const char* b, uint64_t vb, bool strict) -> Status {
    if (strict ? va < vb : va <= vb) return ok_status();
    return make_error("%s: mm field %s %#llx is %s %s %#llx", f, a, ull(va), strict ? "not below" : "above", b,
                      ull(vb));
  };
  TRY_STATUS(order("start_code", mm.start_code, "end_code", mm.end_code, true));
  TRY_STATUS(order("start_data", mm.start_data, "end_data", mm.end_data, false));
  TRY_STATUS(order("start_brk", mm.start_brk, "brk", mm.brk, false));
  TRY_STATUS(order("arg_start", mm.arg_start, "arg_end", mm.arg_end, false));
  TRY_STATUS(order("env_start", mm.env_start, "env_end", mm.env_end, false));
  if (mm.exe.empty() || mm.exe[0] != '/') return make_error("%s: no executable path", f);
  // PR_SET_MM_MAP refuses an executable open for writing (EACCES): a
  // shared writable mapping of it would hold it so.
  for (size_t i = 0; i < mm.vmas.size(); i++) {
    const auto& v = mm.vmas[i];
    if (v.kind == "file" && v.shared && v.may_write && v.dev == mm.exe_dev && v.ino == mm.exe_ino)
      return make_error("%s: vma %zu: a shared writable mapping of the executable %s", f, i, mm.exe.c_str());
  }
  return ok_status();
}

Status validate_sysv_shm(const Files& files) {
  std::set<int32_t> ids, keys;
  for (auto& m : files.sysv_shm) {
    auto bad = [&](const char* why) {
      return make_error("files.img: SysV shared memory segment %d (key %#x): %s", m.id, (unsigned)m.key, why);
    };
    if (m.id < 0 || !ids.insert(m.id).second) return bad("bad or duplicate id");
    if (m.key != 0 && !keys.insert(m.key).second) return bad("its key is another segment's too");
    if (m.mode & ~(0777u | kSysvShmDest | kSysvShmLocked)) return bad("unknown mode bits");
    if ((m.mode & kSysvShmDest) && m.key != 0) return bad("removed (SHM_DEST) but not IPC_PRIVATE");
    for (uint32_t u : {m.uid, m.gid, m.cuid, m.cgid})
      if (u == ~0u) return bad("owner or creator is (uid_t)-1");
    if (m.size == 0 || m.size > kMaxShmemSize) return bad("bad size");
    if (m.pages != sysv_pagemap_name(m.id)) return bad("its pages are not in its own page image");
  }
  return ok_status();
}

Status validate_shmem(const Files& files) {
  std::set<uint64_t> ids;
  for (auto& m : files.shmem) {
    auto bad = [&](const char* why) {
      return make_error("files.img: shared memory object %llu: %s", ull(m.id), why);
    };
    if (!ids.insert(m.id).second) return bad("duplicate id");
    if (m.size > kMaxShmemSize) return bad("larger than 1 TiB");
    if (m.pages != shmem_pagemap_name(m.id)) return bad("its pages are not in its own page image");
    if (!m.path.empty() && (m.path[0] != '/' || m.path.size() > 4096)) return bad("bad path");
  }
  return ok_status();
}

Status validate_object_pages(const ImageSet& set, const Files& files, bool verify_pages) {
  auto check = [&](const std::string& name, uint64_t size) -> Status {
    auto pr = TRY(PageReader::open_pagemap(set, name));
    TRY_STATUS(validate_object_pagemap(pr->pagemap(), name, size));
    if (verify_pages) TRY_STATUS(pr->verify());
    return ok_status();
  };
  for (auto& m : files.shmem) TRY_STATUS(check(m.pages, m.size));
  for (auto& m : files.sysv_shm) TRY_STATUS(check(m.pages, m.size));
  return ok_status();
}

Status validate_vma_objects(const Mm& mm, const Files& files, const std::string& file) {
  const char* f = file.c_str();
  for (auto& v : mm.vmas) {
    if (v.kind == "shmem") {
      const ShmemRec* m = nullptr;
      for (auto& x : files.shmem)
        if (x.dev == v.dev && x.ino == v.ino) m = &x;
      // Shared, or private (a memfd: its written pages are the task's).
      if (!m || v.pgoff + (v.end - v.start) > (m->size + kPageSize - 1) / kPageSize * kPageSize)
        return make_error("%s: shared memory at %#llx: no such object or out of its bounds", f, ull(v.start));
    } else if (v.kind == "sysv") {
      const SysvShmRec* m = nullptr;
      for (auto& x : files.sysv_shm)
        if (static_cast<uint64_t>(x.id) == v.ino) m = &x;
      // One whole attach: shmat maps the segment from offset 0, rounded
      // up to pages.
      if (!v.shared || !m || v.dev != 0 || v.pgoff != 0 ||
          v.end - v.start != (m->size + kPageSize - 1) / kPageSize * kPageSize)
        return make_error("%s: SysV shared memory at %#llx: no segment %llu or not one whole attach of it", f,
                          ull(v.start), ull(v.ino));
    }
  }
  return ok_status();
}

Status validate_files(const Files& files, const FdTable& t, const std::string& file) {
  const char* f = file.c_str();
  std::set<uint64_t> ids;
  std::set<uint64_t> pipes;
  for (auto& p : files.pipes) {
    if (!pipes.insert(p.id).second) return make_error("files.img: duplicate pipe %llu", ull(p.id));
    // Capacities are powers of two from one page to 1 GiB (pipe_set_size).
    if (p.size < kPageSize || p.size > (1ull << 30) || (p.size & (p.size - 1)))
      return make_error("files.img: pipe %llu: bad capacity %llu", ull(p.id), ull(p.size));
    if (p.data.size() > p.size)
      return make_error("files.img: pipe %llu: %zu bytes do not fit its capacity", ull(p.id), p.data.size());
    if (!p.path.empty() && (p.path[0] != '/' || p.path.size() > 4096))
      return make_error("files.img: pipe %llu: FIFO path '%s' is not absolute", ull(p.id), p.path.c_str());
  }
  std::set<uint64_t> shm;
  TRY_STATUS(validate_shmem(files));
  for (auto& m : files.shmem) shm.insert(m.id);
  TRY_STATUS(validate_sysv_shm(files));
  TRY_STATUS(validate_event_fds(files));
  TRY_STATUS(validate_unix_sockets(files));
  TRY_STATUS(validate_inet_sockets(files));
  std::set<uint64_t> ghosts;
  for (auto& g : files.ghosts)
    if (!ghosts.insert(g.id).second || g.path.empty() || g.path[0] != '/' || g.data.size() > kMaxGhostSize ||
        !S_ISREG(g.mode))
      return make_error("files.img: bad or duplicate deleted file %llu", ull(g.id));
  for (auto& fr : files.files) {
    if (!ids.insert(fr.id).second) return make_error("files.img: duplicate file id %llu", ull(fr.id));
    // Open flags as fdinfo shows them (a description reopened by path
    // gets them back; eventfds and sockets have their own, checked with
    // their records): known ones, O_DIRECTORY for a directory only,
    // O_PATH for an O_PATH descriptor only.
    if (fr.type == "reg" || fr.type == "dir" || fr.type == "chr" || fr.type == "opath" || fr.type == "fifo" ||
        fr.type == "pipe" || fr.type == "memfd" || fr.type == "ghost") {
      constexpr uint64_t kKernelOLargefile = 0100000;  // fdinfo shows it; glibc's O_LARGEFILE is 0 on x86-64
      constexpr uint64_t kKnown = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
                                  O_DSYNC | O_ASYNC | O_DIRECT | kKernelOLargefile | O_DIRECTORY | O_NOFOLLOW | O_NOATIME |
                                  O_CLOEXEC | O_SYNC | O_PATH;
      if ((fr.flags & ~kKnown) || ((fr.flags & O_DIRECTORY) && fr.type != "dir" && fr.type != "opath") ||
          ((fr.flags & O_PATH) && fr.type != "opath"))
        return make_error("files.img: file %llu: flags %#llo: not open flags of a %s", ull(fr.id), ull(fr.flags),
                          fr.type.c_str());
    }
    if (fr.pos > static_cast<uint64_t>(INT64_MAX))
      return make_error("files.img: file %llu: pos %lld is negative", ull(fr.id), static_cast<long long>(fr.pos));
    if (fr.type == "eventfd" || fr.type == "signalfd" || fr.type == "timerfd" || fr.type == "epoll" ||
        fr.type == "inotify" || fr.type == "fanotify" || fr.type == "bpf-map")
      continue;
    if (fr.type == "unix" || fr.type == "inet") continue;  // validate_unix_sockets, validate_inet_sockets
    if (is_tty_type(fr.type)) continue;  // validate_ttys (with the tree, in load_set_images)
    if (fr.type == "ghost") {
      bool found = false;
      for (auto& g : files.ghosts) found |= g.id == fr.ghost_id;
      if (!found) return make_error("files.img: file %llu: no deleted file %llu", ull(fr.id), ull(fr.ghost_id));
      continue;
    }
    if (fr.type == "memfd") {
      if (!shm.count(fr.shmem_id))
        return make_error("files.img: file %llu: no shared memory object %llu", ull(fr.id), ull(fr.shmem_id));
      continue;
    }
    if (fr.type == "fifo" && (fr.path.empty() || fr.path[0] != '/'))
      return make_error("files.img: file %llu: FIFO path is not absolute", ull(fr.id));
    if (fr.type == "pipe" || fr.type == "fifo") {
      if (!pipes.count(fr.pipe_id))
        return make_error("files.img: file %llu: no pipe %llu", ull(fr.id), ull(fr.pipe_id));
      int acc = static_cast<int>(fr.flags & O_ACCMODE);
      if (acc != O_RDONLY && acc != O_WRONLY)
        return make_error("files.img: file %llu: a pipe end is read or write only", ull(fr.id));
      continue;
    }
    if (fr.type != "reg" && fr.type != "dir" && fr.type != "chr" && fr.type != "opath")
      return make_error("files.img: file %llu: unknown type '%s'", ull(fr.id), fr.type.c_str());
    if (fr.path.empty() || fr.path[0] != '/')
      return make_error("files.img: file %llu: path is not absolute", ull(fr.id));
  }
  std::set<int> fds;
  std::map<int, uint64_t> file_at;
  for (auto& d : t.fds) {
    if (d.fd < 0 || d.fd >= (1 << 20) || !fds.insert(d.fd).second) return make_error("%s: bad fd %d", f, d.fd);
    if (!ids.count(d.file_id)) return make_error("%s: fd %d: no file %llu in files.img", f, d.fd, ull(d.file_id));
    file_at[d.fd] = d.file_id;
  }
  // Locks: known kinds, and a POSIX lock set through one of this task's fds.
  auto bad_lock = [](const FileLockRec& l) {
    return (l.kind != "flock" && l.kind != "posix" && l.kind != "ofd") || l.start > (1ull << 62) ||
           l.len > (1ull << 62) || (l.kind == "flock" && (l.start || l.len));
  };
  for (auto& fr : files.files)
    for (auto& l : fr.locks)
      if (bad_lock(l) || l.kind == "posix") return make_error("files.img: file %llu: bad lock", ull(fr.id));
  for (auto& l : t.posix_locks)
    if (bad_lock(l) || l.kind != "posix" || !file_at.count(l.fd))
      return make_error("%s: bad POSIX lock through fd %d", f, l.fd);
  // The epoll instances this task registers again: it holds each one and
  // each target at its registered number.
  for (auto& ep : files.epolls) {
    if (ep.pid != t.pid) continue;
    bool holds = false;
    for (auto& d : t.fds) holds |= d.file_id == ep.file_id;
    if (!holds) return make_error("%s: epoll %llu is not held by pid %lld", f, ull(ep.file_id), (long long)t.pid);
    for (auto& tg : ep.targets) {
      auto it = file_at.find(tg.fd);
      if (it == file_at.end() || it->second != tg.file_id)
        return make_error("%s: epoll %llu: target fd %d is not file %llu", f, ull(ep.file_id), tg.fd,
                          ull(tg.file_id));
    }
  }
  return ok_status();
}

Status validate_event_fds(const Files& files) {
  std::map<uint64_t, std::string> type_of;
  for (auto& fr : files.files) type_of[fr.id] = fr.type;
  std::map<uint64_t, int> records;  // file id -> records naming it
  auto check = [&](uint64_t id, const char* type) -> Status {
    auto it = type_of.find(id);
    if (it == type_of.end() || it->second != type)
      return make_error("files.img: %s record for file %llu, which is no %s", type, ull(id), type);
    if (++records[id] > 1) return make_error("files.img: file %llu: two %s records", ull(id), type);
    return ok_status();
  };
  for (auto& e : files.eventfds) {
    TRY_STATUS(check(e.file_id, "eventfd"));
    if (e.count == ~0ull) return make_error("files.img: eventfd %llu: bad count", ull(e.file_id));
  }
  for (auto& s : files.signalfds) TRY_STATUS(check(s.file_id, "signalfd"));
  for (auto& t : files.timerfds) {
    TRY_STATUS(check(t.file_id, "timerfd"));
    bool clock_ok = t.clockid == CLOCK_REALTIME || t.clockid == CLOCK_MONOTONIC || t.clockid == CLOCK_BOOTTIME ||
                    t.clockid == CLOCK_REALTIME_ALARM || t.clockid == CLOCK_BOOTTIME_ALARM;
    if (!clock_ok || (t.settime_flags & ~3) || t.value_sec < 0 || t.interval_sec < 0 || t.value_nsec < 0 ||
        t.interval_nsec < 0 || t.value_nsec >= 1000000000 || t.interval_nsec >= 1000000000)
      return make_error("files.img: timerfd %llu: bad clock, flags or time", ull(t.file_id));
  }
  for (auto& ep : files.epolls) {
    TRY_STATUS(check(ep.file_id, "epoll"));
    if (ep.pid <= 0 || ep.pid > (1 << 22) || ep.targets.size() > (1u << 20))
      return make_error("files.img: epoll %llu: bad pid or target count", ull(ep.file_id));
    for (auto& tg : ep.targets)
      if (tg.fd < 0 || !type_of.count(tg.file_id))
        return make_error("files.img: epoll %llu: bad target fd %d", ull(ep.file_id), tg.fd);
  }
  for (auto& in : files.inotifies) {
    TRY_STATUS(check(in.file_id, "inotify"));
    std::set<int32_t> wds;
    for (auto& w : in.watches)
      if (w.wd <= 0 || w.wd > (1 << 20) || !wds.insert(w.wd).second || w.path.empty() || w.path[0] != '/')
        return make_error("files.img: inotify %llu: bad watch %d", ull(in.file_id), w.wd);
  }
  for (auto& fa : files.fanotifies) {
    TRY_STATUS(check(fa.file_id, "fanotify"));
    if (fa.marks.size() > (1u << 16)) return make_error("files.img: fanotify %llu: too many marks", ull(fa.file_id));
    for (auto& m : fa.marks)
      if ((m.kind != "inode" && m.kind != "mount" && m.kind != "filesystem") || m.path.empty() || m.path[0] != '/' ||
          m.mask > 0xffffffffull || m.ignored_mask > 0xffffffffull || (!m.mask && !m.ignored_mask))
        return make_error("files.img: fanotify %llu: bad mark on '%s'", ull(fa.file_id), m.path.c_str());
  }
  for (auto& m : files.bpf_maps) {
    TRY_STATUS(check(m.file_id, "bpf-map"));
    if ((m.map_type != 1 /* HASH */ && m.map_type != 2 /* ARRAY */) || m.key_size == 0 || m.key_size > 512 ||
        m.value_size == 0 || m.value_size > (1u << 20) || m.max_entries == 0 || m.entries.size() > m.max_entries ||
        m.name.size() > 15)
      return make_error("files.img: BPF map %llu: bad type, sizes or entry count", ull(m.file_id));
    for (auto& e : m.entries)
      if (e.key.size() != m.key_size || e.value.size() != m.value_size)
        return make_error("files.img: BPF map %llu: an entry of the wrong size", ull(m.file_id));
  }
  for (auto& [id, type] : type_of)
    if ((type == "eventfd" || type == "signalfd" || type == "timerfd" || type == "epoll" || type == "inotify" ||
         type == "fanotify" || type == "bpf-map") &&
        !records.count(id))
      return make_error("files.img: %s %llu has no record of its state", type.c_str(), ull(id));
  return ok_status();
}

Status validate_pstree(const Pstree& t) {
  if (t.tasks.empty() || t.tasks[0].pid != t.root_pid) return make_error("pstree.img: the first task is not the root");
  // The tree: unique pids and tids, parents before children, the root
  // first; a zombie has no threads and no children.
  std::set<int64_t> pids, zombies;
  for (size_t i = 0; i < t.tasks.size(); i++) {
    const auto& e = t.tasks[i];
    auto bad = [&](const char* why) {
      return make_error("pstree.img: task %zu (pid %lld): %s", i, (long long)e.pid, why);
    };
    if (e.pid <= 0 || e.pid > (1 << 22) || !pids.insert(e.pid).second) return bad("bad or duplicate pid");
    if (i == 0 ? e.ppid != 0 : !pids.count(e.ppid) || e.ppid == e.pid) return bad("parent not before it in the tree");
    if (zombies.count(e.ppid)) return bad("the child of a zombie");
    if (e.pgid <= 0 || e.sid <= 0) return bad("bad process group or session");
    if (e.shares_fs && (i == 0 || e.zombie)) return bad("shares fs information without a parent in the tree");
    if (e.shares_files && (i == 0 || e.zombie)) return bad("shares an fd table without a parent in the tree");
    if (e.zombie) {
      if (!e.threads.empty()) return bad("a zombie with threads");
      if (i == 0) return bad("the root is a zombie");
      zombies.insert(e.pid);
    } else if (e.threads.empty() || e.threads[0] != e.pid) {
      return bad("the leader is not its first thread");
    }
  }
  if (t.tasks.size() > 65536) return make_error("pstree.img: too many tasks");
  const PstreeEntry& r = t.tasks[0];
  if (t.root_session_gone && (r.sid == r.pid || pids.count(r.sid)))
    return make_error("pstree.img: the root's gone session leader %lld is in the tree", (long long)r.sid);
  if (t.root_group_gone && (!t.root_session_gone || r.pgid == r.pid || r.pgid == r.sid || pids.count(r.pgid)))
    return make_error("pstree.img: the root's gone group leader %lld is inconsistent", (long long)r.pgid);
  for (const auto& e : t.tasks)
    for (size_t k = 1; k < e.threads.size(); k++)
      if (e.threads[k] <= 0 || e.threads[k] > (1 << 22) || !pids.insert(e.threads[k]).second)
        return make_error("pstree.img: pid %lld: bad or duplicate thread id %lld", (long long)e.pid,
                          (long long)e.threads[k]);
  return ok_status();
}

Result<SetImages> load_set_images(const ImageSet& set, bool verify_pages) {
  SetImages s;
  if (!set.has(image_name(ImageKind::Inventory)))
    return make_error("%s: no inventory.img: not a complete image set", set.where().c_str());
  s.inventory = TRY(read_record<Inventory>(set, image_name(ImageKind::Inventory)));
  if (s.inventory.format != kImageFormatVersion)
    return make_error("inventory.img: image format %u is not supported", s.inventory.format);
  s.pstree = TRY(read_record<Pstree>(set, image_name(ImageKind::Pstree)));
  if (s.pstree.tasks.empty() || s.pstree.tasks[0].pid != s.pstree.root_pid)
    return make_error("pstree.img: the first task is not the root");
  if (s.pstree.root_pid != s.inventory.root_pid)
    return make_error("pstree.img: root pid %lld differs from the inventory's %lld", (long long)s.pstree.root_pid,
                      (long long)s.inventory.root_pid);
  s.files = TRY(read_record<Files>(set, image_name(ImageKind::Files)));
  // Every file of the set is checked, also those a restore does not read
  // (stats): a damaged set is refused whole, before any process exists.
  for (const auto& n : s.inventory.images)
    if (!set.has(n)) return make_error("%s: missing from the image set (listed in inventory.img)", n.c_str());
  for (const auto& n : set.names()) {
    auto f = TRY(set.open(n));
    if (f.kind_info().cbor) (void)TRY(f.decode());
    else if (verify_pages) TRY_STATUS(f.verify());
  }
  TRY_STATUS(validate_pstree(s.pstree));
  // The shared memory objects and SysV segments, with their page images.
  TRY_STATUS(validate_shmem(s.files));
  TRY_STATUS(validate_sysv_shm(s.files));
  TRY_STATUS(validate_object_pages(set, s.files, verify_pages));
  TRY_STATUS(validate_ttys(s.files, s.pstree));
  for (const auto& e : s.pstree.tasks) {
    TaskImages t;
    t.entry = e;
    if (e.zombie) {
      s.tasks.push_back(std::move(t));
      continue;
    }
    std::string cn = image_name(ImageKind::Core, e.pid), mn = image_name(ImageKind::Mm, e.pid),
                fn = image_name(ImageKind::Fdinfo, e.pid);
    t.core = TRY(read_record<Core>(set, cn));
    TRY_STATUS(validate_core(t.core, cn));
    if (t.core.pid != e.pid) return make_error("%s: pid %lld, pstree says %lld", cn.c_str(), (long long)t.core.pid, (long long)e.pid);
    if (t.core.threads.size() != e.threads.size())
      return make_error("%s: %zu threads, pstree says %zu", cn.c_str(), t.core.threads.size(), e.threads.size());
    for (size_t k = 0; k < e.threads.size(); k++)
      if (t.core.threads[k].tid != e.threads[k])
        return make_error("%s: thread %zu has tid %lld, pstree says %lld", cn.c_str(), k,
                          (long long)t.core.threads[k].tid, (long long)e.threads[k]);
    t.mm = TRY(read_record<Mm>(set, mn));
    TRY_STATUS(validate_mm(t.mm, mn));
    TRY_STATUS(validate_vma_objects(t.mm, s.files, mn));
    // Each rseq area in writable memory of the task: the kernel writes
    // it as soon as it is registered (and kills the task if it cannot).
    for (auto& th : t.core.threads) {
      if (!th.rseq_ptr) continue;
      bool in = false;
      for (auto& v : t.mm.vmas)
        in |= v.start <= th.rseq_ptr && th.rseq_ptr + th.rseq_len <= v.end && (v.prot & PROT_WRITE) &&
              (v.prot & PROT_READ);
      if (!in)
        return make_error("%s: thread %lld: rseq area %#llx is in no readable and writable mapping of %s", cn.c_str(),
                          (long long)th.tid, ull(th.rseq_ptr), mn.c_str());
    }
    t.fds = TRY(read_record<FdTable>(set, fn));
    TRY_STATUS(validate_files(s.files, t.fds, fn));
    // Every dumped page lies inside a private VMA of this task.
    auto pr = TRY(PageReader::open(set, e.pid));
    const auto& vmas = t.mm.vmas;
    size_t vi = 0;
    for (const auto& pe : pr->pagemap().entries) {
      uint64_t a = pe.vaddr, end = pe.vaddr + pe.nr_pages * kPageSize;
      while (a < end) {
        while (vi < vmas.size() && vmas[vi].end <= a) vi++;
        if (vi == vmas.size() || vmas[vi].start > a || vmas[vi].shared || vmas[vi].kind == "vdso" ||
            vmas[vi].kind == "vvar" || vmas[vi].kind == "vsyscall")
          return make_error("%s: pages at %#llx lie outside any private mapping",
                            image_name(ImageKind::Pagemap, e.pid).c_str(), ull(a));
        // A file mapping has no page past the end of its file (touching
        // one is SIGBUS; truncation drops even private copies). Size 0:
        // a device (/dev/zero), or an empty file, which has no pages.
        const auto& fv = vmas[vi];
        if (fv.kind == "file" && fv.file_size > 0 &&
            fv.pgoff + (std::min(end, fv.end) - fv.start) > (fv.file_size + kPageSize - 1) / kPageSize * kPageSize)
          return make_error("%s: vma %zu: pages at %#llx lie past the end of %s (%llu bytes, mapped from offset %llu)",
                            mn.c_str(), vi, ull(a), fv.name.c_str(), ull(fv.file_size), ull(fv.pgoff));
        a = std::min(end, vmas[vi].end);
      }
    }
    // The parent's pages: inside a private VMA that the parent (restored
    // first) has too, the same mapping, to inherit it from.
    if (!pr->pagemap().in_parent.empty()) {
      const TaskImages* parent = nullptr;
      for (auto& q : s.tasks)
        if (q.entry.pid == e.ppid && !q.entry.zombie) parent = &q;
      vi = 0;
      for (const auto& r : pr->pagemap().in_parent) {
        uint64_t a = r.vaddr, end = r.vaddr + r.nr_pages * kPageSize;
        while (a < end) {  // (a run may span adjacent VMAs)
          while (vi < vmas.size() && vmas[vi].end <= a) vi++;
          bool ok = parent && vi < vmas.size() && vmas[vi].start <= a;
          if (ok) {
            ok = false;
            for (auto& pv : parent->mm.vmas) ok |= same_private_mapping(pv, vmas[vi]);
          }
          if (!ok)
            return make_error("%s: pages at %#llx are the parent's, but the parent has no such mapping",
                              image_name(ImageKind::Pagemap, e.pid).c_str(), ull(a));
          a = std::min(end, vmas[vi].end);
        }
      }
    }
    if (verify_pages) TRY_STATUS(pr->verify());
    s.tasks.push_back(std::move(t));
  }
  for (auto& ep : s.files.epolls) {
    bool live = false;
    for (auto& t : s.tasks) live |= t.entry.pid == ep.pid && !t.entry.zombie;
    if (!live) return make_error("files.img: epoll %llu: pid %lld is not a live task of the tree", ull(ep.file_id),
                                 (long long)ep.pid);
  }
  return s;
}

}  // namespace cr
