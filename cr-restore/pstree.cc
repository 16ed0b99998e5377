// Restore side of the process tree (dump side: cr-dump/pstree.cc, record:
// common/image/pstree.h): the plan of the tree, pids, sessions and process
// groups, zombies, and each task forking its children with their pids.
//
// Order (DESIGN.md 4.2): a task sets its session or group first (setsid()
// before it forks, so its children inherit the session), makes the shared
// files its subtree needs, then forks its children; each child does the
// same for its own subtree before it restores itself.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common/fault.h"
#include "common/fd.h"
#include "common/proc/stat.h"
#include "common/proc/status.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

int highest_open_fd() {
  int top = 2;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (struct dirent* e = readdir(d))
      if (e->d_name[0] != '.') top = std::max(top, atoi(e->d_name));
    closedir(d);
  }
  return top;
}

void sleep_ms(int ms) {
  struct timespec ts = {0, ms * 1000 * 1000};
  nanosleep(&ts, nullptr);
}

// How long a task waits for a group to appear, and a helper for the
// members it waits for, in ms: the members are forked by other branches of
// the tree, which may be busy making shared memory first.
constexpr int kJoinWaitMs = 60 * 1000;

[[noreturn]] void helper_die(int err_fd, const Error& e) {
  std::string msg = e.str() + "\n";
  (void)!write(err_fd, msg.data(), msg.size());
  _exit(1);
}

// Wait until every task in `members` is in process group `pgid`.
Status wait_members_joined(const SetImages& imgs, const std::vector<int>& members, pid_t pgid) {
  for (int m : members) {
    pid_t pid = static_cast<pid_t>(imgs.tasks[m].entry.pid);
    for (int i = 0; getpgid(pid) != pgid; i++) {
      if (i >= kJoinWaitMs) return make_error("pid %d did not join process group %d in time", pid, pgid);
      sleep_ms(1);
    }
  }
  return ok_status();
}

}  // namespace

