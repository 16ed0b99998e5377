/* ckpt_pty: pseudo-terminals inside the tree, a controlling terminal and a
 * foreground process group.
 *
 * The root R opens three pty pairs from /dev/ptmx:
 *  - A: master and slave both open in R; the slave in raw mode with made-up
 *    control characters and 115200 baud (termios2), window 37x101
 *    (640x480 pixels), exclusive mode on the slave, packet mode on the
 *    master, the slave O_NONBLOCK;
 *  - B: the master alone, locked (TIOCSPTLCK: its slave cannot be opened);
 *  - C: the master in R; its slave is opened by the child S, which calls
 *    setsid() and takes it as its controlling terminal (TIOCSCTTY), then
 *    forks G, which makes its own group and opens /dev/tty; S makes G's
 *    group the foreground of C (TIOCSPGRP).
 * READY: "pids=R,S,G".
 * Verifies after SIGTERM: R reads A's and B's settings back as they were
 * read before READY (termios2, window size, TIOCGPKT, TIOCGEXCL,
 * TIOCGPTLCK, status flags) and that A's master and slave are still one
 * pair (TIOCGPTN of the master is the slave's minor; bytes written to the
 * slave come out of the master after packet mode's 0 byte, and back);
 * C's master and the slave S holds are one pair; S: its session is its own
 * and C's slave is its controlling terminal (TIOCGSID), G's group is the
 * foreground (TIOCGPGRP); G: /dev/tty is C's slave (same device), its
 * group is the foreground. The pty numbers may change (a new pair gets
 * the lowest free one).
 *
 * --selftest-corrupt: after READY, R sets A's window to 20x20.
 */
#include <asm/termbits.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "ckpt_common.h"

struct pty_state {
  struct termios2 tio;
  struct winsize ws;
  int pkt, excl, lock, flags;
};

static int xioctl_int(int fd, unsigned long req) {
  int v = 0;
  if (ioctl(fd, req, &v) < 0) return -1;
  return v;
}

static void read_state(int master, int slave, struct pty_state *s) {
  memset(s, 0, sizeof *s);
  if (ioctl(slave >= 0 ? slave : master, TCGETS2, &s->tio) < 0) die("TCGETS2");
  if (ioctl(master, TIOCGWINSZ, &s->ws) < 0) die("TIOCGWINSZ");
  s->pkt = xioctl_int(master, TIOCGPKT);
  s->lock = xioctl_int(master, TIOCGPTLCK);
  s->excl = slave >= 0 ? xioctl_int(slave, TIOCGEXCL) : -1;
  s->flags = slave >= 0 ? fcntl(slave, F_GETFL) : fcntl(master, F_GETFL);
}

static void compare(const char *name, const struct pty_state *was, const struct pty_state *now) {
  const struct termios2 *a = &was->tio, *b = &now->tio;
  if (a->c_iflag != b->c_iflag || a->c_oflag != b->c_oflag || a->c_cflag != b->c_cflag || a->c_lflag != b->c_lflag)
    fail("%s: termios flags i%#x o%#x c%#x l%#x, were i%#x o%#x c%#x l%#x", name, b->c_iflag, b->c_oflag, b->c_cflag,
         b->c_lflag, a->c_iflag, a->c_oflag, a->c_cflag, a->c_lflag);
  if (memcmp(a->c_cc, b->c_cc, sizeof a->c_cc)) fail("%s: control characters differ", name);
  if (a->c_ispeed != b->c_ispeed || a->c_ospeed != b->c_ospeed)
    fail("%s: speed %u/%u, was %u/%u", name, b->c_ispeed, b->c_ospeed, a->c_ispeed, a->c_ospeed);
  if (memcmp(&was->ws, &now->ws, sizeof was->ws))
    fail("%s: window %ux%u (%ux%u px), was %ux%u (%ux%u px)", name, now->ws.ws_row, now->ws.ws_col,
         now->ws.ws_xpixel, now->ws.ws_ypixel, was->ws.ws_row, was->ws.ws_col, was->ws.ws_xpixel, was->ws.ws_ypixel);
  if (was->pkt != now->pkt) fail("%s: packet mode %d, was %d", name, now->pkt, was->pkt);
  if (was->lock != now->lock) fail("%s: locked %d, was %d", name, now->lock, was->lock);
  if (was->excl != now->excl) fail("%s: exclusive %d, was %d", name, now->excl, was->excl);
  if (was->flags != now->flags) fail("%s: status flags %#x, were %#x", name, now->flags, was->flags);
}

