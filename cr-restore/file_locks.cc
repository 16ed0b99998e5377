// Restore side of file locks (dump side: cr-dump/file_locks.cc, record
// FileLockRec): flock and OFD locks are taken on each open file
// description as soon as it is made, POSIX locks by their process once its
// fds are in place. A lock someone else holds meanwhile fails the restore,
// naming the file.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "cr-restore/restore.h"

namespace cr {

namespace {

Status take_lock(int fd, const FileLockRec& l, const std::string& what) {
  int r;
  if (l.kind == "flock") {
    r = flock(fd, (l.write ? LOCK_EX : LOCK_SH) | LOCK_NB);
  } else {
    struct flock fl = {};
    fl.l_type = l.write ? F_WRLCK : F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(l.start);
    fl.l_len = static_cast<off_t>(l.len);
    r = fcntl(fd, l.kind == "ofd" ? F_OFD_SETLK : F_SETLK, &fl);
  }
  if (r == 0) return ok_status();
  int e = errno;
  Error err = make_errno(e, "%s: cannot take its %s %s lock again (bytes %llu+%llu)", what.c_str(), l.kind.c_str(),
                         l.write ? "write" : "read", (unsigned long long)l.start, (unsigned long long)l.len);
  if (e == EAGAIN || e == EWOULDBLOCK || e == EACCES) err.remedy = "another process holds a conflicting lock: end it";
  return err;
}

}  // namespace

Status take_description_locks(const FileRec& f, int fd, const std::string& what) {
  for (auto& l : f.locks) TRY_STATUS(take_lock(fd, l, what + " (" + f.path + ")"));
  return ok_status();
}

Status take_posix_locks(const FdTable& t) {
  for (auto& l : t.posix_locks) TRY_STATUS(take_lock(l.fd, l, "fd " + std::to_string(l.fd)));
  return ok_status();
}

}  // namespace cr
