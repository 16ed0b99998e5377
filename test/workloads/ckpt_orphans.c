/* ckpt_orphans: processes whose session or process group leader is gone,
 * below a child subreaper that took in orphans.
 *
 * The root R makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), then:
 *  - a pipeline whose first process is gone (bash `a | b` after a exits):
 *    R forks A, which makes its own group, and B, which joins A's group;
 *    A exits and R reaps it. B's group is A's pid, held by no process.
 *  - a session whose leader is gone: R forks C, which calls setsid() and
 *    forks D (in C's session and group; D forks D2, which inherits both)
 *    and G, which makes its own group in C's session and forks H; G exits
 *    (H is orphaned: the kernel gives it to R, the subreaper), then C exits
 *    (D too comes to R). D's session and group are C's pid; H's session is
 *    C's pid and its group G's; C and G hold no process.
 * READY: "pids=R,B,D,D2,H gone=A,C,G".
 * Verifies after SIGTERM: R is still a child subreaper; R sends each child
 * SIGTERM and waits for it; each child checks its pid, parent, session and
 * group against what it had before READY, that the gone leaders' pids hold
 * no process, and exits 0 (D first stops and reaps D2 the same way).
 *
 * --selftest-corrupt: after READY, B moves to a group of its own.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static pid_t gone_a, gone_c, gone_g;

/* After SIGTERM: is this process where it was? */
static void check_self(const char *name, pid_t pid, pid_t ppid, pid_t sid, pid_t pgid) {
  if (getpid() != pid) fail("%s: pid %d, was %d", name, (int)getpid(), (int)pid);
  if (getppid() != ppid) fail("%s: parent %d, was %d", name, (int)getppid(), (int)ppid);
  if (getsid(0) != sid) fail("%s: session %d, was %d", name, (int)getsid(0), (int)sid);
  if (getpgid(0) != pgid) fail("%s: process group %d, was %d", name, (int)getpgid(0), (int)pgid);
  pid_t gone[3] = {gone_a, gone_c, gone_g}; /* 0: not known to this one */
  for (int i = 0; i < 3; i++)
    if (gone[i] > 0 && (kill(gone[i], 0) == 0 || errno != ESRCH))
      fail("%s: pid %d (a gone leader) holds a process", name, (int)gone[i]);
}

static void end_child(const char *name) {
  (void)name;
  if (failed()) ckpt_say("%s\n", ckpt_fail_buf);
  _exit(failed() ? 1 : 0);
}

static void stop_child(pid_t c, const char *name) {
  int st;
  kill(c, SIGTERM);
  if (waitpid(c, &st, 0) != c) fail("waitpid %s: %s", name, strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st)) fail("child %s ended with %#x", name, st);
}

