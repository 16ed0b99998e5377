/* ckpt_clonefs: fs information (cwd, umask) shared between a parent and its
 * child made with clone(CLONE_FS), and not shared with a plain child.
 *
 * Before READY: the parent makes directories d1, d2, d3 in its cwd, enters
 * d1 with umask 027, and makes child S with clone(CLONE_FS) and child P
 * with fork(); P enters d3 (its own cwd).
 * Verifies after restore (the parent sends each child SIGTERM in turn and
 * waits for it): S sees cwd .../d1 and umask 027, then moves to ../d2 and
 * sets umask 077; the parent must then see .../d2 and 077 (still shared);
 * P sees .../d3, moves to ../d1, and the parent still sees .../d2 (not
 * shared).
 *
 * --selftest-corrupt: S is made with fork() instead (nothing is shared).
 */
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static mode_t get_umask(void) {
  mode_t m = umask(0);
  umask(m);
  return m;
}

/* A child's work after SIGTERM; exit 0 if all is well. */
static void child_shared(void) {
  wait_for_term();
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd) || !ckpt_ends_with(cwd, "/d1")) fail("S: cwd %s, not .../d1", cwd);
  if (get_umask() != 027) fail("S: umask %03o, not 027", get_umask());
  if (chdir("../d2")) fail("S: chdir ../d2: %s", strerror(errno));
  umask(077);
  if (failed()) ckpt_say("child S: %s\n", ckpt_fail_buf);
  _exit(failed() ? 1 : 0);
}

static void child_plain(void) {
  if (chdir("../d3")) die("P: chdir ../d3");
  wait_for_term();
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd) || !ckpt_ends_with(cwd, "/d3")) fail("P: cwd %s, not .../d3", cwd);
  if (chdir("../d1")) fail("P: chdir ../d1: %s", strerror(errno));
  if (failed()) ckpt_say("child P: %s\n", ckpt_fail_buf);
  _exit(failed() ? 1 : 0);
}

static int wait_child(pid_t c, const char *name) {
  int st;
  kill(c, SIGTERM);
  if (waitpid(c, &st, 0) != c) {
    fail("waitpid %s: %s", name, strerror(errno));
    return 0;
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st)) fail("child %s ended with %#x", name, st);
  return 1;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  for (const char *d = "d1"; d; d = !strcmp(d, "d1") ? "d2" : !strcmp(d, "d2") ? "d3" : NULL)
    if (mkdir(d, 0755) && errno != EEXIST) die("mkdir %s", d);
  if (chdir("d1")) die("chdir d1");
  umask(027);
  long s = ckpt_corrupt ? fork() : syscall(SYS_clone, CLONE_FS | SIGCHLD, 0, 0, 0, 0);
  if (s < 0) die("clone");
  if (s == 0) child_shared();
  pid_t p = fork();
  if (p < 0) die("fork");
  if (p == 0) child_plain();
  ready("pids=%d,%ld,%d", getpid(), s, (int)p);
  wait_for_term();

  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd) || !ckpt_ends_with(cwd, "/d1")) fail("cwd %s before the children ran, not .../d1", cwd);
  wait_child((pid_t)s, "S");
  if (!getcwd(cwd, sizeof cwd) || !ckpt_ends_with(cwd, "/d2")) fail("cwd %s after S moved, not .../d2 (not shared)", cwd);
  if (get_umask() != 077) fail("umask %03o after S set 077 (not shared)", get_umask());
  wait_child(p, "P");
  if (!getcwd(cwd, sizeof cwd) || !ckpt_ends_with(cwd, "/d2")) fail("cwd %s after P moved, not .../d2 (shared with P)", cwd);
  verdict();
}
