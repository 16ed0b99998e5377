// Restore side of files deleted while open (dump side:
// cr-dump/deleted_files.cc, record GhostRec): cr-restore makes each one
// before the first task, at its path (or, if that name is taken now, as an
// unnamed file in its directory), with its contents, owner, mode and mtime,
// unlinks it at once and keeps it open at its transit fd number, which
// every task inherits; each description is a new open of that fd through
// /proc/self/fd, so it shows "PATH (deleted)" as it did. Nothing is left
// on disk, whatever happens next.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "cr-restore/restore.h"

namespace cr {

Status create_deleted_files(const Files& files, const TreePlan& plan) {
  for (auto& g : files.ghosts) {
    std::string what = "deleted file " + g.path;
    std::string dir = g.path.substr(0, g.path.rfind('/'));
    if (dir.empty()) dir = "/";
    mode_t perm = g.mode & 07777;
    // At its own name when free (unlinked right away), else unnamed.
    UniqueFd fd(open(g.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.valid()) {
      if (unlink(g.path.c_str()) < 0) return make_errno(errno, "%s: cannot unlink it again", what.c_str());
    } else if (errno == EEXIST) {
      fd = UniqueFd(open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    }
    if (!fd.valid()) return make_errno(errno, "%s: cannot make it again in %s", what.c_str(), dir.c_str());
    if (auto st = pwrite_full(fd.get(), g.data.data.data(), g.data.size(), 0); !st)
      return make_errno(st.error().err, "%s: cannot write its %zu bytes", what.c_str(), g.data.size());
    if (fchown(fd.get(), g.uid, g.gid) < 0 || fchmod(fd.get(), perm) < 0)
      return make_errno(errno, "%s: cannot give it owner %u:%u and mode %03o", what.c_str(), g.uid, g.gid, perm);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {g.mtime_ns / 1000000000, g.mtime_ns % 1000000000}};
    futimens(fd.get(), ts);
    int at = plan.transit_ghost.at(g.id);
    if (dup3(fd.get(), at, O_CLOEXEC) < 0) return make_errno(errno, "%s: cannot place it at fd %d", what.c_str(), at);
  }
  return ok_status();
}

void close_deleted_files(const TreePlan& plan) {
  for (auto& [id, fd] : plan.transit_ghost) close(fd);
}

}  // namespace cr
