// Locks and races around one tree (issue 8): two dumps of one tree at once,
// a tree another program traces. Each refusal names who holds the tree,
// leaves the tree running untouched and writes no image.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "common/fd.h"
#include "common/ptrace/seized_task.h"
#include "test/integration/harness.h"

using namespace harness;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string lock_path(pid_t root) {
  return std::string(fs::is_directory("/run/lock") ? "/run/lock/crtools" : "/run/crtools") + "/dump-" +
         std::to_string(root) + ".lock";
}

}  // namespace

TEST_CASE("locks: a second dump of a tree that another cr-dump holds is refused naming it; the tree runs on") {
  TempDir t;
  Dumpee d("ckpt_counter");
  const std::string ps = std::to_string(d.pid()), lp = lock_path(d.pid());
  {
    // The first dump, as far as the second can tell: the lock held, its
    // holder's pid in it.
    fs::create_directories(fs::path(lp).parent_path());
    fs::permissions(fs::path(lp).parent_path(), fs::perms::owner_all, fs::perm_options::replace);
    cr::UniqueFd l(open(lp.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    REQUIRE(l.valid());
    REQUIRE(flock(l.get(), LOCK_EX | LOCK_NB) == 0);
    REQUIRE(write(l.get(), "4242\n", 5) == 5);
    auto r = crtools({"dump", "-t", ps, "-D", t / "img"});
    INFO("dump stderr: ", r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("pid " + ps) != std::string::npos);
    CHECK(r.err.find("another cr-dump (pid 4242) is dumping this tree now") != std::string::npos);
    CHECK_FALSE(fs::exists(t / "img"));
    CHECK(fs::exists(lp));  // not the second dump's to remove
    unlink(lp.c_str());
  }
  // The lock gone with its holder, a dump goes ahead and removes its lock.
  auto r = crtools({"dump", "-t", ps, "-D", t / "img2", "--leave-running"});
  INFO("dump stderr: ", r.err);
  CHECK(r.status == 0);
  CHECK_FALSE(fs::exists(lp));
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

TEST_CASE("locks: a tree traced by a debugger is refused naming the tracer; the tree runs on") {
  TempDir t;
  Dumpee d("ckpt_counter");
  {
    auto tracer = cr::SeizedTask::seize(d.pid());
    REQUIRE(tracer.ok());
    auto r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", t / "img"});
    INFO("dump stderr: ", r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("task is already traced by pid " + std::to_string(getpid())) != std::string::npos);
    CHECK_FALSE(fs::exists(t / "img"));
  }
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

// Permissions: an image set of a root process, readable by an unprivileged
// user, is refused by that user's cr-restore before any task exists: a
// restore never hands out credentials its caller lacks.
TEST_CASE("permissions: a set of tasks with higher credentials than cr-restore's is refused; nothing is made") {
  TempDir t;
  Dumpee d("ckpt_counter");
  const pid_t pid = d.pid();
  const std::string img = t / "img";
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
  // The images are 0600 and their directory 0700 (owner root): handed to
  // the user for this test.
  CHECK((fs::status(img).permissions() & fs::perms::all) == fs::perms::owner_all);
  for (auto& e : fs::directory_iterator(img))
    CHECK_MESSAGE((fs::status(e.path()).permissions() & fs::perms::all) ==
                      (fs::perms::owner_read | fs::perms::owner_write),
                  e.path().string());
  fs::permissions(t.path(), fs::perms::owner_all | fs::perms::others_exec, fs::perm_options::replace);
  REQUIRE(run({"/bin/chown", "-R", "65534:65534", img}).status == 0);
  auto rr = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin_dir() + "/crtools",
                 "restore", "-D", img, "-d"});
  INFO("restore stderr: ", rr.err);
  CHECK(rr.status == 1);
  CHECK(rr.err.find("pid " + std::to_string(pid) + ": error: ran with credentials cr-restore cannot give (uid 0") !=
        std::string::npos);
  CHECK(proc_state(pid) == 0);
}

// Permissions: a user who could not ptrace the tree (nobody, against a
// tree of root's) is refused by cr-dump with the ptrace reason, naming the
// pid, before anything else it lacks (kernel features it cannot probe, the
// dump lock's root-owned directory): no image set, no lock, and the tree
// runs on untraced.
TEST_CASE("permissions: cr-dump of a tree the caller could not ptrace is refused naming the pid; the tree runs on") {
  TempDir t;
  Dumpee d("ckpt_pipes");
  std::vector<pid_t> pids = ready_list(d.ready_info(), "pids");
  if (pids.empty()) pids = {d.pid()};
  const std::string ps = std::to_string(d.pid()), img = t / "img";
  // The image directory could be made by nobody: its absence below is the
  // refusal's doing.
  fs::permissions(t.path(), fs::perms::all, fs::perm_options::replace);
  auto r = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin_dir() + "/crtools",
                "dump", "-t", ps, "-D", img});
  INFO("dump stderr: ", r.err);
  CHECK(r.status == 1);
  // One line: the pid, the reason, what to do.
  CHECK(r.err.find('\n') == r.err.size() - 1);
  CHECK(r.err.find("cr-dump pid " + ps + ": error: permission denied: cannot trace the task (it runs as uid 0, "
                   "crtools as uid 65534)") != std::string::npos);
  CHECK(r.err.find("run it as root") != std::string::npos);
  CHECK_FALSE(fs::exists(img));
  CHECK_FALSE(fs::exists(lock_path(d.pid())));
  for (pid_t p : pids) {
    CAPTURE(p);
    CHECK(proc_tracer(p) == 0);
    const char st = proc_state(p);
    CHECK((st == 'S' || st == 'R'));
  }
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}
