// cr-dump: freeze a process tree, collect its state, write an image set.
//
// Invariant (DESIGN.md 3): a failed dump leaves the tree exactly as it was,
// running. Everything that touches the task is RAII: the remote session puts
// registers, signal mask and memory back and unmaps the parasite; the seized
// task detaches. Only after the complete image set is written (inventory
// last) is the tree killed (default), left stopped (-s) or let go
// (--leave-running).
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/image/records.h"
#include "common/kernel/features.h"
#include "common/clock.h"
#include "common/log.h"
#include "cr-dump/dump.h"

using namespace cr;

namespace {

const CommandSpec kDump = {"dump",
                           "-t PID -D DIR|- [-s|--leave-running] [-z] [--overwrite] [-o FILE] [-v N]",
                           {Opt::Tree, Opt::ImagesDir, Opt::LeaveStopped, Opt::LeaveRunning, Opt::Compress,
                            Opt::Overwrite, Opt::LogFile, Opt::Verbosity, Opt::Version},
                           false,
                           0,
                           0};

// The kernel features a dump uses (common/kernel/features.h).
Status require_dump_features() {
  for (Feature f : {Feature::PtraceSeize, Feature::PtraceGetsigmask, Feature::PtracePeeksiginfo,
                    Feature::PtraceRegsets, Feature::PtraceRseqConfig, Feature::MapFiles, Feature::ProcPagemap,
                    Feature::ProcessVmReadv, Feature::Kcmp})
    TRY_STATUS(require_feature(f));
  return ok_status();
}

struct Dumped {
  Pstree pstree;
  Files files;
  FdTable fds;
  Core core;
  Mm mm;
};

Result<Dumped> collect(pid_t pid, SeizedTask& task, ImageSet& set, const Options& o, DumpStats& stats) {
  TRY_STATUS(check_frozen_tree(pid));
  Dumped d;
  auto rs = TRY(RemoteSession::start(task));
  d.pstree = TRY(dump_pstree(pid));
  d.fds = TRY(dump_files(pid, d.files));
  // Memory before the parasite: its scratch mapping must not be dumped.
  d.mm = TRY(dump_memory(pid, rs, set, o.compress, stats));
  d.core = TRY(dump_core(pid, rs));
  TRY_STATUS(rs.restore());
  return d;
}

Status write_images(ImageSet& set, pid_t pid, const Dumped& d, const DumpStats& stats) {
  TRY_STATUS(write_record(set, image_name(ImageKind::Pstree), d.pstree));
  TRY_STATUS(write_record(set, image_name(ImageKind::Core, pid), d.core));
  TRY_STATUS(write_record(set, image_name(ImageKind::Mm, pid), d.mm));
  TRY_STATUS(write_record(set, image_name(ImageKind::Fdinfo, pid), d.fds));
  TRY_STATUS(write_record(set, image_name(ImageKind::Files), d.files));
  Stats s{"dump",
          {{"freeze_us", stats.freeze_us},
           {"memory_dump_us", stats.memory_us},
           {"pages_scanned", double(stats.pages_scanned)},
           {"pages_written", double(stats.pages_written)},
           {"page_bytes_stored", double(stats.bytes_written)}}};
  TRY_STATUS(write_record(set, "stats-dump.img", s));
  Inventory inv = make_inventory(pid);
  inv.images = {image_name(ImageKind::Pstree),       image_name(ImageKind::Core, pid),
                image_name(ImageKind::Mm, pid),      image_name(ImageKind::Fdinfo, pid),
                image_name(ImageKind::Files),        image_name(ImageKind::Pagemap, pid),
                image_name(ImageKind::Pages, pid),   "stats-dump.img"};
  return write_record(set, image_name(ImageKind::Inventory), inv);
}

// Kill the task we hold and see it die.
void kill_dumped(pid_t pid, SeizedTask& task) {
  kill(pid, SIGKILL);
  while (true) {
    auto s = task.wait_stop();
    if (!s || s->kind == StopKind::Exited) break;
    (void)task.resume(PTRACE_CONT, 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = command_start_or_exit(kDump, argc, argv);
  if (!o.tree || o.images_dir.empty()) {
    fprintf(stderr, "cr-dump: -t PID and -D DIR are required; see 'cr-dump --help'\n");
    return 2;
  }
  if (o.leave_stopped && o.leave_running) {
    fprintf(stderr, "cr-dump: -s and --leave-running exclude each other; see 'cr-dump --help'\n");
    return 2;
  }
  // A stream reader that goes away must fail the write (EPIPE), so that
  // the dump unwinds and the tree runs on, not kill cr-dump halfway.
  signal(SIGPIPE, SIG_IGN);
  pid_t pid = o.tree;
  auto fail = [](const Error& e) {
    log_error(e);
    return 1;
  };
  if (auto st = features_init(); !st) return fail(st.error());
  if (auto st = require_dump_features(); !st) return fail(st.error());
  // Everything that can be refused without touching the task, first.
  if (auto st = check_tree_supported(pid); !st) return fail(st.error());
  if (auto st = check_memory_supported(pid); !st) return fail(st.error());
  auto set = ImageSet::open_write(o.images_dir, o.overwrite);
  if (!set) return fail(set.error());

  DumpStats stats;
  double t0 = now_us();
  auto task = SeizedTask::seize(pid);
  if (!task) return fail(task.error());
  pr_debug(pid, "frozen");
  auto d = collect(pid, *task, **set, o, stats);
  if (!d) return fail(d.error());  // ~SeizedTask detaches: the task runs on
  stats.freeze_us = now_us() - t0;
  if (auto st = write_images(**set, pid, *d, stats); !st) return fail(st.error());
  bool kill_mode = !o.leave_running && !o.leave_stopped;
  if (kill_mode && (*set)->is_stream()) {
    // A stream's reader may restore as soon as it sees the end of the
    // archive (dump | restore): the task must be dead before that.
    kill_dumped(pid, *task);
  }
  if (auto st = (*set)->finish(); !st) return fail(st.error());

  if (o.leave_running) {
    if (auto st = task->detach(); !st) return fail(st.error());
    pr_info(pid, "dumped; left running (%.1f ms frozen)", stats.freeze_us / 1000);
  } else if (o.leave_stopped) {
    // Deliver a SIGSTOP while we still hold the task and detach from the
    // group stop it causes: it is stopped (state T) when cr-dump returns.
    kill(pid, SIGSTOP);
    if (auto st = task->resume(PTRACE_CONT, 0); !st) return fail(st.error());
    while (true) {
      auto s = task->wait_stop();
      if (!s) return fail(s.error());
      if (s->kind == StopKind::GroupStop) break;
      if (s->kind == StopKind::Exited) return fail(make_pid_error(pid, 0, "exited after the dump"));
      int sig = s->kind == StopKind::Signal ? s->sig : 0;
      if (auto st = task->resume(PTRACE_CONT, sig); !st) return fail(st.error());
    }
    if (auto st = task->detach(); !st) return fail(st.error());
    pr_info(pid, "dumped; left stopped (%.1f ms frozen)", stats.freeze_us / 1000);
  } else {
    if (!(*set)->is_stream()) kill_dumped(pid, *task);
    pr_info(pid, "dumped and killed (%.1f ms frozen)", stats.freeze_us / 1000);
  }
  return 0;
}