Result<TreePlan> plan_tree(const SetImages& imgs) {
  TreePlan p;
  size_t n = imgs.tasks.size();
  std::map<int64_t, int> index;
  for (size_t i = 0; i < n; i++) index[imgs.tasks[i].entry.pid] = static_cast<int>(i);
  p.parent.assign(n, -1);
  p.children.assign(n, {});
  p.creates_files.assign(n, {});
  p.creates_pipes.assign(n, {});
  p.creates_shmem.assign(n, {});
  std::vector<int> depth(n, 0);
  for (size_t i = 1; i < n; i++) {
    int par = index.at(imgs.tasks[i].entry.ppid);  // validated: parents come first
    p.parent[i] = par;
    p.children[par].push_back(static_cast<int>(i));
    depth[i] = depth[par] + 1;
  }
  auto lca = [&](int a, int b) {
    while (depth[a] > depth[b]) a = p.parent[a];
    while (depth[b] > depth[a]) b = p.parent[b];
    while (a != b) a = p.parent[a], b = p.parent[b];
    return a;
  };
  // Who holds each file, and each pipe (through any of its ends).
  std::map<uint64_t, std::set<int>> file_holders, pipe_holders;
  std::map<uint64_t, const FileRec*> by_id;
  for (auto& f : imgs.files.files) by_id[f.id] = &f;
  int top = 2;
  for (size_t i = 0; i < n; i++)
    for (auto& d : imgs.tasks[i].fds.fds) {
      top = std::max(top, d.fd);
      file_holders[d.file_id].insert(static_cast<int>(i));
      const FileRec& f = *by_id.at(d.file_id);
      if (f.type == "pipe" || f.type == "fifo") pipe_holders[f.pipe_id].insert(static_cast<int>(i));
    }
  p.transit_base = std::max(top, highest_open_fd()) + 64;
  int next = p.transit_base;
  for (auto& [pipe, holders] : pipe_holders) {
    int c = *holders.begin();
    for (int h : holders) c = lca(c, h);
    p.creates_pipes[c].push_back(pipe);
    for (auto& f : imgs.files.files)
      if ((f.type == "pipe" || f.type == "fifo") && f.pipe_id == pipe && file_holders.count(f.id))
        p.transit_fd[f.id] = next++;
  }
  // UNIX sockets: all made together (connections and names tie them) by
  // the nearest common ancestor of all their holders.
  for (auto& [id, holders] : file_holders) {
    if (by_id.at(id)->type != "unix") continue;
    for (int h : holders) p.unix_creator = p.unix_creator < 0 ? h : lca(p.unix_creator, h);
    p.transit_fd[id] = next++;
  }
  for (auto& [id, holders] : file_holders) {
    const std::string& type = by_id.at(id)->type;
    if (type == "pipe" || type == "fifo" || type == "unix" || holders.size() < 2) continue;
    int c = *holders.begin();
    for (int h : holders) c = lca(c, h);
    p.creates_files[c].push_back(id);
    p.transit_fd[id] = next++;
  }
  // Shared anonymous memory: made by the nearest common ancestor of the
  // tasks mapping it, inherited as an fd, mapped by each.
  // (memfd fds too: they open the object).
  for (auto& m : imgs.files.shmem) p.shmem_of_inode[{m.dev, m.ino}] = m.id;
  std::map<uint64_t, std::set<int>> shmem_holders;
  for (size_t i = 0; i < n; i++) {
    for (auto& v : imgs.tasks[i].mm.vmas)
      if (v.kind == "shmem") shmem_holders[p.shmem_of_inode.at({v.dev, v.ino})].insert(static_cast<int>(i));
    for (auto& d : imgs.tasks[i].fds.fds)
      if (by_id.at(d.file_id)->type == "memfd") shmem_holders[by_id.at(d.file_id)->shmem_id].insert(static_cast<int>(i));
  }
  for (auto& [id, holders] : shmem_holders) {
    int c = *holders.begin();
    for (int h : holders) c = lca(c, h);
    p.creates_shmem[c].push_back(id);
    p.transit_shmem[id] = next++;
  }
  // Deleted files: made by cr-restore itself, inherited by every task.
  for (auto& g : imgs.files.ghosts) p.transit_ghost[g.id] = next++;
  p.transit_end = next;
  // The transit numbers and the service fds above them must be allowed.
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t want = static_cast<rlim_t>(p.transit_end) + 64;
  if (rl.rlim_cur < want) {
    if (rl.rlim_max < want)
      return make_error("the tree needs %llu file descriptors in one task, more than RLIMIT_NOFILE (%llu) allows",
                        (unsigned long long)want, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return make_errno(errno, "setrlimit RLIMIT_NOFILE");
  }
  p.sessions = TRY(plan_sessions(imgs.pstree, [&](int i) -> Result<bool> { return imgs.tasks[i].core.child_subreaper; }));
  return p;
}

// Who holds a pid, for the message: "'bash' (pid 812)" or a zombie.
Status check_pid_free_now(pid_t pid) {
  auto gone = [](const Error& e) { return e.err == ENOENT || e.err == ESRCH; };
  auto st = proc::read_stat(pid);
  if (!st) {
    if (gone(st.error())) return ok_status();  // no such process: free
    return std::move(st).error();
  }
  pid_t tgid = pid;
  auto status = proc::read_status(pid);
  if (!status && !gone(status.error())) return std::move(status).error();
  if (status) tgid = status->tgid;
  Error e;
  if (st->state == 'Z') {
    e = make_error("pid %d is held by a zombie ('%s') that its parent has not reaped", pid, st->comm.c_str());
    e.remedy = "reap it (its parent must wait for it) or restore in a new pid namespace";
  } else if (tgid != pid) {
    e = make_error("pid %d is in use by a thread of '%s' (pid %d)", pid, st->comm.c_str(), tgid);
  } else {
    e = make_error("pid %d is in use by '%s' (pid %d)", pid, st->comm.c_str(), pid);
  }
  if (e.remedy.empty()) e.remedy = "stop that process first";
  return e;
}

// A pid held by a zombie is usually freed a moment later, when its parent
// reaps it (a dump just killed it: `crtools dump ... | crtools restore`).
// Give the parents up to five seconds in all, then report whoever holds it.
Status check_pids_free(const SetImages& imgs) {
  std::vector<pid_t> all;
  for (auto& t : imgs.tasks) {
    all.push_back(static_cast<pid_t>(t.entry.pid));
    for (size_t k = 1; k < t.entry.threads.size(); k++) all.push_back(static_cast<pid_t>(t.entry.threads[k]));
  }
  for (int i = 0; i < 500; i++) {
    bool zombie = false;
    for (pid_t pid : all) {
      auto st = check_pid_free_now(pid);
      if (st) continue;
      if (st.error().message.find("held by a zombie") == std::string::npos) return st;
      zombie = true;
    }
    if (!zombie) return ok_status();
    sleep_ms(10);
  }
  for (pid_t pid : all) TRY_STATUS(check_pid_free_now(pid));
  return ok_status();
}

pid_t clone_with_pid(pid_t pid, uint64_t flags) {
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = flags;
  ca.exit_signal = SIGCHLD;
  pid_t tids[1] = {pid};
  ca.set_tid = reinterpret_cast<uint64_t>(tids);
  ca.set_tid_size = 1;
  return static_cast<pid_t>(syscall(SYS_clone3, &ca, sizeof ca));
}

Status restore_session(const SetImages& imgs, const TreePlan& plan, int index) {
  const PstreeEntry& e = imgs.tasks[index].entry;
  pid_t pid = getpid();
  if (e.sid == pid) {
    if (setsid() < 0) return make_errno(errno, "pid %d: setsid", pid);
    return ok_status();
  }
  if (e.pgid == pid) {
    if (setpgid(0, 0) < 0) return make_errno(errno, "pid %d: setpgid", pid);
    return ok_status();
  }
  // The root otherwise stays in cr-restore's group; another task inherits
  // its parent's group, or joins one that another task of the tree leads,
  // the root's (cr-restore's, if its leader lived outside the tree), or a
  // helper plays the gone leader of (plan_sessions). The group may not
  // exist yet (its leader is in another branch of the tree, or its helper
  // is being forked): try again, a bounded while.
  int par = plan.parent[index];
  if (par < 0 || e.pgid == imgs.tasks[par].entry.pgid) return ok_status();
  pid_t pgid = static_cast<pid_t>(e.pgid);
  if (e.pgid == imgs.pstree.root_pid || e.pgid == imgs.pstree.tasks[0].pgid)
    pgid = getpgid(static_cast<pid_t>(imgs.pstree.root_pid));
  for (int i = 0; setpgid(0, pgid) < 0; i++)
    if (errno != EPERM || i >= kJoinWaitMs) return make_errno(errno, "pid %d: cannot join process group %d", pid, pgid);
    else sleep_ms(1);
  return ok_status();
}

std::vector<pid_t> session_helpers(const SetImages& imgs) {
  std::vector<pid_t> h;
  const PstreeEntry& r = imgs.pstree.tasks[0];
  if (imgs.pstree.root_session_gone) h.push_back(static_cast<pid_t>(r.sid));
  if (imgs.pstree.root_group_gone) h.push_back(static_cast<pid_t>(r.pgid));
  return h;
}

std::vector<pid_t> all_helpers(const SetImages& imgs, const TreePlan& plan) {
  std::vector<pid_t> h = session_helpers(imgs);
  for (int64_t p : plan.sessions.helper_pids()) h.push_back(static_cast<pid_t>(p));
  return h;
}

Result<pid_t> fork_with_pid(pid_t want, uint64_t flags) {
  TRY_STATUS(fault_point("fork"));
  // A pid number stays taken while any task still uses it, also as its
  // process group or session: a killed tree's last member being reaped
  // right now holds its leader's pid a moment after /proc shows no
  // process there (seen in `dump | restore` on 6.18). So EEXIST with no
  // holder in /proc is tried again, a bounded while (one second).
  for (int i = 0;; i++) {
    pid_t got = clone_with_pid(want, flags);
    if (got >= 0) return got;
    int e = errno;
    if (e != EEXIST) return make_errno(e, "clone3 with pid %d", want);
    TRY_STATUS(check_pid_free_now(want));
    if (i >= 500) return make_error("pid %d is in use, though no process has it (a process group or session of that id?)", want);
    sleep_ms(2);
  }
}

void run_session_helpers(const ImageSet& set, const SetImages& imgs, const TreePlan& plan, const RestoreOptions& o,
                         int err_fd) {
  auto die = [&](const Error& e) { helper_die(err_fd, e); };
  std::vector<pid_t> h = session_helpers(imgs);
  if (setsid() < 0) die(make_errno(errno, "session helper %d: setsid", getpid()));
  auto fork_pid = [&](pid_t want) {
    auto got = fork_with_pid(want, 0);
    if (!got) die(got.error());
    return *got;
  };
  if (h.size() > 1) {
    if (fork_pid(h[1]) != 0) _exit(0);
    if (setpgid(0, 0) < 0) die(make_errno(errno, "group helper %d: setpgid", getpid()));
  }
  if (fork_pid(static_cast<pid_t>(imgs.pstree.root_pid)) != 0) _exit(0);
  restore_task_and_jump(set, imgs, plan, 0, o, err_fd);
}

namespace {

// A helper playing a gone group leader: make the group, stay until every
// member has joined it, exit. Its maker reaps it.
Result<pid_t> fork_group_helper(const SetImages& imgs, const SessionPlan::GroupHelper& g, int err_fd) {
  pid_t got = TRY(fork_with_pid(static_cast<pid_t>(g.pgid), 0));
  if (got > 0) return got;
  if (setpgid(0, 0) < 0) helper_die(err_fd, make_errno(errno, "group helper %d: setpgid", getpid()));
  if (auto st = wait_members_joined(imgs, g.members, getpid()); !st) helper_die(err_fd, st.error());
  _exit(0);
}

Status reap_helper(pid_t h) {
  int st;
  while (waitpid(h, &st, 0) < 0)
    if (errno != EINTR) return make_errno(errno, "waiting for helper %d", h);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return make_error("helper %d (a gone session or group leader) failed", h);
  return ok_status();
}

// A helper playing a gone session leader, forked by the child subreaper
// its top members belong to: make the session and its gone groups, fork
// the top members, stay until every member has joined its group, exit (the
// kernel gives the members to the subreaper). Never returns.
[[noreturn]] void run_tree_session_helper(const ImageSet& set, const SetImages& imgs, const TreePlan& plan,
                                          const SessionPlan::SessionHelper& sh, const RestoreOptions& o, int err_fd) {
  auto die = [&](const Error& e) { helper_die(err_fd, e); };
  if (setsid() < 0) die(make_errno(errno, "session helper %d: setsid", getpid()));
  std::vector<pid_t> groups;
  for (int64_t g : sh.groups) {
    auto h = fork_group_helper(imgs, *plan.sessions.group(g), err_fd);
    if (!h) die(h.error());
    groups.push_back(*h);
  }
  for (int c : sh.top) {
    const PstreeEntry& ce = imgs.tasks[c].entry;
    auto got = fork_with_pid(static_cast<pid_t>(ce.pid), 0);
    if (!got) die(got.error());
    if (*got == 0) restore_task_and_jump(set, imgs, plan, c, o, err_fd);
    if (ce.pgid == ce.pid && ce.sid != ce.pid) setpgid(*got, *got);
  }
  for (pid_t h : groups)
    if (auto st = reap_helper(h); !st) die(st.error());
  std::vector<int> in_session_group;
  for (int m : sh.wait)
    if (imgs.tasks[m].entry.pgid == sh.sid) in_session_group.push_back(m);
  if (auto st = wait_members_joined(imgs, in_session_group, getpid()); !st) die(st.error());
  _exit(0);
}

}  // namespace

void become_zombie(const PstreeEntry& e) {
  int st = e.exit_status;
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    // Killed by a signal: die by the same one. A core dump is not made
    // again (the wait status loses its core flag).
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, nullptr);
    kill(getpid(), sig);
    _exit(128 + sig);  // a signal that does not kill: not a dumped state
  }
  _exit(WEXITSTATUS(st));
}

