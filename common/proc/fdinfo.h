// /proc/PID/fd and /proc/PID/fdinfo/N.
//
// fdinfo starts with "pos:\t%lli", "flags:\t0%o", "mnt_id:\t%i",
// "ino:\t%lu" (fs/proc/fd.c); file types add lines of their own
// (eventfd-count, tfd, sigmask, inotify, clockid, lock, ...). Those are kept
// in order as (key, value) pairs: the key is the text up to the first ':' or
// blank, whichever comes first, the value the rest with leading blanks
// removed ("inotify wd:1 ino:3c51a" -> ("inotify", "wd:1 ino:3c51a"),
// "tfd:  6 events: 19" -> ("tfd", "6 events: 19")). Keys may repeat (one tfd
// line per epoll target).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace cr::proc {

struct FdInfo {
  int64_t pos = 0;
  // The kernel's f_flags (octal in the file). Regular files show the
  // kernel's O_LARGEFILE, 0100000, which glibc defines as 0 on x86-64;
  // O_CLOEXEC is shown for close-on-exec descriptors.
  uint32_t flags = 0;
  int mnt_id = 0;
  uint64_t ino = 0;
  std::vector<std::pair<std::string, std::string>> extra;

  // The value of the first extra line with this key, or nullptr.
  const std::string* find(std::string_view key) const;
  // All values of extra lines with this key.
  std::vector<std::string> find_all(std::string_view key) const;
};

Result<FdInfo> parse_fdinfo(std::string_view text, std::string_view source = "fdinfo");
Result<FdInfo> read_fdinfo(pid_t pid, int fd);

// The open descriptors of a task (entries of /proc/PID/fd), ascending.
Result<std::vector<int>> list_fds(pid_t pid);

}  // namespace cr::proc
