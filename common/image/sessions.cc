#include "common/image/sessions.h"

#include <algorithm>
#include <map>
#include <set>

namespace cr {

std::vector<int64_t> SessionPlan::helper_pids() const {
  std::vector<int64_t> out;
  for (auto& s : sessions) out.push_back(s.sid);
  for (auto& g : groups) out.push_back(g.pgid);
  return out;
}

const SessionPlan::SessionHelper* SessionPlan::session_of_top(int task) const {
  for (auto& s : sessions)
    if (std::find(s.top.begin(), s.top.end(), task) != s.top.end()) return &s;
  return nullptr;
}

std::vector<const SessionPlan::GroupHelper*> SessionPlan::groups_made_by(int task) const {
  std::vector<const GroupHelper*> out;
  for (auto& g : groups)
    if (g.maker == task) out.push_back(&g);
  return out;
}

const SessionPlan::GroupHelper* SessionPlan::group(int64_t pgid) const {
  for (auto& g : groups)
    if (g.pgid == pgid) return &g;
  return nullptr;
}

Result<SessionPlan> plan_sessions(const Pstree& t, const std::function<Result<bool>(int)>& is_subreaper) {
  SessionPlan plan;
  const size_t n = t.tasks.size();
  if (n == 0) return plan;
  std::map<int64_t, int> index;
  std::set<int64_t> ids;  // every pid and tid of the tree
  for (size_t i = 0; i < n; i++) {
    index[t.tasks[i].pid] = static_cast<int>(i);
    ids.insert(t.tasks[i].pid);
    ids.insert(t.tasks[i].threads.begin(), t.tasks[i].threads.end());
  }
  std::vector<int> parent(n, -1), depth(n, 0);
  for (size_t i = 1; i < n; i++) {
    auto it = index.find(t.tasks[i].ppid);
    if (it == index.end() || it->second >= static_cast<int>(i))
      return make_error("pstree.img: pid %lld: parent not before it in the tree", (long long)t.tasks[i].pid);
    parent[i] = it->second;
    depth[i] = depth[it->second] + 1;
  }
  const PstreeEntry& root = t.tasks[0];

  // Sessions: a process is in its own, its parent's, or (re-parented to a
  // child subreaper) one whose leader is gone.
  std::map<int64_t, size_t> session_at;
  for (size_t i = 1; i < n; i++) {
    const PstreeEntry& e = t.tasks[i];
    const PstreeEntry& pe = t.tasks[parent[i]];
    if (e.sid == e.pid || e.sid == pe.sid) continue;
    if (index.count(e.sid) || e.sid == root.sid)
      return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in session %lld, which its parent %lld left after forking it (setsid); not supported",
                    (long long)e.sid, (long long)pe.pid);
    if (e.shares_fs || e.shares_files)
      return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in session %lld, whose leader is gone, and shares its fd table or fs information with "
                    "its parent %lld; not supported", (long long)e.sid, (long long)pe.pid);
    if (!TRY(is_subreaper(parent[i])))
      return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in session %lld, whose leader is gone, under a parent (%lld) that is not a child "
                    "subreaper; not supported", (long long)e.sid, (long long)pe.pid);
    auto it = session_at.find(e.sid);
    if (it == session_at.end()) {
      it = session_at.emplace(e.sid, plan.sessions.size()).first;
      plan.sessions.push_back({});
      plan.sessions.back().sid = e.sid;
      plan.sessions.back().parent = parent[i];
    } else if (plan.sessions[it->second].parent != parent[i]) {
      return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in session %lld, whose leader is gone, under another parent than its other members "
                    "(%lld); not supported", (long long)e.sid, (long long)pe.pid);
    }
    plan.sessions[it->second].top.push_back(static_cast<int>(i));
  }

  // Groups: its own, its parent's (inherited), one led by a process of the
  // tree, the root's (made before the root), its gone session leader's
  // (the session helper's), or one whose leader is gone.
  std::map<int64_t, SessionPlan::GroupHelper> gone;
  for (size_t i = 1; i < n; i++) {
    const PstreeEntry& e = t.tasks[i];
    const PstreeEntry& pe = t.tasks[parent[i]];
    if (e.pgid == e.pid || e.pgid == pe.pgid) continue;
    if (auto it = index.find(e.pgid); it != index.end()) {
      const PstreeEntry& leader = t.tasks[it->second];
      if (leader.pgid != e.pgid || leader.sid != e.sid)
        return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in process group %lld, but process %lld of the tree no longer leads it; not supported",
                      (long long)e.pgid, (long long)leader.pid);
      continue;
    }
    if (e.pgid == root.pgid) {
      if (e.sid != root.sid)
        return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in the root's process group %lld but in another session (%lld)", (long long)e.pgid,
                      (long long)e.sid);
      continue;
    }
    if (e.pgid == e.sid) {
      auto it = session_at.find(e.sid);
      if (it == session_at.end())
        return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in process group %lld of its session's gone leader, without being forked in that "
                      "group; not supported", (long long)e.pgid);
      plan.sessions[it->second].wait.push_back(static_cast<int>(i));
      continue;
    }
    auto& g = gone[e.pgid];
    if (g.members.empty()) {
      g.pgid = e.pgid;
      g.session = e.sid;
    } else if (g.session != e.sid) {
      return make_pid_error(static_cast<pid_t>(e.pid), 0, "is in process group %lld in session %lld, another session than its other members'",
                    (long long)e.pgid, (long long)e.sid);
    }
    g.members.push_back(static_cast<int>(i));
  }
  auto lca = [&](int a, int b) {
    while (depth[a] > depth[b]) a = parent[a];
    while (depth[b] > depth[a]) b = parent[b];
    while (a != b) a = parent[a], b = parent[b];
    return a;
  };
  for (auto& [pgid, g] : gone) {
    if (auto it = session_at.find(g.session); it != session_at.end()) {
      g.maker = -1;
      plan.sessions[it->second].groups.push_back(pgid);
      for (int m : g.members) plan.sessions[it->second].wait.push_back(m);
    } else {
      // The nearest common ancestor of the members' parents forks the
      // helper before any of them: it must be in their session.
      int m = parent[g.members[0]];
      for (int x : g.members) m = lca(m, parent[x]);
      if (t.tasks[m].sid != g.session)
        return make_pid_error(static_cast<pid_t>(t.tasks[g.members[0]].pid), 0,
                      "is in process group %lld, whose leader is gone, and no process of the tree above its members "
                      "is in their session %lld; not supported",
                      (long long)pgid, (long long)g.session);
      g.maker = m;
    }
    plan.groups.push_back(std::move(g));
  }

  // Each helper needs its pid: not one of the tree's, nor another helper's.
  std::set<int64_t> taken = ids;
  if (t.root_session_gone) taken.insert(root.sid);
  if (t.root_group_gone) taken.insert(root.pgid);
  for (int64_t h : plan.helper_pids()) {
    if (h <= 0 || h > (1 << 22)) return make_error("pstree.img: bad gone leader pid %lld", (long long)h);
    if (!taken.insert(h).second)
      return make_error("pstree.img: gone leader %lld is also a pid of the tree or another leader", (long long)h);
  }
  return plan;
}

}  // namespace cr
