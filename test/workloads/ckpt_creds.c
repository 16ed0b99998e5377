/* ckpt_creds: the capability sets, securebits and no_new_privs across a
 * checkpoint, in a process with two threads.
 *
 * Before READY (as root):
 *   bounding set   CAP_NET_RAW, CAP_SYS_BOOT and CAP_MKNOD dropped
 *   inheritable    + CAP_NET_BIND_SERVICE and CAP_CHOWN
 *   ambient        CAP_NET_BIND_SERVICE and CAP_CHOWN raised
 *   effective      CAP_SYS_PTRACE dropped (still permitted)
 *   securebits     SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS
 *   no_new_privs   set
 *   two more threads, made after all of this (they inherit the same); the
 *   second of them then sets its own effective uid to 4242 with a raw
 *   setresuid (glibc's would change every thread): credentials are per
 *   thread, and this one's differ from its process's
 * Verifies, in all three threads after restore: /proc/self/task/TID/status
 * Uid, Gid, CapInh, CapPrm, CapEff, CapBnd, CapAmb and NoNewPrivs lines
 * identical to before (the main thread's uid is still 0, the second
 * thread's euid 4242); PR_GET_SECUREBITS identical; PR_CAPBSET_READ of CAP_NET_RAW is 0;
 * PR_CAP_AMBIENT_IS_SET of CAP_CHOWN is 1.
 *
 * --selftest-corrupt: after READY drop CAP_KILL from the bounding set.
 */
#include <linux/capability.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "ckpt_common.h"

#define NKEYS 8
static const char *keys[NKEYS] = {"Uid:",    "Gid:",    "CapInh:",    "CapPrm:",
                                  "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:"};

struct creds {
  char lines[NKEYS][64];
  int securebits;
};

static void read_creds(pid_t tid, struct creds *c) {
  memset(c, 0, sizeof *c);
  for (int k = 0; k < NKEYS; k++) ckpt_status_line(tid, keys[k], c->lines[k], sizeof c->lines[k]);
  c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
}

static void compare(const char *who, const struct creds *a, const struct creds *b) {
  for (int k = 0; k < NKEYS; k++)
    if (strcmp(a->lines[k], b->lines[k]))
      fail("%s: '%s' is now '%s'", who, a->lines[k], b->lines[k]);
  if (a->securebits != b->securebits) fail("%s: securebits %#x, was %#x", who, b->securebits, a->securebits);
}

static int capset_sets(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
                                        {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  return (int)syscall(SYS_capset, &h, d);
}

static void capget_sets(uint64_t *eff, uint64_t *prm, uint64_t *inh) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  syscall(SYS_capget, &h, d);
  *eff = d[0].effective | (uint64_t)d[1].effective << 32;
  *prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
  *inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
}

static struct creds main_before, thread_before[2];
static volatile pid_t thread_tid[2];
static pthread_barrier_t ready_bar, go_bar;
static char thread_fail[2][512];

static void *thread_main(void *arg) {
  int i = (int)(intptr_t)arg;
  thread_tid[i] = (pid_t)syscall(SYS_gettid);
  if (i == 1 && syscall(SYS_setresuid, -1, 4242, -1))
    snprintf(thread_fail[i], sizeof thread_fail[i], "SETUP: setresuid: %s", strerror(errno));
  read_creds(thread_tid[i], &thread_before[i]);
  pthread_barrier_wait(&ready_bar);
  pthread_barrier_wait(&go_bar);
  struct creds now;
  read_creds(thread_tid[i], &now);
  for (int k = 0; k < NKEYS; k++)
    if (strcmp(thread_before[i].lines[k], now.lines[k]))
      snprintf(thread_fail[i], sizeof thread_fail[i], "thread %d: '%s' is now '%s'", i, thread_before[i].lines[k],
               now.lines[k]);
  return NULL;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if (geteuid() != 0) die("must run as root");
  static const int drop[] = {CAP_NET_RAW, CAP_SYS_BOOT, CAP_MKNOD}, amb[] = {CAP_NET_BIND_SERVICE, CAP_CHOWN};
  for (int i = 0; i < 3; i++)
    if (prctl(PR_CAPBSET_DROP, drop[i], 0, 0, 0) < 0) die("PR_CAPBSET_DROP %d", drop[i]);
  uint64_t eff, prm, inh;
  capget_sets(&eff, &prm, &inh);
  inh |= 1ull << CAP_NET_BIND_SERVICE | 1ull << CAP_CHOWN;
  eff &= ~(1ull << CAP_SYS_PTRACE);
  if (capset_sets(eff, prm, inh) < 0) die("capset");
  for (int i = 0; i < 2; i++)
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, amb[i], 0, 0) < 0) die("PR_CAP_AMBIENT_RAISE %d", amb[i]);
  if (prctl(PR_SET_SECUREBITS, (1 << 2) /* SECBIT_NO_SETUID_FIXUP */ | (1 << 4) /* SECBIT_KEEP_CAPS */, 0, 0, 0) < 0)
    die("PR_SET_SECUREBITS");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("PR_SET_NO_NEW_PRIVS");
  pthread_barrier_init(&ready_bar, NULL, 3);
  pthread_barrier_init(&go_bar, NULL, 3);
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)i)) die("pthread_create");
  pthread_barrier_wait(&ready_bar);
  if (thread_fail[1][0]) die("%s", thread_fail[1]);
  read_creds(getpid(), &main_before);
  if (!strstr(thread_before[1].lines[0], "4242") || strstr(main_before.lines[0], "4242"))
    die("the second thread's uid line '%s' / main '%s'", thread_before[1].lines[0], main_before.lines[0]);
  ready("tids=%d,%d,%d", getpid(), (int)thread_tid[0], (int)thread_tid[1]);
  if (ckpt_corrupt) prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0);
  wait_for_term();

  struct creds now;
  read_creds(getpid(), &now);
  compare("main", &main_before, &now);
  if (prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0) != 0) fail("CAP_NET_RAW is back in the bounding set");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0) != 1) fail("CAP_CHOWN is not ambient");
  pthread_barrier_wait(&go_bar);
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    if (thread_fail[i][0]) fail("%s", thread_fail[i]);
  }
  verdict();
}
