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
  int rp[2];
  if (pipe(rp)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    close(rp[0]);
    ma[100] = 0x5c;
    ckpt_write_all(rp[1], "r", 1);
    close(rp[1]);
    if (ckpt_corrupt) mmap(ma, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    wait_for_term();
    if (ma[200] != 0xa7) fail("child: the parent's write to ckpt-a after restore is not visible (%#x)", ma[200]);
    if (lseek(20, 0, SEEK_CUR) != 1234) fail("child: fd 20 at %lld, not 1234", (long long)lseek(20, 0, SEEK_CUR));
    lseek(20, 4321, SEEK_SET);
    if (failed()) ckpt_say("child %d: %s\n", getpid(), ckpt_fail_buf);
    _exit(failed() ? 1 : 0);
  }
  close(rp[1]);
  char r;
  if (read(rp[0], &r, 1) != 1) die("child setup");
  close(rp[0]);
  ready("pids=%d,%d", getpid(), (int)c);
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
  ma[200] = 0xa7;
  kill(c, SIGTERM);
  int st;
  if (waitpid(c, &st, 0) != c) fail("waitpid: %s", strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st)) fail("child ended with %#x", st);
  if (lseek(20, 0, SEEK_CUR) != 4321) fail("fd 20 not shared with the child (offset %lld)", (long long)lseek(20, 0, SEEK_CUR));
  verdict();
}
