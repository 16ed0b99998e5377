// cr-restore's internal interfaces: one file per kind of state
// (files.cc, memory.cc, core.cc), the task-side driver (task.cc) and the
// orchestration (main.cc).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/image/image_set.h"
#include "common/image/task_images.h"
#include "common/options.h"

namespace cr {

struct RestoreOptions {
  bool skip_file_check = false;
};

// ---- files.cc (runs in the task being restored)
// Close every fd except `keep`, then open each dumped fd at its number.
// Returns the lowest fd number above all restored ones (for service fds).
// `keep` fds are moved above the restored ones (their new numbers are
// written back).
Result<int> restore_files(const Files& files, const FdTable& fds, const RestoreOptions& o,
                          std::vector<int>& keep);
// Check that a file still is what the dump saw (a regular file: identity
// and size); an error unless o.skip_file_check.
Status check_file_unchanged(const std::string& what, const std::string& path, uint64_t dev, uint64_t ino,
                            uint64_t size, const RestoreOptions& o);
// Move fd to the lowest free number >= min (close-on-exec); returns it.
Result<int> move_fd_above(int fd, int min);

// ---- task.cc: the work inside the new task; never returns on success
// (it ends in the restorer's rt_sigreturn). err_fd reports failures as
// one line; the task then exits.
[[noreturn]] void restore_task_and_jump(const ImageSet& set, const SetImages& imgs, const TaskImages& t,
                                        const RestoreOptions& o, int err_fd);

}  // namespace cr

#include "parasite/restorer_task_abi.h"

namespace cr {

// ---- memory.cc (runs in the task being restored)
// The restore hole: one region of the address space that collides with no
// dumped VMA and no mapping of cr-restore, holding (in order) the restorer
// blob, the task args, the vDSO temp slot and every premapped VMA.
struct MemoryPlan {
  uint64_t hole_start = 0, hole_end = 0;
  uint64_t blob_at = 0;  // blob_size bytes
  uint64_t args_at = 0;  // args_size bytes
  uint64_t vdso_temp = 0;
  std::vector<RestoreVma> vmas;
  std::vector<RestoreVdsoPart> vdso;
  std::vector<RestoreRange> keep;  // sorted: what the restorer must not unmap
  uint64_t pages_restored = 0;  // bytes
};
// Choose the hole, reserve it, map every dumped VMA (but the vDSO parts) in
// it and fill the dumped pages. blob_size and args_size are page multiples.
Result<MemoryPlan> premap_memory(const ImageSet& set, const TaskImages& t, const RestoreOptions& o,
                                 uint64_t blob_size, uint64_t args_size);
// kMadv* bits for VmFlags names.
uint64_t madv_bits(const std::vector<std::string>& vmflags);

}  // namespace cr

namespace cr {

// ---- core.cc (runs in the task being restored)
// Bytes the task args need (a page multiple).
uint64_t task_args_size(const TaskImages& t);
// Build the RestoreTaskArgs, its arrays and the rt_sigframe at plan.args_at
// (already mapped read-write, task_args_size(t) bytes).
Status fill_task_args(const TaskImages& t, const MemoryPlan& plan, int exe_fd, int log_fd);

}  // namespace cr
