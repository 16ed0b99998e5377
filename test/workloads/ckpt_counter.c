/* ckpt_counter: counts in a busy loop (a task caught in plain user code).
 *
 * State: a counter in .data and its copy on the stack, both advanced each
 * iteration and compared each iteration (any step back or divergence is
 * counted); a 4 KiB buffer in .bss and one on the heap with a pattern whose
 * checksum is taken before READY.
 * Verifies: no divergence or step back ever seen, the counter advanced past
 * its value at READY, both buffers still hash to their pre-READY checksum.
 *
 * --print: print "tick N counter C" about once per second (for the demo: it
 * goes on counting from where it stopped after a restore).
 */
#include <time.h>

#include "ckpt_common.h"

static volatile uint64_t counter = 1000;
static uint64_t bss_buf[512];

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  int print = ckpt_flag(argc, argv, "--print");
  /* The loop polls the flag itself. */
  sigset_t t;
  sigemptyset(&t);
  sigaddset(&t, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &t, NULL);

  uint64_t *heap_buf = malloc(4096);
  if (!heap_buf) die("malloc");
  ckpt_fill(bss_buf, sizeof bss_buf, 0xc0ffee, 0);
  ckpt_fill(heap_buf, 4096, 0xbeef, 0);
  const uint64_t bss_sum = ckpt_hash(bss_buf, sizeof bss_buf);
  const uint64_t heap_sum = ckpt_hash(heap_buf, 4096);

  volatile uint64_t stack_copy = counter;
  uint64_t diverged = 0, backwards = 0, first_bad = 0;
  const uint64_t at_ready = counter;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  next.tv_sec += 1;
  uint64_t tick = 0;

  ready("counter=%llu", (unsigned long long)at_ready);

  while (!ckpt_term_flag) {
    uint64_t c = counter;
    if (stack_copy != c && !diverged++) first_bad = c;
    counter = c + 1;
    stack_copy = c + 1;
    if (counter <= c) backwards++;
    if (ckpt_corrupt && c == at_ready + 1000) {
      bss_buf[100] ^= 1;
      stack_copy = stack_copy + 7;
    }
    if (print && (c & 0xfffff) == 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec)) {
        ckpt_say("tick %llu counter %llu\n", (unsigned long long)++tick, (unsigned long long)(c + 1));
        next.tv_sec += 1;
      }
    }
  }

  uint64_t end = counter;
  if (diverged)
    fail("stack copy diverged from the counter %llu times (first at %llu)", (unsigned long long)diverged,
         (unsigned long long)first_bad);
  if (backwards) fail("counter stepped back %llu times", (unsigned long long)backwards);
  if (end <= at_ready)
    fail("counter did not advance: %llu at READY, %llu at SIGTERM", (unsigned long long)at_ready,
         (unsigned long long)end);
  if (stack_copy != end)
    fail("stack copy %llu != counter %llu", (unsigned long long)stack_copy, (unsigned long long)end);
  if (ckpt_hash(bss_buf, sizeof bss_buf) != bss_sum)
    fail(".bss buffer checksum changed (first difference at byte %ld)",
         ckpt_check_fill(bss_buf, sizeof bss_buf, 0xc0ffee, 0));
  if (ckpt_hash(heap_buf, 4096) != heap_sum)
    fail("heap buffer checksum changed (first difference at byte %ld)", ckpt_check_fill(heap_buf, 4096, 0xbeef, 0));
  if (print) ckpt_say("counter %llu at SIGTERM\n", (unsigned long long)end);
  verdict();
}
