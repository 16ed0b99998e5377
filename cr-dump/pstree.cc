// Dump side of the process tree (record: common/image/pstree.h; restore
// side: cr-restore). For now a tree of one single-threaded process; the
// checks name what is not supported yet.
#include <unistd.h>

#include "common/proc/misc.h"
#include "common/proc/stat.h"
#include "common/proc/status.h"
#include "cr-dump/dump.h"

namespace cr {

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
  return check_frozen_tree(pid);
}

Status check_frozen_tree(pid_t pid) {
  auto tasks = TRY(proc::list_tasks(pid));
  if (tasks.size() > 1)
    return make_pid_error(pid, 0, "has %zu threads; multi-threaded processes are not supported yet", tasks.size());
  auto children = TRY(proc::read_children(pid, pid));
  if (!children.empty())
    return make_pid_error(pid, 0, "has child process %d; process trees are not supported yet", children[0]);
  auto st = TRY(proc::read_status(pid));
  if (st.seccomp != 0) return make_pid_error(pid, 0, "runs under seccomp, which is not supported yet");
  auto timers = proc::read_timers(pid);
  if (timers && !timers->empty())
    return make_pid_error(pid, 0, "has POSIX timer %d; POSIX timers are not supported yet", (*timers)[0].id);
  return ok_status();
}

Result<Pstree> dump_pstree(pid_t pid) {
  auto st = TRY(proc::read_stat(pid));
  Pstree t;
  t.root_pid = pid;
  PstreeEntry e;
  e.pid = pid;
  e.ppid = 0;
  e.pgid = st.pgrp;
  e.sid = st.session;
  e.threads = {pid};
  t.tasks.push_back(e);
  return t;
}

}  // namespace cr
