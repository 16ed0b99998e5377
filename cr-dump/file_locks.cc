// Dump side of file locks (record FileLockRec in common/image/files.h;
// restore side: cr-restore/file_locks.cc). fdinfo lists, for each fd, the
// locks on its file that belong to it: flock and OFD locks belong to the
// open file description, POSIX locks to the process (they show on every
// fd of the process open on that file). Only with --file-locks; a lease,
// or any lock without the option, is refused.
#include <fcntl.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "cr-dump/dump.h"

namespace cr {

namespace {

bool same_lock(const FileLockRec& a, const FileLockRec& b) {
  return a.kind == b.kind && a.write == b.write && a.start == b.start && a.len == b.len;
}

}  // namespace

Result<std::vector<FileLockRec>> parse_fd_locks(pid_t pid, int fd, const proc::FdInfo& info, bool allowed) {
  std::vector<FileLockRec> out;
  for (const std::string& line : info.find_all("lock")) {
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:131 0 EOF"; "1: -> ..." is a
    // request waiting for the lock, not a lock.
    char kind[16], adv[16], rw[16], end[32];
    unsigned n;
    int lpid;
    unsigned maj, min;
    uint64_t ino, start;
    if (line.find("->") != std::string::npos) continue;
    if (sscanf(line.c_str(), "%u: %15s %15s %15s %d %x:%x:%" SCNu64 " %" SCNu64 " %31s", &n, kind, adv, rw, &lpid,
               &maj, &min, &ino, &start, end) != 10)
      return make_pid_error(pid, 0, "fd %d: cannot parse lock '%s' in its fdinfo", fd, line.c_str());
    std::string k = kind;
    if (k != "FLOCK" && k != "POSIX" && k != "OFDLCK")
      return make_pid_error(pid, 0, "fd %d: holds a %s (lease or delegation); not supported", fd, kind);
    if (strcmp(adv, "ADVISORY") != 0)
      return make_pid_error(pid, 0, "fd %d: holds a %s %s lock; not supported", fd, adv, kind);
    if (!allowed) {
      Error e = make_pid_error(pid, 0, "fd %d: holds a %s lock", fd, k == "FLOCK" ? "flock" : k == "POSIX" ? "POSIX" : "OFD");
      e.remedy = "pass --file-locks to dump and restore file locks";
      return e;
    }
    FileLockRec r;
    r.kind = k == "FLOCK" ? "flock" : k == "POSIX" ? "posix" : "ofd";
    r.write = strcmp(rw, "WRITE") == 0;
    r.start = start;
    if (strcmp(end, "EOF") == 0) {
      r.len = 0;
    } else {
      uint64_t last;
      if (sscanf(end, "%" SCNu64, &last) != 1 || last < start)
        return make_pid_error(pid, 0, "fd %d: cannot parse lock '%s' in its fdinfo", fd, line.c_str());
      r.len = last - start + 1;
    }
    r.fd = fd;
    out.push_back(r);
  }
  return out;
}

void add_fd_locks(const std::vector<FileLockRec>& locks, const FileRec& file, Files& files, FdTable& t) {
  for (const auto& l : locks) {
    if (l.kind != "posix") {
      FileRec* f = nullptr;
      for (auto& x : files.files)
        if (x.id == file.id) f = &x;
      bool dup = false;
      for (auto& x : f->locks) dup |= same_lock(x, l);
      if (!dup) f->locks.push_back(l);
      continue;
    }
    // A POSIX lock shows on every fd of the process on that file: set it
    // again through one whose access allows it.
    int acc = static_cast<int>(file.flags & O_ACCMODE);
    bool fits = l.write ? (acc == O_WRONLY || acc == O_RDWR) : (acc == O_RDONLY || acc == O_RDWR);
    bool dup = false;
    for (auto& x : t.posix_locks) dup |= same_lock(x, l);
    if (dup) continue;
    if (fits) t.posix_locks.push_back(l);  // else another fd may fit
  }
}

Status check_posix_locks_placed(pid_t pid, const std::vector<std::pair<int, std::vector<FileLockRec>>>& seen,
                                const FdTable& t) {
  for (auto& [fd, locks] : seen)
    for (auto& l : locks) {
      if (l.kind != "posix") continue;
      bool placed = false;
      for (auto& x : t.posix_locks) placed |= same_lock(x, l);
      if (!placed)
        return make_pid_error(pid, 0, "fd %d: POSIX %s lock at %llu with no fd of the process open for %s; not "
                              "supported", fd, l.write ? "write" : "read", (unsigned long long)l.start,
                              l.write ? "writing" : "reading");
    }
  return ok_status();
}

}  // namespace cr
