// Dump side of the process tree (record: common/image/pstree.h; restore
// side: cr-restore/pstree.cc): freeze every thread of every process below
// the root, find zombies, and check that the shape is one the restore can
// rebuild (sessions, process groups, no shared fd tables or address spaces
// between processes).
//
// Freezing (DESIGN.md 3.1): seize every thread we know of, then read every
// process's threads and children again; repeat until a pass finds nothing
// new. A seized thread is stopped and cannot clone or fork, so only tasks
// not yet seized can add more, and the loop ends with the whole tree frozen.
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/kernel/features.h"
#include "common/log.h"
#include "common/proc/misc.h"
#include "common/proc/stat.h"
#include "common/image/sessions.h"
#include "common/proc/status.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

// At most this many passes: a tree that keeps growing faster than we seize
// it (a fork bomb) is refused rather than chased for ever.
constexpr int kMaxFreezePasses = 1000;

long kcmp(pid_t a, pid_t b, int type) { return syscall(SYS_kcmp, a, b, type, 0, 0); }

// Does `leader` live and lead its session (group)?
// An error reading /proc that means the task has gone (exited, reaped):
// anything else is a failure of its own, not a reason to look again.
bool vanished(const Error& e) { return e.err == ENOENT || e.err == ESRCH; }

Result<bool> leads(pid_t leader, bool session) {
  auto st = proc::read_stat(leader);
  if (!st) {
    if (vanished(st.error())) return false;
    return std::move(st).error();
  }
  return st->state != 'Z' && (session ? st->session : st->pgrp) == leader;
}

}  // namespace

Status check_tree_supported(pid_t pid) {
  if (pid == getpid()) return make_pid_error(pid, 0, "refusing to dump crtools itself");
  auto st = proc::read_status(pid);
  if (!st) {
    if (st.error().err == ENOENT) return make_pid_error(pid, 0, "no such process");
    return std::move(st).error();
  }
  if (st->tgid != pid) return make_pid_error(pid, 0, "is a thread of process %d; dump the process", st->tgid);
  if (st->state == 'Z') return make_pid_error(pid, 0, "is a zombie; there is nothing left to dump");
  if (st->kthread.value_or(false)) return make_pid_error(pid, 0, "is a kernel thread");
  if (st->ns_pid.size() > 1)
    return make_pid_error(pid, 0, "lives in a nested pid namespace, which is not supported yet");
  return ok_status();
}

size_t FrozenTree::nr_threads() const {
  size_t n = 0;
  for (auto& p : procs) n += p.threads.size();
  return n;
}

