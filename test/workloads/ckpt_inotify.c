/* ckpt_inotify: an inotify instance across a checkpoint.
 *
 * Before READY, in its cwd: fd 40 is an inotify instance (IN_NONBLOCK)
 * watching w1/ (wd 1, then removed), f2 (wd 2, IN_MODIFY), w3/ (wd 3,
 * IN_CREATE | IN_DELETE) and the cwd itself (wd 4, IN_ATTRIB); every event
 * so far is read. The child C shares the instance (fork).
 * READY "pids=P,C".
 * Verifies after SIGTERM: no event is waiting; /proc/self/fdinfo/40 lists
 * wds 2, 3, 4 with their masks; creating w3/new gives (wd 3, IN_CREATE,
 * "new"); C writes to f2, and the parent reads (wd 2, IN_MODIFY).
 *
 * --selftest-corrupt: after READY, watch 3 is removed.
 */
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ckpt_common.h"

/* The next event: fsnotify queues it before the system call that caused
 * it returns, so it is there already. */
static int next_event(int fd, struct inotify_event *ev, char *name, size_t name_size) {
  static char buf[sizeof(struct inotify_event) + 256] __attribute__((aligned(8)));
  memset(ev, 0, sizeof *ev);
  name[0] = 0;
  ssize_t n = read(fd, buf, sizeof(struct inotify_event) + 256);
  if (n < (ssize_t)sizeof *ev) return 0;
  memcpy(ev, buf, sizeof *ev);
  if (ev->len) ckpt_copy(name, name_size, buf + sizeof *ev);
  return 1;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if ((mkdir("w1", 0755) && errno != EEXIST) || (mkdir("w3", 0755) && errno != EEXIST)) die("mkdir");
  int f2 = open("f2", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (f2 < 0) die("f2");
  close(f2);
  int in = inotify_init1(IN_NONBLOCK);
  if (in < 0) die("inotify_init1");
  if (dup2(in, 40) != 40) die("dup2");
  close(in);
  int w1 = inotify_add_watch(40, "w1", IN_CREATE);
  int w2 = inotify_add_watch(40, "f2", IN_MODIFY);
  if (w1 != 1 || w2 != 2 || inotify_rm_watch(40, w1)) die("watches 1, 2 (%d %d)", w1, w2);
  int w3 = inotify_add_watch(40, "w3", IN_CREATE | IN_DELETE);
  int w4 = inotify_add_watch(40, ".", IN_ATTRIB);
  if (w3 != 3 || w4 != 4) die("watches 3, 4 (%d %d)", w3, w4);
  char buf[4096];
  while (read(40, buf, sizeof buf) > 0) {
  }
  int go;
  pid_t c = ckpt_fork_waiting(&go);
  if (c == 0) {
    int fd = open("f2", O_WRONLY | O_APPEND);
    if (fd < 0 || write(fd, "x", 1) != 1) _exit(4);
    close(fd);
    _exit(0);
  }
  ready("pids=%d,%d", (int)getpid(), (int)c);
  if (ckpt_corrupt) inotify_rm_watch(40, 3);
  wait_for_term();

  if (read(40, buf, sizeof buf) > 0) fail("an event was waiting after the restore");
  /* fdinfo: wd 2, 3 and 4 with their masks. */
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/40");
  int fi = open(path, O_RDONLY);
  ssize_t n = fi >= 0 ? read(fi, buf, sizeof buf - 1) : -1;
  if (fi >= 0) close(fi);
  buf[n > 0 ? n : 0] = 0;
  if (!strstr(buf, "inotify wd:2 ") || !strstr(buf, "inotify wd:3 ") || !strstr(buf, "inotify wd:4 ") ||
      strstr(buf, "inotify wd:1 "))
    fail("fdinfo watches are not wd 2, 3, 4: %s", buf);
  struct inotify_event ev;
  char name[256];
  int fd = open("w3/new", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) close(fd);
  if (!next_event(40, &ev, name, sizeof name) || ev.wd != 3 || !(ev.mask & IN_CREATE) || strcmp(name, "new"))
    fail("creating w3/new gave wd %d mask %#x name '%s', expected wd 3 IN_CREATE 'new'", ev.wd, ev.mask, name);
  unlink("w3/new");
  if (!next_event(40, &ev, name, sizeof name) || ev.wd != 3 || !(ev.mask & IN_DELETE))
    fail("deleting w3/new gave wd %d mask %#x", ev.wd, ev.mask);
  if (write(go, "g", 1) != 1) fail("cannot wake C");
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child C ended with %#x", st);
  if (!next_event(40, &ev, name, sizeof name) || ev.wd != 2 || !(ev.mask & IN_MODIFY))
    fail("C's write to f2 gave wd %d mask %#x, expected wd 2 IN_MODIFY", ev.wd, ev.mask);
  verdict();
}
