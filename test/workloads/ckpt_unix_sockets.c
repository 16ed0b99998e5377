/* ckpt_unix_sockets: UNIX domain sockets across a checkpoint, shared by a
 * parent P and its child C.
 *
 *   40/41  stream socketpair: "efgh-reply" queued to 40 (its first 4 bytes
 *          read), "-data-xyz" queued to 41 (3 bytes read); 40 has
 *          SO_RCVTIMEO 2.5 s.                              P: 40, C: 41
 *   42/43  seqpacket pair, 3 messages queued to 43; 42 has SO_SNDBUF
 *          50000 (getsockopt: 100000).                      P: 42, C: 43
 *   44/45  dgram pair, 2 datagrams queued to 45; 45 has SO_PASSCRED.
 *                                                           P: 44, C: 45
 *   46     stream listener bound to "unix.sock" in the cwd (relative name),
 *          backlog 4, one pending connection.               P and C
 *   47/48  a connection through it: client 47, accepted 48; "client-hello"
 *          queued to 48, "server-hi" to 47.                 P: 48, C: 47
 *   49     the client of the pending connection.            C: 49
 *   50     dgram socket bound to the abstract name "@ckpt_unix_sockets.PID",
 *          "to-abstract" (from an unnamed socket) and "via-connect" (from 51)
 *          queued.                                          C: 50
 *   51     dgram socket connected to 50.                    P: 51
 *   52     stream socket whose peer closed after writing "bye": reads
 *          "bye", then end-of-file.                         P: 52
 *   53/54  stream pair, 53 shut for writing (shutdown SHUT_WR) after
 *          "last": 54 reads "last" then end-of-file, 53 can still read
 *          what 54 writes.                                  P: 53, 54
 *   55     dgram socket bound to "gone.sock", unlinked since: getsockname
 *          still gives the name, the path stays absent.      P: 55
 *   56     accepted from 46, its client gone after writing "gone-client":
 *          reads it, then end-of-file; named "unix.sock".   P: 56
 *
 * After SIGTERM: P checks its queues byte for byte, names (getsockname,
 * getpeername), options, accepts the pending connection; then C checks its
 * own and writes on each pair, and P reads each write.
 * --selftest-corrupt: P reads one more byte of 40's queue after READY.
 */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static void place(int fd, int at) {
  if (fd < 0) die("making fd %d: %s", at, strerror(errno));
  if (fd != at) {
    if (dup2(fd, at) < 0) die("dup2 %d", at);
    close(fd);
  }
}

/* A socketpair of `type` at fds a and b. */
static void pair_at(int type, int a, int b) {
  int sv[2];
  if (socketpair(AF_UNIX, type, 0, sv)) die("socketpair for fds %d/%d", a, b);
  place(sv[0], a);
  place(sv[1], b);
}

static struct sockaddr_un abstract_addr;
static socklen_t abstract_len;
static struct sockaddr_un path_addr;
static socklen_t path_len;

static void must_send(int fd, const char *s) {
  if (send(fd, s, strlen(s), MSG_DONTWAIT) != (ssize_t)strlen(s)) die("send '%s' on %d", s, fd);
}

/* Read exactly `want` from fd (nonblocking), with message boundaries for
 * message sockets: each call one message. */
static void expect_msg(const char *who, int fd, const char *want) {
  char b[256];
  ssize_t n = recv(fd, b, sizeof b - 1, MSG_DONTWAIT);
  if (n < 0) {
    fail("%s fd %d: expected '%s', recv: %s", who, fd, want, strerror(errno));
    return;
  }
  b[n] = 0;
  if ((size_t)n != strlen(want) || memcmp(b, want, (size_t)n)) fail("%s fd %d: expected '%s', got '%s'", who, fd, want, b);
}

static void expect_empty(const char *who, int fd) {
  char b[16];
  ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
  if (n >= 0 || errno != EAGAIN) fail("%s fd %d: expected an empty queue, recv gave %zd", who, fd, n);
}

