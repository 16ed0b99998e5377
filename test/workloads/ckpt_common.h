/* The dumpee workload protocol, shared by every test/workloads/ckpt_*.c.
 *
 *   stdin  = /dev/null, stdout = stderr = a regular file (O_APPEND),
 *   fd 3   = the write end of the ready pipe.
 *
 * A workload sets up its state, calls ready() (writes "READY [info]\n" to
 * fd 3 and CLOSES it, so no pipe is left at dump time), then waits for
 * SIGTERM (wait_for_term(), or its own loop polling ckpt_term_flag). Then it
 * checks every piece of its state, calling fail() for each difference, and
 * ends with verdict(): one line "PASS" (exit 0) or "FAIL: <what differs>"
 * (exit 1).
 *
 * Common flags (ckpt_init() takes them):
 *   --selftest-corrupt  the workload disturbs its own state after READY, so
 *                       the verdict must be FAIL (proves the checks can fail)
 *   --spin              wait for SIGTERM by polling a flag in a busy loop
 *                       instead of sigsuspend() (a task caught in user code
 *                       rather than in a restartable system call)
 * Setup errors print "SETUP: ..." and exit 2 before READY.
 *
 * No stdio for output: every line is one write(2), so lines are never torn
 * or lost in a buffer, and nothing here allocates (the heap workload checks
 * the program break).
 */
#ifndef CKPT_COMMON_H
#define CKPT_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CKPT_FN static __attribute__((unused))
#define CKPT_PAGE 4096UL

static volatile sig_atomic_t ckpt_term_flag;
static int ckpt_corrupt; /* --selftest-corrupt */
static int ckpt_spin;    /* --spin */
static char ckpt_fail_buf[16384];
static size_t ckpt_fail_len;
static int ckpt_fail_count;

CKPT_FN void ckpt_write_all(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t r = write(fd, s, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    s += r;
    n -= (size_t)r;
  }
}

CKPT_FN void ckpt_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
CKPT_FN void ckpt_say(const char *fmt, ...) {
  char b[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof b) n = sizeof b - 1;
  ckpt_write_all(1, b, (size_t)n);
}

/* A setup step failed: no READY, exit 2. */
CKPT_FN void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
CKPT_FN void die(const char *fmt, ...) {
  char b[2048];
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  ckpt_say("SETUP: %s (errno %d: %s)\n", b, e, strerror(e));
  _exit(2);
}

/* Record one difference; verdict() prints them all on one line. */
CKPT_FN void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
CKPT_FN void fail(const char *fmt, ...) {
  char b[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof b) n = sizeof b - 1;
  for (int i = 0; i < n; i++)
    if (b[i] == '\n') b[i] = ' ';
  ckpt_fail_count++;
  size_t room = sizeof ckpt_fail_buf - ckpt_fail_len;
  if (room < (size_t)n + 8) {
    if (room > 4) {
      memcpy(ckpt_fail_buf + ckpt_fail_len, " ...", 4);
      ckpt_fail_len += 4;
    }
    return;
  }
  if (ckpt_fail_len) {
    memcpy(ckpt_fail_buf + ckpt_fail_len, "; ", 2);
    ckpt_fail_len += 2;
  }
  memcpy(ckpt_fail_buf + ckpt_fail_len, b, (size_t)n);
  ckpt_fail_len += (size_t)n;
}

CKPT_FN int failed(void) { return ckpt_fail_count; }

/* Print the one verdict line and exit. */
CKPT_FN void verdict(void) __attribute__((noreturn));
CKPT_FN void verdict(void) {
  if (!ckpt_fail_count) {
    ckpt_write_all(1, "PASS\n", 5);
    _exit(0);
  }
  char b[sizeof ckpt_fail_buf + 16];
  memcpy(b, "FAIL: ", 6);
  memcpy(b + 6, ckpt_fail_buf, ckpt_fail_len);
  b[6 + ckpt_fail_len] = '\n';
  ckpt_write_all(1, b, ckpt_fail_len + 7);
  _exit(1);
}

/* Append to a NUL-terminated buffer, truncating quietly. */
CKPT_FN void ckpt_append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
CKPT_FN void ckpt_append(char *buf, size_t size, const char *fmt, ...) {
  size_t l = strnlen(buf, size);
  if (l + 1 >= size) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + l, size - l, fmt, ap);
  va_end(ap);
}

