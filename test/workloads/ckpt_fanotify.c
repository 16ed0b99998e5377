/* ckpt_fanotify: fanotify groups and their marks across a checkpoint.
 *
 * Before READY, in its cwd:
 *   fd 40: a group (FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, events
 *          opened O_RDONLY) with an inode mark on w/ (FAN_CLOSE_WRITE |
 *          FAN_EVENT_ON_CHILD), an ignore mark on w/quiet (FAN_CLOSE_WRITE,
 *          FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY) and an
 *          ignore-only mark on the mount of the cwd (FAN_OPEN); events so
 *          far read.
 *   fd 41: a group reporting file ids (FAN_REPORT_FID) with a filesystem
 *          mark for FAN_FS_ERROR (Linux 5.16) on the cwd's filesystem, if
 *          that filesystem reports errors (READY says "fs-mark" or
 *          "no-fs-mark").
 * READY "marks=N" (the fanotify lines of both fdinfos).
 * Verifies after SIGTERM: both fdinfos show the same group flags and the
 * same marks (as sets: the order may differ); fd 40 is still O_NONBLOCK and
 * close-on-exec, fd 41 is neither; nothing is queued; writing w/a gives one
 * FAN_CLOSE_WRITE event whose fd leads to w/a; writing w/quiet gives none.
 *
 * --selftest-corrupt: after READY, the ignore mark on w/quiet is removed.
 */
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "ckpt_common.h"

#define MAX_LINES 32

/* The "fanotify ..." lines of our fdinfo for `fd`, sorted. */
static int fanotify_lines(int fd, char lines[MAX_LINES][256]) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  if (ckpt_read_file(path, buf, sizeof buf) <= 0) return -1;
  int n = 0;
  for (char *l = strtok(buf, "\n"); l && n < MAX_LINES; l = strtok(NULL, "\n"))
    if (!strncmp(l, "fanotify", 8)) ckpt_copy(lines[n++], 256, l);
  qsort(lines, n, 256, (int (*)(const void *, const void *))strcmp);
  return n;
}

static void write_file(const char *p) {
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, "x", 1) != 1) fail("cannot write %s", p);
  if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if (mkdir("w", 0755) && errno != EEXIST) die("mkdir w");
  int q = open("w/quiet", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (q < 0) die("w/quiet");
  close(q);
  int g = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY);
  if (g < 0) die("fanotify_init");
  if (dup3(g, 40, O_CLOEXEC) != 40) die("dup3");
  close(g);
  if (fanotify_mark(40, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD, "w")) die("mark w");
  if (fanotify_mark(40, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CLOSE_WRITE,
                    AT_FDCWD, "w/quiet"))
    die("ignore mark w/quiet");
  if (fanotify_mark(40, FAN_MARK_ADD | FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
                    FAN_OPEN, AT_FDCWD, "."))
    die("mount mark");
  g = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
  if (g < 0) die("fanotify_init FAN_REPORT_FID");
  if (dup2(g, 41) != 41) die("dup2");
  close(g);
  int fs_mark = fanotify_mark(41, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_FS_ERROR, AT_FDCWD, ".") == 0;
  char buf[4096];
  while (read(40, buf, sizeof buf) > 0) {
  }
  static char before[2][MAX_LINES][256], after[2][MAX_LINES][256];
  int nb[2] = {fanotify_lines(40, before[0]), fanotify_lines(41, before[1])};
  if (nb[0] != 4 || nb[1] != 1 + fs_mark) die("fdinfo shows %d and %d fanotify lines", nb[0], nb[1]);
  ready("marks=%d %s", nb[0] + nb[1], fs_mark ? "fs-mark" : "no-fs-mark");
  if (ckpt_corrupt)
    fanotify_mark(40, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, FAN_CLOSE_WRITE, AT_FDCWD, "w/quiet");
  wait_for_term();

  for (int k = 0; k < 2; k++) {
    int na = fanotify_lines(40 + k, after[k]);
    if (na != nb[k]) {
      fail("fd %d: fdinfo shows %d fanotify lines, %d before", 40 + k, na, nb[k]);
      continue;
    }
    for (int i = 0; i < na; i++)
      if (strcmp(before[k][i], after[k][i])) fail("fd %d: fdinfo '%s', before '%s'", 40 + k, after[k][i], before[k][i]);
  }
  int fl = fcntl(40, F_GETFL), fdf = fcntl(40, F_GETFD);
  if (!(fl & O_NONBLOCK) || !(fdf & FD_CLOEXEC)) fail("fd 40: flags %#x, fd flags %#x", fl, fdf);
  fl = fcntl(41, F_GETFL), fdf = fcntl(41, F_GETFD);
  if ((fl & O_NONBLOCK) || (fdf & FD_CLOEXEC)) fail("fd 41: flags %#x, fd flags %#x", fl, fdf);
  int queued = -1;
  if (ioctl(40, FIONREAD, &queued) || queued) fail("fd 40: %d bytes queued after the restore", queued);
  write_file("w/quiet");
  write_file("w/a");
  ssize_t n = read(40, buf, sizeof buf);
  int events = 0, on_a = 0;
  for (struct fanotify_event_metadata *m = (void *)buf; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
    events++;
    char link[512];
    ckpt_fd_link(m->fd, link, sizeof link);
    if ((m->mask & FAN_CLOSE_WRITE) && ckpt_ends_with(link, "/w/a")) on_a++;
    else fail("unexpected event mask %#llx on %s", (unsigned long long)m->mask, link);
    if (m->fd >= 0) close(m->fd);
  }
  if (on_a != 1 || events != 1) fail("writing w/quiet and w/a gave %d events, %d on w/a (expected 1, on w/a)", events, on_a);
  verdict();
}
