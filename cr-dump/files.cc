// Dump side of open files (records: common/image/files.h; restore side:
// cr-restore/files.cc): each fd's target, flags, offset and close-on-exec
// flag, from /proc/PID/fd and fdinfo. fds that share one open file
// description (dup, 2>&1) are found with kcmp and saved as one file.
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

#include "common/log.h"
#include "common/proc/fdinfo.h"
#include "common/proc/misc.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

// Character devices whose state is nothing but their identity.
bool plain_char_device(dev_t rdev) {
  if (major(rdev) != 1) return false;  // mem devices
  unsigned m = minor(rdev);
  return m == 3 || m == 5 || m == 7 || m == 8 || m == 9;  // null zero full random urandom
}

// The kind of an fd we cannot dump yet, for the message.
std::string kind_of_unsupported(const std::string& link, const struct stat& st) {
  if (S_ISSOCK(st.st_mode)) return "socket";
  if (S_ISFIFO(st.st_mode)) return link.rfind("pipe:", 0) == 0 ? "pipe" : "FIFO " + link + " (deleted)";
  if (S_ISBLK(st.st_mode)) return "block device " + link;
  if (S_ISCHR(st.st_mode)) return "character device " + link;  // terminals: dump_tty
  if (link.rfind("anon_inode:", 0) == 0) {
    std::string k = link.substr(11);
    if (!k.empty() && k.front() == '[') k = k.substr(1, k.size() - 2);
    if (k == "eventpoll") k = "epoll";
    return k + " descriptor";
  }
  return "file " + link;
}

long kcmp_file(pid_t pid1, int a, pid_t pid2, int b) { return syscall(SYS_kcmp, pid1, pid2, KCMP_FILE, a, b); }

// The unread bytes of the pipe behind `pid`'s fd: a new read end opened
// through /proc (the dumped description is left alone), tee(2)d into a
// pipe of ours of the same capacity (tee copies without consuming), then
// read from ours.
Result<PipeRec> dump_pipe(pid_t pid, int fd, uint64_t ino, uint64_t id) {
  std::string p = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  UniqueFd src(open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (src.get() < 0) return make_pid_error(pid, errno, "fd %d: cannot open its pipe to read the data in it", fd);
  int size = fcntl(src.get(), F_GETPIPE_SZ);
  if (size < 0) return make_pid_error(pid, errno, "fd %d: F_GETPIPE_SZ", fd);
  int avail = 0;
  if (ioctl(src.get(), FIONREAD, &avail) < 0) return make_pid_error(pid, errno, "fd %d: FIONREAD on its pipe", fd);
  PipeRec r;
  r.id = id;
  r.ino = ino;
  r.size = static_cast<uint64_t>(size);
  if (avail == 0) return r;
  int pp[2];
  if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0) return make_errno(errno, "pipe");
  UniqueFd rd(pp[0]), wr(pp[1]);
  if (fcntl(wr.get(), F_SETPIPE_SZ, size) < size)
    return make_pid_error(pid, errno, "fd %d: cannot make a pipe of %d bytes to copy its pipe", fd, size);
  ssize_t n = tee(src.get(), wr.get(), static_cast<size_t>(size), SPLICE_F_NONBLOCK);
  if (n != avail)
    return make_pid_error(pid, n < 0 ? errno : 0, "fd %d: copied %zd of the %d bytes in its pipe", fd, n, avail);
  r.data.data.resize(static_cast<size_t>(n));
  size_t got = 0;
  while (got < r.data.data.size()) {
    ssize_t k = read(rd.get(), r.data.data.data() + got, r.data.data.size() - got);
    if (k <= 0) return make_pid_error(pid, k < 0 ? errno : 0, "fd %d: reading the copy of its pipe", fd);
    got += static_cast<size_t>(k);
  }
  return r;
}

}  // namespace

