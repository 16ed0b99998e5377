/* ckpt_filemap: file-backed mappings across a checkpoint.
 *
 * In the current directory (the test's temp dir) it creates two files and
 * closes its descriptors, so the files are reachable only through the
 * mappings:
 *   filemap-private.dat  8 pages, mapped MAP_PRIVATE rw: page 1 partly
 *                        written (bytes 100..199), page 4 wholly written,
 *                        pages 0, 2, 3 read, pages 5..7 never touched;
 *                        and a second MAP_PRIVATE read-only mapping of
 *                        pages 2..4 (file offset 0x2000)
 *   filemap-shared.dat   4 pages, mapped MAP_SHARED rw, a marker written
 *                        through the mapping and msync'ed
 * Verifies: the three /proc/self/maps lines are the same as before READY;
 * the written private pages hold their private contents, every other page
 * of both private mappings equals the file; the file itself is unchanged;
 * the unwritten private pages still show the file (a write(2) to the file
 * appears in them); the shared mapping equals the file, a write through it
 * reaches the file (msync, then pread) and a pwrite to the file appears in
 * it. Every change made while checking is undone before the verdict, so the
 * files are as they were at the dump (a later restore from the same images
 * finds them unchanged).
 *
 * --selftest-corrupt: after READY write into an unwritten private page and
 * overwrite the shared marker.
 */
#include <limits.h>

#include "ckpt_common.h"

#define PG CKPT_PAGE
static const char marker[] = "shared-v1 marker";
#define MARK_OFF 5000

static char path_priv[PATH_MAX], path_shared[PATH_MAX];
static unsigned char filebuf[8 * PG];

static void make_file(const char *path, size_t len, uint64_t seed) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("create %s", path);
  ckpt_fill(filebuf, len, seed, 0);
  if (write(fd, filebuf, len) != (ssize_t)len) die("write %s", path);
  close(fd);
}

static int read_file_at(const char *path, void *buf, size_t len, off_t off) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t r = pread(fd, buf, len, off);
  close(fd);
  return r == (ssize_t)len ? 0 : -1;
}

