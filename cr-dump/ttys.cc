// Dump side of terminals (records: common/image/ttys.h; restore side:
// cr-restore/ttys.cc).
//
//  * A pseudo-terminal whose master (/dev/ptmx) is held in the tree: its
//    index, the slave's line settings and window size (termios ioctls on
//    a master act on its slave), locked and packet mode (master),
//    exclusive mode (slave). Data queued in either direction is refused:
//    a tty cannot be read without consuming it, and a dump must leave the
//    tree as it was.
//  * The controlling terminal of each process (/proc/PID/stat tty_nr,
//    tpgid): a pty of the tree is its session's, with the foreground
//    group; a session leader of the tree on any other terminal is refused.
//  * The terminal of a shell job (a terminal outside the tree: a pty slave
//    whose master is elsewhere, a VT, a serial line): its fds are kept as
//    "the external terminal" with cr-dump --shell-job, refused without.
//    A process whose controlling terminal is outside the tree but holds
//    no fd on it (a job started with its fds redirected) is dumped as the
//    tree's session (it joins cr-restore's session and terminal).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "common/fd.h"
#include "common/log.h"
#include "common/proc/stat.h"
#include "common/tty.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

constexpr unsigned kTtyAuxMajor = 5;  // /dev/tty (0), /dev/console (1), /dev/ptmx (2)

Result<UniqueFd> copy_fd(pid_t pid, int fd) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return make_pid_error(pid, errno, "fd %d: pidfd_open to read its terminal", fd);
  UniqueFd copy(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!copy.valid()) return make_pid_error(pid, errno, "fd %d: pidfd_getfd to read its terminal", fd);
  return copy;
}

// The record of a terminal: line settings and window size read from fd.
Status read_settings(pid_t pid, int fd, int copy, TtyRec& t) {
  auto tio = tty_get_termios(copy);
  if (!tio) return make_pid_error(pid, tio.error().err, "fd %d: terminal %s: %s", fd, tty_name(t).c_str(),
                                  tio.error().message.c_str());
  t.termios = *tio;
  if (auto st = tty_get_winsize(copy, t); !st)
    return make_pid_error(pid, st.error().err, "fd %d: terminal %s: %s", fd, tty_name(t).c_str(),
                          st.error().message.c_str());
  return ok_status();
}

TtyRec* find_pty(Files& files, int index) {
  for (auto& t : files.ttys)
    if (t.kind == "pty" && t.index == index) return &t;
  return nullptr;
}

TtyRec* find_external(Files& files, uint64_t rdev) {
  for (auto& t : files.ttys)
    if (t.kind == "external" && t.rdev == rdev) return &t;
  return nullptr;
}

// The pty of the tree with this index, made on first sight.
Result<TtyRec*> pty_record(pid_t pid, int fd, int copy, int index, Files& files) {
  if (TtyRec* t = find_pty(files, index)) return t;
  TtyRec t;
  t.id = files.ttys.size() + 1;
  t.kind = "pty";
  t.index = index;
  t.rdev = makedev(kPtySlaveMajor, static_cast<unsigned>(index));
  TRY_STATUS(read_settings(pid, fd, copy, t));
  files.ttys.push_back(std::move(t));
  return &files.ttys.back();
}

int ioctl_int(int fd, unsigned long req, int& out) {
  out = 0;
  return ioctl(fd, req, &out);
}

std::string dev_name(uint64_t rdev) {
  if (int i = pty_index_of(rdev); i >= 0) return "/dev/pts/" + std::to_string(i);
  // Other terminals are in sysfs: DEVNAME of their uevent.
  std::ifstream in("/sys/dev/char/" + std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev)) + "/uevent");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("DEVNAME=", 0) == 0) return "/dev/" + line.substr(8);
  return "terminal " + std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
}

}  // namespace

bool is_terminal_device(unsigned long long rdev) {
  switch (major(rdev)) {
    case 4:                     // virtual consoles, ttyS
    case kTtyAuxMajor:          // tty, console, ptmx
    case kPtySlaveMajor:        // /dev/pts/N
    case 188:                   // ttyUSB
    case 204:                   // low-density serial ports (ttyAMA, ...)
    case 229:                   // hvc
      return true;
    default:
      return false;
  }
}

