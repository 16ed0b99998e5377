/* ckpt_vdso: the vDSO and its data pages across a checkpoint.
 *
 * Records every /proc/self/maps line whose name starts with "[vdso" or
 * "[vvar" (6.18 has [vvar], [vvar_vclock] and [vdso]; any number is fine)
 * and getauxval(AT_SYSINFO_EHDR), and the time at READY. While waiting it
 * calls clock_gettime(CLOCK_MONOTONIC) through the vDSO in a loop (so the
 * dump may well catch it inside vDSO code) and counts any step back.
 * Verifies: the vdso/vvar lines are identical (same addresses: glibc keeps
 * pointers into the vDSO), AT_SYSINFO_EHDR unchanged; then for
 * CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME and gettimeofday(), the
 * libc (vDSO) result lies between two raw system calls made around it
 * (1 ms tolerance), and MONOTONIC/REALTIME are later than at READY.
 *
 * --selftest-corrupt: after READY move the [vdso] mapping elsewhere with
 * mremap (the time checks are then skipped: glibc's pointers into the old
 * place would fault).
 */
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "ckpt_common.h"

#define MAXL 8
static char lines[MAXL][512];
static int nlines;

static int collect(char out[MAXL][512]) {
  static char b[1 << 18];
  if (ckpt_read_file("/proc/self/maps", b, sizeof b) < 0) return -1;
  int n = 0;
  for (char *l = b; *l && n < MAXL;) {
    char *nl = strchr(l, '\n');
    if (nl) *nl = 0;
    if (strstr(l, " [vdso") || strstr(l, " [vvar")) ckpt_copy(out[n++], 512, l);
    if (!nl) break;
    l = nl + 1;
  }
  return n;
}

static int64_t ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }

static void check_clock(clockid_t id, const char *name) {
  struct timespec a, v, b;
  syscall(SYS_clock_gettime, id, &a);
  if (clock_gettime(id, &v)) {
    fail("clock_gettime(%s) failed: %s", name, strerror(errno));
    return;
  }
  syscall(SYS_clock_gettime, id, &b);
  const int64_t tol = 1000000;
  if (ns(&v) < ns(&a) - tol || ns(&v) > ns(&b) + tol)
    fail("%s: vDSO %lld.%09ld not between system calls %lld.%09ld and %lld.%09ld", name, (long long)v.tv_sec,
         v.tv_nsec, (long long)a.tv_sec, a.tv_nsec, (long long)b.tv_sec, b.tv_nsec);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  nlines = collect(lines);
  if (nlines <= 0) die("no [vdso]/[vvar] in /proc/self/maps");
  unsigned long ehdr = getauxval(AT_SYSINFO_EHDR);
  if (!ehdr) die("no AT_SYSINFO_EHDR");
  struct timespec mono0, real0;
  clock_gettime(CLOCK_MONOTONIC, &mono0);
  clock_gettime(CLOCK_REALTIME, &real0);

  ready("vdso=%#lx mappings=%d", ehdr, nlines);

  int moved = 0;
  if (ckpt_corrupt) {
    /* Move [vdso] one page-aligned spot down into fresh space. */
    unsigned long s = 0, e = 0;
    for (int i = 0; i < nlines; i++)
      if (strstr(lines[i], "[vdso]")) sscanf(lines[i], "%lx-%lx", &s, &e);
    void *dst = mmap(NULL, e - s, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s && dst != MAP_FAILED &&
        mremap((void *)s, e - s, e - s, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED)
      moved = 1;
  }

  /* Wait by spinning through the vDSO (in sigsuspend if it was moved away:
   * calling it would fault). */
  sigset_t t;
  sigemptyset(&t);
  sigaddset(&t, SIGTERM);
  uint64_t backwards = 0;
  if (!moved) {
    sigprocmask(SIG_UNBLOCK, &t, NULL);
    struct timespec prev = mono0, now;
    while (!ckpt_term_flag) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (ns(&now) < ns(&prev)) backwards++;
      prev = now;
    }
    sigprocmask(SIG_BLOCK, &t, NULL);
  } else
    wait_for_term();

  char now_lines[MAXL][512];
  int n = collect(now_lines);
  int same = n == nlines;
  for (int i = 0; same && i < n; i++) same = !strcmp(now_lines[i], lines[i]);
  if (!same) {
    char was[1024] = "", is[1024] = "";
    for (int i = 0; i < nlines; i++) ckpt_append(was, sizeof was, "%s'%s'", i ? ", " : "", lines[i]);
    for (int i = 0; i < n; i++) ckpt_append(is, sizeof is, "%s'%s'", i ? ", " : "", now_lines[i]);
    fail("vdso/vvar mappings %s were %s; time checks skipped", is, was);
    verdict();
  }
  if (getauxval(AT_SYSINFO_EHDR) != ehdr) fail("AT_SYSINFO_EHDR %#lx was %#lx", getauxval(AT_SYSINFO_EHDR), ehdr);
  if (backwards) fail("CLOCK_MONOTONIC stepped back %llu times while waiting", (unsigned long long)backwards);

  check_clock(CLOCK_MONOTONIC, "CLOCK_MONOTONIC");
  check_clock(CLOCK_REALTIME, "CLOCK_REALTIME");
  check_clock(CLOCK_BOOTTIME, "CLOCK_BOOTTIME");
  check_clock(CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE");
  struct timeval a, v, b;
  syscall(SYS_gettimeofday, &a, NULL);
  gettimeofday(&v, NULL);
  syscall(SYS_gettimeofday, &b, NULL);
  int64_t ua = a.tv_sec * 1000000LL + a.tv_usec, uv = v.tv_sec * 1000000LL + v.tv_usec,
          ub = b.tv_sec * 1000000LL + b.tv_usec;
  if (uv < ua - 1000 || uv > ub + 1000)
    fail("gettimeofday: vDSO %lld us not between system calls %lld and %lld", (long long)uv, (long long)ua,
         (long long)ub);
  time_t tv = time(NULL), ts = (time_t)syscall(SYS_time, NULL);
  if (tv < ts - 1 || tv > ts + 1) fail("time(): vDSO %lld, system call %lld", (long long)tv, (long long)ts);

  struct timespec mono1, real1;
  clock_gettime(CLOCK_MONOTONIC, &mono1);
  clock_gettime(CLOCK_REALTIME, &real1);
  if (ns(&mono1) <= ns(&mono0)) fail("CLOCK_MONOTONIC did not move forward since READY");
  if (ns(&real1) <= ns(&real0)) fail("CLOCK_REALTIME did not move forward since READY");
  verdict();
}
