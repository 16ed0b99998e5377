// /proc/PID/status (fs/proc/array.c: task_state, task_sig, task_cap, ...).
//
// "Key:\tvalue" lines. Keys this struct has no place for are ignored; the
// keys every 6.18 task has (Name State Tgid Pid PPid TracerPid Uid Gid
// Threads SigQ SigPnd ShdPnd SigBlk SigIgn SigCgt CapInh CapPrm CapEff
// CapBnd CapAmb NoNewPrivs Seccomp) are required. Umask is optional (a
// zombie has no fs_struct, so no Umask line).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cr::proc {

struct ProcStatus {
  std::string name;              // comm, with the kernel's "\n" and "\\" escapes undone
  std::optional<uint32_t> umask;
  char state = 0;                // 'R', 'S', 'D', 'T', 't', 'Z', 'X', 'I', ...
  pid_t tgid = 0, ngid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  std::array<uint32_t, 4> uid{}, gid{};  // real, effective, saved, fs
  std::vector<uint32_t> groups;          // supplementary groups
  int fd_size = 0;
  // Ids in each pid namespace, outermost first (empty if no NS* lines).
  std::vector<pid_t> ns_tgid, ns_pid, ns_pgid, ns_sid;
  std::optional<bool> kthread;
  int threads = 0;
  uint64_t sigq_queued = 0, sigq_limit = 0;  // "SigQ: 5/96368"
  uint64_t sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;  // bit n-1 = signal n
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  bool no_new_privs = false;
  int seccomp = 0;              // SECCOMP_MODE_DISABLED/STRICT/FILTER
  int seccomp_filters = 0;      // 0 if no Seccomp_filters line
  std::string speculation_store_bypass;     // e.g. "vulnerable", "thread force mitigated"
  std::string speculation_indirect_branch;  // e.g. "always enabled"
};

Result<ProcStatus> parse_status(std::string_view text, std::string_view source = "status");
Result<ProcStatus> read_status(pid_t pid);

}  // namespace cr::proc
