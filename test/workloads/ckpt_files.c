/* ckpt_files: open files across a checkpoint.
 *
 * In the current directory (the test's temp dir), at chosen descriptor
 * numbers:
 *   7    append.log   O_WRONLY|O_APPEND, 13 bytes, offset 13
 *   20   rw.dat       O_RDWR, offset 1234;  25 = dup(20) (shares it);
 *   26   rw.dat       opened again O_RDONLY, offset 77 (its own offset)
 *   21   wo.dat       O_WRONLY|O_SYNC, offset 4096
 *   22   dsync.dat    O_RDWR|O_DSYNC, offset 10
 *   23   nonblock.dat O_RDONLY|O_NONBLOCK, FD_CLOEXEC, offset 5
 *   24   direct.dat   O_RDWR|O_DIRECT, offset 4096 (skipped, and said so in
 *                     the READY line, where the filesystem refuses O_DIRECT)
 *   27   "name with space.dat" O_RDONLY|O_CLOEXEC
 *   30   dir.d        O_RDONLY|O_DIRECTORY|O_CLOEXEC (entries a, b, c)
 *   40   /dev/null O_WRONLY, 41 /dev/zero, 42 /dev/urandom (FD_CLOEXEC)
 *   100  ro.dat       O_RDONLY|O_NOATIME, offset 100
 *   0 /dev/null, 1 and 2 the output file (one open file description)
 * Verifies: the set of open descriptors is the same (nothing extra left by
 * the restore, nothing missing); for each: F_GETFL, F_GETFD, the offset,
 * readlink(/proc/self/fd/N), device/inode/mode and /proc/self/fdinfo/N all
 * identical; 20/25 and 1/2 still share one file description (kcmp) and
 * 26 does not share with 20; every file's contents unchanged; I/O works: a
 * write through 7 goes to the end of the file, reads at the restored
 * offsets return the right bytes (also through O_DIRECT), writes through 21,
 * getdents on 30 lists a, b, c, /dev/null takes a write, /dev/zero reads
 * zeros, /dev/urandom reads. The checks leave every file as it was at the
 * dump (the append is truncated away, 21 rewrites identical bytes), so a
 * restore from the same images after a --leave-running dump still finds the
 * files unchanged.
 *
 * --selftest-corrupt: after READY move 20's offset, drop O_APPEND from 7,
 * put /dev/null at 100 and drop FD_CLOEXEC from 23.
 */
#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "ckpt_common.h"

#define PG CKPT_PAGE

struct fdrec {
  int fd;
  int fl, fdfl;
  off_t off;
  char link[512], fdinfo[1024];
  dev_t dev;
  ino_t ino;
  mode_t mode;
};
#define MAXFD 32
static struct fdrec rec[MAXFD];
static int nrec;
static int fdlist_before[64], nfd_before;
static int have_direct = 1;

static int list_fds(int *out, int max) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int self = dirfd(d), n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < max) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != self && fd != 3) out[n++] = fd; /* 3: the ready channel, closed by ready() */
  }
  closedir(d);
  /* sort */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
      int t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}

static void take(int fd, struct fdrec *r) {
  memset(r, 0, sizeof *r);
  r->fd = fd;
  r->fl = fcntl(fd, F_GETFL);
  r->fdfl = fcntl(fd, F_GETFD);
  r->off = lseek(fd, 0, SEEK_CUR);
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  ssize_t l = readlink(p, r->link, sizeof r->link - 1);
  r->link[l > 0 ? l : 0] = 0;
  snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
  ckpt_read_file(p, r->fdinfo, sizeof r->fdinfo);
  for (char *c = r->fdinfo; *c; c++)
    if (*c == '\n') *c = ' ';
  struct stat st;
  if (fstat(fd, &st) == 0) r->dev = st.st_dev, r->ino = st.st_ino, r->mode = st.st_mode;
}