Status dump_tty(pid_t pid, int fd, const std::string& path, const struct stat& st, FileRec& f, Files& files,
                FileSharing& sharing) {
  f.pos = 0;
  f.rdev = st.st_rdev;
  if (st.st_rdev == makedev(kTtyAuxMajor, 0)) {
    // /dev/tty: the controlling terminal of whoever opens it.
    f.type = "dev-tty";
    sharing.ttys.push_back({pid, fd, 0, 0, false});
    return ok_status();
  }
  UniqueFd copy = TRY(copy_fd(pid, fd));
  if (st.st_rdev == makedev(kTtyAuxMajor, 2)) {
    if (path != "/dev/ptmx" && path != "/dev/pts/ptmx")
      return make_pid_error(pid, 0, "fd %d: pty master %s of another devpts instance is not supported", fd,
                            path.c_str());
    int index = 0;
    if (ioctl_int(copy.get(), TIOCGPTN, index) < 0) return make_pid_error(pid, errno, "fd %d: TIOCGPTN", fd);
    TtyRec* t = TRY(pty_record(pid, fd, copy.get(), index, files));
    int v = 0;
    if (ioctl_int(copy.get(), TIOCGPTLCK, v) < 0) return make_pid_error(pid, errno, "fd %d: TIOCGPTLCK", fd);
    t->locked = v;
    if (ioctl_int(copy.get(), TIOCGPKT, v) < 0) return make_pid_error(pid, errno, "fd %d: TIOCGPKT", fd);
    t->packet = v;
    // What the slave wrote and the master has not read.
    int queued = 0;
    if (ioctl_int(copy.get(), FIONREAD, queued) < 0) return make_pid_error(pid, errno, "fd %d: FIONREAD", fd);
    f.type = "pty-master";
    f.tty_id = t->id;
    sharing.ttys.push_back({pid, fd, t->id, queued, true});
    return ok_status();
  }
  if (int index = pty_index_of(st.st_rdev); index >= 0) {
    struct stat pts;
    if (stat("/dev/pts", &pts) < 0 || pts.st_dev != st.st_dev)
      return make_pid_error(pid, 0, "fd %d: pty %s of another devpts instance is not supported", fd, path.c_str());
    TtyRec* t = TRY(pty_record(pid, fd, copy.get(), index, files));
    int v = 0;
    if (ioctl_int(copy.get(), TIOCGEXCL, v) < 0) return make_pid_error(pid, errno, "fd %d: TIOCGEXCL", fd);
    t->exclusive = v;
    // What the master wrote and no reader of the slave has read yet (in
    // canonical mode: whole lines; a line not yet ended is not counted).
    int queued = 0;
    if (ioctl_int(copy.get(), FIONREAD, queued) < 0) return make_pid_error(pid, errno, "fd %d: FIONREAD", fd);
    f.type = "pty-slave";
    f.tty_id = t->id;
    sharing.ttys.push_back({pid, fd, t->id, queued, false});
    return ok_status();
  }
  // Any other terminal lives outside the tree: a shell job's (a VT, a
  // serial line, the console).
  TtyRec* t = find_external(files, st.st_rdev);
  if (!t) {
    TtyRec r;
    r.id = files.ttys.size() + 1;
    r.kind = "external";
    r.rdev = st.st_rdev;
    r.path = path;
    TRY_STATUS(read_settings(pid, fd, copy.get(), r));
    int v = 0;
    if (ioctl_int(copy.get(), TIOCGEXCL, v) == 0) r.exclusive = v;
    files.ttys.push_back(std::move(r));
    t = &files.ttys.back();
  }
  f.type = "tty-external";
  f.tty_id = t->id;
  sharing.ttys.push_back({pid, fd, t->id, 0, false});
  return ok_status();
}

