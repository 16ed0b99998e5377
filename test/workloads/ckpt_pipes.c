/* ckpt_pipes: files and pipes shared inside a process tree, across a
 * checkpoint. A parent and one child; at READY:
 *   20     shared.dat (in the cwd, 8 KiB pattern), O_RDWR, opened by the
 *          parent before the fork: ONE open file description in both, its
 *          offset at 3333; the child also has it dup()ed at 21
 *   pipe A parent -> child: the parent holds the write end at 30, the child
 *          the read end at 31; 3000 bytes written, the child has read the
 *          first 1000 (2000 still queued)
 *   pipe B 500 bytes queued, its write end closed by everyone; the read end
 *          is one open file description held by both, at 40 in the child and
 *          41 in the parent
 *   pipe D the parent holds both ends, read end 50 and write end 51, both
 *          O_NONBLOCK; F_SETPIPE_SZ 1 MiB, 200 KiB queued (more than a
 *          default 64 KiB pipe can hold)
 * The setup handshake pipe is closed before READY ("READY pids=PARENT,CHILD").
 *
 * Verifies, after SIGTERM to the parent:
 *   parent: its descriptors are the same set with the same F_GETFL flags;
 *     fd 20 at offset 3333 and the same file description as the child's 20
 *     and 21 (kcmp across the two processes); 30 and the child's 31 are the
 *     two ends of one pipe (/proc/PID/fd links) holding 2000 bytes; 41 is
 *     the child's 40 (kcmp) holding 500 bytes; D: F_GETPIPE_SZ is 1 MiB, the
 *     200 KiB read back byte-exact, then empty (EAGAIN), then 700 KiB fit in
 *     one non-blocking write (the capacity is real) and read back. Then it
 *     forwards SIGTERM to the child, writes 500 more bytes into A and closes
 *     it, waitpid()s the child (exit status 0 required), and checks that the
 *     child's read through 21 moved fd 20's offset to 3433 and that B is now
 *     at EOF. One verdict line.
 *   child: ppid; its descriptors and flags; 20 and 21 at offset 3333 and one
 *     file description; reads 100 bytes through 21 (the right bytes); reads
 *     A to EOF: exactly the 2000 queued bytes and the parent's 500 new ones;
 *     reads B: the 500 bytes, then EOF. A difference: it prints
 *     "child PID: <what differs>" and exits 1.
 *
 * --selftest-corrupt: at SIGTERM the parent moves fd 20's offset by one and
 * the child consumes one byte of A before checking.
 */
#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ckpt_common.h"

#define FILE_SEED 41
#define A_SEED 42
#define B_SEED 43
#define D_SEED 44
#define D2_SEED 45
#define FILE_LEN 8192
#define A_LEN 3000
#define A_READ 1000
#define A_MORE 500
#define B_LEN 500
#define D_SIZE (1 << 20)
#define D_LEN (200 << 10)
#define D2_LEN (700 << 10)

static unsigned char pat_file[FILE_LEN], pat_a[A_LEN + A_MORE + 8], pat_b[B_LEN + 8];
static unsigned char pat_d[D_LEN], pat_d2[D2_LEN], rbuf[D2_LEN + 4096];

struct fdstate {
  int n, fd[16], fl[16];
};
static struct fdstate fds_before;
static pid_t parent_pid, child_pid;
static int skip_fd = -1; /* the handshake pipe, while it is open */

static void take_fds(struct fdstate *s) {
  memset(s, 0, sizeof *s);
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) && s->n < 16) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != self && fd != 3 && fd != skip_fd) s->fd[s->n++] = fd;
  }
  closedir(d);
  for (int i = 1; i < s->n; i++)
    for (int j = i; j > 0 && s->fd[j - 1] > s->fd[j]; j--) {
      int x = s->fd[j];
      s->fd[j] = s->fd[j - 1];
      s->fd[j - 1] = x;
    }
  for (int i = 0; i < s->n; i++) s->fl[i] = fcntl(s->fd[i], F_GETFL);
}

static void check_fds(void) {
  struct fdstate now;
  take_fds(&now);
  if (now.n != fds_before.n || memcmp(now.fd, fds_before.fd, sizeof(int) * (size_t)now.n)) {
    char a[256] = "", b[256] = "";
    for (int i = 0; i < now.n; i++) ckpt_append(a, sizeof a, "%s%d", i ? "," : "", now.fd[i]);
    for (int i = 0; i < fds_before.n; i++) ckpt_append(b, sizeof b, "%s%d", i ? "," : "", fds_before.fd[i]);
    fail("open descriptors %s were %s", a, b);
    return;
  }
  for (int i = 0; i < now.n; i++)
    if (now.fl[i] != fds_before.fl[i])
      fail("fd %d: F_GETFL %#o was %#o", now.fd[i], (unsigned)now.fl[i], (unsigned)fds_before.fl[i]);
}

static ssize_t read_full(int fd, void *b, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return got ? (ssize_t)got : -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static void move_fd(int from, int to) {
  if (from == to) return;
  if (dup2(from, to) != to) die("dup2 %d -> %d", from, to);
  close(from);
}

static int fionread(int fd) {
  int n = -1;
  return ioctl(fd, FIONREAD, &n) ? -1 : n;
}

static long kcmp_file(pid_t p1, int fd1, pid_t p2, int fd2) { return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2); }

