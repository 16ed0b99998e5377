/* ckpt_daemon: a daemon made by the classic double fork, whose session and
 * group leader is gone.
 *
 * The process started by the harness forks C; C calls setsid() and forks D,
 * the daemon, then exits; the first process exits once C has. D's session
 * and process group are C's pid, and no process has that pid any more.
 * --own-group: C forks E, which makes its own process group and forks D,
 * then E exits too: D's session is C's pid and its group E's, both gone.
 * READY (from D): "daemon=D leader=C".
 * Verifies in D after SIGTERM: its pid, getsid(0) and getpgid(0) are what
 * they were (the session and group were made again), C's pid holds no
 * process, D leads neither, and its private buffer is intact.
 *
 * --selftest-corrupt: after READY, D calls setsid() (a new session).
 */
#include <sys/wait.h>

#include "ckpt_common.h"

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  int gone[2]; /* the first process tells D that C is reaped */
  if (pipe(gone)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    if (setsid() < 0) die("setsid");
    if (ckpt_flag(argc, argv, "--own-group")) {
      pid_t e = fork();
      if (e < 0) die("fork");
      if (e > 0) { /* C: exits once E has */
        close(3);
        close(gone[0]);
        close(gone[1]);
        int st;
        waitpid(e, &st, 0);
        _exit(0);
      }
      if (setpgid(0, 0)) die("setpgid"); /* E: its own group in C's session */
    }
    pid_t d = fork();
    if (d < 0) die("fork");
    if (d == 0) {
      pid_t leader = getsid(0); /* C, which called setsid() */
      static char buf[65536];
      for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)ckpt_word(7, i);
      close(gone[1]);
      char b;
      if (read(gone[0], &b, 1) != 1) die("the first process did not report the leader reaped");
      close(gone[0]);
      pid_t me = getpid(), sid = getsid(0), pgid = getpgid(0);
      ready("daemon=%d leader=%d", (int)me, (int)leader);
      if (ckpt_corrupt) setsid();
      wait_for_term();
      if (getpid() != me) fail("pid %d, was %d", (int)getpid(), (int)me);
      if (getsid(0) != sid) fail("session %d, was %d", (int)getsid(0), (int)sid);
      if (getpgid(0) != pgid) fail("process group %d, was %d", (int)getpgid(0), (int)pgid);
      if (pgid != leader && !ckpt_flag(argc, argv, "--own-group")) fail("session %d, group %d at setup: not the leader's %d", (int)sid, (int)pgid, (int)leader);
      if (kill(leader, 0) == 0 || errno != ESRCH) fail("pid %d (the gone leader) holds a process", (int)leader);
      if (kill(pgid, 0) == 0 || errno != ESRCH) fail("pid %d (the gone group leader) holds a process", (int)pgid);
      for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != (char)ckpt_word(7, i)) {
          fail("buffer byte %zu differs", i);
          break;
        }
      verdict();
    }
    close(3);
    _exit(0);
  }
  close(3);
  close(gone[0]);
  int st;
  waitpid(c, &st, 0);
  ckpt_write_all(gone[1], "g", 1);
  _exit(0);
}
