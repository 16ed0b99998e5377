// Validation of the terminal records in files.img: a good set (a pty of
// the tree that is a session's controlling terminal with a foreground
// group, a locked pty with its master alone, a shell job's terminal, a
// /dev/tty fd) passes; each rule refuses one broken field, naming the
// terminal.
#include <doctest/doctest.h>
#include <sys/sysmacros.h>

#include <functional>

#include "common/image/task_images.h"
#include "common/tty.h"

using namespace cr;

namespace {

TermiosRec termios() {
  TermiosRec t;
  t.cc.assign(kTermiosNcc, 0);
  t.cflag = 0277;
  return t;
}

FileRec file(uint64_t id, const char* type, uint64_t tty) {
  FileRec f;
  f.id = id;
  f.type = type;
  f.tty_id = tty;
  f.path = "/dev/pts/0";
  return f;
}

// Tasks: 10 (root, its own session), 11 (leads session 11), 12 (in it,
// group 12).
Pstree tree() {
  Pstree t;
  t.root_pid = 10;
  auto add = [&](int64_t pid, int64_t ppid, int64_t pgid, int64_t sid) {
    PstreeEntry e;
    e.pid = pid;
    e.ppid = ppid;
    e.pgid = pgid;
    e.sid = sid;
    e.threads = {pid};
    t.tasks.push_back(e);
  };
  add(10, 0, 10, 10);
  add(11, 10, 11, 11);
  add(12, 11, 12, 11);
  return t;
}

// 1: pty 0, the controlling terminal of session 11, foreground group 12
// (files 1 master, 2 and 3 slaves); 2: pty 1 locked, its master alone
// (file 4); 3: the external terminal (file 5); file 6: /dev/tty.
Files good() {
  Files f;
  TtyRec a;
  a.id = 1;
  a.kind = "pty";
  a.index = 0;
  a.termios = termios();
  a.rows = 24;
  a.cols = 80;
  a.sid = 11;
  a.fg_pgrp = 12;
  TtyRec b = a;
  b.id = 2;
  b.index = 1;
  b.sid = b.fg_pgrp = 0;
  b.locked = true;
  TtyRec e;
  e.id = 3;
  e.kind = "external";
  e.path = "/dev/pts/7";
  e.termios = termios();
  e.fg_pgrp = 10;
  f.ttys = {a, b, e};
  f.files = {file(1, "pty-master", 1), file(2, "pty-slave", 1), file(3, "pty-slave", 1), file(4, "pty-master", 2),
             file(5, "tty-external", 3), file(6, "dev-tty", 0)};
  return f;
}

void refused(const char* what, const std::function<void(Files&, Pstree&)>& breakit, uint64_t want_id,
             const char* says) {
  CAPTURE(what);
  Files f = good();
  Pstree t = tree();
  breakit(f, t);
  uint64_t bad = 0;
  Status st = validate_ttys(f, t, &bad);
  REQUIRE_FALSE(st.ok());
  CHECK_MESSAGE(st.error().message.find(says) != std::string::npos, st.error().message);
  CHECK(st.error().message.rfind("files.img: ", 0) == 0);
  if (want_id) CHECK(bad == want_id);
}

}  // namespace

TEST_CASE("ttys: a good set of terminal records passes") {
  Files f = good();
  Pstree t = tree();
  CHECK(validate_ttys(f, t).ok());
  CHECK(is_tty_type("pty-master"));
  CHECK(is_tty_type("dev-tty"));
  CHECK_FALSE(is_tty_type("chr"));
  CHECK(tty_name(f.ttys[0]) == "/dev/pts/0");
  CHECK(tty_name(f.ttys[2]) == "/dev/pts/7");
}