static void link_of(pid_t pid, int fd, char *out, size_t len) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)pid, fd);
  ssize_t l = readlink(p, out, len - 1);
  out[l > 0 ? l : 0] = 0;
}

static void expect_offset(int fd, off_t want) {
  off_t o = lseek(fd, 0, SEEK_CUR);
  if (o != want) fail("fd %d: offset %ld, expected %ld", fd, (long)o, (long)want);
}

/* ------------------------------------------------------------------ child */

static void child_verify(void) __attribute__((noreturn));
static void child_verify(void) {
  if (ckpt_corrupt) {
    char c;
    if (read(31, &c, 1) != 1) fail("corrupt: read of A failed");
  }
  if (getppid() != parent_pid) fail("ppid %d was %d", (int)getppid(), (int)parent_pid);
  check_fds();
  expect_offset(20, 3333);
  expect_offset(21, 3333);
  pid_t me = getpid();
  if (kcmp_file(me, 20, me, 21) != 0) fail("fd 20 and 21 are no longer one file description");

  ssize_t r = read(21, rbuf, 100);
  if (r != 100) fail("read of 100 bytes through fd 21: %zd (%s)", r, r < 0 ? strerror(errno) : "short");
  else if (memcmp(rbuf, pat_file + 3333, 100)) fail("fd 21 read the wrong bytes at offset 3333");

  r = read_full(31, rbuf, sizeof rbuf);
  size_t want = A_LEN - A_READ + A_MORE;
  if (r != (ssize_t)want)
    fail("pipe A (fd 31): read %zd bytes to EOF, expected %zu (2000 queued at the dump + 500 written after)", r, want);
  else if (memcmp(rbuf, pat_a + A_READ, want)) {
    size_t k = 0;
    while (k < want && rbuf[k] == pat_a[A_READ + k]) k++;
    fail("pipe A (fd 31): byte %zu of what was left differs", k);
  }

  r = read_full(40, rbuf, sizeof rbuf);
  if (r != B_LEN) fail("pipe B (fd 40): read %zd bytes to EOF, expected %d", r, B_LEN);
  else if (memcmp(rbuf, pat_b, B_LEN)) fail("pipe B (fd 40): wrong bytes");

  if (!failed()) _exit(0);
  static char b[sizeof ckpt_fail_buf + 64];
  int n = snprintf(b, sizeof b, "child %d: %.*s\n", (int)me, (int)ckpt_fail_len, ckpt_fail_buf);
  if (n > (int)sizeof b - 1) n = (int)sizeof b - 1;
  if (n > 0) ckpt_write_all(1, b, (size_t)n);
  _exit(1);
}

/* ----------------------------------------------------------------- parent */

