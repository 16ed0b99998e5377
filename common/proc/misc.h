// Smaller /proc files: symlinks (exe, cwd, root, fd/N), auxv, personality,
// the task list, children, posix timers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace cr::proc {

// ---------------------------------------------------------------- links
struct LinkTarget {
  std::string path;      // the link text without a trailing " (deleted)"
  bool deleted = false;  // the kernel appended " (deleted)" (an unlinked file)
};
// Split " (deleted)" off a link text. Only paths (starting with '/') are
// considered: "pipe:[1]" and "anon_inode:[eventfd]" never are deleted.
LinkTarget parse_link_text(std::string_view text);
// readlink(path) of any length, then parse_link_text.
Result<LinkTarget> read_link(const std::string& path);
Result<LinkTarget> read_exe(pid_t pid);
Result<LinkTarget> read_cwd(pid_t pid);
Result<LinkTarget> read_root(pid_t pid);
Result<LinkTarget> read_fd_link(pid_t pid, int fd);

// ---------------------------------------------------------------- auxv
// /proc/PID/auxv is the saved auxiliary vector, native u64 pairs ending with
// an AT_NULL pair. The result stops before AT_NULL. Empty text (a kernel
// thread) gives an empty vector; a size that is not a multiple of 16 or a
// missing AT_NULL is an error.
using AuxvEntry = std::pair<uint64_t, uint64_t>;  // (AT_* type, value)
Result<std::vector<AuxvEntry>> parse_auxv(std::string_view bytes, std::string_view source = "auxv");
Result<std::vector<AuxvEntry>> read_auxv(pid_t pid);

// ---------------------------------------------------------------- personality
// "%08x\n"
Result<uint32_t> parse_personality(std::string_view text, std::string_view source = "personality");
Result<uint32_t> read_personality(pid_t pid);

// ---------------------------------------------------------------- tasks
// Thread ids of a process (entries of /proc/PID/task), ascending.
Result<std::vector<pid_t>> list_tasks(pid_t pid);
// /proc/PID/task/TID/children: "123 456 " (CONFIG_PROC_CHILDREN). Children
// of this one thread, in the kernel's order.
Result<std::vector<pid_t>> parse_children(std::string_view text, std::string_view source = "children");
Result<std::vector<pid_t>> read_children(pid_t pid, pid_t tid);

// ---------------------------------------------------------------- timers
// /proc/PID/timers (CONFIG_CHECKPOINT_RESTORE), one record per posix timer:
//   ID: 2
//   signal: 34/00000000deadbeef      signo / sigev_value (pointer, hex)
//   notify: signal/tid.8302          SIGEV_SIGNAL|NONE|THREAD, "tid" if SIGEV_THREAD_ID
//   ClockID: 7
struct PosixTimer {
  int id = 0;
  int signo = 0;
  uint64_t sigev_value = 0;
  int notify = 0;              // SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD
  bool thread_id = false;      // SIGEV_THREAD_ID was set (notify_pid is a tid)
  pid_t notify_pid = 0;
  int clock_id = 0;
  // The sigev_notify value for timer_create().
  int sigev_notify() const;
};
// Sorted by id; a repeated id is an error.
Result<std::vector<PosixTimer>> parse_timers(std::string_view text, std::string_view source = "timers");
// err == ENOENT if the file does not exist (or the task is gone).
Result<std::vector<PosixTimer>> read_timers(pid_t pid);

}  // namespace cr::proc
