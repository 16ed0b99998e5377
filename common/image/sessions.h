// Sessions and process groups whose leader is gone: how the restore makes
// them again, planned from pstree.img alone. cr-dump runs the same plan on
// the frozen tree to refuse what the restore could not rebuild; cr-restore
// (cr-restore/pstree.cc) follows it.
//
// A session or group exists only while some process is in it, and a
// process gets into a session only by forking from a member (setsid makes a
// new one, named after the caller). So a gone leader is played by a
// short-lived helper task with the leader's pid:
//
//  * A group G whose leader is gone (`sleep 1 | sleep 1000` after the
//    first sleep exits): a group helper with pid G, forked by the nearest
//    common ancestor of the members' parents (in the members' session),
//    calls setpgid(0, 0); each member joins G; when all have, the maker
//    releases the helper and reaps it.
//  * A session S whose leader is gone, holding a non-root process: such a
//    process was orphaned and re-parented to a child subreaper of the tree
//    (its parent R). A session helper with pid S, forked by R, calls
//    setsid(), makes the gone groups of S, forks the session's top members
//    (R's children in S) and exits once every member of its groups has
//    joined; the kernel re-parents the members to R, the subreaper.
//
// The root's own gone session and group (Pstree::root_session_gone, ...)
// are not part of this plan: cr-restore makes them before the root.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/error.h"
#include "common/image/pstree.h"

namespace cr {

struct SessionPlan {
  struct SessionHelper {
    int64_t sid = 0;              // the helper's pid
    int parent = 0;               // task index of R, the child subreaper forking it
    std::vector<int> top;         // R's children in the session (task indexes), in tree order
    std::vector<int64_t> groups;  // gone groups the helper makes (pgids)
    std::vector<int> wait;        // members of group S and of `groups`: the helper stays until all joined
  };
  struct GroupHelper {
    int64_t pgid = 0;             // the helper's pid
    int maker = -1;               // task index forking it, or -1: the session helper of `session`
    int64_t session = 0;          // the members' session
    std::vector<int> members;     // task indexes
  };
  std::vector<SessionHelper> sessions;
  std::vector<GroupHelper> groups;

  std::vector<int64_t> helper_pids() const;
  const SessionHelper* session_of_top(int task) const;   // the helper forking this task, if any
  std::vector<const GroupHelper*> groups_made_by(int task) const;
  const GroupHelper* group(int64_t pgid) const;
};

// Plan the helpers for `t`. A leader not in the tree is taken to be gone
// (cr-dump refuses a non-root process whose leader lives outside the tree).
// `is_subreaper(i)` tells whether task i is a child subreaper; it is asked
// only about parents of processes in a gone session. An Error names the
// process whose session or group cannot be rebuilt.
Result<SessionPlan> plan_sessions(const Pstree& t, const std::function<Result<bool>(int)>& is_subreaper);

}  // namespace cr