/* The master's pty number is the slave's minor: one pair. */
static void check_pair(const char *name, int master, int slave) {
  int n = xioctl_int(master, TIOCGPTN);
  struct stat st;
  if (fstat(slave, &st) < 0) fail("%s: fstat slave: %s", name, strerror(errno));
  else if (major(st.st_rdev) != 136 || (int)minor(st.st_rdev) != n)
    fail("%s: the slave is %u:%u, the master's pty is %d", name, major(st.st_rdev), minor(st.st_rdev), n);
}

static int open_master(void) {
  int m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
  if (m < 0) die("open /dev/ptmx");
  int zero = 0;
  if (ioctl(m, TIOCSPTLCK, &zero) < 0) die("TIOCSPTLCK");
  return m;
}

static int open_slave(int master, int flags) {
  int s = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | flags);
  if (s < 0) die("TIOCGPTPEER");
  return s;
}

static void end_child(void) {
  if (failed()) ckpt_say("%s\n", ckpt_fail_buf);
  _exit(failed() ? 1 : 0);
}

static void stop_child(pid_t c, const char *name) {
  int st;
  kill(c, SIGTERM);
  if (waitpid(c, &st, 0) != c) fail("waitpid %s: %s", name, strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st)) fail("%s ended with %#x", name, st);
}

/* G: its own group in S's session; /dev/tty is C's slave. */
static void run_g(int go_r, int done_w, dev_t c_rdev) {
  char b;
  if (read(go_r, &b, 1) != 1) _exit(3); /* S made us the foreground */
  close(go_r);
  int tty = open("/dev/tty", O_RDWR);
  if (tty < 0) die("G: open /dev/tty");
  if (write(done_w, "d", 1) != 1) die("write");
  close(done_w);
  pid_t sid = getsid(0);
  wait_for_term();
  unsigned int dev = 0; /* TIOCGDEV: the device /dev/tty stands for */
  if (ioctl(tty, TIOCGDEV, &dev) < 0 || makedev(major(dev), minor(dev)) != c_rdev)
    fail("G: /dev/tty is %u:%u, not the slave of C", major(dev), minor(dev));
  pid_t fg = -1, s = -1;
  if (ioctl(tty, TIOCGPGRP, &fg) < 0 || fg != getpgid(0))
    fail("G: the foreground group is %d, not G's %d (%s)", (int)fg, (int)getpgid(0), strerror(errno));
  if (ioctl(tty, TIOCGSID, &s) < 0 || s != sid) fail("G: the terminal's session is %d, not %d", (int)s, (int)sid);
  if (getpgid(0) != getpid()) fail("G: in group %d, not its own", (int)getpgid(0));
  end_child();
}

