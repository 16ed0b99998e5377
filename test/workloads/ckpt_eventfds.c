/* ckpt_eventfds: event descriptors across a checkpoint.
 *
 * Before READY the process makes, and its child C (forked after) shares:
 *   fd 40  eventfd, EFD_SEMAPHORE | EFD_NONBLOCK, counter 5
 *   fd 41  eventfd, counter 5000000000 (more than eventfd() takes)
 *   fd 42  signalfd for SIGUSR1 and SIGRTMIN+3, both blocked; a SIGUSR1
 *          with value 77 is queued (process-wide)
 *   fd 43  timerfd CLOCK_MONOTONIC, 3600 s left, interval 7 s
 *   fd 44  timerfd CLOCK_MONOTONIC, fired once (1 ms, no interval), unread
 *   fd 45  timerfd CLOCK_REALTIME, TFD_TIMER_ABSTIME at now + 7200 s
 *   fd 46  epoll: fd 40 (EPOLLIN, data 0x1234), fd 44 (EPOLLIN, data 42),
 *          fd 43 (EPOLLIN, data 43), and the read end of a pipe
 *          (fd 47, EPOLLIN, data 47) with nothing in it
 * READY "pids=P,C".
 * Verifies after SIGTERM (the parent first, then it tells C to check the
 * descriptors it shares and waits for it):
 *   epoll_wait reports exactly fd 40 (0x1234) and fd 44 (42); the
 *   semaphore eventfd reads 1 five times, then EAGAIN; fd 41 reads
 *   5000000000; the signalfd mask and the queued SIGUSR1 (value 77); fd 43
 *   has 3500-3600 s left and a 7 s interval; fd 44 reads 1; fd 45 has
 *   7000-7200 s left; flags (O_NONBLOCK) as set. C checks that it shares
 *   fd 40 (a write of 2 by C is read by the parent) and the epoll.
 *
 * --selftest-corrupt: after READY one unit is taken from the semaphore
 * eventfd (so only four reads succeed).
 */
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include "ckpt_common.h"

static void place(int fd, int at) {
  if (fd < 0) die("making fd %d: %s", at, strerror(errno));
  if (fd != at) {
    if (dup2(fd, at) < 0) die("dup2 %d", at);
    close(fd);
  }
}

