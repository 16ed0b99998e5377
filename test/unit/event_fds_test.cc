// Validation of the event descriptor records in files.img (eventfd,
// signalfd, timerfd, epoll, inotify, fanotify), deleted files and O_PATH descriptors: the good
// set passes; each rule refuses one broken field.
#include <doctest/doctest.h>
#include <time.h>

#include "common/image/task_images.h"

using namespace cr;

namespace {

FileRec file(uint64_t id, const char* type) {
  FileRec f;
  f.id = id;
  f.type = type;
  return f;
}

Files good_files() {
  Files f;
  f.files = {file(1, "eventfd"), file(2, "signalfd"), file(3, "timerfd"), file(4, "epoll")};
  f.eventfds = {{1, 5, true}};
  f.signalfds = {{2, 1ull << 9}};
  f.timerfds = {{3, CLOCK_MONOTONIC, 0, 3600, 0, 7, 0, 0}};
  f.epolls = {{4, 100, {{10, 1, 0x1234, 1}}}};
  f.files.push_back(file(5, "inotify"));
  f.inotifies = {{5, {{2, 0x100, "/tmp", 1, 2}, {4, 0x2, "/etc", 1, 3}}}};
  return f;
}

FdTable good_table() {
  FdTable t;
  t.pid = 100;
  t.fds = {{10, false, 1}, {11, false, 2}, {12, false, 3}, {13, false, 4}, {14, false, 5}};
  return t;
}

std::string refusal(const Files& f, const FdTable& t = good_table()) {
  auto st = validate_files(f, t, "fdinfo-100.img");
  return st ? std::string() : st.error().str();
}

}  // namespace

TEST_CASE("event descriptors: a good set passes; each broken rule is refused") {
  CHECK(refusal(good_files()) == "");
  auto f = good_files();
  f.eventfds.clear();
  CHECK(refusal(f).find("eventfd 1 has no record of its state") != std::string::npos);
  f = good_files();
  f.eventfds.push_back({1, 3, false});
  CHECK(refusal(f).find("file 1: two eventfd records") != std::string::npos);
  f = good_files();
  f.signalfds[0].file_id = 1;  // a signalfd record for the eventfd
  CHECK(refusal(f).find("signalfd record for file 1, which is no signalfd") != std::string::npos);
  f = good_files();
  f.eventfds[0].count = ~0ull;
  CHECK(refusal(f).find("bad count") != std::string::npos);
  f = good_files();
  f.timerfds[0].clockid = CLOCK_PROCESS_CPUTIME_ID;
  CHECK(refusal(f).find("timerfd 3: bad clock") != std::string::npos);
  f = good_files();
  f.timerfds[0].value_nsec = 1000000000;
  CHECK(refusal(f).find("timerfd 3: bad clock, flags or time") != std::string::npos);
  f = good_files();
  f.timerfds[0].settime_flags = 4;
  CHECK(refusal(f).find("timerfd 3") != std::string::npos);
  f = good_files();
  f.epolls[0].targets[0].file_id = 99;
  CHECK(refusal(f).find("epoll 4: bad target fd 10") != std::string::npos);
  f = good_files();
  f.epolls[0].pid = 0;
  CHECK(refusal(f).find("epoll 4: bad pid") != std::string::npos);
  // The registering task holds every target at its number.
  f = good_files();
  f.epolls[0].targets[0].fd = 11;  // fd 11 is the signalfd, not file 1
  CHECK(refusal(f).find("epoll 4: target fd 11 is not file 1") != std::string::npos);
  f = good_files();
  f.inotifies[0].watches[1].wd = 2;  // two watches with one wd
  CHECK(refusal(f).find("inotify 5: bad watch 2") != std::string::npos);
  f = good_files();
  f.inotifies[0].watches[0].path = "tmp";
  CHECK(refusal(f).find("inotify 5: bad watch 2") != std::string::npos);
  f = good_files();
  f.inotifies[0].watches[0].wd = 0;
  CHECK(refusal(f).find("inotify 5: bad watch 0") != std::string::npos);
  f = good_files();
  f.inotifies.clear();
  CHECK(refusal(f).find("inotify 5 has no record of its state") != std::string::npos);
  auto t = good_table();
  t.fds.erase(t.fds.begin() + 3);  // the task no longer holds the epoll
  CHECK(refusal(good_files(), t).find("epoll 4 is not held by pid 100") != std::string::npos);
}

TEST_CASE("deleted files and O_PATH descriptors: each broken rule is refused") {
  Files f;
  FileRec g = file(1, "ghost");
  g.ghost_id = 7;
  FileRec p = file(2, "opath");
  p.path = "/etc";
  f.files = {g, p};
  GhostRec gr;
  gr.id = 7;
  gr.path = "/tmp/x.dat";
  gr.mode = 0100640;
  gr.data.data.assign(100, 'x');
  f.ghosts = {gr};
  FdTable t;
  t.pid = 100;
  t.fds = {{3, false, 1}, {4, false, 2}};
  CHECK(refusal(f, t) == "");
  auto b = f;
  b.files[0].ghost_id = 8;
  CHECK(refusal(b, t).find("file 1: no deleted file 8") != std::string::npos);
  b = f;
  b.ghosts.push_back(gr);
  CHECK(refusal(b, t).find("bad or duplicate deleted file 7") != std::string::npos);
  b = f;
  b.ghosts[0].path = "x.dat";
  CHECK(refusal(b, t).find("bad or duplicate deleted file 7") != std::string::npos);
  b = f;
  b.ghosts[0].mode = 040755;  // a directory
  CHECK(refusal(b, t).find("bad or duplicate deleted file 7") != std::string::npos);
  b = f;
  b.ghosts[0].data.data.assign(kMaxGhostSize + 1, 0);
  CHECK(refusal(b, t).find("bad or duplicate deleted file 7") != std::string::npos);
  b = f;
  b.files[1].path = "etc";
  CHECK(refusal(b, t).find("file 2: path is not absolute") != std::string::npos);
}

