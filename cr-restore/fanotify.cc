// Restore side of fanotify groups (dump side: cr-dump/fanotify.cc, record
// FanotifyRec): a new group with the dumped fanotify_init flags, then each
// mark added again, the events it reports and those it ignores as two
// fanotify_mark calls (the ignore mask with FAN_MARK_IGNORE where the mark
// had it, Linux 6.0, else FAN_MARK_IGNORED_MASK).
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

// Older <linux/fanotify.h> (before 6.0) lacks it.
constexpr unsigned kFanMarkIgnore = 0x00000400;

unsigned mark_kind_flag(const std::string& kind) {
  if (kind == "mount") return FAN_MARK_MOUNT;
  if (kind == "filesystem") return FAN_MARK_FILESYSTEM;
  return FAN_MARK_INODE;
}

}  // namespace

Result<int> open_fanotify(const Files& files, const FileRec& f, const std::string& what, const RestoreOptions& o) {
  const FanotifyRec* r = nullptr;
  for (auto& x : files.fanotifies)
    if (x.file_id == f.id) r = &x;
  if (!r) return make_error("%s: fanotify %llu has no record", what.c_str(), (unsigned long long)f.id);
  UniqueFd fd(fanotify_init(r->flags, r->event_flags));
  if (!fd.valid())
    return make_errno(errno, "%s: fanotify_init(flags %#x, event flags %#x)", what.c_str(), r->flags, r->event_flags);
  for (auto& m : r->marks) {
    struct stat st;
    if (stat(m.path.c_str(), &st) < 0)
      return make_errno(errno, "%s: fanotify %s mark: %s", what.c_str(), m.kind.c_str(), m.path.c_str());
    if (!o.skip_file_check && (st.st_dev != m.dev || st.st_ino != m.ino)) {
      Error e = make_error("%s: fanotify %s mark: %s was replaced since the dump", what.c_str(), m.kind.c_str(),
                           m.path.c_str());
      e.remedy = "restore it, or pass --skip-file-check to mark the new file";
      return e;
    }
    const unsigned kind = mark_kind_flag(m.kind);
    const unsigned keep = m.mflags & FAN_MARK_EVICTABLE;
    if (m.mask && fanotify_mark(fd.get(), FAN_MARK_ADD | kind | keep, m.mask, AT_FDCWD, m.path.c_str()) < 0)
      return make_errno(errno, "%s: fanotify %s mark on %s (mask %#llx)", what.c_str(), m.kind.c_str(),
                        m.path.c_str(), (unsigned long long)m.mask);
    if (m.ignored_mask) {
      unsigned how = (m.mflags & kFanMarkIgnore) ? kFanMarkIgnore : FAN_MARK_IGNORED_MASK;
      unsigned flags = FAN_MARK_ADD | kind | keep | how | (m.mflags & FAN_MARK_IGNORED_SURV_MODIFY);
      if (fanotify_mark(fd.get(), flags, m.ignored_mask, AT_FDCWD, m.path.c_str()) < 0)
        return make_errno(errno, "%s: fanotify %s mark on %s (ignored mask %#llx)", what.c_str(), m.kind.c_str(),
                          m.path.c_str(), (unsigned long long)m.ignored_mask);
    }
  }
  // FAN_NONBLOCK was in the group's flags as dumped; the description's own
  // flag may have changed since (F_SETFL).
  int fl = fcntl(fd.get(), F_GETFL);
  int want = (f.flags & O_NONBLOCK) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (fl < 0 || (want != fl && fcntl(fd.get(), F_SETFL, want) < 0)) return make_errno(errno, "%s: F_SETFL", what.c_str());
  return fd.release();
}

}  // namespace cr