/* getsockname (peer 0) or getpeername (peer 1) is `want` (NULL: unnamed). */
static void expect_name(const char *who, int fd, int peer, const struct sockaddr_un *want, socklen_t wlen) {
  struct sockaddr_un a;
  socklen_t l = sizeof a;
  memset(&a, 0, sizeof a);
  if ((peer ? getpeername(fd, (struct sockaddr *)&a, &l) : getsockname(fd, (struct sockaddr *)&a, &l)) < 0) {
    fail("%s fd %d: %s: %s", who, fd, peer ? "getpeername" : "getsockname", strerror(errno));
    return;
  }
  if (!want) {
    if (l != sizeof(sa_family_t)) fail("%s fd %d: %s is named (length %u)", who, fd, peer ? "peer" : "socket", l);
    return;
  }
  if (l != wlen || memcmp(&a, want, wlen))
    fail("%s fd %d: %s '%s' (length %u), expected '%s' (length %u)", who, fd, peer ? "peer" : "name",
         a.sun_path[0] ? a.sun_path : a.sun_path + 1, l, want->sun_path[0] ? want->sun_path : want->sun_path + 1, wlen);
}

static int get_int(int fd, int opt) {
  int v = -1;
  socklen_t l = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, opt, &v, &l)) return -1;
  return v;
}

