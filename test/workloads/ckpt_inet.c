/* ckpt_inet: inet sockets that hold no connection, across a checkpoint.
 *
 *   40  TCP IPv4 listener on 127.0.0.1 (port chosen by the kernel), backlog
 *       7, SO_REUSEADDR, SO_KEEPALIVE (TCP_KEEPIDLE 77, TCP_KEEPINTVL 11,
 *       TCP_KEEPCNT 5), TCP_NODELAY, SO_SNDBUF 40000,
 *       SO_RCVBUF 60000, O_NONBLOCK
 *   41  TCP IPv6 listener on ::1, IPV6_V6ONLY, SO_REUSEPORT, backlog 5
 *   42  TCP dual-stack listener on :: (IPV6_V6ONLY off), backlog 3
 *   43  UDP IPv4 bound to 127.0.0.1
 *   44  UDP IPv4 connected to 43 (its port bound by connect)
 *   45  UDP IPv6 bound to ::1 and connected to 46
 *   46  UDP IPv6 bound to ::1, IPV6_V6ONLY
 *   47  TCP IPv4 socket never bound
 *   48  TCP IPv4 socket bound to 127.0.0.1, not listening
 *
 * After SIGTERM every name, peer, option and flag is checked against what
 * was set, then each works: a connection to 40 (IPv4), 41 (IPv6) and 42
 * (IPv4 through the dual-stack listener) is accepted with the right peer;
 * a datagram 44 -> 43 and 45 -> 46 arrives from the right sender; 47 and
 * 48 can still connect to 40.
 * --selftest-corrupt: TCP_NODELAY is turned off on 40 after READY.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "ckpt_common.h"

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
  struct sockaddr_storage ss;
} addr_t;

static addr_t names[64];
static socklen_t name_lens[64];
static addr_t peers[64];

static void place(int fd, int at) {
  if (fd < 0) die("making fd %d", at);
  if (fd != at) {
    if (dup2(fd, at) < 0) die("dup2 %d", at);
    close(fd);
  }
}

static void seti(int fd, int level, int opt, int v, const char *what) {
  if (setsockopt(fd, level, opt, &v, sizeof v)) die("fd %d: setsockopt %s", fd, what);
}

static int geti(int fd, int level, int opt) {
  int v = -1;
  socklen_t l = sizeof v;
  if (getsockopt(fd, level, opt, &v, &l)) return -1;
  return v;
}

static addr_t v4(const char *a, int port) {
  addr_t x;
  memset(&x, 0, sizeof x);
  x.in.sin_family = AF_INET;
  x.in.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, a, &x.in.sin_addr);
  return x;
}

static addr_t v6(const char *a, int port) {
  addr_t x;
  memset(&x, 0, sizeof x);
  x.in6.sin6_family = AF_INET6;
  x.in6.sin6_port = htons((uint16_t)port);
  inet_pton(AF_INET6, a, &x.in6.sin6_addr);
  return x;
}

static socklen_t len_of(const addr_t *a) { return a->sa.sa_family == AF_INET ? sizeof a->in : sizeof a->in6; }

static int port_of(const addr_t *a) { return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port); }

static void show(const addr_t *a, char *b, size_t n) {
  char t[INET6_ADDRSTRLEN] = "?";
  if (a->sa.sa_family == AF_INET) inet_ntop(AF_INET, &a->in.sin_addr, t, sizeof t);
  else inet_ntop(AF_INET6, &a->in6.sin6_addr, t, sizeof t);
  snprintf(b, n, "%s:%d", t, port_of(a));
}

static int socket_at(int family, int type, int at) {
  place(socket(family, type, 0), at);
  return at;
}

static void bind_at(int fd, addr_t a) {
  if (bind(fd, &a.sa, len_of(&a))) die("bind fd %d", fd);
}

static void remember(int fd) {
  name_lens[fd] = sizeof names[fd];
  if (getsockname(fd, &names[fd].sa, &name_lens[fd])) die("getsockname %d", fd);
}

static int same(const addr_t *a, const addr_t *b) {
  if (a->sa.sa_family != b->sa.sa_family) return 0;
  if (a->sa.sa_family == AF_INET) return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
  return a->in6.sin6_port == b->in6.sin6_port && !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);
}

static void expect_name(int fd, int peer, const addr_t *want) {
  addr_t got;
  socklen_t l = sizeof got;
  memset(&got, 0, sizeof got);
  int r = peer ? getpeername(fd, &got.sa, &l) : getsockname(fd, &got.sa, &l);
  char g[80], w[80];
  show(&got, g, sizeof g);
  show(want, w, sizeof w);
  if (r) fail("fd %d: %s: %s", fd, peer ? "getpeername" : "getsockname", strerror(errno));
  else if (!same(&got, want)) fail("fd %d: %s is %s, expected %s", fd, peer ? "peer" : "name", g, w);
}

static void expect_opt(int fd, int level, int opt, const char *name, int want) {
  int got = geti(fd, level, opt);
  if (got != want) fail("fd %d: %s is %d, expected %d", fd, name, got, want);
}

/* Connect a new socket of `family` to `to`, accept it on `l`: the accepted
 * peer must be the client's name. */