/* Copy a string, truncating quietly. */
CKPT_FN void ckpt_copy(char *dst, size_t size, const char *src) {
  size_t l = strnlen(src, size - 1);
  memcpy(dst, src, l);
  dst[l] = 0;
}

CKPT_FN int ckpt_flag(int argc, char **argv, const char *name) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], name)) return 1;
  return 0;
}

/* "--name VALUE" or "--name=VALUE"; NULL if absent. */
CKPT_FN const char *ckpt_arg(int argc, char **argv, const char *name) {
  size_t l = strlen(name);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], name) && i + 1 < argc) return argv[i + 1];
    if (!strncmp(argv[i], name, l) && argv[i][l] == '=') return argv[i] + l + 1;
  }
  return NULL;
}

static void ckpt_on_term(int sig) {
  (void)sig;
  ckpt_term_flag = 1;
}

/* Take the common flags, install the SIGTERM handler. Unless --spin, SIGTERM
 * stays blocked outside wait_for_term()'s sigsuspend, so it cannot be lost
 * between a check of the flag and the wait. */
CKPT_FN void ckpt_init(int argc, char **argv) {
  ckpt_corrupt = ckpt_flag(argc, argv, "--selftest-corrupt");
  ckpt_spin = ckpt_flag(argc, argv, "--spin");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ckpt_on_term;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, NULL)) die("sigaction(SIGTERM)");
  sigset_t t;
  sigemptyset(&t);
  sigaddset(&t, SIGTERM);
  if (sigprocmask(ckpt_spin ? SIG_UNBLOCK : SIG_BLOCK, &t, NULL)) die("sigprocmask");
}

/* "READY [info]\n" on fd 3, then close it. Run by hand (no fd 3), the line
 * goes to stdout instead. */
CKPT_FN void ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
CKPT_FN void ready(const char *fmt, ...) {
  char b[1024] = "READY";
  size_t n = 5;
  if (fmt && *fmt) {
    va_list ap;
    b[n++] = ' ';
    va_start(ap, fmt);
    int k = vsnprintf(b + n, sizeof b - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0) n += (size_t)k < sizeof b - n - 1 ? (size_t)k : sizeof b - n - 2;
  }
  b[n++] = '\n';
  if (write(3, b, n) != (ssize_t)n) ckpt_write_all(1, b, n);
  close(3);
}

/* Wait until SIGTERM has been handled. */
/* Fork a child that waits for the parent's word before it goes on: in the
 * child it returns 0 once told (fd 3 and the pipe closed); in the parent,
 * the child's pid, with the write end to tell it through in *go_w (one
 * byte, e.g. after the parent's own checks). */
CKPT_FN pid_t ckpt_fork_waiting(int *go_w) {
  int go[2];
  if (pipe(go)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    close(3);
    close(go[1]);
    char b;
    if (read(go[0], &b, 1) != 1) _exit(3);
    close(go[0]);
    return 0;
  }
  close(go[0]);
  *go_w = go[1];
  return c;
}

CKPT_FN void wait_for_term(void) {
  if (ckpt_spin) {
    while (!ckpt_term_flag) __asm__ volatile("pause" ::: "memory");
    return;
  }
  sigset_t m;
  sigprocmask(SIG_BLOCK, NULL, &m);
  sigdelset(&m, SIGTERM);
  while (!ckpt_term_flag) sigsuspend(&m);
}

/* ---------------------------------------------------------------- data */

/* splitmix64 finaliser: word i of a pattern is ckpt_mix(seed ^ i * K), so any
 * part can be checked on its own and the first difference located. */
CKPT_FN uint64_t ckpt_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

CKPT_FN uint64_t ckpt_word(uint64_t seed, uint64_t index) {
  return ckpt_mix(seed ^ (index * 0xd6e8feb86659fd93ULL));
}

/* Fill len bytes (a multiple of 8) at p with pattern `seed`; the word index
 * counts from `first`. */
CKPT_FN void ckpt_fill(void *p, size_t len, uint64_t seed, uint64_t first) {
  uint64_t *w = (uint64_t *)p;
  for (size_t i = 0; i < len / 8; i++) w[i] = ckpt_word(seed, first + i);
}

