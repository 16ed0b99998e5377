/* ckpt_seccomp: seccomp filters across a checkpoint, per thread.
 *
 * Before READY: no_new_privs; the process installs filter 1 (getppid fails
 * with EPERM) and filter 2 (uname fails with ENOSYS, installed with
 * SECCOMP_FILTER_FLAG_LOG); then a second thread is made and installs
 * filter 3 for itself only (getpgid fails with EACCES).
 * Verifies after restore: in the main thread getppid gives EPERM, uname
 * ENOSYS and getpgid works; in the second thread getpgid gives EACCES too;
 * /proc/self/task/TID/status says Seccomp 2 with 2 and 3 filters, as before.
 *
 * --selftest-corrupt: after READY the main thread installs one more filter.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "ckpt_common.h"

static int deny(int nr, int err, unsigned flags) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog p = {4, f};
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
}

static pthread_barrier_t ready_bar, go_bar;
static pid_t thread_tid;
static char thread_msg[512];

static void *thread_main(void *arg) {
  (void)arg;
  thread_tid = (pid_t)syscall(SYS_gettid);
  if (deny(SYS_getpgid, EACCES, 0)) snprintf(thread_msg, sizeof thread_msg, "SETUP thread filter failed");
  pthread_barrier_wait(&ready_bar);
  pthread_barrier_wait(&go_bar);
  errno = 0;
  if (syscall(SYS_getpgid, 0) != -1 || errno != EACCES)
    snprintf(thread_msg, sizeof thread_msg, "thread: getpgid was not denied with EACCES (errno %d)", errno);
  return NULL;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("PR_SET_NO_NEW_PRIVS");
  if (deny(SYS_getppid, EPERM, 0)) die("filter 1");
  if (deny(SYS_uname, ENOSYS, SECCOMP_FILTER_FLAG_LOG)) die("filter 2");
  pthread_barrier_init(&ready_bar, NULL, 2);
  pthread_barrier_init(&go_bar, NULL, 2);
  pthread_t th;
  if (pthread_create(&th, NULL, thread_main, NULL)) die("pthread_create");
  pthread_barrier_wait(&ready_bar);
  if (thread_msg[0]) die("%s", thread_msg);
  char main_before[64], thread_before[64];
  ckpt_status_line(getpid(), "Seccomp_filters:", main_before, sizeof main_before);
  ckpt_status_line(thread_tid, "Seccomp_filters:", thread_before, sizeof thread_before);
  ready("tids=%d,%d", getpid(), (int)thread_tid);
  if (ckpt_corrupt) deny(SYS_getsid, EPERM, 0);
  wait_for_term();

  char now[64];
  ckpt_status_line(getpid(), "Seccomp_filters:", now, sizeof now);
  if (strcmp(now, main_before)) fail("main: '%s', was '%s'", now, main_before);
  ckpt_status_line(thread_tid, "Seccomp_filters:", now, sizeof now);
  if (strcmp(now, thread_before)) fail("thread: '%s', was '%s'", now, thread_before);
  ckpt_status_line(getpid(), "Seccomp:", now, sizeof now);
  if (strcmp(now, "Seccomp:\t2")) fail("main: '%s'", now);
  errno = 0;
  if (syscall(SYS_getppid) != -1 || errno != EPERM) fail("getppid was not denied with EPERM (errno %d)", errno);
  errno = 0;
  if (syscall(SYS_uname, NULL) != -1 || errno != ENOSYS) fail("uname was not denied with ENOSYS (errno %d)", errno);
  if (syscall(SYS_getpgid, 0) < 0) fail("getpgid failed in the main thread (errno %d)", errno);
  pthread_barrier_wait(&go_bar);
  pthread_join(th, NULL);
  if (thread_msg[0]) fail("%s", thread_msg);
  verdict();
}
