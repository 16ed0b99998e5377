/* ckpt_tree: a process tree across a checkpoint.
 *
 * Before READY the root (its own session and group, as the harness starts
 * it) fills a 1 MiB private anonymous buffer with a pattern and forks:
 *   (a) "pgroup"   setpgid(0,0), then forks 2 children ("pgroup member")
 *                  that stay in its process group;
 *   (b) "session"  setsid(), then forks 1 child ("session member");
 *   (c) "chain"    a chain of depth 4: chain -> chain -> chain -> chain;
 *   (d) "plain"    a plain child;
 *   --fan=N        additionally N plain children ("fan") of the root;
 *   --churn        after READY the root keeps forking a child that exits at
 *                  once with status 3 and reaping it, until SIGTERM: the
 *                  dump meets children being born and dying (a live one is
 *                  restored where it was, a zombie as a zombie); the root
 *                  requires every one reaped with status 3 and at least one
 *                  round after the restore (counted from the restored
 *                  memory: it goes on, it does not restart);
 *   --zombie       additionally a child that exits with status 7 and one
 *                  killed by SIGUSR2, never reaped before the dump (waitid
 *                  WNOWAIT sees both dead before READY). The root handles
 *                  SIGCHLD (a handler, so a pending one is kept: with SIG_DFL
 *                  the kernel drops it), blocks it, and takes the SIGCHLD
 *                  their exits sent before READY: none may be pending after
 *                  the restore (the zombies the restore makes must not
 *                  signal again).
 * Every process, right after its fork, overwrites bytes [256 KiB, 512 KiB)
 * of its copy of the buffer with a pattern derived from its pid (the root
 * once all children exist), so the rest of the buffer is shared
 * copy-on-write by the whole tree and that quarter private to each. A
 * second region of 16 pages has its first page written before any fork and
 * the rest by the root alone, after every child exists: each child must
 * find zeros there (its parent has data; the restore must not give it the
 * parent's).
 * Setup is a handshake through one pipe per child: a child reports the pids
 * of its subtree once that subtree is set up and closes the pipe; every
 * pipe is closed before READY. While a child is being set up it has
 * PR_SET_PDEATHSIG SIGKILL (so a failed setup leaves nothing behind); it is
 * cleared before the report.
 * READY line: "pids=ROOT,...(preorder; zombies last) chain=C1,C2,C3,C4
 * [zombies=Z1,Z2]".
 *
 * Verifies, in every process, after SIGTERM (each process first forwards
 * SIGTERM to its live children): its pid, ppid (except the root's: its
 * parent is whoever restored it), pgid and sid are what they were; its buffer holds the shared pattern and its own pattern, byte by
 * byte; its children (/proc/self/task/PID/children) are exactly the ones it
 * forked (zombies included); then it waitpid()s each child (proving
 * parentage) and requires exit status 0. The root first finds its two
 * zombies in state Z (/proc/PID/stat) and reaps them with exactly exit 7 and
 * WTERMSIG SIGUSR2. A child that finds a difference prints its own line
 * "child PID (ROLE): <what differs>" and exits 1; the root prints the one
 * verdict (PASS, or FAIL naming the children that failed and its own
 * differences).
 *
 * --selftest-corrupt: at SIGTERM, before checking, the plain child moves to
 * a new process group (setpgid(0,0)) and the last chain process changes one
 * byte of the shared part of its buffer.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include "ckpt_common.h"

#define BUF_SIZE (1UL << 20)
#define OWN_OFF (256UL << 10)
#define OWN_LEN (256UL << 10)
#define BASE_SEED 0x7ee5eed5ULL
#define MAXKIDS 1100
#define LIST 16384

struct ids {
  pid_t pid, ppid, pgid, sid;
};

static unsigned char *buf;
/* 16 pages: the first written before any fork (shared by the whole tree),
 * the other 15 only by the root, once all children exist: a child has
 * them untouched (zeros) while its parent has data there. */
#define LATE_PAGES 16
#define LATE_SEED 0x1a7eUL
static unsigned char *late;
static struct ids me;
static const char *my_role = "root";
static int is_root = 1;
static pid_t kids[MAXKIDS];
static const char *kid_role[MAXKIDS];
static int nkids;
static pid_t zexit, zsig;      /* --zombie, root only */
static int churning;           /* --churn */
static void on_chld(int sig) { (void)sig; }
static char subtree[LIST];     /* this process's subtree, preorder */
static char chain_list[256];   /* root only: the chain's pids */
static int up_fd = -1;         /* the pipe to the parent, during setup */

static uint64_t own_seed(pid_t pid) { return 0xc0ffee0000ULL ^ ((uint64_t)(unsigned)pid << 8); }

static void take(struct ids *s) {
  s->pid = getpid();
  s->ppid = getppid();
  s->pgid = getpgid(0);
  s->sid = getsid(0);
}

