/* ckpt_procfd: files opened again through /proc/self/fd links across a
 * checkpoint. Each such open makes a new open file description of the same
 * file, with its own offset and flags.
 *
 * Before READY, in its cwd:
 *   fd 43: "data" (O_RDWR, 8192 bytes, offset 100);
 *   fd 44: /proc/self/fd/43 opened O_RDONLY, offset 5000;
 *   fds 46 (read) and 42 (write): a pipe holding "abc"; fd 45:
 *          /proc/self/fd/46 opened O_WRONLY | O_NONBLOCK (a second write
 *          end, non-blocking while fd 42 blocks);
 *   fd 47: "gone" (O_RDWR, "ghost!"), fd 48: /proc/self/fd/47 opened
 *          O_RDONLY at offset 2; then "gone" is unlinked;
 *   fd 49: a memfd holding "memory", offset 6; fd 50: /proc/self/fd/49
 *          opened O_RDWR, offset 1.
 * Verifies after SIGTERM: each fd's offset, access mode and O_NONBLOCK;
 * 43/44, 47/48 and 49/50 are each one inode but two descriptions (kcmp
 * not needed: an lseek on one leaves the other); "gone" has no link; the
 * pipe gives "abc" then what fd 45 writes; bytes written through one fd of
 * a pair are read through the other.
 *
 * --selftest-corrupt: after READY, fd 44 is moved to offset 4000.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "ckpt_common.h"

static int reopen(int fd, int flags, int at) {
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  int r = open(p, flags);
  if (r < 0) die("open %s", p);
  if (dup2(r, at) != at) die("dup2 %d", at);
  if (r != at) close(r);
  return at;
}

static void place(int fd, int at) {
  if (fd == at) return;
  if (dup2(fd, at) != at) die("dup2 %d", at);
  close(fd);
}

/* `off` -1: a pipe, which has none. */
static void check_fd(int fd, const char *what, off_t off, int acc, int nonblock) {
  off_t o = lseek(fd, 0, SEEK_CUR);
  int fl = fcntl(fd, F_GETFL);
  if (off >= 0 && o != off) fail("fd %d (%s) has offset %lld, expected %lld", fd, what, (long long)o, (long long)off);
  if (fl < 0 || (fl & O_ACCMODE) != acc || !!(fl & O_NONBLOCK) != nonblock)
    fail("fd %d (%s) has flags %#x, expected access mode %d%s", fd, what, fl, acc, nonblock ? " and O_NONBLOCK" : "");
}

static void same_inode(int a, int b) {
  struct stat sa, sb;
  if (fstat(a, &sa) || fstat(b, &sb) || sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino)
    fail("fds %d and %d are not the same file", a, b);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  char buf[8192];
  ckpt_fill(buf, sizeof buf, 0x9f0, 0);
  int fd = open("data", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("data");
  place(fd, 43);
  lseek(43, 100, SEEK_SET);
  reopen(43, O_RDONLY, 44);
  lseek(44, 5000, SEEK_SET);

  int p[2];
  if (pipe(p)) die("pipe");
  place(p[0], 46);
  place(p[1], 42);
  if (write(42, "abc", 3) != 3) die("pipe write");
  reopen(46, O_WRONLY | O_NONBLOCK, 45);

  fd = open("gone", O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, "ghost!", 6) != 6) die("gone");
  place(fd, 47);
  reopen(47, O_RDONLY, 48);
  lseek(48, 2, SEEK_SET);
  if (unlink("gone")) die("unlink gone");

  fd = memfd_create("procfd", 0);
  if (fd < 0 || write(fd, "memory", 6) != 6) die("memfd");
  place(fd, 49);
  reopen(49, O_RDWR, 50);
  lseek(50, 1, SEEK_SET);

  ready("fds=42-50");
  if (ckpt_corrupt) lseek(44, 4000, SEEK_SET);
  wait_for_term();

  check_fd(43, "data", 100, O_RDWR, 0);
  check_fd(44, "reopened through /proc/self/fd/43", 5000, O_RDONLY, 0);
  check_fd(42, "the pipe's write end", -1, O_WRONLY, 0);
  check_fd(45, "reopened through /proc/self/fd/46", -1, O_WRONLY, 1);
  check_fd(47, "the deleted file", 6, O_RDWR, 0);
  check_fd(48, "reopened through /proc/self/fd/47", 2, O_RDONLY, 0);
  check_fd(49, "the memfd", 6, O_RDWR, 0);
  check_fd(50, "reopened through /proc/self/fd/49", 1, O_RDWR, 0);
  same_inode(43, 44);
  same_inode(47, 48);
  same_inode(49, 50);
  same_inode(45, 46);
  char got[16];
  if (pwrite(43, "ZZ", 2, 6000) != 2 || pread(44, got, 2, 6000) != 2 || memcmp(got, "ZZ", 2))
    fail("a write through fd 43 is not read through fd 44");
  if (pread(44, got, 4, 200) != 4 || memcmp(got, buf + 200, 4)) fail("data bytes 200..203 differ");
  if (write(45, "xyz", 3) != 3) fail("cannot write through fd 45");
  memset(got, 0, sizeof got);
  if (read(46, got, 6) != 6 || memcmp(got, "abcxyz", 6)) fail("the pipe gave '%.6s', expected 'abcxyz'", got);
  struct stat st;
  if (fstat(47, &st) || st.st_nlink != 0) fail("the deleted file has %d links", (int)st.st_nlink);
  if (write(47, "+more", 5) != 5 || pread(48, got, 11, 0) != 11 || memcmp(got, "ghost!+more", 11))
    fail("a write through fd 47 is not read through fd 48");
  if (pwrite(50, "M", 1, 0) != 1 || pread(49, got, 6, 0) != 6 || memcmp(got, "Memory", 6))
    fail("a write through fd 50 is not read through fd 49 ('%.6s')", got);
  verdict();
}