static void parent_verify(void) __attribute__((noreturn));
static void parent_verify(void) {
  if (ckpt_corrupt) lseek(20, 1, SEEK_CUR);
  pid_t me = getpid();
  check_fds();
  expect_offset(20, 3333);
  if (kcmp_file(me, 20, child_pid, 20) != 0) fail("fd 20 is not the child's fd 20 (one file description)");
  if (kcmp_file(me, 20, child_pid, 21) != 0) fail("fd 20 is not the child's fd 21 (one file description)");
  if (kcmp_file(me, 41, child_pid, 40) != 0) fail("fd 41 is not the child's fd 40 (one file description)");
  if (kcmp_file(me, 30, child_pid, 31) == 0) fail("fd 30 and the child's 31 are one file description (two ends)");
  char l1[128], l2[128];
  link_of(me, 30, l1, sizeof l1);
  link_of(child_pid, 31, l2, sizeof l2);
  if (strncmp(l1, "pipe:", 5) || strcmp(l1, l2)) fail("pipe A: fd 30 is '%s', the child's fd 31 '%s'", l1, l2);
  link_of(me, 41, l1, sizeof l1);
  link_of(child_pid, 40, l2, sizeof l2);
  if (strncmp(l1, "pipe:", 5) || strcmp(l1, l2)) fail("pipe B: fd 41 is '%s', the child's fd 40 '%s'", l1, l2);
  link_of(me, 50, l1, sizeof l1);
  link_of(me, 51, l2, sizeof l2);
  if (strncmp(l1, "pipe:", 5) || strcmp(l1, l2)) fail("pipe D: fd 50 is '%s', fd 51 '%s'", l1, l2);
  int q;
  if ((q = fionread(30)) != A_LEN - A_READ) fail("pipe A: %d bytes queued, expected %d", q, A_LEN - A_READ);
  if ((q = fionread(41)) != B_LEN) fail("pipe B: %d bytes queued, expected %d", q, B_LEN);

  /* D */
  int sz = fcntl(50, F_GETPIPE_SZ);
  if (sz != D_SIZE) fail("pipe D: F_GETPIPE_SZ %d, expected %d", sz, D_SIZE);
  if ((q = fionread(50)) != D_LEN) fail("pipe D: %d bytes queued, expected %d", q, D_LEN);
  ssize_t r = read_full(50, rbuf, D_LEN);
  if (r != D_LEN) fail("pipe D: read %zd of %d bytes (%s)", r, D_LEN, strerror(errno));
  else if (memcmp(rbuf, pat_d, D_LEN)) fail("pipe D: the queued bytes differ");
  r = read(50, rbuf, 1);
  if (!(r < 0 && errno == EAGAIN)) fail("pipe D: not empty after its 200 KiB (read gave %zd)", r);
  r = write(51, pat_d2, D2_LEN);
  if (r != D2_LEN) fail("pipe D: a non-blocking write of 700 KiB wrote %zd (%s)", r, r < 0 ? strerror(errno) : "short");
  else {
    ssize_t g = read_full(50, rbuf, D2_LEN);
    if (g != D2_LEN || memcmp(rbuf, pat_d2, D2_LEN)) fail("pipe D: the 700 KiB did not come back (%zd)", g);
  }

  /* The child's turn. */
  kill(child_pid, SIGTERM);
  r = write(30, pat_a + A_LEN, A_MORE);
  if (r != A_MORE) fail("pipe A: write of %d more bytes: %zd (%s)", A_MORE, r, r < 0 ? strerror(errno) : "short");
  close(30);
  int ws;
  pid_t w;
  do w = waitpid(child_pid, &ws, 0);
  while (w < 0 && errno == EINTR);
  if (w != child_pid) fail("waitpid(child %d): %s", (int)child_pid, strerror(errno));
  else if (WIFSIGNALED(ws)) fail("child %d killed by signal %d", (int)child_pid, WTERMSIG(ws));
  else if (WEXITSTATUS(ws) != 0) fail("child %d exited with status %d", (int)child_pid, WEXITSTATUS(ws));
  else {
    expect_offset(20, 3333 + 100);
    r = read(41, rbuf, 16);
    if (r != 0) fail("pipe B: fd 41 not at EOF after the child read it (read gave %zd)", r);
  }
  verdict();
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  ckpt_fill(pat_file, FILE_LEN, FILE_SEED, 0);
  ckpt_fill(pat_a, sizeof pat_a, A_SEED, 0);
  ckpt_fill(pat_b, sizeof pat_b, B_SEED, 0);
  ckpt_fill(pat_d, D_LEN, D_SEED, 0);
  ckpt_fill(pat_d2, D2_LEN, D2_SEED, 0);
  parent_pid = getpid();

  int f = open("shared.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (f < 0) die("create shared.dat");
  if (write(f, pat_file, FILE_LEN) != FILE_LEN) die("write shared.dat");
  move_fd(f, 20);
  if (lseek(20, 3333, SEEK_SET) != 3333) die("lseek");

  int p[2];
  if (pipe(p)) die("pipe A");
  move_fd(p[0], 31);
  move_fd(p[1], 30);
  if (write(30, pat_a, A_LEN) != A_LEN) die("write A");
  if (pipe(p)) die("pipe B");
  move_fd(p[0], 40);
  if (write(p[1], pat_b, B_LEN) != B_LEN) die("write B");
  close(p[1]);
  if (dup2(40, 41) != 41) die("dup2 41");
  if (pipe2(p, O_NONBLOCK)) die("pipe D");
  move_fd(p[0], 50);
  move_fd(p[1], 51);
  if (fcntl(51, F_SETPIPE_SZ, D_SIZE) != D_SIZE) die("F_SETPIPE_SZ %d", D_SIZE);
  if (write(51, pat_d, D_LEN) != D_LEN) die("write D");

  int h[2];
  if (pipe2(h, O_CLOEXEC)) die("handshake pipe");
  child_pid = fork();
  if (child_pid < 0) die("fork");
  if (child_pid == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent_pid) _exit(2);
    close(h[0]);
    close(3);
    close(30);
    close(41);
    close(50);
    close(51);
    if (dup2(20, 21) != 21) die("dup2 21");
    if (read_full(31, rbuf, A_READ) != A_READ || memcmp(rbuf, pat_a, A_READ)) die("first 1000 bytes of A");
    skip_fd = h[1];
    take_fds(&fds_before);
    skip_fd = -1;
    if (prctl(PR_SET_PDEATHSIG, 0)) die("PR_SET_PDEATHSIG 0");
    ckpt_write_all(h[1], "ok", 2);
    close(h[1]);
    wait_for_term();
    child_verify();
  }
  close(h[1]);
  close(31);
  close(40);
  char ok[4] = "";
  ssize_t r = read_full(h[0], ok, 2);
  /* And its end closed (EOF): READY means no fd changes after it. */
  if (r == 2 && read(h[0], ok + 2, 1) != 0) r = -1;
  close(h[0]);
  if (r != 2 || memcmp(ok, "ok", 2)) {
    kill(child_pid, SIGKILL);
    die("the child failed its setup");
  }
  take_fds(&fds_before);
  ready("pids=%d,%d", (int)parent_pid, (int)child_pid);
  wait_for_term();
  parent_verify();
}
