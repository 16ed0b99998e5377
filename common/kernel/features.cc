#include "common/kernel/features.h"

#include <time.h>

#include <array>
#include <bitset>
#include <cstdlib>
#include <mutex>

#include "common/kernel/probes.h"
#include "common/log.h"

namespace cr {

namespace {

using F = Feature;
namespace p = probe;

// The feature table. Keep it in enum order; the unit test checks it, and
// man/cr-check.8 lists the same rows.
const std::vector<FeatureInfo> kTable = {
    // ------------------------------------------------------------ required
    {F::PtraceSeize, "ptrace-seize", true,
     "stop every thread of the tree for dump without a signal the task can see (PTRACE_SEIZE, "
     "PTRACE_INTERRUPT), and let it run on afterwards (PTRACE_DETACH)",
     "cr-dump cannot freeze any task: no dump is possible", p::ptrace_seize, {}},
    {F::PtraceGetsigmask, "ptrace-getsigmask", true,
     "read and set each thread's blocked-signal mask (PTRACE_GETSIGMASK, PTRACE_SETSIGMASK)",
     "dump cannot save blocked signals: a restored program would run with the wrong signal mask",
     p::ptrace_getsigmask, {F::PtraceSeize}},
    {F::PtracePeeksiginfo, "ptrace-peeksiginfo", true,
     "read the pending signals of a thread and of its process without dequeuing them (PTRACE_PEEKSIGINFO)",
     "dump would lose pending signals", p::ptrace_peeksiginfo, {F::PtraceSeize}},
    {F::PtraceRegsets, "ptrace-regsets", true,
     "read each thread's general registers and XSAVE area and set registers for parasite injection "
     "(PTRACE_GETREGSET/SETREGSET with NT_PRSTATUS and NT_X86_XSTATE)",
     "no register or FPU/vector state can be saved: no dump is possible", p::ptrace_regsets, {F::PtraceSeize}},
    {F::PtraceRseqConfig, "ptrace-rseq-config", true,
     "read each thread's registered rseq area (PTRACE_GET_RSEQ_CONFIGURATION, Linux 5.13) so restore can "
     "register it again",
     "dump fails for every thread that registered rseq (glibc 2.35 and later do so in every thread)",
     p::ptrace_rseq_config, {F::PtraceSeize}},
    {F::MapFiles, "map-files", true,
     "open the file behind each file mapping of a task, deleted files included, through /proc/PID/map_files",
     "dump cannot identify or save mapped files (every program maps its executable and libraries)",
     p::map_files, {}},
    {F::ProcPagemap, "proc-pagemap", true,
     "tell which pages of a task are present or swapped (/proc/PID/pagemap) so that dump saves only those",
     "dump cannot tell populated pages from holes", p::proc_pagemap, {}},
    {F::ProcPidMem, "proc-pid-mem", true,
     "read a traced task's memory from outside in large batches (/proc/PID/mem)",
     "dump cannot read page contents from outside the task", p::proc_pid_mem, {}},
    {F::Clone3SetTid, "clone3-set-tid", true,
     "create every restored task and thread with its original pid (clone3 with set_tid, Linux 5.5), "
     "in pid namespaces too",
     "restore cannot give tasks their old pids: no restore is possible", p::clone3_set_tid, {}},
    {F::PrctlMmMap, "prctl-mm-map", true,
     "set a restored task's memory layout fields (code, data, brk and stack bounds, argv and environment "
     "areas, auxv) in one call that needs no CAP_SYS_RESOURCE (PR_SET_MM_MAP)",
     "restore cannot set brk, argv/environ areas or auxv: restored programs would see wrong "
     "/proc/PID/cmdline, environ and auxv, and brk() would misbehave",
     p::prctl_mm_map, {}},
    {F::Kcmp, "kcmp", true,
     "find open files, file tables, fs information and address spaces shared between tasks (kcmp)",
     "dump cannot tell a shared open file from two separate ones: sharing would be lost", p::kcmp, {}},
    {F::PidfdOpen, "pidfd-open", true,
     "hold a stable reference to each task during dump and restore (pidfd_open, Linux 5.3)",
     "pid reuse races go undetected, and pidfd-getfd cannot be used", p::pidfd_open, {}},
    {F::PidfdGetfd, "pidfd-getfd", true,
     "take a duplicate of each open file descriptor of a task for dump (pidfd_getfd, Linux 5.6)",
     "dump cannot collect open files from outside the task", p::pidfd_getfd, {F::PidfdOpen}},
    {F::MemfdCreate, "memfd-create", true,
     "rebuild shared anonymous memory and memfd files on restore (memfd_create)",
     "restore of MAP_SHARED anonymous memory and of memfd files fails", p::memfd_create, {}},
    {F::Vdso, "vdso", true,
     "find the vDSO and its vvar data pages (any number of [vvar*] parts and [vdso]) and move them with "
     "mremap to where the dumped program had them",
     "a restored program would call into a vDSO at the wrong address and crash", p::vdso, {}},
    {F::CpuXsave, "cpu-xsave", true,
     "save and restore FPU, SSE and extended register state as one XSAVE area",
     "dump cannot save floating-point and vector registers", p::cpu_xsave, {}},

    // ------------------------------------------------------------ optional
    {F::PtraceSeccompFilter, "ptrace-seccomp-filter", false,
     "read a task's seccomp filters (PTRACE_SECCOMP_GET_FILTER) so that restore can install them again",
     "dump of a task with seccomp filters fails", p::ptrace_seccomp_filter, {F::PtraceSeize}},
    {F::Userfaultfd, "userfaultfd", false,
     "lazy restore: fill a restored task's pages on first touch (userfaultfd, UFFDIO_COPY)",
     "lazy restore is unavailable: restore copies every page before the tree runs", p::userfaultfd, {}},
    {F::UffdWp, "uffd-wp", false,
     "write-protect pages through userfaultfd (UFFD_FEATURE_PAGEFAULT_FLAG_WP, UFFDIO_WRITEPROTECT)",
     "no userfaultfd-based dirty page tracking", p::uffd_wp, {F::Userfaultfd}},
    {F::UffdWpUnpopulated, "uffd-wp-unpopulated", false,
     "write-protect not yet populated anonymous pages too (UFFD_FEATURE_WP_UNPOPULATED, Linux 6.4)",
     "dirty page tracking would have to populate every page of the task first", p::uffd_wp_unpopulated,
     {F::UffdWp}},
    {F::UffdWpAsync, "uffd-wp-async", false,
     "let the kernel resolve write-protect faults itself and only mark the page written "
     "(UFFD_FEATURE_WP_ASYNC, Linux 6.7), so a tracked task never waits",
     "no dirty page tracking on kernels without soft-dirty: every incremental dump copies all memory",
     p::uffd_wp_async, {F::UffdWp}},
    {F::PagemapScan, "pagemap-scan", false,
     "from outside a task, list the pages written since the last scan and write-protect them again in one "
     "ioctl (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING, Linux 6.7)",
     "pre-copy and incremental dumps copy all memory in every round", p::pagemap_scan,
     {F::UffdWpAsync, F::UffdWpUnpopulated}},
    {F::SoftDirty, "soft-dirty", false,
     "track written pages with soft-dirty bits (clear_refs 4, pagemap bit 55): the older way, used when "
     "pagemap-scan is absent",
     "nothing while pagemap-scan works; otherwise incremental dumps copy all memory", p::soft_dirty, {}},
    {F::TcpRepair, "tcp-repair", false,
     "read and rebuild established TCP connections (TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, "
     "TCP_REPAIR_WINDOW)",
     "dump and restore with --tcp-established fail", p::tcp_repair, {}},
    {F::NsUts, "ns-uts", false, "dump and restore a tree in its own UTS namespace (hostname, domain name)",
     "-n uts cannot be used", p::ns_uts, {}},
    {F::NsIpc, "ns-ipc", false,
     "dump and restore a tree in its own IPC namespace (System V IPC, POSIX message queues)",
     "-n ipc cannot be used", p::ns_ipc, {}},
    {F::NsNet, "ns-net", false,
     "dump and restore a tree in its own network namespace (devices, addresses, routes, sockets)",
     "-n net cannot be used", p::ns_net, {}},
    {F::NsMnt, "ns-mnt", false, "dump and restore a tree in its own mount namespace (its mount table)",
     "-n mnt cannot be used", p::ns_mnt, {}},
    {F::NsPid, "ns-pid", false,
     "dump and restore a tree in its own pid namespace, its init being pid 1 inside",
     "-n pid cannot be used", p::ns_pid, {}},
    {F::NsUser, "ns-user", false, "dump and restore a tree in its own user namespace (uid and gid mappings)",
     "-n user cannot be used", p::ns_user, {}},
    {F::NsCgroup, "ns-cgroup", false, "dump and restore a tree in its own cgroup namespace (its cgroup root)",
     "-n cgroup cannot be used", p::ns_cgroup, {}},
    {F::NsTime, "ns-time", false,
     "dump and restore a tree in its own time namespace (monotonic and boottime offsets, Linux 5.6)",
     "-n time cannot be used; restored programs see the monotonic clock jump", p::ns_time, {}},
    {F::CpuAvx, "cpu-avx", false, "AVX (YMM) register state in the XSAVE area",
     "a program dumped where AVX was usable chose AVX code at startup; restored here it would die with SIGILL",
     p::cpu_avx, {F::CpuXsave}},
    {F::CpuAvx512, "cpu-avx512", false, "AVX-512 state (opmask, ZMM_Hi256, Hi16_ZMM) in the XSAVE area",
     "programs dumped where AVX-512 was usable cannot be restored here", p::cpu_avx512, {F::CpuXsave}},
    {F::CpuPkru, "cpu-pkru", false, "memory protection keys: the PKRU register and pkey_alloc/pkey_mprotect",
     "tasks using protection keys cannot be restored here", p::cpu_pkru, {F::CpuXsave}},
    {F::CpuAmx, "cpu-amx", false,
     "AMX tile state (dynamically enabled XSAVE state, ARCH_REQ_XCOMP_PERM)",
     "tasks using AMX cannot be restored here", p::cpu_amx, {F::CpuXsave}},
    {F::CpuCetShstk, "cpu-cet-shstk", false,
     "user shadow stacks (CET, Linux 6.6): the shadow stack pointer regset NT_X86_SHSTK and its memory",
     "tasks running with a shadow stack cannot be dumped or restored", p::cpu_cet_shstk, {F::CpuXsave}},
    {F::BpfMaps, "bpf-maps", false,
     "read and recreate BPF array and hash maps held by a task (bpf(2) through libbpf)",
     "dump of a task holding BPF map descriptors fails", p::bpf_maps, {}},
    {F::Btf, "btf", false, "kernel BTF type information (/sys/kernel/btf/vmlinux) for BPF maps that carry types",
     "restore of BPF maps with BTF type information fails", p::btf, {}},
    {F::CgroupFreezer, "cgroup-freezer", false,
     "freeze a whole tree at once through its cgroup (cgroup v2 cgroup.freeze, else the v1 freezer) "
     "before seizing it, so that no task forks away meanwhile",
     "dump freezes with ptrace alone, re-reading the tree until it is stable", p::cgroup_freezer, {}},
    {F::PosixTimerIds, "posix-timer-ids", false,
     "create each POSIX timer with the id it had (prctl PR_TIMER_CREATE_RESTORE_IDS, then timer_create)",
     "a process holding POSIX timers (timer_create) is refused at dump", p::posix_timer_ids, {}},
    {F::SysvShmNextId, "sysv-shm-next-id", false,
     "create each SysV shared memory segment with the id it had (kernel.shm_next_id, "
     "CONFIG_CHECKPOINT_RESTORE, then shmget)",
     "restore of a tree attached to SysV shared memory fails, unless every segment still exists", p::sysv_shm_next_id,
     {}},
    {F::TimerfdSetTicks, "timerfd-set-ticks", false,
     "give a restored timerfd its expirations not yet read (ioctl TFD_IOC_SET_TICKS, CONFIG_CHECKPOINT_RESTORE)",
     "a timerfd that fired and was not read yet is refused at dump", p::timerfd_set_ticks, {}},
    {F::NftNetLock, "nft-net-lock", false,
     "keep dumped established TCP connections quiet until restore with an nftables table of crtools' own "
     "(the nft command, nf_tables)",
     "dump --tcp-established of a tree with established TCP connections fails", p::nft_net_lock, {}},
};

struct State {
  std::recursive_mutex mu;
  bool init_done = false;
  bool init_failed = false;
  std::string init_error;
  std::bitset<kFeatureCount> forced;
  std::array<std::optional<FeatureStatus>, kFeatureCount> cache;
};

State& state() {
  static State s;
  return s;
}

std::string normalize(std::string_view n) {
  std::string s;
  for (char c : n) {
    if (c == '_') c = '-';
    if (c >= 'A' && c <= 'Z') c = c - 'A' + 'a';
    s += c;
  }
  return s;
}

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
  return std::string(s.substr(a, b - a));
}

uint64_t now_usec() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

Status init_locked(State& s, std::string_view absent) {
  s.cache.fill(std::nullopt);
  s.forced.reset();
  s.init_done = true;
  s.init_failed = false;
  s.init_error.clear();
  auto list = parse_feature_list(absent);
  if (!list) {
    s.init_failed = true;
    Error e = list.error();
    e.message = std::string(kFeaturesAbsentEnv) + ": " + e.message;
    s.init_error = e.message;
    return e;
  }
  for (Feature f : *list) s.forced.set(static_cast<size_t>(f));
  return ok_status();
}

const FeatureStatus& status_locked(State& s, Feature f) {
  size_t i = static_cast<size_t>(f);
  if (!s.init_done) {
    const char* env = getenv(kFeaturesAbsentEnv);
    auto st = init_locked(s, env ? env : "");
    if (!st) log_error(st.error());
  }
  if (s.cache[i]) return *s.cache[i];
  const FeatureInfo& info = kTable[i];
  FeatureStatus r;
  if (s.init_failed) {
    r.detail = "unknown: " + s.init_error;
  } else if (s.forced.test(i)) {
    r.forced_absent = true;
    r.detail = std::string("declared absent by ") + kFeaturesAbsentEnv;
  } else {
    std::string missing;
    for (Feature d : info.depends)
      if (!status_locked(s, d).available) missing += (missing.empty() ? "" : ", ") + std::string(feature_name(d));
    if (!missing.empty()) {
      r.detail = "needs " + missing + ", which " + (missing.find(',') == std::string::npos ? "is" : "are") +
                 " absent";
    } else {
      uint64_t t0 = now_usec();
      Result<std::string> res = info.probe();
      r.probe_usec = now_usec() - t0;
      if (res) {
        r.available = true;
        r.detail = *res;
      } else {
        r.detail = res.error().str();
      }
    }
  }
  pr_debug(0, "feature %s: %s (%s)%s", info.name, r.available ? "available" : "absent", r.detail.c_str(),
           r.probe_usec ? (" in " + std::to_string(r.probe_usec) + " us").c_str() : "");
  s.cache[i] = std::move(r);
  return *s.cache[i];
}

}  // namespace

