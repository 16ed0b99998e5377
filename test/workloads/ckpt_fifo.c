/* ckpt_fifo: a named FIFO between a parent and its child, with unread data.
 *
 * Before READY: the parent makes FIFO "fifo1" in its cwd, opens its read
 * end (non-blocking, then made blocking) and its write end, writes 1000
 * bytes, and forks; the child reads 300 of them; the parent closes its read
 * end, the child its write end. The pipe buffer lives only while an fd
 * holds it: restore must make it again with the 700 bytes.
 * Verifies after restore: the child reads exactly the 700 remaining bytes,
 * then the 200 the parent writes after restore, then EOF when the parent
 * closes its end; both fds still name .../fifo1; the parent sees the
 * child exit 0.
 *
 * --selftest-corrupt: after READY the child reads one byte early.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static unsigned char byte_at(size_t i) { return (unsigned char)(i * 7 + 3); }

static void check_link(int fd, const char *who) {
  char l[4096];
  if (!ckpt_ends_with(ckpt_fd_link(fd, l, sizeof l), "/fifo1")) fail("%s: fd %d is '%s', not the FIFO", who, fd, l);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  unlink("fifo1");
  if (mkfifo("fifo1", 0600)) die("mkfifo");
  int rd = open("fifo1", O_RDONLY | O_NONBLOCK);
  if (rd < 0) die("open fifo read");
  int wr = open("fifo1", O_WRONLY);
  if (wr < 0) die("open fifo write");
  fcntl(rd, F_SETFL, 0);
  unsigned char out[1000];
  for (size_t i = 0; i < sizeof out; i++) out[i] = byte_at(i);
  ckpt_write_all(wr, (const char *)out, sizeof out);
  int sync[2];
  if (pipe(sync)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    close(wr);
    close(sync[0]);
    unsigned char in[300];
    size_t got = 0;
    while (got < sizeof in) {
      ssize_t n = read(rd, in + got, sizeof in - got);
      if (n <= 0) die("child: read");
      got += (size_t)n;
    }
    ckpt_write_all(sync[1], "r", 1);
    close(sync[1]);
    if (ckpt_corrupt) {
      char x;
      (void)!read(rd, &x, 1);
    }
    wait_for_term();
    check_link(rd, "child");
    unsigned char rest[900];
    size_t n = 0;
    for (;;) {
      ssize_t k = read(rd, rest + n, sizeof rest - n);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      n += (size_t)k;
      if (n == sizeof rest) break;
    }
    if (n != 900) fail("child: read %zu bytes after restore, expected 900", n);
    for (size_t i = 0; i < n; i++)
      if (rest[i] != byte_at(300 + i)) {
        fail("child: byte %zu is %#x, expected %#x", 300 + i, rest[i], byte_at(300 + i));
        break;
      }
    char x;
    ssize_t k = read(rd, &x, 1);
    if (k != 0) fail("child: no EOF after the parent closed (read gave %zd)", k);
    if (failed()) ckpt_say("child %d: %s\n", getpid(), ckpt_fail_buf);
    _exit(failed() ? 1 : 0);
  }
  close(rd);
  close(sync[1]);
  char r;
  if (read(sync[0], &r, 1) != 1) die("child setup");
  close(sync[0]);
  ready("pids=%d,%d", getpid(), (int)c);
  wait_for_term();
  check_link(wr, "parent");
  unsigned char more[200];
  for (size_t i = 0; i < sizeof more; i++) more[i] = byte_at(1000 + i);
  ckpt_write_all(wr, (const char *)more, sizeof more);
  close(wr);
  kill(c, SIGTERM);
  int st;
  if (waitpid(c, &st, 0) != c) fail("waitpid: %s", strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st)) fail("child ended with %#x", st);
  verdict();
}
