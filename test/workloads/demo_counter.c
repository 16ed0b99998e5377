/* demo_counter: the program `make demo` checkpoints and restores.
 *
 * Prints "counter N  (pid P)" to stdout every 0.5 s, N going up by one each
 * time, from a counter kept in its memory. After a dump and a restore it
 * goes on from the value it had, with the same pid. SIGTERM makes it print
 * its last value and exit 0.
 *
 * Every line is one write(2) (no stdio buffer to lose or duplicate).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static void say(const char *s, int n) {
  while (n > 0) {
    ssize_t r = write(1, s, (size_t)n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    s += r;
    n -= (int)r;
  }
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);

  unsigned long counter = 0;
  char line[128];
  while (!stop) {
    counter++;
    int n = snprintf(line, sizeof line, "counter %lu  (pid %d)\n", counter, (int)getpid());
    say(line, n);
    struct timespec half = {0, 500 * 1000 * 1000};
    while (!stop && nanosleep(&half, &half) < 0 && errno == EINTR) {
    }
  }
  int n = snprintf(line, sizeof line, "stopped by SIGTERM at counter %lu\n", counter);
  say(line, n);
  return 0;
}
