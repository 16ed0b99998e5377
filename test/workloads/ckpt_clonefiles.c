/* ckpt_clonefiles: an fd table shared between a parent and its child made
 * with clone(CLONE_FILES), and not shared with a plain child.
 *
 * Before READY: the parent opens file "a" at fd 30, makes child S with
 * clone(CLONE_FILES) and child P with fork(); S opens file "b" at fd 31
 * (so the parent has it too, one table).
 * Verifies after restore (the parent sends each child SIGTERM in turn and
 * waits for it): S finds fd 30 ("a") and fd 31 ("b"), closes fd 30 and
 * opens "c" at fd 32; the parent must then see fd 30 closed and fd 32 open
 * on "c" (still one table); P finds fds 30 and 31 (its copy from the fork)
 * but not fd 32, and opens "d" at fd 33, which the parent must not see.
 *
 * --selftest-corrupt: S is made with fork() instead (nothing is shared).
 */
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static int names(int fd, const char *tail) {
  char l[4096];
  return ckpt_fd_link(fd, l, sizeof l)[0] && ckpt_ends_with(l, tail);
}

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static int open_at(const char *name, int fd) {
  int f = open(name, O_RDWR | O_CREAT, 0600);
  if (f < 0 || dup2(f, fd) < 0) return -1;
  if (f != fd) close(f);
  return fd;
}

static void end_child(const char *who) {
  if (failed()) ckpt_say("child %s: %s\n", who, ckpt_fail_buf);
  _exit(failed() ? 1 : 0);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if (open_at("a", 30) < 0) die("open a");
  int sync[2];
  if (pipe(sync)) die("pipe");
  long s = ckpt_corrupt ? fork() : syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
  if (s < 0) die("clone");
  if (s == 0) {
    if (open_at("b", 31) < 0) die("S: open b");
    ckpt_write_all(sync[1], "s", 1);
    wait_for_term();
    if (!names(30, "/a")) fail("S: fd 30 is not a");
    if (!names(31, "/b")) fail("S: fd 31 is not b");
    close(30);
    if (open_at("c", 32) < 0) fail("S: open c: %s", strerror(errno));
    end_child("S");
  }
  char c;
  if (read(sync[0], &c, 1) != 1) die("S setup");
  pid_t p = fork();
  if (p < 0) die("fork");
  if (p == 0) {
    close(sync[0]);
    close(sync[1]);
    wait_for_term();
    if (!names(30, "/a") || !names(31, "/b")) fail("P: fds 30/31 are not a/b");
    if (is_open(32)) fail("P: has fd 32 (it should not share the parent's table)");
    if (open_at("d", 33) < 0) fail("P: open d: %s", strerror(errno));
    end_child("P");
  }
  /* The shared pipe stays open in S (one table): close it here for both. */
  close(sync[0]);
  close(sync[1]);
  ready("pids=%d,%ld,%d", getpid(), s, (int)p);
  wait_for_term();

  if (!names(30, "/a") || !names(31, "/b")) fail("fds 30/31 are not a/b before the children ran");
  int st;
  kill((pid_t)s, SIGTERM);
  if (waitpid((pid_t)s, &st, 0) != (pid_t)s || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child S ended with %#x", st);
  if (is_open(30)) fail("fd 30 is still open after S closed it (not shared)");
  if (!names(32, "/c")) fail("fd 32 is not c after S opened it (not shared)");
  kill(p, SIGTERM);
  if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child P ended with %#x", st);
  if (is_open(33)) fail("fd 33 is open: P's table is shared");
  verdict();
}
