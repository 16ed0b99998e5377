// Locks and races around one tree (issue 8): two dumps of one tree at once,
// a tree another program traces. Each refusal names who holds the tree,
// leaves the tree running untouched and writes no image.
#include <doctest/doctest.h>
#include <fcntl.h>
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
