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

#include <map>

#include "common/image/records.h"
#include "common/kernel/features.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "cr-dump/dump.h"

using namespace cr;

namespace {

const CommandSpec kDump = {"dump",
                           "-t PID -D DIR|- [-s|--leave-running] [-z] [--overwrite] [--ghost-limit SIZE] [--file-locks] [--ext-unix-sk INODE] [--tcp-established] [--shell-job] [-o FILE] [-v N]",
                           {Opt::Tree, Opt::ImagesDir, Opt::LeaveStopped, Opt::LeaveRunning, Opt::Compress,
                            Opt::Overwrite, Opt::GhostLimit, Opt::FileLocks, Opt::ExtUnixSk, Opt::TcpEstablished, Opt::ShellJob, Opt::LogFile, Opt::Verbosity,
                            Opt::Version},
                           false,
                           0,
                           0};

// The kernel features a dump uses (common/kernel/features.h).
Status require_dump_features() {
  for (Feature f : {Feature::PtraceSeize, Feature::PtraceGetsigmask, Feature::PtracePeeksiginfo,
                    Feature::PtraceRegsets, Feature::PtraceRseqConfig, Feature::MapFiles, Feature::ProcPagemap,
                    Feature::ProcPidMem, Feature::Kcmp})
    TRY_STATUS(require_feature(f));
  return ok_status();
}

// Collect every process of the frozen tree, writing its images as it goes
// (core, mm, fdinfo, pages); pstree, files and the inventory come last.
Status collect_and_write(FrozenTree& tree, ImageSet& set, const Options& o, DumpStats& stats) {
  Files files;
  FileSharing sharing;
  std::vector<std::string> images = {image_name(ImageKind::Pstree), image_name(ImageKind::Files)};
  std::map<pid_t, Mm> mms;  // of the processes dumped so far: parents come first
  for (auto& p : tree.procs) {
    if (p.zombie) continue;
    pid_t pid = p.pid;
    auto rs = TRY(RemoteSession::start(p.threads[0]));
    FdTable fds = TRY(dump_files(pid, files, sharing, o.ghost_limit, o.file_locks));
    // Memory before the parasite: its scratch mapping must not be dumped.
    auto pm = mms.find(p.ppid);
    CowParent parent{p.ppid, pm == mms.end() ? nullptr : &pm->second};
    Mm mm = TRY(dump_memory(pid, rs, set, o.compress, stats, files, parent.mm ? &parent : nullptr));
    Core core = TRY(dump_core(p, rs));
    TRY_STATUS(rs.restore());
    TRY_STATUS(write_record(set, image_name(ImageKind::Core, pid), core));
    TRY_STATUS(write_record(set, image_name(ImageKind::Mm, pid), mm));
    mms.emplace(pid, std::move(mm));
    TRY_STATUS(write_record(set, image_name(ImageKind::Fdinfo, pid), fds));
    for (ImageKind k : {ImageKind::Core, ImageKind::Mm, ImageKind::Fdinfo, ImageKind::Pagemap, ImageKind::Pages})
      images.push_back(image_name(k, pid));
  }
  TRY_STATUS(dump_shmem_contents(set, o.compress, files, stats, images));
  TRY_STATUS(dump_sysv_contents(set, o.compress, files, stats, images));
  TRY_STATUS(resolve_unix_sockets(files, o.ext_unix_sk));
  TRY_STATUS(resolve_ttys(tree, files, sharing, o.shell_job));
  TRY_STATUS(write_record(set, image_name(ImageKind::Pstree), TRY(make_pstree(tree))));
  TRY_STATUS(write_record(set, image_name(ImageKind::Files), files));
  stats.freeze_us = now_us() - stats.start_us;
  Stats s{"dump",
          {{"freeze_us", stats.freeze_us},
           {"memory_dump_us", stats.memory_us},
           {"processes", double(tree.procs.size())},
           {"threads", double(tree.nr_threads())},
           {"pages_scanned", double(stats.pages_scanned)},
           {"pages_written", double(stats.pages_written)},
           {"pages_in_parent", double(stats.pages_in_parent)},
           {"page_bytes_stored", double(stats.bytes_written)}}};
  TRY_STATUS(write_record(set, "stats-dump.img", s));
  images.push_back("stats-dump.img");
  Inventory inv = make_inventory(tree.procs[0].pid);
  inv.images = images;
  return write_record(set, image_name(ImageKind::Inventory), inv);
}

// Kill every process of the tree and see every thread die.
void kill_tree(FrozenTree& tree) {
  for (auto& p : tree.procs)
    if (!p.zombie) kill(p.pid, SIGKILL);
  for (auto& p : tree.procs) {
    // Other threads first: a leader's exit is reported only after theirs.
    for (size_t i = p.threads.size(); i-- > 0;) {
      SeizedTask& t = p.threads[i];
      while (!t.exited()) {
        auto s = t.wait_stop();
        if (!s || s->kind == StopKind::Exited) break;
        (void)t.resume(PTRACE_CONT, 0);
      }
    }
  }
}

// Leave every process stopped (state T): deliver a SIGSTOP while we still
// hold the threads, let each enter the group stop, detach from it.
Status stop_and_detach(FrozenTree& tree) {
  for (auto& p : tree.procs)
    if (!p.zombie) kill(p.pid, SIGSTOP);
  for (auto& p : tree.procs)
    for (auto& t : p.threads) {
      TRY_STATUS(t.resume(PTRACE_CONT, 0));
      while (true) {
        auto s = TRY(t.wait_stop());
        if (s.kind == StopKind::GroupStop) break;
        if (s.kind == StopKind::Exited) return make_pid_error(p.pid, 0, "thread %d exited after the dump", t.tid());
        int sig = s.kind == StopKind::Signal ? s.sig : 0;
        TRY_STATUS(t.resume(PTRACE_CONT, sig));
      }
    }
  for (auto& p : tree.procs)
    for (auto& t : p.threads) TRY_STATUS(t.detach());
  return ok_status();
}

}  // namespace