const std::vector<FeatureInfo>& feature_table() { return kTable; }

const FeatureInfo& feature_info(Feature f) { return kTable.at(static_cast<size_t>(f)); }

const char* feature_name(Feature f) { return feature_info(f).name; }

std::optional<Feature> feature_by_name(std::string_view name) {
  std::string n = normalize(name);
  for (const auto& row : kTable)
    if (n == row.name) return row.id;
  return std::nullopt;
}

std::string feature_names(const char* sep) {
  std::string s;
  for (const auto& row : kTable) {
    if (!s.empty()) s += sep;
    s += row.name;
  }
  return s;
}

Result<std::vector<Feature>> parse_feature_list(std::string_view list) {
  std::vector<Feature> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t c = list.find(',', pos);
    std::string item = trim(list.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos));
    if (!item.empty()) {
      auto f = feature_by_name(item);
      if (!f) {
        Error e = make_error("unknown feature '%s'", item.c_str());
        e.remedy = "known features: " + feature_names(", ");
        return e;
      }
      bool dup = false;
      for (Feature g : out) dup |= g == *f;
      if (!dup) out.push_back(*f);
    }
    if (c == std::string_view::npos) break;
    pos = c + 1;
  }
  return out;
}

Status features_init() {
  const char* env = getenv(kFeaturesAbsentEnv);
  return features_init(env ? env : "");
}

Status features_init(std::string_view absent_list) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mu);
  return init_locked(s, absent_list);
}

const FeatureStatus& feature_status(Feature f) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mu);
  return status_locked(s, f);
}

bool feature_available(Feature f) { return feature_status(f).available; }

Status require_feature(Feature f) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mu);
  const FeatureStatus& st = status_locked(s, f);
  if (s.init_failed) {
    Error e;
    e.message = s.init_error;
    e.remedy = "known features: " + feature_names(", ");
    return e;
  }
  if (st.available) return ok_status();
  const FeatureInfo& info = feature_info(f);
  Error e;
  e.message = std::string("kernel feature '") + info.name + "' is absent (" + st.detail + "); without it " +
              info.breaks;
  if (st.forced_absent)
    e.remedy = std::string("remove it from ") + kFeaturesAbsentEnv + " to use it";
  else
    e.remedy = std::string("'crtools check --feature ") + info.name + "' tells more; see cr-check(8)";
  return e;
}

void probe_all_features() {
  for (const auto& row : kTable) (void)feature_status(row.id);
}

}  // namespace cr
