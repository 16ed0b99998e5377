// cr-restore: read an image set, rebuild the tree, let it run.
//
//   1. read and validate the whole set (every record, every page frame)
//      before creating any process;
//   2. check that the pids are free;
//   3. clone3 with set_tid gives each task its pid; the task rebuilds itself
//      (cr-restore/task.cc) and jumps into the restorer blob, which ends in
//      rt_sigreturn into the dumped registers;
//   4. cr-restore traces the task through that last step, unmaps the
//      restorer from it, and lets it go; without -d it stays the parent and
//      exits with the task's status.
// A failure at any step kills every task created and says why.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <map>
#include <set>

#include "common/fault.h"
#include "common/fd.h"
#include "common/image/records.h"
#include "common/kernel/features.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/net_lock.h"
#include "common/proc/maps.h"
#include "common/proc/stat.h"
#include "common/proc/status.h"
#include "common/ptrace/seized_task.h"
#include "cr-restore/restore.h"

using namespace cr;

namespace {

const CommandSpec kRestore = {"restore",
                              "-D DIR|- [-t PID] [-d] [--skip-file-check] [--shell-job] [-o FILE] [-v N]",
                              {Opt::ImagesDir, Opt::Tree, Opt::RestoreDetached, Opt::SkipFileCheck, Opt::ShellJob, Opt::LogFile,
                               Opt::Verbosity, Opt::Version},
                              false,
                              0,
                              0};

// Read what the tasks wrote on the error pipe (one line each).
std::string read_error(int fd) {
  std::string msg;
  char buf[512];
  ssize_t n;
  fcntl(fd, F_SETFL, O_NONBLOCK);
  while ((n = read(fd, buf, sizeof buf)) > 0) msg.append(buf, n);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  // The first failure is the cause; later lines are its consequences.
  size_t nl = msg.find('\n');
  if (nl != std::string::npos) msg.resize(nl);
  return msg;
}

// Find a `syscall` instruction (0f 05) in the task's [vdso].
Result<uint64_t> find_syscall_insn(SeizedTask& t) {
  auto maps = TRY(proc::read_maps(t.tid()));
  for (const auto& v : maps) {
    if (!v.is_vdso()) continue;
    std::vector<uint8_t> code(v.size());
    TRY_STATUS(t.read_mem(RemotePtr<void>(v.start), code.data(), code.size()));
    for (size_t i = 0; i + 1 < code.size(); i++)
      if (code[i] == 0x0f && code[i + 1] == 0x05) return v.start + i;
    return make_pid_error(t.tid(), 0, "no syscall instruction in the vDSO");
  }
  return make_pid_error(t.tid(), 0, "no [vdso] to borrow a syscall instruction from");
}

// A thread stopped at the restorer's int3, just before rt_sigreturn: step
// it through rt_sigreturn. It stays stopped at the syscall exit, in its
// dumped registers.
Status step_through_sigreturn(pid_t tid) {
  SeizedTask t = SeizedTask::adopt_stopped(tid, tid, false);
  TRY_STATUS(t.resume(PTRACE_SYSCALL, 0));  // drop the SIGTRAP of int3
  Stop s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallEntry || s.syscall_nr != SYS_rt_sigreturn)
    return make_pid_error(tid, 0, "restorer: expected rt_sigreturn, got stop kind %d (syscall %ld, signal %d)",
                          (int)s.kind, s.syscall_nr, s.sig);
  TRY_STATUS(t.resume(PTRACE_SYSCALL, 0));
  s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallExit)
    return make_pid_error(tid, 0, "restorer: rt_sigreturn did not complete (stop kind %d, signal %d)", (int)s.kind,
                          s.sig);
  return ok_status();
}

// Every thread of the process is through rt_sigreturn: unmap the restore
// hole with a system call run in one of them (all signals blocked
// meanwhile, so nothing is delivered on our registers), then put its
// dumped registers and mask back.
Status unmap_hole(pid_t tid, uint64_t hole_start, uint64_t hole_end) {
  SeizedTask t = SeizedTask::adopt_stopped(tid, tid, false);
  user_regs_struct dumped = TRY(t.get_regs());
  uint64_t mask = TRY(t.get_sigmask());
  TRY_STATUS(t.set_sigmask(~0ull));
  uint64_t site = TRY(find_syscall_insn(t));
  user_regs_struct r = dumped;
  r.rip = site;
  r.rax = SYS_munmap;
  r.orig_rax = ~0ull;
  r.rdi = hole_start;
  r.rsi = hole_end - hole_start;
  TRY_STATUS(t.set_regs(r));
  TRY_STATUS(t.resume(PTRACE_SYSCALL, 0));
  Stop s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallEntry || s.syscall_nr != SYS_munmap)
    return make_pid_error(tid, 0, "unmapping the restorer: unexpected stop kind %d", (int)s.kind);
  TRY_STATUS(t.resume(PTRACE_SYSCALL, 0));
  s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallExit) return make_pid_error(tid, 0, "unmapping the restorer did not complete");
  if (s.syscall_ret != 0) return make_pid_error(tid, (int)-s.syscall_ret, "cannot unmap the restorer");
  TRY_STATUS(t.set_regs(dumped));
  TRY_STATUS(t.set_sigmask(mask));
  return ok_status();
}

