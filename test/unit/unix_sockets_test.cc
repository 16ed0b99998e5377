// Validation of the unix socket records in files.img: a good set (a
// socketpair, a listener with an accepted and a pending connection, a
// named datagram socket and one connected to it, a socket whose peer
// closed) passes; each rule refuses one broken field.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <functional>

#include "common/image/task_images.h"

using namespace cr;

namespace {

Bytes name(const std::string& s) { return Bytes{{s.begin(), s.end()}}; }

UnixSocketRec sock(uint64_t id, int type, const char* state) {
  UnixSocketRec s;
  s.file_id = id;
  s.ino = 1000 + id;
  s.type = type;
  s.state = state;
  s.sndbuf = s.rcvbuf = 212992;
  return s;
}

UnixSocketRec connected(uint64_t id, int type, uint64_t peer) {
  UnixSocketRec s = sock(id, type, "connected");
  s.peer_kind = "tree";
  s.peer = peer;
  return s;
}

// 1/2 stream socketpair ("abc" queued to 1); 3 listener "srv.sock" in /tmp,
// 4 accepted from it, 5 its client, 6 a pending client; 7 a datagram
// socket bound to an abstract name with two messages, 8 connected to it;
// 9 a seqpacket socket whose peer closed.
Files good_files() {
  Files f;
  for (uint64_t id = 1; id <= 9; id++) {
    FileRec r;
    r.id = id;
    r.type = "unix";
    f.files.push_back(r);
  }
  UnixSocketRec s1 = connected(1, SOCK_STREAM, 2);
  s1.queue = {name("abc")};
  UnixSocketRec l = sock(3, SOCK_STREAM, "listening");
  l.name = name("srv.sock");
  l.dir = "/tmp";
  l.backlog = 4;
  l.pending = {6};
  UnixSocketRec a = connected(4, SOCK_STREAM, 5);
  a.name = l.name;
  a.dir = l.dir;
  a.listener = 3;
  UnixSocketRec p = sock(6, SOCK_STREAM, "connected");
  p.peer_kind = "pending";
  p.listener = 3;
  UnixSocketRec d = sock(7, SOCK_DGRAM, "unconnected");
  d.name = Bytes{{0, 'a', 'b'}};
  d.queue = {name("one"), name("two")};
  UnixSocketRec c = sock(9, SOCK_SEQPACKET, "connected");
  c.peer_kind = "closed";
  c.queue = {name("m")};
  f.unix_sockets = {s1, connected(2, SOCK_STREAM, 1), l, a, connected(5, SOCK_STREAM, 4), p, d,
                    connected(8, SOCK_DGRAM, 7), c};
  return f;
}

FdTable good_table() {
  FdTable t;
  t.pid = 100;
  for (int i = 1; i <= 9; i++) t.fds.push_back({10 + i, false, static_cast<uint64_t>(i)});
  return t;
}

std::string refusal(const Files& f) {
  auto st = validate_files(f, good_table(), "fdinfo-100.img");
  return st ? std::string() : st.error().str();
}

// The good set with one change must be refused with `says` in the message.
void refused(const std::function<void(Files&)>& change, const std::string& says) {
  Files f = good_files();
  change(f);
  std::string r = refusal(f);
  CAPTURE(says);
  CAPTURE(r);
  CHECK(r.find(says) != std::string::npos);
}

UnixSocketRec& rec(Files& f, uint64_t id) {
  for (auto& s : f.unix_sockets)
    if (s.file_id == id) return s;
  throw std::runtime_error("no such record");
}

}  // namespace

TEST_CASE("unix sockets: a good set passes") { CHECK(refusal(good_files()) == ""); }

TEST_CASE("unix sockets: records match the files of type unix") {
  refused([](Files& f) { f.unix_sockets.push_back(rec(f, 1)); }, "two unix socket records");
  refused([](Files& f) { f.unix_sockets.erase(f.unix_sockets.begin()); }, "unix socket 1 has no record");
  refused([](Files& f) { rec(f, 1).file_id = 77; }, "which is no unix socket");
}

TEST_CASE("unix sockets: type and state") {
  refused([](Files& f) { rec(f, 1).type = SOCK_RAW; }, "unknown type");
  refused([](Files& f) { rec(f, 7).state = "closing"; }, "unknown state");
  refused([](Files& f) { rec(f, 7).state = "listening"; }, "a datagram socket cannot listen");
  refused([](Files& f) { rec(f, 7).state = "connected"; }, "connected without a peer");
  refused([](Files& f) { rec(f, 3).name = Bytes(); rec(f, 3).dir = ""; }, "listening without a name");
}

TEST_CASE("unix sockets: names") {
  refused([](Files& f) { rec(f, 7).name = Bytes{std::vector<uint8_t>(109, 'x')}; }, "name longer than sun_path");
  refused([](Files& f) { rec(f, 3).name = name(std::string("a\0b", 3)); }, "path name with a NUL byte");
  refused([](Files& f) { rec(f, 3).dir = ""; }, "a relative path name needs its directory");
  refused([](Files& f) { rec(f, 3).dir = "tmp"; }, "directory is not absolute");
  refused([](Files& f) { rec(f, 7).unlinked = true; }, "without a path name");
  refused([](Files& f) { rec(f, 8).name = Bytes{{0, 'a', 'b'}}; }, "bound to the name of another socket");
}