TEST_CASE("file locks: each broken rule is refused") {
  Files f;
  FileRec r = file(1, "reg");
  r.path = "/tmp/l1";
  r.locks = {{"flock", true, 0, 0, 3}, {"ofd", false, 10, 10, 3}};
  f.files = {r};
  FdTable t;
  t.pid = 100;
  t.fds = {{3, false, 1}};
  t.posix_locks = {{"posix", true, 0, 100, 3}};
  CHECK(refusal(f, t) == "");
  auto b = f;
  b.files[0].locks[0].kind = "lease";
  CHECK(refusal(b, t).find("file 1: bad lock") != std::string::npos);
  b = f;
  b.files[0].locks[0].start = 5;  // a flock has no range
  CHECK(refusal(b, t).find("file 1: bad lock") != std::string::npos);
  b = f;
  b.files[0].locks.push_back({"posix", true, 0, 1, 3});  // POSIX locks belong to the process
  CHECK(refusal(b, t).find("file 1: bad lock") != std::string::npos);
  auto u = t;
  u.posix_locks[0].fd = 4;  // not an fd of the task
  CHECK(refusal(f, u).find("bad POSIX lock through fd 4") != std::string::npos);
  u = t;
  u.posix_locks[0].kind = "ofd";
  CHECK(refusal(f, u).find("bad POSIX lock through fd 3") != std::string::npos);
}

TEST_CASE("BPF maps: each broken rule is refused") {
  Files f;
  f.files = {file(1, "bpf-map")};
  BpfMapRec m;
  m.file_id = 1;
  m.map_type = 1;  // hash
  m.name = "m";
  m.key_size = 4;
  m.value_size = 8;
  m.max_entries = 2;
  BpfMapEntryRec e;
  e.key.data.assign(4, 1);
  e.value.data.assign(8, 2);
  m.entries = {e};
  f.bpf_maps = {m};
  FdTable t;
  t.pid = 100;
  t.fds = {{3, false, 1}};
  CHECK(refusal(f, t) == "");
  auto b = f;
  b.bpf_maps[0].map_type = 5;  // a per-CPU hash
  CHECK(refusal(b, t).find("BPF map 1: bad type") != std::string::npos);
  b = f;
  b.bpf_maps[0].entries.assign(3, e);  // more than max_entries
  CHECK(refusal(b, t).find("BPF map 1: bad type, sizes or entry count") != std::string::npos);
  b = f;
  b.bpf_maps[0].entries[0].value.data.resize(7);
  CHECK(refusal(b, t).find("BPF map 1: an entry of the wrong size") != std::string::npos);
  b = f;
  b.bpf_maps[0].name = std::string(16, 'n');
  CHECK(refusal(b, t).find("BPF map 1") != std::string::npos);
  b = f;
  b.bpf_maps.clear();
  CHECK(refusal(b, t).find("bpf-map 1 has no record of its state") != std::string::npos);
}

TEST_CASE("fanotify groups: a good set passes; each broken rule is refused") {
  auto with_fanotify = [] {
    Files f = good_files();
    f.files.push_back(file(6, "fanotify"));
    FanotifyRec r;
    r.file_id = 6;
    r.flags = 0x3;
    r.event_flags = 0x8000;
    r.marks = {{"inode", "/tmp/w", 1, 2, 0, 0x8 | 0x08000000, 0},
               {"mount", "/", 1, 2, 0x40, 0, 0x20},
               {"filesystem", "/", 1, 2, 0, 0x8000, 0}};
    f.fanotifies = {r};
    return f;
  };
  auto t = good_table();
  t.fds.push_back({15, false, 6});
  CHECK(refusal(with_fanotify(), t) == "");
  auto f = with_fanotify();
  f.fanotifies[0].marks[1].kind = "superblock";
  CHECK(refusal(f, t).find("fanotify 6: bad mark on '/'") != std::string::npos);
  f = with_fanotify();
  f.fanotifies[0].marks[0].path = "tmp/w";
  CHECK(refusal(f, t).find("fanotify 6: bad mark on 'tmp/w'") != std::string::npos);
  f = with_fanotify();
  f.fanotifies[0].marks[2].mask = 0;  // neither reports nor ignores anything
  CHECK(refusal(f, t).find("fanotify 6: bad mark") != std::string::npos);
  f = with_fanotify();
  f.fanotifies[0].marks[0].mask = 1ull << 40;
  CHECK(refusal(f, t).find("fanotify 6: bad mark") != std::string::npos);
  f = with_fanotify();
  f.fanotifies.clear();
  CHECK(refusal(f, t).find("fanotify 6 has no record of its state") != std::string::npos);
  f = with_fanotify();
  f.fanotifies[0].file_id = 5;  // the inotify's file
  CHECK(refusal(f, t).find("fanotify record for file 5, which is no fanotify") != std::string::npos);
}
