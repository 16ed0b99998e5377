/* ckpt_threads: a multi-threaded process across a checkpoint.
 *
 * --threads=N (default 8) joinable threads, 256 KiB stacks. Thread i:
 *   name      pthread_setname_np "ckth-i"
 *   mask      SIGTERM and SIGRTMIN+1 blocked, plus a set of SIGRTMIN+2..+12
 *             that encodes i (so every thread's mask differs)
 *   pending   SIGRTMIN+1 queued to itself (rt_tgsigqueueinfo, SI_QUEUE,
 *             value 0x7000+i): pending on the thread, not the process
 *   altstack  its own 64 KiB sigaltstack; the SIGRTMIN+1 handler is
 *             SA_ONSTACK|SA_SIGINFO
 *   nice      setpriority(PRIO_PROCESS, tid, 1 + i % 19)
 *   policy    thread 0 SCHED_BATCH, the others SCHED_OTHER (SCHED_IDLE
 *             would starve behind N busy threads on 2 CPUs)
 *   affinity  even i: CPU 0 only; odd i: every CPU of the process's mask
 *   robust    get_robust_list(0) head and length (glibc's, per thread)
 *   tid addr  PR_GET_TID_ADDRESS (glibc's clear_child_tid, per thread)
 *   rseq      glibc's registration (glibc 2.36 <sys/rseq.h>: __rseq_offset,
 *             __rseq_size); a probe with the same area, length and
 *             signature answers EBUSY
 *   counter   counts in a busy loop: its register copy is incremented and
 *             stored to counter[i], and each round first checks that
 *             counter[i] still equals the register copy (a thread restarted
 *             or given another thread's registers would not match)
 * The main thread waits for every thread to be set up (a barrier), then
 * READY "tids=MAIN,T0,T1,...".
 *
 * Verifies, after SIGTERM: the main thread checks /proc/self/task holds
 * exactly the tids it had, records each counter and lets the threads stop.
 * Each thread goes on counting until it is past the value recorded at
 * SIGTERM (it counted on from its pre-dump value, never reset), then checks
 * its own state: gettid(); the name in /proc/self/task/TID/comm; its signal
 * mask; SIGRTMIN+1 still pending (SigPnd of /proc/self/task/TID/status, not
 * ShdPnd), then unblocked and delivered with SI_QUEUE and its value, on its
 * alternate stack; sigaltstack; getpriority; sched_getscheduler;
 * sched_getaffinity; get_robust_list; PR_GET_TID_ADDRESS; rseq still
 * registered (the EBUSY probe) and cpu_id valid after the signal delivery.
 * Main pthread_timedjoin_np()s every thread (joinable: a thread's exit must
 * clear its tid and wake the join, i.e. clear_child_tid was restored) and
 * prints one verdict naming each thread's differences.
 *
 * --selftest-corrupt: after READY main renames thread 1 % N; at SIGTERM
 * thread 2 % N adds SIGUSR1 to its mask before checking.
 */
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>

#include "ckpt_common.h"

#define MAXT 1024
#define ALT_SIZE (64UL << 10)
#define STACK_SIZE (256UL << 10)

struct thr {
  pthread_t th;
  int idx;
  pid_t tid;
  char name[16];
  uint64_t mask;
  stack_t alt;
  int nice, policy;
  cpu_set_t cpus;
  void *robust_head;
  size_t robust_len;
  void *tid_addr;
  int rseq_len;
  char msg[2048];
};

static struct thr t[MAXT];
static int nthreads = 8;
static volatile uint64_t counter[MAXT];
static volatile uint64_t at_term[MAXT];
static volatile int stop;
static pthread_barrier_t setup_done;
static char *alts;
static cpu_set_t all_cpus;
static int PEND; /* SIGRTMIN+1 */

static __thread volatile int got_sig, got_code, got_value, got_onstack;

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static uint64_t mask_bits(const sigset_t *s) {
  uint64_t m = 0;
  for (int i = 1; i <= 64; i++)
    if (sigismember(s, i) == 1) m |= 1ULL << (i - 1);
  return m;
}

static void *rseq_area(void) { return (char *)__builtin_thread_pointer() + __rseq_offset; }

