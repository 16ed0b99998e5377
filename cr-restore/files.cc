// Restore side of open files (dump side: cr-dump/files.cc, records:
// common/image/files.h): each fd reopened at its number with its flags,
// offset and close-on-exec flag.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "cr-restore/restore.h"

namespace cr {

Result<int> move_fd_above(int fd, int min) {
  int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
  if (n < 0) return make_errno(errno, "cannot move fd %d above %d", fd, min);
  close(fd);
  return n;
}

Status check_file_unchanged(const std::string& what, const std::string& path, uint64_t dev, uint64_t ino,
                            uint64_t size, const RestoreOptions& o) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return make_errno(errno, "%s: %s", what.c_str(), path.c_str());
  if (o.skip_file_check) return ok_status();
  if (st.st_dev != dev || st.st_ino != ino) {
    Error e = make_error("%s: %s was replaced since the dump (inode %llu, was %llu)", what.c_str(), path.c_str(),
                         (unsigned long long)st.st_ino, (unsigned long long)ino);
    e.remedy = "restore it, or pass --skip-file-check to accept the new file";
    return e;
  }
  if ((uint64_t)st.st_size != size) {
    Error e = make_error("%s: %s changed size since the dump (%llu bytes, was %llu)", what.c_str(), path.c_str(),
                         (unsigned long long)st.st_size, (unsigned long long)size);
    e.remedy = "restore it, or pass --skip-file-check to accept the new contents";
    return e;
  }
  return ok_status();
}

namespace {

Result<int> open_file(const FileRec& f, const RestoreOptions& o, int fdnum) {
  std::string what = "fd " + std::to_string(fdnum);
  int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
  if (f.type == "reg") {
    TRY_STATUS(check_file_unchanged(what, f.path, f.dev, f.ino, f.size, o));
    // ext4 gives a freed inode number to the next new file, so a file
    // replaced after the dump may show the old number: its birth time
    // tells it apart.
    struct statx sx;
    if (!o.skip_file_check && f.btime_ns && statx(AT_FDCWD, f.path.c_str(), 0, STATX_BTIME, &sx) == 0 &&
        (sx.stx_mask & STATX_BTIME) &&
        int64_t(sx.stx_btime.tv_sec) * 1000000000 + sx.stx_btime.tv_nsec != f.btime_ns) {
      Error e = make_error("%s: %s was replaced since the dump (a new file with the same inode number)",
                           what.c_str(), f.path.c_str());
      e.remedy = "restore it, or pass --skip-file-check to accept the new file";
      return e;
    }
  }
  int fd = open(f.path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return make_errno(errno, "%s: cannot reopen %s", what.c_str(), f.path.c_str());
  struct stat st;
  if (fstat(fd, &st) < 0) return make_errno(errno, "%s: %s", what.c_str(), f.path.c_str());
  if ((st.st_mode & S_IFMT) != (f.mode & S_IFMT)) {
    close(fd);
    return make_error("%s: %s is no longer of the same type", what.c_str(), f.path.c_str());
  }
  if (f.type == "chr" && st.st_rdev != f.rdev) {
    close(fd);
    return make_error("%s: %s is device %u:%u, was %u:%u", what.c_str(), f.path.c_str(), major(st.st_rdev),
                      minor(st.st_rdev), major(f.rdev), minor(f.rdev));
  }
  if (f.type != "chr" && f.pos != 0) {
    if (lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
      int e = errno;
      close(fd);
      return make_errno(e, "%s: cannot seek %s to %llu", what.c_str(), f.path.c_str(), (unsigned long long)f.pos);
    }
  }
  return fd;
}

}  // namespace

Result<int> restore_files(const Files& files, const FdTable& t, const RestoreOptions& o,
                          std::vector<int>& keep) {
  std::map<uint64_t, const FileRec*> by_id;
  for (auto& f : files.files) by_id[f.id] = &f;
  int top = 2;
  for (auto& d : t.fds) top = std::max(top, d.fd);
  // Service fds (the error pipe) go above every restored number first.
  for (int& k : keep)
    if (k <= top) k = TRY(move_fd_above(k, top + 1));
  // Close everything else this process inherited from cr-restore.
  std::vector<int> open_now;
  if (DIR* d = opendir("/proc/self/fd")) {
    int self = dirfd(d);
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      int fd = atoi(e->d_name);
      if (fd == self || std::find(keep.begin(), keep.end(), fd) != keep.end()) continue;
      open_now.push_back(fd);
    }
    closedir(d);
  } else {
    return make_errno(errno, "cannot list /proc/self/fd");
  }
  for (int fd : open_now) close(fd);
  // Shared descriptions (one file id at several numbers) are opened once and
  // duplicated, so they keep one offset.
  std::map<uint64_t, int> opened;
  for (auto& d : t.fds) {
    const FileRec& f = *by_id.at(d.file_id);
    int src;
    auto it = opened.find(d.file_id);
    if (it != opened.end()) {
      src = it->second;
    } else {
      src = TRY(open_file(f, o, d.fd));
      opened[d.file_id] = src;
    }
    if (src != d.fd) {
      if (dup3(src, d.fd, d.cloexec ? O_CLOEXEC : 0) < 0)
        return make_errno(errno, "fd %d: cannot place %s", d.fd, f.path.c_str());
    } else if (fcntl(d.fd, F_SETFD, d.cloexec ? FD_CLOEXEC : 0) < 0) {
      return make_errno(errno, "fd %d", d.fd);
    }
    // A temporary number may be taken by a later fd: dup3 over it is fine,
    // the description stays open through opened[] only if still needed.
  }
  // Close the temporary numbers that are not restored fds themselves.
  std::set<int> wanted;
  for (auto& d : t.fds) wanted.insert(d.fd);
  for (auto& [id, fd] : opened)
    if (!wanted.count(fd)) close(fd);
  return top + 1;
}

}  // namespace cr
