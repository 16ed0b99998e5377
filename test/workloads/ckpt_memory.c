/* ckpt_memory: private anonymous memory across a checkpoint.
 *
 * Every region lives in one arena with unmapped holes between them:
 *   holes    24 pages with a pattern, pages 4-5, 10 and 16-19 unmapped
 *   none     PROT_NONE after being filled with a pattern (contents kept)
 *   guard    PROT_NONE, never touched
 *   ro       r--, filled; wo  -w-, filled
 *   xo       --x, rx  r-x, rwx  rwx: each one page of code returning a
 *            known value, called after restore
 *   big      --big-mib N MiB (default 64) of seeded pseudo-random data,
 *            checksummed before READY
 *   sparse   16 MiB, one word written in every 7th page, the rest never
 *            faulted (must read as zero)
 *   untouched 8 MiB never faulted (must read as zero)
 *   growsdown MAP_GROWSDOWN, 4 filled pages with 8 MiB free below: after
 *            the checks, touching the page below must grow it
 * Verifies: the /proc/self/maps line of every region and every hole is the
 * same as before READY, the whole of /proc/self/maps is the same (adjacent
 * compatible lines merged on both sides; [stack] compared by its end only),
 * all contents, the code pages run, growsdown VmFlags "gd" and growth.
 *
 * --selftest-corrupt: after READY make ro writable, flip a bit in big,
 * write into an untouched page of sparse.
 */
#include <setjmp.h>
#include <sys/syscall.h>

#include "ckpt_common.h"

#define PG CKPT_PAGE
#define MIB (1024UL * 1024)

enum { R_HOLES0, R_HOLES1, R_HOLES2, R_HOLES3, R_NONE, R_GUARD, R_RO, R_WO, R_XO, R_RX, R_RWX,
       R_BIG, R_SPARSE, R_UNTOUCHED, R_GROWSDOWN, R_COUNT };
static const char *names[R_COUNT] = {"holes[0-4)", "holes[6-10)", "holes[11-16)", "holes[20-24)", "none",
                                     "guard", "ro", "wo", "xo", "rx", "rwx", "big", "sparse", "untouched",
                                     "growsdown"};
static char *addr[R_COUNT];
static size_t len[R_COUNT];
static char line_before[R_COUNT][512];
static char *holes[3];
static size_t hole_len[3];
static char gd_flags_before[256];

/* ---- whole-maps comparison ---- */
struct vma {
  unsigned long s, e, off, ino;
  char perms[8], dev[16], path[256];
};
#define MAXVMA 512
static struct vma maps_before[MAXVMA], maps_after[MAXVMA];
static int nbefore, nafter;

static int parse_maps(struct vma *v) {
  static char buf[1 << 18];
  if (ckpt_read_file("/proc/self/maps", buf, sizeof buf) < 0) return -1;
  int n = 0;
  for (char *l = buf; *l && n < MAXVMA;) {
    char *nl = strchr(l, '\n');
    if (nl) *nl = 0;
    struct vma x;
    memset(&x, 0, sizeof x);
    int pos = 0;
    if (sscanf(l, "%lx-%lx %7s %lx %15s %lu %n", &x.s, &x.e, x.perms, &x.off, x.dev, &x.ino, &pos) >= 6) {
      if (pos) snprintf(x.path, sizeof x.path, "%s", l + pos);
      /* Merge with the previous line if the kernel could have merged them. */
      struct vma *p = n ? &v[n - 1] : NULL;
      if (p && p->e == x.s && !strcmp(p->perms, x.perms) && !strcmp(p->dev, x.dev) && p->ino == x.ino &&
          !strcmp(p->path, x.path) && (x.ino == 0 || p->off + (p->e - p->s) == x.off))
        p->e = x.e;
      else
        v[n++] = x;
    }
    if (!nl) break;
    l = nl + 1;
  }
  return n;
}

static void fmt_vma(const struct vma *v, char *b, size_t n) {
  snprintf(b, n, "%lx-%lx %s %08lx %s %lu %s", v->s, v->e, v->perms, v->off, v->dev, v->ino, v->path);
}

