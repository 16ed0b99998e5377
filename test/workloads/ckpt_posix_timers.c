/* ckpt_posix_timers: POSIX timers (timer_create) across a checkpoint.
 *
 * Before READY: four timers are created and the second deleted, so the ids
 * have a gap:
 *   A  CLOCK_MONOTONIC, SIGRTMIN+1 (blocked), value 0x1234, every 20 ms
 *   B  (deleted)
 *   C  CLOCK_REALTIME, SIGUSR1 (blocked), value 0xabc, once in 300 s
 *   D  CLOCK_MONOTONIC, SIGEV_NONE, first in 100 s then every 7 s
 * and A has fired at least once (its signal is pending).
 * Verifies after restore: /proc/self/timers lists exactly the same ids with
 * the same signal, value, notify and clock lines; B's id is still free
 * (timer_gettime fails with EINVAL); each interval is identical; C and D
 * have not run ahead (remaining time no more than at dump, and not more than
 * 60 s less); A's signal arrives with si_value 0x1234 and si_code SI_TIMER
 * once SIGRTMIN+1 is unblocked, and again after that (still periodic).
 *
 * --selftest-corrupt: after READY re-arm D with another interval.
 */
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>

#include "ckpt_common.h"

static timer_t ta, tb, tc, td;
static char timers_before[4096];
static struct itimerspec sc, sd;

static void read_timers(char *buf, size_t size) {
  int fd = open("/proc/self/timers", O_RDONLY);
  buf[0] = 0;
  if (fd < 0) return;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
}

static timer_t make(clockid_t clk, int notify, int sig, int value) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = notify;
  sev.sigev_signo = sig;
  sev.sigev_value.sival_int = value;
  timer_t t;
  if (timer_create(clk, &sev, &t)) die("timer_create");
  return t;
}

static int64_t ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec; }

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMIN + 1);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, NULL);
  ta = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 0x1234);
  tb = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
  tc = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIGUSR1, 0xabc);
  td = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
  if (timer_delete(tb)) die("timer_delete");
  struct itimerspec sa = {{0, 20 * 1000 * 1000}, {0, 20 * 1000 * 1000}};
  struct itimerspec c0 = {{0, 0}, {300, 0}}, d0 = {{7, 0}, {100, 0}};
  if (timer_settime(ta, 0, &sa, NULL) || timer_settime(tc, 0, &c0, NULL) || timer_settime(td, 0, &d0, NULL))
    die("timer_settime");
  /* Wait until A's signal is pending: a signalfd polls readable then,
   * without taking the signal; it is closed before READY. */
  sigset_t only_a;
  sigemptyset(&only_a);
  sigaddset(&only_a, SIGRTMIN + 1);
  int sfd = signalfd(-1, &only_a, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");
  struct pollfd pfd = {sfd, POLLIN, 0};
  if (poll(&pfd, 1, 30000) != 1) die("timer A did not fire");
  close(sfd);
  read_timers(timers_before, sizeof timers_before);
  timer_gettime(tc, &sc);
  timer_gettime(td, &sd);
  ready("ids=%ld,%ld,%ld", (long)(intptr_t)ta, (long)(intptr_t)tc, (long)(intptr_t)td);
  if (ckpt_corrupt) {
    struct itimerspec d1 = {{9, 0}, {100, 0}};
    timer_settime(td, 0, &d1, NULL);
  }
  wait_for_term();

  char now[4096];
  read_timers(now, sizeof now);
  if (strcmp(now, timers_before)) fail("/proc/self/timers differs: was [%s], now [%s]", timers_before, now);
  struct itimerspec x;
  if (timer_gettime(tb, &x) == 0 || errno != EINVAL) fail("the deleted timer's id is in use after restore");
  struct itimerspec c1, d1;
  if (timer_gettime(tc, &c1) || timer_gettime(td, &d1)) fail("timer_gettime: %s", strerror(errno));
  if (ns(&c1.it_interval) != ns(&sc.it_interval) || ns(&d1.it_interval) != ns(&sd.it_interval))
    fail("intervals changed: C %lld (was %lld), D %lld (was %lld)", (long long)ns(&c1.it_interval),
         (long long)ns(&sc.it_interval), (long long)ns(&d1.it_interval), (long long)ns(&sd.it_interval));
  if (ns(&c1.it_value) > ns(&sc.it_value) || ns(&c1.it_value) < ns(&sc.it_value) - 60000000000LL)
    fail("C has %lld ns left, had %lld at dump", (long long)ns(&c1.it_value), (long long)ns(&sc.it_value));
  if (ns(&d1.it_value) > ns(&sd.it_value) || ns(&d1.it_value) < ns(&sd.it_value) - 60000000000LL)
    fail("D has %lld ns left, had %lld at dump", (long long)ns(&d1.it_value), (long long)ns(&sd.it_value));
  sigset_t a;
  sigemptyset(&a);
  sigaddset(&a, SIGRTMIN + 1);
  for (int round = 0; round < 2; round++) {
    siginfo_t si;
    struct timespec limit = {30, 0};
    int s = sigtimedwait(&a, &si, &limit);
    if (s != SIGRTMIN + 1) {
      fail("round %d: timer A's signal did not arrive (%s)", round, strerror(errno));
      break;
    }
    if (si.si_code != SI_TIMER || si.si_value.sival_int != 0x1234)
      fail("round %d: timer A's signal has code %d value %#x", round, si.si_code, si.si_value.sival_int);
  }
  verdict();
}
