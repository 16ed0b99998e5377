/* ckpt_signals: signal state across a checkpoint.
 *
 * Before READY:
 *   SIGUSR1   SA_SIGINFO, sa_mask {SIGUSR2, SIGWINCH}
 *   SIGUSR2   SA_RESTART|SA_NODEFER
 *   SIGHUP    SA_RESETHAND
 *   SIGURG    SA_ONSTACK (a 64 KiB sigaltstack is set up)
 *   SIGWINCH  SA_SIGINFO|SA_ONSTACK|SA_RESTART, sa_mask {SIGUSR1}
 *   SIGINT, SIGQUIT, SIGRTMIN+2, SIGRTMIN+5: SA_SIGINFO, blocked
 *   SIGPIPE   ignored
 *   pending:  SIGQUIT by raise() (thread-directed, SI_TKILL), SIGINT by
 *             kill(getpid()) (process-wide, SI_USER), and SIGRTMIN+2 queued
 *             twice by sigqueue() with values 0x5eed and 0x5eee
 * Verifies: every sigaction (handler, flags, mask, restorer) of signals
 * 1..64 identical; blocked mask identical; sigaltstack identical; pending
 * sets identical (sigpending, and SigPnd/ShdPnd of /proc/self/status
 * separately); unblocking delivers SIGINT (SI_USER, our pid), SIGQUIT
 * (SI_TKILL) and both SIGRTMIN+2 in order with their values; then raising
 * each handled signal runs its handler with the right mask (SA_NODEFER,
 * sa_mask), SA_RESETHAND leaves SIG_DFL behind, SA_ONSTACK handlers run on
 * the alternate stack, SIGPIPE stays ignored, SIGRTMIN+5 stays blocked until
 * unblocked.
 *
 * --selftest-corrupt: after READY drop SA_NODEFER from SIGUSR2 and consume
 * the pending SIGQUIT.
 */
#include <sys/syscall.h>

#include "ckpt_common.h"

struct entry {
  int sig, code, value, pid, onstack, ss_flags;
  uint64_t mask;
};
static struct entry logv[64];
static volatile int nlog;
static char *alt;
static const size_t ALT_SIZE = 64 * 1024;

static uint64_t mask_bits(const sigset_t *s) {
  uint64_t m = 0;
  for (int i = 1; i <= 64; i++)
    if (sigismember(s, i) == 1) m |= 1ULL << (i - 1);
  return m;
}

static void record(int sig, int code, int value, int pid) {
  int i = nlog;
  if (i >= 64) return;
  char here;
  stack_t ss;
  sigset_t m;
  sigaltstack(NULL, &ss);
  sigprocmask(SIG_BLOCK, NULL, &m);
  logv[i].sig = sig;
  logv[i].code = code;
  logv[i].value = value;
  logv[i].pid = pid;
  logv[i].onstack = &here >= alt && &here < alt + ALT_SIZE;
  logv[i].ss_flags = ss.ss_flags;
  logv[i].mask = mask_bits(&m);
  nlog = i + 1;
}

static void h_plain(int sig) { record(sig, -1000, 0, 0); }
static void h_info(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  record(sig, si->si_code, si->si_value.sival_int, si->si_pid);
}

struct act {
  int ok;
  void *handler, *restorer;
  int flags;
  uint64_t mask;
};
static struct act acts_before[65];

static void get_act(int sig, struct act *a) {
  struct sigaction sa;
  memset(a, 0, sizeof *a);
  if (sigaction(sig, NULL, &sa)) return;
  a->ok = 1;
  a->handler = (void *)sa.sa_handler;
  a->restorer = (void *)sa.sa_restorer;
  a->flags = sa.sa_flags;
  a->mask = mask_bits(&sa.sa_mask);
}

static void install(int sig, void (*plain)(int), int flags, int m1, int m2) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  if (flags & SA_SIGINFO)
    sa.sa_sigaction = h_info;
  else
    sa.sa_handler = plain;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (m1) sigaddset(&sa.sa_mask, m1);
  if (m2) sigaddset(&sa.sa_mask, m2);
  if (sigaction(sig, &sa, NULL)) die("sigaction(%d)", sig);
}

/* SigPnd / ShdPnd / SigBlk of /proc/self/status. */
static uint64_t status_mask(const char *key) {
  char b[8192];
  if (ckpt_read_file("/proc/self/status", b, sizeof b) <= 0) return ~0ULL;
  char *p = strstr(b, key);
  return p ? strtoull(p + strlen(key) + 1, NULL, 16) : ~0ULL;
}

static const struct entry *find(int sig, int from) {
  for (int i = from; i < nlog; i++)
    if (logv[i].sig == sig) return &logv[i];
  return NULL;
}

