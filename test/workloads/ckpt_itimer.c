/* ckpt_itimer: interval timers across a checkpoint.
 *
 * Before READY:
 *   ITIMER_REAL     value 10 ms, interval 10 ms; SIGALRM handler counts
 *   ITIMER_VIRTUAL  value 100 s, interval 1.5 s (never expires here)
 *   ITIMER_PROF     value 200 s, interval 2.5 s (never expires here)
 * Verifies: getitimer shows each timer armed with exactly its interval and
 * a value in (0, initial value + 50 ms] (the kernel adds a tick to a CPU
 * timer's value whenever it is armed); ITIMER_REAL keeps firing: 5 more SIGALRMs
 * reach the handler (counted, not timed: each is waited for with ppoll,
 * whose 2 s timeout only turns a dead timer into a FAIL instead of a hang);
 * SIGVTALRM/SIGPROF never fired.
 *
 * --selftest-corrupt: after READY disarm ITIMER_REAL and change the
 * ITIMER_VIRTUAL interval.
 */
#include <poll.h>
#include <sys/time.h>

#include "ckpt_common.h"

static volatile int alrm, vtalrm, prof;
static void on_alrm(int s) {
  (void)s;
  alrm++;
}
static void on_other(int s) {
  if (s == SIGVTALRM) vtalrm++;
  else prof++;
}

static long us(const struct timeval *t) { return t->tv_sec * 1000000L + t->tv_usec; }

static void check(int which, const char *name, long interval_us, long value_us) {
  struct itimerval v;
  if (getitimer(which, &v)) {
    fail("getitimer(%s): %s", name, strerror(errno));
    return;
  }
  if (us(&v.it_interval) != interval_us) fail("%s interval %ld us, expected %ld", name, us(&v.it_interval), interval_us);
  /* The kernel adds a tick to a CPU timer's value each time it is armed
   * (set_cpu_itimer), so a restored value may exceed the original by a
   * couple of ticks; allow 50 ms. */
  if (us(&v.it_value) <= 0 || us(&v.it_value) > value_us + 50000)
    fail("%s value %ld us, expected in (0, %ld]", name, us(&v.it_value), value_us + 50000);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alrm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  sa.sa_handler = on_other;
  sigaction(SIGVTALRM, &sa, NULL);
  sigaction(SIGPROF, &sa, NULL);

  struct itimerval real = {{0, 10000}, {0, 10000}}, virt = {{1, 500000}, {100, 0}}, prf = {{2, 500000}, {200, 0}};
  if (setitimer(ITIMER_VIRTUAL, &virt, NULL) || setitimer(ITIMER_PROF, &prf, NULL) ||
      setitimer(ITIMER_REAL, &real, NULL))
    die("setitimer");

  ready("real=10ms virtual=1.5s/100s prof=2.5s/200s");
  if (ckpt_corrupt) {
    struct itimerval off = {{0, 0}, {0, 0}}, v2 = {{1, 0}, {100, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    setitimer(ITIMER_VIRTUAL, &v2, NULL);
  }
  wait_for_term();

  check(ITIMER_REAL, "ITIMER_REAL", 10000, 10000);
  check(ITIMER_VIRTUAL, "ITIMER_VIRTUAL", 1500000, 100000000);
  check(ITIMER_PROF, "ITIMER_PROF", 2500000, 200000000);

  /* Five more SIGALRMs through the handler. */
  sigset_t m;
  sigprocmask(SIG_BLOCK, NULL, &m);
  sigdelset(&m, SIGALRM);
  sigset_t a;
  sigemptyset(&a);
  sigaddset(&a, SIGALRM);
  sigprocmask(SIG_BLOCK, &a, NULL);
  int got = 0;
  for (int i = 0; i < 5; i++) {
    int c = alrm;
    struct timespec to = {2, 0};
    while (alrm == c) {
      int r = ppoll(NULL, 0, &to, &m);
      if (r == 0) break; /* 2 s and no SIGALRM */
    }
    if (alrm == c) break;
    got++;
  }
  if (got < 5) fail("ITIMER_REAL stopped firing: %d of 5 SIGALRMs arrived (2 s allowed for each)", got);
  if (vtalrm || prof) fail("SIGVTALRM fired %d times, SIGPROF %d times (expected none)", vtalrm, prof);
  verdict();
}