TEST_CASE("unix sockets: peers") {
  refused([](Files& f) { rec(f, 1).peer = 42; }, "its peer is no other unix socket");
  refused([](Files& f) { rec(f, 1).peer = 1; }, "its peer is no other unix socket");
  refused([](Files& f) { rec(f, 8).peer = 9; }, "its peer is of another type");
  refused([](Files& f) { rec(f, 1).peer = 5; rec(f, 5).peer = 1; }, "not connected back");
  refused([](Files& f) { rec(f, 7).name = Bytes(); rec(f, 7).queue = {}; }, "connected to an unnamed datagram socket");
  refused([](Files& f) { rec(f, 9).peer_kind = "somewhere"; }, "unknown peer kind");
  refused([](Files& f) { rec(f, 9).peer = 1; }, "a peer file id without a peer in the tree");
  refused([](Files& f) { rec(f, 2).state = "unconnected"; rec(f, 2).peer_kind = ""; rec(f, 2).peer = 0; },
          "not connected back");
  refused([](Files& f) { rec(f, 9).state = "unconnected"; }, "a peer without being connected");
}

TEST_CASE("unix sockets: a datagram peer outside the tree, by name") {
  auto external = [](Files& f) -> UnixSocketRec& {
    UnixSocketRec& s = rec(f, 8);
    s.peer_kind = "external";
    s.peer = 0;
    s.peer_name = name("/dev/log");
    return s;
  };
  Files ok = good_files();
  external(ok);
  CHECK(refusal(ok) == "");
  refused([&](Files& f) { external(f).peer_name = name("dev/log"); }, "peer name neither absolute nor abstract");
  refused([&](Files& f) { external(f).peer_name = Bytes{std::vector<uint8_t>(109, '/')}; },
          "peer name longer than sun_path");
  refused([&](Files& f) { external(f).peer_name = name(std::string("/a\0b", 4)); }, "peer path name with a NUL byte");
  refused([&](Files& f) { external(f).queue = {name("x")}; }, "which it alone could send");
  refused([](Files& f) { rec(f, 9).peer_name = name("/dev/log"); }, "a peer name for other than a datagram socket");
}

TEST_CASE("unix sockets: listeners, accepted and pending connections") {
  refused([](Files& f) { rec(f, 4).listener = 1; }, "its listener is no listening socket");
  refused([](Files& f) { rec(f, 3).pending = {}; }, "pending, but not in its listener's queue");
  refused([](Files& f) { rec(f, 6).queue = {name("x")}; }, "a pending connection with data queued");
  refused([](Files& f) { rec(f, 4).name = name("other"); }, "accepted, but its name is not its listener's");
  refused([](Files& f) { rec(f, 5).listener = 3; rec(f, 5).name = rec(f, 3).name; rec(f, 5).dir = "/tmp"; },
          "both ends accepted");
  refused([](Files& f) { rec(f, 6).peer_kind = "closed"; rec(f, 3).pending = {}; },
          "accepted, but its name is not its listener's");
  refused(
      [](Files& f) {
        rec(f, 6).peer_kind = "";
        rec(f, 6).state = "unconnected";
        rec(f, 3).pending = {};
      },
      "a listener without a connection through it");
  refused([](Files& f) { rec(f, 6).listener = 0; rec(f, 3).pending = {}; }, "pending without a listener");
  refused([](Files& f) { rec(f, 3).queue = {name("x")}; }, "a listener with a peer or queued data");
  refused([](Files& f) { rec(f, 3).backlog = 0; rec(f, 3).pending = {6, 6}; }, "more pending connections");
  refused([](Files& f) { rec(f, 3).pending = {6, 6}; }, "not a pending client of it");
  refused([](Files& f) { rec(f, 7).backlog = 3; }, "a backlog without listening");
}

TEST_CASE("unix sockets: queues, shutdown and options") {
  refused([](Files& f) { rec(f, 7).queue.assign(kMaxUnixQueueMessages + 1, name("m")); }, "queue too large");
  refused([](Files& f) { rec(f, 1).queue = {name("a"), name("b")}; }, "a stream queue is one non-empty run");
  refused([](Files& f) { rec(f, 1).queue = {Bytes()}; }, "a stream queue is one non-empty run");
  refused([](Files& f) { rec(f, 7).queue.push_back(Bytes()); }, "an empty datagram");
  refused([](Files& f) { rec(f, 7).name = Bytes(); rec(f, 8).peer_kind = "closed"; rec(f, 8).peer = 0; },
          "data queued to an unnamed, unconnected datagram socket");
  refused(
      [](Files& f) {
        rec(f, 7).state = "connected";
        rec(f, 7).peer_kind = "closed";
        rec(f, 8).queue = {name("x")};
      },
      "data queued to an unnamed datagram socket from a peer not connected to it");
  refused([](Files& f) { rec(f, 1).shutdown = 4; }, "bad shutdown bits");
  refused([](Files& f) { rec(f, 1).sndbuf = -1; }, "bad option value");
  refused([](Files& f) { rec(f, 1).rcvtimeo_us = -5; }, "bad option value");
  refused([](Files& f) { rec(f, 1).peek_off = -2; }, "bad option value");
}