static void check_accepts(int l, int family, const addr_t *to, const char *what) {
  int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0 || connect(c, &to->sa, len_of(to))) {
    fail("%s: connect: %s", what, strerror(errno));
    if (c >= 0) close(c);
    return;
  }
  addr_t cn;
  socklen_t cl = sizeof cn;
  getsockname(c, &cn.sa, &cl);
  struct pollfd p = {l, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) {
    fail("%s: nothing to accept", what);
    close(c);
    return;
  }
  addr_t pa;
  socklen_t pl = sizeof pa;
  int a = accept4(l, &pa.sa, &pl, SOCK_CLOEXEC);
  if (a < 0) {
    fail("%s: accept: %s", what, strerror(errno));
  } else {
    /* A v4 client on the dual-stack listener shows as ::ffff:a.b.c.d. */
    if (family == AF_INET && pa.sa.sa_family == AF_INET6) {
      if (ntohs(pa.in6.sin6_port) != port_of(&cn) || !IN6_IS_ADDR_V4MAPPED(&pa.in6.sin6_addr))
        fail("%s: the accepted peer is not the IPv4 client", what);
    } else if (!same(&pa, &cn)) {
      fail("%s: the accepted peer is not the client", what);
    }
    if (write(c, "hi", 2) != 2) fail("%s: write", what);
    char b[2];
    if (recv(a, b, 2, MSG_WAITALL) != 2 || memcmp(b, "hi", 2)) fail("%s: no data through the connection", what);
    /* The client closes first, so that its end (not the listener's port)
     * waits in TIME_WAIT: a restore of these images after dump
     * --leave-running binds the listener's port again. */
    close(c);
    c = -1;
    if (recv(a, b, 1, 0) != 0) fail("%s: no end of file after the client closed", what);
    close(a);
  }
  if (c >= 0) close(c);
}

