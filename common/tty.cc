#include "common/tty.h"

// <asm/termbits.h> for struct termios2; glibc's <termios.h> would clash
// with it and is not included here.
#include <asm/termbits.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include <cstring>

namespace cr {

Result<TermiosRec> tty_get_termios(int fd) {
  struct termios2 k;
  memset(&k, 0, sizeof k);
  if (ioctl(fd, TCGETS2, &k) < 0) return make_errno(errno, "TCGETS2");
  TermiosRec t;
  t.iflag = k.c_iflag;
  t.oflag = k.c_oflag;
  t.cflag = k.c_cflag;
  t.lflag = k.c_lflag;
  t.line = k.c_line;
  static_assert(sizeof k.c_cc == kTermiosNcc);
  t.cc.assign(k.c_cc, k.c_cc + kTermiosNcc);
  t.ispeed = k.c_ispeed;
  t.ospeed = k.c_ospeed;
  return t;
}

Status tty_set_termios(int fd, const TermiosRec& t) {
  struct termios2 k;
  memset(&k, 0, sizeof k);
  k.c_iflag = t.iflag;
  k.c_oflag = t.oflag;
  k.c_cflag = t.cflag;
  k.c_lflag = t.lflag;
  k.c_line = t.line;
  if (t.cc.size() != kTermiosNcc)
    return make_error("termios: %zu control characters, not %zu", t.cc.size(), kTermiosNcc);
  memcpy(k.c_cc, t.cc.data(), kTermiosNcc);
  k.c_ispeed = t.ispeed;
  k.c_ospeed = t.ospeed;
  if (ioctl(fd, TCSETS2, &k) < 0) return make_errno(errno, "TCSETS2");
  return ok_status();
}

Status tty_get_winsize(int fd, TtyRec& t) {
  struct winsize w;
  if (ioctl(fd, TIOCGWINSZ, &w) < 0) return make_errno(errno, "TIOCGWINSZ");
  t.rows = w.ws_row;
  t.cols = w.ws_col;
  t.xpixel = w.ws_xpixel;
  t.ypixel = w.ws_ypixel;
  return ok_status();
}

Status tty_set_winsize(int fd, const TtyRec& t) {
  struct winsize w = {t.rows, t.cols, t.xpixel, t.ypixel};
  if (ioctl(fd, TIOCSWINSZ, &w) < 0) return make_errno(errno, "TIOCSWINSZ");
  return ok_status();
}

int pty_index_of(unsigned long long rdev) {
  // The slave driver takes all 2^20 minors of its major: /dev/pts/N is
  // (136, N), also above 255.
  if (major(rdev) != kPtySlaveMajor || minor(rdev) >= (1u << 20)) return -1;
  return static_cast<int>(minor(rdev));
}

}  // namespace cr
