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
 *   43  (after READY) the connection of one client from outside the tree,
 *       accepted from 40: every byte read is written back (an echo
 *       server), until the client closes it
 *
 * After SIGTERM: 42 reads "pair-hello", 41 reads all BIG bytes and checks
 * the pattern, then "after" goes each way on 41/42; the echo connection,
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
  if (echo_errors) fail("the echo connection failed: %s (%llu bytes echoed)", echo_err, (unsigned long long)echoed);
  ckpt_say("echoed %llu bytes%s\n", (unsigned long long)echoed, echo_closed ? ", client closed" : "");
  verdict();
}
