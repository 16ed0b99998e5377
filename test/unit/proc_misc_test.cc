// common/proc/misc: links, auxv, personality, tasks, children, timers.
#include <doctest/doctest.h>
#include <elf.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/proc/misc.h"

using namespace cr;
using namespace cr::proc;

namespace {

// Three timers (6.18): SIGEV_THREAD_ID/SIGRTMIN on CLOCK_BOOTTIME,
// SIGEV_NONE on CLOCK_REALTIME, SIGEV_SIGNAL/SIGALRM on CLOCK_MONOTONIC,
// all with sival_ptr 0xdeadbeef. The kernel lists the newest first.
const char kTimers[] = R"PROC(ID: 2
signal: 34/00000000deadbeef
notify: signal/tid.8302
ClockID: 7
ID: 1
signal: 14/00000000deadbeef
notify: none/pid.8302
ClockID: 0
ID: 0
signal: 14/00000000deadbeef
notify: signal/pid.8302
ClockID: 1
)PROC";

std::string auxv_bytes(const std::vector<std::pair<uint64_t, uint64_t>>& v) {
  std::string s;
  for (auto [t, x] : v) {
    s.append(reinterpret_cast<const char*>(&t), 8);
    s.append(reinterpret_cast<const char*>(&x), 8);
  }
  return s;
}

std::string timers_err(std::string_view text) {
  auto r = parse_timers(text, "/proc/812/timers");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

std::string replaced(std::string s, std::string_view from, std::string_view to) {
  size_t p = s.find(from);
  REQUIRE(p != std::string::npos);
  s.replace(p, from.size(), to);
  return s;
}

pid_t gettid_() { return static_cast<pid_t>(syscall(SYS_gettid)); }

}  // namespace

TEST_CASE("proc misc: link texts and deleted files") {
  auto t = parse_link_text("/usr/bin/cat");
  CHECK(t.path == "/usr/bin/cat");
  CHECK_FALSE(t.deleted);
  t = parse_link_text("/tmp/procfx/gone (deleted)");
  CHECK(t.path == "/tmp/procfx/gone");
  CHECK(t.deleted);
  t = parse_link_text("/memfd:my memfd (deleted)");
  CHECK(t.path == "/memfd:my memfd");
  CHECK(t.deleted);
  t = parse_link_text("anon_inode:[eventfd]");
  CHECK(t.path == "anon_inode:[eventfd]");
  CHECK_FALSE(t.deleted);
  t = parse_link_text("socket:[1234] (deleted)");  // not a path
  CHECK_FALSE(t.deleted);
  t = parse_link_text(" (deleted)");
  CHECK_FALSE(t.deleted);

  auto exe = read_exe(getpid());
  REQUIRE(exe.ok());
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
  REQUIRE(n > 0);
  CHECK(exe->path == std::string(buf, n));
  CHECK_FALSE(exe->deleted);
  auto cwd = read_cwd(getpid());
  REQUIRE(cwd.ok());
  REQUIRE(getcwd(buf, sizeof buf));
  CHECK(cwd->path == buf);
  auto root = read_root(getpid());
  REQUIRE(root.ok());
  CHECK(root->path == "/");
  auto gone = read_exe(999999999);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().pid == 999999999);
  CHECK(gone.error().err == ENOENT);
  CHECK(gone.error().message.find("/proc/999999999/exe") != std::string::npos);
}

