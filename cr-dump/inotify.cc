// Dump side of inotify instances (record InotifyRec in
// common/image/event_fds.h; restore side: cr-restore/inotify.cc). fdinfo
// gives each watch's wd, mask and the kernel's file handle of the watched
// inode; open_by_handle_at on a mount of that filesystem turns the handle
// into a path (file_of_handle, which fanotify's inode marks use too).
// Unread events cannot be read without consuming them: an instance holding
// some is refused.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/fd.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

// A directory of a mount of the filesystem whose kernel dev is `sdev`
// (fdinfo's sdev: major << 20 | minor), from our mountinfo.
Result<UniqueFd> open_mount_of(uint32_t sdev) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  unsigned want_major = sdev >> 20, want_minor = sdev & 0xfffff;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, majmin, root, mnt;
    ls >> id >> parent >> majmin >> root >> mnt;
    unsigned ma, mi;
    if (sscanf(majmin.c_str(), "%u:%u", &ma, &mi) != 2 || ma != want_major || mi != want_minor) continue;
    // (Not O_PATH: open_by_handle_at takes no O_PATH descriptor, EBADF on 6.18.)
    UniqueFd fd(open(mnt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.valid()) return fd;
  }
  return make_error("no mount of device %u:%u to find the marked file by", want_major, want_minor);
}

}  // namespace

Status check_no_queued_events(pid_t pid, int fd, const char* kind) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return make_pid_error(pid, errno, "pidfd_open");
  UniqueFd copy(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!copy.valid()) return make_pid_error(pid, errno, "fd %d: pidfd_getfd", fd);
  int queued = 0;
  if (ioctl(copy.get(), FIONREAD, &queued) < 0) return make_pid_error(pid, errno, "fd %d: FIONREAD", fd);
  if (queued > 0)
    return make_pid_error(pid, 0, "fd %d: %s instance holds %d bytes of unread events; not supported", fd, kind, queued);
  return ok_status();
}

Result<MarkedFile> file_of_handle(pid_t pid, int fd, const std::string& what, uint32_t sdev, uint64_t ino, int hbytes,
                                  int htype, const char* hex) {
  if (hbytes <= 0 || hbytes > 128 || strlen(hex) != static_cast<size_t>(hbytes) * 2)
    return make_pid_error(pid, 0, "fd %d: %s has no file handle for its file; not supported", fd, what.c_str());
  std::vector<unsigned char> buf(sizeof(struct file_handle) + hbytes);
  auto* fh = reinterpret_cast<struct file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(hbytes);
  fh->handle_type = htype;
  for (int i = 0; i < hbytes; i++) {
    unsigned b;
    sscanf(hex + 2 * i, "%2x", &b);
    fh->f_handle[i] = static_cast<unsigned char>(b);
  }
  auto mnt = open_mount_of(sdev);
  if (!mnt) return make_pid_error(pid, 0, "fd %d: %s: %s", fd, what.c_str(), mnt.error().message.c_str());
  UniqueFd target(static_cast<int>(syscall(SYS_open_by_handle_at, mnt->get(), fh, O_PATH | O_CLOEXEC)));
  if (!target.valid())
    return make_pid_error(pid, errno, "fd %d: %s: cannot open the marked inode %#" PRIx64 " by handle", fd,
                          what.c_str(), ino);
  char path[4096];
  std::string self = "/proc/self/fd/" + std::to_string(target.get());
  ssize_t n = readlink(self.c_str(), path, sizeof path - 1);
  if (n <= 0) return make_pid_error(pid, errno, "fd %d: %s: readlink", fd, what.c_str());
  path[n] = 0;
  std::string p(path);
  struct stat st;
  if (p.empty() || p[0] != '/' || (p.size() >= 10 && p.compare(p.size() - 10, 10, " (deleted)") == 0) ||
      stat(p.c_str(), &st) < 0 || st.st_ino != ino)
    return make_pid_error(pid, 0, "fd %d: %s: its file %s is not reachable by path; not supported", fd, what.c_str(),
                          p.c_str());
  return MarkedFile{p, static_cast<uint64_t>(st.st_dev)};
}

Status dump_inotify(pid_t pid, int fd, const proc::FdInfo& info, const FileRec& f, Files& files) {
  TRY_STATUS(check_no_queued_events(pid, fd, "inotify"));
  InotifyRec r;
  r.file_id = f.id;
  for (const std::string& line : info.find_all("inotify")) {
    // "wd:3 ino:6286d sdev:fe00000 mask:fff ignored_mask:0 fhandle-bytes:8
    //  fhandle-type:1 f_handle:6d28060000000000"
    int wd, hbytes, htype;
    uint64_t ino;
    uint32_t sdev, mask, ignored;
    char hex[260] = "";
    if (sscanf(line.c_str(), "wd:%x ino:%" SCNx64 " sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x "
               "f_handle:%258s", &wd, &ino, &sdev, &mask, &ignored, &hbytes, &htype, hex) != 8)
      return make_pid_error(pid, 0, "fd %d: inotify watch '%s' (no file handle for its file?); not supported", fd,
                            line.c_str());
    MarkedFile m = TRY(file_of_handle(pid, fd, "inotify watch " + std::to_string(wd), sdev, ino, hbytes, htype, hex));
    r.watches.push_back({wd, mask, m.path, m.dev, ino});
  }
  std::sort(r.watches.begin(), r.watches.end(), [](auto& a, auto& b) { return a.wd < b.wd; });
  files.inotifies.push_back(std::move(r));
  return ok_status();
}

}  // namespace cr