static void child_checks(void) {
  const char *who = "C";
  expect_msg(who, 41, "-data-xyz");
  expect_empty(who, 41);
  expect_msg(who, 43, "m1");
  expect_msg(who, 43, "msg-two");
  expect_msg(who, 43, "third message");
  expect_empty(who, 43);
  expect_msg(who, 45, "d1");
  expect_msg(who, 45, "datagram2");
  expect_empty(who, 45);
  if (get_int(45, SO_PASSCRED) != 1) fail("C fd 45: SO_PASSCRED is %d", get_int(45, SO_PASSCRED));
  expect_msg(who, 47, "server-hi");
  expect_empty(who, 47);
  expect_name(who, 47, 1, &path_addr, path_len);
  expect_name(who, 47, 0, NULL, 0);
  expect_name(who, 49, 1, &path_addr, path_len);
  expect_name(who, 46, 0, &path_addr, path_len);
  expect_msg(who, 50, "to-abstract");
  expect_msg(who, 50, "via-connect");
  expect_msg(who, 50, "p2c-after"); /* P sent it on 51 before telling us */
  expect_empty(who, 50);
  expect_name(who, 50, 0, &abstract_addr, abstract_len);
  expect_name(who, 41, 0, NULL, 0);
  expect_name(who, 41, 1, NULL, 0);
  /* One write on each pair, read by P. */
  if (send(41, "c2p-stream", 10, 0) != 10) fail("C: send on 41: %s", strerror(errno));
  if (send(43, "c2p-seq", 7, 0) != 7) fail("C: send on 43: %s", strerror(errno));
  if (send(45, "c2p-dgram", 9, 0) != 9) fail("C: send on 45: %s", strerror(errno));
  if (send(47, "c2p-client", 10, 0) != 10) fail("C: send on 47: %s", strerror(errno));
  if (send(49, "c2p-pending", 11, 0) != 11) fail("C: send on 49: %s", strerror(errno));
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  int sv[2];
  /* 40/41: stream. */
  pair_at(SOCK_STREAM, 40, 41);
  must_send(41, "abcdefgh-reply");
  must_send(40, "P2C-data-xyz");
  char tmp[16];
  if (read(40, tmp, 4) != 4 || read(41, tmp, 3) != 3) die("partial reads");
  struct timeval tv = {2, 500000};
  if (setsockopt(40, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)) die("SO_RCVTIMEO");
  /* 42/43: seqpacket. */
  pair_at(SOCK_SEQPACKET, 42, 43);
  must_send(42, "m1");
  must_send(42, "msg-two");
  must_send(42, "third message");
  int sb = 50000;
  if (setsockopt(42, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb)) die("SO_SNDBUF");
  /* 44/45: dgram. */
  pair_at(SOCK_DGRAM, 44, 45);
  must_send(44, "d1");
  must_send(44, "datagram2");
  int one = 1;
  if (setsockopt(45, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)) die("SO_PASSCRED");
  /* 46: a listener on a relative path; 47/48 a connection; 49 pending. */
  unlink("unix.sock");
  memset(&path_addr, 0, sizeof path_addr);
  path_addr.sun_family = AF_UNIX;
  strcpy(path_addr.sun_path, "unix.sock");
  path_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen("unix.sock") + 1);
  place(socket(AF_UNIX, SOCK_STREAM, 0), 46);
  if (bind(46, (struct sockaddr *)&path_addr, path_len) || listen(46, 4)) die("bind/listen unix.sock");
  place(socket(AF_UNIX, SOCK_STREAM, 0), 47);
  if (connect(47, (struct sockaddr *)&path_addr, path_len)) die("connect 47");
  place(accept(46, NULL, NULL), 48);
  must_send(47, "client-hello");
  must_send(48, "server-hi");
  int gc = socket(AF_UNIX, SOCK_STREAM, 0);
  if (gc < 0 || connect(gc, (struct sockaddr *)&path_addr, path_len)) die("connect for 56");
  place(accept(46, NULL, NULL), 56);
  must_send(gc, "gone-client");
  close(gc);
  place(socket(AF_UNIX, SOCK_STREAM, 0), 49);
  if (connect(49, (struct sockaddr *)&path_addr, path_len)) die("connect 49");
  /* 50: abstract dgram; 51 connected to it. */
  memset(&abstract_addr, 0, sizeof abstract_addr);
  abstract_addr.sun_family = AF_UNIX;
  int an = snprintf(abstract_addr.sun_path + 1, sizeof abstract_addr.sun_path - 1, "ckpt_unix_sockets.%d", (int)getpid());
  abstract_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)an);
  place(socket(AF_UNIX, SOCK_DGRAM, 0), 50);
  if (bind(50, (struct sockaddr *)&abstract_addr, abstract_len)) die("bind abstract");
  int anon = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (anon < 0 || sendto(anon, "to-abstract", 11, 0, (struct sockaddr *)&abstract_addr, abstract_len) != 11)
    die("sendto abstract");
  close(anon);
  place(socket(AF_UNIX, SOCK_DGRAM, 0), 51);
  if (connect(51, (struct sockaddr *)&abstract_addr, abstract_len)) die("connect 51");
  must_send(51, "via-connect");

  /* 52: its peer closed; 53/54: half shut; 55: bound, then unlinked. */
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair 52");
  place(sv[0], 52);
  if (write(sv[1], "bye", 3) != 3) die("write bye");
  close(sv[1]);
  pair_at(SOCK_STREAM, 53, 54);
  must_send(53, "last");
  if (shutdown(53, SHUT_WR)) die("shutdown 53");
  struct sockaddr_un gone = {.sun_family = AF_UNIX};
  strcpy(gone.sun_path, "gone.sock");
  socklen_t gone_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen("gone.sock") + 1);
  unlink("gone.sock");
  place(socket(AF_UNIX, SOCK_DGRAM, 0), 55);
  if (bind(55, (struct sockaddr *)&gone, gone_len) || unlink("gone.sock")) die("bind/unlink gone.sock");

  int go[2], set[2];
  if (pipe(go) || pipe(set)) die("pipe");
  pid_t c = fork();
  if (c < 0) die("fork");
  if (c == 0) {
    close(3);
    close(go[1]);
    close(set[0]);
    for (int fd = 40; fd <= 56; fd++)
      if (fd == 40 || fd == 42 || fd == 44 || fd == 48 || fd >= 51) close(fd);
    /* Set up: READY must mean the whole tree is as it will be dumped. */
    close(set[1]);
    char b;
    if (read(go[0], &b, 1) != 1) _exit(3); /* P's word, after its checks */
    child_checks();
    if (failed()) ckpt_say("%s\n", ckpt_fail_buf);
    _exit(failed() ? 1 : 0);
  }
  close(go[0]);
  close(set[1]);
  char setup_done;
  if (read(set[0], &setup_done, 1) != 0) die("the child's setup pipe");
  close(set[0]);
  close(41);
  close(43);
  close(45);
  close(47);
  close(49);
  close(50);
  ready("pids=%d,%d", (int)getpid(), (int)c);
  if (ckpt_corrupt && read(40, tmp, 1) != 1) die("corrupt read");
  wait_for_term();

  const char *who = "P";
  expect_msg(who, 40, "efgh-reply");
  expect_empty(who, 40);
  struct timeval got;
  socklen_t gl = sizeof got;
  if (getsockopt(40, SOL_SOCKET, SO_RCVTIMEO, &got, &gl) || got.tv_sec != 2 || got.tv_usec != 500000)
    fail("P fd 40: SO_RCVTIMEO is %lld.%06lld s", (long long)got.tv_sec, (long long)got.tv_usec);
  if (get_int(42, SO_SNDBUF) != 100000) fail("P fd 42: SO_SNDBUF is %d, expected 100000", get_int(42, SO_SNDBUF));
  if (get_int(44, SO_PASSCRED) != 0) fail("P fd 44: SO_PASSCRED is on");
  expect_empty(who, 42);
  expect_empty(who, 44);
  expect_msg(who, 48, "client-hello");
  expect_empty(who, 48);
  expect_name(who, 48, 0, &path_addr, path_len);
  expect_name(who, 48, 1, NULL, 0);
  expect_name(who, 46, 0, &path_addr, path_len);
  expect_name(who, 51, 1, &abstract_addr, abstract_len);
  if (get_int(46, SO_ACCEPTCONN) != 1) fail("P fd 46: not listening");
  if (fcntl(46, F_SETFL, O_NONBLOCK)) fail("P: F_SETFL on 46: %s", strerror(errno));
  int pend = accept4(46, NULL, NULL, SOCK_NONBLOCK);
  if (pend < 0) fail("P: the pending connection is not there to accept: %s", strerror(errno));
  else expect_name(who, pend, 0, &path_addr, path_len);
  int extra = accept4(46, NULL, NULL, SOCK_NONBLOCK);
  if (extra >= 0 || errno != EAGAIN) fail("P: a second pending connection was accepted");
  expect_msg(who, 52, "bye");
  char eof[8];
  if (recv(52, eof, sizeof eof, MSG_DONTWAIT) != 0) fail("P fd 52: no end-of-file after the closed peer's data");
  expect_msg(who, 54, "last");
  if (recv(54, eof, sizeof eof, MSG_DONTWAIT) != 0) fail("P fd 54: no end-of-file after its peer's SHUT_WR");
  if (send(53, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE) fail("P fd 53: could send after SHUT_WR");
  if (send(54, "back", 4, MSG_NOSIGNAL) != 4) fail("P fd 54: send: %s", strerror(errno));
  expect_msg(who, 53, "back");
  expect_name(who, 55, 0, &gone, gone_len);
  expect_msg(who, 56, "gone-client");
  if (recv(56, eof, sizeof eof, MSG_DONTWAIT) != 0) fail("P fd 56: no end-of-file after its gone client's data");
  expect_name(who, 56, 0, &path_addr, path_len);
  if (access("gone.sock", F_OK) == 0) fail("P: gone.sock exists again");
  if (send(51, "p2c-after", 9, 0) != 9) fail("P: send on 51: %s", strerror(errno));
  /* Now C checks and writes on each pair. */
  if (write(go[1], "g", 1) != 1) fail("cannot tell C to check");
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child C ended with %#x", st);
  struct timeval shortwait = {1, 0};
  setsockopt(40, SOL_SOCKET, SO_RCVTIMEO, &shortwait, sizeof shortwait);
  expect_msg(who, 40, "c2p-stream");
  expect_msg(who, 42, "c2p-seq");
  expect_msg(who, 44, "c2p-dgram");
  expect_msg(who, 48, "c2p-client");
  if (pend >= 0) expect_msg(who, pend, "c2p-pending");
  verdict();
}