static int write_file_at(const char *path, const void *buf, size_t len, off_t off) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t r = pwrite(fd, buf, len, off);
  fsync(fd);
  close(fd);
  return r == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  char cwd[PATH_MAX - 64];
  if (!getcwd(cwd, sizeof cwd)) die("getcwd");
  snprintf(path_priv, sizeof path_priv, "%s/filemap-private.dat", cwd);
  snprintf(path_shared, sizeof path_shared, "%s/filemap-shared.dat", cwd);
  make_file(path_priv, 8 * PG, 11);
  make_file(path_shared, 4 * PG, 12);

  int fp = open(path_priv, O_RDONLY), fs = open(path_shared, O_RDWR);
  if (fp < 0 || fs < 0) die("open data files");
  unsigned char *priv = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fp, 0);
  unsigned char *ro = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE, fp, 2 * PG);
  unsigned char *sh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fs, 0);
  if (priv == MAP_FAILED || ro == MAP_FAILED || sh == MAP_FAILED) die("mmap");
  close(fp);
  close(fs);

  memset(priv + PG + 100, 0xaa, 100);
  ckpt_fill(priv + 4 * PG, PG, 13, 0);
  volatile unsigned char sink = 0;
  sink += priv[0] + priv[2 * PG] + priv[3 * PG] + ro[0];
  (void)sink;
  memcpy(sh + MARK_OFF, marker, sizeof marker);
  if (msync(sh, 4 * PG, MS_SYNC)) die("msync");

  char lp[512], lr[512], ls[512];
  if (ckpt_maps_line(priv, lp, sizeof lp) || ckpt_maps_line(ro, lr, sizeof lr) || ckpt_maps_line(sh, ls, sizeof ls))
    die("maps lines");

  ready("private=%p shared=%p", (void *)priv, (void *)sh);
  if (ckpt_corrupt) {
    priv[2 * PG + 10] ^= 1;
    sh[MARK_OFF] = 'X';
  }
  wait_for_term();

  char now[512];
  if (ckpt_maps_line(priv, now, sizeof now) || strcmp(now, lp)) fail("private mapping: maps '%s' was '%s'", now, lp);
  if (ckpt_maps_line(ro, now, sizeof now) || strcmp(now, lr)) fail("read-only mapping: maps '%s' was '%s'", now, lr);
  if (ckpt_maps_line(sh, now, sizeof now) || strcmp(now, ls)) fail("shared mapping: maps '%s' was '%s'", now, ls);
  if (failed()) verdict(); /* the mappings are not where they were; touching them would fault */

  /* The private file is unchanged. */
  if (read_file_at(path_priv, filebuf, 8 * PG, 0)) fail("cannot read %s", path_priv);
  else if (ckpt_check_fill(filebuf, 8 * PG, 11, 0) >= 0)
    fail("%s changed at offset %ld", path_priv, ckpt_check_fill(filebuf, 8 * PG, 11, 0));

  /* Private mapping: pages 1 and 4 private, the rest as the file. */
  for (int p = 0; p < 8; p++) {
    unsigned char *pg = priv + p * PG;
    long d = -1;
    if (p == 4)
      d = ckpt_check_fill(pg, PG, 13, 0);
    else if (p == 1) {
      for (int i = 100; i < 200 && d < 0; i++)
        if (pg[i] != 0xaa) d = i;
      for (int i = 0; i < 100 && d < 0; i++)
        if (pg[i] != filebuf[PG + i]) d = i;
      for (int i = 200; i < (int)PG && d < 0; i++)
        if (pg[i] != filebuf[PG + i]) d = i;
    } else
      d = ckpt_check_fill(pg, PG, 11, (uint64_t)p * PG / 8);
    if (d >= 0) fail("private mapping page %d differs at byte %ld", p, d);
  }
  long d = ckpt_check_fill(ro, 3 * PG, 11, 2 * PG / 8);
  if (d >= 0) fail("read-only mapping (file offset 0x2000) differs at byte %ld", d);

  /* Unwritten private pages still show the file: change page 6 of the file. */
  if (!failed()) {
    unsigned char probe[16], orig[16];
    memcpy(orig, filebuf + 6 * PG + 64, 16);
    for (int i = 0; i < 16; i++) probe[i] = (unsigned char)~orig[i];
    if (write_file_at(path_priv, probe, 16, 6 * PG + 64)) fail("cannot write %s", path_priv);
    else {
      if (memcmp(priv + 6 * PG + 64, probe, 16))
        fail("a write to the file does not show in the never-written private page 6 (restored as a copy?)");
      if (write_file_at(path_priv, orig, 16, 6 * PG + 64)) fail("cannot restore %s", path_priv);
    }
  }

  /* Shared mapping == file, both ways. */
  if (read_file_at(path_shared, filebuf, 4 * PG, 0)) fail("cannot read %s", path_shared);
  else {
    if (memcmp(sh, filebuf, 4 * PG)) fail("shared mapping differs from %s", path_shared);
    static unsigned char expect[4 * PG];
    ckpt_fill(expect, 4 * PG, 12, 0);
    memcpy(expect + MARK_OFF, marker, sizeof marker);
    if (memcmp(filebuf + MARK_OFF, marker, sizeof marker)) fail("shared marker lost in the file");
    else if (memcmp(filebuf, expect, 4 * PG)) fail("%s differs from what was written before the dump", path_shared);
    memcpy(filebuf, expect, 4 * PG);
  }
  if (!failed()) {
    char v2[32];
    int n = snprintf(v2, sizeof v2, "shared-v2 pid %d", (int)getpid());
    unsigned char back[32];
    memcpy(sh + 9000, v2, (size_t)n);
    if (msync(sh, 4 * PG, MS_SYNC)) fail("msync: %s", strerror(errno));
    if (read_file_at(path_shared, back, (size_t)n, 9000) || memcmp(back, v2, (size_t)n))
      fail("a write through the shared mapping did not reach the file");
    const char w[] = "written by pwrite";
    if (write_file_at(path_shared, w, sizeof w, 12000) || memcmp(sh + 12000, w, sizeof w))
      fail("a pwrite to the shared file does not show in the mapping");
    /* Undo both. */
    memcpy(sh + 9000, filebuf + 9000, (size_t)n);
    memcpy(sh + 12000, filebuf + 12000, sizeof w);
    if (msync(sh, 4 * PG, MS_SYNC)) fail("msync: %s", strerror(errno));
  }
  verdict();
}