TEST_CASE("ttys: each broken field is refused, naming the terminal") {
  refused("duplicate id", [](Files& f, Pstree&) { f.ttys[1].id = 1; }, 1, "duplicate id");
  refused("unknown kind", [](Files& f, Pstree&) { f.ttys[1].kind = "serial"; }, 2, "unknown kind");
  refused("negative index", [](Files& f, Pstree&) { f.ttys[1].index = -1; }, 2, "bad pty index");
  refused("huge index", [](Files& f, Pstree&) { f.ttys[1].index = 1 << 20; }, 2, "bad pty index");
  refused("short c_cc", [](Files& f, Pstree&) { f.ttys[0].termios.cc.pop_back(); }, 1, "c_cc is not 19 bytes");
  refused("two external", [](Files& f, Pstree&) {
    TtyRec e = f.ttys[2];
    e.id = 4;
    f.ttys.push_back(e);
  }, 4, "a second terminal outside the tree");
  refused("external with pty settings", [](Files& f, Pstree&) { f.ttys[2].locked = true; }, 3, "pty settings");
  refused("external with a session", [](Files& f, Pstree&) { f.ttys[2].sid = 11; }, 3, "pty settings");
  refused("session not led in the tree", [](Files& f, Pstree&) { f.ttys[0].sid = 12; }, 1,
          "no process of the tree leads");
  refused("session leader a zombie", [](Files&, Pstree& t) { t.tasks[1].zombie = true; }, 1,
          "no process of the tree leads");
  refused("two terminals of one session", [](Files& f, Pstree&) { f.ttys[1].sid = 11; }, 2,
          "a second controlling terminal");
  refused("foreground group without session", [](Files& f, Pstree&) { f.ttys[1].fg_pgrp = 12; }, 2,
          "a foreground group without a session");
  refused("foreground group of another session", [](Files& f, Pstree&) { f.ttys[0].fg_pgrp = 10; }, 1,
          "its foreground group is no group of the tree");
  refused("external foreground no group", [](Files& f, Pstree&) { f.ttys[2].fg_pgrp = 99; }, 3,
          "its foreground group is no group of the tree");
  refused("pty without master", [](Files& f, Pstree&) { f.files[3].type = "pty-slave"; }, 2, "no master in the tree");
  refused("pty with two masters", [](Files& f, Pstree&) { f.files[1].type = "pty-master"; }, 1,
          "more than one master");
  refused("file of a missing terminal", [](Files& f, Pstree&) { f.files[1].tty_id = 9; }, 0, "no pty terminal 9");
  refused("tty-external on a pty", [](Files& f, Pstree&) { f.files[4].tty_id = 1; }, 0, "no external terminal 1");
  refused("/dev/tty with an id", [](Files& f, Pstree&) { f.files[5].tty_id = 1; }, 0, "/dev/tty with a terminal id");
  refused("a terminal id on a regular file", [](Files& f, Pstree&) {
    f.files.push_back(file(7, "reg", 1));
  }, 0, "a terminal id for a reg");
}

TEST_CASE("ttys: a Files record with terminals survives CBOR and back") {
  Files f = good();
  nlohmann::json j = f;
  auto back = nlohmann::json::from_cbor(nlohmann::json::to_cbor(j)).get<Files>();
  REQUIRE(back.ttys.size() == 3);
  CHECK(back.ttys[0].termios.cc.size() == kTermiosNcc);
  CHECK(back.ttys[0].fg_pgrp == 12);
  CHECK(back.files[4].tty_id == 3);
  Pstree t = tree();
  CHECK(validate_ttys(back, t).ok());
}

TEST_CASE("ttys: /dev/pts/N from a device number") {
  CHECK(pty_index_of(makedev(136, 0)) == 0);
  CHECK(pty_index_of(makedev(136, 255)) == 255);
  CHECK(pty_index_of(makedev(136, 4000)) == 4000);  // the slave major takes every minor
  CHECK(pty_index_of(makedev(4, 1)) == -1);         // a virtual console
  CHECK(pty_index_of(makedev(5, 2)) == -1);         // /dev/ptmx
}
