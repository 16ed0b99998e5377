/* ckpt_tcp_echo: established TCP connections across a checkpoint (dumped
 * with --tcp-established).
 *
 *   40  TCP listener on 127.0.0.1 (port in the READY line)
 *   41  a client connected to 40 inside the process, SO_RCVBUF 4096; its
 *       peer 42 wrote a stream of BIG bytes (pattern 0xec40) that 41 has
 *       not read: most of it waits in 42's send queue, part of it never
 *       sent (41's window is full)
 *   42  the accepted end of 41's connection, SO_SNDBUF 65536: "pair-hello" from 41 waits
 *       unread in its receive queue
 *   43  TCP dual-stack listener on :: (IPV6_V6ONLY off), SO_REUSEADDR (as
 *       servers set it: after dump --leave-running the original's closed
 *       connections wait in TIME_WAIT on its port, and only a listener
 *       with SO_REUSEADDR can bind beside them at restore)
 *   44  an IPv4 client connected to 43 through 127.0.0.1; "v4m-hello"
 *       waits unread in its accepted end
 *   45  that accepted end (an IPv6 socket whose addresses are
 *       ::ffff:127.0.0.1)
 *   46  an IPv6 client connected to 43 through ::1; "v6-hello" waits in
 *       its accepted end 47, "v6-back" (sent by 47) in 46
 *   47  that accepted end
 *   3   (after READY) the connection of one client from outside the tree,
 *       accepted from 40: every byte read is written back (an echo
 *       server), until the client closes it
 *
 * After SIGTERM: 42 reads "pair-hello", 41 reads all BIG bytes and checks
 * the pattern, then "after" goes each way on 41/42; 45 reads "v4m-hello",
 * 47 "v6-hello", 46 "v6-back", and a reply goes each way on 44/45 and
 * 46/47 (names and peers checked); the echo connection,
 * if any, must not have failed (a reset, an error) and its client must
 * have closed it or it must still be open; verdict.
 * --selftest-corrupt: 42 reads one byte of its queue after READY.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "ckpt_common.h"

#define BIG (1u << 20)

static void place(int fd, int at) {
  if (fd < 0) die("making fd %d", at);
  if (fd != at) {
    if (dup2(fd, at) < 0) die("dup2 %d", at);
    close(fd);
  }
}

static unsigned char pattern(uint64_t i) { return (unsigned char)(ckpt_word(0xec40, i / 8) >> (8 * (i % 8))); }

static int recv_exact(int fd, char *b, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, b + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return (int)got;
    got += (size_t)r;
  }
  return (int)got;
}

static uint64_t echoed, echo_errors;
static int echo_fd = -1, echo_closed;
static char echo_err[256];

static void echo_once(void) {
  char b[65536];
  ssize_t n = read(echo_fd, b, sizeof b);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    if (n < 0) {
      echo_errors++;
      snprintf(echo_err, sizeof echo_err, "echo read: %s", strerror(errno));
    }
    echo_closed = 1;
    close(echo_fd);
    echo_fd = -1;
    return;
  }
  size_t off = 0;
  while (off < (size_t)n) {
    ssize_t w = write(echo_fd, b + off, (size_t)n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      echo_errors++;
      snprintf(echo_err, sizeof echo_err, "echo write: %s", strerror(errno));
      return;
    }
    off += (size_t)w;
  }
  echoed += (uint64_t)n;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  place(socket(AF_INET, SOCK_STREAM, 0), 40);
  int one = 1;
  setsockopt(40, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(40, (struct sockaddr *)&a, sizeof a) || listen(40, 8)) die("listen");
  socklen_t al = sizeof a;
  getsockname(40, (struct sockaddr *)&a, &al);
  place(socket(AF_INET, SOCK_STREAM, 0), 41);
  int small = 4096;
  if (setsockopt(41, SOL_SOCKET, SO_RCVBUF, &small, sizeof small)) die("SO_RCVBUF");
  if (connect(41, (struct sockaddr *)&a, sizeof a)) die("connect 41");
  place(accept(40, NULL, NULL), 42);
  int sndbuf = 65536;
  if (setsockopt(42, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf)) die("SO_SNDBUF");
  if (write(41, "pair-hello", 10) != 10) die("write 41");
  /* BIG bytes from 42: as many as fit now (non-blocking), the rest after
   * restore. */
  static unsigned char big[BIG];
  for (uint64_t i = 0; i < BIG; i++) big[i] = pattern(i);
  int fl = fcntl(42, F_GETFL);
  fcntl(42, F_SETFL, fl | O_NONBLOCK);
  size_t sent = 0;
  for (;;) {
    ssize_t w = write(42, big + sent, BIG - sent);
    if (w <= 0) break;
    sent += (size_t)w;
  }
  fcntl(42, F_SETFL, fl);
  if (sent == 0 || sent == BIG) die("wrote %zu bytes to 42: expected a full window", sent);
  /* IPv4 and IPv6 connections through a dual-stack listener. */
  place(socket(AF_INET6, SOCK_STREAM, 0), 43);
  int zero = 0;
  setsockopt(43, SOL_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(43, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in6 a6;
  memset(&a6, 0, sizeof a6);
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_any;
  socklen_t a6l = sizeof a6;
  if (bind(43, (struct sockaddr *)&a6, sizeof a6) || listen(43, 4) || getsockname(43, (struct sockaddr *)&a6, &a6l))
    die("dual-stack listener");
  struct sockaddr_in a4 = a;
  a4.sin_port = a6.sin6_port;
  place(socket(AF_INET, SOCK_STREAM, 0), 44);
  if (connect(44, (struct sockaddr *)&a4, sizeof a4)) die("connect 44");
  place(accept(43, NULL, NULL), 45);
  a6.sin6_addr = in6addr_loopback;
  place(socket(AF_INET6, SOCK_STREAM, 0), 46);
  if (connect(46, (struct sockaddr *)&a6, sizeof a6)) die("connect 46");
  place(accept(43, NULL, NULL), 47);
  if (write(44, "v4m-hello", 9) != 9 || write(46, "v6-hello", 8) != 8 || write(47, "v6-back", 7) != 7)
    die("write to the dual-stack connections");
  struct pollfd pq[3] = {{45, POLLIN, 0}, {47, POLLIN, 0}, {46, POLLIN, 0}};
  for (int i = 0; i < 3; i++)
    if (poll(&pq[i], 1, 10000) != 1) die("data on fd %d did not arrive", pq[i].fd);
  struct sockaddr_storage names[48], peers[48];
  for (int fd = 44; fd <= 47; fd++) {
    socklen_t l = sizeof names[fd];
    if (getsockname(fd, (struct sockaddr *)&names[fd], &l)) die("getsockname %d", fd);
    l = sizeof peers[fd];
    if (getpeername(fd, (struct sockaddr *)&peers[fd], &l)) die("getpeername %d", fd);
  }
  /* Wait until "pair-hello" has reached 42. */
  struct pollfd p42 = {42, POLLIN, 0};
  if (poll(&p42, 1, 10000) != 1) die("pair-hello did not arrive");
  ready("port=%d queued=%zu", ntohs(a.sin_port), sent);
  char tmp[16];
  if (ckpt_corrupt && read(42, tmp, 1) != 1) die("corrupt read");

  sigset_t m;
  sigprocmask(SIG_BLOCK, NULL, &m);
  sigdelset(&m, SIGTERM);
  while (!ckpt_term_flag) {
    struct pollfd p[2] = {{40, POLLIN, 0}, {echo_fd, POLLIN, 0}};
    int n = ppoll(p, echo_fd >= 0 ? 2 : 1, NULL, ckpt_spin ? NULL : &m);
    if (n < 0) continue;
    if (p[0].revents & POLLIN) {
      int c = accept4(40, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) {
        if (echo_fd >= 0) close(c);  /* one client */
        else echo_fd = c;
      }
    }
    if (echo_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) echo_once();
  }

  struct timeval tv = {30, 0};
  setsockopt(41, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(42, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char b[16] = {0};
  if (recv_exact(42, b, 10) != 10 || memcmp(b, "pair-hello", 10)) fail("fd 42: expected 'pair-hello', got '%s'", b);
  /* The rest of BIG goes out now that 41 reads. */
  size_t rest = BIG - sent;
  static unsigned char got[BIG];
  size_t have = 0, wrote = sent;
  fcntl(42, F_SETFL, fl | O_NONBLOCK);
  while (have < BIG) {
    if (wrote < BIG) {
      ssize_t w = write(42, big + wrote, BIG - wrote);
      if (w > 0) wrote += (size_t)w;
      else if (errno != EAGAIN) {
        fail("fd 42: write: %s", strerror(errno));
        break;
      }
    }
    struct pollfd p = {41, POLLIN, 0};
    if (poll(&p, 1, 30000) != 1) {
      fail("fd 41: stalled after %zu of %u bytes", have, BIG);
      break;
    }
    ssize_t r = recv(41, got + have, BIG - have, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
      fail("fd 41: %s after %zu of %u bytes", r == 0 ? "end of file" : strerror(errno), have, BIG);
      break;
    }
    if (r > 0) have += (size_t)r;
  }
  (void)rest;
  for (size_t i = 0; i < have; i++)
    if (got[i] != big[i]) {
      fail("fd 41: byte %zu of the stream is %#x, expected %#x", i, got[i], big[i]);
      break;
    }
  fcntl(42, F_SETFL, fl);
  if (write(41, "after41", 7) != 7 || write(42, "after42", 7) != 7) fail("write after: %s", strerror(errno));
  memset(b, 0, sizeof b);
  if (recv_exact(42, b, 7) != 7 || memcmp(b, "after41", 7)) fail("fd 42: expected 'after41', got '%s'", b);
  memset(b, 0, sizeof b);
  if (recv_exact(41, b, 7) != 7 || memcmp(b, "after42", 7)) fail("fd 41: expected 'after42', got '%s'", b);
  struct {
    int fd;
    const char *want;
  } queued[] = {{45, "v4m-hello"}, {47, "v6-hello"}, {46, "v6-back"}};
  for (int i = 0; i < 3; i++) {
    int fd = queued[i].fd;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t n = strlen(queued[i].want);
    memset(b, 0, sizeof b);
    if (recv_exact(fd, b, n) != (int)n || memcmp(b, queued[i].want, n)) fail("fd %d: expected '%s', got '%s'", fd, queued[i].want, b);
  }
  for (int fd = 44; fd <= 47; fd++) {
    struct sockaddr_storage x;
    socklen_t l = sizeof x;
    if (getsockname(fd, (struct sockaddr *)&x, &l) || memcmp(&x, &names[fd], l)) fail("fd %d: its name changed", fd);
    l = sizeof x;
    if (getpeername(fd, (struct sockaddr *)&x, &l) || memcmp(&x, &peers[fd], l)) fail("fd %d: its peer changed", fd);
    int peer = fd ^ 1; /* 44<->45, 46<->47 */
    setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(fd, "reply", 5) != 5) fail("fd %d: write: %s", fd, strerror(errno));
    memset(b, 0, sizeof b);
    if (recv_exact(peer, b, 5) != 5 || memcmp(b, "reply", 5)) fail("fd %d: expected 'reply' from %d, got '%s'", peer, fd, b);
  }
  if (echo_errors) fail("the echo connection failed: %s (%llu bytes echoed)", echo_err, (unsigned long long)echoed);
  ckpt_say("echoed %llu bytes%s\n", (unsigned long long)echoed, echo_closed ? ", client closed" : "");
  verdict();
}
