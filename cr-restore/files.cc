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

#include "common/fd.h"
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
    Error e = make_error("%s: %s was replaced since the dump (device %#llx inode %llu, was device %#llx inode %llu)",
                         what.c_str(), path.c_str(), (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                         (unsigned long long)dev, (unsigned long long)ino);
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

// Set the status flags of a description (O_NONBLOCK, O_APPEND, ...).
Status set_status_flags(int fd, uint32_t flags, const char* what) {
  int want = static_cast<int>(flags) & (O_APPEND | O_NONBLOCK | O_ASYNC | O_NOATIME);
  int cur = fcntl(fd, F_GETFL);
  if (cur < 0) return make_errno(errno, "%s: F_GETFL", what);
  if ((cur & (O_APPEND | O_NONBLOCK | O_ASYNC | O_NOATIME)) == want) return ok_status();
  if (fcntl(fd, F_SETFL, (cur & ~(O_APPEND | O_NONBLOCK | O_ASYNC | O_NOATIME)) | want) < 0)
    return make_errno(errno, "%s: F_SETFL %#x", what, want);
  return ok_status();
}

Status place_at(int fd, int at, const char* what) {
  if (dup3(fd, at, O_CLOEXEC) < 0) {
    int e = errno;
    close(fd);
    return make_errno(e, "%s: cannot place it at fd %d", what, at);
  }
  close(fd);
  return ok_status();
}

namespace {

// A regular file of the images still is the dumped one: identity, size
// and, where the filesystem keeps one, birth time.
Status check_reg_unchanged(const FileRec& f, const std::string& what, const RestoreOptions& o) {
  TRY_STATUS(check_file_unchanged(what, f.path, f.dev, f.ino, f.size, o));
  // ext4 gives a freed inode number to the next new file, so a file
  // replaced after the dump may show the old number: its birth time
  // tells it apart.
  struct statx sx;
  if (!o.skip_file_check && f.btime_ns && statx(AT_FDCWD, f.path.c_str(), 0, STATX_BTIME, &sx) == 0 &&
      (sx.stx_mask & STATX_BTIME) &&
      int64_t(sx.stx_btime.tv_sec) * 1000000000 + sx.stx_btime.tv_nsec != f.btime_ns) {
    Error e = make_error("%s: %s was replaced since the dump (a new file with the same inode number)", what.c_str(),
                         f.path.c_str());
    e.remedy = "restore it, or pass --skip-file-check to accept the new file";
    return e;
  }
  return ok_status();
}

Result<int> open_file(const Files& files, const FileRec& f, const TreePlan& plan, const RestoreOptions& o,
                      int fdnum) {
  std::string what = "fd " + std::to_string(fdnum);
  if (is_event_fd_type(f.type)) return open_event_fd(files, f, what);
  if (f.type == "inotify") return open_inotify(files, f, what, o);
  if (f.type == "fanotify") return open_fanotify(files, f, what, o);
  if (f.type == "bpf-map") return open_bpf_map(files, f, what);
  if (f.type == "tty-external" || f.type == "dev-tty") return open_tty(f, plan, what);
  if (f.type == "pty-master" || f.type == "pty-slave")
    return make_error("%s: pty end without its pair", what.c_str());  // made by make_pty, never here
  if (f.type == "inet") return open_inet_socket(files, f, what);
  if (f.type == "opath") {
    // O_NOFOLLOW: a descriptor of a symlink itself shows the link's path.
    int fd = open(f.path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return make_errno(errno, "%s: cannot open %s again (O_PATH)", what.c_str(), f.path.c_str());
    struct stat st;
    if (!o.skip_file_check && (fstat(fd, &st) < 0 || st.st_dev != f.dev || st.st_ino != f.ino)) {
      close(fd);
      Error e = make_error("%s: %s was replaced since the dump", what.c_str(), f.path.c_str());
      e.remedy = "restore it, or pass --skip-file-check to accept the new file";
      return e;
    }
    return fd;
  }
  int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
  // A new description of an object made once for the tree and inherited
  // at its transit fd: a memfd (made by its holders' common ancestor) or a
  // deleted file (made by cr-restore).
  if (f.type == "memfd" || f.type == "ghost") {
    const char* kind = f.type == "memfd" ? "memfd" : "deleted file";
    int at = f.type == "memfd" ? plan.transit_shmem.at(f.shmem_id) : plan.transit_ghost.at(f.ghost_id);
    std::string self = "/proc/self/fd/" + std::to_string(at);
    int fd = open(self.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return make_errno(errno, "%s: cannot open %s %s again", what.c_str(), kind, f.path.c_str());
    if (f.pos && lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
      int e = errno;
      close(fd);
      return make_errno(e, "%s: cannot seek %s %s", what.c_str(), kind, f.path.c_str());
    }
    return fd;
  }
  if (f.type == "reg") TRY_STATUS(check_reg_unchanged(f, what, o));
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

// One pipe with its capacity and its unread bytes, and every description
// of its ends at their transit numbers: the first read end and the first
// write end are the pipe's own; any other is reopened through /proc. A
// named FIFO is opened read-write (that makes its pipe) while its ends are
// opened through /proc, and closed after.
Status make_pipe(const Files& files, const PipeRec& pr, const TreePlan& plan, const RestoreOptions& o) {
  bool fifo = !pr.path.empty();
  std::string what = fifo ? "FIFO " + pr.path : "pipe " + std::to_string(pr.ino);
  UniqueFd rd, wr;
  if (fifo) {
    for (auto& f : files.files)
      if (f.type == "fifo" && f.pipe_id == pr.id) {
        TRY_STATUS(check_file_unchanged(what, pr.path, f.dev, f.ino, 0, o));
        break;
      }
    struct stat st;
    if (stat(pr.path.c_str(), &st) < 0 || !S_ISFIFO(st.st_mode))
      return make_error("%s is no longer a FIFO", what.c_str());
    int rw = open(pr.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (rw < 0) return make_errno(errno, "cannot open %s", what.c_str());
    rd = UniqueFd(rw);
    wr = UniqueFd(fcntl(rw, F_DUPFD_CLOEXEC, 0));
    if (!wr.valid()) return make_errno(errno, "%s", what.c_str());
  } else {
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0) return make_errno(errno, "%s", what.c_str());
    rd = UniqueFd(pp[0]);
    wr = UniqueFd(pp[1]);
  }
  int cur = fcntl(wr.get(), F_GETPIPE_SZ);
  if (cur != static_cast<int>(pr.size) && fcntl(wr.get(), F_SETPIPE_SZ, static_cast<int>(pr.size)) < 0) {
    Error e = make_errno(errno, "%s: cannot give it its capacity of %llu bytes", what.c_str(),
                         (unsigned long long)pr.size);
    e.remedy = "raise /proc/sys/fs/pipe-max-size";
    return e;
  }
  size_t off = 0;
  while (off < pr.data.size()) {
    ssize_t n = write(wr.get(), pr.data.data.data() + off, pr.data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_errno(errno, "%s: cannot put back its %zu bytes", what.c_str(), pr.data.size());
    off += static_cast<size_t>(n);
  }
  bool used_rd = false, used_wr = false;
  for (auto& f : files.files) {
    if ((f.type != "pipe" && f.type != "fifo") || f.pipe_id != pr.id) continue;
    auto t = plan.transit_fd.find(f.id);
    if (t == plan.transit_fd.end()) continue;
    bool reader = (f.flags & O_ACCMODE) == O_RDONLY;
    bool& used = reader ? used_rd : used_wr;
    int src;
    if (!used && !fifo) {
      src = fcntl(reader ? rd.get() : wr.get(), F_DUPFD_CLOEXEC, 0);
    } else {
      std::string self = "/proc/self/fd/" + std::to_string(reader ? rd.get() : wr.get());
      src = open(self.c_str(), (reader ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
    }
    if (src < 0) return make_errno(errno, "%s: cannot open an end", what.c_str());
    used = true;
    Status st = set_status_flags(src, f.flags, what.c_str());
    if (!st) {
      close(src);
      return st;
    }
    TRY_STATUS(place_at(src, t->second, what.c_str()));
  }
  return ok_status();
}

}  // namespace

Status create_transit_files(const Files& files, const TreePlan& plan, int index, const RestoreOptions& o) {
  if (index == plan.unix_creator) TRY_STATUS(make_unix_sockets(files, plan));
  for (uint64_t tty : plan.creates_ttys[index])
    for (auto& t : files.ttys)
      if (t.id == tty) TRY_STATUS(make_pty(files, t, plan));
  for (uint64_t pipe : plan.creates_pipes[index])
    for (auto& pr : files.pipes)
      if (pr.id == pipe) TRY_STATUS(make_pipe(files, pr, plan, o));
  for (uint64_t id : plan.creates_files[index])
    for (auto& f : files.files)
      if (f.id == id) {
        int at = plan.transit_fd.at(id);
        int fd = TRY(open_file(files, f, plan, o, at));
        Status locked = take_description_locks(f, fd, "fd " + std::to_string(at));
        if (!locked) {
          close(fd);
          return locked;
        }
        TRY_STATUS(place_at(fd, at, f.path.c_str()));
      }
  return ok_status();
}

Result<int> restore_files(const Files& files, const FdTable& t, const TreePlan& plan, const RestoreOptions& o,
                          std::vector<int>& keep) {
  std::map<uint64_t, const FileRec*> by_id;
  for (auto& f : files.files) by_id[f.id] = &f;
  int top = 2;
  for (auto& d : t.fds) top = std::max(top, d.fd);
  // Service fds (the error pipe) go above every restored and transit number.
  int service = std::max(top + 1, plan.transit_end);
  for (int& k : keep)
    if (k < service) k = TRY(move_fd_above(k, service));
  auto transit = [&](int fd) { return fd >= plan.transit_base && fd < plan.transit_end; };
  // (The shared memory fds in the transit range are mapped by now.)
  // Close everything else this process inherited from cr-restore (the
  // transit fds stay until every fd is in place).
  std::vector<int> open_now;
  if (DIR* d = opendir("/proc/self/fd")) {
    int self = dirfd(d);
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      int fd = atoi(e->d_name);
      // Above the transit range: service fds, this task's or those of a
      // child sharing the table (CLONE_FILES), which closes its own.
      if (fd == self || transit(fd) || fd >= plan.transit_end ||
          std::find(keep.begin(), keep.end(), fd) != keep.end())
        continue;
      open_now.push_back(fd);
    }
    closedir(d);
  } else {
    return make_errno(errno, "cannot list /proc/self/fd");
  }
  for (int fd : open_now) close(fd);
  // Shared descriptions (one file id at several numbers) are opened once and
  // duplicated, so they keep one offset; those shared with other tasks
  // come from their transit fds.
  std::map<uint64_t, int> opened;
  for (auto& d : t.fds) {
    const FileRec& f = *by_id.at(d.file_id);
    int src;
    auto it = opened.find(d.file_id);
    auto tr = plan.transit_fd.find(d.file_id);
    if (it != opened.end()) {
      src = it->second;
    } else if (tr != plan.transit_fd.end()) {
      src = tr->second;
    } else {
      src = TRY(open_file(files, f, plan, o, d.fd));
      opened[d.file_id] = src;
      TRY_STATUS(take_description_locks(f, src, "fd " + std::to_string(d.fd)));
    }
    if (src != d.fd) {
      if (dup3(src, d.fd, d.cloexec ? O_CLOEXEC : 0) < 0)
        return make_errno(errno, "fd %d: cannot place %s", d.fd, f.path.empty() ? f.type.c_str() : f.path.c_str());
    } else if (fcntl(d.fd, F_SETFD, d.cloexec ? FD_CLOEXEC : 0) < 0) {
      return make_errno(errno, "fd %d", d.fd);
    }
  }
  // Close the temporary numbers that are not restored fds themselves, and
  // the transit range.
  std::set<int> wanted;
  for (auto& d : t.fds) wanted.insert(d.fd);
  for (auto& [id, fd] : opened)
    if (!wanted.count(fd)) close(fd);
  for (auto& [id, fd] : plan.transit_fd) close(fd);
  for (auto& [id, fd] : plan.transit_shmem) close(fd);
  for (auto& [id, fd] : plan.transit_ctty) close(fd);
  if (plan.transit_ext_tty >= 0) close(plan.transit_ext_tty);
  close_deleted_files(plan);
  TRY_STATUS(register_epoll_targets(files, t));
  TRY_STATUS(take_posix_locks(t));
  return service;
}

Status check_files_here(const SetImages& imgs, const RestoreOptions& o) {
  char what[128];
  // Every file an fd of the tree opens by its path: there, of the dumped
  // type, the same file (unless --skip-file-check), a regular file taking
  // the dumped offset (a filesystem limits it: ext4 to 16 TiB).
  for (const FileRec& f : imgs.files.files) {
    if (f.type != "reg" && f.type != "dir" && f.type != "chr" && f.type != "opath") continue;
    // A path under /proc may name a pid of the tree, which exists only
    // once the restore has made it: the task checks it as it opens it.
    if (f.path.rfind("/proc/", 0) == 0) continue;
    snprintf(what, sizeof what, "files.img: file %llu", (unsigned long long)f.id);
    struct stat st;
    if (f.type == "opath") {
      if (lstat(f.path.c_str(), &st) < 0) return make_errno(errno, "%s: %s", what, f.path.c_str());
      if (!o.skip_file_check && (st.st_dev != f.dev || st.st_ino != f.ino)) {
        Error e = make_error("%s: %s was replaced since the dump", what, f.path.c_str());
        e.remedy = "restore it, or pass --skip-file-check to accept the new file";
        return e;
      }
      continue;
    }
    if (f.type == "reg") TRY_STATUS(check_reg_unchanged(f, what, o));
    if (stat(f.path.c_str(), &st) < 0) return make_errno(errno, "%s: %s", what, f.path.c_str());
    if ((st.st_mode & S_IFMT) != (f.mode & S_IFMT))
      return make_error("%s: %s is no longer of the same type (mode %#o, was %#o)", what, f.path.c_str(),
                        st.st_mode, f.mode);
    if (f.type == "chr" && st.st_rdev != f.rdev)
      return make_error("%s: %s is device %u:%u, was %u:%u", what, f.path.c_str(), major(st.st_rdev),
                        minor(st.st_rdev), major(f.rdev), minor(f.rdev));
    // A regular file or directory opens with its flags (as open_file
    // will: O_DIRECT, say, is for some filesystems only), to its offset.
    if (f.type == "reg" || f.type == "dir") {
      int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
      UniqueFd fd(open(f.path.c_str(), flags | O_CLOEXEC));
      if (!fd.valid())
        return make_errno(errno, "%s: cannot open %s with flags %#llo", what, f.path.c_str(),
                          (unsigned long long)f.flags);
      if (f.type == "reg" && f.pos && lseek(fd.get(), static_cast<off_t>(f.pos), SEEK_SET) < 0)
        return make_errno(errno, "%s: pos %llu: cannot seek %s there", what, (unsigned long long)f.pos,
                          f.path.c_str());
    }
  }
  // Every named FIFO: still a FIFO, the same one.
  for (const PipeRec& p : imgs.files.pipes) {
    if (p.path.empty()) continue;
    snprintf(what, sizeof what, "files.img: pipe %llu: FIFO", (unsigned long long)p.id);
    for (auto& f : imgs.files.files)
      if (f.type == "fifo" && f.pipe_id == p.id) {
        TRY_STATUS(check_file_unchanged(what, p.path, f.dev, f.ino, 0, o));
        break;
      }
    struct stat st;
    if (stat(p.path.c_str(), &st) < 0 || !S_ISFIFO(st.st_mode))
      return make_error("%s %s is no longer a FIFO", what, p.path.c_str());
  }
  for (const TaskImages& t : imgs.tasks) {
    if (t.entry.zombie) continue;
    // Its working directory and root (chdir, chroot).
    const std::string cn = image_name(ImageKind::Core, t.entry.pid);
    for (auto [field, path] : {std::pair<const char*, const std::string&>{"cwd", t.core.cwd}, {"root", t.core.root}}) {
      struct stat st;
      if (t.entry.shares_fs) break;  // its parent's
      if (stat(path.c_str(), &st) < 0) return make_errno(errno, "%s: %s %s", cn.c_str(), field, path.c_str());
      if (!S_ISDIR(st.st_mode)) return make_error("%s: %s %s is not a directory", cn.c_str(), field, path.c_str());
    }
    const std::string mm = image_name(ImageKind::Mm, t.entry.pid);
    // The executable: PR_SET_MM_MAP takes a regular file it may execute.
    snprintf(what, sizeof what, "%s: exe", mm.c_str());
    TRY_STATUS(check_file_unchanged(what, t.mm.exe, t.mm.exe_dev, t.mm.exe_ino, t.mm.exe_size, o));
    struct stat st;
    if (stat(t.mm.exe.c_str(), &st) < 0 || !S_ISREG(st.st_mode) || access(t.mm.exe.c_str(), X_OK) < 0)
      return make_error("%s: %s is not an executable regular file here", what, t.mm.exe.c_str());
    // Every mapped file; one mapped shared and writable opens for writing.
    for (size_t i = 0; i < t.mm.vmas.size(); i++) {
      const VmaRec& v = t.mm.vmas[i];
      if (v.kind != "file") continue;
      snprintf(what, sizeof what, "%s: vma %zu (mapping at %#llx)", mm.c_str(), i, (unsigned long long)v.start);
      TRY_STATUS(check_file_unchanged(what, v.name, v.dev, v.ino, v.file_size, o));
      if (v.shared && v.may_write && access(v.name.c_str(), W_OK) < 0)
        return make_errno(errno, "%s: %s is mapped shared and writable, but cannot be written here", what,
                          v.name.c_str());
      // Never a program or library opened for writing: while it is, every
      // exec of it (or of a program it is the interpreter of) fails with
      // ETXTBSY. cr-dump refuses such a mapping too (cr-dump/memory.cc).
      if (v.shared && v.may_write && stat(v.name.c_str(), &st) == 0 && (st.st_mode & 0111))
        return make_error("%s: %s is an executable file mapped shared and writable: not opened for writing", what,
                          v.name.c_str());
    }
  }
  return ok_status();
}

}  // namespace cr
