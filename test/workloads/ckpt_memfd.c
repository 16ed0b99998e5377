/* ckpt_memfd: memfds across fork and a checkpoint.
 *
 * Before READY: the parent makes memfd "ckpt-a" (64 KiB, a pattern) at fd 20
 * with its offset at 1234, mapped shared read-write; and memfd "ckpt-b"
 * (16 KiB, MFD_ALLOW_SEALING) at fd 21, sealed with F_SEAL_SHRINK, GROW,
 * WRITE and SEAL, mapped shared read-only. It forks a child, which writes
 * 0x5c at byte 100 of its mapping of ckpt-a and reports ready.
 * Verifies after restore: fd 20 and 21 name "/memfd:ckpt-a (deleted)" and
 * "/memfd:ckpt-b (deleted)", fd 20 is at offset 1234 and shared by the
 * child (one description: the child's lseek moves the parent's), both
 * memfds hold their patterns (and the child's byte), ckpt-b has the same
 * seals and refuses a write (EPERM), its mapping is named the same in
 * /proc/self/maps; a write by the parent to ckpt-a after restore is seen by
 * the child through its mapping.
 *
 * Private mappings: memfd "ckpt-c" (16 pages, a pattern) at fd 22 is mapped
 * MAP_PRIVATE read-write twice before the fork: P1 the whole of it, P2 its
 * pages 4 to 11. The parent writes its own bytes into pages 1 and 3 of P1
 * and page 0 of P2 (file page 4), reads page 0 of P1, then writes 0x77 at
 * byte 16 of every page of the memfd through fd 22 (seen by the untouched
 * pages of the mappings, not by the written ones). The child writes page 5
 * of its P1. Verifies after restore: every page of P1 and P2 holds the
 * private bytes where written (the child's page 5 in the child only) and
 * the memfd's contents elsewhere; then the parent writes 0xee at byte 8 of
 * every page through fd 22: parent and child see it in the untouched pages
 * and not in the written ones; P1 still maps "/memfd:ckpt-c (deleted)".
 *
 * --over-limit: also memfd "ckpt-huge", 2 TiB long (sparse), one page of it
 * mapped shared at offset 1 TiB (READY says "huge=ADDR"): more than cr-dump
 * saves (1 TiB), so the dump is refused.
 *
 * --selftest-corrupt: after READY the child maps a private page over the
 * start of its ckpt-a mapping.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "ckpt_common.h"

#define SA (64 * 1024)
#define SB (16 * 1024)

static unsigned char pa(size_t i) { return (unsigned char)(i * 13 + 1); }
static unsigned char pb(size_t i) { return (unsigned char)(i * 5 + 9); }

#define NC 16 /* pages of ckpt-c */
#define P2_FIRST 4
#define P2_PAGES 8

static unsigned char *p1, *p2;

static unsigned char pc(size_t o) { return (unsigned char)(o * 7 + 3); }
static unsigned char priv(int who, size_t o) { return (unsigned char)(o * (11 + 6 * (size_t)who) + 5); }

/* What ckpt-c holds at offset o: its pattern, 0x77 at byte 16 of a page
 * (written before READY) and, once `late`, 0xee at byte 8 (after restore). */
static unsigned char memc(size_t o, int late) {
  if (o % CKPT_PAGE == 16) return 0x77;
  if (late && o % CKPT_PAGE == 8) return 0xee;
  return pc(o);
}

/* Page pg of P1 (or, p2, page pg of the file through P2) as process `child`
 * should see it. The private pages: 1 and 3 of P1 (parent, before the fork),
 * 5 of P1 (child), file page 4 through P2 (parent). */
static void check_private(int child, int late) {
  for (size_t o = 0; o < NC * CKPT_PAGE; o++) {
    size_t pg = o / CKPT_PAGE;
    unsigned char want = pg == 1 || pg == 3 ? priv(0, o) : child && pg == 5 ? priv(1, o) : memc(o, late);
    if (p1[o] != want) {
      fail("%sP1 byte %zu (page %zu) is %#x, expected %#x%s", child ? "child: " : "", o, pg, p1[o], want,
           late ? " after a write through the fd" : "");
      return;
    }
  }
  for (size_t o = P2_FIRST * CKPT_PAGE; o < (P2_FIRST + P2_PAGES) * CKPT_PAGE; o++) {
    unsigned char want = o / CKPT_PAGE == P2_FIRST ? priv(2, o) : memc(o, late);
    if (p2[o - P2_FIRST * CKPT_PAGE] != want) {
      fail("%sP2 byte at file offset %zu is %#x, expected %#x%s", child ? "child: " : "", o,
           p2[o - P2_FIRST * CKPT_PAGE], want, late ? " after a write through the fd" : "");
      return;
    }
  }
}

