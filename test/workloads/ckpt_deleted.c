/* ckpt_deleted: files deleted while open, and O_PATH descriptors.
 *
 * Before READY, in its cwd:
 *   fd 40  victim.dat (100 KiB pattern, mode 0640), O_RDWR, offset 1234;
 *          shared with the child C (fork) and dup'ed at fd 42
 *   fd 41  victim.dat again, a second description, O_WRONLY|O_APPEND
 *   then victim.dat is unlinked (its fds show "... (deleted)")
 *   fd 43  O_PATH of directory sub/ (which holds inner.txt)
 *   fd 44  O_PATH of keep.txt
 *   fd 45  O_PATH|O_NOFOLLOW of the symlink link -> keep.txt
 * READY "pids=P,C".
 * Verifies after SIGTERM: fds 40-42 are one deleted inode (no links, mode
 * 0640) whose bytes are the pattern; fd 40 and 42 share offset 1234; C
 * reads 10 bytes from fd 40 and the parent then sees offset 1244; a write
 * through fd 41 appends at 100 KiB; victim.dat is not in the directory;
 * the O_PATH fds have O_PATH, openat(43, "inner.txt") reads "inner",
 * fstat(44) is keep.txt's inode, readlinkat(45, "") gives "keep.txt".
 *
 * --selftest-corrupt: after READY, one byte of the deleted file changes.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include "ckpt_common.h"

#define SIZE (100 * 1024)
static unsigned char pat[SIZE];

static void place(int fd, int at) {
  if (fd < 0) die("open for fd %d: %s", at, strerror(errno));
  if (fd != at) {
    if (dup2(fd, at) < 0) die("dup2 %d", at);
    close(fd);
  }
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  ckpt_fill(pat, sizeof pat, 31, 0);
  int fd = open("victim.dat", O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (fd < 0 || write(fd, pat, sizeof pat) != (ssize_t)sizeof pat) die("victim.dat");
  if (fchmod(fd, 0640)) die("fchmod");
  place(fd, 40);
  if (lseek(40, 1234, SEEK_SET) != 1234) die("lseek");
  place(open("victim.dat", O_WRONLY | O_APPEND), 41);
  if (dup2(40, 42) != 42) die("dup2 42");
  if (unlink("victim.dat")) die("unlink");
  if (mkdir("sub", 0755) && errno != EEXIST) die("mkdir sub");
  int in = open("sub/inner.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || write(in, "inner", 5) != 5) die("inner.txt");
  close(in);
  int k = open("keep.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (k < 0 || write(k, "keep", 4) != 4) die("keep.txt");
  close(k);
  unlink("link");
  if (symlink("keep.txt", "link")) die("symlink");
  place(open("sub", O_PATH | O_DIRECTORY), 43);
  place(open("keep.txt", O_PATH), 44);
  place(open("link", O_PATH | O_NOFOLLOW), 45);
  struct stat keep_st;
  if (fstat(44, &keep_st)) die("fstat 44");

  int go, back[2];
  if (pipe(back)) die("pipe");
  pid_t c = ckpt_fork_waiting(&go);
  if (c == 0) {
    char buf[10];
    if (read(40, buf, sizeof buf) != (ssize_t)sizeof buf || memcmp(buf, pat + 1234, sizeof buf)) _exit(4);
    if (write(back[1], "d", 1) != 1) _exit(5);
    _exit(0);
  }
  ready("pids=%d,%d", (int)getpid(), (int)c);
  if (ckpt_corrupt && pwrite(40, "X", 1, 5000) != 1) die("corrupt");
  wait_for_term();

  struct stat s0, s1, s2;
  if (fstat(40, &s0) || fstat(41, &s1) || fstat(42, &s2)) fail("fstat: %s", strerror(errno));
  if (s0.st_ino != s1.st_ino || s0.st_ino != s2.st_ino || s0.st_dev != s1.st_dev)
    fail("fds 40-42 are not one inode (%lu %lu %lu)", (unsigned long)s0.st_ino, (unsigned long)s1.st_ino,
         (unsigned long)s2.st_ino);
  if (s0.st_nlink != 0) fail("the deleted file has %lu links", (unsigned long)s0.st_nlink);
  if ((s0.st_mode & 07777) != 0640) fail("mode %o, was 0640", s0.st_mode & 07777);
  char link[256];
  ckpt_fd_link(40, link, sizeof link);
  if (!ckpt_ends_with(link, "/victim.dat (deleted)")) fail("fd 40 is '%s'", link);
  if (access("victim.dat", F_OK) == 0) fail("victim.dat is back in the directory");
  static unsigned char back_buf[SIZE];
  if (pread(40, back_buf, SIZE, 0) != SIZE || memcmp(back_buf, pat, SIZE)) fail("the deleted file's bytes differ");
  if (lseek(40, 0, SEEK_CUR) != 1234 || lseek(42, 0, SEEK_CUR) != 1234)
    fail("offsets %lld/%lld, expected 1234", (long long)lseek(40, 0, SEEK_CUR), (long long)lseek(42, 0, SEEK_CUR));
  if (!(fcntl(41, F_GETFL) & O_APPEND)) fail("fd 41 lost O_APPEND");
  if (write(41, "tail", 4) != 4 || fstat(40, &s0) || s0.st_size != SIZE + 4) fail("append through fd 41 failed");
  if (write(go, "g", 1) != 1) fail("cannot wake C");
  char b;
  if (read(back[0], &b, 1) != 1) fail("C did not read");
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child C ended with %#x", st);
  if (lseek(42, 0, SEEK_CUR) != 1244) fail("after C read 10 bytes the offset is %lld, not 1244", (long long)lseek(42, 0, SEEK_CUR));
  for (int p = 43; p <= 45; p++)
    if (!(fcntl(p, F_GETFL) & O_PATH)) fail("fd %d is not O_PATH", p);
  int inner = openat(43, "inner.txt", O_RDONLY);
  char ib[8] = "";
  if (inner < 0 || read(inner, ib, sizeof ib) != 5 || memcmp(ib, "inner", 5)) fail("openat(43, inner.txt) failed");
  if (inner >= 0) close(inner);
  struct stat ks;
  if (fstat(44, &ks) || ks.st_ino != keep_st.st_ino) fail("fd 44 is not keep.txt");
  char tgt[64] = "";
  if (readlinkat(45, "", tgt, sizeof tgt - 1) != 8 || strcmp(tgt, "keep.txt")) fail("fd 45 reads link '%s'", tgt);
  verdict();
}
