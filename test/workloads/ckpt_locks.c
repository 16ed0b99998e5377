/* ckpt_locks: file locks across a checkpoint (dump with --file-locks).
 *
 * Before READY, in its cwd:
 *   fd 40  l1, O_RDWR, flock LOCK_EX; the child C shares the description
 *   fd 42  l3, O_RDWR, an OFD read lock on bytes 10-19
 *   C opens l2 at fd 41 (O_RDWR) and takes POSIX locks: write on 0-99,
 *   read from 200 to the end
 * READY "pids=P,C".
 * Verifies after SIGTERM: a new process K (forked now) finds l1 flocked,
 * l2's byte 0 write-locked and byte 250 read-locked by C's pid and byte 150
 * free, and l3's byte 15 read-locked (OFD); then C is ended, and K2 finds
 * l2 free: the POSIX locks were C's.
 *
 * --selftest-corrupt: after READY the parent drops its flock.
 */
#include <sys/file.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static int open_at(const char *name, int at) {
  int fd = open(name, O_RDWR | O_CREAT, 0644);
  if (fd < 0) die("open %s", name);
  if (fd != at) {
    if (dup2(fd, at) < 0) die("dup2");
    close(fd);
  }
  return at;
}

static struct flock probe(int fd, int cmd, short type, off_t start) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
  if (fcntl(fd, cmd, &fl)) fl.l_type = -1;
  return fl;
}

/* K: what a process outside the tree sees; exit 0 if as expected. */
static void checker(pid_t c, int c_alive) {
  int l1 = open("l1", O_RDWR), l2 = open("l2", O_RDWR), l3 = open("l3", O_RDWR);
  if (l1 < 0 || l2 < 0 || l3 < 0) _exit(10);
  if (c_alive) {
    if (flock(l1, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) {
      ckpt_say("K: l1 is not flocked\n");
      _exit(11);
    }
    struct flock a = probe(l2, F_GETLK, F_WRLCK, 0), b = probe(l2, F_GETLK, F_WRLCK, 250),
                 m = probe(l2, F_GETLK, F_WRLCK, 150);
    if (a.l_type != F_WRLCK || a.l_pid != c || a.l_start != 0 || a.l_len != 100) {
      ckpt_say("K: l2 byte 0: type %d pid %d start %lld len %lld\n", a.l_type, (int)a.l_pid, (long long)a.l_start,
               (long long)a.l_len);
      _exit(12);
    }
    if (b.l_type != F_RDLCK || b.l_pid != c || b.l_start != 200 || b.l_len != 0) {
      ckpt_say("K: l2 byte 250: type %d pid %d start %lld len %lld\n", b.l_type, (int)b.l_pid, (long long)b.l_start,
               (long long)b.l_len);
      _exit(13);
    }
    if (m.l_type != F_UNLCK) _exit(14);
    struct flock o = probe(l3, F_OFD_GETLK, F_WRLCK, 15);
    if (o.l_type != F_RDLCK || o.l_start != 10 || o.l_len != 10) {
      ckpt_say("K: l3 byte 15: type %d start %lld len %lld\n", o.l_type, (long long)o.l_start, (long long)o.l_len);
      _exit(15);
    }
  } else if (probe(l2, F_GETLK, F_WRLCK, 0).l_type != F_UNLCK || probe(l2, F_GETLK, F_WRLCK, 250).l_type != F_UNLCK) {
    ckpt_say("K2: l2 still locked after C ended\n");
    _exit(16);
  }
  _exit(0);
}

static int run_checker(pid_t c, int c_alive) {
  pid_t k = fork();
  if (k < 0) return -1;
  if (k == 0) {
    close(3);
    checker(c, c_alive);
  }
  int st;
  if (waitpid(k, &st, 0) != k || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  open_at("l1", 40);
  if (flock(40, LOCK_EX | LOCK_NB)) die("flock l1");
  open_at("l3", 42);
  struct flock ofd = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 10};
  if (fcntl(42, F_OFD_SETLK, &ofd)) die("OFD lock l3");
  int ready_p[2];
  if (pipe(ready_p)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    close(3);
    close(ready_p[0]);
    open_at("l2", 41);
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
    struct flock r = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 200, .l_len = 0};
    if (fcntl(41, F_SETLK, &w) || fcntl(41, F_SETLK, &r)) _exit(2);
    if (write(ready_p[1], "r", 1) != 1) _exit(3);
    close(ready_p[1]);
    wait_for_term();
    _exit(0);
  }
  close(ready_p[1]);
  char b;
  if (read(ready_p[0], &b, 1) != 1) die("C did not lock l2");
  close(ready_p[0]);
  ready("pids=%d,%d", (int)getpid(), (int)c);
  if (ckpt_corrupt) flock(40, LOCK_UN);
  wait_for_term();

  int k = run_checker(c, 1);
  if (k != 0) fail("a new process found the locks not as dumped (checker status %d)", k);
  kill(c, SIGTERM);
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child C ended with %#x", st);
  k = run_checker(c, 0);
  if (k != 0) fail("l2 still locked after C ended (checker status %d)", k);
  verdict();
}
