/* exec_threads: a process with a worker thread, for cr-exec -t TID.
 *
 * The worker blocks in read() on an internal pipe. Output: "READY <pid>
 * <worker tid>"; then commands on stdin (the main thread blocks in read):
 *   poke  -> main writes to the pipe; the worker answers "worker poked <n>"
 *   ping  -> pong
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int pipefd[2];
static volatile pid_t worker_tid;

static void* worker(void* arg) {
  (void)arg;
  worker_tid = (pid_t)syscall(SYS_gettid);
  char c;
  int n = 0;
  while (1) {
    ssize_t r = read(pipefd[0], &c, 1);
    if (r < 0 && errno == EINTR) {
      printf("worker read interrupted: EINTR\n");
      fflush(stdout);
      continue;
    }
    if (r <= 0) break;
    printf("worker poked %d\n", ++n);
    fflush(stdout);
  }
  return NULL;
}

int main(void) {
  if (pipe(pipefd)) return 1;
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  while (!worker_tid) sched_yield();
  printf("READY %d %d\n", getpid(), worker_tid);
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    if (!strcmp(line, "poke\n")) {
      if (write(pipefd[1], "x", 1) != 1) return 1;
    } else if (!strcmp(line, "ping\n")) {
      printf("pong\n");
      fflush(stdout);
    }
  }
  return 0;
}
