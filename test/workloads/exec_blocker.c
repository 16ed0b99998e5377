/* exec_blocker MODE [ARG]: blocks in one system call and reports how that
 * call ended, so a test can show that cr-exec left it running as if nothing
 * had happened. Prints "READY <pid> ..." just before blocking, one result
 * line after, then answers "ping" with "pong" until stdin closes.
 *
 *   nanosleep MS   raw nanosleep (restarted through restart_syscall);
 *                  READY <pid> <start_ns> <deadline_ns> (CLOCK_MONOTONIC),
 *                  then "WOKE ret=<r> errno=<e> late_ms=<ms after deadline>"
 *   clock_abs MS   clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME): same output
 *   epoll          epoll_wait(stdin, -1): "EPOLL ret=<r> errno=<e>"
 *   epoll_pwait    epoll_pwait with an empty temporary mask while SIGUSR1 is
 *                  blocked: "EPOLL_PWAIT ret=<r> errno=<e> mask=ok|bad"
 *   ppoll          ppoll(stdin) likewise: "PPOLL ret=<r> errno=<e> mask=ok|bad"
 *   sigsuspend     SIGUSR1 blocked, sigsuspend(empty) until SIGUSR1:
 *                  "SIGSUSPEND ret=<r> errno=<e> handled=<n> mask=ok|bad"
 *   wait4          wait4 for a child that exits 7 after reading one line:
 *                  "WAIT4 ret=ok|bad status=<code> errno=<e>"
 *   pause          pause() until a signal: "PAUSE ret=<r> errno=<e>"
 *
 * For the calls on stdin, the test sends one line to wake it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_usr(int sig) {
  (void)sig;
  handled++;
}

static int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

static const char* ename(int e) { return e ? strerrorname_np(e) : "0"; }

static void consume_line(void) {
  char c;
  while (read(0, &c, 1) == 1 && c != '\n') {
  }
}

static void serve(void) {
  char line[128];
  while (fgets(line, sizeof line, stdin)) say(strcmp(line, "ping\n") ? "unknown command\n" : "pong\n");
}

/* Block SIGUSR1 (with a handler) and return that mask. */
static sigset_t block_usr1(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigprocmask(SIG_BLOCK, &m, NULL);
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  return now;
}

static const char* mask_is(const sigset_t* want) {
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  return memcmp(&now, want, sizeof now) ? "bad" : "ok";
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  long ms = argc > 2 ? atol(argv[2]) : 2000;
  pid_t me = getpid();

  if (!strcmp(mode, "nanosleep") || !strcmp(mode, "clock_abs")) {
    int64_t start = mono_ns(), deadline = start + ms * 1000000;
    say("READY %d %lld %lld\n", me, (long long)start, (long long)deadline);
    long r;
    if (!strcmp(mode, "nanosleep")) {
      struct timespec req = {ms / 1000, (ms % 1000) * 1000000}, rem;
      r = syscall(SYS_nanosleep, &req, &rem);
    } else {
      struct timespec abs = {deadline / 1000000000, deadline % 1000000000};
      r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
      if (r) {
        errno = (int)r;
        r = -1;
      }
    }
    int e = r < 0 ? errno : 0;
    double late = (double)(mono_ns() - deadline) / 1e6;
    say("WOKE ret=%ld errno=%s late_ms=%.3f\n", r, ename(e), late);
  } else if (!strcmp(mode, "epoll") || !strcmp(mode, "epoll_pwait")) {
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    struct epoll_event out;
    if (!strcmp(mode, "epoll")) {
      say("READY %d\n", me);
      int r = epoll_wait(ep, &out, 1, -1);
      int e = r < 0 ? errno : 0;
      say("EPOLL ret=%d errno=%s\n", r, ename(e));
    } else {
      sigset_t want = block_usr1(), empty;
      sigemptyset(&empty);
      say("READY %d\n", me);
      int r = epoll_pwait(ep, &out, 1, -1, &empty);
      int e = r < 0 ? errno : 0;
      say("EPOLL_PWAIT ret=%d errno=%s mask=%s\n", r, ename(e), mask_is(&want));
    }
    consume_line();
  } else if (!strcmp(mode, "ppoll")) {
    sigset_t want = block_usr1(), empty;
    sigemptyset(&empty);
    struct pollfd p = {0, POLLIN, 0};
    say("READY %d\n", me);
    int r = ppoll(&p, 1, NULL, &empty);
    int e = r < 0 ? errno : 0;
    say("PPOLL ret=%d errno=%s mask=%s\n", r, ename(e), mask_is(&want));
    consume_line();
  } else if (!strcmp(mode, "sigsuspend")) {
    sigset_t want = block_usr1(), empty;
    sigemptyset(&empty);
    say("READY %d\n", me);
    int r = sigsuspend(&empty);
    int e = r < 0 ? errno : 0;
    say("SIGSUSPEND ret=%d errno=%s handled=%d mask=%s\n", r, ename(e), (int)handled, mask_is(&want));
  } else if (!strcmp(mode, "wait4")) {
    pid_t c = fork();
    if (c == 0) {
      consume_line();
      _exit(7);
    }
    say("READY %d %d\n", me, c);
    int st = 0;
    pid_t r = wait4(c, &st, 0, NULL);
    int e = r < 0 ? errno : 0;
    say("WAIT4 ret=%s status=%d errno=%s\n", r == c ? "ok" : "bad", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
        ename(e));
  } else if (!strcmp(mode, "pause")) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr;
    sigaction(SIGUSR2, &sa, NULL);
    say("READY %d\n", me);
    int r = pause();
    int e = r < 0 ? errno : 0;
    say("PAUSE ret=%d errno=%s\n", r, ename(e));
  } else {
    say("unknown mode '%s'\n", mode);
    return 2;
  }
  serve();
  return 0;
}