TEST_CASE("proc misc: auxv") {
  // The start of a real auxv (6.18), ending with AT_NULL.
  std::vector<std::pair<uint64_t, uint64_t>> real = {
      {AT_SYSINFO_EHDR, 0x7f18e6419000}, {AT_MINSIGSTKSZ, 0xd30}, {AT_HWCAP, 0x178bfbff}, {AT_PAGESZ, 4096},
      {AT_CLKTCK, 100}, {AT_PHDR, 0x564e4d359040}, {AT_PHENT, 56}, {AT_PHNUM, 13}, {AT_BASE, 0x7f18e641b000},
      {AT_FLAGS, 0}, {AT_ENTRY, 0x564e4d35a230}, {AT_UID, 0}, {AT_EUID, 0}, {AT_GID, 0}, {AT_EGID, 0},
      {AT_SECURE, 0}, {AT_RANDOM, 0x7ffdb56e81d9}, {AT_HWCAP2, 2}, {AT_EXECFN, 0x7ffdb56e9ff2},
      {AT_PLATFORM, 0x7ffdb56e81e9}, {27, 0x1c}, {28, 0x20}};
  auto with_null = real;
  with_null.push_back({AT_NULL, 0});
  auto r = parse_auxv(auxv_bytes(with_null));
  REQUIRE(r.ok());
  CHECK(*r == real);

  CHECK(parse_auxv("")->empty());  // kernel thread
  CHECK(parse_auxv(auxv_bytes(real), "/proc/812/auxv").error().message == "/proc/812/auxv: no AT_NULL entry at the end");
  std::string b = auxv_bytes(with_null);
  CHECK(parse_auxv(b.substr(0, b.size() - 1), "/proc/812/auxv").error().message ==
        "/proc/812/auxv: size 367 is not a multiple of 16 bytes");
  auto after = with_null;
  after.push_back({AT_PAGESZ, 4096});
  CHECK(parse_auxv(auxv_bytes(after)).error().message.find("data after AT_NULL") != std::string::npos);

  auto live = read_auxv(getpid());
  REQUIRE(live.ok());
  auto get = [&](uint64_t type) -> uint64_t {
    for (auto [t, v] : *live)
      if (t == type) return v;
    return ~0ull;
  };
  CHECK(get(AT_PAGESZ) == 4096);
  CHECK(get(AT_SYSINFO_EHDR) == getauxval(AT_SYSINFO_EHDR));
  CHECK(get(AT_ENTRY) == getauxval(AT_ENTRY));
  CHECK(get(AT_RANDOM) == getauxval(AT_RANDOM));
}

TEST_CASE("proc misc: personality") {
  CHECK(*parse_personality("00000000\n") == 0);
  CHECK(*parse_personality("00040000\n") == ADDR_NO_RANDOMIZE);
  CHECK(*parse_personality("ffffffff\n") == 0xffffffffu);
  CHECK(parse_personality("0000000\n", "/proc/812/personality").error().message ==
        "/proc/812/personality: bad value '0000000'");
  CHECK_FALSE(parse_personality("000000000\n").ok());
  CHECK_FALSE(parse_personality("0000000g\n").ok());
  CHECK_FALSE(parse_personality("00000000").ok());
  CHECK_FALSE(parse_personality("").ok());
  CHECK_FALSE(parse_personality("00000000\n\n").ok());
  auto p = read_personality(getpid());
  REQUIRE(p.ok());
  CHECK(*p == static_cast<uint32_t>(personality(0xffffffff)));
}

TEST_CASE("proc misc: tasks and children") {
  CHECK(parse_children("")->empty());
  CHECK(*parse_children("123 ") == std::vector<pid_t>{123});
  CHECK(*parse_children("9 123 45 ") == std::vector<pid_t>{9, 123, 45});
  CHECK(parse_children("123", "/proc/1/task/1/children").error().message ==
        "/proc/1/task/1/children: truncated list '123'");
  CHECK_FALSE(parse_children("1 x ").ok());
  CHECK_FALSE(parse_children("1  2 ").ok());
  CHECK_FALSE(parse_children("0 ").ok());
  CHECK_FALSE(parse_children("-5 ").ok());
  CHECK_FALSE(parse_children("99999999999 ").ok());
  CHECK_FALSE(parse_children("1 \n").ok());

  // A second thread shows up in /proc/PID/task.
  std::atomic<bool> stop{false};
  std::atomic<pid_t> tid{0};
  std::thread th([&] {
    tid = gettid_();
    while (!stop) usleep(1000);
  });
  while (!tid) usleep(100);
  auto tasks = list_tasks(getpid());
  stop = true;
  th.join();
  REQUIRE(tasks.ok());
  CHECK(std::is_sorted(tasks->begin(), tasks->end()));
  CHECK(std::find(tasks->begin(), tasks->end(), getpid()) != tasks->end());
  CHECK(std::find(tasks->begin(), tasks->end(), tid.load()) != tasks->end());
  CHECK_FALSE(list_tasks(999999999).ok());

  // A child forked by this thread shows up in its children file.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  auto kids = read_children(getpid(), gettid_());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  REQUIRE(kids.ok());
  CHECK(std::find(kids->begin(), kids->end(), child) != kids->end());
}