static int flags_of(int fd) { return fcntl(fd, F_GETFL); }

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGUSR1);
  sigaddset(&sigs, SIGRTMIN + 3);
  if (sigprocmask(SIG_BLOCK, &sigs, NULL)) die("sigprocmask");
  place(eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK), 40);
  place(eventfd(0, 0), 41);
  uint64_t big = 5000000000ull;
  if (write(41, &big, 8) != 8) die("eventfd write");
  place(signalfd(-1, &sigs, SFD_NONBLOCK), 42);
  union sigval sv = {.sival_int = 77};
  if (sigqueue(getpid(), SIGUSR1, sv)) die("sigqueue");
  place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 43);
  struct itimerspec a = {{7, 0}, {3600, 0}};
  if (timerfd_settime(43, 0, &a, NULL)) die("timerfd_settime 43");
  place(timerfd_create(CLOCK_MONOTONIC, 0), 44);
  struct itimerspec once = {{0, 0}, {0, 1000000}};
  if (timerfd_settime(44, 0, &once, NULL)) die("timerfd_settime 44");
  place(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK), 45);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct itimerspec abs = {{0, 0}, {now.tv_sec + 7200, 0}};
  if (timerfd_settime(45, TFD_TIMER_ABSTIME, &abs, NULL)) die("timerfd_settime 45");
  int pp[2];
  if (pipe(pp)) die("pipe");
  place(pp[0], 47);
  place(pp[1], 48);
  place(epoll_create1(0), 46);
  struct {
    int fd;
    uint32_t ev;
    uint64_t data;
  } targets[] = {{40, EPOLLIN, 0x1234}, {44, EPOLLIN, 42}, {43, EPOLLIN, 43}, {47, EPOLLIN, 47}};
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    struct epoll_event ev = {.events = targets[i].ev, .data.u64 = targets[i].data};
    if (epoll_ctl(46, EPOLL_CTL_ADD, targets[i].fd, &ev)) die("epoll_ctl %d", targets[i].fd);
  }
  /* fd 44 fires within 1 ms; wait for it so that its tick is there. */
  struct pollfd pf = {.fd = 44, .events = POLLIN};
  while (poll(&pf, 1, 1000) != 1) {
  }
  int go;
  pid_t c = ckpt_fork_waiting(&go); /* C goes on at the parent's word, after its checks */
  if (c == 0) {
    /* Shared with the parent: the epoll and the eventfd at fd 40. */
    uint64_t two = 2;
    if (write(40, &two, 8) != 8) fail("C: write to fd 40: %s", strerror(errno));
    struct epoll_event ev;
    if (epoll_wait(46, &ev, 1, 0) != 1 || ev.data.u64 != 0x1234) fail("C: the shared epoll does not see fd 40");
    if (failed()) ckpt_say("%s\n", ckpt_fail_buf);
    _exit(failed() ? 1 : 0);
  }
  ready("pids=%d,%d", (int)getpid(), (int)c);
  if (ckpt_corrupt) {
    uint64_t v;
    if (read(40, &v, 8) != 8) die("corrupt read");
  }
  wait_for_term();

  struct epoll_event evs[8];
  int n = epoll_wait(46, evs, 8, 0);
  uint64_t got = 0;
  for (int i = 0; i < n; i++) got |= evs[i].data.u64 == 0x1234 ? 1 : evs[i].data.u64 == 42 ? 2 : 4;
  if (n != 2 || got != 3) fail("epoll_wait reported %d events (mask %llu), expected fd 40 and fd 44", n, (unsigned long long)got);
  if (!(flags_of(40) & O_NONBLOCK) || (flags_of(41) & O_NONBLOCK) || !(flags_of(42) & O_NONBLOCK) ||
      (flags_of(44) & O_NONBLOCK))
    fail("O_NONBLOCK flags changed: %o %o %o %o", flags_of(40), flags_of(41), flags_of(42), flags_of(44));
  int reads = 0;
  uint64_t v;
  while (read(40, &v, 8) == 8) {
    if (v != 1) fail("semaphore eventfd read %llu", (unsigned long long)v);
    reads++;
    if (reads > 10) break;
  }
  if (reads != 5) fail("semaphore eventfd gave %d units, expected 5", reads);
  if (read(41, &v, 8) != 8 || v != 5000000000ull) fail("eventfd 41 read %llu", (unsigned long long)v);
  struct signalfd_siginfo si;
  if (read(42, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR1 || si.ssi_int != 77)
    fail("signalfd did not read SIGUSR1 with value 77 (signo %u, int %d)", si.ssi_signo, si.ssi_int);
  struct itimerspec cur;
  if (timerfd_gettime(43, &cur) || cur.it_value.tv_sec < 3500 || cur.it_value.tv_sec >= 3600 ||
      cur.it_interval.tv_sec != 7 || cur.it_interval.tv_nsec != 0)
    fail("timerfd 43: %lld s left, interval %lld s", (long long)cur.it_value.tv_sec, (long long)cur.it_interval.tv_sec);
  if (read(44, &v, 8) != 8 || v != 1) fail("timerfd 44 read %llu expirations, expected 1", (unsigned long long)v);
  if (timerfd_gettime(45, &cur) || cur.it_value.tv_sec < 7000 || cur.it_value.tv_sec >= 7200)
    fail("timerfd 45: %lld s left, expected about 7200", (long long)cur.it_value.tv_sec);
  /* Now C: it writes 2 to the shared eventfd and sees it in the shared epoll. */
  if (write(go, "g", 1) != 1) fail("cannot tell C to check");
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child C ended with %#x", st);
  reads = 0;
  while (read(40, &v, 8) == 8) reads++;
  if (reads != 2) fail("C's write of 2 to the shared eventfd gave %d units here", reads);
  verdict();
}