static void make(const char *name, size_t len, uint64_t seed) {
  static unsigned char buf[64 * 1024];
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("create %s", name);
  ckpt_fill(buf, len, seed, 0);
  if (write(fd, buf, len) != (ssize_t)len) die("write %s", name);
  close(fd);
}

/* open at a fixed number */
static void open_at(int want, const char *path, int flags) {
  int fd = open(path, flags, 0644);
  if (fd < 0) die("open %s", path);
  if (fd != want) {
    int cloexec = flags & O_CLOEXEC;
    if (cloexec ? dup3(fd, want, O_CLOEXEC) < 0 : dup2(fd, want) < 0) die("dup2 %d", want);
    close(fd);
  }
}

static void expect_bytes(int fd, const char *what, size_t n, uint64_t seed, off_t at) {
  static unsigned char buf[64], want[64 + 8];
  ssize_t r = read(fd, buf, n);
  /* the pattern's bytes at [at, at+n) */
  ckpt_fill(want, 64 + 8, seed, (uint64_t)at / 8);
  if (r != (ssize_t)n) fail("%s: read %zd of %zu bytes (%s)", what, r, n, r < 0 ? strerror(errno) : "short");
  else if (memcmp(buf, want + at % 8, n)) fail("%s: read at offset %ld returned the wrong bytes", what, (long)at);
}