Result<FrozenTree> freeze_tree(pid_t root) {
  // pid -> its process; threads seized so far, by tid.
  struct Proc {
    pid_t ppid = 0;
    bool zombie = false;
    int exit_status = 0;
    std::map<pid_t, SeizedTask> threads;
    std::set<pid_t> children;
  };
  std::map<pid_t, Proc> procs;
  procs[root] = Proc{};
  bool changed = true;
  int pass = 0;
  while (changed) {
    if (++pass > kMaxFreezePasses)
      return make_pid_error(root, 0, "the tree keeps changing (%zu processes so far); cannot freeze it",
                            procs.size());
    changed = false;
    std::vector<pid_t> gone;
    for (auto& [pid, p] : procs) {
      if (p.zombie) continue;
      auto tids = proc::list_tasks(pid);
      if (!tids) {
        if (!vanished(tids.error())) return std::move(tids).error();
        if (pid == root) return make_pid_error(root, 0, "exited while being frozen");
        gone.push_back(pid);  // exited and reaped meanwhile: not in the tree
        changed = true;
        continue;
      }
      if (p.threads.empty()) {
        auto stat = proc::read_stat(pid);
        if (!stat && !vanished(stat.error())) return std::move(stat).error();
        if (stat && stat->state == 'Z' && tids->size() <= 1) {
          if (pid == root) return make_pid_error(root, 0, "became a zombie while being frozen");
          p.zombie = true;
          p.exit_status = stat->exit_code;
          changed = true;
          continue;
        }
      }
      // Every new thread is asked to stop first, then waited for: a busy
      // process is frozen in one round, not one thread per time slice.
      std::vector<SeizedTask> starting;
      for (pid_t tid : *tids) {
        if (p.threads.count(tid)) continue;
        auto t = SeizedTask::seize_start(tid);
        if (!t) {
          // A thread that exited before we got it is simply not there; the
          // leader of a process becoming a zombie is seen on the next pass.
          if (t.error().err == ESRCH) {
            changed = true;
            continue;
          }
          return std::move(t).error();
        }
        starting.push_back(std::move(*t));
      }
      for (auto& t : starting) {
        if (auto st = t.wait_seized(); !st) {
          if (st.error().err == ESRCH) {
            changed = true;
            continue;
          }
          return std::move(st).error();
        }
        pid_t tid = t.tid();
        p.threads.emplace(tid, std::move(t));
        changed = true;
      }
      for (auto& [tid, t] : p.threads) {
        if (t.exited()) continue;
        auto kids = proc::read_children(pid, tid);
        if (!kids && !vanished(kids.error())) return std::move(kids).error();
        if (!kids) continue;  // the thread is gone; the next pass sees it
        for (pid_t c : *kids) {
          if (p.children.insert(c).second) changed = true;
          if (!procs.count(c)) {
            // Inserting while iterating a std::map keeps iterators valid.
            procs[c].ppid = pid;
            changed = true;
          }
        }
      }
    }
    for (pid_t g : gone) {
      procs.erase(g);
      for (auto& [pid, p] : procs) p.children.erase(g);
    }
    // Threads that exited while held (killed by someone else) are dropped
    // and the process looked at again.
    for (auto& [pid, p] : procs)
      for (auto it = p.threads.begin(); it != p.threads.end();) {
        if (it->second.exited()) {
          if (it->first == pid) return make_pid_error(pid, 0, "exited while being frozen");
          it = p.threads.erase(it);
          changed = true;
        } else {
          ++it;
        }
      }
  }

  // Depth first from the root, children by pid: parents come before their
  // children, as the restore forks them.
  FrozenTree tree;
  std::vector<pid_t> stack = {root};
  while (!stack.empty()) {
    pid_t pid = stack.back();
    stack.pop_back();
    Proc& p = procs.at(pid);
    FrozenProc fp;
    fp.pid = pid;
    fp.ppid = pid == root ? 0 : p.ppid;
    fp.zombie = p.zombie;
    fp.exit_status = p.exit_status;
    auto stat = TRY(proc::read_stat(pid));
    fp.pgid = stat.pgrp;
    fp.sid = stat.session;
    if (!p.zombie) {
      if (!p.threads.count(pid)) return make_pid_error(pid, 0, "its main thread has exited; not supported");
      fp.threads.push_back(std::move(p.threads.at(pid)));
      for (auto& [tid, t] : p.threads)
        if (tid != pid) fp.threads.push_back(std::move(t));
    }
    tree.procs.push_back(std::move(fp));
    for (auto it = p.children.rbegin(); it != p.children.rend(); ++it) stack.push_back(*it);
  }
  pr_debug(root, "frozen: %zu processes, %zu threads in %d passes", tree.procs.size(), tree.nr_threads(), pass);
  return tree;
}