/* Offset of the first byte that differs from the pattern, or -1. */
CKPT_FN long ckpt_check_fill(const void *p, size_t len, uint64_t seed, uint64_t first) {
  const uint64_t *w = (const uint64_t *)p;
  for (size_t i = 0; i < len / 8; i++)
    if (w[i] != ckpt_word(seed, first + i)) {
      uint64_t d = w[i] ^ ckpt_word(seed, first + i);
      return (long)(i * 8 + (size_t)(__builtin_ctzll(d) / 8));
    }
  return -1;
}

/* Checksum: 4 lanes of multiply-xor over 8-byte words, tail bytes, length. */
CKPT_FN uint64_t ckpt_hash(const void *p, size_t len) {
  const unsigned char *c = (const unsigned char *)p;
  uint64_t h[4] = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL,
                   0x082efa98ec4e6c89ULL};
  size_t i = 0;
  for (; i + 32 <= len; i += 32)
    for (int l = 0; l < 4; l++) {
      uint64_t w;
      memcpy(&w, c + i + 8 * l, 8);
      h[l] = (h[l] ^ w) * 0x100000001b3ULL;
      h[l] ^= h[l] >> 29;
    }
  uint64_t r = len;
  for (int l = 0; l < 4; l++) r = ckpt_mix(r ^ h[l]);
  for (; i < len; i++) r = (r ^ c[i]) * 0x100000001b3ULL;
  return ckpt_mix(r);
}

CKPT_FN int ckpt_all_zero(const void *p, size_t len, long *first_nonzero) {
  const uint64_t *w = (const uint64_t *)p;
  for (size_t i = 0; i < len / 8; i++)
    if (w[i]) {
      if (first_nonzero) *first_nonzero = (long)(i * 8);
      return 0;
    }
  return 1;
}

/* ------------------------------------------------------ sparse regions */

/* A big region of shared memory that is mostly holes. Page i belongs to the
 * parent (0) when i % 61 == 0, in a 2 MiB run from the middle and for the
 * last page; to the child (1) when i % 61 == 30; else it is a hole (-1),
 * never touched before the checkpoint (a read would allocate it). Page 1,
 * a hole, takes the markers written after restore. */
#define CKPT_SPARSE_MARK_PAGE 1

CKPT_FN int ckpt_sparse_owner(size_t page, size_t npages) {
  if (page == CKPT_SPARSE_MARK_PAGE) return -1;
  if (page % 61 == 0 || page + 1 == npages || (page >= npages / 2 && page < npages / 2 + 512)) return 0;
  if (page % 61 == 30) return 1;
  return -1;
}

/* Write the pages of `who` with pattern seed + who. */
CKPT_FN void ckpt_sparse_fill(unsigned char *p, size_t npages, int who, uint64_t seed) {
  for (size_t i = 0; i < npages; i++)
    if (ckpt_sparse_owner(i, npages) == who)
      ckpt_fill(p + i * CKPT_PAGE, CKPT_PAGE, seed + (uint64_t)who, i * (CKPT_PAGE / 8));
}

/* After restore: the checksum of the region (but the marker page) against
 * that of what it should hold; on a difference, the first page that
 * differs. */
CKPT_FN void ckpt_sparse_check(const char *name, const unsigned char *p, size_t npages, uint64_t seed) {
  static uint64_t want[CKPT_PAGE / 8];
  uint64_t hw = 0, hg = 0;
  long bad = -1;
  for (size_t i = 0; i < npages; i++) {
    if (i == CKPT_SPARSE_MARK_PAGE) continue;
    int who = ckpt_sparse_owner(i, npages);
    if (who < 0) memset(want, 0, sizeof want);
    else ckpt_fill(want, CKPT_PAGE, seed + (uint64_t)who, i * (CKPT_PAGE / 8));
    uint64_t a = ckpt_hash(want, CKPT_PAGE), b = ckpt_hash(p + i * CKPT_PAGE, CKPT_PAGE);
    hw = ckpt_mix(hw ^ a);
    hg = ckpt_mix(hg ^ b);
    if (a != b && bad < 0) bad = (long)i;
  }
  if (hw != hg)
    fail("%s: checksum %#llx, expected %#llx; page %ld (%s) differs first", name, (unsigned long long)hg,
         (unsigned long long)hw, bad, bad < 0 ? "?" : ckpt_sparse_owner((size_t)bad, npages) < 0 ? "a hole" : "written");
}

