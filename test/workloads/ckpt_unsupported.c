/* ckpt_unsupported: holds one kind of state that issue 5's dump does not
 * support, so the dump must fail with an error naming pid, fd (or tid/pid)
 * and kind -- and leave this process running untouched. The test then sends
 * SIGTERM and expects PASS.
 *
 *   --kind socket        a unix socketpair at fds 42/43, "ping" queued in it
 *                        (restored since unix sockets are: a cycle; a
 *                        restored socket has a new inode)
 *   --kind inet          a UDP socket (IPv4) bound to 127.0.0.1 at fd 42 with
 *                        a datagram it sent itself queued (not supported)
 *   --kind inet-raw      a raw IPv4 ICMP socket at fd 42
 *   --kind inet-pending  a TCP listener at fd 42 with one connection (from
 *                        43) not accepted yet
 *   --kind unix-scm      a unix socketpair at fds 42/43, "fd" with a file
 *                        descriptor (SCM_RIGHTS) queued to 42; checks that
 *                        it is still there and that SO_PEEK_OFF is off
 *   --kind unix-outside --path P [--dgram]
 *                        fd 42: a unix stream socket connected to the
 *                        listener at P (held outside the tree); with
 *                        --dgram a datagram socket connected to the one
 *                        bound at P, on which it sends "after" once its
 *                        checks are done
 *   --kind eventfd       an eventfd at fd 42 with count 5
 *   --kind pipe          a pipe at fds 42 (read) / 43 (write), "hello" in it
 *   --kind epoll         an epoll instance at fd 42
 *   --kind inotify       an inotify instance at fd 42 watching its directory
 *   --kind inotify-queued  the same with an event not read yet
 *   --kind fanotify-queued a fanotify group at fd 42 marking its directory
 *                        (FAN_CLOSE_WRITE of its files), an event not read
 *   --kind epoll-closed  an epoll instance at fd 42 watching an eventfd
 *                        registered as fd 43, since moved to fd 44
 *   --kind deleted-file  fd 42: a file with a pattern, unlinked
 *   --kind exec-shared-write  an executable file (mode 0755) of its own
 *                        directory mapped shared and writable (a restore
 *                        would open a program for writing)
 *   --kind thread        a second thread (blocked in a futex-based wait)
 *   --kind child         a child process (all signals blocked, in pause())
 *   --kind left-session  a child X that forked Y and then called setsid():
 *                        Y stays in our session under a parent that left it
 *   --kind pty-data      a pty pair, master at fd 42, slave (no echo) at 43,
 *                        "hello\n" written to the master and not read
 *   --kind tty-outside --path P
 *                        fd 42: the pty slave P, whose master is held
 *                        outside the tree (by the test)
 *   --kind ctty-outside --path P
 *                        a child that calls setsid() and takes the pty
 *                        slave P (master outside the tree) as its
 *                        controlling terminal, then closes it
 * The READY line says what it holds: "kind=socket fd=42" ("tid=N",
 * "child=N" for the last two).
 * Verifies: the fds are still there with the same link and inode (a
 * deleted file: the same link, the inode is a new one), the
 * queued data/count/contents still there; the thread/child still alive.
 *
 * --selftest-corrupt: after READY consume the data (socket, pipe, eventfd),
 * replace fd 42 (epoll, inotify, inet), overwrite the contents (deleted-file), stop the
 * thread or kill the child.
 */
#include <pthread.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static char link_before[2][256];
static ino_t ino_before[2];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int thread_started, thread_stop;
static pid_t thread_tid;