/* S: session leader with C's slave as its controlling terminal. */
static void run_s(int c_master, int ready_w) {
  if (setsid() < 0) die("S: setsid");
  int slave = open_slave(c_master, 0);
  close(c_master);
  if (ioctl(slave, TIOCSCTTY, 0) < 0) die("S: TIOCSCTTY");
  struct stat st;
  if (fstat(slave, &st) < 0) die("S: fstat");
  int go[2], done[2];
  if (pipe(go) || pipe(done)) die("pipe");
  pid_t g = fork();
  if (g < 0) die("fork");
  if (g == 0) {
    close(go[1]);
    close(done[0]);
    close(ready_w);
    close(slave);
    if (setpgid(0, 0) < 0) die("G: setpgid");
    run_g(go[0], done[1], st.st_rdev);
  }
  close(go[0]);
  close(done[1]);
  setpgid(g, g);
  if (ioctl(slave, TIOCSPGRP, &g) < 0) die("S: TIOCSPGRP");
  if (write(go[1], "g", 1) != 1) die("write");
  close(go[1]);
  /* Tell R G's pid once G has /dev/tty open. */
  char b;
  if (read(done[0], &b, 1) != 1) die("G did not open /dev/tty");
  close(done[0]);
  if (write(ready_w, &g, sizeof g) != sizeof g) die("write");
  close(ready_w);
  wait_for_term();
  pid_t s = -1, fg = -1;
  if (ioctl(slave, TIOCGSID, &s) < 0 || s != getpid())
    fail("S: its terminal's session is %d, not S (%s)", (int)s, strerror(errno));
  if (getsid(0) != getpid()) fail("S: in session %d, not its own", (int)getsid(0));
  if (ioctl(slave, TIOCGPGRP, &fg) < 0 || fg != g) fail("S: the foreground group is %d, not G's %d", (int)fg, (int)g);
  stop_child(g, "G");
  end_child();
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  /* A */
  int am = open_master(), as = open_slave(am, O_NONBLOCK);
  struct termios2 t;
  if (ioctl(as, TCGETS2, &t) < 0) die("TCGETS2");
  t.c_iflag &= ~(unsigned)(ICRNL | IXON | BRKINT);
  t.c_oflag &= ~(unsigned)OPOST;
  t.c_lflag &= ~(unsigned)(ICANON | ECHO | ISIG | IEXTEN);
  t.c_cflag = (t.c_cflag & ~(unsigned)(CBAUD | CSIZE)) | CS7 | BOTHER;
  t.c_ispeed = t.c_ospeed = 115200;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 7;
  t.c_cc[VINTR] = 7;
  t.c_cc[VEOF] = 9;
  if (ioctl(as, TCSETS2, &t) < 0) die("TCSETS2");
  struct winsize ws = {37, 101, 640, 480};
  if (ioctl(am, TIOCSWINSZ, &ws) < 0) die("TIOCSWINSZ");
  if (ioctl(as, TIOCEXCL) < 0) die("TIOCEXCL");
  int one = 1;
  if (ioctl(am, TIOCPKT, &one) < 0) die("TIOCPKT");
  /* B */
  int bm = open_master();
  if (ioctl(bm, TIOCSPTLCK, &one) < 0) die("TIOCSPTLCK");
  /* C */
  int cm = open_master();
  int rp[2];
  if (pipe(rp)) die("pipe");
  pid_t s = fork();
  if (s < 0) die("fork");
  if (s == 0) {
    close(3);
    close(rp[0]);
    close(am), close(as), close(bm);
    run_s(cm, rp[1]);
  }
  close(rp[1]);
  pid_t g;
  if (read(rp[0], &g, sizeof g) != sizeof g) die("S did not start G");
  close(rp[0]);
  struct pty_state a0, b0;
  read_state(am, as, &a0);
  read_state(bm, -1, &b0);
  if (a0.tio.c_ospeed != 115200 || a0.ws.ws_col != 101 || a0.pkt != 1 || a0.excl != 1 || b0.lock != 1)
    die("the settings did not take");
  ready("pids=%d,%d,%d", (int)getpid(), (int)s, (int)g);
  if (ckpt_corrupt) {
    struct winsize w = {20, 20, 0, 0};
    ioctl(am, TIOCSWINSZ, &w);
  }
  wait_for_term();
  struct pty_state a1, b1;
  read_state(am, as, &a1);
  read_state(bm, -1, &b1);
  compare("A", &a0, &a1);
  compare("B", &b0, &b1);
  check_pair("A", am, as);
  /* A still carries bytes: slave to master (after packet mode's 0), and
   * master to slave (raw: unchanged). */
  if (write(as, "hello", 5) != 5) fail("A: write to the slave: %s", strerror(errno));
  char buf[16] = {0};
  ssize_t n = read(am, buf, sizeof buf);
  if (n != 6 || buf[0] != 0 || memcmp(buf + 1, "hello", 5)) fail("A: the master read %zd bytes, not 0 'hello'", n);
  if (write(am, "back\r", 5) != 5) fail("A: write to the master: %s", strerror(errno));
  int got = 0;
  memset(buf, 0, sizeof buf);
  for (int i = 0; i < 100000 && got < 5; i++) {
    ssize_t k = read(as, buf + got, sizeof buf - 1 - (size_t)got);
    if (k > 0) got += (int)k;
    else if (k < 0 && errno != EAGAIN) break;
    else usleep(100);
  }
  if (got != 5 || memcmp(buf, "back\r", 5)) fail("A: the slave read '%s', not 'back\\r' (raw mode)", buf);
  /* C: its master is the pair of S's controlling terminal. */
  int cn = xioctl_int(cm, TIOCGPTN), found = 0;
  for (int fd = 0; fd < 64; fd++) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)s, fd);
    if (stat(path, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 136)
      found = (int)minor(st.st_rdev) == cn ? 1 : -1;
  }
  if (found != 1) fail("C: S holds no slave of C's master (pty %d)", cn);
  stop_child(s, "S");
  verdict();
}