Status check_frozen_tree(FrozenTree& tree) {
  std::map<pid_t, const FrozenProc*> by_pid;
  for (auto& p : tree.procs) by_pid[p.pid] = &p;
  for (auto& p : tree.procs) {
    pid_t pid = p.pid;
    if (p.ppid) {
      // A session or group led from outside the tree cannot be joined by a
      // non-root process of the restored tree; one whose leader is gone is
      // made again by a helper (plan_sessions, below).
      const FrozenProc& parent = *by_pid.at(p.ppid);
      if (p.sid != pid && p.sid != parent.sid && !by_pid.count(p.sid) && TRY(leads(p.sid, true)))
        return make_pid_error(pid, 0, "is in session %d, led by process %d outside the tree; not supported", p.sid,
                              p.sid);
      if (p.pgid != pid && p.pgid != parent.pgid && !by_pid.count(p.pgid) && p.pgid != tree.procs[0].pgid &&
          TRY(leads(p.pgid, false)))
        return make_pid_error(pid, 0, "is in process group %d, led by process %d outside the tree; not supported",
                              p.pgid, p.pgid);
    }
    if (p.zombie) continue;
    auto st = TRY(proc::read_status(pid));
    if (st.ns_pid.size() > 1) return make_pid_error(pid, 0, "lives in a nested pid namespace; not supported yet");
    // Filters are installed again last, with the dumped credentials: the
    // kernel takes them only with no_new_privs or CAP_SYS_ADMIN.
    if (st.seccomp == 2 && !st.no_new_privs && !(st.cap_eff & (1ull << 21 /* CAP_SYS_ADMIN */)))
      return make_pid_error(pid, 0,
                            "has seccomp filters but neither no_new_privs nor CAP_SYS_ADMIN to install them "
                            "again; not supported");
    auto timers = proc::read_timers(pid);
    if (!timers && timers.error().err != ENOENT) return std::move(timers).error();  // ENOENT: no /proc/PID/timers
    if (timers && !timers->empty() && !feature_available(Feature::PosixTimerIds))
      return make_pid_error(pid, 0, "has POSIX timer %d, which this kernel cannot restore with its id",
                            (*timers)[0].id);
    // Processes sharing what fork() normally copies. fs information (cwd,
    // root, umask) shared with the parent is made again with CLONE_FS;
    // shared otherwise, or an fd table or address space, is refused.
    if (p.ppid && !by_pid.at(p.ppid)->zombie && kcmp(p.ppid, pid, KCMP_FS) == 0) {
      auto root = TRY(proc::read_root(pid));
      if (root.path != "/")
        return make_pid_error(pid, 0, "shares cwd/root/umask with its parent under chroot %s; not supported yet",
                              root.path.c_str());
      p.shares_fs = true;
    }
    // The same for the fd table (CLONE_FILES), with the parent only.
    if (p.ppid && !by_pid.at(p.ppid)->zombie && kcmp(p.ppid, pid, KCMP_FILES) == 0) {
      if (by_pid.at(p.ppid)->shares_files)
        return make_pid_error(pid, 0, "shares its fd table with its parent %d, which shares it with its own parent "
                              "(CLONE_FILES over three generations); not supported yet", p.ppid);
      p.shares_files = true;
    }
    // Every live process before this one in the tree.
    for (auto& q : tree.procs) {
      if (&q == &p) break;
      if (q.zombie) continue;
      if (kcmp(q.pid, pid, KCMP_VM) == 0)
        return make_pid_error(pid, 0, "shares its address space with process %d (CLONE_VM); not supported", q.pid);
      if (kcmp(q.pid, pid, KCMP_FILES) == 0 && !(p.shares_files && kcmp(q.pid, p.ppid, KCMP_FILES) == 0))
        return make_pid_error(pid, 0,
                              "shares its fd table with process %d, not its parent (CLONE_FILES); not supported yet",
                              q.pid);
      if (kcmp(q.pid, pid, KCMP_FS) == 0 && !(p.shares_fs && kcmp(q.pid, p.ppid, KCMP_FS) == 0))
        return make_pid_error(pid, 0,
                              "shares cwd/root/umask with process %d, not its parent (CLONE_FS); not supported yet",
                              q.pid);
    }
  }
  // Gone session and group leaders: can the restore play them?
  auto subreaper = [&](int i) -> Result<bool> {
    FrozenProc& q = tree.procs[static_cast<size_t>(i)];
    if (q.zombie) return false;
    auto rs = TRY(RemoteSession::start(q.threads[0]));
    bool sr = TRY(read_child_subreaper(rs));
    TRY_STATUS(rs.restore());
    return sr;
  };
  TRY(plan_sessions(TRY(make_pstree(tree)), subreaper));
  return ok_status();
}

Result<Pstree> make_pstree(const FrozenTree& tree) {
  Pstree t;
  t.root_pid = tree.procs[0].pid;
  // Is the root's session (group) leader gone, or alive outside the tree?
  const FrozenProc& root = tree.procs[0];
  if (root.sid != root.pid && !TRY(leads(root.sid, true))) {
    t.root_session_gone = true;
    t.root_group_gone = root.pgid != root.pid && root.pgid != root.sid && !TRY(leads(root.pgid, false));
  }
  for (auto& p : tree.procs) {
    PstreeEntry e;
    e.pid = p.pid;
    e.ppid = p.ppid;
    e.pgid = p.pgid;
    e.sid = p.sid;
    e.zombie = p.zombie;
    e.exit_status = p.exit_status;
    e.shares_fs = p.shares_fs;
    e.shares_files = p.shares_files;
    for (auto& th : p.threads) e.threads.push_back(th.tid());
    t.tasks.push_back(e);
  }
  return t;
}

}  // namespace cr