static void *thread_main(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&mu);
  thread_tid = (pid_t)syscall(SYS_gettid);
  thread_started = 1;
  pthread_cond_broadcast(&cv);
  while (!thread_stop) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void take(int fd, char *link, ino_t *ino) {
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  ssize_t l = readlink(p, link, 255);
  link[l > 0 ? l : 0] = 0;
  struct stat st;
  *ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void place(int fd, int want) {
  if (fd < 0) die("create the resource");
  if (fd != want) {
    if (dup2(fd, want) != want) die("dup2");
    close(fd);
  }
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  const char *kind = ckpt_arg(argc, argv, "--kind");
  void *shared_exec = NULL;
  if (!kind) die("--kind socket|inet|inet-raw|inet-pending|unix-scm|unix-outside|eventfd|pipe|epoll|epoll-closed|inotify|inotify-queued|fanotify-queued|deleted-file|exec-shared-write|thread|child|left-session|pty-data|tty-outside|ctty-outside");
  int nfd = 0;
  pthread_t th;
  pid_t child = -1, grandchild = -1;
  static unsigned char pat[4096];

  if (!strcmp(kind, "socket")) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    place(sv[0], 42);
    place(sv[1], 43);
    if (write(43, "ping", 4) != 4) die("write socket");
    nfd = 2;
  } else if (!strcmp(kind, "inet")) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) || getsockname(u, (struct sockaddr *)&a, &al))
      die("inet socket");
    if (sendto(u, "dgram", 5, 0, (struct sockaddr *)&a, sizeof a) != 5) die("sendto itself");
    place(u, 42);
    nfd = 1;
  } else if (!strcmp(kind, "inet-raw")) {
    place(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), 42);
    nfd = 1;
  } else if (!strcmp(kind, "inet-pending")) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4) || getsockname(l, (struct sockaddr *)&a, &al))
      die("listener");
    place(l, 42);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) die("connect");
    place(c, 43);
    nfd = 2;
  } else if (!strcmp(kind, "unix-scm")) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    place(sv[0], 42);
    place(sv[1], 43);
    int passed = open("/dev/null", O_RDONLY);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = "fd", .iov_len = 2};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
    if (passed < 0 || sendmsg(43, &mh, 0) != 2) die("sendmsg SCM_RIGHTS");
    close(passed);
    nfd = 2;
  } else if (!strcmp(kind, "unix-outside")) {
    const char *path = ckpt_arg(argc, argv, "--path");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof a.sun_path) die("--path P (a listening unix socket)");
    strcpy(a.sun_path, path);
    int u = socket(AF_UNIX, ckpt_flag(argc, argv, "--dgram") ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof a)) die("connect to %s", path);
    place(u, 42);
    nfd = 1;
  } else if (!strcmp(kind, "eventfd")) {
    place(eventfd(5, EFD_NONBLOCK), 42);
    nfd = 1;
  } else if (!strcmp(kind, "pipe")) {
    int p[2];
    if (pipe2(p, O_NONBLOCK)) die("pipe");
    /* Move both ends out of the way first: pipe2 may have returned 42/43. */
    int r = fcntl(p[0], F_DUPFD, 200), w = fcntl(p[1], F_DUPFD, 200);
    close(p[0]);
    close(p[1]);
    place(r, 42);
    place(w, 43);
    if (write(43, "hello", 5) != 5) die("write pipe");
    nfd = 2;
  } else if (!strcmp(kind, "epoll")) {
    place(epoll_create1(0), 42);
    nfd = 1;
  } else if (!strcmp(kind, "epoll-closed")) {
    /* The eventfd registered as fd 43 now lives at fd 43's copy, fd 44
     * only: the registration stays, under a number the process closed. */
    place(epoll_create1(0), 42);
    place(eventfd(1, EFD_NONBLOCK), 43);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 43};
    if (epoll_ctl(42, EPOLL_CTL_ADD, 43, &ev)) die("epoll_ctl");
    if (dup2(43, 44) != 44) die("dup2");
    close(43);
    nfd = 1;
  } else if (!strcmp(kind, "inotify") || !strcmp(kind, "inotify-queued")) {
    int in = inotify_init1(IN_NONBLOCK);
    if (in < 0 || inotify_add_watch(in, ".", IN_CREATE) < 0) die("inotify");
    place(in, 42);
    if (!strcmp(kind, "inotify-queued")) { /* an event nobody read */
      int q = open("queued.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (q < 0) die("queued.txt");
      close(q);
    }
    nfd = 1;
  } else if (!strcmp(kind, "fanotify-queued")) {
    int fa = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
    if (fa < 0 || fanotify_mark(fa, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD, ".")) die("fanotify");
    place(fa, 42);
    int q = open("queued.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (q < 0) die("queued.txt");
    close(q);
    nfd = 1;
  } else if (!strcmp(kind, "exec-shared-write")) {
    int fd = open("prog.sh", O_RDWR | O_CREAT | O_TRUNC, 0755);
    static char prog[4096] = "#!/bin/sh\nexit 0\n";
    if (fd < 0 || write(fd, prog, sizeof prog) != (ssize_t)sizeof prog) die("prog.sh");
    shared_exec = mmap(NULL, sizeof prog, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shared_exec == MAP_FAILED) die("mmap prog.sh");
    close(fd);
  } else if (!strcmp(kind, "deleted-file")) {
    int fd = open("deleted.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    ckpt_fill(pat, sizeof pat, 77, 0);
    if (fd < 0 || write(fd, pat, sizeof pat) != (ssize_t)sizeof pat) die("deleted.dat");
    place(fd, 42);
    if (unlink("deleted.dat")) die("unlink");
    nfd = 1;
  } else if (!strcmp(kind, "thread")) {
    if (pthread_create(&th, NULL, thread_main, NULL)) die("pthread_create");
    pthread_mutex_lock(&mu);
    while (!thread_started) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
  } else if (!strcmp(kind, "child")) {
    pid_t parent = getpid();
    child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      close(3);
      /* Never outlive the workload (it may be killed without a verdict). */
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      sigset_t all;
      sigfillset(&all);
      sigprocmask(SIG_BLOCK, &all, NULL);
      for (;;) pause();
    }
  } else if (!strcmp(kind, "left-session")) {
    pid_t parent = getpid();
    int yp[2];
    if (pipe(yp)) die("pipe");
    child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      close(3);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      pid_t x = getpid();
      pid_t y = fork();
      if (y < 0) _exit(2);
      sigset_t all;
      sigfillset(&all);
      if (y == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != x) _exit(0);
        sigprocmask(SIG_BLOCK, &all, NULL);
        for (;;) pause();
      }
      if (setsid() < 0) _exit(2);
      ckpt_write_all(yp[1], (const char *)&y, sizeof y);
      sigprocmask(SIG_BLOCK, &all, NULL);
      for (;;) pause();
    }
    close(yp[1]);
    if (read(yp[0], &grandchild, sizeof grandchild) != sizeof grandchild) die("no word from the child");
    close(yp[0]);
    if (getsid(child) != child || getsid(grandchild) != getsid(0)) die("left-session: not set up");
  } else if (!strcmp(kind, "pty-data")) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) die("posix_openpt");
    int sl = open(ptsname(m), O_RDWR | O_NOCTTY);
    struct termios t;
    if (sl < 0 || tcgetattr(sl, &t)) die("open the slave");
    t.c_lflag &= ~(tcflag_t)ECHO;
    if (tcsetattr(sl, TCSANOW, &t) || write(m, "hello\n", 6) != 6) die("set up the pty");
    place(m, 42);
    place(sl, 43);
    nfd = 2;
  } else if (!strcmp(kind, "tty-outside")) {
    const char *path = ckpt_arg(argc, argv, "--path");
    if (!path) die("tty-outside needs --path");
    place(open(path, O_RDWR | O_NOCTTY), 42);
    nfd = 1;
  } else if (!strcmp(kind, "ctty-outside")) {
    const char *path = ckpt_arg(argc, argv, "--path");
    if (!path) die("ctty-outside needs --path");
    int cp[2];
    if (pipe(cp)) die("pipe");
    child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      close(3);
      close(cp[0]);
      int fd = -1;
      if (setsid() < 0 || (fd = open(path, O_RDWR | O_NOCTTY)) < 0 || ioctl(fd, TIOCSCTTY, 0) < 0) _exit(2);
      close(fd);
      ckpt_write_all(cp[1], "c", 1);
      sigset_t all;
      sigfillset(&all);
      sigprocmask(SIG_BLOCK, &all, NULL);
      for (;;) pause();
    }
    close(cp[1]);
    char c;
    if (read(cp[0], &c, 1) != 1) die("the child did not take the terminal");
    close(cp[0]);
  } else
    die("unknown --kind %s", kind);
  for (int i = 0; i < nfd; i++) take(42 + i, link_before[i], &ino_before[i]);

  if (shared_exec) ready("kind=%s addr=%#lx", kind, (unsigned long)shared_exec);
  else if (nfd == 2) ready("kind=%s fd=42 fd2=43", kind);
  else if (nfd == 1) ready("kind=%s fd=42", kind);
  else if (grandchild > 0) ready("kind=%s child=%d grandchild=%d", kind, (int)child, (int)grandchild);
  else if (child > 0) ready("kind=%s child=%d", kind, (int)child);
  else ready("kind=%s tid=%d", kind, (int)thread_tid);

  if (ckpt_corrupt) {
    char b[16];
    if (!strcmp(kind, "socket") || !strcmp(kind, "unix-scm") || !strcmp(kind, "pipe") || !strcmp(kind, "eventfd") ||
        !strcmp(kind, "pty-data")) {
      if (read(!strcmp(kind, "pty-data") ? 43 : 42, b, 8) < 0) ckpt_say("corrupt: read: %s\n", strerror(errno));
    } else if (!strcmp(kind, "epoll") || !strcmp(kind, "inotify") || !strcmp(kind, "epoll-closed") ||
               !strcmp(kind, "inotify-queued") || !strcmp(kind, "fanotify-queued") || !strcmp(kind, "inet") ||
               !strcmp(kind, "inet-raw") || !strcmp(kind, "inet-pending"))
      dup2(1, 42);
    else if (!strcmp(kind, "deleted-file")) {
      if (pwrite(42, "corrupt", 7, 100) != 7) ckpt_say("corrupt: pwrite: %s\n", strerror(errno));
    }
    else if (!strcmp(kind, "thread")) {
      pthread_mutex_lock(&mu);
      thread_stop = 1;
      pthread_cond_broadcast(&cv);
      pthread_mutex_unlock(&mu);
      pthread_join(th, NULL);
    } else if (child > 0) {
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
    }
  }
  wait_for_term();

  for (int i = 0; i < nfd; i++) {
    char l[256];
    ino_t ino;
    take(42 + i, l, &ino);
    /* A deleted file comes back as a new inode with the same name and
     * bytes: its inode number cannot be kept; a restored socket is a new
     * socket. */
    int same_ino = ino == ino_before[i] || !strcmp(kind, "deleted-file");
    if (!strcmp(kind, "socket") || !strcmp(kind, "unix-outside")) {
      if (strncmp(l, "socket:", 7)) fail("fd %d is '%s', no longer a socket", 42 + i, l);
    } else if (strcmp(l, link_before[i]) || !same_ino)
      fail("fd %d is '%s' (inode %lu), was '%s' (inode %lu)", 42 + i, l, (unsigned long)ino, link_before[i],
           (unsigned long)ino_before[i]);
  }
  if (!failed()) {
    char b[16] = "";
    if (!strcmp(kind, "inotify-queued") || !strcmp(kind, "fanotify-queued")) {
      int queued = 0;
      if (ioctl(42, FIONREAD, &queued) || queued <= 0) fail("%s: the unread event is gone", kind);
    } else if (!strcmp(kind, "socket")) {
      ssize_t r = recv(42, b, sizeof b, MSG_DONTWAIT);
      if (r != 4 || memcmp(b, "ping", 4)) fail("socket: queued \"ping\" not there (read %zd)", r);
    } else if (!strcmp(kind, "unix-outside") && ckpt_flag(argc, argv, "--dgram")) {
      if (send(42, "after", 5, 0) != 5) fail("unix-outside --dgram: send: %s", strerror(errno));
    } else if (!strcmp(kind, "unix-scm")) {
      int off = 0;
      socklen_t ol = sizeof off;
      if (getsockopt(42, SOL_SOCKET, SO_PEEK_OFF, &off, &ol) || off != -1) fail("unix-scm: SO_PEEK_OFF is %d", off);
      char cbuf[CMSG_SPACE(sizeof(int))];
      struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
      struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
      ssize_t r = recvmsg(42, &mh, MSG_DONTWAIT);
      struct cmsghdr *c = r == 2 ? CMSG_FIRSTHDR(&mh) : NULL;
      if (r != 2 || memcmp(b, "fd", 2) || !c || c->cmsg_type != SCM_RIGHTS)
        fail("unix-scm: the message with its fd is not there (read %zd)", r);
    } else if (!strcmp(kind, "pty-data")) {
      int n = 0;
      ssize_t r = ioctl(43, FIONREAD, &n) == 0 && n == 6 ? read(43, b, sizeof b) : -1;
      if (r != 6 || memcmp(b, "hello\n", 6)) fail("pty-data: queued \"hello\" not there (read %zd)", r);
    } else if (!strcmp(kind, "pipe")) {
      ssize_t r = read(42, b, sizeof b);
      if (r != 5 || memcmp(b, "hello", 5)) fail("pipe: queued \"hello\" not there (read %zd)", r);
    } else if (!strcmp(kind, "eventfd")) {
      uint64_t v = 0;
      if (read(42, &v, 8) != 8 || v != 5) fail("eventfd: count %llu, expected 5", (unsigned long long)v);
    } else if (!strcmp(kind, "epoll")) {
      struct epoll_event ev;
      if (epoll_wait(42, &ev, 1, 0) != 0) fail("epoll_wait on fd 42: %s", strerror(errno));
    } else if (!strcmp(kind, "deleted-file")) {
      static unsigned char back[4096];
      struct stat st;
      if (fstat(42, &st) || st.st_nlink != 0) fail("deleted file has links again");
      if (pread(42, back, sizeof back, 0) != (ssize_t)sizeof back || memcmp(back, pat, sizeof pat))
        fail("deleted file contents changed");
    }
  }
  if (!strcmp(kind, "thread")) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/task/%d", (int)thread_tid);
    if (thread_stop || access(p, F_OK)) fail("thread %d is gone", (int)thread_tid);
  }
  if (grandchild > 0 && (getsid(child) != child || getsid(grandchild) != getsid(0)))
    fail("left-session: child %d in session %d, grandchild %d in session %d", (int)child, (int)getsid(child),
         (int)grandchild, (int)getsid(grandchild));
  if (child > 0) {
    int st;
    pid_t r = waitpid(child, &st, WNOHANG);
    if (r != 0) fail("child %d is gone (waitpid %d)", (int)child, (int)r);
    else {
      kill(child, SIGKILL);
      if (waitpid(child, &st, 0) != child || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        fail("child %d did not end by our SIGKILL", (int)child);
    }
  }
  verdict();
}