int main(int argc, char** argv) {
  Options o = command_start_or_exit(kDump, argc, argv);
  if (!o.tree || o.images_dir.empty()) {
    fprintf(stderr, "cr-dump: -t PID and -D DIR are required; see 'cr-dump --help'\n");
    return 2;
  }
  if (o.ghost_limit > kMaxGhostSize) {
    fprintf(stderr, "cr-dump: --ghost-limit is at most 64M; see 'cr-dump --help'\n");
    return 2;
  }
  if (o.leave_stopped && o.leave_running) {
    fprintf(stderr, "cr-dump: -s and --leave-running exclude each other; see 'cr-dump --help'\n");
    return 2;
  }
  // A stream reader that goes away must fail the write (EPIPE), so that
  // the dump unwinds and the tree runs on, not kill cr-dump halfway.
  signal(SIGPIPE, SIG_IGN);
  // Ctrl-C, kill, a closed terminal: unwind at the next step, the tree
  // left as it was (common/fault.h).
  catch_interrupts();
  pid_t pid = o.tree;
  auto fail = [](const Error& e) {
    log_error(e);
    return 1;
  };
  // A caller who could not trace the tree learns that first, not what it
  // then lacks besides (the kernel features it cannot probe, the dump
  // lock's root-owned directory).
  if (auto st = check_may_trace(pid); !st) return fail(st.error());
  if (auto st = features_init(); !st) return fail(st.error());
  if (auto st = require_dump_features(); !st) return fail(st.error());
  auto lock = take_dump_lock(pid);  // held to the end: one dump of a tree at a time
  if (!lock) return fail(lock.error());
  // Everything that can be refused without touching the task, first.
  if (auto st = check_tree_supported(pid); !st) return fail(st.error());
  if (auto st = check_memory_supported(pid); !st) return fail(st.error());
  auto set = ImageSet::open_write(o.images_dir, o.overwrite);
  if (!set) return fail(set.error());

  DumpStats stats;
  stats.start_us = now_us();
  auto tree = freeze_tree(pid);
  if (!tree) return fail(tree.error());  // ~FrozenTree detaches: the tree runs on
  // Established TCP connections are locked as they are found; on any
  // failure ~NetLock (before ~FrozenTree) takes them out of repair mode
  // and deletes the firewall table before the tree runs on.
  NetLock net_lock(pid, o.tcp_established);
  if (auto st = check_frozen_tree(*tree); !st) return fail(st.error());
  for (auto& p : tree->procs)
    if (!p.zombie)
      if (auto st = check_memory_supported(p.pid); !st) return fail(st.error());
  if (auto st = collect_and_write(*tree, **set, o, stats); !st) {
    // A task that died under us explains the failure better than the
    // request that met its absence.
    if (auto gone = check_tree_intact(*tree); !gone) return fail(gone.error());
    return fail(st.error());
  }
  if (auto st = check_tree_intact(*tree); !st) return fail(st.error());
  bool kill_mode = !o.leave_running && !o.leave_stopped;
  if (kill_mode && (*set)->is_stream()) {
    // A stream's reader may restore as soon as it sees the end of the
    // archive (dump | restore): the tree must be dead before that, and
    // our copies of its connections closed (a restored connection could
    // not take the 4-tuple of one still open).
    net_lock.killing();
    kill_tree(*tree);
    net_lock.release_killed();
  }
  if (auto st = (*set)->finish(); !st) return fail(st.error());

  size_t n = tree->procs.size();
  if (!kill_mode)
    if (auto st = net_lock.undo(); !st) return fail(st.error());
  if (o.leave_running) {
    for (auto& p : tree->procs)
      for (auto& t : p.threads)
        if (auto st = t.detach(); !st) return fail(st.error());
    pr_info(pid, "dumped %zu processes; left running (%.1f ms frozen)", n, stats.freeze_us / 1000);
  } else if (o.leave_stopped) {
    if (auto st = stop_and_detach(*tree); !st) return fail(st.error());
    pr_info(pid, "dumped %zu processes; left stopped (%.1f ms frozen)", n, stats.freeze_us / 1000);
  } else {
    if (!(*set)->is_stream()) {
      net_lock.killing();
      kill_tree(*tree);
      net_lock.release_killed();
    }
    pr_info(pid, "dumped %zu processes and killed them (%.1f ms frozen)", n, stats.freeze_us / 1000);
    if (net_lock.connections())
      pr_info(pid, "%zu TCP connections locked (nft table inet %s) until restore", net_lock.connections(),
              net_lock_table(pid).c_str());
  }
  return 0;
}
