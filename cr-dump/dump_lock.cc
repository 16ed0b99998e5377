// One dump of a tree at a time. cr-dump holds an exclusive flock on
// /run/lock/crtools/dump-ROOTPID.lock, its own pid written in it, from
// before it touches the tree until it ends; a second cr-dump of the same
// root is refused naming the first. Trees that overlap without sharing a
// root meet at PTRACE_SEIZE: a task another crtools command traces is
// refused naming that command (common/ptrace/task_state.cc). The lock goes
// with cr-dump's process (flock is released when its last fd closes, also
// on SIGKILL); the file is removed by its holder, and a taker that finds
// the file it locked unlinked meanwhile takes the new one.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "cr-dump/dump.h"

namespace cr {

namespace {

std::string lock_dir() {
  struct stat st;
  return stat("/run/lock", &st) == 0 && S_ISDIR(st.st_mode) ? "/run/lock/crtools" : "/run/crtools";
}

}  // namespace

DumpLock::~DumpLock() {
  if (fd_.valid()) unlink(path_.c_str());  // before the flock goes with the fd
}

Result<DumpLock> take_dump_lock(pid_t root) {
  std::string dir = lock_dir();
  if (mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) return make_errno(errno, "cannot make %s", dir.c_str());
  struct stat ds;
  if (lstat(dir.c_str(), &ds) < 0 || !S_ISDIR(ds.st_mode) || ds.st_uid != geteuid() || (ds.st_mode & 022))
    return make_error("%s is not a directory of ours (owner, mode or symlink): not used for the dump lock", dir.c_str());
  DumpLock l;
  l.path_ = dir + "/dump-" + std::to_string(root) + ".lock";
  for (int tries = 0; tries < 100; tries++) {
    UniqueFd fd(open(l.path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return make_errno(errno, "cannot open the dump lock %s", l.path_.c_str());
    if (flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
      if (errno != EWOULDBLOCK) return make_errno(errno, "flock %s", l.path_.c_str());
      char b[32] = "";
      ssize_t n = pread(fd.get(), b, sizeof b - 1, 0);
      long holder = n > 0 ? strtol(b, nullptr, 10) : 0;
      Error e = holder > 0
                    ? make_pid_error(root, EBUSY, "another cr-dump (pid %ld) is dumping this tree now", holder)
                    : make_pid_error(root, EBUSY, "another cr-dump is dumping this tree now (%s)", l.path_.c_str());
      e.remedy = "wait for that dump to finish";
      return e;
    }
    // Locked; but its holder may have removed the file between our open
    // and our flock: then the lock is on a file nobody else will open.
    struct stat a, b;
    if (fstat(fd.get(), &a) < 0 || stat(l.path_.c_str(), &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
      continue;
    std::string me = std::to_string(getpid()) + "\n";
    if (ftruncate(fd.get(), 0) < 0 || !pwrite_full(fd.get(), me.data(), me.size(), 0))
      return make_errno(errno, "cannot write the dump lock %s", l.path_.c_str());
    l.fd_ = std::move(fd);
    return l;
  }
  return make_pid_error(root, EBUSY, "the dump lock %s keeps being replaced", l.path_.c_str());
}

}  // namespace cr
