// plan_sessions (common/image/sessions.h): which helper plays each gone
// session or group leader, and which trees it refuses.
#include <doctest/doctest.h>

#include "common/image/sessions.h"

using namespace cr;

namespace {

PstreeEntry task(int64_t pid, int64_t ppid, int64_t pgid, int64_t sid) {
  PstreeEntry e;
  e.pid = pid;
  e.ppid = ppid;
  e.pgid = pgid;
  e.sid = sid;
  e.threads = {pid};
  return e;
}

// ckpt_orphans' shape: root 10 (a subreaper, its own session and group);
// 12 in gone group 11; 14 in gone session 13 and its group, with child 15;
// 17 in gone session 13 and gone group 16.
Pstree orphans() {
  Pstree t;
  t.root_pid = 10;
  t.tasks = {task(10, 0, 10, 10), task(12, 10, 11, 10), task(14, 10, 13, 13), task(15, 14, 13, 13),
             task(17, 10, 16, 13)};
  return t;
}

auto subreaper_root = [](int i) -> Result<bool> { return i == 0; };

std::string refusal(const Pstree& t, std::function<Result<bool>(int)> sr = subreaper_root) {
  auto p = plan_sessions(t, sr);
  return p ? std::string() : p.error().str();
}

}  // namespace

TEST_CASE("plan_sessions: gone groups and a gone session below a subreaper") {
  auto p = plan_sessions(orphans(), subreaper_root);
  REQUIRE(p);
  REQUIRE(p->sessions.size() == 1);
  const auto& s = p->sessions[0];
  CHECK(s.sid == 13);
  CHECK(s.parent == 0);
  CHECK(s.top == std::vector<int>{2, 4});
  CHECK(s.groups == std::vector<int64_t>{16});
  CHECK(s.wait == std::vector<int>{2, 4});  // 14 in group 13, 17 in group 16 (15 inherits)
  REQUIRE(p->groups.size() == 2);
  CHECK(p->group(11)->maker == 0);
  CHECK(p->group(11)->members == std::vector<int>{1});
  CHECK(p->group(16)->maker == -1);
  CHECK(p->group(16)->session == 13);
  CHECK(p->helper_pids() == std::vector<int64_t>{13, 11, 16});
  CHECK(p->session_of_top(4) == &p->sessions[0]);
  CHECK(p->session_of_top(3) == nullptr);
  CHECK(p->groups_made_by(0).size() == 1);
}

TEST_CASE("plan_sessions: a plain tree needs no helper") {
  Pstree t;
  t.root_pid = 10;
  t.tasks = {task(10, 0, 5, 5), task(11, 10, 5, 5), task(12, 11, 12, 5), task(13, 10, 12, 5), task(14, 10, 14, 14)};
  auto p = plan_sessions(t, [](int) -> Result<bool> { return make_error("not asked"); });
  REQUIRE(p);
  CHECK(p->helper_pids().empty());
}

TEST_CASE("plan_sessions: a gone group's maker is the members' parents' common ancestor") {
  Pstree t;
  t.root_pid = 10;
  // 20 and 21 are cousins in gone group 9; their parents 11 and 12 are
  // children of the root.
  t.tasks = {task(10, 0, 10, 10), task(11, 10, 10, 10), task(20, 11, 9, 10), task(12, 10, 10, 10),
             task(21, 12, 9, 10)};
  auto p = plan_sessions(t, subreaper_root);
  REQUIRE(p);
  REQUIRE(p->groups.size() == 1);
  CHECK(p->groups[0].maker == 0);
  CHECK(p->groups[0].members == std::vector<int>{2, 4});
}

TEST_CASE("plan_sessions: refusals name the process and the reason") {
  auto t = orphans();
  CHECK(refusal(t, [](int) -> Result<bool> { return false; }).find("pid 14: is in session 13, whose leader is gone, "
                                                                   "under a parent (10) that is not a child subreaper") == 0);
  t = orphans();
  t.tasks[2].shares_files = true;
  CHECK(refusal(t).find("pid 14: is in session 13, whose leader is gone, and shares") == 0);
  t = orphans();
  t.tasks[3].sid = 10;  // 15 in the root's session under 14, which left it
  CHECK(refusal(t).find("pid 15: is in session 10, which its parent 14 left") == 0);
  t = orphans();
  t.tasks[1].pgid = 14;  // 12 in the group of 14, which is in another session
  CHECK(refusal(t).find("pid 12: is in process group 14, but process 14 of the tree no longer leads it") == 0);
  t = orphans();
  t.tasks[4].pgid = 11;  // group 11 with members in two sessions
  CHECK(refusal(t).find("in session 13, another session than its other members'") != std::string::npos);
  // A helper's pid taken by a thread of the tree.
  t = orphans();
  t.tasks[0].threads = {10, 16};
  CHECK(refusal(t).find("gone leader 16 is also a pid of the tree") != std::string::npos);
  // A group of a gone root session leader, without the session helper.
  Pstree v;
  v.root_pid = 10;
  v.tasks = {task(10, 0, 8, 7), task(11, 10, 7, 7)};
  v.root_session_gone = true;
  CHECK(refusal(v).find("pid 11: is in process group 7 of its session's gone leader") == 0);
}