Result<FdTable> dump_files(pid_t pid, Files& files, FileSharing& sharing, uint64_t ghost_limit, bool file_locks) {
  FdTable t;
  t.pid = pid;
  auto fds = TRY(proc::list_fds(pid));
  auto& seen = sharing.seen;
  std::vector<std::pair<int, std::vector<FileLockRec>>> fd_locks;
  for (int fd : fds) {
    auto link = TRY(proc::read_fd_link(pid, fd));
    auto info = TRY(proc::read_fdinfo(pid, fd));
    auto locks = TRY(parse_fd_locks(pid, fd, info, file_locks));
    if (!locks.empty()) fd_locks.push_back({fd, std::move(locks)});
    std::string p = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    struct stat st;
    if (stat(p.c_str(), &st) < 0) {
      // Anonymous inodes and sockets stat fine; a failure here is a race or
      // a file we cannot reach.
      return make_pid_error(pid, errno, "fd %d (%s): cannot stat", fd, link.path.c_str());
    }
    FdRec rec;
    rec.fd = fd;
    rec.cloexec = info.flags & O_CLOEXEC;
    // One description at several fds, of this process or another one of
    // the tree: the same file id.
    bool shared = false;
    for (auto& s : seen) {
      if (s.dev == st.st_dev && s.ino == st.st_ino && kcmp_file(s.pid, s.fd, pid, fd) == 0) {
        rec.file_id = s.id;
        shared = true;
        break;
      }
    }
    if (!shared) {
      bool anon = link.path.rfind("anon_inode:", 0) == 0;
      FileRec f;
      // What every kind of file records: a new id, the description's flags
      // and offset, and the inode.
      auto describe = [&](const char* type, const std::string& path) {
        f.id = files.files.size() + 1;
        f.type = type;
        f.path = path;
        f.flags = info.flags & ~O_CLOEXEC;
        f.pos = static_cast<uint64_t>(info.pos);
        f.mode = st.st_mode;
        f.dev = st.st_dev;
        f.ino = st.st_ino;
      };
      bool fifo = S_ISFIFO(st.st_mode) && !link.deleted && !link.path.empty() && link.path[0] == '/';
      if (S_ISFIFO(st.st_mode) && (link.path.rfind("pipe:", 0) == 0 || fifo)) {
        // A pipe, or a named FIFO (its pipe lives while an fd holds it).
        describe(fifo ? "fifo" : "pipe", fifo ? link.path : "");
        f.pos = 0;
        for (auto& pr : files.pipes)
          if (pr.ino == st.st_ino && pr.path.empty() != fifo) f.pipe_id = pr.id;
        if (!f.pipe_id) {
          PipeRec pr = TRY(dump_pipe(pid, fd, st.st_ino, files.pipes.size() + 1));
          if (fifo) pr.path = link.path;
          f.pipe_id = pr.id;
          files.pipes.push_back(std::move(pr));
        }
        rec.file_id = f.id;
        files.files.push_back(f);
        seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
        t.fds.push_back(rec);
        continue;
      }
      if (S_ISREG(st.st_mode) && link.deleted && link.path.rfind("/memfd:", 0) == 0) {
        // A memfd: its object is saved as shared memory, the description
        // (flags, offset) here.
        UniqueFd mfd(open(p.c_str(), O_RDONLY | O_CLOEXEC));
        if (!mfd.valid()) return make_pid_error(pid, errno, "fd %d: cannot open memfd %s", fd, link.path.c_str());
        describe("memfd", link.path);
        f.shmem_id = TRY(dump_shmem_object(pid, mfd.get(), link.path, "fd " + std::to_string(fd), files));
        rec.file_id = f.id;
        files.files.push_back(f);
        seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
        t.fds.push_back(rec);
        continue;
      }
      if (const char* et = anon ? event_fd_type(link.path) : nullptr) {
        describe(et, "");
        TRY_STATUS(dump_event_fd(pid, fd, info, f, files));
        rec.file_id = f.id;
        files.files.push_back(f);
        seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
        t.fds.push_back(rec);
        continue;
      }
      if (info.flags & O_PATH) {
        // Only a reference to a place in the file tree: open it again there.
        if (link.deleted || link.path.empty() || link.path[0] != '/')
          return make_pid_error(pid, 0, "fd %d: O_PATH descriptor of %s, which is not reachable by path; not "
                                "supported", fd, link.path.c_str());
        describe("opath", link.path);
        rec.file_id = f.id;
        files.files.push_back(f);
        seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
        t.fds.push_back(rec);
        continue;
      }
      if (S_ISSOCK(st.st_mode)) {
        describe("unix", "");
        f.pos = 0;
        TRY_STATUS(dump_socket(pid, fd, f, files));
        rec.file_id = f.id;
        files.files.push_back(f);
        seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
        t.fds.push_back(rec);
        continue;
      }
      if (!anon && S_ISCHR(st.st_mode) && is_terminal_device(st.st_rdev)) {
        describe("tty", link.path);
        TRY_STATUS(dump_tty(pid, fd, link.path, st, f, files, sharing));
        rec.file_id = f.id;
        files.files.push_back(f);
        seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
        t.fds.push_back(rec);
        continue;
      }
      if (!anon && S_ISREG(st.st_mode) && link.deleted) {
        describe("ghost", link.path);
        f.ghost_id = TRY(dump_deleted_file(pid, fd, link.path, st, ghost_limit, files));
        rec.file_id = f.id;
        files.files.push_back(f);
        seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
        t.fds.push_back(rec);
        continue;
      }
      const char* type = nullptr;
      if (!anon && S_ISREG(st.st_mode)) type = "reg";
      else if (!anon && S_ISDIR(st.st_mode)) type = "dir";
      else if (!anon && S_ISCHR(st.st_mode) && plain_char_device(st.st_rdev)) type = "chr";
      if (!type)
        return make_pid_error(pid, 0, "fd %d: %s is not supported", fd, kind_of_unsupported(link.path, st).c_str());
      if (link.deleted)
        return make_pid_error(pid, 0, "fd %d: deleted file %s is not supported", fd, link.path.c_str());
      if (link.path.empty() || link.path[0] != '/')
        return make_pid_error(pid, 0, "fd %d: %s is not reachable by path", fd, link.path.c_str());
      if (link.path.rfind("/memfd:", 0) == 0) return make_pid_error(pid, 0, "fd %d: memfd is not supported", fd);
      describe(type, link.path);
      f.rdev = st.st_rdev;
      f.size = S_ISREG(st.st_mode) ? st.st_size : 0;
      f.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      struct statx sx;
      if (statx(AT_FDCWD, p.c_str(), 0, STATX_BTIME, &sx) == 0 && (sx.stx_mask & STATX_BTIME))
        f.btime_ns = int64_t(sx.stx_btime.tv_sec) * 1000000000 + sx.stx_btime.tv_nsec;
      rec.file_id = f.id;
      files.files.push_back(f);
      seen.push_back({pid, fd, st.st_dev, st.st_ino, f.id});
    }
    t.fds.push_back(rec);
  }
  TRY_STATUS(resolve_epoll_targets(pid, t, files));
  for (auto& [fd, locks] : fd_locks)
    for (auto& d : t.fds)
      if (d.fd == fd)
        for (size_t i = 0; i < files.files.size(); i++)
          if (files.files[i].id == d.file_id) {
            FileRec f = files.files[i];
            add_fd_locks(locks, f, files, t);
            break;
          }
  TRY_STATUS(check_posix_locks_placed(pid, fd_locks, t));
  pr_debug(pid, "files: %zu fds", t.fds.size());
  return t;
}

}  // namespace cr