/* ---------------------------------------------------------------- /proc */

/* Read a whole file into buf (NUL-terminated); returns its length or -1. */
CKPT_FN long ckpt_read_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = read(fd, buf + n, size - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  return (long)n;
}

static char ckpt_proc_buf[1 << 20];

/* Copy the /proc/self/maps line (without '\n') of the mapping that contains
 * addr into out; returns 0, or -1 if no mapping contains it. */
CKPT_FN int ckpt_maps_line(const void *addr, char *out, size_t outlen) {
  if (ckpt_read_file("/proc/self/maps", ckpt_proc_buf, sizeof ckpt_proc_buf) < 0) return -1;
  uintptr_t a = (uintptr_t)addr;
  for (char *l = ckpt_proc_buf; *l;) {
    char *nl = strchr(l, '\n');
    size_t len = nl ? (size_t)(nl - l) : strlen(l);
    unsigned long s, e;
    if (sscanf(l, "%lx-%lx", &s, &e) == 2 && a >= s && a < e) {
      if (len >= outlen) len = outlen - 1;
      memcpy(out, l, len);
      out[len] = 0;
      return 0;
    }
    if (!nl) break;
    l = nl + 1;
  }
  return -1;
}

/* The VmFlags of the mapping that contains addr, from /proc/self/smaps. */
CKPT_FN int ckpt_vmflags(const void *addr, char *out, size_t outlen) {
  if (ckpt_read_file("/proc/self/smaps", ckpt_proc_buf, sizeof ckpt_proc_buf) < 0) return -1;
  uintptr_t a = (uintptr_t)addr;
  int inside = 0;
  for (char *l = ckpt_proc_buf; *l;) {
    char *nl = strchr(l, '\n');
    size_t len = nl ? (size_t)(nl - l) : strlen(l);
    unsigned long s, e;
    char perms[8];
    /* A mapping header: "start-end perms ..." (the other lines are "Key: value",
     * and no key is hex digits followed by '-'). */
    if (sscanf(l, "%lx-%lx %7s", &s, &e, perms) == 3)
      inside = a >= s && a < e;
    else if (inside && !strncmp(l, "VmFlags:", 8)) {
      const char *v = l + 8;
      while (*v == ' ') v++;
      size_t vl = len - (size_t)(v - l);
      while (vl && v[vl - 1] == ' ') vl--;
      if (vl >= outlen) vl = outlen - 1;
      memcpy(out, v, vl);
      out[vl] = 0;
      return 0;
    }
    if (!nl) break;
    l = nl + 1;
  }
  return -1;
}

/* Is the page at addr mapped at all? (mincore fails with ENOMEM if not.) */
CKPT_FN int ckpt_mapped(const void *addr) {
  unsigned char v;
  void *page = (void *)((uintptr_t)addr & ~(CKPT_PAGE - 1));
  return mincore(page, CKPT_PAGE, &v) == 0 || errno != ENOMEM;
}

/* Does a space-separated flag list contain flag? */
CKPT_FN int ckpt_has_word(const char *list, const char *word) {
  size_t wl = strlen(word);
  for (const char *p = list; (p = strstr(p, word)); p += wl)
    if ((p == list || p[-1] == ' ') && (p[wl] == 0 || p[wl] == ' ')) return 1;
  return 0;
}

/* The line of /proc/self/task/TID/status that starts with `key` (e.g.
 * "CapBnd:"), without its newline; "" if there is none. */
CKPT_FN void ckpt_status_line(pid_t tid, const char *key, char *out, size_t size) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  out[0] = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  char *p = strstr(buf, key);
  if (!p) return;
  char *e = strchr(p, '\n');
  size_t len = e ? (size_t)(e - p) : strlen(p);
  if (len >= size) len = size - 1;
  memcpy(out, p, len);
  out[len] = 0;
}

/* readlink(/proc/self/fd/FD) into out; "" if fd is not open. */
CKPT_FN const char *ckpt_fd_link(int fd, char *out, size_t size) {
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(p, out, size - 1);
  out[n > 0 ? n : 0] = 0;
  return out;
}

CKPT_FN int ckpt_ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && !strcmp(s + a - b, tail);
}

#endif
