// common/proc/fdinfo and the fd links of common/proc/misc.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "common/proc/fdinfo.h"
#include "common/proc/misc.h"

using namespace cr;
using namespace cr::proc;

namespace {

// Real fdinfo files (6.18) of several kinds of descriptors.
const char kFile[] = "pos:\t1234\nflags:\t0100002\nmnt_id:\t27\nino:\t10953079\n";
const char kEventfd[] =
    "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1036\n"
    "eventfd-count:                5\neventfd-id: 1\neventfd-semaphore: 0\n";
const char kEpoll[] =
    "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1036\n"
    "tfd:        6 events:       19 data:               2a  pos:0 ino:40c sdev:10\n"
    "tfd:        7 events:        1 data:                7  pos:0 ino:40c sdev:10\n";
const char kTimerfd[] =
    "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1036\n"
    "clockid: 1\nticks: 0\nsettime flags: 00\nit_value: (99, 982178578)\nit_interval: (1, 0)\n";
const char kSignalfd[] = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1036\nsigmask:\t0000001000000200\n";
const char kInotify[] =
    "pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1036\n"
    "inotify wd:1 ino:3c51a sdev:fe00000 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
    "f_handle:1ac5030000000000\n";

std::string fdinfo_err(std::string_view text) {
  auto r = parse_fdinfo(text, "/proc/812/fdinfo/3");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

}  // namespace

TEST_CASE("proc fdinfo: real 6.18 fdinfo of files, eventfd, epoll, timerfd, signalfd, inotify") {
  auto f = parse_fdinfo(kFile);
  REQUIRE(f.ok());
  CHECK(f->pos == 1234);
  CHECK(f->flags == (0100000 | O_RDWR));  // the kernel's O_LARGEFILE
  CHECK(f->mnt_id == 27);
  CHECK(f->ino == 10953079);
  CHECK(f->extra.empty());

  auto e = parse_fdinfo(kEventfd);
  REQUIRE(e.ok());
  CHECK(e->flags == (O_NONBLOCK | O_RDWR));
  REQUIRE(e->find("eventfd-count"));
  CHECK(*e->find("eventfd-count") == "5");
  CHECK(*e->find("eventfd-id") == "1");
  CHECK(*e->find("eventfd-semaphore") == "0");
  CHECK(e->find("tfd") == nullptr);

  auto p = parse_fdinfo(kEpoll);
  REQUIRE(p.ok());
  auto tfds = p->find_all("tfd");
  REQUIRE(tfds.size() == 2);
  CHECK(tfds[0] == "6 events:       19 data:               2a  pos:0 ino:40c sdev:10");
  CHECK(tfds[1].starts_with("7 events:"));

  auto t = parse_fdinfo(kTimerfd);
  REQUIRE(t.ok());
  CHECK(*t->find("clockid") == "1");
  CHECK(*t->find("settime") == "flags: 00");
  CHECK(*t->find("it_value") == "(99, 982178578)");
  CHECK(t->extra.size() == 5);

  auto s = parse_fdinfo(kSignalfd);
  REQUIRE(s.ok());
  CHECK(*s->find("sigmask") == "0000001000000200");

  auto i = parse_fdinfo(kInotify);
  REQUIRE(i.ok());
  CHECK(i->flags == 0);
  REQUIRE(i->find("inotify"));
  CHECK(i->find("inotify")->starts_with("wd:1 ino:3c51a "));

  // Negative positions exist (some character devices).
  auto neg = parse_fdinfo("pos:\t-4096\nflags:\t0100000\nmnt_id:\t5\nino:\t9\n");
  REQUIRE(neg.ok());
  CHECK(neg->pos == -4096);
}

TEST_CASE("proc fdinfo: malformed input gives errors naming file and line") {
  CHECK(fdinfo_err("pos:\t0\nflags:\t02\nmnt_id:\t17\n") == "/proc/812/fdinfo/3: no ino line");
  CHECK(fdinfo_err("flags:\t02\nmnt_id:\t17\nino:\t1\n") == "/proc/812/fdinfo/3: no pos line");
  CHECK(fdinfo_err("pos:\t0\nflags:\t09\nmnt_id:\t17\nino:\t1\n") == "/proc/812/fdinfo/3: line 2: flags: bad value '09'");
  CHECK(fdinfo_err("pos:\t0\nflags:\t077777777777\nmnt_id:\t17\nino:\t1\n").find("flags: bad value") != std::string::npos);
  CHECK(fdinfo_err("pos:\t0\npos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1\n") ==
        "/proc/812/fdinfo/3: line 2: repeated pos line");
  CHECK(fdinfo_err("pos:\t99999999999999999999\nflags:\t02\nmnt_id:\t17\nino:\t1\n").find("line 1: pos: bad value") !=
        std::string::npos);
  CHECK(fdinfo_err("pos:\t\nflags:\t02\nmnt_id:\t17\nino:\t1\n").find("pos: bad value ''") != std::string::npos);
  CHECK(fdinfo_err("pos:\t0\nflags:\t02\nmnt_id:\tx\nino:\t1\n").find("mnt_id: bad value 'x'") != std::string::npos);
  CHECK(fdinfo_err("pos:\t0\nflags:\t02\nmnt_id:\t1\nino:\t-1\n").find("ino: bad value '-1'") != std::string::npos);
  CHECK(fdinfo_err("pos:\t0\nflags:\t02\nmnt_id:\t1\nino:\t1\n\n").find("line 5: empty line") != std::string::npos);
  CHECK(fdinfo_err("pos:\t0\nflags:\t02\nmnt_id:\t1\nino:\t1\n:x\n").find("line 5: bad line") != std::string::npos);
  CHECK(fdinfo_err("pos:\t0\nflags:\t02\nmnt_id:\t1\nino:\t1").find("line 4: truncated line") != std::string::npos);
  // Cut anywhere before the end of the four common lines: an error.
  std::string_view all(kEventfd);
  for (size_t n = 0; n < all.find("eventfd-count"); n++) CHECK_FALSE(parse_fdinfo(all.substr(0, n)).ok());
}

TEST_CASE("proc fdinfo: live descriptors of this process") {
  char path[] = "/tmp/crtools-fdinfo-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  int afd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(afd >= 0);
  REQUIRE(lseek(fd, 77, SEEK_SET) == 77);
  int efd = eventfd(42, EFD_NONBLOCK);
  REQUIRE(efd >= 0);

  auto fds = list_fds(getpid());
  REQUIRE(fds.ok());
  CHECK(std::is_sorted(fds->begin(), fds->end()));
  for (int want : {fd, afd, efd}) CHECK(std::find(fds->begin(), fds->end(), want) != fds->end());

  struct stat st;
  REQUIRE(fstat(fd, &st) == 0);
  auto a = read_fdinfo(getpid(), fd);
  REQUIRE(a.ok());
  CHECK(a->pos == 77);
  CHECK((a->flags & O_ACCMODE) == O_RDWR);
  CHECK(a->ino == st.st_ino);
  CHECK(a->mnt_id > 0);
  auto b = read_fdinfo(getpid(), afd);
  REQUIRE(b.ok());
  CHECK((b->flags & O_ACCMODE) == O_WRONLY);
  CHECK((b->flags & O_APPEND) != 0);
  CHECK((b->flags & O_NONBLOCK) != 0);
  CHECK((b->flags & O_CLOEXEC) != 0);  // fdinfo shows close-on-exec in flags
  auto c = read_fdinfo(getpid(), efd);
  REQUIRE(c.ok());
  REQUIRE(c->find("eventfd-count"));
  CHECK(*c->find("eventfd-count") == "2a");  // printed in hex

  auto l = read_fd_link(getpid(), fd);
  REQUIRE(l.ok());
  CHECK(l->path == path);
  CHECK_FALSE(l->deleted);
  REQUIRE(unlink(path) == 0);
  l = read_fd_link(getpid(), fd);
  REQUIRE(l.ok());
  CHECK(l->path == path);
  CHECK(l->deleted);
  auto el = read_fd_link(getpid(), efd);
  REQUIRE(el.ok());
  CHECK(el->path == "anon_inode:[eventfd]");
  CHECK_FALSE(el->deleted);

  close(fd);
  close(afd);
  close(efd);
  auto closed = read_fdinfo(getpid(), efd);
  REQUIRE_FALSE(closed.ok());
  CHECK(closed.error().err == ENOENT);
  CHECK(closed.error().pid == getpid());
  CHECK(closed.error().message.find("fdinfo/" + std::to_string(efd)) != std::string::npos);
  CHECK_FALSE(read_fd_link(getpid(), efd).ok());
  CHECK_FALSE(list_fds(999999999).ok());
}