Status resolve_ttys(const FrozenTree& tree, Files& files, const FileSharing& sharing, bool shell_job) {
  // Ptys whose master is not in the tree are terminals outside it.
  std::map<uint64_t, bool> has_master;
  for (auto& f : files.files)
    if (f.type == "pty-master") has_master[f.tty_id] = true;
  for (auto& t : files.ttys) {
    if (t.kind != "pty" || has_master[t.id]) continue;
    t.path = "/dev/pts/" + std::to_string(t.index);
    t.kind = "external";
    t.index = -1;
    t.locked = t.packet = false;
    for (auto& f : files.files)
      if (f.tty_id == t.id) f.type = "tty-external";
  }
  auto by_id = [&](uint64_t id) -> TtyRec* {
    for (auto& t : files.ttys)
      if (t.id == id) return &t;
    return nullptr;
  };
  // Data queued in a pty of the tree; fds on a terminal outside it. (No
  // record is added before the controlling terminals: pointers stay valid.)
  files.ttys.reserve(files.ttys.size() + 1);
  const TtyRec* external = nullptr;
  for (auto& s : sharing.ttys) {
    const TtyRec* t = s.tty_id ? by_id(s.tty_id) : nullptr;
    if (!t) continue;
    if (t->kind == "pty" && s.queued > 0) {
      Error e = make_pid_error(s.pid, 0, "fd %d: pty %s has %d unread bytes (%s); not supported", s.fd,
                               tty_name(*t).c_str(), s.queued,
                               s.master ? "written by the slave, not read by the master"
                                   : "written by the master, not read from the slave");
      e.remedy = "dump again once the program has read them";
      return e;
    }
    if (t->kind != "external") continue;
    if (!shell_job) {
      Error e = make_pid_error(s.pid, 0, "fd %d: terminal %s is outside the tree (a shell job's terminal); not "
                               "supported without --shell-job", s.fd, tty_name(*t).c_str());
      e.remedy = "dump with --shell-job and restore with --shell-job on the terminal to bring it back on";
      return e;
    }
    if (external && external != t)
      return make_pid_error(s.pid, 0, "fd %d: terminal %s, besides %s: fds on two terminals outside the tree; "
                            "not supported", s.fd, tty_name(*t).c_str(), tty_name(*external).c_str());
    external = t;
  }
  // Controlling terminals.
  std::map<pid_t, const FrozenProc*> in_tree;
  for (auto& p : tree.procs) in_tree[p.pid] = &p;
  const FrozenProc& root = tree.procs[0];
  for (auto& p : tree.procs) {
    if (p.zombie) continue;
    auto st = TRY(proc::read_stat(p.pid));
    if (st.tty_nr == 0) continue;
    uint64_t rdev = static_cast<uint32_t>(st.tty_nr);
    int index = pty_index_of(rdev);
    TtyRec* t = index >= 0 ? find_pty(files, index) : nullptr;
    auto group_in_tree = [&](pid_t pgrp, pid_t sid) {
      for (auto& q : tree.procs)
        if (!q.zombie && q.pgid == pgrp && (sid == 0 || q.sid == sid)) return true;
      return false;
    };
    if (t) {  // a pty of the tree
      if (p.sid == p.pid) {
        t->sid = p.pid;
        // A foreground group that no longer has a member is not made
        // again: the leader's group takes the terminal (TIOCSCTTY).
        if (st.tpgid > 0 && group_in_tree(st.tpgid, p.sid)) t->fg_pgrp = st.tpgid;
      } else if (!in_tree.count(p.sid)) {
        return make_pid_error(p.pid, 0, "its controlling terminal %s, a pty of the tree, belongs to session %d, "
                              "led from outside the tree; not supported", tty_name(*t).c_str(), p.sid);
      }
      continue;
    }
    std::string name = dev_name(rdev);
    if (p.sid == p.pid)
      return make_pid_error(p.pid, 0, "leads session %d, whose controlling terminal %s is outside the tree; not "
                            "supported (--shell-job is for a job of a shell outside the tree)", p.sid, name.c_str());
    if (in_tree.count(p.sid)) continue;  // its leader's terminal, seen there
    // The root's session, led outside the tree: a shell job's terminal.
    if (!shell_job) continue;  // no fd on it (refused above otherwise): the tree joins cr-restore's session
    TtyRec* ext = find_external(files, rdev);
    if (!ext) {
      if (external)
        return make_pid_error(p.pid, 0, "its controlling terminal %s is not the terminal %s its fds are on; not "
                              "supported", name.c_str(), tty_name(*external).c_str());
      // No fd of the tree on it: its settings from an open of our own.
      // The shell outside keeps it open, so this open and close leave it
      // as it was (were ours the only open, the master would see the
      // slave's last close again: the hangup it had seen already).
      TtyRec r;
      r.id = files.ttys.size() + 1;
      r.kind = "external";
      r.rdev = rdev;
      r.path = name;
      UniqueFd fd(open(name.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
      if (!fd.valid())
        return make_pid_error(p.pid, errno, "cannot open its controlling terminal %s to read its settings",
                              name.c_str());
      TRY_STATUS(read_settings(p.pid, -1, fd.get(), r));
      files.ttys.push_back(std::move(r));
      ext = &files.ttys.back();
      external = ext;
    }
    if (&p == &root && st.tpgid > 0 && group_in_tree(st.tpgid, 0)) ext->fg_pgrp = st.tpgid;
  }
  // /dev/tty fds: a controlling terminal the restore can give back.
  for (auto& s : sharing.ttys) {
    if (s.tty_id) continue;
    auto st = TRY(proc::read_stat(s.pid));
    if (st.tty_nr == 0)
      return make_pid_error(s.pid, 0, "fd %d: /dev/tty, but the process has no controlling terminal any more; not "
                            "supported", s.fd);
    uint64_t ctty = static_cast<uint32_t>(st.tty_nr);
    int index = pty_index_of(ctty);
    if (!(index >= 0 && find_pty(files, index)) && !(shell_job && find_external(files, ctty))) {
      Error e = make_pid_error(s.pid, 0, "fd %d: /dev/tty, its controlling terminal %s, is outside the tree; not "
                               "supported without --shell-job", s.fd, dev_name(ctty).c_str());
      e.remedy = "dump with --shell-job";
      return e;
    }
  }
  pr_debug(root.pid, "terminals: %zu", files.ttys.size());
  return ok_status();
}

}  // namespace cr