static int same_vma(const struct vma *a, const struct vma *b) {
  int stack = !strcmp(a->path, "[stack]") && !strcmp(b->path, "[stack]");
  return (stack || a->s == b->s) && a->e == b->e && !strcmp(a->perms, b->perms) && a->off == b->off &&
         !strcmp(a->dev, b->dev) && a->ino == b->ino && !strcmp(a->path, b->path);
}

static void compare_maps(void) {
  nafter = parse_maps(maps_after);
  int i = 0, j = 0, reported = 0;
  char b1[400], b2[400];
  while ((i < nbefore || j < nafter) && reported < 6) {
    if (i < nbefore && j < nafter && same_vma(&maps_before[i], &maps_after[j])) {
      i++, j++;
      continue;
    }
    reported++;
    if (j >= nafter || (i < nbefore && maps_before[i].s < maps_after[j].s && maps_before[i].e <= maps_after[j].s)) {
      fmt_vma(&maps_before[i++], b1, sizeof b1);
      fail("maps: mapping gone: %s", b1);
    } else if (i >= nbefore || maps_after[j].e <= maps_before[i].s) {
      fmt_vma(&maps_after[j++], b2, sizeof b2);
      fail("maps: new mapping: %s", b2);
    } else {
      fmt_vma(&maps_before[i++], b1, sizeof b1);
      fmt_vma(&maps_after[j++], b2, sizeof b2);
      fail("maps: was '%s' now '%s'", b1, b2);
    }
  }
}

typedef int (*code_fn)(void);

/* A fault in a check becomes a FAIL naming the check, not a crash. */
static sigjmp_buf fault_jb;
static void on_fault(int sig) { siglongjmp(fault_jb, sig); }
static int call_code(const char *name, char *page) {
  int sig = sigsetjmp(fault_jb, 1);
  if (sig) {
    fail("%s: calling the code page at %p raised signal %d", name, (void *)page, sig);
    return -1;
  }
  return ((code_fn)(void *)page)();
}

static void put_code(char *p, uint32_t value) {
  unsigned char c[6] = {0xb8, 0, 0, 0, 0, 0xc3}; /* mov $value,%eax; ret */
  memcpy(c + 1, &value, 4);
  memcpy(p, c, sizeof c);
}

