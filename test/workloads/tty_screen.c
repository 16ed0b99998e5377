/* tty_screen: a small full-screen program on its terminal (stdin/stdout),
 * for the --shell-job test in programs_test.cc (run inside tmux).
 *
 * It switches the terminal to raw mode (no ICANON, no ECHO, no ISIG),
 * clears the screen and draws:
 *   row 1  "TTY_SCREEN"
 *   row 2  "COUNTER n"   n goes up every 100 ms (its line redrawn in place)
 *   row 3  "MODE raw"    or "MODE cooked": the terminal's ICANON, read at
 *                        every draw
 *   row 4  "PID p"
 *   row 5  "KEY c"       the last key read (one byte at a time: raw)
 *   row 6  "DRAWS d"     how many full redraws so far
 * On SIGWINCH or SIGCONT it clears the screen and draws it all again (as
 * full-screen programs do when their terminal may show something else).
 * 'q' puts back the settings it found, clears the screen and exits 0.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t redraw_wanted;

static void on_redraw(int sig) {
  (void)sig;
  redraw_wanted = 1;
}

static void put(const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t w = write(1, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static const char *mode(void) {
  struct termios t;
  if (tcgetattr(0, &t) < 0) return "unknown";
  return (t.c_lflag & ICANON) ? "cooked" : "raw";
}

int main(void) {
  struct termios orig, raw;
  if (tcgetattr(0, &orig) < 0) {
    perror("tty_screen: tcgetattr");
    return 2;
  }
  raw = orig;
  raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
  raw.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (tcsetattr(0, TCSANOW, &raw) < 0) {
    perror("tty_screen: tcsetattr");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_redraw;
  sigaction(SIGWINCH, &sa, NULL);
  sigaction(SIGCONT, &sa, NULL);
  long counter = 0, draws = 0;
  char key = '-';
  char b[256];
  redraw_wanted = 1;
  for (;;) {
    if (redraw_wanted) {
      redraw_wanted = 0;
      draws++;
      snprintf(b, sizeof b,
               "\033[H\033[2JTTY_SCREEN\r\nCOUNTER %ld\r\nMODE %s\r\nPID %d\r\nKEY %c\r\nDRAWS %ld\r\n", counter,
               mode(), (int)getpid(), key, draws);
      put(b);
    }
    struct pollfd p = {0, POLLIN, 0};
    int n = poll(&p, 1, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      char c;
      if (read(0, &c, 1) != 1) break;
      if (c == 'q') break;
      key = c >= 32 && c < 127 ? c : '?';
      snprintf(b, sizeof b, "\033[5;1HKEY %c\033[K\033[7;1H", key);
      put(b);
      continue;
    }
    counter++;
    snprintf(b, sizeof b, "\033[2;1HCOUNTER %ld\033[K\033[3;1HMODE %s\033[K\033[7;1H", counter, mode());
    put(b);
  }
  tcsetattr(0, TCSANOW, &orig);
  put("\033[H\033[2J");
  return 0;
}
