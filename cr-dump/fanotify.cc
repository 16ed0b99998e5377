// Dump side of fanotify groups (record FanotifyRec in
// common/image/event_fds.h; restore side: cr-restore/fanotify.cc). fdinfo
// shows the group's fanotify_init flags and each mark:
//   fanotify flags:3 event-flags:8000
//   fanotify ino:3c51a sdev:fe00000 mflags:0 mask:28 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:..
//   fanotify mnt_id:1b mflags:40 mask:0 ignored_mask:20
//   fanotify sdev:15 mflags:0 mask:8000 ignored_mask:0
// (an inode mark, a mount mark, a filesystem mark; Linux 6.18). An inode
// mark's file is found by its handle, as inotify's; a mount by its id in
// the task's mountinfo; a filesystem by a mount of its device there.
// Unread events are refused, as for inotify; so are permission events a
// listener has read and not answered yet, which the kernel does not show
// (they are granted when the group goes, so the dump cannot tell).
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cr-dump/dump.h"

namespace cr {

namespace {

// The mount point of mount `mnt_id` in `pid`'s mount table, or of the first
// mount of device `sdev` (fdinfo's kernel encoding: major << 20 | minor)
// when mnt_id is negative. Empty if there is none.
std::string mount_point_of(pid_t pid, long mnt_id, uint32_t sdev) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    long id, parent;
    std::string majmin, root, mnt;
    if (!(ls >> id >> parent >> majmin >> root >> mnt)) continue;
    if (mnt_id >= 0) {
      if (id == mnt_id) return mnt;
      continue;
    }
    unsigned ma, mi;
    if (sscanf(majmin.c_str(), "%u:%u", &ma, &mi) == 2 && ma == (sdev >> 20) && mi == (sdev & 0xfffff)) return mnt;
  }
  return "";
}

}  // namespace

Status dump_fanotify(pid_t pid, int fd, const proc::FdInfo& info, const FileRec& f, Files& files) {
  TRY_STATUS(check_no_queued_events(pid, fd, "fanotify"));
  FanotifyRec r;
  r.file_id = f.id;
  bool have_flags = false;
  for (const std::string& line : info.find_all("fanotify")) {
    if (sscanf(line.c_str(), "flags:%x event-flags:%x", &r.flags, &r.event_flags) == 2) {
      have_flags = true;
      continue;
    }
    FanotifyMarkRec m;
    uint64_t ino = 0;
    uint32_t sdev = 0;
    long mnt_id = -1;
    int hbytes = 0, htype = 0;
    char hex[260] = "";
    std::string where;
    if (sscanf(line.c_str(), "ino:%" SCNx64 " sdev:%x mflags:%x mask:%" SCNx64 " ignored_mask:%" SCNx64
               " fhandle-bytes:%x fhandle-type:%x f_handle:%258s", &ino, &sdev, &m.mflags, &m.mask, &m.ignored_mask,
               &hbytes, &htype, hex) == 8) {
      m.kind = "inode";
      MarkedFile mf = TRY(file_of_handle(pid, fd, "fanotify mark", sdev, ino, hbytes, htype, hex));
      m.path = mf.path;
      m.dev = mf.dev;
      m.ino = ino;
    } else if (sscanf(line.c_str(), "mnt_id:%lx mflags:%x mask:%" SCNx64 " ignored_mask:%" SCNx64, &mnt_id,
                      &m.mflags, &m.mask, &m.ignored_mask) == 4) {
      m.kind = "mount";
      m.path = mount_point_of(pid, mnt_id, 0);
      where = "mount " + std::to_string(mnt_id);
    } else if (sscanf(line.c_str(), "sdev:%x mflags:%x mask:%" SCNx64 " ignored_mask:%" SCNx64, &sdev, &m.mflags,
                      &m.mask, &m.ignored_mask) == 4) {
      m.kind = "filesystem";
      m.path = mount_point_of(pid, -1, sdev);
      where = "filesystem " + std::to_string(sdev >> 20) + ":" + std::to_string(sdev & 0xfffff);
    } else {
      return make_pid_error(pid, 0, "fd %d: fanotify mark '%s' is not understood; not supported", fd, line.c_str());
    }
    if (m.kind != "inode") {
      struct stat st;
      std::string at = "/proc/" + std::to_string(pid) + "/root" + m.path;
      if (m.path.empty() || stat(at.c_str(), &st) < 0)
        return make_pid_error(pid, 0, "fd %d: fanotify mark on %s, which has no mount point in its mount table; "
                              "not supported", fd, where.c_str());
      m.dev = st.st_dev;
      m.ino = st.st_ino;
    }
    r.marks.push_back(std::move(m));
  }
  if (!have_flags) return make_pid_error(pid, 0, "fd %d: fdinfo shows no fanotify flags (this kernel does not)", fd);
  files.fanotifies.push_back(std::move(r));
  return ok_status();
}

}  // namespace cr
