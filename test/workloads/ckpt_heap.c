/* ckpt_heap: malloc and the program break across a checkpoint.
 *
 * Before READY: 200 malloc'd blocks of many sizes (small bins, large bins,
 * and 256 KiB blocks above the mmap threshold), each filled with its own
 * pattern, every third freed again (so the allocator holds free lists), and
 * the program break extended once with sbrk. Records sbrk(0), the [heap]
 * line of /proc/self/maps, and start_brk (field 47 of /proc/self/stat).
 * Verifies (before any allocation in the check): sbrk(0) unchanged,
 * start_brk unchanged, the heap line unchanged; then sbrk(+64 KiB) returns
 * exactly the old break (the heap is extended in place, contiguous), the
 * new memory is usable and [heap] now ends at the new break; sbrk(-64 KiB)
 * gives it back; every block still holds its pattern; and the allocator
 * still works (free everything, allocate and check 4 MiB in small blocks,
 * realloc growth).
 *
 * --selftest-corrupt: after READY flip a byte in one block and move the
 * break by one page.
 */
#include "ckpt_common.h"

#define NBLK 200

static unsigned char *blk[NBLK];
static size_t blk_len[NBLK];

static size_t size_of(int i) {
  if (i % 50 == 49) return 256 * 1024 + (size_t)i; /* mmap'd chunks */
  if (i % 10 == 9) return 4096 + (size_t)i * 37;
  return 8 + (size_t)(i * 13) % 1000;
}

static void fill(int i) {
  for (size_t j = 0; j < blk_len[i]; j++) blk[i][j] = (unsigned char)(i * 31 + j * 7 + (j >> 8));
}

static long check(int i) {
  for (size_t j = 0; j < blk_len[i]; j++)
    if (blk[i][j] != (unsigned char)(i * 31 + j * 7 + (j >> 8))) return (long)j;
  return -1;
}

static int stat_field(int field, unsigned long *out) {
  char b[4096];
  if (ckpt_read_file("/proc/self/stat", b, sizeof b) <= 0) return -1;
  char *p = strrchr(b, ')');
  if (!p) return -1;
  p += 2; /* field 3 */
  for (int f = 3; f < field; f++) {
    p = strchr(p, ' ');
    if (!p) return -1;
    p++;
  }
  *out = strtoul(p, NULL, 10);
  return 0;
}

static int heap_line(char *out, size_t n) {
  static char b[1 << 16];
  if (ckpt_read_file("/proc/self/maps", b, sizeof b) < 0) return -1;
  char *h = strstr(b, "[heap]");
  if (!h) return -1;
  char *s = h;
  while (s > b && s[-1] != '\n') s--;
  size_t l = (size_t)(h + 6 - s);
  if (l >= n) l = n - 1;
  memcpy(out, s, l);
  out[l] = 0;
  return 0;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  for (int i = 0; i < NBLK; i++) {
    blk_len[i] = size_of(i);
    blk[i] = malloc(blk_len[i]);
    if (!blk[i]) die("malloc %zu", blk_len[i]);
    fill(i);
  }
  for (int i = 0; i < NBLK; i += 3) {
    free(blk[i]);
    blk[i] = NULL;
  }
  /* Our own extension of the break, beyond malloc's. */
  unsigned char *own = sbrk(3 * 4096);
  if (own == (void *)-1) die("sbrk");
  for (int j = 0; j < 3 * 4096; j++) own[j] = (unsigned char)(j ^ 0xa5);

  void *brk0 = sbrk(0);
  unsigned long start_brk0;
  if (stat_field(47, &start_brk0)) die("read /proc/self/stat");
  char heap0[256];
  if (heap_line(heap0, sizeof heap0)) die("no [heap] in /proc/self/maps");

  ready("brk=%p start_brk=%#lx", brk0, start_brk0);
  if (ckpt_corrupt) {
    blk[7][3] ^= 0xff;
    sbrk(4096);
  }
  wait_for_term();

  /* No allocation before these. */
  void *brk1 = sbrk(0);
  unsigned long start_brk1 = 0;
  char heap1[256];
  if (brk1 != brk0) fail("program break %p expected %p", brk1, brk0);
  if (stat_field(47, &start_brk1) || start_brk1 != start_brk0)
    fail("start_brk %#lx expected %#lx", start_brk1, start_brk0);
  if (heap_line(heap1, sizeof heap1)) fail("no [heap] line in /proc/self/maps");
  else if (strcmp(heap1, heap0)) fail("[heap] line '%s' was '%s'", heap1, heap0);

  if (!failed()) {
    unsigned char *more = sbrk(64 * 1024);
    if (more == (void *)-1) fail("sbrk(+64 KiB) failed: %s", strerror(errno));
    else {
      if ((void *)more != brk0) fail("sbrk(+64 KiB) returned %p, not the old break %p", (void *)more, brk0);
      memset(more, 0x3c, 64 * 1024);
      for (int j = 0; j < 64 * 1024; j += 4096)
        if (more[j] != 0x3c) fail("new heap memory at %p not usable", (void *)(more + j));
      unsigned long hs, he;
      if (heap_line(heap1, sizeof heap1) || sscanf(heap1, "%lx-%lx", &hs, &he) != 2)
        fail("no [heap] after sbrk");
      else if (he != (((unsigned long)more + 64 * 1024 + 4095) & ~4095UL))
        fail("[heap] '%s' does not end at the new break %p", heap1, (void *)(more + 64 * 1024));
      if (sbrk(-64 * 1024) == (void *)-1 || sbrk(0) != brk0) fail("sbrk(-64 KiB) did not return to %p", brk0);
    }
  }
  for (int j = 0; j < 3 * 4096; j++)
    if (own[j] != (unsigned char)(j ^ 0xa5)) {
      fail("own sbrk area differs at byte %d", j);
      break;
    }
  for (int i = 0; i < NBLK; i++) {
    long d;
    if (blk[i] && (d = check(i)) >= 0) fail("block %d (%zu bytes at %p) differs at byte %ld", i, blk_len[i], (void *)blk[i], d);
  }

  /* The allocator goes on working. */
  for (int i = 0; i < NBLK; i++) free(blk[i]);
  static unsigned char *small[8192];
  for (int i = 0; i < 8192; i++) {
    small[i] = malloc(512);
    if (!small[i]) {
      fail("malloc(512) #%d failed", i);
      break;
    }
    memset(small[i], i & 0xff, 512);
  }
  for (int i = 0; i < 8192 && small[i]; i++)
    if (small[i][0] != (i & 0xff) || small[i][511] != (i & 0xff)) {
      fail("small block %d overwritten", i);
      break;
    }
  for (int i = 0; i < 8192; i++) free(small[i]);
  unsigned char *r = NULL;
  for (size_t sz = 16; sz <= 4 * 1024 * 1024; sz *= 2) {
    unsigned char *n = realloc(r, sz);
    if (!n) {
      fail("realloc to %zu failed", sz);
      break;
    }
    r = n;
    r[sz - 1] = 0x77;
    if (r[sz / 2 - 1] != 0x77 && sz > 16) {
      fail("realloc to %zu lost data", sz);
      break;
    }
  }
  free(r);
  verdict();
}
