// Restore side of inotify instances (dump side: cr-dump/inotify.cc, record
// InotifyRec): a new instance whose watches get their old watch
// descriptors. The kernel hands out wds cyclically (idr_alloc_cyclic, from
// 1), so a wd with a gap below it is reached by adding and removing the
// watch until the next wd is the one wanted; each removal queues an
// IN_IGNORED event, and the queue is emptied once all are in place.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "common/fd.h"
#include "cr-restore/restore.h"

namespace cr {

Result<int> open_inotify(const Files& files, const FileRec& f, const std::string& what, const RestoreOptions& o) {
  const InotifyRec* r = nullptr;
  for (auto& x : files.inotifies)
    if (x.file_id == f.id) r = &x;
  if (!r) return make_error("%s: inotify %llu has no record", what.c_str(), (unsigned long long)f.id);
  UniqueFd fd(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!fd.valid()) return make_errno(errno, "%s: inotify_init1", what.c_str());
  for (auto& w : r->watches) {  // by wd, ascending (validated)
    struct stat st;
    if (stat(w.path.c_str(), &st) < 0) return make_errno(errno, "%s: inotify watch %d: %s", what.c_str(), w.wd, w.path.c_str());
    if (!o.skip_file_check && (st.st_dev != w.dev || st.st_ino != w.ino)) {
      Error e = make_error("%s: inotify watch %d: %s was replaced since the dump", what.c_str(), w.wd, w.path.c_str());
      e.remedy = "restore it, or pass --skip-file-check to watch the new file";
      return e;
    }
    for (;;) {
      int got = inotify_add_watch(fd.get(), w.path.c_str(), w.mask);
      if (got < 0) return make_errno(errno, "%s: inotify watch %d on %s", what.c_str(), w.wd, w.path.c_str());
      if (got == w.wd) break;
      if (got > w.wd)
        return make_error("%s: inotify watch %d on %s came back as wd %d", what.c_str(), w.wd, w.path.c_str(), got);
      inotify_rm_watch(fd.get(), got);
    }
  }
  // The IN_IGNORED events of the stepping stones.
  std::vector<char> buf(65536);
  while (read(fd.get(), buf.data(), buf.size()) > 0) {
  }
  if (!(f.flags & O_NONBLOCK) && fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK) < 0)
    return make_errno(errno, "%s: F_SETFL", what.c_str());
  return fd.release();
}

}  // namespace cr
