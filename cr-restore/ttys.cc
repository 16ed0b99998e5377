// Restore side of terminals (dump side: cr-dump/ttys.cc, records:
// common/image/ttys.h).
//
// A pty of the tree is a new pair from /dev/ptmx: the kernel picks the
// index (devpts hands out the lowest free number and offers no way to ask
// for one); the dumped one is reached when it is free and few numbers
// below it are (open_master), else the new name is logged.
// The slave gets the dumped line settings and window size, the master
// packet mode; exclusive mode and the lock come last, after every end is
// open. The session leader takes it as its controlling terminal, after
// setsid() and before it forks the rest of its session (which inherits
// it); the first task of the foreground group, once in its group, makes
// that group the foreground. Restored tasks have every signal blocked, so
// SIGTTOU does not stop a background task doing so (tty_check_change
// treats a blocked signal as ignored, kernel 6.18).
//
// A shell job's terminal (--shell-job) is the one cr-restore runs on.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <vector>

#include "common/log.h"
#include "common/tty.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

const TtyRec* external_tty(const Files& files) {
  for (auto& t : files.ttys)
    if (t.kind == "external") return &t;
  return nullptr;
}

}  // namespace

namespace {

// How many pairs a restore opens at most to reach the dumped pty number.
constexpr int kPtyTries = 64;

// A new master, with the dumped number if it is free and near: devpts
// gives the lowest free number (ida_alloc_max, kernel 6.18), so masters
// opened one after the other count up through the free numbers below it;
// they are held until it comes, then closed (no slave was ever opened on
// them: nothing sees them). A number already taken, or far above the
// lowest free one, is left: the pair gets the lowest free number.
Result<UniqueFd> open_master(const TtyRec& t, const std::string& what, int& index) {
  std::vector<UniqueFd> below;
  for (int i = 0;; i++) {
    UniqueFd m(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!m.valid()) return make_errno(errno, "%s: cannot open /dev/ptmx", what.c_str());
    if (ioctl(m.get(), TIOCGPTN, &index) < 0) return make_errno(errno, "%s: TIOCGPTN", what.c_str());
    if (index >= t.index || i + 1 >= kPtyTries || t.index - index >= kPtyTries) return m;
    below.push_back(std::move(m));
  }
}

}  // namespace

Status make_pty(const Files& files, const TtyRec& t, const TreePlan& plan) {
  std::string what = "pty " + tty_name(t);
  int index = -1;
  UniqueFd master = TRY(open_master(t, what, index));
  int v = 0;
  if (ioctl(master.get(), TIOCSPTLCK, &v) < 0) return make_errno(errno, "%s: TIOCSPTLCK", what.c_str());
  // TIOCGPTPEER (4.13) opens the slave of this very master, whatever
  // devpts is mounted where. It keeps O_CLOEXEC among the description's
  // status flags (F_GETFL shows it, kernel 6.18), unlike open(2): the fd
  // flag is set apart.
  auto open_slave = [&](int flags) {
    int fd = static_cast<int>(ioctl(master.get(), TIOCGPTPEER, flags | O_NOCTTY));
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    return fd;
  };
  UniqueFd slave(open_slave(O_RDWR));
  if (!slave.valid()) return make_errno(errno, "%s: cannot open its slave (TIOCGPTPEER)", what.c_str());
  if (auto st = tty_set_termios(slave.get(), t.termios); !st)
    return make_errno(st.error().err, "%s: cannot set its line settings: %s", what.c_str(), st.error().message.c_str());
  if (auto st = tty_set_winsize(slave.get(), t); !st)
    return make_errno(st.error().err, "%s: cannot set its window size", what.c_str());
  // Packet mode after the settings: their changes are no events to report.
  v = t.packet;
  if (ioctl(master.get(), TIOCPKT, &v) < 0) return make_errno(errno, "%s: TIOCPKT", what.c_str());
  for (auto& f : files.files) {
    if (f.tty_id != t.id || (f.type != "pty-master" && f.type != "pty-slave")) continue;
    auto at = plan.transit_fd.find(f.id);
    if (at == plan.transit_fd.end()) continue;
    int src = f.type == "pty-master" ? fcntl(master.get(), F_DUPFD_CLOEXEC, 0)
                                     : open_slave(static_cast<int>(f.flags) & O_ACCMODE);
    if (src < 0) return make_errno(errno, "%s: cannot open its %s", what.c_str(), f.type.c_str() + 4);
    if (auto st = set_status_flags(src, f.flags, what.c_str()); !st) {
      close(src);
      return st;
    }
    TRY_STATUS(place_at(src, at->second, what.c_str()));
  }
  if (auto c = plan.transit_ctty.find(t.id); c != plan.transit_ctty.end()) {
    int src = fcntl(slave.get(), F_DUPFD_CLOEXEC, 0);
    if (src < 0) return make_errno(errno, "%s", what.c_str());
    TRY_STATUS(place_at(src, c->second, what.c_str()));
  }
  if (t.exclusive && ioctl(slave.get(), TIOCEXCL) < 0) return make_errno(errno, "%s: TIOCEXCL", what.c_str());
  v = 1;
  if (t.locked && ioctl(master.get(), TIOCSPTLCK, &v) < 0) return make_errno(errno, "%s: TIOCSPTLCK", what.c_str());
  if (index != t.index) pr_info(getpid(), "pty /dev/pts/%d is restored as /dev/pts/%d", t.index, index);
  return ok_status();
}

