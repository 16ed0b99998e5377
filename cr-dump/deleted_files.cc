// Dump side of regular files deleted while open ("PATH (deleted)"; record
// GhostRec in common/image/files.h; restore side: cr-restore/deleted_files.cc):
// the contents, read through a new description opened via /proc (the
// task's own description, its offset, is left alone), up to --ghost-limit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "cr-dump/dump.h"

namespace cr {

Result<uint64_t> dump_deleted_file(pid_t pid, int fd, const std::string& path, const struct stat& st,
                                   uint64_t ghost_limit, Files& files) {
  for (auto& g : files.ghosts)
    if (g.dev == st.st_dev && g.ino == st.st_ino) return g.id;
  if (path.empty() || path[0] != '/')
    return make_pid_error(pid, 0, "fd %d: deleted file %s is not reachable by path", fd, path.c_str());
  if (st.st_nlink != 0)
    return make_pid_error(pid, 0, "fd %d: deleted file %s still has %llu other links; not supported", fd,
                          path.c_str(), (unsigned long long)st.st_nlink);
  if (static_cast<uint64_t>(st.st_size) > ghost_limit) {
    Error e = make_pid_error(pid, 0, "fd %d: deleted file %s holds %llu bytes, more than --ghost-limit (%llu)", fd,
                             path.c_str(), (unsigned long long)st.st_size, (unsigned long long)ghost_limit);
    e.remedy = "raise --ghost-limit (up to 64M)";
    return e;
  }
  std::string p = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  UniqueFd in(open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return make_pid_error(pid, errno, "fd %d: cannot open deleted file %s to save it", fd, path.c_str());
  GhostRec g;
  g.id = files.ghosts.size() + 1;
  g.dev = st.st_dev;
  g.ino = st.st_ino;
  g.path = path;
  g.mode = st.st_mode;
  g.uid = st.st_uid;
  g.gid = st.st_gid;
  g.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  g.data.data.resize(static_cast<size_t>(st.st_size));
  auto got = pread_full(in.get(), g.data.data.data(), g.data.data.size(), 0);
  if (!got || *got != g.data.data.size())
    return make_pid_error(pid, got ? EIO : got.error().err, "fd %d: reading deleted file %s", fd, path.c_str());
  files.ghosts.push_back(std::move(g));
  return files.ghosts.back().id;
}

}  // namespace cr
