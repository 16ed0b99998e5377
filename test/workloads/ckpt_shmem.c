/* ckpt_shmem: shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) across
 * fork and a checkpoint.
 *
 * Before READY: the parent maps S1 (1 MiB) and S2 (256 KiB) shared and
 * anonymous and S3 (64 KiB) likewise, and S4 (128 KiB): a POSIX shared
 * memory object (shm_open) mapped shared and then unlinked (a deleted tmpfs
 * file, as a POSIX semaphore is after sem_unlink); fills each with a
 * pattern, forks one child; the child unmaps the first 64 KiB of S2 (so it maps S2 at an
 * offset) and unmaps S3 (the parent's alone), writes its own pattern into
 * S1 [512 KiB, 768 KiB) and reports ready through a pipe, closed after.
 * Verifies after restore: each process sees every byte of its mappings as
 * expected (the child's writes are visible to the parent); the mappings are
 * still shared anonymous memory ("/dev/zero (deleted)" in maps, as before);
 * a write by the parent after restore is seen by the child, and one by the
 * child is seen by the parent (one object, still shared), in S1 and in S4.
 *
 * S6 maps the same POSIX shared memory object as S4, MAP_PRIVATE (before the
 * unlink); the parent writes its own bytes into page 3 of S6. After
 * restore, S6 page 3 holds them and every other page of S6 what S4 holds
 * (the object), also the parent's write to S4 after restore.
 *
 * --big-mib=N: also S5, N MiB of shared anonymous memory mapped before the
 * fork, mostly holes (ckpt_sparse_owner: the parent and the child each
 * write some pages before READY, the rest is never touched). After
 * restore both check it by checksum, and a write by the parent is seen by
 * the child and one by the child by the parent.
 *
 * --selftest-corrupt: after READY the child maps a fresh private page over
 * the start of its S1.
 */
#include <sys/wait.h>

#include "ckpt_common.h"

#define S1 (1024 * 1024)
#define S2 (256 * 1024)
#define S3 (64 * 1024)
#define S4 (128 * 1024)
#define OFF2 (64 * 1024)

#define SEED5 0x55aa

static unsigned char *s1, *s2, *s3, *s4, *s5, *s6;
static size_t n5; /* S5's pages, 0 without --big-mib */
static unsigned char *mark5; /* its marker page */

static unsigned char pat(int region, size_t i, int child) {
  return (unsigned char)(ckpt_word((uint64_t)region * 7919 + (uint64_t)child, i / 8) >> (8 * (i % 8)));
}

static int in_child_part(size_t i) { return i >= 512 * 1024 && i < 768 * 1024; }

static void check_region(const char *name, const unsigned char *p, size_t len, int region, size_t base) {
  for (size_t i = 0; i < len; i++) {
    size_t at = base + i;
    if ((region == 1 || region == 4) && (at == 100 || at == 200)) continue; /* the markers written after restore */
    unsigned char want = pat(region, at, region == 1 && in_child_part(at));
    if (p[i] != want) {
      fail("%s byte %zu is %#x, expected %#x", name, at, p[i], want);
      return;
    }
  }
}

/* The name /proc/self/maps gives the mapping that holds p. */
static void maps_entry(const void *p, char *out, size_t size) {
  FILE *f = fopen("/proc/self/maps", "r");
  out[0] = 0;
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
    if ((unsigned long)p >= lo && (unsigned long)p < hi) {
      char *name = strchr(line, '/');
      snprintf(out, size, "%s", name ? name : "");
      char *nl = strchr(out, '\n');
      if (nl) *nl = 0;
      break;
    }
  }
  fclose(f);
}

