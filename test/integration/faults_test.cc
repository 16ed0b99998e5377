// Fault injection walks (issue 8): CRTOOLS_FAULT_INJECT=N makes the N-th
// fault point of a command fail as the kernel would (common/fault.h). For a
// dump, N goes over every point a dump of the workload reaches, and after
// each failure the tree must be exactly as before: every task running
// (none stopped or traced), the same mappings and the same fds in each (no
// parasite or scratch mapping, no fd of ours left), no image set left; at
// the end the workload's own verification passes. For a restore, N goes
// over every point of a restore of the dumped set, and after each failure
// no task of the tree may exist and no file may be left in the workload's
// directory. The number of points is printed; an N that does not fail
// (a point not reached) fails the test.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/net_lock.h"
#include "common/proc/maps.h"
#include "test/integration/harness.h"
#include "test/integration/tcp_client.h"

using namespace harness;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What a failed command must leave as it was, per task.
struct TaskView {
  std::string maps;
  std::string fds;  // "N -> link" lines, sorted
};

std::map<pid_t, TaskView> view_of(const std::vector<pid_t>& pids) {
  std::map<pid_t, TaskView> v;
  for (pid_t p : pids) {
    std::string base = "/proc/" + std::to_string(p);
    TaskView t;
    t.maps = slurp(base + "/maps");
    std::vector<std::string> fds;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(base + "/fd", ec)) {
      std::error_code ec2;
      fds.push_back(e.path().filename().string() + " -> " + fs::read_symlink(e.path(), ec2).string());
    }
    std::sort(fds.begin(), fds.end());
    for (auto& f : fds) t.fds += f + "\n";
    v[p] = t;
  }
  return v;
}

// Every thread of each process: running or sleeping, untraced.
std::string held_tasks(const std::vector<pid_t>& pids) {
  std::string bad;
  for (pid_t p : pids) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator("/proc/" + std::to_string(p) + "/task", ec)) {
      pid_t tid = std::stoi(e.path().filename().string());
      char st = proc_state(tid);
      int tracer = proc_tracer(tid);
      if ((st != 'R' && st != 'S') || tracer != 0)
        bad += "task " + std::to_string(tid) + " in state '" + std::string(1, st ? st : '?') + "' traced by " +
               std::to_string(tracer) + "; ";
    }
  }
  return bad;
}

long points_in(const std::string& report) {
  std::string s = slurp(report);
  long n = -1;
  if (sscanf(s.c_str(), "points %ld", &n) != 1) return -1;
  return n;
}

std::string listing(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string s;
  for (auto& n : names) s += n + " ";
  return s;
}

// One command with the fault at point n; what became of it.
struct Shot {
  RunResult r;
  bool fired = false;    // point n was reached (and failed)
  long reached = -1;     // the points the command reached in all
};

Shot shoot(long n, const std::string& report, const std::vector<std::string>& args) {
  fs::remove(report);
  Shot s;
  std::vector<std::string> a = {"/usr/bin/env", "CRTOOLS_FAULT_INJECT=" + std::to_string(n),
                                "CRTOOLS_FAULT_REPORT=" + report, bin_dir() + "/crtools"};
  a.insert(a.end(), args.begin(), args.end());
  s.r = run(a);
  s.fired = s.r.err.find("fault injection: failing point " + std::to_string(n) + " ") != std::string::npos;
  s.reached = points_in(report);
  return s;
}

// Walk every fault point of a dump (--leave-running, so the tree is there
// to look at after each one), then of a restore of that tree's images. The
// walk ends at the first n the command does not reach: it then succeeds,
// and says it reached fewer than n points. (A restore's count varies by a
// few /proc reads: it waits for a killed tree's zombies to be reaped.)