/* A child that waits for SIGTERM and then checks itself. */
static void child_wait_check(const char *name) {
  pid_t pid = getpid(), ppid = getppid(), sid = getsid(0), pgid = getpgid(0);
  wait_for_term();
  check_self(name, pid, ppid, sid, pgid);
  end_child(name);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1)) die("PR_SET_CHILD_SUBREAPER");
  int go[2];
  if (pipe(go)) die("pipe");
  pid_t root = getpid();

  /* The pipeline: A leads a group, B joins it, A goes. */
  pid_t a = fork();
  if (a < 0) die("fork");
  if (a == 0) {
    close(3);
    setpgid(0, 0);
    char c;
    close(go[1]);
    if (read(go[0], &c, 1) != 1) _exit(2); /* until B has joined */
    _exit(0);
  }
  setpgid(a, a);
  pid_t b = fork();
  if (b < 0) die("fork");
  if (b == 0) {
    close(3);
    if (setpgid(0, a)) die("B: setpgid %d", (int)a);
    ckpt_write_all(go[1], "j", 1);
    close(go[0]);
    close(go[1]);
    /* R reaps A before READY; B waits for SIGTERM, then checks. */
    pid_t pid = getpid(), sid = getsid(0), pgid = getpgid(0);
    gone_a = a;
    wait_for_term();
    check_self("B", pid, root, sid, pgid);
    if (pgid != a) fail("B: group %d at setup, not A's %d", (int)pgid, (int)a);
    end_child("B");
  }
  int st;
  if (waitpid(a, &st, 0) != a || !WIFEXITED(st) || WEXITSTATUS(st)) die("A ended badly (%#x)", st);
  close(go[0]);
  close(go[1]);
  gone_a = a;

  /* The session: C leads it, D and D2 stay in C's group, G makes a group
   * and forks H, G and C go. Pids come back on `info`. */
  int pids[2];
  if (pipe(pids)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    close(3);
    close(pids[0]);
    if (setsid() < 0) die("C: setsid");
    gone_c = getpid();
    pid_t d = fork();
    if (d < 0) die("fork");
    if (d == 0) {
      pid_t d2 = fork();
      if (d2 < 0) die("fork");
      if (d2 == 0) {
        close(pids[1]);
        child_wait_check("D2");
      }
      int msg[3] = {'D', getpid(), d2};
      ckpt_write_all(pids[1], (const char *)msg, sizeof msg);
      close(pids[1]);
      pid_t pid = getpid(), sid = getsid(0), pgid = getpgid(0);
      wait_for_term();
      check_self("D", pid, root, sid, pgid);
      if (sid != pgid) fail("D: group %d at setup, not its session leader's %d", (int)pgid, (int)sid);
      stop_child(d2, "D2");
      end_child("D");
    }
    pid_t g = fork();
    if (g < 0) die("fork");
    if (g == 0) {
      if (setpgid(0, 0)) die("G: setpgid");
      pid_t h = fork();
      if (h < 0) die("fork");
      if (h == 0) {
        int msg[3] = {'H', getpid(), getpgid(0)};
        ckpt_write_all(pids[1], (const char *)msg, sizeof msg);
        close(pids[1]);
        gone_g = getpgid(0);
        pid_t pid = getpid(), sid = getsid(0), pgid = getpgid(0);
        wait_for_term();
        check_self("H", pid, root, sid, pgid);
        end_child("H");
      }
      _exit(0);
    }
    if (waitpid(g, &st, 0) != g) die("waitpid G");
    _exit(0);
  }
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) die("C ended badly (%#x)", st);
  pid_t d = 0, d2 = 0, h = 0;
  for (int i = 0; i < 2; i++) { /* D's and H's, in either order */
    int msg[3];
    if (read(pids[0], msg, sizeof msg) != sizeof msg) die("no pids from D and H");
    if (msg[0] == 'D') d = msg[1], d2 = msg[2];
    else h = msg[1], gone_g = msg[2];
  }
  if (!d || !h) die("no pids from D and H");
  gone_c = c;
  close(pids[0]);
  close(pids[1]);
  if (getpgid(b) != a || getsid(d) != c || getpgid(d) != c || getsid(h) != c || getpgid(h) != gone_g)
    die("the setup is not as planned: B %d/%d D %d/%d H %d/%d", (int)getpgid(b), (int)getsid(b), (int)getpgid(d),
        (int)getsid(d), (int)getpgid(h), (int)getsid(h));
  ready("pids=%d,%d,%d,%d,%d gone=%d,%d,%d", (int)root, (int)b, (int)d, (int)d2, (int)h, (int)a, (int)c, (int)gone_g);
  if (ckpt_corrupt) setpgid(b, b);
  wait_for_term();

  int sr = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, &sr) || sr != 1) fail("R is no longer a child subreaper (%d)", sr);
  pid_t gone[3] = {a, c, gone_g};
  for (int i = 0; i < 3; i++)
    if (kill(gone[i], 0) == 0 || errno != ESRCH) fail("pid %d (a gone leader) holds a process", (int)gone[i]);
  if (getpgid(b) != a) fail("B is in group %d, not the gone A's %d", (int)getpgid(b), (int)a);
  stop_child(b, "B");
  stop_child(d, "D");
  stop_child(h, "H");
  verdict();
}