static void link_is(int fd, const char *want) {
  char l[256];
  if (strcmp(ckpt_fd_link(fd, l, sizeof l), want)) fail("fd %d is '%s', not '%s'", fd, l, want);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  int a = memfd_create("ckpt-a", 0), b = memfd_create("ckpt-b", MFD_ALLOW_SEALING);
  if (a < 0 || b < 0) die("memfd_create");
  if (dup2(a, 20) < 0 || dup2(b, 21) < 0) die("dup2");
  close(a);
  close(b);
  if (ftruncate(20, SA) || ftruncate(21, SB)) die("ftruncate");
  unsigned char *ma = mmap(NULL, SA, PROT_READ | PROT_WRITE, MAP_SHARED, 20, 0);
  if (ma == MAP_FAILED) die("mmap a");
  for (size_t i = 0; i < SA; i++) ma[i] = pa(i);
  unsigned char tmp[SB];
  for (size_t i = 0; i < SB; i++) tmp[i] = pb(i);
  if (pwrite(21, tmp, SB, 0) != SB) die("pwrite b");
  int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
  if (fcntl(21, F_ADD_SEALS, seals)) die("F_ADD_SEALS");
  unsigned char *mb = mmap(NULL, SB, PROT_READ, MAP_SHARED, 21, 0);
  if (mb == MAP_FAILED) die("mmap b");
  if (lseek(20, 1234, SEEK_SET) != 1234) die("lseek");
  int cfd = memfd_create("ckpt-c", 0);
  if (cfd < 0 || dup2(cfd, 22) < 0) die("memfd c");
  close(cfd);
  {
    static unsigned char buf[NC * CKPT_PAGE];
    for (size_t o = 0; o < sizeof buf; o++) buf[o] = pc(o);
    if (pwrite(22, buf, sizeof buf, 0) != (ssize_t)sizeof buf) die("pwrite c");
  }
  p1 = mmap(NULL, NC * CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, 22, 0);
  p2 = mmap(NULL, P2_PAGES * CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, 22, P2_FIRST * CKPT_PAGE);
  if (p1 == MAP_FAILED || p2 == MAP_FAILED) die("mmap c private");
  for (size_t o = 0; o < CKPT_PAGE; o++) {
    p1[CKPT_PAGE + o] = priv(0, CKPT_PAGE + o);
    p1[3 * CKPT_PAGE + o] = priv(0, 3 * CKPT_PAGE + o);
    p2[o] = priv(2, P2_FIRST * CKPT_PAGE + o);
  }
  volatile unsigned char sink = p1[0]; /* a page read: the memfd's, mapped */
  (void)sink;
  for (size_t pg = 0; pg < NC; pg++)
    if (pwrite(22, "\x77", 1, (off_t)(pg * CKPT_PAGE + 16)) != 1) die("pwrite c 0x77");
  int rp[2];
  if (pipe(rp)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    close(rp[0]);
    ma[100] = 0x5c;
    for (size_t o = 5 * CKPT_PAGE; o < 6 * CKPT_PAGE; o++) p1[o] = priv(1, o);
    ckpt_write_all(rp[1], "r", 1);
    close(rp[1]);
    if (ckpt_corrupt) mmap(ma, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    wait_for_term();
    if (ma[200] != 0xa7) fail("child: the parent's write to ckpt-a after restore is not visible (%#x)", ma[200]);
    check_private(1, 1);
    if (lseek(20, 0, SEEK_CUR) != 1234) fail("child: fd 20 at %lld, not 1234", (long long)lseek(20, 0, SEEK_CUR));
    lseek(20, 4321, SEEK_SET);
    if (failed()) ckpt_say("child %d: %s\n", getpid(), ckpt_fail_buf);
    _exit(failed() ? 1 : 0);
  }
  close(rp[1]);
  char r;
  if (read(rp[0], &r, 1) != 1) die("child setup");
  close(rp[0]);
  void *huge = NULL;
  if (ckpt_flag(argc, argv, "--over-limit")) {
    int h = memfd_create("ckpt-huge", MFD_CLOEXEC);
    if (h < 0 || ftruncate(h, (off_t)(2ULL << 40))) die("memfd ckpt-huge");
    huge = mmap(NULL, CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, h, (off_t)(1ULL << 40));
    if (huge == MAP_FAILED) die("mmap ckpt-huge");
    close(h);
    *(volatile char *)huge = 1;
  }
  ready("pids=%d,%d huge=%#lx", getpid(), (int)c, (unsigned long)huge);
  wait_for_term();

  link_is(20, "/memfd:ckpt-a (deleted)");
  link_is(21, "/memfd:ckpt-b (deleted)");
  if (lseek(20, 0, SEEK_CUR) != 1234) fail("fd 20 at %lld, not 1234", (long long)lseek(20, 0, SEEK_CUR));
  for (size_t i = 0; i < SA; i++) {
    unsigned char want = i == 100 ? 0x5c : pa(i);
    if (ma[i] != want) {
      fail("ckpt-a byte %zu is %#x, expected %#x", i, ma[i], want);
      break;
    }
  }
  for (size_t i = 0; i < SB; i++)
    if (mb[i] != pb(i)) {
      fail("ckpt-b byte %zu is %#x, expected %#x", i, mb[i], pb(i));
      break;
    }
  if (fcntl(21, F_GET_SEALS) != seals) fail("ckpt-b seals %#x, expected %#x", fcntl(21, F_GET_SEALS), seals);
  errno = 0;
  if (pwrite(21, "x", 1, 0) != -1 || errno != EPERM) fail("ckpt-b took a write (errno %d)", errno);
  link_is(22, "/memfd:ckpt-c (deleted)");
  check_private(0, 0);
  for (size_t pg = 0; pg < NC; pg++)
    if (pwrite(22, "\xee", 1, (off_t)(pg * CKPT_PAGE + 8)) != 1) fail("pwrite to ckpt-c: %s", strerror(errno));
  check_private(0, 1);
  char m[512];
  if (ckpt_maps_line(p1, m, sizeof m) || !strstr(m, " rw-p ") || !ckpt_ends_with(m, "/memfd:ckpt-c (deleted)"))
    fail("P1's maps line is '%s'", m);
  ma[200] = 0xa7;
  kill(c, SIGTERM);
  int st;
  if (waitpid(c, &st, 0) != c) fail("waitpid: %s", strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st)) fail("child ended with %#x", st);
  if (lseek(20, 0, SEEK_CUR) != 4321) fail("fd 20 not shared with the child (offset %lld)", (long long)lseek(20, 0, SEEK_CUR));
  verdict();
}