namespace {
// This task's children sharing its fd table: pid and the read end of their
// "done" pipe; in such a child, the write end.
struct FilesSharer {
  pid_t pid;
  int done_r, done_w;  // both stay open until the child is done: the table is one
};
std::vector<FilesSharer> g_files_sharers;
int g_files_done_w = -1;
}  // namespace

void tell_parent_files_done() {
  if (g_files_done_w < 0) return;
  (void)!write(g_files_done_w, "d", 1);
  g_files_done_w = -1;  // the parent closes both ends (one table)
}

Status wait_files_sharers() {
  for (auto& s : g_files_sharers) {
    // The child's "done", or its end (a pidfd polls readable then).
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, s.pid, 0)));
    if (!pidfd.valid()) return make_errno(errno, "pidfd_open %d", s.pid);
    struct pollfd pf[2] = {{s.done_r, POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    while (poll(pf, 2, -1) < 0)
      if (errno != EINTR) return make_errno(errno, "poll");
    char c;
    if (!(pf[0].revents & POLLIN) || read(s.done_r, &c, 1) != 1)
      return make_error("pid %d, which shares its parent's fd table, failed", s.pid);
    close(s.done_r);
    close(s.done_w);
  }
  g_files_sharers.clear();
  return ok_status();
}

Status fork_children(const ImageSet& set, const SetImages& imgs, const TreePlan& plan, int index,
                     const RestoreOptions& o, int err_fd) {
  // Gone group leaders this task plays for its subtree, before any child.
  std::vector<pid_t> group_helpers;
  for (auto* g : plan.sessions.groups_made_by(index)) group_helpers.push_back(TRY(fork_group_helper(imgs, *g, err_fd)));
  for (int c : plan.children[index]) {
    pid_t want = static_cast<pid_t>(imgs.tasks[c].entry.pid);
    const PstreeEntry& ce = imgs.tasks[c].entry;
    if (const auto* sh = plan.sessions.session_of_top(c)) {
      // A child in a session whose leader is gone: its session helper
      // forks it (with the session's other top members, when it sees the
      // first), and exits; the child comes back to us, a subreaper.
      if (sh->top[0] != c) continue;
      pid_t h = TRY(fork_with_pid(static_cast<pid_t>(sh->sid), 0));
      if (h == 0) {
        g_files_sharers.clear();
        run_tree_session_helper(set, imgs, plan, *sh, o, err_fd);
      }
      TRY_STATUS(reap_helper(h));
      continue;
    }
    int done[2] = {-1, -1};
    if (ce.shares_files && pipe2(done, O_CLOEXEC) < 0) return make_errno(errno, "pipe");
    if (ce.shares_files) g_files_done_w = done[1];
    auto got = fork_with_pid(want, (ce.shares_fs ? CLONE_FS : 0) | (ce.shares_files ? CLONE_FILES : 0));
    if (got && *got == 0) {
      g_files_sharers.clear();  // the parent's, not this task's
      restore_task_and_jump(set, imgs, plan, c, o, err_fd);
    }
    if (ce.shares_files) {  // (the child keeps g_files_done_w)
      g_files_done_w = -1;
      if (got) {
        g_files_sharers.push_back({*got, done[0], done[1]});
      } else {
        close(done[0]);
        close(done[1]);
      }
    }
    if (!got) return std::move(got).error();
    // A child leading its own group (not a session) gets it from us now,
    // before its later siblings run: one of them may join it (bash: `a |
    // b`). The child does the same itself; whoever is first makes it.
    if (ce.pgid == want && ce.sid != want) setpgid(*got, *got);
  }
  for (pid_t h : group_helpers) TRY_STATUS(reap_helper(h));
  // A zombie child must have exited before the restorer drains the
  // signals its exit sent (SIGCHLD); WNOWAIT leaves it unreaped.
  for (int c : plan.children[index]) {
    const PstreeEntry& e = imgs.tasks[c].entry;
    if (!e.zombie) continue;
    siginfo_t si;
    while (waitid(P_PID, static_cast<id_t>(e.pid), &si, WEXITED | WNOWAIT) < 0)
      if (errno != EINTR) return make_errno(errno, "waiting for zombie %lld", (long long)e.pid);
  }
  return ok_status();
}

}  // namespace cr