static void on_pend(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  char here;
  stack_t ss;
  sigaltstack(NULL, &ss);
  got_onstack = (ss.ss_flags & SS_ONSTACK) && &here >= (char *)ss.ss_sp && &here < (char *)ss.ss_sp + ss.ss_size;
  got_sig = sig;
  got_code = si->si_code;
  got_value = si->si_value.sival_int;
}

/* Per-thread failure text (fail() is not thread-safe). */
static void tfail(struct thr *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tfail(struct thr *x, const char *fmt, ...) {
  char b[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  ckpt_append(x->msg, sizeof x->msg, "%s%s", x->msg[0] ? ", " : "", b);
}

static void thread_mask(int i, sigset_t *m) {
  sigemptyset(m);
  sigaddset(m, SIGTERM);
  sigaddset(m, PEND);
  for (int b = 0; b < 11; b++)
    if ((i >> b) & 1) sigaddset(m, SIGRTMIN + 2 + b);
}

/* rseq registered with this area, length and signature -> EBUSY. A probe
 * that succeeds means there was no registration: undo it. Returns the
 * length that answered EBUSY, or -errno. */
static int rseq_probe(void) {
  if (__rseq_size == 0) return 0;
  int lens[2] = {32, (int)__rseq_size};
  int e = 0;
  for (int k = 0; k < 2; k++) {
    long r = syscall(SYS_rseq, rseq_area(), lens[k], 0, RSEQ_SIG);
    if (r == 0) {
      syscall(SYS_rseq, rseq_area(), lens[k], RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
      return -1000;
    }
    e = errno;
    if (errno == EBUSY) return lens[k];
  }
  return -e;
}

static long status_hex(pid_t tid, const char *key) {
  char path[64], b[4096];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  if (ckpt_read_file(path, b, sizeof b) <= 0) return -1;
  char *p = strstr(b, key);
  return p ? (long)strtoull(p + strlen(key) + 1, NULL, 16) : -1;
}

static void verify_thread(struct thr *x) {
  int i = x->idx;
  if (ckpt_corrupt && i == 2 % nthreads) {
    sigset_t u;
    sigemptyset(&u);
    sigaddset(&u, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &u, NULL);
  }
  pid_t tid = gettid_();
  if (tid != x->tid) tfail(x, "gettid %d was %d", (int)tid, (int)x->tid);
  char path[64], comm[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)x->tid);
  if (ckpt_read_file(path, comm, sizeof comm) < 0) tfail(x, "cannot read %s", path);
  else {
    char *nl = strchr(comm, '\n');
    if (nl) *nl = 0;
    if (strcmp(comm, x->name)) tfail(x, "comm '%s' was '%s'", comm, x->name);
  }
  sigset_t m;
  pthread_sigmask(SIG_BLOCK, NULL, &m);
  if (mask_bits(&m) != x->mask)
    tfail(x, "signal mask %#llx was %#llx", (unsigned long long)mask_bits(&m), (unsigned long long)x->mask);
  stack_t ss;
  sigaltstack(NULL, &ss);
  if (ss.ss_sp != x->alt.ss_sp || ss.ss_size != x->alt.ss_size || ss.ss_flags != 0)
    tfail(x, "sigaltstack %p/%zu/%d was %p/%zu/0", ss.ss_sp, ss.ss_size, ss.ss_flags, x->alt.ss_sp, x->alt.ss_size);
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, (id_t)tid);
  if (nice != x->nice) tfail(x, "nice %d was %d", nice, x->nice);
  int pol = sched_getscheduler(tid);
  if (pol != x->policy) tfail(x, "policy %d was %d", pol, x->policy);
  cpu_set_t c;
  CPU_ZERO(&c);
  if (sched_getaffinity(tid, sizeof c, &c) || !CPU_EQUAL(&c, &x->cpus))
    tfail(x, "affinity %d CPUs (CPU0 %s) was %d CPUs", CPU_COUNT(&c), CPU_ISSET(0, &c) ? "in" : "out",
          CPU_COUNT(&x->cpus));
  void *head = NULL;
  size_t len = 0;
  syscall(SYS_get_robust_list, 0, &head, &len);
  if (head != x->robust_head || len != x->robust_len)
    tfail(x, "robust list %p/%zu was %p/%zu", head, len, x->robust_head, x->robust_len);
  void *ta = NULL;
  prctl(PR_GET_TID_ADDRESS, &ta);
  if (ta != x->tid_addr) tfail(x, "clear_child_tid %p was %p", ta, x->tid_addr);
  if (x->rseq_len > 0) {
    int r = rseq_probe();
    if (r != x->rseq_len) tfail(x, "rseq: not registered as before (probe %d, was %d)", r, x->rseq_len);
  }

  /* The pending signal: still pending on this thread only, then delivered. */
  long sigpnd = status_hex(x->tid, "SigPnd:"), shdpnd = status_hex(x->tid, "ShdPnd:");
  uint64_t bit = 1ULL << (PEND - 1);
  if (sigpnd < 0 || !((uint64_t)sigpnd & bit)) tfail(x, "SIGRTMIN+1 not pending on the thread (SigPnd %#lx)", sigpnd);
  if (shdpnd < 0 || ((uint64_t)shdpnd & bit)) tfail(x, "SIGRTMIN+1 pending on the process (ShdPnd %#lx)", shdpnd);
  sigset_t u;
  sigemptyset(&u);
  sigaddset(&u, PEND);
  pthread_sigmask(SIG_UNBLOCK, &u, NULL);
  if (got_sig != PEND) tfail(x, "pending SIGRTMIN+1 not delivered on unblock");
  else {
    if (got_code != SI_QUEUE || got_value != 0x7000 + i)
      tfail(x, "SIGRTMIN+1 si_code %d value %#x, expected SI_QUEUE %#x", got_code, got_value, 0x7000 + i);
    if (!got_onstack) tfail(x, "SIGRTMIN+1 handler (SA_ONSTACK) not on the thread's alternate stack");
  }
  pthread_sigmask(SIG_BLOCK, &u, NULL);
  if (__rseq_size > 0) {
    int32_t cpu = (int32_t)((struct rseq *)rseq_area())->cpu_id;
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &x->cpus)) tfail(x, "rseq cpu_id %d not valid", (int)cpu);
  }
}