static void check_dgram(int from, int to, const char *msg) {
  if (send(from, msg, strlen(msg), 0) != (ssize_t)strlen(msg)) {
    fail("fd %d: send: %s", from, strerror(errno));
    return;
  }
  struct pollfd p = {to, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) {
    fail("fd %d: the datagram from %d did not arrive", to, from);
    return;
  }
  char b[64] = {0};
  addr_t src;
  socklen_t sl = sizeof src;
  ssize_t n = recvfrom(to, b, sizeof b - 1, MSG_DONTWAIT, &src.sa, &sl);
  if (n != (ssize_t)strlen(msg) || strcmp(b, msg)) fail("fd %d: got '%s', expected '%s'", to, b, msg);
  if (!same(&src, &names[from])) fail("fd %d: the datagram is not from fd %d's name", to, from);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  int s = socket_at(AF_INET, SOCK_STREAM, 40);
  seti(s, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
  seti(s, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
  seti(s, SOL_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  seti(s, SOL_TCP, TCP_KEEPIDLE, 77, "TCP_KEEPIDLE");
  seti(s, SOL_TCP, TCP_KEEPINTVL, 11, "TCP_KEEPINTVL");
  seti(s, SOL_TCP, TCP_KEEPCNT, 5, "TCP_KEEPCNT");
  seti(s, SOL_SOCKET, SO_SNDBUF, 40000, "SO_SNDBUF");
  seti(s, SOL_SOCKET, SO_RCVBUF, 60000, "SO_RCVBUF");
  bind_at(s, v4("127.0.0.1", 0));
  if (listen(s, 7)) die("listen 40");
  if (fcntl(s, F_SETFL, O_NONBLOCK)) die("O_NONBLOCK 40");
  s = socket_at(AF_INET6, SOCK_STREAM, 41);
  seti(s, SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  seti(s, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
  bind_at(s, v6("::1", 0));
  if (listen(s, 5)) die("listen 41");
  s = socket_at(AF_INET6, SOCK_STREAM, 42);
  seti(s, SOL_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
  bind_at(s, v6("::", 0));
  if (listen(s, 3)) die("listen 42");
  s = socket_at(AF_INET, SOCK_DGRAM, 43);
  bind_at(s, v4("127.0.0.1", 0));
  remember(43);
  s = socket_at(AF_INET, SOCK_DGRAM, 44);
  if (connect(s, &names[43].sa, name_lens[43])) die("connect 44");
  s = socket_at(AF_INET6, SOCK_DGRAM, 46);
  seti(s, SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  bind_at(s, v6("::1", 0));
  remember(46);
  s = socket_at(AF_INET6, SOCK_DGRAM, 45);
  bind_at(s, v6("::1", 0));
  if (connect(s, &names[46].sa, name_lens[46])) die("connect 45");
  socket_at(AF_INET, SOCK_STREAM, 47);
  s = socket_at(AF_INET, SOCK_STREAM, 48);
  bind_at(s, v4("127.0.0.1", 0));
  for (int fd = 40; fd <= 48; fd++) remember(fd);
  peers[44] = names[43];
  peers[45] = names[46];
  ready("port40=%d port41=%d port42=%d", port_of(&names[40]), port_of(&names[41]), port_of(&names[42]));
  if (ckpt_corrupt) seti(40, SOL_TCP, TCP_NODELAY, 0, "TCP_NODELAY");
  wait_for_term();

  for (int fd = 40; fd <= 48; fd++) expect_name(fd, 0, &names[fd]);
  expect_name(44, 1, &peers[44]);
  expect_name(45, 1, &peers[45]);
  addr_t none;
  socklen_t nl = sizeof none;
  for (int fd = 40; fd <= 48; fd++)
    if (fd != 44 && fd != 45 && getpeername(fd, &none.sa, &nl) == 0) fail("fd %d: has a peer", fd);
  expect_opt(40, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN", 1);
  expect_opt(41, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN", 1);
  expect_opt(42, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN", 1);
  expect_opt(48, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN", 0);
  expect_opt(40, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 1);
  expect_opt(41, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 0);
  expect_opt(40, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
  expect_opt(41, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 0);
  expect_opt(40, SOL_TCP, TCP_NODELAY, "TCP_NODELAY", 1);
  expect_opt(40, SOL_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", 77);
  expect_opt(40, SOL_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", 11);
  expect_opt(40, SOL_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", 5);
  expect_opt(42, SOL_TCP, TCP_NODELAY, "TCP_NODELAY", 0);
  expect_opt(40, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 80000);
  expect_opt(40, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 120000);
  expect_opt(41, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT", 1);
  expect_opt(42, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT", 0);
  expect_opt(41, SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 1);
  expect_opt(42, SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 0);
  /* Binding to a specific IPv6 address turns IPV6_V6ONLY on (inet6_bind). */
  expect_opt(45, SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 1);
  expect_opt(47, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 0);
  expect_opt(46, SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 1);
  expect_opt(40, SOL_SOCKET, SO_TYPE, "SO_TYPE", SOCK_STREAM);
  expect_opt(43, SOL_SOCKET, SO_TYPE, "SO_TYPE", SOCK_DGRAM);
  /* listen()'s backlog: a listener's TCP_INFO tcpi_sacked. */
  int backlogs[3] = {7, 5, 3};
  for (int fd = 40; fd <= 42; fd++) {
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &tl)) fail("fd %d: TCP_INFO", fd);
    else if ((int)ti.tcpi_sacked != backlogs[fd - 40]) fail("fd %d: backlog %u, expected %d", fd, ti.tcpi_sacked, backlogs[fd - 40]);
  }
  if (!(fcntl(40, F_GETFL) & O_NONBLOCK)) fail("fd 40: O_NONBLOCK is off");
  if (fcntl(41, F_GETFL) & O_NONBLOCK) fail("fd 41: O_NONBLOCK is on");
  check_accepts(40, AF_INET, &names[40], "fd 40 over IPv4");
  check_accepts(41, AF_INET6, &names[41], "fd 41 over IPv6");
  addr_t dual4 = v4("127.0.0.1", port_of(&names[42]));
  check_accepts(42, AF_INET, &dual4, "fd 42 (dual-stack) over IPv4");
  addr_t dual6 = v6("::1", port_of(&names[42]));
  check_accepts(42, AF_INET6, &dual6, "fd 42 (dual-stack) over IPv6");
  check_dgram(44, 43, "v4-after");
  check_dgram(45, 46, "v6-after");
  /* 47 and 48 still make connections. */
  for (int fd = 47; fd <= 48; fd++) {
    if (connect(fd, &names[40].sa, len_of(&names[40]))) {
      fail("fd %d: connect to 40: %s", fd, strerror(errno));
      continue;
    }
    struct pollfd p = {40, POLLIN, 0};
    int a = poll(&p, 1, 10000) == 1 ? accept(40, NULL, NULL) : -1;
    if (a < 0) {
      fail("fd 40: no connection from fd %d", fd);
      continue;
    }
    /* Here the accepted end closes first: it waits in TIME_WAIT on 40's
     * port, which 40 (SO_REUSEADDR) can bind beside, while 48's own port
     * stays free for a restore after --leave-running. */
    close(a);
    char b;
    if (recv(fd, &b, 1, 0) != 0) fail("fd %d: no end of file from 40's accepted end", fd);
  }
  expect_name(48, 0, &names[48]);
  verdict();
}