static unsigned char *map_shared(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  return p;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  const char *big = ckpt_arg(argc, argv, "--big-mib");
  if (big) {
    n5 = (size_t)atol(big) * (1024 * 1024 / CKPT_PAGE);
    if (n5 < 64) die("--big-mib: at least 1");
    s5 = map_shared(n5 * CKPT_PAGE);
    mark5 = s5 + CKPT_SPARSE_MARK_PAGE * CKPT_PAGE;
    ckpt_sparse_fill(s5, n5, 0, SEED5);
  }
  s1 = map_shared(S1);
  s2 = map_shared(S2);
  s3 = map_shared(S3);
  for (size_t i = 0; i < S1; i++) s1[i] = pat(1, i, 0);
  for (size_t i = 0; i < S2; i++) s2[i] = pat(2, i, 0);
  for (size_t i = 0; i < S3; i++) s3[i] = pat(3, i, 0);
  char shm_name[64];
  snprintf(shm_name, sizeof shm_name, "/ckpt_shmem_%d", getpid());
  int sfd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (sfd < 0) die("shm_open");
  if (ftruncate(sfd, S4)) die("ftruncate");
  s4 = mmap(NULL, S4, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
  if (s4 == MAP_FAILED) die("mmap shm");
  s6 = mmap(NULL, S4, PROT_READ | PROT_WRITE, MAP_PRIVATE, sfd, 0);
  if (s6 == MAP_FAILED) die("mmap shm private");
  close(sfd);
  shm_unlink(shm_name);
  for (size_t i = 0; i < S4; i++) s4[i] = pat(4, i, 0);
  for (size_t i = 3 * CKPT_PAGE; i < 4 * CKPT_PAGE; i++) s6[i] = pat(6, i, 0);
  int rp[2];
  if (pipe(rp)) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(rp[0]);
    munmap(s2, OFF2);
    munmap(s3, S3);
    for (size_t i = 512 * 1024; i < 768 * 1024; i++) s1[i] = pat(1, i, 1);
    if (s5) ckpt_sparse_fill(s5, n5, 1, SEED5);
    ckpt_write_all(rp[1], "r", 1);
    close(rp[1]);
    if (ckpt_corrupt) {
      /* Wait for the parent's READY; a write to fd 3 is not ours. */
      mmap(s1, CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    }
    wait_for_term();
    check_region("child S1", s1, S1, 1, 0);
    check_region("child S2", s2 + OFF2, S2 - OFF2, 2, OFF2);
    check_region("child S4", s4, S4, 4, 0);
    if (s1[100] != 0xa5) fail("child: the parent's write after restore is not visible (%#x)", s1[100]);
    if (s4[100] != 0xa6) fail("child: the parent's write to S4 after restore is not visible (%#x)", s4[100]);
    if (s5) {
      ckpt_sparse_check("child S5", s5, n5, SEED5);
      if (mark5[100] != 0xa7) fail("child: the parent's write to S5 after restore is not visible (%#x)", mark5[100]);
      mark5[200] = 0x5c;
    }
    s1[200] = 0x5a;
    s4[200] = 0x5b;
    char name[256];
    maps_entry(s1, name, sizeof name);
    if (strcmp(name, "/dev/zero (deleted)")) fail("child S1 maps '%s'", name);
    if (failed()) {
      ckpt_say("child %d: %s\n", getpid(), ckpt_fail_buf);
      _exit(1);
    }
    _exit(0);
  }
  close(rp[1]);
  char c;
  if (read(rp[0], &c, 1) != 1) die("child setup");
  /* And its end closed (EOF): READY means no fd changes after it. */
  if (read(rp[0], &c, 1) != 0) die("child setup: its end of the pipe");
  close(rp[0]);
  char n1[256], n2[256];
  maps_entry(s1, n1, sizeof n1);
  maps_entry(s2, n2, sizeof n2);
  ready("pids=%d,%d", getpid(), (int)child);
  wait_for_term();

  check_region("S1", s1, S1, 1, 0);
  check_region("S2", s2, S2, 2, 0);
  check_region("S3", s3, S3, 3, 0);
  check_region("S4", s4, S4, 4, 0);
  if (s5) {
    ckpt_sparse_check("S5", s5, n5, SEED5);
    mark5[100] = 0xa7;
  }
  char m[256];
  maps_entry(s1, m, sizeof m);
  if (strcmp(m, n1) || strcmp(m, "/dev/zero (deleted)")) fail("S1 maps '%s', was '%s'", m, n1);
  maps_entry(s2, m, sizeof m);
  if (strcmp(m, n2)) fail("S2 maps '%s', was '%s'", m, n2);
  s1[100] = 0xa5;
  s4[100] = 0xa6;
  for (size_t i = 0; i < S4; i++) {
    int own = i / CKPT_PAGE == 3;
    unsigned char want = own ? pat(6, i, 0) : s4[i];
    if (s6[i] != want) {
      fail("S6 (S4's object, private) byte %zu is %#x, expected %#x (%s)", i, s6[i], want,
           own ? "its own page" : "the object's");
      break;
    }
  }
  kill(child, SIGTERM);
  int st;
  if (waitpid(child, &st, 0) != child) fail("waitpid child: %s", strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("child ended with status %#x", st);
  if (s1[200] != 0x5a) fail("the child's write after restore is not visible (%#x)", s1[200]);
  if (s4[200] != 0x5b) fail("the child's write to S4 after restore is not visible (%#x)", s4[200]);
  if (s5 && mark5[200] != 0x5c) fail("the child's write to S5 after restore is not visible (%#x)", mark5[200]);
  verdict();
}