static long file_diff(const char *name, size_t len, uint64_t seed) {
  static unsigned char buf[64 * 1024];
  int fd = open(name, O_RDONLY);
  if (fd < 0) return -2;
  ssize_t r = read(fd, buf, sizeof buf);
  close(fd);
  if (r != (ssize_t)len) return -3;
  return ckpt_check_fill(buf, len, seed, 0);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  make("rw.dat", 8192, 21);
  make("wo.dat", 8192, 22);
  make("dsync.dat", 4096, 23);
  make("nonblock.dat", 4096, 24);
  make("direct.dat", 65536, 25);
  make("name with space.dat", 4096, 26);
  make("ro.dat", 4096, 27);
  int a = open("append.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (a < 0 || write(a, "0123456789", 10) != 10) die("append.log");
  close(a);
  if (mkdir("dir.d", 0755) && errno != EEXIST) die("mkdir");
  for (const char *n = "abc"; *n; n++) {
    char p[16];
    snprintf(p, sizeof p, "dir.d/%c", *n);
    int f = open(p, O_WRONLY | O_CREAT, 0644);
    if (f < 0) die("create %s", p);
    close(f);
  }

  open_at(7, "append.log", O_WRONLY | O_APPEND);
  if (write(7, "abc", 3) != 3) die("append");
  open_at(20, "rw.dat", O_RDWR);
  if (lseek(20, 1234, SEEK_SET) != 1234) die("lseek");
  if (dup2(20, 25) != 25) die("dup2 25");
  open_at(26, "rw.dat", O_RDONLY);
  if (lseek(26, 77, SEEK_SET) != 77) die("lseek");
  open_at(21, "wo.dat", O_WRONLY | O_SYNC);
  {
    static unsigned char b[4096];
    ckpt_fill(b, 4096, 22, 0);
    if (write(21, b, 4096) != 4096) die("write wo.dat");
  }
  open_at(22, "dsync.dat", O_RDWR | O_DSYNC);
  if (lseek(22, 10, SEEK_SET) != 10) die("lseek");
  open_at(23, "nonblock.dat", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  {
    char b[5];
    if (read(23, b, 5) != 5) die("read nonblock.dat");
  }
  int dfd = open("direct.dat", O_RDWR | O_DIRECT);
  if (dfd < 0 && errno == EINVAL)
    have_direct = 0;
  else if (dfd < 0)
    die("open direct.dat");
  else {
    if (dup2(dfd, 24) != 24) die("dup2 24");
    close(dfd);
    void *b = NULL;
    if (posix_memalign(&b, 4096, 4096) || read(24, b, 4096) != 4096) die("O_DIRECT read");
    free(b);
  }
  open_at(27, "name with space.dat", O_RDONLY | O_CLOEXEC);
  open_at(30, "dir.d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  open_at(40, "/dev/null", O_WRONLY);
  open_at(41, "/dev/zero", O_RDONLY);
  open_at(42, "/dev/urandom", O_RDONLY | O_CLOEXEC);
  open_at(100, "ro.dat", O_RDONLY | O_NOATIME);
  {
    char b[100];
    if (read(100, b, 100) != 100) die("read ro.dat");
  }

  nfd_before = list_fds(fdlist_before, 64);
  if (nfd_before <= 0) die("list /proc/self/fd");
  for (int i = 0; i < nfd_before && nrec < MAXFD; i++) take(fdlist_before[i], &rec[nrec++]);

  ready("fds=%d odirect=%s", nfd_before, have_direct ? "yes" : "unsupported");
  if (ckpt_corrupt) {
    lseek(20, 1, SEEK_CUR);
    fcntl(7, F_SETFL, 0);
    dup2(40, 100);
    fcntl(23, F_SETFD, 0);
  }
  wait_for_term();

  /* 1. The same descriptors, each the same. */
  int now[64];
  int n = list_fds(now, 64);
  if (n != nfd_before || memcmp(now, fdlist_before, sizeof(int) * (size_t)n)) {
    char a1[256] = "", b1[256] = "";
    for (int i = 0; i < n; i++) ckpt_append(a1, sizeof a1, "%s%d", i ? "," : "", now[i]);
    for (int i = 0; i < nfd_before; i++) ckpt_append(b1, sizeof b1, "%s%d", i ? "," : "", fdlist_before[i]);
    fail("open descriptors %s were %s", a1, b1);
  }
  for (int i = 0; i < nrec; i++) {
    struct fdrec r, *b = &rec[i];
    take(b->fd, &r);
    if (r.fl != b->fl) fail("fd %d: F_GETFL %#o was %#o", b->fd, (unsigned)r.fl, (unsigned)b->fl);
    if (r.fdfl != b->fdfl) fail("fd %d: F_GETFD %d was %d", b->fd, r.fdfl, b->fdfl);
    if (r.off != b->off) fail("fd %d: offset %ld was %ld", b->fd, (long)r.off, (long)b->off);
    if (strcmp(r.link, b->link)) fail("fd %d: '%s' was '%s'", b->fd, r.link, b->link);
    if (r.dev != b->dev || r.ino != b->ino || r.mode != b->mode)
      fail("fd %d: dev/ino/mode %lx/%lu/%o were %lx/%lu/%o", b->fd, (unsigned long)r.dev, (unsigned long)r.ino,
           (unsigned)r.mode, (unsigned long)b->dev, (unsigned long)b->ino, (unsigned)b->mode);
    if (strcmp(r.fdinfo, b->fdinfo)) fail("fd %d: fdinfo '%s' was '%s'", b->fd, r.fdinfo, b->fdinfo);
  }
  pid_t me = getpid();
  if (syscall(SYS_kcmp, me, me, KCMP_FILE, 20, 25) != 0) fail("fd 20 and 25 no longer share a file description");
  if (syscall(SYS_kcmp, me, me, KCMP_FILE, 1, 2) != 0) fail("fd 1 and 2 no longer share a file description");
  if (syscall(SYS_kcmp, me, me, KCMP_FILE, 20, 26) == 0) fail("fd 20 and 26 share a file description (they did not)");

  /* 2. File contents unchanged. */
  struct {
    const char *n;
    size_t len;
    uint64_t seed;
  } files[] = {{"rw.dat", 8192, 21},       {"wo.dat", 8192, 22}, {"dsync.dat", 4096, 23},
               {"nonblock.dat", 4096, 24}, {"direct.dat", 65536, 25}, {"name with space.dat", 4096, 26},
               {"ro.dat", 4096, 27}};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    long d = file_diff(files[i].n, files[i].len, files[i].seed);
    if (d != -1) fail("%s: contents changed (%ld)", files[i].n, d);
  }

  if (failed()) verdict(); /* descriptors are not what they were: I/O below would mislead */

  /* 3. I/O at the restored offsets. */
  struct stat st;
  fstat(7, &st);
  off_t size0 = st.st_size;
  if (write(7, "xyz", 3) != 3) fail("write to append.log: %s", strerror(errno));
  else {
    char tail[3];
    int rfd = open("append.log", O_RDONLY);
    if (rfd < 0 || pread(rfd, tail, 3, size0) != 3 || memcmp(tail, "xyz", 3))
      fail("write through O_APPEND fd 7 did not go to the end (size was %ld)", (long)size0);
    if (rfd >= 0) close(rfd);
    if (ftruncate(7, size0)) fail("ftruncate append.log back: %s", strerror(errno));
  }
  expect_bytes(20, "fd 20 (rw.dat)", 16, 21, 1234);
  if (lseek(25, 0, SEEK_CUR) != 1250) fail("fd 25 did not follow fd 20's read (offset %ld)", (long)lseek(25, 0, SEEK_CUR));
  expect_bytes(26, "fd 26 (rw.dat again)", 16, 21, 77);
  {
    unsigned char b[16 + 8];
    ckpt_fill(b, sizeof b, 22, 4096 / 8);
    if (write(21, b, 16) != 16) fail("write to fd 21 (wo.dat): %s", strerror(errno));
  }
  expect_bytes(22, "fd 22 (dsync.dat)", 10, 23, 10);
  expect_bytes(23, "fd 23 (nonblock.dat)", 5, 24, 5);
  expect_bytes(27, "fd 27 (name with space.dat)", 16, 26, 0);
  expect_bytes(100, "fd 100 (ro.dat)", 10, 27, 100);
  if (have_direct) {
    void *b = NULL;
    if (posix_memalign(&b, 4096, 4096) == 0) {
      ssize_t r = read(24, b, 4096);
      if (r != 4096) fail("O_DIRECT read on fd 24: %zd (%s)", r, r < 0 ? strerror(errno) : "short");
      else if (ckpt_check_fill(b, 4096, 25, 4096 / 8) >= 0) fail("O_DIRECT read on fd 24 returned the wrong bytes");
      free(b);
    }
  }
  if (file_diff("wo.dat", 8192, 22) != -1) fail("wo.dat changed by rewriting identical bytes");
  {
    struct stat ds;
    if (fstat(30, &ds) || !S_ISDIR(ds.st_mode)) fail("fd 30 is not a directory");
    char buf[4096];
    lseek(30, 0, SEEK_SET);
    long r = syscall(SYS_getdents64, 30, buf, sizeof buf);
    int seen = 0;
    for (long o = 0; o < r;) {
      struct dirent64 *e = (struct dirent64 *)(buf + o);
      if (!strcmp(e->d_name, "a")) seen |= 1;
      if (!strcmp(e->d_name, "b")) seen |= 2;
      if (!strcmp(e->d_name, "c")) seen |= 4;
      o += e->d_reclen;
    }
    if (r < 0) fail("getdents64 on fd 30: %s", strerror(errno));
    else if (seen != 7) fail("getdents64 on fd 30 lists not all of a, b, c");
  }
  if (write(40, "hello", 5) != 5) fail("write to /dev/null (fd 40)");
  {
    unsigned char z[16], u[16];
    memset(z, 1, sizeof z);
    if (read(41, z, 16) != 16 || !ckpt_all_zero(z, 16, NULL)) fail("read from /dev/zero (fd 41)");
    memset(u, 0, sizeof u);
    if (read(42, u, 16) != 16 || ckpt_all_zero(u, 16, NULL)) fail("read from /dev/urandom (fd 42)");
  }
  verdict();
}