#define BIT(s) (1ULL << ((s) - 1))

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  const int RT2 = SIGRTMIN + 2, RT5 = SIGRTMIN + 5;

  alt = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alt == MAP_FAILED) die("mmap altstack");
  stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL)) die("sigaltstack");

  install(SIGUSR1, NULL, SA_SIGINFO, SIGUSR2, SIGWINCH);
  install(SIGUSR2, h_plain, SA_RESTART | SA_NODEFER, 0, 0);
  install(SIGHUP, h_plain, SA_RESETHAND, 0, 0);
  install(SIGURG, h_plain, SA_ONSTACK, 0, 0);
  install(SIGWINCH, NULL, SA_SIGINFO | SA_ONSTACK | SA_RESTART, SIGUSR1, 0);
  install(SIGINT, NULL, SA_SIGINFO, 0, 0);
  install(SIGQUIT, NULL, SA_SIGINFO, 0, 0);
  install(RT2, NULL, SA_SIGINFO, 0, 0);
  install(RT5, NULL, SA_SIGINFO, 0, 0);
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) die("SIG_IGN");

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGQUIT);
  sigaddset(&block, RT2);
  sigaddset(&block, RT5);
  if (sigprocmask(SIG_BLOCK, &block, NULL)) die("sigprocmask");
  if (raise(SIGQUIT) || kill(getpid(), SIGINT)) die("raise");
  union sigval v1 = {.sival_int = 0x5eed}, v2 = {.sival_int = 0x5eee};
  if (sigqueue(getpid(), RT2, v1) || sigqueue(getpid(), RT2, v2)) die("sigqueue");
  if (nlog) die("a handler ran before READY");

  for (int s = 1; s <= 64; s++) get_act(s, &acts_before[s]);
  sigset_t blocked0, pending0;
  sigprocmask(SIG_BLOCK, NULL, &blocked0);
  sigpending(&pending0);
  uint64_t sigpnd0 = status_mask("SigPnd:"), shdpnd0 = status_mask("ShdPnd:");
  const uint64_t want_pending = BIT(SIGINT) | BIT(SIGQUIT) | BIT(RT2);
  if (mask_bits(&pending0) != want_pending) die("pending set %#llx", (unsigned long long)mask_bits(&pending0));

  ready("blocked=%#llx sigpnd=%#llx shdpnd=%#llx", (unsigned long long)mask_bits(&blocked0),
        (unsigned long long)sigpnd0, (unsigned long long)shdpnd0);
  if (ckpt_corrupt) {
    install(SIGUSR2, h_plain, SA_RESTART, 0, 0);
    sigset_t q;
    sigemptyset(&q);
    sigaddset(&q, SIGQUIT);
    siginfo_t si;
    struct timespec z = {0, 0};
    sigtimedwait(&q, &si, &z);
  }
  wait_for_term();

  /* 1. Static state. */
  sigset_t m;
  sigprocmask(SIG_BLOCK, NULL, &m);
  if (mask_bits(&m) != mask_bits(&blocked0))
    fail("blocked mask %#llx was %#llx", (unsigned long long)mask_bits(&m), (unsigned long long)mask_bits(&blocked0));
  stack_t ss1;
  sigaltstack(NULL, &ss1);
  if (ss1.ss_sp != alt || ss1.ss_size != ALT_SIZE || ss1.ss_flags != 0)
    fail("sigaltstack sp=%p size=%zu flags=%d, was sp=%p size=%zu flags=0", ss1.ss_sp, ss1.ss_size, ss1.ss_flags,
         (void *)alt, ALT_SIZE);
  for (int s = 1; s <= 64; s++) {
    struct act a;
    get_act(s, &a);
    struct act *b = &acts_before[s];
    if (a.ok != b->ok || a.handler != b->handler || a.flags != b->flags || a.mask != b->mask ||
        (b->handler != (void *)SIG_DFL && b->handler != (void *)SIG_IGN && a.restorer != b->restorer))
      fail("sigaction(%d): handler %p flags %#x mask %#llx restorer %p; was %p %#x %#llx %p", s, a.handler,
           (unsigned)a.flags, (unsigned long long)a.mask, a.restorer, b->handler, (unsigned)b->flags,
           (unsigned long long)b->mask, b->restorer);
  }
  sigset_t p;
  sigpending(&p);
  if (mask_bits(&p) != want_pending)
    fail("pending %#llx, was %#llx", (unsigned long long)mask_bits(&p), (unsigned long long)want_pending);
  uint64_t sigpnd = status_mask("SigPnd:"), shdpnd = status_mask("ShdPnd:");
  if (sigpnd != sigpnd0) fail("SigPnd (thread) %#llx was %#llx", (unsigned long long)sigpnd, (unsigned long long)sigpnd0);
  if (shdpnd != shdpnd0) fail("ShdPnd (process) %#llx was %#llx", (unsigned long long)shdpnd, (unsigned long long)shdpnd0);

  /* 2. Pending signals are delivered, with their siginfo. */
  int n0 = nlog;
  sigset_t unb;
  sigemptyset(&unb);
  sigaddset(&unb, SIGINT);
  sigaddset(&unb, SIGQUIT);
  sigaddset(&unb, RT2);
  sigprocmask(SIG_UNBLOCK, &unb, NULL);
  const struct entry *e;
  if (!(e = find(SIGINT, n0))) fail("pending SIGINT not delivered");
  else if (e->code != SI_USER || e->pid != getpid())
    fail("SIGINT si_code %d si_pid %d, expected SI_USER from %d", e->code, e->pid, (int)getpid());
  if (!(e = find(SIGQUIT, n0))) fail("pending SIGQUIT not delivered");
  else if (e->code != SI_TKILL) fail("SIGQUIT si_code %d, expected SI_TKILL", e->code);
  const struct entry *r1 = find(RT2, n0), *r2 = r1 ? find(RT2, (int)(r1 - logv) + 1) : NULL;
  if (!r1 || !r2) fail("SIGRTMIN+2 delivered %d times, expected 2", !!r1 + !!r2);
  else {
    if (r1->code != SI_QUEUE || r2->code != SI_QUEUE) fail("SIGRTMIN+2 si_code %d,%d, expected SI_QUEUE", r1->code, r2->code);
    if (r1->value != 0x5eed || r2->value != 0x5eee)
      fail("SIGRTMIN+2 values %#x,%#x, expected 0x5eed,0x5eee", r1->value, r2->value);
  }
  if (nlog - n0 != 4) fail("%d handler runs for the pending signals, expected 4", nlog - n0);

  /* 3. Each handler, raised now. */
  n0 = nlog;
  raise(SIGUSR1);
  if (!(e = find(SIGUSR1, n0))) fail("SIGUSR1 handler did not run");
  else {
    if (!(e->mask & BIT(SIGUSR1))) fail("SIGUSR1 not blocked in its own handler");
    if ((e->mask & (BIT(SIGUSR2) | BIT(SIGWINCH))) != (BIT(SIGUSR2) | BIT(SIGWINCH)))
      fail("SIGUSR1 handler mask %#llx lacks sa_mask {SIGUSR2,SIGWINCH}", (unsigned long long)e->mask);
    if (e->code != SI_TKILL) fail("SIGUSR1 si_code %d, expected SI_TKILL", e->code);
  }
  n0 = nlog;
  raise(SIGUSR2);
  if (!(e = find(SIGUSR2, n0))) fail("SIGUSR2 handler did not run");
  else if (e->mask & BIT(SIGUSR2)) fail("SIGUSR2 (SA_NODEFER) blocked in its own handler");
  n0 = nlog;
  raise(SIGHUP);
  struct sigaction sa;
  if (!find(SIGHUP, n0)) fail("SIGHUP handler did not run");
  else if (sigaction(SIGHUP, NULL, &sa) || sa.sa_handler != SIG_DFL)
    fail("SIGHUP (SA_RESETHAND) disposition not reset to SIG_DFL");
  n0 = nlog;
  raise(SIGURG);
  if (!(e = find(SIGURG, n0))) fail("SIGURG handler did not run");
  else if (!e->onstack || !(e->ss_flags & SS_ONSTACK)) fail("SIGURG (SA_ONSTACK) handler not on the alternate stack");
  n0 = nlog;
  raise(SIGWINCH);
  if (!(e = find(SIGWINCH, n0))) fail("SIGWINCH handler did not run");
  else {
    if (!e->onstack) fail("SIGWINCH (SA_ONSTACK) handler not on the alternate stack");
    if (!(e->mask & BIT(SIGUSR1)) || !(e->mask & BIT(SIGWINCH)))
      fail("SIGWINCH handler mask %#llx lacks SIGUSR1/SIGWINCH", (unsigned long long)e->mask);
  }
  n0 = nlog;
  raise(SIGPIPE);
  if (nlog != n0) fail("ignored SIGPIPE ran a handler");
  raise(RT5);
  if (nlog != n0) fail("blocked SIGRTMIN+5 delivered while blocked");
  sigpending(&p);
  if (!sigismember(&p, RT5)) fail("raised SIGRTMIN+5 not pending");
  sigemptyset(&unb);
  sigaddset(&unb, RT5);
  sigprocmask(SIG_UNBLOCK, &unb, NULL);
  if (!(e = find(RT5, n0))) fail("SIGRTMIN+5 not delivered when unblocked");
  verdict();
}