TEST_CASE("proc misc: posix timers") {
  auto r = parse_timers(kTimers, "/proc/8302/timers");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 3);
  const auto& t = *r;
  CHECK(t[0].id == 0);  // sorted by id
  CHECK(t[0].signo == SIGALRM);
  CHECK(t[0].sigev_value == 0xdeadbeef);
  CHECK(t[0].notify == SIGEV_SIGNAL);
  CHECK_FALSE(t[0].thread_id);
  CHECK(t[0].notify_pid == 8302);
  CHECK(t[0].clock_id == CLOCK_MONOTONIC);
  CHECK(t[0].sigev_notify() == SIGEV_SIGNAL);
  CHECK(t[1].id == 1);
  CHECK(t[1].notify == SIGEV_NONE);
  CHECK(t[1].clock_id == CLOCK_REALTIME);
  CHECK(t[2].id == 2);
  CHECK(t[2].signo == SIGRTMIN);
  CHECK(t[2].thread_id);
  CHECK(t[2].sigev_notify() == (SIGEV_SIGNAL | SIGEV_THREAD_ID));
  CHECK(t[2].clock_id == CLOCK_BOOTTIME);

  CHECK(parse_timers("")->empty());
  auto th = parse_timers("ID: 5\nsignal: 14/0000000000000000\nnotify: thread/pid.77\nClockID: 2\n");
  REQUIRE(th.ok());
  CHECK((*th)[0].notify == SIGEV_THREAD);

  std::string s = kTimers;
  CHECK(timers_err(s.substr(0, s.rfind("ClockID"))) == "/proc/812/timers: line 12: missing 'ClockID:' line (record cut short)");
  CHECK(timers_err(s.substr(0, s.size() - 1)).find("line 12: truncated line") != std::string::npos);
  CHECK(timers_err(replaced(kTimers, "signal: 34/", "signal: 34|")).find("line 2: signal: bad value") != std::string::npos);
  CHECK(timers_err(replaced(kTimers, "signal: 34/", "signal: 99/")).find("signal: bad value") != std::string::npos);
  CHECK(timers_err(replaced(kTimers, "00000000deadbeef", "00000000deadbeeg")).find("signal: bad value") !=
        std::string::npos);
  CHECK(timers_err(replaced(kTimers, "signal/tid.", "sygnal/tid.")).find("line 3: notify: unknown kind 'sygnal'") !=
        std::string::npos);
  CHECK(timers_err(replaced(kTimers, "signal/tid.", "signal/pgid.")).find("expected pid or tid") != std::string::npos);
  CHECK(timers_err(replaced(kTimers, "signal/tid.8302", "signal/tid8302")).find("notify: bad value") !=
        std::string::npos);
  CHECK(timers_err(replaced(kTimers, "signal/tid.8302", "signal/tid.x")).find("notify: bad pid 'x'") !=
        std::string::npos);
  CHECK(timers_err(replaced(kTimers, "ClockID: 7", "ClockID: seven")).find("line 4: ClockID: bad value") !=
        std::string::npos);
  CHECK(timers_err(replaced(kTimers, "ID: 1\n", "ID: 2\n")).find("timer ID 2 listed twice") != std::string::npos);
  CHECK(timers_err(replaced(kTimers, "ID: 1\n", "ID: -1\n")).find("ID: bad value") != std::string::npos);
  CHECK(timers_err(replaced(kTimers, "ID: 1\n", "")).find("line 5: expected 'ID:'") != std::string::npos);

  // Live: two timers of this process.
  timer_t a, b;
  struct sigevent ev {};
  ev.sigev_notify = SIGEV_NONE;
  REQUIRE(timer_create(CLOCK_MONOTONIC, &ev, &a) == 0);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev._sigev_un._tid = gettid_();
  ev.sigev_signo = SIGRTMIN + 2;
  ev.sigev_value.sival_ptr = reinterpret_cast<void*>(0x1234);
  REQUIRE(timer_create(CLOCK_REALTIME, &ev, &b) == 0);
  auto live = read_timers(getpid());
  timer_delete(a);
  timer_delete(b);
  REQUIRE(live.ok());
  const PosixTimer* ta = nullptr;
  const PosixTimer* tb = nullptr;
  for (const auto& x : *live) {
    if (x.id == static_cast<int>(reinterpret_cast<intptr_t>(a))) ta = &x;
    if (x.id == static_cast<int>(reinterpret_cast<intptr_t>(b))) tb = &x;
  }
  REQUIRE(ta);
  REQUIRE(tb);
  CHECK(ta->notify == SIGEV_NONE);
  CHECK(ta->clock_id == CLOCK_MONOTONIC);
  CHECK(tb->sigev_notify() == (SIGEV_SIGNAL | SIGEV_THREAD_ID));
  CHECK(tb->notify_pid == gettid_());
  CHECK(tb->signo == SIGRTMIN + 2);
  CHECK(tb->sigev_value == 0x1234);
  CHECK(tb->clock_id == CLOCK_REALTIME);
}