void walk(const std::string& workload, const std::vector<std::string>& args,
          const std::vector<std::string>& dump_opts = {}) {
  CAPTURE(workload);
  TempDir t;
  std::string wd = t / "wd";
  fs::create_directory(wd);
  Dumpee::Options o;
  o.dir = wd;
  o.args = args;
  Dumpee d(workload, o);
  std::vector<pid_t> pids = ready_list(d.ready_info(), "pids");
  if (pids.empty()) pids = {d.pid()};
  const std::string ps = std::to_string(d.pid());
  struct Guard {
    std::vector<pid_t> pids;
    std::string exe;
    ~Guard() {
      kill_tree(pids, exe);
      // A walk that stopped halfway may leave the dump's network lock.
      if (net_lock_exists(pids[0])) run({"/usr/sbin/nft", "delete", "table", "inet", "crtools-" + std::to_string(pids[0])});
    }
  } guard{pids, d.exe()};
  const std::string report = t / "report", img = t / "img";
  const auto before = view_of(pids);
  const std::string wd_before = listing(wd);

  long n = 1, recovered = 0;
  for (;; n++) {
    REQUIRE(n < 100000);
    std::vector<std::string> dargs = {"dump", "-t", ps, "-D", img, "--leave-running"};
    dargs.insert(dargs.end(), dump_opts.begin(), dump_opts.end());
    Shot s = shoot(n, report, dargs);
    if (!s.fired) {
      INFO("dump stderr: ", s.r.err);
      REQUIRE_MESSAGE(s.r.status == 0, "dump with point ", n, " not reached failed");
      REQUIRE_MESSAGE(s.reached >= 0, "no fault report");
      REQUIRE_MESSAGE(s.reached < n, "point ", n, " of ", s.reached, " did not fire");
      fs::remove_all(img);
      break;
    }
    // A point whose failure has a fallback (another way to the same state:
    // a syscall instruction found outside the vDSO) lets the dump succeed.
    std::string problem;
    if (s.r.status == 0) {
      recovered++;
      fs::remove_all(img);
    } else if (s.r.status != 1) {
      problem = "exit status " + std::to_string(s.r.status);
    } else if (s.r.err.find("injected fault at point " + std::to_string(n) + " ") == std::string::npos) {
      problem = "no error line naming the injected fault";
    }
    if (problem.empty()) {
      if (std::string h = held_tasks(pids); !h.empty()) problem = "after the failed dump: " + h;
      else if (fs::exists(img)) problem = "the failed dump left " + img;
      else if (net_lock_exists(d.pid())) problem = "the failed dump left its nft table";
    }
    if (problem.empty()) {
      auto now = view_of(pids);
      for (pid_t p : pids) {
        if (now[p].maps != before.at(p).maps) problem += "pid " + std::to_string(p) + ": mappings changed; ";
        if (now[p].fds != before.at(p).fds)
          problem += "pid " + std::to_string(p) + ": fds changed: " + now[p].fds + " (was " + before.at(p).fds + "); ";
      }
    }
    if (!problem.empty()) {
      FAIL_CHECK("dump with a fault at point ", n, ": ", problem, "\nstderr: ", s.r.err);
      return;
    }
  }
  const long n_dump = n - 1;
  CHECK(n_dump > 10);
  MESSAGE(workload, ": a dump reaches ", n_dump, " fault points: ", n_dump - recovered, " failures unwound, ",
          recovered, " recovered by a fallback");

  // A dump that kills the tree, for the restore walk.
  std::vector<std::string> kargs = {bin_dir() + "/crtools", "dump", "-t", ps, "-D", img};
  kargs.insert(kargs.end(), dump_opts.begin(), dump_opts.end());
  auto r = run(kargs);
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  reap_pids(pids, 30s);
  for (pid_t p : pids) REQUIRE_MESSAGE(proc_state(p) == 0, "pid ", p, " left");
  REQUIRE(listing(wd) == wd_before);

  long rrecovered = 0;
  for (n = 1;; n++) {
    REQUIRE(n < 100000);
    // The tree of the last restore that went through is gone first.
    reap_pids(pids, 10s);
    for (pid_t p : pids) REQUIRE_MESSAGE(proc_state(p) == 0, "pid ", p, " is still there before restore ", n);
    Shot s = shoot(n, report, {"restore", "-D", img, "-d"});
    if (!s.fired) {
      INFO("restore stderr: ", s.r.err);
      REQUIRE_MESSAGE(s.r.status == 0, "restore with point ", n, " not reached failed");
      REQUIRE_MESSAGE(s.reached >= 0, "no fault report");
      REQUIRE_MESSAGE(s.reached < n, "point ", n, " of ", s.reached, " did not fire");
      break;
    }
    // After the tree runs, only the restore's own stats image is left to
    // write: its failure is a warning and the restore stands.
    if (s.r.status == 0 && s.r.err.find("could not record stats-restore.img") != std::string::npos) {
      rrecovered++;
      REQUIRE(wait_restored(d.pid(), d.exe(), d.cmdline(), 30s));
      kill_tree(pids, d.exe());
      continue;
    }
    std::string problem;
    if (s.r.status != 1) problem = "exit status " + std::to_string(s.r.status);
    else if (s.r.err.find("injected fault at point " + std::to_string(n) + " ") == std::string::npos)
      problem = "no error line naming the injected fault";
    for (pid_t p : pids)
      if (proc_state(p) != 0) problem += "; pid " + std::to_string(p) + " exists";
    if (listing(wd) != wd_before) problem += "; files in the workload's directory: " + listing(wd);
    // The network lock is lifted by every failure once the images are
    // read (they name the connections); a restore that cannot read them
    // leaves the dump's lock for the next attempt.
    std::string point = s.r.err.substr(s.r.err.find("failing point " + std::to_string(n) + " "));
    point = point.substr(0, point.find('\n'));
    if (net_lock_exists(d.pid()) && point.find("image") == std::string::npos)
      problem += "; its nft table is left (" + point + ")";
    if (!problem.empty()) {
      kill_tree(pids, d.exe());
      FAIL_CHECK("restore with a fault at point ", n, ": ", problem, "\nstderr: ", s.r.err);
      return;
    }
  }
  MESSAGE(workload, ": a restore reaches ", n - 1, " fault points: ", n - 1 - rrecovered,
          " failures leaving no task and no file, ", rrecovered, " after the tree ran (its stats image)");
  // The restore that reached no injected point went through: the workload
  // verifies itself.
  REQUIRE(wait_restored(d.pid(), d.exe(), d.cmdline(), 30s));
  Verdict v = terminate_and_collect(d.pid(), d.output_path(), 60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

}  // namespace

TEST_CASE("faults: every fault point of a dump and of a restore of a process tree (ckpt_tree)") {
  walk("ckpt_tree", {});
}

TEST_CASE("faults: every fault point of a dump and of a restore of threads (ckpt_threads)") {
  walk("ckpt_threads", {});
}

TEST_CASE("faults: every fault point of a dump and of a restore of pipes, sockets and shared memory") {
  walk("ckpt_pipes", {});
  walk("ckpt_unix_sockets", {});
  walk("ckpt_shmem", {});
}

namespace {

// The points a dump (--leave-running) of the tree of `d` reaches.
long dump_points(const Dumpee& d, TempDir& t) {
  std::string report = t / "count-report";
  auto c = run({"/usr/bin/env", "CRTOOLS_FAULT_REPORT=" + report, bin_dir() + "/crtools", "dump", "-t",
                std::to_string(d.pid()), "-D", t / "count", "--leave-running"});
  INFO("counting dump: ", c.err);
  REQUIRE(c.status == 0);
  fs::remove_all(t / "count");
  return points_in(report);
}

}  // namespace

// SIGINT, SIGTERM and SIGHUP reach cr-dump at several moments (raised by
// cr-dump itself at a chosen fault point: CRTOOLS_FAULT_ACTION=signal:N):
// it stops at its next step and unwinds as from a failure.
TEST_CASE("faults: SIGINT, SIGTERM or SIGHUP to cr-dump at several moments unwinds it; the tree runs on") {
  TempDir t;
  Dumpee d("ckpt_tree");
  std::vector<pid_t> pids = ready_list(d.ready_info(), "pids");
  REQUIRE(pids.size() > 5);
  const long n = dump_points(d, t);
  REQUIRE(n > 50);
  const auto before = view_of(pids);
  const std::string img = t / "img";
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  const char* names[] = {"INT", "TERM", "HUP"};
  for (int k = 0; k < 9; k++) {
    long at = 1 + k * (n - 2) / 8;
    CAPTURE(at);
    CAPTURE(names[k % 3]);
    auto r = run({"/usr/bin/env", "CRTOOLS_FAULT_INJECT=" + std::to_string(at),
                  "CRTOOLS_FAULT_ACTION=signal:" + std::to_string(sigs[k % 3]), bin_dir() + "/crtools", "dump", "-t",
                  std::to_string(d.pid()), "-D", img, "--leave-running"});
    INFO("dump stderr: ", r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find(std::string("interrupted by ") + names[k % 3]) != std::string::npos);
    CHECK(held_tasks(pids) == "");
    CHECK_FALSE(fs::exists(img));
    auto now = view_of(pids);
    for (pid_t p : pids) {
      CHECK_MESSAGE(now[p].maps == before.at(p).maps, "pid ", p, ": mappings changed");
      CHECK_MESSAGE(now[p].fds == before.at(p).fds, "pid ", p, ": fds changed");
    }
  }
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

// A process of the tree SIGKILLed by someone else while cr-dump works on
// the frozen tree (CRTOOLS_FAULT_ACTION=kill:PID at a point past the
// freeze): the dump fails naming it, writes no image set, and the rest of
// the tree runs on.
TEST_CASE("faults: a dumpee killed by someone else mid-dump gives a clear error; the rest runs on") {
  for (int k = 1; k <= 3; k++) {
    CAPTURE(k);
    TempDir t;
    Dumpee d("ckpt_tree");
    std::vector<pid_t> pids = ready_list(d.ready_info(), "pids");
    REQUIRE(pids.size() > 5);
    struct Guard {
      std::vector<pid_t> pids;
      std::string exe;
      ~Guard() { kill_tree(pids, exe); }
    } guard{pids, d.exe()};
    const long n = dump_points(d, t);
    const pid_t victim = pids.back();  // a leaf
    long at = k * n / 4;
    CAPTURE(at);
    const std::string img = t / "img";
    auto r = run({"/usr/bin/env", "CRTOOLS_FAULT_INJECT=" + std::to_string(at),
                  "CRTOOLS_FAULT_ACTION=kill:" + std::to_string(victim), bin_dir() + "/crtools", "dump", "-t",
                  std::to_string(d.pid()), "-D", img, "--leave-running"});
    INFO("dump stderr: ", r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("pid " + std::to_string(victim) + ": error: the process died during the dump") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(img));
    std::vector<pid_t> rest(pids.begin(), pids.end() - 1);
    CHECK(held_tasks(rest) == "");
  }
}

// Inet sockets, and established TCP connections with their network lock:
// after each failed dump the connections are out of repair mode and the
// nft table is gone; after each failed restore no table is left.
TEST_CASE("faults: every fault point of a dump and of a restore of inet sockets and established TCP") {
  walk("ckpt_inet", {});
  walk("ckpt_tcp_echo", {}, {"--tcp-established"});
}

namespace {

std::vector<cr::proc::VmaInfo> map_ranges(const std::string& maps) {
  auto v = cr::proc::parse_maps(maps);
  REQUIRE_MESSAGE(v.ok(), v.error().str());
  return *v;
}

// What a cr-dump killed mid-session may leave in a task: its scratch
// mappings (anonymous, unused; merged with a neighbour perhaps). Every
// mapping of before must be there, with its perms and path, and
// anything new must be anonymous.
std::string maps_after_kill(const std::string& before, const std::string& after) {
  auto b = map_ranges(before), a = map_ranges(after);
  std::string bad;
  for (const auto& m : b) {
    bool kept = false;
    for (const auto& n : a)
      if (n.start <= m.start && m.end <= n.end && n.prot == m.prot && n.shared == m.shared && n.path == m.path)
        kept = true;
    if (!kept) bad += "lost or changed the mapping of " + (m.path.empty() ? "anonymous memory" : m.path) + "; ";
  }
  for (const auto& n : a) {
    bool old = false;
    for (const auto& m : b)
      if (m.start == n.start && m.end == n.end && m.path == n.path) old = true;
    if (!old && !n.path.empty() && n.path != "[stack]" && n.path != "[heap]") bad += "new mapping of " + n.path + "; ";
  }
  return bad;
}

// SIGKILL of cr-dump at point n of a dump (CRTOOLS_FAULT_ACTION=signal:9),
// for every n the dump reaches: the kernel detaches the tree as cr-dump
// dies, mid-session too (common/remote/remote_session.h, "Armour"), and
// every task goes on as it was: running, untraced, the same fds and
// mappings (but for the scratch mappings of a session cut short), no
// image set that could be taken for complete; at the end the workload's
// own verification passes (registers, signal state, threads, memory).
void kill_walk(const std::string& workload, const std::vector<std::string>& args) {
  CAPTURE(workload);
  TempDir t;
  Dumpee::Options o;
  o.args = args;
  Dumpee d(workload, o);
  std::vector<pid_t> pids = ready_list(d.ready_info(), "pids");
  if (pids.empty()) pids = {d.pid()};
  const auto before = view_of(pids);
  const std::string img = t / "img", ps = std::to_string(d.pid());
  // Up to the points of an undisturbed dump: a kill mid-session leaves a
  // scratch mapping, which later dumps save too (a few more points each).
  const long points = dump_points(d, t);
  long n = 1, through = 0;
  for (; n <= points; n++) {
    auto r = run({"/usr/bin/env", "CRTOOLS_FAULT_INJECT=" + std::to_string(n), "CRTOOLS_FAULT_ACTION=signal:9",
                  bin_dir() + "/crtools", "dump", "-t", ps, "-D", img, "--leave-running"});
    if (r.status == 0) {  // point n not reached (a count that varies by a /proc read or two)
      through++;
      fs::remove_all(img);
      continue;
    }
    std::string problem;
    if (r.status != 128 + SIGKILL) problem = "exit status " + std::to_string(r.status) + ", not SIGKILL";
    else if (std::string h = held_tasks(pids); !h.empty()) problem = h;
    else if (fs::exists(fs::path(img) / "inventory.img"))  // written last: a set without one is refused
      problem = "the killed dump left an image set with its inventory, one that reads as complete";
    if (problem.empty()) {
      auto now = view_of(pids);
      for (pid_t p : pids) {
        if (now[p].fds != before.at(p).fds)
          problem += "pid " + std::to_string(p) + ": fds changed: " + now[p].fds + " (was " + before.at(p).fds + "); ";
        if (std::string m = maps_after_kill(before.at(p).maps, now[p].maps); !m.empty())
          problem += "pid " + std::to_string(p) + ": " + m;
      }
    }
    if (!problem.empty()) {
      FAIL_CHECK("cr-dump killed at point ", n, ": ", problem, "\nstderr: ", r.err);
      break;
    }
    fs::remove_all(img);
  }
  CHECK(points > 10);
  CHECK(through <= 3);
  long extra = 0;
  auto now = view_of(pids);
  for (pid_t p : pids)
    extra += static_cast<long>(map_ranges(now[p].maps).size()) - static_cast<long>(map_ranges(before.at(p).maps).size());
  MESSAGE(workload, ": cr-dump killed at each of ", points - through, " of ", points, " points; ", extra,
          " mappings more in the tree at the end (scratch memory of sessions cut short)");
  fs::remove_all(img);
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

}  // namespace

// ---------------------------------------------------------------- SIGKILL
//
// SIGKILL of cr-dump while it holds the network lock of established TCP
// connections (cr-dump/dump.h NetLockGuard): ckpt_tcp_echo is dumped with
// --tcp-established, a client outside the tree holding a connection to it,
// and cr-dump SIGKILLs itself (CRTOOLS_FAULT_ACTION=signal:9) at each
// point of a range after its nft table exists. After each, its guard has
// taken the sockets out of repair mode and deleted the table: the table is
// gone, the tree runs untraced, and the client's connection echoes again.
// At the end the workload's own checks (its connections inside the tree,
// their queues and SO_REUSEADDR) pass.
//
// The range: every point a dump reaches (CRTOOLS_FAULT_REPORT names them)
// after the first "nft" (the table is made right after it) -- most of
// them inside the remote session of the tree's process (the lock is taken
// while its fds are read), which an armed session survives
// (common/remote/remote_session.h, Armour; its scratch and parasite
// mappings stay in the task, so later dumps reach a few more points).
// Without kKillInsideSessions, only the points after the last point of a
// remote session (remote, parasite, ptrace and task memory points), from
// the first image point on: the range for a build whose sessions leave a
// task they are let go in with every signal blocked.

namespace {

constexpr bool kKillInsideSessions = true;

// The "N what" lines of a fault report, by N.
std::map<long, std::string> points_named(const std::string& report) {
  std::map<long, std::string> m;
  std::istringstream in(slurp(report));
  std::string line;
  std::getline(in, line);  // "points N"
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp != std::string::npos) m[std::stol(line.substr(0, sp))] = line.substr(sp + 1);
  }
  return m;
}

// A client of ckpt_tcp_echo; each check sends n bytes and reads them back.

// The guards (comm "cr-dump-guard") among our children: a guard whose
// cr-dump died is reparented to us, the child subreaper.
std::vector<pid_t> our_guards() {
  std::vector<pid_t> g;
  for (pid_t c : children_of(getpid()))
    if (read_text("/proc/" + std::to_string(c) + "/comm") == "cr-dump-guard\n") g.push_back(c);
  return g;
}

}  // namespace

TEST_CASE("faults: SIGKILL of cr-dump at every point of a dump leaves the tree running as it was") {
  SUBCASE("registers and vector state, caught in user code") { kill_walk("ckpt_regs", {}); }
  SUBCASE("signal handlers, masks, altstack, itimers") { kill_walk("ckpt_signals", {}); }
  SUBCASE("threads") { kill_walk("ckpt_threads", {}); }
}

TEST_CASE("faults: SIGKILL of cr-dump holding the network lock of established TCP: its guard lifts the lock, the tree runs on") {
  TempDir t;
  Dumpee d("ckpt_tcp_echo");
  const pid_t pid = d.pid();
  const std::string ps = std::to_string(pid), cr = bin_dir() + "/crtools";
  struct Cleanup {
    pid_t pid;
    ~Cleanup() {
      if (cr::net_lock_present(pid)) (void)cr::net_unlock(pid);
      reap_pids(our_guards(), 10s);
    }
  } cleanup{pid};
  auto port = ready_list(d.ready_info(), "port");
  REQUIRE(port.size() == 1);
  EchoClient c(port[0]);
  REQUIRE(echo_round(c, 5000) == "");

  // The points of a dump of this tree, named (--leave-running: it stays).
  const std::string report = t / "report";
  {
    auto r = run({"/usr/bin/env", "CRTOOLS_FAULT_REPORT=" + report, cr, "dump", "-t", ps, "-D", t / "count",
                  "--leave-running", "--tcp-established"});
    INFO("counting dump: ", r.err);
    REQUIRE(r.status == 0);
  }
  fs::remove_all(t / "count");
  const long total = points_in(report);
  const auto named = points_named(report);
  REQUIRE(total > 20);
  auto in_session = [](const std::string& what) {
    for (const char* k : {"remote", "parasite", "ptrace", "task memory"})
      if (what.rfind(k, 0) == 0) return true;
    return false;
  };
  long nft = 0, last_session = 0, after_sessions = 0;
  for (auto& [n, what] : named) {
    if (what == "nft" && !nft) nft = n;
    if (in_session(what)) last_session = n;
  }
  for (auto& [n, what] : named)
    if (n > last_session && what.rfind("image", 0) == 0) {
      after_sessions = n;
      break;
    }
  REQUIRE_MESSAGE(nft > 0, "no nft point in the dump");
  REQUIRE(after_sessions > nft);
  const long from = kKillInsideSessions ? nft + 1 : after_sessions;

  std::string killed_at;
  for (long n = from; n <= total; n++) {
    CAPTURE(n);
    CAPTURE(named.count(n) ? named.at(n) : "?");
    const std::string img = t / ("img" + std::to_string(n));
    // run() returns at the end of cr-dump's stderr, which the guard holds
    // until it has done its work and exits.
    auto r = run({"/usr/bin/env", "CRTOOLS_FAULT_INJECT=" + std::to_string(n), "CRTOOLS_FAULT_ACTION=signal:9", cr,
                  "dump", "-t", ps, "-D", img, "--tcp-established"});
    INFO("dump stderr: ", r.err);
    CHECK(r.status == 128 + SIGKILL);
    // Where it was killed (the count of a dump is the same from one dump
    // of the tree to the next, but a shift must not take the kill into a
    // session).
    const std::string at = "fault injection: signal 9 at point " + std::to_string(n) + " (";
    size_t p = r.err.find(at);
    REQUIRE(p != std::string::npos);
    std::string what = r.err.substr(p + at.size());
    what = what.substr(0, what.find(')'));
    CHECK_MESSAGE((kKillInsideSessions || !in_session(what)), "killed inside a remote session");
    CHECK(r.err.find("network lock guard: cr-dump ended without lifting its network lock") != std::string::npos);
    auto guards = our_guards();
    CHECK(guards.size() == 1);
    for (int st : reap_pids(guards, 10s)) CHECK(st == 0);
    CHECK_FALSE(cr::net_lock_present(pid));
    CHECK(held_tasks({pid}) == "");
    CHECK(echo_round(c, 5000) == "");
    fs::remove_all(img);
    killed_at += std::to_string(n) + " (" + what + ") ";
  }
  MESSAGE("ckpt_tcp_echo: a dump reaches ", total, " points, the table is made after point ", nft,
          ", the sessions end at ", last_session, "; cr-dump SIGKILLed at ", total - from + 1, " points: ", killed_at);
  c.close_now();
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
  CHECK(v.output.find("echoed " + std::to_string(c.sent()) + " bytes") != std::string::npos);
}