/* A setup step failed: end the part of the tree this process made, then die. */
static void setup_fail(const char *what) __attribute__((noreturn));
static void setup_fail(const char *what) {
  for (char *p = subtree; *p;) {
    pid_t q = (pid_t)strtol(p, &p, 10);
    if (q > 0 && q != getpid()) kill(q, SIGKILL);
    while (*p == ',') p++;
  }
  die("%s (%s)", what, my_role);
}

static void write_own_pattern(void) { ckpt_fill(buf + OWN_OFF, OWN_LEN, own_seed(getpid()), 0); }

/* Fork a child that runs body(arg), and wait for its report (its subtree's
 * pids, once all of it is set up). */
static void child_main(const char *role, void (*body)(int), int arg, int up) __attribute__((noreturn));
static pid_t spawn(const char *role, void (*body)(int), int arg) {
  if (nkids >= MAXKIDS) setup_fail("too many children");
  int p[2];
  if (pipe2(p, O_CLOEXEC)) setup_fail("pipe2");
  pid_t parent = getpid();
  pid_t c = fork();
  if (c < 0) setup_fail("fork");
  if (c == 0) {
    close(p[0]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent) _exit(2);
    child_main(role, body, arg, p[1]);
  }
  close(p[1]);
  kids[nkids] = c;
  kid_role[nkids++] = role;
  char r[LIST];
  size_t n = 0;
  while (n + 1 < sizeof r) {
    ssize_t k = read(p[0], r + n, sizeof r - 1 - n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    n += (size_t)k;
  }
  r[n] = 0;
  close(p[0]);
  if (n == 0) {
    errno = 0;
    setup_fail("a child failed its setup");
  }
  ckpt_append(subtree, sizeof subtree, ",%s", r);
  return c;
}

static void verify_and_exit(void) __attribute__((noreturn));

static void child_main(const char *role, void (*body)(int), int arg, int up) {
  is_root = 0;
  my_role = role;
  nkids = 0;
  ckpt_fail_count = 0;
  ckpt_fail_len = 0;
  if (up_fd >= 0) close(up_fd); /* the parent's own report pipe */
  up_fd = up;
  close(3);                     /* the root's ready channel */
  write_own_pattern();
  snprintf(subtree, sizeof subtree, "%d", (int)getpid());
  body(arg);
  take(&me);
  if (prctl(PR_SET_PDEATHSIG, 0)) setup_fail("PR_SET_PDEATHSIG 0");
  ckpt_write_all(up_fd, subtree, strlen(subtree));
  close(up_fd);
  up_fd = -1;
  wait_for_term();
  verify_and_exit();
}

static void body_leaf(int arg) { (void)arg; }

static void body_pgroup(int arg) {
  (void)arg;
  if (setpgid(0, 0)) setup_fail("setpgid");
  spawn("pgroup member", body_leaf, 0);
  spawn("pgroup member", body_leaf, 0);
}

static void body_session(int arg) {
  (void)arg;
  if (setsid() < 0) setup_fail("setsid");
  spawn("session member", body_leaf, 0);
}

static void body_chain(int depth) {
  if (depth < 4) spawn("chain", body_chain, depth + 1);
}

/* ------------------------------------------------------------ verification */

static char stat_state(pid_t pid, pid_t *ppid) {
  char path[64], b[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (ckpt_read_file(path, b, sizeof b) <= 0) return 0;
  char *p = strrchr(b, ')');
  if (!p || !p[1] || !p[2]) return 0;
  if (ppid) *ppid = (pid_t)strtol(p + 4, NULL, 10);
  return p[2];
}

static int cmp_pid(const void *a, const void *b) { return *(const pid_t *)a - *(const pid_t *)b; }

/* /proc/self/task/PID/children must be exactly kids[] plus the zombies. */
static void check_children(void) {
  static char b[LIST];
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
  if (ckpt_read_file(path, b, sizeof b) < 0) {
    fail("cannot read %s: %s", path, strerror(errno));
    return;
  }
  static pid_t now[MAXKIDS + 8], want[MAXKIDS + 8];
  int n = 0, w = 0;
  for (char *p = b; *p && n < MAXKIDS + 8;) {
    char *e;
    long v = strtol(p, &e, 10);
    if (e == p) break;
    now[n++] = (pid_t)v;
    p = e;
  }
  for (int i = 0; i < nkids; i++) want[w++] = kids[i];
  if (zexit > 0) want[w++] = zexit;
  if (zsig > 0) want[w++] = zsig;
  qsort(now, (size_t)n, sizeof now[0], cmp_pid);
  qsort(want, (size_t)w, sizeof want[0], cmp_pid);
  if (n != w || memcmp(now, want, sizeof(pid_t) * (size_t)n)) {
    char a1[512] = "", b1[512] = "";
    for (int i = 0; i < n; i++) ckpt_append(a1, sizeof a1, "%s%d", i ? "," : "", (int)now[i]);
    for (int i = 0; i < w; i++) ckpt_append(b1, sizeof b1, "%s%d", i ? "," : "", (int)want[i]);
    fail("children %s, expected %s", a1, b1);
  }
}

static void check_zombie(pid_t z, int want_code, int want_status, const char *what) {
  pid_t pp = 0;
  char st = stat_state(z, &pp);
  if (st != 'Z') fail("zombie %d (%s): state '%c', expected Z", (int)z, what, st ? st : '0');
  else if (pp != getpid()) fail("zombie %d (%s): parent %d", (int)z, what, (int)pp);
  int ws;
  pid_t r;
  do r = waitpid(z, &ws, 0);
  while (r < 0 && errno == EINTR);
  if (r != z) {
    fail("waitpid(zombie %d, %s): %s", (int)z, what, strerror(errno));
    return;
  }
  if (want_code == CLD_EXITED && !(WIFEXITED(ws) && WEXITSTATUS(ws) == want_status))
    fail("zombie %d (%s): wait status %#x, expected exit %d", (int)z, what, (unsigned)ws, want_status);
  if (want_code == CLD_KILLED && !(WIFSIGNALED(ws) && WTERMSIG(ws) == want_status))
    fail("zombie %d (%s): wait status %#x, expected killed by signal %d", (int)z, what, (unsigned)ws, want_status);
}

static void verify_and_exit(void) {
  if (zexit > 0 && !churning) {
    /* Before any child is told to end (their exits would send SIGCHLD). */
    sigset_t p;
    sigpending(&p);
    if (sigismember(&p, SIGCHLD)) fail("SIGCHLD is pending after the restore (it was not at the dump)");
  }
  if (ckpt_corrupt && !strcmp(my_role, "plain")) setpgid(0, 0);
  if (ckpt_corrupt && !strcmp(my_role, "chain") && nkids == 0) buf[100] ^= 0x5a;

  for (int i = 0; i < nkids; i++)
    if (kids[i] > 0) kill(kids[i], SIGTERM);

  struct ids now;
  take(&now);
  if (now.pid != me.pid) fail("pid %d was %d", (int)now.pid, (int)me.pid);
  /* The root's parent is whoever restored it (an attached cr-restore, or the
   * subreaper after -d): the runner checks that. Below the root, the parent
   * is part of the tree. */
  if (!is_root && now.ppid != me.ppid) fail("ppid %d was %d", (int)now.ppid, (int)me.ppid);
  if (now.pgid != me.pgid) fail("pgid %d was %d", (int)now.pgid, (int)me.pgid);
  if (now.sid != me.sid) fail("sid %d was %d", (int)now.sid, (int)me.sid);

  long d;
  if ((d = ckpt_check_fill(buf, OWN_OFF, BASE_SEED, 0)) >= 0)
    fail("memory: shared part differs at offset %ld", d);
  if ((d = ckpt_check_fill(buf + OWN_OFF, OWN_LEN, own_seed(me.pid), 0)) >= 0)
    fail("memory: own part differs at offset %ld", (long)OWN_OFF + d);
  if ((d = ckpt_check_fill(buf + OWN_OFF + OWN_LEN, BUF_SIZE - OWN_OFF - OWN_LEN, BASE_SEED,
                           (OWN_OFF + OWN_LEN) / 8)) >= 0)
    fail("memory: shared part differs at offset %ld", (long)(OWN_OFF + OWN_LEN) + d);
  if ((d = ckpt_check_fill(late, CKPT_PAGE, LATE_SEED, 0)) >= 0) fail("memory: late page 0 differs at offset %ld", d);
  if (is_root) {
    if ((d = ckpt_check_fill(late + CKPT_PAGE, (LATE_PAGES - 1) * CKPT_PAGE, LATE_SEED, CKPT_PAGE / 8)) >= 0)
      fail("memory: the root's late pages differ at offset %ld", (long)CKPT_PAGE + d);
  } else {
    for (size_t i = CKPT_PAGE; i < LATE_PAGES * CKPT_PAGE; i++)
      if (late[i]) {
        fail("memory: late page %zu holds the parent's bytes, not zeros", i / CKPT_PAGE);
        break;
      }
  }

  check_children();
  if (zexit > 0) check_zombie(zexit, CLD_EXITED, 7, "exit 7");
  if (zsig > 0) check_zombie(zsig, CLD_KILLED, SIGUSR2, "SIGUSR2");

  for (int i = 0; i < nkids; i++) {
    int ws;
    pid_t r;
    do r = waitpid(kids[i], &ws, 0);
    while (r < 0 && errno == EINTR);
    if (r != kids[i]) fail("waitpid(child %d, %s): %s", (int)kids[i], kid_role[i], strerror(errno));
    else if (WIFSIGNALED(ws)) fail("child %d (%s) killed by signal %d", (int)kids[i], kid_role[i], WTERMSIG(ws));
    else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
      fail("child %d (%s) exited with status %d", (int)kids[i], kid_role[i], WEXITSTATUS(ws));
  }

  if (is_root) verdict();
  if (!failed()) _exit(0);
  static char b[sizeof ckpt_fail_buf + 128];
  int n = snprintf(b, sizeof b, "child %d (%s): %.*s\n", (int)me.pid, my_role, (int)ckpt_fail_len, ckpt_fail_buf);
  if (n > (int)sizeof b - 1) n = (int)sizeof b - 1;
  if (n > 0) ckpt_write_all(1, b, (size_t)n);
  _exit(1);
}

/* --churn: fork and reap short-lived children until SIGTERM is pending
 * (it stays blocked, so it is not lost; wait_for_term then takes it). */
static void churn(void) {
  long rounds = 0, bad = 0;
  for (;;) {
    sigset_t p;
    sigpending(&p);
    if (sigismember(&p, SIGTERM) || ckpt_term_flag) break;
    pid_t c = fork();
    if (c < 0) {
      fail("churn: fork: %s", strerror(errno));
      break;
    }
    if (c == 0) _exit(3);
    int st = 0;
    while (waitpid(c, &st, 0) < 0)
      if (errno != EINTR) {
        fail("churn: waitpid %d: %s", (int)c, strerror(errno));
        break;
      }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 3) bad++;
    rounds++;
  }
  if (bad) fail("churn: %ld of %ld children did not end with status 3", bad, rounds);
  if (rounds < 2) fail("churn: only %ld rounds", rounds);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  const char *fan_s = ckpt_arg(argc, argv, "--fan");
  int fan = fan_s ? atoi(fan_s) : 0;
  int zombies = ckpt_flag(argc, argv, "--zombie");
  if (fan < 0 || fan > 1000) die("--fan=%d: 0..1000", fan);

  buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) die("mmap");
  ckpt_fill(buf, BUF_SIZE, BASE_SEED, 0);
  late = mmap(NULL, LATE_PAGES * CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (late == MAP_FAILED) die("mmap");
  ckpt_fill(late, CKPT_PAGE, LATE_SEED, 0);
  snprintf(subtree, sizeof subtree, "%d", (int)getpid());

  spawn("pgroup", body_pgroup, 0);
  spawn("session", body_session, 0);
  size_t chain_at = strlen(subtree);
  spawn("chain", body_chain, 1);
  ckpt_copy(chain_list, sizeof chain_list, subtree + chain_at + 1);
  spawn("plain", body_leaf, 0);
  for (int i = 0; i < fan; i++) spawn("fan", body_leaf, 0);

  if (zombies) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    if (sigaction(SIGCHLD, &sa, NULL)) setup_fail("sigaction SIGCHLD");
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    zexit = fork();
    if (zexit < 0) setup_fail("fork");
    if (zexit == 0) _exit(7);
    zsig = fork();
    if (zsig < 0) setup_fail("fork");
    if (zsig == 0) {
      close(3);
      for (;;) pause();
    }
    if (kill(zsig, SIGUSR2)) setup_fail("kill SIGUSR2");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)zexit, &si, WEXITED | WNOWAIT) || si.si_code != CLD_EXITED || si.si_status != 7)
      setup_fail("the exit-7 child did not exit with 7");
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)zsig, &si, WEXITED | WNOWAIT) || si.si_code != CLD_KILLED || si.si_status != SIGUSR2)
      setup_fail("the SIGUSR2 child was not killed by SIGUSR2");
    ckpt_append(subtree, sizeof subtree, ",%d,%d", (int)zexit, (int)zsig);
    struct timespec zero = {0, 0};
    if (sigtimedwait(&chld, NULL, &zero) != SIGCHLD) setup_fail("no SIGCHLD pending from the zombies");
  }

  write_own_pattern();
  ckpt_fill(late + CKPT_PAGE, (LATE_PAGES - 1) * CKPT_PAGE, LATE_SEED, CKPT_PAGE / 8);
  take(&me);

  static char line[LIST + 512];
  int n = snprintf(line, sizeof line, "READY pids=%s chain=%s", subtree, chain_list);
  if (zombies) n += snprintf(line + n, sizeof line - (size_t)n, " zombies=%d,%d", (int)zexit, (int)zsig);
  line[n++] = '\n';
  if (write(3, line, (size_t)n) != (ssize_t)n) ckpt_write_all(1, line, (size_t)n);
  close(3);

  churning = ckpt_flag(argc, argv, "--churn");
  if (churning) churn();
  wait_for_term();
  verify_and_exit();
}