static void *thread_main(void *arg) {
  struct thr *x = arg;
  int i = x->idx;
  x->tid = gettid_();
  snprintf(x->name, sizeof x->name, "ckth-%d", i);
  if (pthread_setname_np(pthread_self(), x->name)) die("pthread_setname_np");
  sigset_t m;
  thread_mask(i, &m);
  if (pthread_sigmask(SIG_SETMASK, &m, NULL)) die("pthread_sigmask");
  x->mask = mask_bits(&m);
  x->alt.ss_sp = alts + (size_t)i * ALT_SIZE;
  x->alt.ss_size = ALT_SIZE;
  x->alt.ss_flags = 0;
  if (sigaltstack(&x->alt, NULL)) die("sigaltstack");
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = PEND;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = 0x7000 + i;
  if (syscall(SYS_rt_tgsigqueueinfo, getpid(), x->tid, PEND, &si)) die("rt_tgsigqueueinfo");
  x->nice = 1 + i % 19;
  if (setpriority(PRIO_PROCESS, (id_t)x->tid, x->nice)) die("setpriority");
  if (i == 0) {
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(x->tid, SCHED_BATCH, &sp)) die("SCHED_BATCH");
  }
  x->policy = sched_getscheduler(x->tid);
  if (i % 2 == 0) {
    CPU_ZERO(&x->cpus);
    CPU_SET(0, &x->cpus);
  } else {
    x->cpus = all_cpus;
  }
  if (sched_setaffinity(x->tid, sizeof x->cpus, &x->cpus)) die("sched_setaffinity");
  if (syscall(SYS_get_robust_list, 0, &x->robust_head, &x->robust_len)) die("get_robust_list");
  if (prctl(PR_GET_TID_ADDRESS, &x->tid_addr)) die("PR_GET_TID_ADDRESS");
  x->rseq_len = rseq_probe();
  if (x->rseq_len < 0) die("rseq probe: %d, not EBUSY", x->rseq_len);
  if (getpriority(PRIO_PROCESS, (id_t)x->tid) != x->nice) die("nice did not stick");

  pthread_barrier_wait(&setup_done);

  uint64_t local = 0;
  volatile uint64_t *mine = &counter[i];
  for (;;) {
    if (*mine != local) {
      tfail(x, "counter %llu in memory but %llu in the thread's register (restarted or registers swapped)",
            (unsigned long long)*mine, (unsigned long long)local);
      local = *mine;
    }
    local++;
    *mine = local;
    if (__atomic_load_n(&stop, __ATOMIC_ACQUIRE) && local > at_term[i] + 1000) break;
  }
  verify_thread(x);
  return NULL;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  const char *n_s = ckpt_arg(argc, argv, "--threads");
  if (n_s) nthreads = atoi(n_s);
  if (nthreads < 1 || nthreads > MAXT) die("--threads=%d: 1..%d", nthreads, MAXT);
  PEND = SIGRTMIN + 1;
  if (SIGRTMIN + 12 > SIGRTMAX) die("not enough real-time signals");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_pend;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(PEND, &sa, NULL)) die("sigaction");
  if (sched_getaffinity(0, sizeof all_cpus, &all_cpus)) die("sched_getaffinity");
  if (!CPU_ISSET(0, &all_cpus)) die("CPU 0 is not in this process's affinity mask");

  alts = mmap(NULL, (size_t)nthreads * ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alts == MAP_FAILED) die("mmap altstacks");
  if (pthread_barrier_init(&setup_done, NULL, (unsigned)nthreads + 1)) die("pthread_barrier_init");
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, STACK_SIZE);
  for (int i = 0; i < nthreads; i++) {
    t[i].idx = i;
    int e = pthread_create(&t[i].th, &attr, thread_main, &t[i]);
    if (e) {
      errno = e;
      die("pthread_create %d", i);
    }
  }
  pthread_barrier_wait(&setup_done);

  /* The tids, as /proc/self/task lists them. */
  static pid_t tids_before[MAXT + 1];
  tids_before[0] = getpid();
  for (int i = 0; i < nthreads; i++) tids_before[i + 1] = t[i].tid;
  static char line[MAXT * 8 + 64];
  int n = snprintf(line, sizeof line, "READY tids=%d", (int)getpid());
  for (int i = 0; i < nthreads; i++) n += snprintf(line + n, sizeof line - (size_t)n, ",%d", (int)t[i].tid);
  line[n++] = '\n';
  if (write(3, line, (size_t)n) != (ssize_t)n) ckpt_write_all(1, line, (size_t)n);
  close(3);
  if (ckpt_corrupt) pthread_setname_np(t[1 % nthreads].th, "corrupted");

  wait_for_term();

  /* Every thread still there, nothing extra. */
  for (int i = 0; i <= nthreads; i++) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/task/%d", (int)tids_before[i]);
    if (access(p, F_OK)) fail("thread %d is gone from /proc/self/task", (int)tids_before[i]);
  }
  {
    long threads = -1;
    if (ckpt_read_file("/proc/self/status", ckpt_proc_buf, sizeof ckpt_proc_buf) > 0) {
      char *p = strstr(ckpt_proc_buf, "Threads:");
      if (p) threads = strtol(p + 8, NULL, 10);
    }
    if (threads != nthreads + 1) fail("%ld threads, expected %d", threads, nthreads + 1);
  }
  if (gettid_() != getpid()) fail("main thread tid %d is not the pid %d", (int)gettid_(), (int)getpid());

  for (int i = 0; i < nthreads; i++) at_term[i] = counter[i];
  __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);

  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 60;
  for (int i = 0; i < nthreads; i++) {
    int e = pthread_timedjoin_np(t[i].th, NULL, &dl);
    if (e) {
      fail("thread %d (tid %d): pthread_join: %s (its exit did not clear its tid: clear_child_tid lost?)", i,
           (int)t[i].tid, strerror(e));
      continue;
    }
    if (t[i].msg[0]) fail("thread %d (tid %d): %s", i, (int)t[i].tid, t[i].msg);
    if (counter[i] <= at_term[i]) fail("thread %d: counter did not move on from %llu", i, (unsigned long long)at_term[i]);
  }
  verdict();
}