Status restore_ctty(const SetImages& imgs, const TreePlan& plan, int index) {
  const PstreeEntry& e = imgs.tasks[index].entry;
  for (auto& t : imgs.files.ttys) {
    if (t.kind != "pty" || !t.sid) continue;
    int fd = plan.transit_ctty.at(t.id);
    if (t.sid == e.pid && ioctl(fd, TIOCSCTTY, 0) < 0)
      return make_errno(errno, "pid %lld: cannot take %s as its controlling terminal (TIOCSCTTY)", (long long)e.pid,
                        tty_name(t).c_str());
    auto fg = plan.fg_task.find(t.id);
    if (fg == plan.fg_task.end() || fg->second != index) continue;
    pid_t pgrp = static_cast<pid_t>(t.fg_pgrp);
    if (ioctl(fd, TIOCSPGRP, &pgrp) < 0)
      return make_errno(errno, "pid %lld: cannot make group %d the foreground of %s (TIOCSPGRP)", (long long)e.pid,
                        pgrp, tty_name(t).c_str());
  }
  return ok_status();
}

Result<int> open_tty(const FileRec& f, const TreePlan& plan, const std::string& what) {
  int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
  if (f.type == "dev-tty") {
    int fd = open("/dev/tty", flags | O_CLOEXEC);
    if (fd < 0) return make_errno(errno, "%s: cannot open /dev/tty (the controlling terminal)", what.c_str());
    return fd;
  }
  if (plan.transit_ext_tty < 0) return make_error("%s: no terminal for the shell job", what.c_str());
  std::string self = "/proc/self/fd/" + std::to_string(plan.transit_ext_tty);
  int fd = open(self.c_str(), flags | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return make_errno(errno, "%s: cannot open the terminal again", what.c_str());
  return fd;
}

namespace {

// The terminal cr-restore runs on: the first of its standard input,
// output and error that is one (with -D - standard input is the stream).
int own_terminal() {
  for (int fd : {0, 1, 2})
    if (isatty(fd)) return fd;
  return -1;
}

}  // namespace

Status open_shell_job_tty(const Files& files, const TreePlan& plan, const RestoreOptions& o) {
  const TtyRec* ext = external_tty(files);
  if (!ext) return ok_status();
  if (!o.shell_job) {
    Error e = make_error("the images hold a shell job of terminal %s (dumped with --shell-job)",
                         tty_name(*ext).c_str());
    e.remedy = "restore with --shell-job, on the terminal to bring it back on";
    return e;
  }
  int own = own_terminal();
  if (own < 0) {
    Error e = make_error("--shell-job: none of standard input, output and error is a terminal");
    e.remedy = "run cr-restore --shell-job on the terminal the job is to come back on";
    return e;
  }
  std::string self = "/proc/self/fd/" + std::to_string(own);
  int fd = open(self.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return make_errno(errno, "--shell-job: cannot open the terminal on fd %d", own);
  return place_at(fd, plan.transit_ext_tty, "--shell-job terminal");
}

ShellJobTerminal::~ShellJobTerminal() {
  if (fd_ < 0) return;
  // The restore failed: the terminal as it was, the foreground ours again.
  (void)tty_set_termios(fd_, saved_);
  (void)ioctl(fd_, TIOCSPGRP, &saved_pgrp_);
}

Result<pid_t> ShellJobTerminal::take(const SetImages& imgs, const TreePlan& plan) {
  const TtyRec* ext = external_tty(imgs.files);
  if (!ext || !plan.shell_job || !ext->fg_pgrp) return 0;
  int fd = own_terminal();
  if (fd < 0) return make_error("--shell-job: no terminal on standard input, output or error");
  // The root's group is made again under the root's pid if it was led
  // outside the tree (restore_session).
  pid_t root = static_cast<pid_t>(imgs.pstree.root_pid);
  pid_t pgrp = ext->fg_pgrp == imgs.pstree.tasks[0].pgid ? getpgid(root) : static_cast<pid_t>(ext->fg_pgrp);
  // cr-restore may be in the background from here on: SIGTTOU stays
  // blocked, so neither these calls nor its last messages stop it
  // (tty_check_change takes a blocked SIGTTOU as ignored, kernel 6.18).
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTTOU);
  sigprocmask(SIG_BLOCK, &s, nullptr);
  auto saved = tty_get_termios(fd);
  if (!saved) return make_errno(saved.error().err, "--shell-job: cannot read the terminal's settings");
  pid_t own_pgrp = 0;
  if (ioctl(fd, TIOCGPGRP, &own_pgrp) < 0) return make_errno(errno, "--shell-job: TIOCGPGRP");
  saved_ = *saved;
  saved_pgrp_ = own_pgrp;
  fd_ = fd;
  if (auto st = tty_set_termios(fd, ext->termios); !st)
    return make_errno(st.error().err, "--shell-job: cannot set the job's terminal settings");
  if (ioctl(fd, TIOCSPGRP, &pgrp) < 0)
    return make_errno(errno, "--shell-job: cannot make group %d the foreground of the terminal", pgrp);
  return pgrp;
}

}  // namespace cr
