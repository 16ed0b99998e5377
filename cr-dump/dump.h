// cr-dump's internal interfaces: one file per kind of state (pstree.cc,
// core.cc, memory.cc, files.cc) and the orchestration (main.cc).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/image/core.h"
#include "common/image/files.h"
#include "common/image/image_set.h"
#include "common/image/memory.h"
#include "common/image/pstree.h"
#include "common/options.h"
#include "common/ptrace/seized_task.h"
#include "common/remote/remote_session.h"

namespace cr {

struct DumpStats {
  double freeze_us = 0;       // from the first seize to the end (kill/detach)
  double memory_us = 0;       // reading and writing pages
  uint64_t pages_scanned = 0;
  uint64_t pages_written = 0;
  uint64_t bytes_written = 0;
};

// ---- pstree.cc
// Check, before touching it, that `pid` is something this dump supports:
// one process, one thread, no children, not crtools itself. The checks are
// repeated after the freeze (check_frozen_tree) to catch races.
Status check_tree_supported(pid_t pid);
Status check_frozen_tree(pid_t pid);
Result<Pstree> dump_pstree(pid_t pid);

// ---- core.cc
// Everything of the task but memory and files. `rs` is a remote session on
// the frozen task (its saved registers are the dumped ones).
Result<Core> dump_core(pid_t pid, RemoteSession& rs);

// ---- memory.cc
// Everything of the address space: VMAs and mm fields into `mm`, the pages
// into pagemap-<pid>/pages-<pid>. Unsupported mappings are refused.
Status check_memory_supported(pid_t pid);
Result<Mm> dump_memory(pid_t pid, RemoteSession& rs, ImageSet& set, bool compress, DumpStats& stats);

// ---- files.cc
// The fd table of `pid`, adding its open file descriptions to `files`.
// Unsupported kinds of fd are refused, naming pid, fd and kind.
Result<FdTable> dump_files(pid_t pid, Files& files);

}  // namespace cr