struct Restored {
  pid_t pid;
  double restore_us;
  size_t processes = 0, threads = 0;
  pid_t foreground = 0;  // --shell-job: the group given the terminal
};

// The restore of one tree, as cr-restore sees it: every task and thread is
// traced from birth (the root by PTRACE_SEIZE, the rest through the fork
// and clone events), so that cr-restore sees every failure, holds every
// thread at the restorer's int3 until all are there (no task runs before
// the whole tree is ready), and can kill everything it made.
class TreeRestore {
 public:
  TreeRestore(const SetImages& imgs, const std::vector<pid_t>& helpers) : imgs_(imgs) {
    for (pid_t h : helpers) {
      expected_.insert(h);
      helpers_.insert(h);
    }
    for (auto& t : imgs.tasks) {
      expected_.insert(static_cast<pid_t>(t.entry.pid));
      for (auto tid : t.entry.threads) expected_.insert(static_cast<pid_t>(tid));
      if (t.entry.zombie) zombies_[static_cast<pid_t>(t.entry.pid)] = t.entry.exit_status;
      else live_threads_ += t.entry.threads.size();
    }
  }

  void created(pid_t pid) { made_.insert(pid); }

  // Run every task up to its int3. An Error when any task fails.
  Status run_to_int3() {
    while (int3_.size() < live_threads_ || zombies_done_ < zombies_.size() || helpers_done_.size() < helpers_.size()) {
      int st;
      pid_t w = waitpid(-1, &st, __WALL);
      if (w < 0) {
        if (errno == EINTR) continue;
        return make_errno(errno, "waiting for the tasks being restored");
      }
      made_.insert(w);
      if (WIFEXITED(st) || WIFSIGNALED(st)) {
        if (helpers_.count(w) && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
          helpers_done_.insert(w);  // a session helper, done (it may be reported twice)
          continue;
        }
        auto z = zombies_.find(w);
        if (z != zombies_.end() && same_end(st, z->second)) {
          zombies_done_++;
          continue;
        }
        return make_pid_error(w, 0, "the new task %s during restore", describe_wait_status(st).c_str());
      }
      if (!WIFSTOPPED(st)) continue;
      int sig = WSTOPSIG(st), event = st >> 16;
      if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE) {
        unsigned long child = 0;
        if (ptrace(PTRACE_GETEVENTMSG, w, 0, &child) == 0) made_.insert(static_cast<pid_t>(child));
        if (!expected_.count(static_cast<pid_t>(child)))
          return make_pid_error(w, 0, "made task %lu, which is not in the images", child);
        TRY_STATUS(cont(w, 0));
        continue;
      }
      if (event || sig == (SIGTRAP | 0x80)) {  // a new tracee's first stop, ...
        if (!expected_.count(w)) return make_pid_error(w, 0, "an unexpected task appeared during restore");
        TRY_STATUS(cont(w, 0));
        continue;
      }
      if (sig == SIGTRAP && !zombies_.count(w)) {
        // The restorer's int3 (SI_KERNEL): this thread is ready; it waits
        // here, stopped, until the whole tree is.
        siginfo_t si;
        if (ptrace(PTRACE_GETSIGINFO, w, 0, &si) == 0 && si.si_code == SI_KERNEL) {
          user_regs_struct regs;
          if (ptrace(PTRACE_GETREGS, w, 0, &regs) < 0) return make_pid_error(w, errno, "PTRACE_GETREGS");
          if (regs.rsi <= regs.rdi || regs.rsi > kTaskSizeMax)
            return make_pid_error(w, 0, "the restorer stopped with a bad hole %#llx-%#llx",
                                  (unsigned long long)regs.rdi, (unsigned long long)regs.rsi);
          hole_[w] = {regs.rdi, regs.rsi};
          int3_.insert(w);
          continue;
        }
      }
      if (zombies_.count(w)) {  // the signal a zombie-to-be dies of
        TRY_STATUS(cont(w, sig));
        continue;
      }
      siginfo_t si{};
      ptrace(PTRACE_GETSIGINFO, w, 0, &si);
      user_regs_struct regs{};
      ptrace(PTRACE_GETREGS, w, 0, &regs);
      return make_pid_error(w, 0, "the task got signal %d (%s) at %#llx during restore, address %p", sig,
                            strsignal(sig), (unsigned long long)regs.rip, si.si_addr);
    }
    return ok_status();
  }

  // Every thread through rt_sigreturn, every hole unmapped, then let the
  // whole tree go at once.
  Status finish() {
    for (auto& t : imgs_.tasks)
      for (auto tid : t.entry.threads) TRY_STATUS(step_through_sigreturn(static_cast<pid_t>(tid)));
    for (auto& t : imgs_.tasks) {
      if (t.entry.zombie) continue;
      pid_t pid = static_cast<pid_t>(t.entry.pid);
      auto h = hole_.at(pid);
      TRY_STATUS(unmap_hole(pid, h.first, h.second));
    }
    for (auto& t : imgs_.tasks)
      for (auto tid : t.entry.threads)
        if (ptrace(PTRACE_DETACH, static_cast<pid_t>(tid), 0, 0) < 0)
          return make_pid_error(static_cast<pid_t>(tid), errno, "cannot detach");
    return ok_status();
  }

  // Kill every task made so far and reap all of them (cr-restore is the
  // tracer of all and a child subreaper meanwhile): nothing is left.
  size_t kill_all() {
    size_t n = made_.size();
    for (pid_t p : made_) kill(p, SIGKILL);
    while (true) {
      int st;
      pid_t w = waitpid(-1, &st, __WALL);
      if (w < 0) {
        if (errno == EINTR) continue;
        break;  // ECHILD: nothing left
      }
      if (!made_.count(w)) {
        made_.insert(w);
        kill(w, SIGKILL);
      }
      if (WIFSTOPPED(st)) ptrace(PTRACE_CONT, w, 0, 0);
    }
    return std::max(n, made_.size());
  }

 private:
  static bool same_end(int st, int want) {
    if (WIFEXITED(want)) return WIFEXITED(st) && WEXITSTATUS(st) == WEXITSTATUS(want);
    return WIFSIGNALED(st) && WTERMSIG(st) == WTERMSIG(want);
  }
  Status cont(pid_t w, int sig) {
    if (ptrace(PTRACE_CONT, w, 0, sig) < 0 && errno != ESRCH) return make_pid_error(w, errno, "PTRACE_CONT");
    return ok_status();
  }

  const SetImages& imgs_;
  std::set<pid_t> expected_, made_, int3_, helpers_, helpers_done_;
  std::map<pid_t, int> zombies_;
  std::map<pid_t, std::pair<uint64_t, uint64_t>> hole_;
  size_t live_threads_ = 0, zombies_done_ = 0;
};