static void check_fill(int r, uint64_t seed) {
  long d = ckpt_check_fill(addr[r], len[r], seed, 0);
  if (d >= 0) fail("%s: contents differ at offset %#lx", names[r], (unsigned long)d);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  const char *bm = ckpt_arg(argc, argv, "--big-mib");
  size_t big_mib = bm ? strtoul(bm, NULL, 0) : 64;
  if (!big_mib) die("--big-mib must be > 0");

  len[R_HOLES0] = 4 * PG, len[R_HOLES1] = 4 * PG, len[R_HOLES2] = 5 * PG, len[R_HOLES3] = 4 * PG;
  len[R_NONE] = 4 * PG, len[R_GUARD] = 8 * PG, len[R_RO] = 4 * PG, len[R_WO] = 4 * PG;
  len[R_XO] = len[R_RX] = len[R_RWX] = PG;
  len[R_BIG] = big_mib * MIB, len[R_SPARSE] = 16 * MIB, len[R_UNTOUCHED] = 8 * MIB, len[R_GROWSDOWN] = 4 * PG;
  const size_t gd_gap = 8 * MIB;

  /* Reserve one arena, carve the regions out of it with MAP_FIXED and unmap
   * what is left between them, so the holes stay holes. */
  size_t total = 0;
  for (int r = 0; r < R_COUNT; r++) total += len[r] + 3 * PG;
  total += 24 * PG + gd_gap;
  char *arena = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (arena == MAP_FAILED) die("mmap arena of %zu bytes", total);
  if (munmap(arena, total)) die("munmap arena");
  char *cur = arena;

  /* holes: 24 pages, then unmap 4-5, 10, 16-19. */
  char *h = mmap(cur, 24 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (h == MAP_FAILED) die("mmap holes");
  ckpt_fill(h, 24 * PG, 1, 0);
  if (munmap(h + 4 * PG, 2 * PG) || munmap(h + 10 * PG, PG) || munmap(h + 16 * PG, 4 * PG)) die("munmap holes");
  addr[R_HOLES0] = h, addr[R_HOLES1] = h + 6 * PG, addr[R_HOLES2] = h + 11 * PG, addr[R_HOLES3] = h + 20 * PG;
  holes[0] = h + 4 * PG, hole_len[0] = 2 * PG;
  holes[1] = h + 10 * PG, hole_len[1] = PG;
  holes[2] = h + 16 * PG, hole_len[2] = 4 * PG;
  cur += 24 * PG + 2 * PG;

  for (int r = R_NONE; r < R_COUNT; r++) {
    if (r == R_GROWSDOWN) cur += gd_gap;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    if (r == R_GROWSDOWN) flags |= MAP_GROWSDOWN;
    int prot = (r == R_GUARD) ? PROT_NONE : PROT_READ | PROT_WRITE;
    addr[r] = mmap(cur, len[r], prot, flags, -1, 0);
    if (addr[r] == MAP_FAILED) die("mmap %s (%zu bytes)", names[r], len[r]);
    cur += len[r] + (size_t)(1 + r % 3) * PG;
  }

  ckpt_fill(addr[R_NONE], len[R_NONE], 2, 0);
  ckpt_fill(addr[R_RO], len[R_RO], 3, 0);
  ckpt_fill(addr[R_WO], len[R_WO], 4, 0);
  put_code(addr[R_XO], 0x0badcafe);
  put_code(addr[R_RX], 0x12345678);
  put_code(addr[R_RWX], 0x0c0de0ff);
  ckpt_fill(addr[R_BIG], len[R_BIG], 5, 0);
  for (size_t p = 0; p < len[R_SPARSE] / PG; p += 7)
    *(uint64_t *)(addr[R_SPARSE] + p * PG + (p * 8) % PG) = ckpt_word(7, p);
  ckpt_fill(addr[R_GROWSDOWN], len[R_GROWSDOWN], 6, 0);
  const uint64_t big_sum = ckpt_hash(addr[R_BIG], len[R_BIG]);

  if (mprotect(addr[R_NONE], len[R_NONE], PROT_NONE) || mprotect(addr[R_RO], len[R_RO], PROT_READ) ||
      mprotect(addr[R_WO], len[R_WO], PROT_WRITE) || mprotect(addr[R_XO], len[R_XO], PROT_EXEC) ||
      mprotect(addr[R_RX], len[R_RX], PROT_READ | PROT_EXEC) ||
      mprotect(addr[R_RWX], len[R_RWX], PROT_READ | PROT_WRITE | PROT_EXEC))
    die("mprotect");

  /* The code pages work before the dump. */
  if (((code_fn)(void *)addr[R_RX])() != 0x12345678 || ((code_fn)(void *)addr[R_XO])() != 0x0badcafe ||
      ((code_fn)(void *)addr[R_RWX])() != 0x0c0de0ff)
    die("code pages do not run");

  for (int r = 0; r < R_COUNT; r++)
    if (ckpt_maps_line(addr[r], line_before[r], sizeof line_before[r])) die("no maps line for %s", names[r]);
  if (ckpt_vmflags(addr[R_GROWSDOWN], gd_flags_before, sizeof gd_flags_before)) die("no smaps for growsdown");
  if (!ckpt_has_word(gd_flags_before, "gd")) die("growsdown region has VmFlags '%s' without gd", gd_flags_before);
  nbefore = parse_maps(maps_before);
  if (nbefore <= 0) die("parse /proc/self/maps");

  ready("big=%zuMiB sum=%016llx vmas=%d", big_mib, (unsigned long long)big_sum, nbefore);

  if (ckpt_corrupt) {
    mprotect(addr[R_RO], len[R_RO], PROT_READ | PROT_WRITE);
    addr[R_BIG][len[R_BIG] / 2 + 12345] ^= 1;
    addr[R_SPARSE][3 * PG + 100] = 1;
  }
  wait_for_term();

  /* 1. Layout: each region's line, the holes, the whole map. */
  char now[512];
  for (int r = 0; r < R_COUNT; r++) {
    if (ckpt_maps_line(addr[r], now, sizeof now))
      fail("%s: no mapping at %p any more (was '%s')", names[r], (void *)addr[r], line_before[r]);
    else if (strcmp(now, line_before[r]))
      fail("%s: maps line '%s' was '%s'", names[r], now, line_before[r]);
  }
  for (int i = 0; i < 3; i++)
    for (size_t o = 0; o < hole_len[i]; o += PG)
      if (ckpt_mapped(holes[i] + o)) {
        fail("hole %d: page %p is mapped", i, (void *)(holes[i] + o));
        break;
      }
  compare_maps();
  char gd_now[256];
  if (ckpt_vmflags(addr[R_GROWSDOWN], gd_now, sizeof gd_now) == 0 && strcmp(gd_now, gd_flags_before))
    fail("growsdown: VmFlags '%s' were '%s'", gd_now, gd_flags_before);

  /* 2. Contents. */
  for (int r = R_HOLES0; r <= R_HOLES3; r++) {
    long d = ckpt_check_fill(addr[r], len[r], 1, (uint64_t)(addr[r] - addr[R_HOLES0]) / 8);
    if (d >= 0) fail("%s: contents differ at offset %#lx", names[r], (unsigned long)d);
  }
  check_fill(R_RO, 3);
  check_fill(R_WO, 4);
  check_fill(R_GROWSDOWN, 6);
  if (mprotect(addr[R_NONE], len[R_NONE], PROT_READ)) fail("none: mprotect(PROT_READ) failed: %s", strerror(errno));
  else check_fill(R_NONE, 2);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fault;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  int v;
  if ((v = call_code("rx", addr[R_RX])) != 0x12345678 && v != -1) fail("rx: code returned %#x", v);
  if ((v = call_code("xo", addr[R_XO])) != 0x0badcafe && v != -1) fail("xo: code returned %#x", v);
  if ((v = call_code("rwx", addr[R_RWX])) != 0x0c0de0ff && v != -1) fail("rwx: code returned %#x", v);
  uint64_t sum = ckpt_hash(addr[R_BIG], len[R_BIG]);
  if (sum != big_sum) {
    size_t bad = 0;
    long first = -1;
    for (size_t p = 0; p < len[R_BIG] / PG; p++)
      if (ckpt_check_fill(addr[R_BIG] + p * PG, PG, 5, p * PG / 8) >= 0) {
        if (first < 0) first = (long)(p * PG);
        bad++;
      }
    fail("big: checksum %016llx expected %016llx; %zu of %zu pages differ, first at offset %#lx",
         (unsigned long long)sum, (unsigned long long)big_sum, bad, len[R_BIG] / PG, (unsigned long)first);
  }
  size_t sparse_bad = 0;
  long sparse_first = -1;
  for (size_t p = 0; p < len[R_SPARSE] / PG; p++) {
    char *pg = addr[R_SPARSE] + p * PG;
    uint64_t *w = (uint64_t *)(pg + (p * 8) % PG);
    uint64_t want = p % 7 == 0 ? ckpt_word(7, p) : 0, saved = *w;
    int ok = saved == want;
    *w = 0;
    ok = ok && ckpt_all_zero(pg, PG, NULL);
    *w = saved;
    if (!ok) {
      if (sparse_first < 0) sparse_first = (long)p;
      sparse_bad++;
    }
  }
  if (sparse_bad) fail("sparse: %zu pages differ, first is page %ld", sparse_bad, sparse_first);
  long nz;
  if (!ckpt_all_zero(addr[R_UNTOUCHED], len[R_UNTOUCHED], &nz)) fail("untouched: nonzero byte at offset %#lx", nz);

  /* 3. The growsdown region still grows. */
  if (!failed()) {
    char *below = addr[R_GROWSDOWN] - PG;
    if (sigsetjmp(fault_jb, 1)) {
      fail("growsdown: touching the page below %p faulted (the mapping does not grow down)",
           (void *)addr[R_GROWSDOWN]);
    } else {
      *(volatile uint64_t *)(below + PG - 8) = 42;
      char l[512];
      unsigned long s = 0;
      if (ckpt_maps_line(below, l, sizeof l) || sscanf(l, "%lx", &s) != 1 || s != (unsigned long)below)
        fail("growsdown: touching the page below did not grow the mapping");
    }
  }
  verdict();
}
