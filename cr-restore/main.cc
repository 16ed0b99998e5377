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
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstring>

#include "common/fd.h"
#include "common/image/records.h"
#include "common/kernel/features.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/proc/maps.h"
#include "common/proc/stat.h"
#include "common/proc/status.h"
#include "common/ptrace/seized_task.h"
#include "cr-restore/restore.h"

using namespace cr;

namespace {

const CommandSpec kRestore = {"restore",
                              "-D DIR|- [-t PID] [-d] [--skip-file-check] [-o FILE] [-v N]",
                              {Opt::ImagesDir, Opt::Tree, Opt::RestoreDetached, Opt::SkipFileCheck, Opt::LogFile,
                               Opt::Verbosity, Opt::Version},
                              false,
                              0,
                              0};

// Who holds a pid, for the message: "'bash' (pid 812)" or a zombie.
Status check_pid_free_now(pid_t pid) {
  auto st = proc::read_stat(pid);
  if (!st) return ok_status();  // no such process: free
  pid_t tgid = pid;
  if (auto status = proc::read_status(pid)) tgid = status->tgid;
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
// Give the parent up to five seconds, then report whoever holds the pid.
Status check_pid_free(pid_t pid) {
  for (int i = 0; i < 500; i++) {
    auto st = check_pid_free_now(pid);
    if (st || st.error().message.find("held by a zombie") == std::string::npos) return st;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return check_pid_free_now(pid);
}

pid_t clone_with_pid(pid_t pid) {
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.exit_signal = SIGCHLD;
  pid_t tids[1] = {pid};
  ca.set_tid = reinterpret_cast<uint64_t>(tids);
  ca.set_tid_size = 1;
  return static_cast<pid_t>(syscall(SYS_clone3, &ca, sizeof ca));
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int st;
  while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
  }
}

// Read what the task wrote on the error pipe (one line).
std::string read_error(int fd) {
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) msg.append(buf, n);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
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

// The task stopped at the restorer's int3, just before rt_sigreturn. Step it
// through rt_sigreturn, unmap the restore hole with a system call run in the
// task (all signals blocked meanwhile, so nothing is delivered on our
// registers), put the dumped registers back and let it go.
Status finish_task(pid_t pid, uint64_t hole_start, uint64_t hole_end) {
  SeizedTask t = SeizedTask::adopt_stopped(pid, pid, false);
  TRY_STATUS(t.resume(PTRACE_SYSCALL, 0));  // drop the SIGTRAP of int3
  Stop s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallEntry || s.syscall_nr != SYS_rt_sigreturn)
    return make_pid_error(pid, 0, "restorer: expected rt_sigreturn, got stop kind %d (syscall %ld, signal %d)",
                          (int)s.kind, s.syscall_nr, s.sig);
  TRY_STATUS(t.resume(PTRACE_SYSCALL, 0));
  s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallExit)
    return make_pid_error(pid, 0, "restorer: rt_sigreturn did not complete (stop kind %d, signal %d)", (int)s.kind,
                          s.sig);
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
  s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallEntry || s.syscall_nr != SYS_munmap)
    return make_pid_error(pid, 0, "unmapping the restorer: unexpected stop kind %d", (int)s.kind);
  TRY_STATUS(t.resume(PTRACE_SYSCALL, 0));
  s = TRY(t.wait_stop());
  if (s.kind != StopKind::SyscallExit) return make_pid_error(pid, 0, "unmapping the restorer did not complete");
  if (s.syscall_ret != 0) return make_pid_error(pid, (int)-s.syscall_ret, "cannot unmap the restorer");
  TRY_STATUS(t.set_regs(dumped));
  TRY_STATUS(t.set_sigmask(mask));
  if (ptrace(PTRACE_DETACH, pid, 0, 0) < 0) return make_pid_error(pid, errno, "cannot detach");
  return ok_status();
}

struct Restored {
  pid_t pid;
  double restore_us;
  uint64_t pages_bytes;
};

