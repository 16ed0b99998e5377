/* exec_target: a task for cr-exec to enter. It sits blocked in read() on
 * stdin and answers one command per line. Replies go to a dup of the
 * original stdout (fd REPLY_FD), so fd 1 itself may be closed under it.
 *
 * State it holds for "leave no trace" checks: SIGUSR1 blocked and pending
 * on this thread, SIGUSR2 blocked and pending on the process, a SIGTRAP
 * handler installed.
 *
 * Commands:
 *   ping          -> pong
 *   write1        -> "write1 <ret> <errno name|OK>" (write to fd 1)
 *   rw N          -> "rw ok <path>" after writing/reading fd N, or "rw fail ..."
 *   fdpath N      -> "fdpath <path>"
 *   zombie        -> "zombie <pid>": a child that has exited, left unreaped
 *   vfork         -> the vfork child prints "vforked <parent pid>", reads one
 *                    line, exits; then the parent prints "vfork done"
 *   stop          -> "stopping", then raise(SIGSTOP); "continued" after SIGCONT
 *   exit N        -> exit(N)
 *   getppid       -> "getppid <ret> <errno name|OK>"
 *
 * With the argument "seccomp" it first installs a seccomp filter that fails
 * getppid() with EPERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int reply_fd;

static void on_trap(int sig) { (void)sig; }

/* One line from stdin with plain read() calls: the task blocks in read(0). */
static int read_line(char* buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = read(0, buf + n, 1);
    if (r < 0 && errno == EINTR) {
      dprintf(reply_fd, "read interrupted: EINTR\n");
      continue;
    }
    if (r <= 0) return -1;
    if (buf[n] == '\n') break;
    n++;
  }
  buf[n] = 0;
  return (int)n;
}

static void do_rw(int fd) {
  const char msg[] = "written-by-exec-target";
  char back[64] = {0};
  if (write(fd, msg, sizeof msg - 1) != (ssize_t)(sizeof msg - 1)) {
    dprintf(reply_fd, "rw fail write %s\n", strerror(errno));
    return;
  }
  if (lseek(fd, 0, SEEK_SET) != 0) {
    dprintf(reply_fd, "rw fail lseek %s\n", strerror(errno));
    return;
  }
  if (read(fd, back, sizeof msg - 1) != (ssize_t)(sizeof msg - 1) || memcmp(back, msg, sizeof msg - 1)) {
    dprintf(reply_fd, "rw fail read back '%s'\n", back);
    return;
  }
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  path[n > 0 ? n : 0] = 0;
  dprintf(reply_fd, "rw ok %s\n", path);
}

static int deny_getppid(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char** argv) {
  reply_fd = dup(1);
  if (reply_fd < 0) return 1;
  if (argc > 1 && !strcmp(argv[1], "seccomp") && deny_getppid() != 0) {
    dprintf(reply_fd, "seccomp: %s\n", strerror(errno));
    return 1;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_trap;
  sigaction(SIGTRAP, &sa, NULL);
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigaddset(&m, SIGUSR2);
  sigprocmask(SIG_BLOCK, &m, NULL);
  raise(SIGUSR1);          /* pending on this thread */
  kill(getpid(), SIGUSR2); /* pending on the process */

  dprintf(reply_fd, "READY %d\n", getpid());
  char line[256];
  while (read_line(line, sizeof line) >= 0) {
    if (!strcmp(line, "ping")) {
      dprintf(reply_fd, "pong\n");
    } else if (!strcmp(line, "write1")) {
      ssize_t r = write(1, "x\n", 2);
      int e = errno;
      dprintf(reply_fd, "write1 %zd %s\n", r, r < 0 ? strerrorname_np(e) : "OK");
    } else if (!strncmp(line, "rw ", 3)) {
      do_rw(atoi(line + 3));
    } else if (!strncmp(line, "fdpath ", 7)) {
      char link[64], path[4096];
      snprintf(link, sizeof link, "/proc/self/fd/%d", atoi(line + 7));
      ssize_t n = readlink(link, path, sizeof path - 1);
      path[n > 0 ? n : 0] = 0;
      dprintf(reply_fd, "fdpath %s\n", n > 0 ? path : strerror(errno));
    } else if (!strcmp(line, "zombie")) {
      pid_t c = fork();
      if (c == 0) _exit(0);
      siginfo_t si;
      /* Wait for the exit without reaping it. */
      waitid(P_PID, c, &si, WEXITED | WNOWAIT);
      dprintf(reply_fd, "zombie %d\n", c);
    } else if (!strcmp(line, "vfork")) {
      pid_t parent = getpid();
      pid_t c = vfork();
      if (c == 0) {
        char l[64];
        dprintf(reply_fd, "vforked %d\n", parent);
        read_line(l, sizeof l);
        _exit(0);
      }
      int st;
      waitpid(c, &st, 0);
      dprintf(reply_fd, "vfork done\n");
    } else if (!strcmp(line, "stop")) {
      dprintf(reply_fd, "stopping\n");
      raise(SIGSTOP);
      dprintf(reply_fd, "continued\n");
    } else if (!strcmp(line, "getppid")) {
      long r = syscall(SYS_getppid);
      int e = errno;
      dprintf(reply_fd, "getppid %ld %s\n", r, r < 0 ? strerrorname_np(e) : "OK");
    } else if (!strncmp(line, "exit ", 5)) {
      exit(atoi(line + 5));
    } else {
      dprintf(reply_fd, "unknown command '%s'\n", line);
    }
  }
  return 0;
}