Result<Restored> restore_tree(const ImageSet& set, const SetImages& imgs, const RestoreOptions& ro) {
  double t0 = now_us();
  pid_t pid = static_cast<pid_t>(imgs.pstree.root_pid);
  // CRTOOLS_TEST_SKIP_PID_CHECK (cr-restore(8), for tests): skip this
  // check, so that a pid taken by another process is found only when its
  // task is forked, halfway through the tree.
  const char* skip = getenv("CRTOOLS_TEST_SKIP_PID_CHECK");
  TreePlan plan = TRY(plan_tree(imgs));
  plan.shell_job = ro.shell_job;
  if (!skip || strcmp(skip, "1") != 0) TRY_STATUS(check_pids_free(imgs));
  for (pid_t h : all_helpers(imgs, plan)) TRY_STATUS(check_pid_free_now(h));
  // Before any task: the restorers attach them. Undone on any failure.
  SysvShmRestore sysv;
  TRY_STATUS(sysv.prepare(set, imgs.files));
  // Deleted files, unlinked already: inherited by the first task.
  struct GhostFds {
    const TreePlan& plan;
    ~GhostFds() { close_deleted_files(plan); }
  } ghost_fds{plan};
  TRY_STATUS(create_deleted_files(imgs.files, plan));
  // A shell job's terminal: ours, inherited by the first task.
  struct JobTty {
    const TreePlan& plan;
    ~JobTty() {
      if (plan.transit_ext_tty >= 0) close(plan.transit_ext_tty);
    }
  } job_tty{plan};
  TRY_STATUS(open_shell_job_tty(imgs.files, plan, ro));

  int errp[2], syncp[2];
  if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(syncp, O_CLOEXEC) < 0) return make_errno(errno, "pipe");
  UniqueFd err_r(errp[0]), err_w(errp[1]), sync_r(syncp[0]), sync_w(syncp[1]);
  // Orphans of a failed restore come to us, to be reaped.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  fflush(nullptr);
  // The first task is the root, or the helper that remakes its gone
  // session (and group), which then forks the root.
  const std::vector<pid_t> helpers = session_helpers(imgs);
  const pid_t first = helpers.empty() ? pid : helpers[0];
  // The line that marks the first task (cr-restore(8)): every check of
  // the images is behind us; a refusal of theirs never follows it
  // (test/integration/fuzzed_restore_test.cc proves it at -v 2).
  pr_debug(pid, "creating the tree: %zu tasks", imgs.tasks.size() + all_helpers(imgs, plan).size());
  auto forked = fork_with_pid(first, 0);
  if (!forked) {
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    return std::move(forked).error();
  }
  pid_t child = *forked;
  if (child == 0) {
    err_r.reset();
    sync_w.reset();
    char c;
    // Wait until cr-restore traces us: every task and thread made from
    // here on is traced from birth.
    if (read(sync_r.get(), &c, 1) != 1) _exit(1);
    sync_r.reset();
    if (!helpers.empty()) run_session_helpers(set, imgs, plan, ro, err_w.release());
    restore_task_and_jump(set, imgs, plan, 0, ro, err_w.release());
  }
  err_w.reset();
  sync_r.reset();
  TreeRestore tr(imgs, all_helpers(imgs, plan));
  tr.created(child);
  auto failed = [&](Error e) -> Error {
    size_t n = tr.kill_all();
    pr_debug(pid, "restore failed: killed and reaped the %zu tasks made so far", n);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    fault_blob_note();
    std::string why = read_error(err_r.get());
    if (!why.empty()) return make_error("%s", why.c_str());
    return e;
  };
  // Every task and thread inherits these options. SUSPEND_SECCOMP: the
  // restorer installs the dumped seccomp filters before its last steps,
  // which they must not judge; they apply once we detach.
  long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
              PTRACE_O_TRACECLONE | PTRACE_O_SUSPEND_SECCOMP;
  if (ptrace(PTRACE_SEIZE, child, 0, opts) < 0) return failed(make_pid_error(child, errno, "cannot trace the new task"));
  if (write(sync_w.get(), "g", 1) != 1) return failed(make_errno(errno, "sync pipe"));
  sync_w.reset();
  if (auto st = tr.run_to_int3(); !st) return failed(st.error());
  // Every group exists now: a shell job's takes the terminal before it runs.
  ShellJobTerminal job_terminal;
  auto fg = job_terminal.take(imgs, plan);
  if (!fg) return failed(fg.error());
  if (auto st = tr.finish(); !st) return failed(st.error());
  job_terminal.keep();
  if (auto st = sysv.finish(); !st) pr_warn(pid, "%s", st.error().str().c_str());
  // A helper may still be a zombie of ours (reported to us as its tracer
  // before it was re-parented to us).
  for (pid_t h : helpers) waitpid(h, nullptr, WNOHANG);
  // With helpers the root was re-parented to us (a child subreaper): we
  // stay one in the attached mode, so that it remains our child.
  if (helpers.empty() || ro.detached) prctl(PR_SET_CHILD_SUBREAPER, 0);
  Restored r{pid, now_us() - t0};
  r.foreground = *fg;
  for (auto& t : imgs.tasks) {
    r.processes++;
    r.threads += t.entry.threads.size();
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = command_start_or_exit(kRestore, argc, argv);
  if (o.images_dir.empty()) {
    fprintf(stderr, "cr-restore: -D DIR is required; see 'cr-restore --help'\n");
    return 2;
  }
  RestoreOptions ro;
  ro.skip_file_check = o.skip_file_check;
  ro.detached = o.restore_detached;
  ro.shell_job = o.shell_job;
  if (auto st = features_init(); !st) {
    log_error(st.error());
    return 1;
  }
  double t0 = now_us();
  auto set = ImageSet::open_read(o.images_dir);
  if (!set) {
    log_error(set.error());
    return 1;
  }
  auto imgs = load_set_images(**set, true);
  if (!imgs) {
    log_error(imgs.error());
    return 1;
  }
  // Who may restore these tasks, before what the kernel must offer (an
  // unprivileged caller lacks both; the credentials are the reason).
  if (auto st = check_creds_allowed(*imgs); !st) {
    log_error(st.error());
    return 1;
  }
  // The kernel features a restore uses (common/kernel/features.h).
  for (auto st : {require_feature(Feature::Clone3SetTid), require_feature(Feature::PrctlMmMap),
                  require_feature(Feature::PtraceSeize), require_feature(Feature::Vdso)})
    if (!st) {
      log_error(st.error());
      return 1;
    }
  // The network lock cr-dump set for established TCP connections
  // (common/net_lock.h) is lifted once the tree is back, and on every
  // failure from here: a restore that fails leaves no rule behind.
  struct NetUnlock {
    pid_t root;
    bool needed;
    ~NetUnlock() {
      if (!needed) return;
      if (auto st = net_unlock(root); !st) log_error(st.error());
    }
  } net_unlock_guard{static_cast<pid_t>(imgs->pstree.root_pid), has_established_tcp(imgs->files)};
  // What the tasks will meet on this machine, checked before any exists:
  // the files they open and map, their memory layout, what the restorer
  // sets (cr-restore/files.cc, memory.cc, core.cc).
  for (auto st : {check_files_here(*imgs, ro), check_memory_here(*imgs), check_core_here(*imgs),
                  check_unix_sockets_here(imgs->files)})
    if (!st) {
      log_error(st.error());
      return 1;
    }
  double validated = now_us();
  if (net_unlock_guard.needed) {
    // The lock is set again (it is there already after a dump that killed
    // the tree, not after dump -s or --leave-running): while the
    // connections are made one by one, a packet of one (the window probe of
    // leaving repair mode, a retransmission) must not reach its peer in
    // the tree before that exists, or the kernel answers with a RST.
    std::vector<TcpTuple> tuples;
    for (auto& s : imgs->files.inet_sockets)
      if (s.state == "established") tuples.push_back({s.family, s.local_addr, s.peer_addr, s.local_port, s.peer_port});
    if (auto st = net_lock(net_unlock_guard.root, tuples); !st) {
      Error e = make_error("cannot lock the network of the established TCP connections: %s", st.error().message.c_str());
      e.remedy = "install nftables (the nft command); see 'crtools check' (nft-net-lock)";
      log_error(e);
      return 1;
    }
    if (auto st = destroy_orphan_connections(imgs->files); !st) {
      log_error(st.error());
      return 1;
    }
  }
  for (auto& t : imgs->tasks)
    if (!t.core.posix_timers.empty())
      if (auto st = require_feature(Feature::PosixTimerIds); !st) {
        log_error(st.error());
        return 1;
      }
  if (o.tree && o.tree != imgs->pstree.root_pid) {
    log_error(make_error("the image set holds the tree of pid %lld, not %d", (long long)imgs->pstree.root_pid, o.tree));
    return 1;
  }
  auto r = restore_tree(**set, *imgs, ro);
  if (!r) {
    log_error(r.error());
    return 1;
  }
  if (net_unlock_guard.needed) {
    net_unlock_guard.needed = false;
    if (auto st = net_unlock(r->pid); !st) {
      log_error(st.error());
      return 1;
    }
  }
  pr_info(r->pid, "restored %zu processes, %zu threads (%.1f ms, images read and checked in %.1f ms)", r->processes,
          r->threads, r->restore_us / 1000, (validated - t0) / 1000);
  // A full-screen program redraws on SIGWINCH (most do; the default
  // action ignores it): the terminal it is back on shows something else.
  if (r->foreground > 0) kill(-r->foreground, SIGWINCH);
  if (!(*set)->is_stream()) {
    // This run's figures beside the images (cr-show prints them); a
    // read-only image directory only costs the figures.
    Stats stats{"restore",
                {{"validate_us", validated - t0}, {"restore_us", r->restore_us}, {"total_us", now_us() - t0}}};
    auto out = ImageSet::open_append(o.images_dir);
    Status st = out ? write_record(**out, "stats-restore.img", stats) : Status(out.error());
    if (st) st = (*out)->finish();
    if (!st) pr_warn(r->pid, "could not record stats-restore.img: %s", st.error().str().c_str());
  }
  if (o.restore_detached) return 0;
  int status;
  while (waitpid(r->pid, &status, 0) < 0) {
    if (errno != EINTR) {
      log_error(make_pid_error(r->pid, errno, "waitpid"));
      return 1;
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