Result<Restored> restore_tree(const ImageSet& set, const SetImages& imgs, const RestoreOptions& ro) {
  double t0 = now_us();
  const TaskImages& t = imgs.tasks[0];
  pid_t pid = static_cast<pid_t>(t.core.pid);
  TRY_STATUS(check_pid_free(pid));

  int errp[2], syncp[2];
  if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(syncp, O_CLOEXEC) < 0) return make_errno(errno, "pipe");
  UniqueFd err_r(errp[0]), err_w(errp[1]), sync_r(syncp[0]), sync_w(syncp[1]);
  fflush(nullptr);
  pid_t child = clone_with_pid(pid);
  if (child < 0) {
    if (errno == EEXIST) {
      auto held = check_pid_free(pid);
      if (!held) return std::move(held).error();
      return make_error("pid %d was taken meanwhile", pid);
    }
    return make_errno(errno, "clone3 with pid %d", pid);
  }
  if (child == 0) {
    err_r.reset();
    sync_w.reset();
    char c;
    // Wait until cr-restore traces us: the restorer ends in int3.
    if (read(sync_r.get(), &c, 1) != 1) _exit(1);
    sync_r.reset();
    restore_task_and_jump(set, imgs, t, ro, err_w.release());
  }
  err_w.reset();
  sync_r.reset();
  if (ptrace(PTRACE_SEIZE, child, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD) < 0) {
    int e = errno;
    kill_and_reap(child);
    return make_pid_error(child, e, "cannot trace the new task");
  }
  if (write(sync_w.get(), "g", 1) != 1) {
    kill_and_reap(child);
    return make_errno(errno, "sync pipe");
  }
  sync_w.reset();
  SeizedTask watch = SeizedTask::adopt_stopped(child, child, false);
  while (true) {
    auto s = watch.wait_stop();
    if (!s) {
      kill_and_reap(child);
      return std::move(s).error();
    }
    if (s->kind == StopKind::Exited) {
      std::string why = read_error(err_r.get());
      if (why.empty()) why = "the new task " + describe_wait_status(s->wait_status) + " during restore";
      return make_pid_error(pid, 0, "%s", why.c_str());
    }
    if (s->kind == StopKind::Signal && s->sig == SIGTRAP) break;  // the restorer's int3: done
    if (s->kind == StopKind::Signal) {
      auto si = watch.get_siginfo();
      user_regs_struct regs{};
      if (auto r = watch.get_regs()) regs = *r;
      kill_and_reap(child);
      return make_pid_error(pid, 0, "the task got signal %d (%s) at %#llx during restore, address %p", s->sig,
                            strsignal(s->sig), (unsigned long long)regs.rip, si ? si->si_addr : nullptr);
    }
    // Other stops (group stop, events): carry on.
    if (!watch.resume(PTRACE_CONT, 0)) {
      kill_and_reap(child);
      return make_pid_error(pid, 0, "lost the new task");
    }
  }
  // At its int3 the restorer holds the restore hole in rdi and rsi.
  auto regs = watch.get_regs();
  if (!regs) {
    kill_and_reap(child);
    return std::move(regs).error();
  }
  if (regs->rsi <= regs->rdi || regs->rsi > kTaskSizeMax) {
    kill_and_reap(child);
    return make_pid_error(pid, 0, "the restorer stopped with a bad hole %#llx-%#llx", (unsigned long long)regs->rdi,
                          (unsigned long long)regs->rsi);
  }
  auto st = finish_task(child, regs->rdi, regs->rsi);
  if (!st) {
    kill_and_reap(child);
    return std::move(st).error();
  }
  return Restored{child, now_us() - t0, 0};
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
  // The kernel features a restore uses (common/kernel/features.h).
  for (auto st : {features_init(), require_feature(Feature::Clone3SetTid), require_feature(Feature::PrctlMmMap),
                  require_feature(Feature::PtraceSeize), require_feature(Feature::Vdso)})
    if (!st) {
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
  double validated = now_us();
  if (o.tree && o.tree != imgs->pstree.root_pid) {
    log_error(make_error("the image set holds the tree of pid %lld, not %d", (long long)imgs->pstree.root_pid, o.tree));
    return 1;
  }
  if (imgs->tasks.size() != 1) {
    log_error(make_error("the image set holds %zu processes; restoring process trees is not supported yet",
                         imgs->tasks.size()));
    return 1;
  }
  auto r = restore_tree(**set, *imgs, ro);
  if (!r) {
    log_error(r.error());
    return 1;
  }
  pr_info(r->pid, "restored (%.1f ms, images read and checked in %.1f ms)", r->restore_us / 1000,
          (validated - t0) / 1000);
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
