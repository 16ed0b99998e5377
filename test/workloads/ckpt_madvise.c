/* ckpt_madvise: madvise flags that /proc/self/smaps shows in VmFlags.
 *
 * One region per advice, each 4 pages filled with its own pattern and
 * separated from the others by unmapped holes:
 *   MADV_DONTFORK "dc", MADV_DONTDUMP "dd", MADV_WIPEONFORK "wf",
 *   MADV_HUGEPAGE "hg", MADV_NOHUGEPAGE "nh", MADV_MERGEABLE "mg",
 *   MADV_RANDOM "rr", MADV_SEQUENTIAL "sr", and one with dc+dd+rr.
 * An advice the kernel refuses (EINVAL: not configured) is skipped and
 * named in the READY line ("skipped=mg,...").
 * Verifies: each region's VmFlags line and maps line are exactly as before
 * READY, and the contents (a dontdump or wipeonfork region keeps its data:
 * a restore is not a fork or a core dump).
 *
 * --selftest-corrupt: after READY reset the "rr" region to MADV_NORMAL and
 * the "dd" region to MADV_DODUMP.
 */
#include "ckpt_common.h"

#define PG CKPT_PAGE
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

struct region {
  const char *flag;
  int advice[3];
  char *addr;
  int skipped;
  char vmflags[256];
  char maps[512];
};

static struct region R[] = {
    {"dc", {MADV_DONTFORK, -1, -1}, 0, 0, "", ""},
    {"dd", {MADV_DONTDUMP, -1, -1}, 0, 0, "", ""},
    {"wf", {MADV_WIPEONFORK, -1, -1}, 0, 0, "", ""},
    {"hg", {MADV_HUGEPAGE, -1, -1}, 0, 0, "", ""},
    {"nh", {MADV_NOHUGEPAGE, -1, -1}, 0, 0, "", ""},
    {"mg", {MADV_MERGEABLE, -1, -1}, 0, 0, "", ""},
    {"rr", {MADV_RANDOM, -1, -1}, 0, 0, "", ""},
    {"sr", {MADV_SEQUENTIAL, -1, -1}, 0, 0, "", ""},
    {"dc+dd+rr", {MADV_DONTFORK, MADV_DONTDUMP, MADV_RANDOM}, 0, 0, "", ""},
};
#define NR ((int)(sizeof R / sizeof R[0]))

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  size_t span = (size_t)NR * 6 * PG;
  char *arena = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (arena == MAP_FAILED || munmap(arena, span)) die("reserve arena");
  char skipped[128] = "";
  for (int i = 0; i < NR; i++) {
    R[i].addr = mmap(arena + (size_t)i * 6 * PG + PG, 4 * PG, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (R[i].addr == MAP_FAILED) die("mmap region %s", R[i].flag);
    ckpt_fill(R[i].addr, 4 * PG, 100 + (uint64_t)i, 0);
    for (int a = 0; a < 3 && R[i].advice[a] >= 0; a++)
      if (madvise(R[i].addr, 4 * PG, R[i].advice[a])) {
        if (errno != EINVAL) die("madvise %s", R[i].flag);
        R[i].skipped = 1;
      }
    if (R[i].skipped) {
      ckpt_append(skipped, sizeof skipped, "%s%s", *skipped ? "," : "", R[i].flag);
      continue;
    }
    if (ckpt_vmflags(R[i].addr, R[i].vmflags, sizeof R[i].vmflags)) die("no smaps entry for %s", R[i].flag);
    /* The flag (or each of a combination) shows. */
    char want[32];
    snprintf(want, sizeof want, "%s", R[i].flag);
    for (char *tok = strtok(want, "+"); tok; tok = strtok(NULL, "+"))
      if (!ckpt_has_word(R[i].vmflags, tok)) die("region %s: VmFlags '%s' lack %s", R[i].flag, R[i].vmflags, tok);
    if (ckpt_maps_line(R[i].addr, R[i].maps, sizeof R[i].maps)) die("no maps line for %s", R[i].flag);
  }

  ready("regions=%d skipped=%s", NR, *skipped ? skipped : "none");
  if (ckpt_corrupt) {
    madvise(R[6].addr, 4 * PG, MADV_NORMAL);
    madvise(R[1].addr, 4 * PG, MADV_DODUMP);
  }
  wait_for_term();

  for (int i = 0; i < NR; i++) {
    if (R[i].skipped) continue;
    char now[512];
    if (ckpt_maps_line(R[i].addr, now, sizeof now)) {
      fail("%s: region at %p is gone", R[i].flag, (void *)R[i].addr);
      continue;
    }
    if (strcmp(now, R[i].maps)) fail("%s: maps '%s' was '%s'", R[i].flag, now, R[i].maps);
    if (ckpt_vmflags(R[i].addr, now, sizeof now)) fail("%s: no smaps entry", R[i].flag);
    else if (strcmp(now, R[i].vmflags)) fail("%s: VmFlags '%s' were '%s'", R[i].flag, now, R[i].vmflags);
    long d = ckpt_check_fill(R[i].addr, 4 * PG, 100 + (uint64_t)i, 0);
    if (d >= 0) fail("%s: contents differ at offset %ld", R[i].flag, d);
  }
  verdict();
}
