// pstree.img: the process tree — who is whose parent, groups, sessions,
// threads. Dump side: cr-dump/pstree.cc; restore side: cr-restore/pstree.cc.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "common/image/format.h"

namespace cr {

struct PstreeEntry {
  int64_t pid = 0;
  int64_t ppid = 0;  // 0 for the root (its parent is outside the tree)
  int64_t pgid = 0;
  int64_t sid = 0;
  std::vector<int64_t> threads;  // tids, the leader first; empty for a zombie
  bool zombie = false;           // exited, not yet reaped by its parent:
  int32_t exit_status = 0;       // its wait status (exit code or signal)
  bool shares_fs = false;        // shares cwd, root and umask with its parent (CLONE_FS)
  bool shares_files = false;     // shares its fd table with its parent (CLONE_FILES)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PstreeEntry, pid, ppid, pgid, sid, threads, zombie, exit_status, shares_fs,
                                   shares_files)

struct Pstree {
  static constexpr ImageKind kKind = ImageKind::Pstree;
  int64_t root_pid = 0;
  std::vector<PstreeEntry> tasks;  // parents before children (depth first)
  // The root's session (group) leader had exited by the dump (a daemon
  // after its double fork): restore makes the session (group) again with a
  // short-lived helper task of that pid. When false and the root does not
  // lead its session (group), its leader lived outside the tree and the
  // root joins cr-restore's.
  bool root_session_gone = false;
  bool root_group_gone = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Pstree, root_pid, tasks, root_session_gone, root_group_gone)

}  // namespace cr
