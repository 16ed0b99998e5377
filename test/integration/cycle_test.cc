// Checkpoint/restore cycle tests: single processes (issue 5), process trees and threads (issue 6).
//
// Each case: start a dumpee workload (test/workloads/ckpt_*.c; protocol in
// ckpt_common.h), dump it, make sure the original is gone (or, per mode,
// stopped or still running and verifying), restore it, SIGTERM the restored
// pid, and expect its verdict "PASS". Modes (DESIGN.md section 6):
//   dump     kill (default) | -s (left stopped: must be in state T, then
//            killed and reaped by us) | --leave-running (must still run and
//            verify PASS itself; then restored from the images anyway)
//   restore  attached (cr-restore stays the parent; its exit status is the
//            workload's) | -d (detached; the workload is reparented to the
//            test binary, a child subreaper)
//   images   -D DIR | -D - into a file and back | a pipeline
//            `crtools dump -t PID -D - | crtools restore -D -`
// And the failure paths of issue 5: unsupported state refused at dump
// (pid, fd and kind named; the process runs on untouched), a busy pid
// at restore (a live process or a zombie), truncated, corrupted or missing
// images refused before any process is created, a file changed since the
// dump, a dump into a full filesystem or a stream whose reader goes away.
//
// Trees and threads (ckpt_tree, ckpt_threads, ckpt_pipes): the same modes,
// followed pid by pid and tid by tid from their READY lines; and a restore
// that finds a non-root pid of the tree taken must name it and leave no
// task behind.
//
// CYCLE_ONLY=<substring> runs only the cycles whose label contains it, e.g.
//   CYCLE_ONLY=ckpt_regs build/test/integration-tests -tc='cycle*'
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cinttypes>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/kernel/features.h"
#include "test/integration/harness.h"
#include "test/integration/tcp_client.h"

using namespace harness;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

enum class DumpMode { Kill, Stopped, LeaveRunning };
enum class RestoreMode { Attached, Detached };
enum class ImageMode { Dir, StreamFile, Pipeline };

struct Mode {
  DumpMode dump = DumpMode::Kill;
  RestoreMode restore = RestoreMode::Attached;
  ImageMode images = ImageMode::Dir;
};

const Mode kKillDirAttached{DumpMode::Kill, RestoreMode::Attached, ImageMode::Dir};
const Mode kKillDirDetached{DumpMode::Kill, RestoreMode::Detached, ImageMode::Dir};
const Mode kStoppedAttached{DumpMode::Stopped, RestoreMode::Attached, ImageMode::Dir};
const Mode kStoppedDetached{DumpMode::Stopped, RestoreMode::Detached, ImageMode::Dir};
const Mode kRunningAttached{DumpMode::LeaveRunning, RestoreMode::Attached, ImageMode::Dir};
const Mode kRunningDetached{DumpMode::LeaveRunning, RestoreMode::Detached, ImageMode::Dir};
const Mode kStreamAttached{DumpMode::Kill, RestoreMode::Attached, ImageMode::StreamFile};
const Mode kStreamDetached{DumpMode::Kill, RestoreMode::Detached, ImageMode::StreamFile};
const Mode kPipeAttached{DumpMode::Kill, RestoreMode::Attached, ImageMode::Pipeline};
const Mode kPipeDetached{DumpMode::Kill, RestoreMode::Detached, ImageMode::Pipeline};

std::string describe(const Mode& m) {
  std::string s = m.dump == DumpMode::Kill ? "dump" : m.dump == DumpMode::Stopped ? "dump -s" : "dump --leave-running";
  s += m.images == ImageMode::Dir ? ", -D DIR" : m.images == ImageMode::StreamFile ? ", -D - via a file" : ", -D - | -D -";
  s += m.restore == RestoreMode::Attached ? ", restore attached" : ", restore -d";
  return s;
}

struct Work {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> dump_opts = {};  // given to every dump of it (e.g. --file-locks)
};

std::string label(const Work& w, const Mode& m) {
  std::string s = w.name;
  for (auto& a : w.args) s += " " + a;
  for (auto& a : w.dump_opts) s += " (dump " + a + ")";
  return s + " [" + describe(m) + "]";
}

bool selected(const std::string& l) {
  const char* only = getenv("CYCLE_ONLY");
  return !only || !*only || l.find(only) != std::string::npos;
}

std::string crtools_path() { return bin_dir() + "/crtools"; }

std::string shq(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// `token` in text as a whole number or word (not inside a longer one).
bool mentions(const std::string& text, const std::string& token) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (token.empty()) return false;
  for (size_t at = text.find(token); at != std::string::npos; at = text.find(token, at + 1)) {
    bool before = at == 0 || !word(text[at - 1]);
    size_t end = at + token.size();
    bool after = end == text.size() || !word(text[end]);
    if (before && after) return true;
  }
  return false;
}

int lines_in(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }


// Reaps one child the moment it exits (a blocking waitpid in a thread): in a
// dump|restore pipeline the killed original's zombie would otherwise hold
// its pid against the restore that is already reading the stream.
class Reaper {
 public:
  explicit Reaper(pid_t pid)
      : pid_(pid), fut_(std::async(std::launch::async, [pid] {
          int st;
          pid_t r;
          do r = waitpid(pid, &st, 0);
          while (r < 0 && errno == EINTR);
          if (r != pid) return -1;
          return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
        })) {}
  ~Reaper() {
    if (fut_.valid() && fut_.wait_for(0s) != std::future_status::ready) {
      kill(pid_, SIGKILL);
      fut_.wait();
    }
  }
  // The child's status, -1 if it has not exited within t.
  int wait(std::chrono::seconds t) {
    if (!fut_.valid()) return status_;
    if (fut_.wait_for(t) != std::future_status::ready) return -1;
    return status_ = fut_.get();
  }

 private:
  pid_t pid_;
  std::future<int> fut_;
  int status_ = -1;
};

// Wait for the restored pid to run the workload again, or for the restore to
// end (attached: it must not end before the workload does).
bool wait_restored_or_gone(const Dumpee& d, pid_t pid, Background& restore, std::chrono::seconds t) {
  return wait_until([&] { return looks_restored(pid, d.exe(), d.cmdline()) || !restore.running(); },
                    std::chrono::duration_cast<std::chrono::milliseconds>(t)) &&
         looks_restored(pid, d.exe(), d.cmdline());
}

// The processes of a dumpee: the pids of its READY line's "pids=" (a tree:
// root first) or the root alone; "zombies=" among them; the threads of
// "tids=".
struct Tree {
  pid_t root = -1;
  std::vector<pid_t> pids;     // root first
  std::vector<pid_t> others;   // pids without the root
  std::vector<pid_t> zombies;  // dead before the dump, unreaped
  std::vector<pid_t> tids;     // threads of the root (main thread first)
  bool zombie(pid_t p) const { return std::find(zombies.begin(), zombies.end(), p) != zombies.end(); }
  std::vector<pid_t> live() const {
    std::vector<pid_t> r;
    for (pid_t p : pids)
      if (!zombie(p)) r.push_back(p);
    return r;
  }
};

Tree tree_of(const Dumpee& d) {
  Tree t;
  t.root = d.pid();
  t.pids = ready_list(d.ready_info(), "pids");
  if (t.pids.empty() || t.pids[0] != t.root) t.pids.insert(t.pids.begin(), t.root);
  for (size_t i = 1; i < t.pids.size(); i++) t.others.push_back(t.pids[i]);
  t.zombies = ready_list(d.ready_info(), "zombies");
  t.tids = ready_list(d.ready_info(), "tids");
  return t;
}

// A tree workload started in a temporary working directory `wd` (its
// images go to `img` beside it), its tree read from READY. Every pid of
// the tree still running the workload is killed when it goes out of scope
// (by pid, never <= 0), whatever happened.
struct TreeWorkload {
  TempDir t;
  std::string wd = t / "wd", img = t / "img";
  Dumpee d;
  Tree tree;
  TreeWorkload(const std::string& name, const std::vector<std::string>& args)
      : d(name, options(wd, args)), tree(tree_of(d)) {}
  ~TreeWorkload() { kill_tree(tree.pids, d.exe()); }
  static Dumpee::Options options(const std::string& wd, const std::vector<std::string>& args) {
    fs::create_directory(wd);
    Dumpee::Options o;
    o.dir = wd;
    o.args = args;
    return o;
  }
};

std::string join(const std::vector<pid_t>& v) {
  std::string s;
  for (pid_t p : v) s += (s.empty() ? "" : ",") + std::to_string(p);
  return s;
}

// What the reaped statuses of a killed tree's other pids should be: killed
// by the dump (SIGKILL), except its zombies, which keep what they died of
// (ckpt_tree --zombie: exit 7, then SIGUSR2).
std::string killed_tree_problems(const Tree& t, const std::vector<int>& st) {
  std::string p;
  for (size_t i = 0; i < t.others.size(); i++) {
    pid_t q = t.others[i];
    if (st[i] == -2) {
      p += "pid " + std::to_string(q) + " still there (state '" + std::string(1, proc_state(q) ? proc_state(q) : '0') + "'); ";
      continue;
    }
    if (st[i] == -1) continue;  // reaped by someone else (e.g. its own parent): gone all the same
    int want = 128 + SIGKILL;
    if (t.zombie(q)) {
      size_t z = size_t(std::find(t.zombies.begin(), t.zombies.end(), q) - t.zombies.begin());
      want = t.zombies.size() == 2 ? (z == 0 ? 7 : 128 + SIGUSR2) : -1;
    }
    if (want >= 0 && st[i] != want)
      p += "pid " + std::to_string(q) + " ended with " + std::to_string(st[i]) + ", expected " + std::to_string(want) + "; ";
  }
  for (pid_t tid : t.tids)
    if (tid != t.root && proc_state(tid) != 0) p += "thread " + std::to_string(tid) + " still there; ";
  return p;
}

// Reaps the other pids of a tree as they die, in the background (a
// dump|restore pipeline: their zombies would hold pids against the restore
// already reading the stream). They come to us when their parents die.
class TreeReaper {
 public:
  explicit TreeReaper(std::vector<pid_t> pids) : pids_(std::move(pids)), st_(pids_.size(), -2), done_(pids_.size()) {
    th_ = std::thread([this] {
      while (!stop_) {
        bool all = true;
        for (size_t i = 0; i < pids_.size(); i++) {
          if (done_[i]) continue;
          if (pids_[i] <= 0) {
            done_[i] = true, st_[i] = -1;
            continue;
          }
          int wst;
          if (waitpid(pids_[i], &wst, WNOHANG) == pids_[i]) {
            st_[i] = WIFEXITED(wst) ? WEXITSTATUS(wst) : WIFSIGNALED(wst) ? 128 + WTERMSIG(wst) : -1;
            done_[i] = true;
            continue;
          }
          all = false;
        }
        if (all) break;
        usleep(500);
      }
      finished_ = true;
    });
  }
  ~TreeReaper() {
    stop_ = true;
    th_.join();
  }
  // Wait until all are reaped (or t); statuses as reap_pids().
  std::vector<int> wait(std::chrono::seconds t) {
    wait_until([&] { return finished_.load(); }, std::chrono::duration_cast<std::chrono::milliseconds>(t));
    stop_ = true;
    th_.join();
    th_ = std::thread([] {});
    return st_;
  }

 private:
  std::vector<pid_t> pids_;
  std::vector<int> st_;
  std::vector<char> done_;
  std::atomic<bool> stop_{false}, finished_{false};
  std::thread th_;
};

// Every process of the tree runs again as dumped: the live ones run the
// workload (same exe and cmdline, not stopped or traced), the zombies are
// zombies of the root again, every thread is back.
std::string not_restored(const Tree& t, const Dumpee& d) {
  std::string p;
  for (pid_t q : t.pids) {
    if (t.zombie(q)) {
      if (proc_state(q) != 'Z' || proc_ppid(q) != t.root) p += "zombie " + std::to_string(q) + " not a zombie of the root; ";
    } else if (!looks_restored(q, d.exe(), d.cmdline())) {
      p += "pid " + std::to_string(q) + " not running the workload; ";
    }
  }
  for (pid_t tid : t.tids)
    if (!fs::exists("/proc/" + std::to_string(t.root) + "/task/" + std::to_string(tid)))
      p += "thread " + std::to_string(tid) + " missing; ";
  return p;
}

// One full cycle. Uses CHECK/REQUIRE; returns early on the first broken step.
// A tree workload (READY "pids=..." / "tids=...") is followed pid by pid:
// after a kill-mode dump every pid is gone (the others are reaped by pid:
// they come to us, the child subreaper); after -s every live one is stopped;
// after --leave-running the original verifies PASS and then every pid is
// gone; after the restore every pid and thread is back before the SIGTERM.
void cycle(const Work& w, const Mode& m, std::chrono::seconds verdict_timeout = 120s) {
  TempDir t;
  std::string wd = t / "wd", img = t / "img", tarfile = t / "img.tar";
  fs::create_directory(wd);
  Dumpee::Options o;
  o.args = w.args;
  o.dir = wd;
  Dumpee d(w.name, o);
  const pid_t pid = d.pid();
  const Tree tree = tree_of(d);
  const std::string ps = std::to_string(pid), cr = crtools_path();
  // Whatever happens, no restored workload outlives the case: every pid of
  // the tree that still runs the workload is killed (by pid, never <= 0).
  struct Guard {
    std::vector<pid_t> pids;
    std::string exe;
    ~Guard() { kill_tree(pids, exe); }
  } guard{tree.pids, d.exe()};
  const bool detached = m.restore == RestoreMode::Detached;
  INFO("pid ", pid, ", ready: ", d.ready_info());

  std::vector<std::string> dump_args = {"dump", "-t", ps, "-D", m.images == ImageMode::Dir ? img : "-"};
  if (m.dump == DumpMode::Stopped) dump_args.push_back("-s");
  if (m.dump == DumpMode::LeaveRunning) dump_args.push_back("--leave-running");
  for (auto& a : w.dump_opts) dump_args.push_back(a);
  std::string extra;  // the options after -D, for the shell forms
  for (size_t i = 5; i < dump_args.size(); i++) extra += " " + shq(dump_args[i]);

  std::unique_ptr<Background> restore;
  if (m.images == ImageMode::Pipeline) {
    REQUIRE(m.dump == DumpMode::Kill);  // otherwise the pid is still taken when the restore needs it
    Reaper reaper(pid);
    TreeReaper others(tree.others);
    std::string cmd = "set -o pipefail; " + shq(cr) + " dump -t " + ps + " -D -" + extra + " | " + shq(cr) +
                      " restore -D -" + (detached ? " -d" : "");
    restore = std::make_unique<Background>(std::vector<std::string>{"/bin/bash", "-c", cmd});
    int st = reaper.wait(120s);
    INFO("pipeline stderr: ", restore->err());
    REQUIRE_MESSAGE(st == 128 + SIGKILL, "the original ended with status ", st, " (expected killed by the dump)");
    std::vector<int> sts = others.wait(60s);
    std::string bad = killed_tree_problems(tree, sts);
    REQUIRE_MESSAGE(bad == "", "after the dump: ", bad);
  } else {
    RunResult dr = m.images == ImageMode::Dir
                       ? crtools(dump_args)
                       : run({"/bin/bash", "-c", shq(cr) + " dump -t " + ps + " -D -" + extra + " > " + shq(tarfile)});
    INFO("dump stderr: ", dr.err);
    REQUIRE_MESSAGE(dr.status == 0, "dump failed");
    if (m.images == ImageMode::Dir) CHECK(fs::exists(img + "/inventory.img"));
    else CHECK(fs::file_size(tarfile) > 0);

    // The original, after the dump.
    switch (m.dump) {
      case DumpMode::Kill: {
        int st = d.wait_exit(30s);
        CHECK_MESSAGE(st == 128 + SIGKILL, "after a dump without -s/--leave-running the original ended with ", st);
        REQUIRE_FALSE(pid_alive(pid));
        std::string bad = killed_tree_problems(tree, reap_pids(tree.others, 30s));
        REQUIRE_MESSAGE(bad == "", "after the dump: ", bad);
        break;
      }
      case DumpMode::Stopped: {
        for (pid_t q : tree.pids) {
          if (tree.zombie(q)) {
            CHECK_MESSAGE(proc_state(q) == 'Z', "zombie ", q, " in state '", proc_state(q), "' after dump -s");
            continue;
          }
          CHECK_MESSAGE(wait_until([&] { return proc_state(q) == 'T'; }, 10s), "pid ", q, " in state '", proc_state(q),
                        "' after dump -s");
          CHECK(proc_tracer(q) == 0);
        }
        for (pid_t tid : tree.tids) CHECK_MESSAGE(proc_state(tid) == 'T', "thread ", tid, " in state '", proc_state(tid), "'");
        // Leaves first, each dead before its parent is killed: a process
        // group left orphaned with stopped members would get SIGHUP first.
        for (auto it = tree.pids.rbegin(); it != tree.pids.rend(); ++it) {
          pid_t q = *it;
          if (q <= 0 || tree.zombie(q) || proc_exe(q) != d.exe()) continue;
          kill(q, SIGKILL);
          CHECK(wait_until([&] { char s = proc_state(q); return s == 0 || s == 'Z' || s == 'X'; }, 10s));
        }
        CHECK(d.wait_exit(30s) == 128 + SIGKILL);
        std::string bad = killed_tree_problems(tree, reap_pids(tree.others, 30s));
        REQUIRE_MESSAGE(bad == "", "after killing the stopped tree: ", bad);
        break;
      }
      case DumpMode::LeaveRunning: {
        for (pid_t q : tree.live()) {
          char st = proc_state(q);
          CHECK_MESSAGE((st == 'R' || st == 'S'), "pid ", q, " in state '", st, "' after --leave-running");
          CHECK(proc_tracer(q) == 0);
        }
        for (pid_t tid : tree.tids) {
          char st = proc_state(tid);
          CHECK_MESSAGE((st == 'R' || st == 'S'), "thread ", tid, " in state '", st, "' after --leave-running");
        }
        off_t size_at_dump = d.output_size();
        Verdict v = d.verdict(verdict_timeout);
        CHECK_MESSAGE(v.passed(), "the original, after dump --leave-running: ", v.describe());
        // Its verdict grew the output file; cut it back so the restore finds
        // the file as it was dumped (a size change would be refused).
        d.truncate_output(size_at_dump);
        // The original reaped its own tree; anything left is ours to reap.
        std::string bad;
        std::vector<int> sts = reap_pids(tree.others, 10s);
        for (size_t i = 0; i < sts.size(); i++)
          if (sts[i] == -2) bad += std::to_string(tree.others[i]) + " ";
        REQUIRE_MESSAGE(bad == "", "pids still there after the original's verdict: ", bad);
        break;
      }
    }
    for (pid_t q : tree.pids) REQUIRE_MESSAGE(proc_state(q) == 0, "pid ", q, " still taken before the restore");

    std::vector<std::string> rargs = {cr, "restore", "-D", m.images == ImageMode::Dir ? img : "-"};
    if (detached) rargs.push_back("-d");
    restore = std::make_unique<Background>(rargs, m.images == ImageMode::StreamFile ? tarfile : "/dev/null");
  }

  // The restore.
  if (detached) {
    RunResult r = restore->wait(120s);
    INFO("restore stderr: ", r.err);
    REQUIRE_MESSAGE(r.status == 0, "restore -d failed");
    REQUIRE_MESSAGE(wait_restored(pid, d.exe(), d.cmdline(), 30s), "pid ", pid, " does not run the workload after restore -d");
    std::string missing;
    wait_until([&] { return (missing = not_restored(tree, d)).empty(); }, 30s);
    REQUIRE_MESSAGE(missing == "", "after restore -d: ", missing);
    CHECK_MESSAGE(proc_ppid(pid) == getpid(), "restore -d: the workload's parent is ", proc_ppid(pid),
                  ", not the test (the child subreaper)");
    Verdict v = terminate_and_collect(pid, d.output_path(), verdict_timeout);
    CHECK_MESSAGE(v.passed(), v.describe(), "; output file: ", d.output());
    CHECK(v.status == 0);  // reparented to us: we reaped it
  } else {
    bool up = wait_restored_or_gone(d, pid, *restore, 120s);
    INFO("restore stderr: ", restore->err());
    REQUIRE_MESSAGE(up, "pid ", pid, " does not run the workload (restore ",
                    std::string(restore->running() ? "still running" : "ended"), ")");
    std::string missing;
    wait_until([&] { return (missing = not_restored(tree, d)).empty() || !restore->running(); }, 60s);
    missing = not_restored(tree, d);
    REQUIRE_MESSAGE(missing == "", "after the restore: ", missing);
    if (m.images != ImageMode::Pipeline)
      CHECK_MESSAGE(proc_ppid(pid) == restore->pid(), "attached restore: the workload's parent is ", proc_ppid(pid));
    Verdict v = terminate_and_collect(pid, d.output_path(), *restore, verdict_timeout);
    CHECK_MESSAGE(v.passed(), v.describe(), "; restore stderr: ", restore->err(), "; output file: ", d.output());
    CHECK_MESSAGE(v.status == 0, "attached restore exited ", v.status, " (the workload's status)");
  }
  CHECK_FALSE(pid_alive(pid));
  // The root reaped its children (and they theirs) before its verdict.
  for (pid_t q : tree.others) CHECK_MESSAGE(proc_state(q) == 0, "pid ", q, " left after the verdict");
}

struct CycleCase {
  Work w;
  Mode m;
};

void run_cycles(const std::vector<CycleCase>& cs) {
  int ran = 0;
  for (auto& c : cs) {
    std::string l = label(c.w, c.m);
    if (!selected(l)) continue;
    ran++;
    CAPTURE(l);
    try {
      cycle(c.w, c.m);
    } catch (const std::exception& e) {
      FAIL_CHECK(l, ": ", e.what());
    } catch (...) {
      // A failed REQUIRE inside cycle(): already reported; go on with the
      // next case.
    }
  }
  MESSAGE(ran, " cycles");
}

// The workloads that hold only supported state.
const std::vector<Work>& all_workloads() {
  static const std::vector<Work> w = {
      {"ckpt_counter", {}}, {"ckpt_regs", {}},   {"ckpt_memory", {}},   {"ckpt_heap", {}},
      {"ckpt_filemap", {}}, {"ckpt_madvise", {}}, {"ckpt_vdso", {}},     {"ckpt_mmfields", {"an arg", "--x=y"}},
      {"ckpt_signals", {}}, {"ckpt_itimer", {}},  {"ckpt_task", {}},     {"ckpt_files", {}},
  };
  return w;
}

std::vector<CycleCase> each(const std::vector<Work>& ws, const Mode& m) {
  std::vector<CycleCase> r;
  for (auto& w : ws) r.push_back({w, m});
  return r;
}

// End a process a failed case left behind and reap it -- only if it is
// ours: our unreaped child, or running the workload's executable. (pid_max
// is 32768 here: a pid we saw die may already belong to someone else.)
void kill_leftover(pid_t pid, const std::string& exe) {
  if (pid <= 0) return;  // kill(0 or -1) would signal a group or everyone
  int st;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r == pid) return;                            // a zombie of ours: reaped now
  if (r != 0 && proc_exe(pid) != exe) return;      // not ours
  kill(pid, SIGKILL);
  wait_until(
      [&] {
        if (waitpid(pid, &st, WNOHANG) == pid) return true;
        char s = proc_state(pid);
        return s == 0 || ((s == 'Z' || s == 'X') && proc_exe(pid) != exe);
      },
      10s);
}

// Restore an image set that must be refused: non-zero exit, one line of
// error, nothing left behind (no new child of ours, no process running the
// workload `exe` as `pid`). With `before_any_process`, also no task with
// `pid` created at any moment while the restore runs (polled: a process with
// that pid whose parent is the restore, or that runs `exe`). `stdin_file`
// for -D -. A restore that wrongly succeeds is ended after 20 s.
RunResult expect_refused(const std::vector<std::string>& restore_args, pid_t pid, const std::string& exe,
                         const std::string& stdin_file, const std::string& what, bool before_any_process = true) {
  CAPTURE(what);
  auto kids_before = children_of(getpid());
  auto deadline = std::chrono::steady_clock::now() + 20s;
  RunResult res;
  bool appeared = false, hung = false;
  {
    Background r(restore_args, stdin_file);
    auto ours = [&] { return proc_state(pid) != 0 && (proc_ppid(pid) == r.pid() || proc_exe(pid) == exe); };
    while (r.running()) {
      if (ours()) appeared = true;
      if (std::chrono::steady_clock::now() > deadline) {
        hung = true;
        break;
      }
      usleep(200);
    }
    if (hung && pid > 0 && ours()) kill(pid, SIGKILL);
    res = r.wait(hung ? 10s : 60s);
  }  // ~Background ends the restore if it still runs
  kill_leftover(pid, exe);
  INFO("stderr: ", res.err);
  CHECK_MESSAGE(!hung, "the restore accepted the images and ran the workload (killed after 20 s)");
  CHECK_MESSAGE(res.status != 0, "restore accepted it");
  CHECK_MESSAGE(res.status < 128, "restore died of signal ", res.status - 128);
  CHECK_MESSAGE(lines_in(res.err) == 1, "not one line of error");
  if (before_any_process) CHECK_MESSAGE(!appeared, "a process with pid ", pid, " appeared during the refused restore");
  CHECK(proc_exe(pid) != exe);
  CHECK(children_of(getpid()) == kids_before);
  return res;
}

void flip_byte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(at));
  char c = 0;
  f.get(c);
  f.seekp(std::streamoff(at));
  f.put(char(c ^ 0x40));
}

// A small tmpfs, unmounted (lazily) on destruction.
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir);
    ok_ = mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (ok_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

// Running, not stopped, not traced: what a failed dump must leave.
// A sleep with pid `victim` (free now): ns_last_pid = victim - 1, then one
// fork, tried until it lands there.
std::unique_ptr<Background> hold_pid(pid_t victim) {
  std::unique_ptr<Background> holder;
  for (int attempt = 0; attempt < 200 && !holder; attempt++) {
    // Another process of the machine may take the pid between our write
    // and our fork (and hold it a moment, as a zombie): wait for it.
    REQUIRE(wait_until([&] { return proc_state(victim) == 0; }, 10s));
    {
      std::ofstream lp("/proc/sys/kernel/ns_last_pid");
      lp << victim - 1;
    }
    auto b = std::make_unique<Background>(std::vector<std::string>{"/bin/sleep", "600"});
    if (b->pid() == victim) holder = std::move(b);
  }
  REQUIRE_MESSAGE(holder, "could not start a process with pid ", victim);
  return holder;
}

std::string untouched_problem(pid_t pid) {
  char st = proc_state(pid);
  if (st != 'R' && st != 'S') return std::string("state '") + (st ? st : '0') + "'";
  if (proc_tracer(pid) != 0) return "still traced by " + std::to_string(proc_tracer(pid));
  return "";
}

}  // namespace

// ------------------------------------------------------------------ cycles

TEST_CASE("cycle: every workload; dump (kill); -D DIR; attached restore") {
  run_cycles(each(all_workloads(), kKillDirAttached));
}

TEST_CASE("cycle: every workload; dump (kill); -D DIR; restore -d") {
  run_cycles(each(all_workloads(), kKillDirDetached));
}

TEST_CASE("cycle: dump -s leaves the process stopped; restore attached and -d") {
  run_cycles({{{"ckpt_counter", {}}, kStoppedAttached},
              {{"ckpt_regs", {}}, kStoppedDetached},
              {{"ckpt_memory", {}}, kStoppedAttached},
              {{"ckpt_signals", {}}, kStoppedDetached},
              {{"ckpt_files", {}}, kStoppedAttached},
              {{"ckpt_task", {}}, kStoppedDetached},
              {{"ckpt_itimer", {}}, kStoppedAttached}});
}

TEST_CASE("cycle: dump --leave-running; the original verifies and is restored anyway") {
  run_cycles({{{"ckpt_counter", {}}, kRunningDetached},
              {{"ckpt_heap", {}}, kRunningAttached},
              {{"ckpt_filemap", {}}, kRunningDetached},
              {{"ckpt_files", {}}, kRunningAttached},
              {{"ckpt_itimer", {}}, kRunningDetached},
              {{"ckpt_madvise", {}}, kRunningAttached},
              {{"ckpt_regs", {}}, kRunningAttached},
              {{"ckpt_vdso", {}}, kRunningDetached}});
}

TEST_CASE("cycle: -D - through a file; restore attached and -d") {
  run_cycles({{{"ckpt_regs", {}}, kStreamAttached},
              {{"ckpt_memory", {}}, kStreamDetached},
              {{"ckpt_signals", {}}, kStreamAttached},
              {{"ckpt_vdso", {}}, kStreamDetached},
              {{"ckpt_mmfields", {"x"}}, kStreamAttached},
              {{"ckpt_task", {"--creds"}}, kStreamDetached},
              {{"ckpt_filemap", {}}, kStreamAttached}});
}

TEST_CASE("cycle: crtools dump -D - | crtools restore -D -; attached and -d") {
  run_cycles({{{"ckpt_counter", {}}, kPipeAttached},
              {{"ckpt_heap", {}}, kPipeDetached},
              {{"ckpt_files", {}}, kPipeAttached},
              {{"ckpt_itimer", {}}, kPipeDetached},
              {{"ckpt_madvise", {}}, kPipeAttached},
              {{"ckpt_memory", {}}, kPipeDetached},
              {{"ckpt_regs", {}}, kPipeDetached}});
}

// AMX (Sapphire Rapids and later): the process's permission for the tile
// data state comes back, and a tile computation runs after the restore.
// On such a CPU the ptrace xstate is larger than a task's default FPU
// buffer; every vector register above xmm was lost until the restore sized
// the signal frame to the task (cr-restore/core.cc build_sigframe).
TEST_CASE("cycle: AMX tile permission (ckpt_regs --amx); skipped on a machine without AMX") {
  if (!cr::feature_available(cr::Feature::CpuAmx)) {
    MESSAGE("skipped: this machine has no AMX (crtools check: cpu-amx)");
    return;
  }
  run_cycles({{{"ckpt_regs", {"--amx"}}, kKillDirAttached},
              {{"ckpt_regs", {"--amx"}}, kStoppedDetached},
              {{"ckpt_regs", {"--amx"}}, kPipeDetached}});
}

TEST_CASE("cycle: caught in user code (--spin) rather than in a system call") {
  run_cycles({{{"ckpt_memory", {"--spin"}}, kKillDirDetached},
              {{"ckpt_signals", {"--spin"}}, kKillDirAttached},
              {{"ckpt_files", {"--spin"}}, kStreamDetached},
              {{"ckpt_heap", {"--spin"}}, kPipeAttached},
              {{"ckpt_task", {"--spin"}}, kStoppedAttached}});
}

// ------------------------------------------------------------------ trees

// The tree and thread workloads, each through the modes above.
const std::vector<Work>& tree_workloads() {
  static const std::vector<Work> w = {
      {"ckpt_tree", {}}, {"ckpt_tree", {"--zombie"}}, {"ckpt_threads", {}}, {"ckpt_pipes", {}},
      {"ckpt_orphans", {}}};
  return w;
}

TEST_CASE("cycle: process trees and threads; dump (kill); -D DIR; attached and -d") {
  std::vector<CycleCase> cs = each(tree_workloads(), kKillDirAttached);
  for (auto& c : each(tree_workloads(), kKillDirDetached)) cs.push_back(c);
  cs.push_back({{"ckpt_tree", {"--fan=30"}}, kKillDirDetached});
  run_cycles(cs);
}

TEST_CASE("cycle: process trees and threads; dump -s; attached and -d") {
  std::vector<CycleCase> cs = each(tree_workloads(), kStoppedAttached);
  for (auto& c : each(tree_workloads(), kStoppedDetached)) cs.push_back(c);
  run_cycles(cs);
}

TEST_CASE("cycle: process trees and threads; dump --leave-running; attached and -d") {
  std::vector<CycleCase> cs = each(tree_workloads(), kRunningAttached);
  for (auto& c : each(tree_workloads(), kRunningDetached)) cs.push_back(c);
  run_cycles(cs);
}

TEST_CASE("cycle: process trees and threads; -D - through a file; attached and -d") {
  std::vector<CycleCase> cs = each(tree_workloads(), kStreamAttached);
  for (auto& c : each(tree_workloads(), kStreamDetached)) cs.push_back(c);
  run_cycles(cs);
}

TEST_CASE("cycle: process trees and threads; dump -D - | restore -D -; attached and -d") {
  std::vector<CycleCase> cs = each(tree_workloads(), kPipeAttached);
  for (auto& c : each(tree_workloads(), kPipeDetached)) cs.push_back(c);
  run_cycles(cs);
}

TEST_CASE("cycle: process trees and threads; caught in user code (--spin)") {
  run_cycles({{{"ckpt_tree", {"--spin", "--zombie"}}, kKillDirAttached},
              {{"ckpt_pipes", {"--spin"}}, kKillDirDetached},
              {{"ckpt_threads", {"--spin"}}, kPipeDetached}});
}

// Credentials, POSIX timers, seccomp and shared anonymous memory, each in
// every mode of the runner.
TEST_CASE("cycle: capabilities and securebits, POSIX timers, seccomp, shared memory, memfd, CLONE_FS, CLONE_FILES, FIFOs, SysV shm, event descriptors, deleted files, inotify, file locks, BPF maps, unix sockets, ptys, inet sockets; every mode") {
  const std::vector<Work> ws = {
      {"ckpt_creds", {}}, {"ckpt_posix_timers", {}}, {"ckpt_seccomp", {}}, {"ckpt_shmem", {}}, {"ckpt_clonefs", {}},
      {"ckpt_fifo", {}}, {"ckpt_memfd", {}}, {"ckpt_clonefiles", {}}, {"ckpt_sysvshm", {}},
      {"ckpt_eventfds", {}}, {"ckpt_deleted", {}}, {"ckpt_inotify", {}}, {"ckpt_locks", {}, {"--file-locks"}},
      {"ckpt_bpf_maps", {}}, {"ckpt_unix_sockets", {}}, {"ckpt_pty", {}}, {"ckpt_inet", {}},
      {"ckpt_tcp_echo", {}, {"--tcp-established"}}};
  std::vector<CycleCase> cs;
  for (const Mode& m : {kKillDirAttached, kKillDirDetached, kStoppedAttached, kRunningDetached, kStreamAttached,
                        kPipeDetached})
    for (auto& c : each(ws, m)) cs.push_back(c);
  run_cycles(cs);
}

// fanotify groups with inode, mount and filesystem marks; files opened
// again through /proc/self/fd links (their own descriptions, offsets and
// flags); each in every mode.
TEST_CASE("cycle: fanotify marks, files reopened through /proc/self/fd; every mode") {
  const std::vector<Work> ws = {{"ckpt_fanotify", {}}, {"ckpt_procfd", {}}};
  std::vector<CycleCase> cs;
  for (const Mode& m : {kKillDirAttached, kKillDirDetached, kStoppedAttached, kRunningDetached, kStreamAttached,
                        kPipeDetached})
    for (auto& c : each(ws, m)) cs.push_back(c);
  run_cycles(cs);
}

// The tree keeps forking and reaping children while it is frozen: the dump
// must catch whatever is being born or dying (a live child is restored in
// fork's return path and exits, a zombie is restored a zombie), and the
// restored root reaps them all with their status. --leave-running: the
// original reaps its own churn before the restore needs the pids.
TEST_CASE("cycle: a tree forking and reaping children during the freeze (ckpt_tree --churn)") {
  run_cycles({{{"ckpt_tree", {"--churn"}}, kRunningDetached},
              {{"ckpt_tree", {"--churn"}}, kRunningAttached},
              {{"ckpt_tree", {"--churn", "--zombie"}}, kRunningDetached}});
}

// A daemon after the classic double fork: its session (and, with
// --own-group, its process group) leader is gone. Restore makes both again
// with short-lived helpers of those pids; the daemon checks its sid and
// pgid itself, attached and detached.
TEST_CASE("cycle: a daemon whose session and group leaders are gone gets its session and group back") {
  for (int variant = 0; variant < 4; variant++) {
    const bool own_group = variant & 1, det = variant & 2;
    CAPTURE(own_group);
    CAPTURE(det);
    TempDir t;
    std::string wd = t / "wd", img = t / "img";
    fs::create_directory(wd);
    Dumpee::Options o;
    o.dir = wd;
    if (own_group) o.args = {"--own-group"};
    Dumpee d("ckpt_daemon", o);
    const std::vector<pid_t> dl = ready_list(d.ready_info(), "daemon");
    REQUIRE(dl.size() == 1);
    const pid_t daemon = dl[0];
    const std::string exe = proc_exe(daemon), cmdline = proc_cmdline(daemon);
    struct Guard {
      std::vector<pid_t> pids;
      std::string exe;
      ~Guard() { kill_tree(pids, exe); }
    } guard{{daemon}, exe};
    CHECK(d.wait_exit(30s) == 0);  // the first process, once the leader is reaped
    auto stat_fields = [](pid_t p) {
      std::string st = read_text("/proc/" + std::to_string(p) + "/stat");
      std::istringstream in(st.substr(st.rfind(')') + 2));
      std::string state, ppid, pgrp, sid;
      in >> state >> ppid >> pgrp >> sid;
      return pgrp + "/" + sid;
    };
    const std::string before = stat_fields(daemon);
    INFO("daemon ", daemon, " pgrp/sid ", before);
    auto r = crtools({"dump", "-t", std::to_string(daemon), "-D", img});
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    REQUIRE(reap_pids({daemon}, 30s)[0] == 128 + SIGKILL);
    std::vector<std::string> args = {crtools_path(), "restore", "-D", img};
    if (det) args.push_back("-d");
    Background rs(args);
    if (det) {
      RunResult res = rs.wait(60s);
      INFO("restore stderr: ", res.err);
      REQUIRE(res.status == 0);
    }
    REQUIRE_MESSAGE(wait_restored(daemon, exe, cmdline, 30s), "restore stderr: ", rs.err(), "; daemon state '",
                    proc_state(daemon), "' exe '", proc_exe(daemon), "' (want '", exe, "'), tracer ",
                    proc_tracer(daemon));
    CHECK(stat_fields(daemon) == before);
    Verdict v = det ? terminate_and_collect(daemon, d.output_path(), 60s)
                    : terminate_and_collect(daemon, d.output_path(), rs, 60s);
    CHECK_MESSAGE(v.passed(), v.describe(), "; output: ", d.output());
    if (!det) CHECK_MESSAGE(v.status == 0, "attached restore exited ", v.status);
  }
  // The daemon's own check can fail: with --selftest-corrupt it moves to a
  // new session after READY.
  TempDir t;
  Dumpee::Options o;
  o.dir = t.path();
  o.args = {"--selftest-corrupt"};
  Dumpee d("ckpt_daemon", o);
  const pid_t daemon = ready_list(d.ready_info(), "daemon").at(0);
  CHECK(d.wait_exit(30s) == 0);
  Verdict v = terminate_and_collect(daemon, d.output_path(), 60s);
  CHECK_MESSAGE(v.line.find("FAIL: session") == 0, v.describe());
}

// Pages of private writable mappings that processes a and b share
// copy-on-write: the same range in both, the same page frame (PFNs are
// visible to root).
size_t shared_pages(pid_t a, pid_t b) {
  auto ranges = [](pid_t p) {
    std::set<std::pair<uint64_t, uint64_t>> out;
    std::istringstream in(read_text("/proc/" + std::to_string(p) + "/maps"));
    std::string line;
    while (std::getline(in, line)) {
      uint64_t s = 0, e = 0;
      char perms[5] = {};
      if (sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %4s", &s, &e, perms) == 3 && perms[1] == 'w' &&
          perms[3] == 'p')
        out.insert({s, e});
    }
    return out;
  };
  auto rb = ranges(b);
  int pa = open(("/proc/" + std::to_string(a) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  int pb = open(("/proc/" + std::to_string(b) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  size_t n = 0;
  for (auto& r : ranges(a)) {
    if (!rb.count(r) || pa < 0 || pb < 0) continue;
    for (uint64_t x = r.first; x < r.second; x += 4096) {
      uint64_t ea = 0, eb = 0;
      if (pread(pa, &ea, 8, static_cast<off_t>(x / 4096 * 8)) != 8 ||
          pread(pb, &eb, 8, static_cast<off_t>(x / 4096 * 8)) != 8)
        break;
      const uint64_t pfn = (1ull << 55) - 1;
      if ((ea >> 63) && (eb >> 63) && (ea & pfn) && (ea & pfn) == (eb & pfn)) n++;
    }
  }
  if (pa >= 0) close(pa);
  if (pb >= 0) close(pb);
  return n;
}

// Copy-on-write memory stays shared: ckpt_tree's processes share 3/4 of a
// 1 MiB buffer (and whatever else fork left untouched). The dump must not
// unshare those pages (a read-only pin does since Linux 5.19), saves them
// once, in the parent, and the restore gives the child its parent's very
// pages again.
TEST_CASE("cycle: pages shared copy-on-write after fork stay shared across dump and restore, and are saved once") {
  for (bool leave_running : {true, false}) {
    CAPTURE(leave_running);
    TreeWorkload w("ckpt_tree", {});
    const Tree& tree = w.tree;
    Dumpee& d = w.d;
    const std::string& img = w.img;
    REQUIRE(tree.pids.size() >= 2);
    const pid_t root = tree.root, child = tree.pids[1];
    REQUIRE(proc_ppid(child) == root);
    const size_t before = shared_pages(root, child);
    INFO("pages shared by ", root, " and ", child, " before: ", before);
    CHECK(before >= 192);  // the 3/4 of the buffer nobody wrote after the fork
    std::vector<std::string> args = {"dump", "-t", std::to_string(root), "-D", img};
    if (leave_running) args.push_back("--leave-running");
    auto r = crtools(args);
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    // Saved once: the child's pages image holds its own pages, not the
    // parent's again.
    const auto root_pages = fs::file_size(img + "/pages-" + std::to_string(root) + ".img");
    const auto child_pages = fs::file_size(img + "/pages-" + std::to_string(child) + ".img");
    INFO("pages images: root ", root_pages, " bytes, child ", child_pages);
    CHECK(child_pages + before * 4096 <= root_pages + 64 * 1024);
    if (leave_running) {
      // The dump left the sharing alone.
      CHECK(shared_pages(root, child) >= before);
      Verdict v = d.verdict(60s);
      CHECK_MESSAGE(v.passed(), v.describe());
      reap_pids(tree.others, 30s);
    } else {
      REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
      reap_pids(tree.others, 30s);
    }
    // (The original's verdict grew its output file: accept it.)
    auto rr = crtools({"restore", "-D", img, "-d", "--skip-file-check"});
    INFO("restore stderr: ", rr.err);
    REQUIRE(rr.status == 0);
    for (pid_t p : tree.live()) REQUIRE(wait_restored(p, d.exe(), d.cmdline(), 30s));
    const size_t after = shared_pages(root, child);
    CHECK_MESSAGE(after >= before, "shared pages after restore: ", after, ", before: ", before);
    Verdict v = terminate_and_collect(root, d.output_path(), 60s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }
}

// A dump of `d` run with `argv` (after "/usr/bin/env", so that it may set
// variables; "IMG" stands for a fresh image directory) is refused: a
// one-line error holding each of `says`, no image set, the process as it
// was; its verdict is PASS afterwards.
void check_dump_refused(Dumpee& d, std::vector<std::string> argv, const std::vector<std::string>& says) {
  TempDir t;
  for (auto& a : argv)
    if (a == "IMG") a = t / "img";
  argv.insert(argv.begin(), "/usr/bin/env");
  RunResult r = run(argv);
  INFO("dump stderr: ", r.err);
  CHECK(r.status != 0);
  CHECK(r.status < 128);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  for (auto& w : says) CHECK_MESSAGE(r.err.find(w) != std::string::npos, "the error does not say '", w, "'");
  CHECK_FALSE(fs::exists(t / "img/inventory.img"));
  CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), "after the refused dump: ", v.describe());
}

// A timerfd that fired and was not read needs TFD_IOC_SET_TICKS on restore:
// without the feature (forced absent), the dump refuses it, naming the fd.
TEST_CASE("cycle: a timerfd with unread expirations is refused at dump without timerfd-set-ticks") {
  Dumpee d("ckpt_eventfds");
  check_dump_refused(d,
                     {"CRTOOLS_FEATURES_ABSENT=timerfd-set-ticks", crtools_path(), "dump", "-t", std::to_string(d.pid()),
                      "-D", "IMG"},
                     {"pid " + std::to_string(d.pid()), "fd 44: timerfd has 1 unread expirations", "timerfd-set-ticks"});
}

TEST_CASE("cycle: an eventfd, an epoll instance, a deleted file, an inotify instance and a unix socketpair once refused (ckpt_unsupported --kind ...)") {
  run_cycles({{{"ckpt_unsupported", {"--kind", "eventfd"}}, kKillDirAttached},
              {{"ckpt_unsupported", {"--kind", "epoll"}}, kPipeDetached},
              {{"ckpt_unsupported", {"--kind", "deleted-file"}}, kStoppedAttached},
              {{"ckpt_unsupported", {"--kind", "inotify"}}, kRunningDetached},
              {{"ckpt_unsupported", {"--kind", "socket"}}, kRunningDetached}});
}

// Terminals the restore cannot bring back faithfully are refused at dump,
// naming pid, fd (or session) and terminal; the tree runs on: data queued
// in a pty (a tty cannot be read without consuming it), an fd on a
// terminal outside the tree without --shell-job (its master is held by the
// test here), a session leader whose controlling terminal is outside.
TEST_CASE("cycle: a pty with unread data, a terminal outside the tree without --shell-job, a session leader on a terminal outside the tree are refused; the tree runs on") {
  {
    Dumpee d("ckpt_unsupported", {"--kind", "pty-data"});
    check_dump_refused(d, {crtools_path(), "dump", "-t", std::to_string(d.pid()), "-D", "IMG"},
                       {"pid " + std::to_string(d.pid()), "fd 43: pty /dev/pts/", "has 6 unread bytes"});
  }
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(m >= 0);
  struct Master {
    int fd;
    ~Master() { close(fd); }
  } master{m};
  REQUIRE(grantpt(m) == 0);
  REQUIRE(unlockpt(m) == 0);
  const std::string path = ptsname(m);
  {
    Dumpee d("ckpt_unsupported", {"--kind", "tty-outside", "--path", path});
    check_dump_refused(d, {crtools_path(), "dump", "-t", std::to_string(d.pid()), "-D", "IMG"},
                       {"pid " + std::to_string(d.pid()), "fd 42: terminal " + path + " is outside the tree",
                        "--shell-job"});
  }
  {
    Dumpee d("ckpt_unsupported", {"--kind", "ctty-outside", "--path", path});
    std::vector<pid_t> child = ready_list(d.ready_info(), "child");
    REQUIRE(child.size() == 1);
    check_dump_refused(d, {crtools_path(), "dump", "-t", std::to_string(d.pid()), "-D", "IMG"},
                       {"pid " + std::to_string(child[0]) + ": error: leads session",
                        "controlling terminal " + path + " is outside the tree"});
  }
}

// Without --file-locks a process holding a lock is refused, naming the fd,
// the kind of lock and the option; the tree runs on.

TEST_CASE("cycle: file locks are refused at dump without --file-locks; the tree runs on") {
  Dumpee d("ckpt_locks");
  check_dump_refused(d, {crtools_path(), "dump", "-t", std::to_string(d.pid()), "-D", "IMG"},
                     {"pid " + std::to_string(d.pid()) + ": error: fd 40: holds a flock lock", "--file-locks"});
}

// A deleted file larger than --ghost-limit is refused, naming the fd, the
// size and the option; the tree runs on. A limit over 64M is a usage error.
TEST_CASE("cycle: a deleted file over --ghost-limit is refused at dump; the tree runs on") {
  Dumpee d("ckpt_deleted");
  auto u = crtools({"dump", "-t", std::to_string(d.pid()), "-D", "/nonexistent", "--ghost-limit", "65M"});
  CHECK(u.status == 2);
  CHECK(u.err.find("--ghost-limit is at most 64M") != std::string::npos);
  check_dump_refused(d, {crtools_path(), "dump", "-t", std::to_string(d.pid()), "-D", "IMG", "--ghost-limit", "64K"},
                     {"fd 40: deleted file ", "victim.dat holds 102400 bytes, more than --ghost-limit (65536)"});
}

TEST_CASE("cycle: a second thread waiting on a condition variable (ckpt_unsupported --kind thread)") {
  run_cycles({{{"ckpt_unsupported", {"--kind", "thread"}}, kKillDirAttached},
              {{"ckpt_unsupported", {"--kind", "thread"}}, kRunningDetached}});
}

TEST_CASE("cycle: 200 threads each counting in its own variable (ckpt_threads --threads=200)") {
  run_cycles({{{"ckpt_threads", {"--threads=200"}}, kKillDirAttached}});
}

TEST_CASE("cycle: credentials of a non-root process (ckpt_task --creds)") {
  run_cycles({{{"ckpt_task", {"--creds"}}, kKillDirAttached}, {{"ckpt_task", {"--creds"}}, kPipeDetached}});
}

TEST_CASE("cycle: 1 GiB of random data (ckpt_memory --big-mib 1024)") {
  Work w{"ckpt_memory", {"--big-mib", "1024"}};
  if (!selected(label(w, kKillDirAttached))) return;
  CAPTURE(label(w, kKillDirAttached));
  cycle(w, kKillDirAttached, 600s);
}

// Shared memory beyond the old 64 MiB inline limit, mostly holes: 200 MiB
// of shared anonymous memory across fork (ckpt_shmem --big-mib) and a
// 100 MiB SysV segment (ckpt_sysvshm --big-mib), each in two modes.
TEST_CASE("cycle: big sparse shared memory (ckpt_shmem --big-mib=200, ckpt_sysvshm --big-mib=100)") {
  run_cycles({{{"ckpt_shmem", {"--big-mib=200"}}, kKillDirAttached},
              {{"ckpt_shmem", {"--big-mib=200"}}, kPipeDetached},
              {{"ckpt_sysvshm", {"--big-mib=100"}}, kKillDirDetached},
              {{"ckpt_sysvshm", {"--big-mib=100"}}, kPipeAttached}});
}

// The holes of a big shared object cost nothing in the images: 200 MiB of
// shared anonymous memory holding about 9 MiB of written pages takes about
// that much, less with -z; the pages of an object are in its own page image.
TEST_CASE("cycle: a 200 MiB shared object that is mostly holes is saved as its written pages") {
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    TreeWorkload w("ckpt_shmem", {"--big-mib=200"});
    const Tree& tree = w.tree;
    Dumpee& d = w.d;
    const std::string& img = w.img;
    std::vector<std::string> args = {"dump", "-t", std::to_string(tree.root), "-D", img};
    if (compress) args.push_back("-z");
    auto r = crtools(args);
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
    reap_pids(tree.others, 30s);
    uint64_t shmem_bytes = 0;
    int shmem_pagemaps = 0;
    for (auto& e : fs::directory_iterator(img)) {
      std::string n = e.path().filename();
      if (n.rfind("pages-shmem-", 0) == 0) shmem_bytes += fs::file_size(e.path());
      if (n.rfind("pagemap-shmem-", 0) == 0) shmem_pagemaps++;
    }
    INFO("pages-shmem-*.img: ", shmem_bytes, " bytes in all");
    CHECK(shmem_pagemaps == 5);  // S1 to S5
    // 2193 written pages of S5 (8.6 MiB) and 1.4 MiB of S1 to S4.
    if (compress) CHECK(shmem_bytes < (11u << 20));
    else CHECK((shmem_bytes > (9u << 20) && shmem_bytes < (11u << 20)));
    auto rr = crtools({"restore", "-D", img, "-d"});
    INFO("restore stderr: ", rr.err);
    REQUIRE(rr.status == 0);
    for (pid_t p : tree.live()) REQUIRE(wait_restored(p, d.exe(), d.cmdline(), 30s));
    Verdict v = terminate_and_collect(tree.root, d.output_path(), 120s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }
}

TEST_CASE("cycle: dump -s then SIGCONT: the stopped original goes on and verifies") {
  for (const char* wl : {"ckpt_counter", "ckpt_signals", "ckpt_itimer"}) {
    std::string name = wl;
    CAPTURE(name);
    TempDir t;
    Dumpee d(wl);
    auto r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", t / "img", "-s"});
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    CHECK(wait_until([&] { return proc_state(d.pid()) == 'T'; }, 10s));
    kill(d.pid(), SIGCONT);
    CHECK(wait_until([&] { return proc_state(d.pid()) != 'T'; }, 10s));
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }
}

TEST_CASE("cycle: the counter counts on from where it stopped (the demo)") {
  TempDir t;
  Dumpee::Options o;
  o.args = {"--print"};
  Dumpee d("ckpt_counter", o);
  pid_t pid = d.pid();
  auto last_count = [&] {
    std::string out = d.output();
    size_t p = out.rfind("counter ");
    return p == std::string::npos ? 0ULL : std::stoull(out.substr(p + 8));
  };
  REQUIRE(wait_until([&] { return d.output().find("tick 2 ") != std::string::npos; }, 10s));
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", t / "img"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
  unsigned long long before = last_count();
  std::string out_at_dump = d.output();
  Background rs({crtools_path(), "restore", "-D", t / "img", "-d"});
  REQUIRE(rs.wait(120s).status == 0);
  REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
  // A new tick line after the restore, with a larger count.
  CHECK(wait_until([&] { return d.output().size() > out_at_dump.size() && last_count() > before; }, 10s));
  Verdict v = terminate_and_collect(pid, d.output_path(), 60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

// ------------------------------------------------------------------ refusals

TEST_CASE("cycle: unsupported state is refused at dump naming pid and fd and kind; the process runs on") {
  struct K {
    std::string kind;
    std::vector<std::string> words;  // one of them must appear (case-insensitive)
  };
  // (A pipe, a second thread and a child were refused here until process
  // trees and threads were supported, an eventfd and an epoll instance
  // until event descriptors were, a unix socketpair until unix sockets
  // were; they are cycles now.)
  const std::vector<K> kinds = {{"inet", {"datagrams in its receive queue"}},
                                {"inet-raw", {"raw socket"}},
                                {"inet-pending", {"not yet accepted"}},
                                {"unix-scm", {"scm_rights"}},
                                {"inotify-queued", {"unread events"}},
                                {"fanotify-queued", {"fanotify instance holds"}},
                                {"epoll-closed", {"closed or replaced"}},
                                {"exec-shared-write", {"shared writable mapping of the executable file"}}};
  for (auto& k : kinds) {
    CAPTURE(k.kind);
    TempDir t;
    Dumpee d("ckpt_unsupported", {"--kind", k.kind});
    // The READY line: "kind=K fd=42 ..." or "kind=K tid=N" / "kind=K child=N"
    // / "kind=K addr=HEX".
    std::string where;
    for (const char* key : {"fd=", "tid=", "child=", "addr="}) {
      size_t p = d.ready_info().find(key);
      if (p != std::string::npos) {
        where = d.ready_info().substr(p + strlen(key));
        where = where.substr(0, where.find(' '));
        break;
      }
    }
    REQUIRE(!where.empty());
    auto r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", t / "img"});
    INFO("dump stderr: ", r.err);
    CHECK(r.status != 0);
    CHECK(r.status < 128);
    CHECK_MESSAGE(mentions(r.err, std::to_string(d.pid())), "the error does not name the pid");
    // The fd (or the child's pid) must be named; for a thread, naming the
    // process and the kind is enough.
    if (k.kind != "thread") CHECK_MESSAGE(mentions(r.err, where), "the error does not name ", where);
    bool kind_named = false;
    for (auto& wd : k.words) kind_named |= lower(r.err).find(wd) != std::string::npos;
    CHECK_MESSAGE(kind_named, "the error does not name the kind");
    CHECK_FALSE(fs::exists(t / "img/inventory.img"));
    CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), "after the refused dump: ", v.describe());
  }
}

// A unix socket connected to a socket the harness holds (outside the tree)
// is refused naming pid, fd, kind and the peer's inode; the process runs
// on. With --ext-unix-sk INODE the dump goes through: a stream socket is
// restored hung up (it reads end-of-file, as if that peer had closed its
// end), a datagram socket is connected to the peer's name again and its
// "after" arrives there.
TEST_CASE("cycle: a unix socket connected outside the tree is refused at dump; --ext-unix-sk restores it") {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    const bool dgram = type == SOCK_DGRAM;
    CAPTURE(dgram);
    TempDir t;
    std::string path = t / "outside.sock";
    int l = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE(l >= 0);
    REQUIRE(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    if (!dgram) REQUIRE(listen(l, 4) == 0);
    std::vector<std::string> args = {"--kind", "unix-outside", "--path", path};
    if (dgram) args.push_back("--dgram");
    Dumpee d("ckpt_unsupported", args);
    int held = dgram ? l : accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(held >= 0);
    struct stat st;
    REQUIRE(fstat(held, &st) == 0);
    std::string peer_ino = std::to_string(st.st_ino);
    auto r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", t / "img"});
    INFO("dump stderr: ", r.err);
    CHECK(r.status != 0);
    CHECK(mentions(r.err, std::to_string(d.pid())));
    CHECK(mentions(r.err, "42"));
    std::string says = std::string("unix ") + (dgram ? "dgram" : "stream") + " socket connected to a peer outside the tree";
    CHECK(lower(r.err).find(says) != std::string::npos);
    CHECK(mentions(r.err, peer_ino));
    CHECK_FALSE(fs::exists(t / "img/inventory.img"));
    CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));
    r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", t / "img2", "--ext-unix-sk", peer_ino});
    INFO("dump --ext-unix-sk stderr: ", r.err);
    REQUIRE(r.status == 0);
    const pid_t pid = d.pid();
    REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
    if (!dgram) close(held);
    auto rr = crtools({"restore", "-D", t / "img2", "-d"});
    INFO("restore stderr: ", rr.err);
    REQUIRE(rr.status == 0);
    REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
    Verdict v = terminate_and_collect(pid, d.output_path(), 60s);
    CHECK_MESSAGE(v.passed(), "after restore: ", v.describe());
    if (dgram) {
      char b[16] = {};
      CHECK(recv(l, b, sizeof b, MSG_DONTWAIT) == 5);
      CHECK(std::string(b) == "after");
    }
    close(l);
  }
}

// A process forked before its parent left the session (setsid): no fork
// order can put it back, so the dump refuses it, naming it, and the tree
// runs on with its sessions as they were.
TEST_CASE("cycle: a process whose parent left its session is refused at dump; the tree runs on") {
  TempDir t;
  Dumpee d("ckpt_unsupported", {"--kind", "left-session"});
  const pid_t x = ready_list(d.ready_info(), "child").at(0), y = ready_list(d.ready_info(), "grandchild").at(0);
  const std::string maps_x = read_text("/proc/" + std::to_string(x) + "/maps");
  auto r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", t / "img"});
  INFO("dump stderr: ", r.err);
  CHECK(r.status != 0);
  CHECK(r.status < 128);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK_MESSAGE(mentions(r.err, std::to_string(y)), "the error does not name the grandchild");
  CHECK_MESSAGE(mentions(r.err, std::to_string(x)), "the error does not name its parent");
  CHECK(lower(r.err).find("session") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "img/inventory.img"));
  CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));
  for (pid_t p : {x, y}) {
    CAPTURE(p);
    CHECK(proc_state(p) == 'S');
    CHECK(read_text("/proc/" + std::to_string(p) + "/status").find("TracerPid:\t0\n") != std::string::npos);
  }
  CHECK(read_text("/proc/" + std::to_string(x) + "/maps") == maps_x);
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), "after the refused dump: ", v.describe());
}

TEST_CASE("cycle: restore refuses a pid in use by a live process naming it and creates nothing") {
  for (bool det : {false, true}) {
    CAPTURE(det);
    TempDir t;
    Dumpee d("ckpt_counter");
    std::string ps = std::to_string(d.pid());
    auto r = crtools({"dump", "-t", ps, "-D", t / "img", "--leave-running"});
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    auto kids = children_of(getpid());
    std::vector<std::string> args = {crtools_path(), "restore", "-D", t / "img"};
    if (det) args.push_back("-d");
    Background rs(args);
    RunResult res = rs.wait(60s);
    INFO("restore stderr: ", res.err);
    CHECK(res.status != 0);
    CHECK(res.status > 0);
    CHECK(res.status < 128);
    CHECK_MESSAGE(mentions(res.err, ps), "the error does not name the pid");
    CHECK_MESSAGE(res.err.find("ckpt_counter") != std::string::npos, "the error does not name the holder");
    CHECK(children_of(getpid()) == kids);
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), "the holder after the refused restore: ", v.describe());
  }
}

TEST_CASE("cycle: restore refuses a pid held by an unreaped zombie and works once it is reaped") {
  TempDir t;
  Dumpee d("ckpt_heap");
  pid_t pid = d.pid();
  std::string ps = std::to_string(pid);
  auto r = crtools({"dump", "-t", ps, "-D", t / "img"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(wait_until([&] { return proc_state(pid) == 'Z'; }, 10s));  // killed, not reaped
  Background rs({crtools_path(), "restore", "-D", t / "img"});
  RunResult res = rs.wait(60s);
  INFO("restore stderr: ", res.err);
  CHECK(res.status != 0);
  CHECK(mentions(res.err, ps));
  CHECK(lower(res.err).find("zombie") != std::string::npos);
  CHECK(d.wait_exit(10s) == 128 + SIGKILL);
  Background again({crtools_path(), "restore", "-D", t / "img", "-d"});
  REQUIRE(again.wait(120s).status == 0);
  REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
  Verdict v = terminate_and_collect(pid, d.output_path(), 60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

TEST_CASE("cycle: restore of a tree refuses a non-root pid in use, names it and leaves nothing behind") {
  TempDir t;
  std::string wd = t / "wd", img = t / "img";
  fs::create_directory(wd);
  Dumpee::Options o;
  o.dir = wd;
  Dumpee d("ckpt_tree", o);
  const Tree tree = tree_of(d);
  const std::vector<pid_t> chain = ready_list(d.ready_info(), "chain");
  REQUIRE(chain.size() == 4);
  REQUIRE(tree.pids.size() == 11);
  const std::string exe = d.exe();
  struct Guard {
    std::vector<pid_t> pids;
    std::string exe;
    ~Guard() { kill_tree(pids, exe); }
  } guard{tree.pids, exe};
  INFO("tree: ", join(tree.pids));
  auto r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", img});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
  std::string bad = killed_tree_problems(tree, reap_pids(tree.others, 30s));
  REQUIRE_MESSAGE(bad == "", "after the dump: ", bad);

  // The deepest of the chain (created late whatever the order) is taken by a
  // sleep: ns_last_pid = victim - 1, then one fork.
  const pid_t victim = chain.back();
  INFO("victim pid ", victim);
  std::unique_ptr<Background> holder = hold_pid(victim);
  REQUIRE(wait_until([&] { return proc_exe(victim).find("sleep") != std::string::npos; }, 10s));
  const std::string sleep_exe = proc_exe(victim);

  // Found by the check before any task exists, and (the check skipped for
  // the test) only when the parent of the victim forks it, halfway through
  // the tree: every task made by then must be killed.
  for (int variant = 0; variant < 4; variant++) {
    bool det = variant & 1, midway = variant & 2;
    CAPTURE(det);
    CAPTURE(midway);
    auto kids_before = children_of(getpid());
    std::vector<std::string> args = {crtools_path(), "restore", "-D", img};
    // -v 2: cr-restore says how many tasks it killed (a debug line).
    if (midway) args.insert(args.begin(), {"/usr/bin/env", "CRTOOLS_TEST_SKIP_PID_CHECK=1"});
    if (midway) args.insert(args.end(), {"-v", "2"});
    if (det) args.push_back("-d");
    RunResult res;
    {
      Background rs(args);
      res = rs.wait(60s);
    }
    INFO("restore stderr: ", res.err);
    CHECK_MESSAGE(res.status != 0, "restore accepted a tree whose pid ", victim, " is taken");
    CHECK(res.status > 0);
    CHECK(res.status < 128);
    CHECK_MESSAGE(mentions(res.err, std::to_string(victim)), "the error does not name pid ", victim);
    // Halfway, the tasks made before the victim's parent failed were there
    // and are killed; before any task, none.
    if (midway) CHECK_MESSAGE(res.err.find("killed and reaped the") != std::string::npos, res.err);
    if (midway) CHECK_MESSAGE(res.err.find("killed and reaped the 0 ") == std::string::npos, res.err);
    // Every task it created is gone (reaped by it, or by us if it left
    // them to us), no pid of the tree runs the workload, the holder is
    // untouched, and no other process is left.
    std::vector<pid_t> rest;
    for (pid_t q : tree.pids)
      if (q != victim) rest.push_back(q);
    std::vector<int> sts = reap_pids(rest, 10s);
    for (size_t i = 0; i < rest.size(); i++)
      CHECK_MESSAGE(sts[i] != -2, "pid ", rest[i], " of the tree is there after the failed restore (state '",
                    proc_state(rest[i]), "', exe '", proc_exe(rest[i]), "')");
    CHECK(proc_exe(victim) == sleep_exe);
    CHECK(proc_state(victim) == 'S');
    std::vector<pid_t> running_workload;
    for (auto& e : fs::directory_iterator("/proc")) {
      std::string n = e.path().filename().string();
      if (!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit) && proc_exe(std::stoi(n)) == exe)
        running_workload.push_back(std::stoi(n));
    }
    CHECK_MESSAGE(running_workload.empty(), "processes running the workload after the failed restore: ",
                  join(running_workload));
    kill_tree(running_workload, exe);
    CHECK(children_of(getpid()) == kids_before);
  }

  // Once the pid is free the same images restore and verify.
  holder.reset();
  REQUIRE(wait_until([&] { return proc_state(victim) == 0; }, 10s));
  Background ok({crtools_path(), "restore", "-D", img, "-d"});
  RunResult res = ok.wait(120s);
  INFO("restore stderr: ", res.err);
  REQUIRE(res.status == 0);
  std::string missing;
  wait_until([&] { return (missing = not_restored(tree, d)).empty(); }, 30s);
  REQUIRE_MESSAGE(missing == "", missing);
  Verdict v = terminate_and_collect(tree.root, d.output_path(), 60s);
  CHECK_MESSAGE(v.passed(), v.describe(), "; output file: ", d.output());
}

// ------------------------------------------------------------ SysV shm

namespace {

// "key shmid" of every SysV shared memory segment (/proc/sysvipc/shm).
std::set<std::pair<long, long>> sysv_segments() {
  std::set<std::pair<long, long>> r;
  std::ifstream f("/proc/sysvipc/shm");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream is(line);
    long key, id;
    if (is >> key >> id) r.insert({key, id});
  }
  return r;
}

bool sysv_id_exists(long id) {
  for (auto& [k, i] : sysv_segments())
    if (i == id) return true;
  return false;
}

// "NAME=VALUE" of a READY line as a number (base 0: 0x... too); -1 if absent.
long ready_number(const std::string& info, const std::string& name) {
  size_t p = (" " + info).find(" " + name + "=");
  if (p == std::string::npos) return -1;
  return std::strtol(info.c_str() + p + name.size() + 1, nullptr, 0);
}

// A segment made at `id` with another key (shm_next_id from the test).
int make_segment_at(long id, key_t key, size_t size) {
  {
    std::ofstream f("/proc/sys/kernel/shm_next_id");
    f << id;
  }
  return shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
}

// Dump ckpt_sysvshm (killed): A, removed at dump, is gone with the tree; B
// stays, unattached.
struct SysvDumped {
  TempDir t;
  std::unique_ptr<Dumpee> d;
  Tree tree;
  long a = -1, b = -1;
  key_t key = 0;
  std::string img;
};

void dump_sysv(SysvDumped& s) {
  s.img = s.t / "img";
  s.d = std::make_unique<Dumpee>("ckpt_sysvshm");
  s.tree = tree_of(*s.d);
  s.a = ready_number(s.d->ready_info(), "a");
  s.b = ready_number(s.d->ready_info(), "b");
  s.key = static_cast<key_t>(ready_number(s.d->ready_info(), "key"));
  REQUIRE(s.a >= 0);
  REQUIRE(s.b >= 0);
  auto r = crtools({"dump", "-t", std::to_string(s.d->pid()), "-D", s.img});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(s.d->wait_exit(30s) == 128 + SIGKILL);
  std::string bad = killed_tree_problems(s.tree, reap_pids(s.tree.others, 30s));
  REQUIRE_MESSAGE(bad == "", "after the dump: ", bad);
  REQUIRE(wait_until([&] { return !sysv_id_exists(s.a); }, 10s));
  REQUIRE(sysv_id_exists(s.b));
}

// Restore -d, then the restored tree verifies itself (and removes B).
void restore_sysv_and_verify(SysvDumped& s) {
  Background ok({crtools_path(), "restore", "-D", s.img, "-d"});
  RunResult res = ok.wait(120s);
  INFO("restore stderr: ", res.err);
  REQUIRE(res.status == 0);
  REQUIRE(wait_restored(s.tree.root, s.d->exe(), s.d->cmdline(), 30s));
  Verdict v = terminate_and_collect(s.tree.root, s.d->output_path(), 60s);
  CHECK_MESSAGE(v.passed(), v.describe());
  CHECK_FALSE(sysv_id_exists(s.b));
}

}  // namespace

TEST_CASE("cycle: SysV shm: a restore finding a dumped id held by another segment is refused, creating nothing") {
  SysvDumped s;
  dump_sysv(s);
  // B's id now belongs to a segment of another key.
  REQUIRE(shmctl(static_cast<int>(s.b), IPC_RMID, nullptr) == 0);
  const key_t other = s.key ^ 0x00800000;
  int held = make_segment_at(s.b, other, 4096);
  REQUIRE_MESSAGE(held == s.b, "could not make a segment at id ", s.b, " (got ", held, ")");
  struct Cleanup {
    int id;
    ~Cleanup() { shmctl(id, IPC_RMID, nullptr); }
  } cleanup{held};
  auto before = sysv_segments();
  auto kids = children_of(getpid());
  for (bool det : {false, true}) {
    CAPTURE(det);
    std::vector<std::string> args = {crtools_path(), "restore", "-D", s.img};
    if (det) args.push_back("-d");
    Background rs(args);
    RunResult res = rs.wait(60s);
    INFO("restore stderr: ", res.err);
    CHECK(res.status > 0);
    CHECK(res.status < 128);
    CHECK_MESSAGE(mentions(res.err, std::to_string(s.b)), "the error does not name id ", s.b);
    CHECK_MESSAGE(std::count(res.err.begin(), res.err.end(), '\n') <= 1, "not one line: ", res.err);
    CHECK_MESSAGE(lower(res.err).find("ipcrm") != std::string::npos, "no remedy: ", res.err);
    CHECK(sysv_segments() == before);
    CHECK(children_of(getpid()) == kids);
    for (pid_t p : s.tree.pids) CHECK_MESSAGE(proc_state(p) == 0, "pid ", p, " exists after the refused restore");
  }
  // Once the id is free again the images restore (B made again with its id).
  shmctl(held, IPC_RMID, nullptr);
  restore_sysv_and_verify(s);
}

TEST_CASE("cycle: SysV shm: a restore failing midway removes the segments it made and leaves a reused one") {
  for (bool reuse_b : {false, true}) {
    CAPTURE(reuse_b);
    SysvDumped s;
    dump_sysv(s);
    if (!reuse_b) REQUIRE(shmctl(static_cast<int>(s.b), IPC_RMID, nullptr) == 0);
    auto before = sysv_segments();
    // The child's pid taken by a sleep: met only when the parent forks it
    // (the pid check skipped), after the segments are made.
    const pid_t victim = s.tree.others.at(0);
    std::unique_ptr<Background> holder = hold_pid(victim);
    auto kids = children_of(getpid());
    {
      Background rs({"/usr/bin/env", "CRTOOLS_TEST_SKIP_PID_CHECK=1", crtools_path(), "restore", "-D", s.img, "-v",
                     "2"});
      RunResult res = rs.wait(60s);
      INFO("restore stderr: ", res.err);
      CHECK(res.status > 0);
      CHECK(res.status < 128);
      CHECK_MESSAGE(mentions(res.err, std::to_string(victim)), "the error does not name pid ", victim);
      CHECK_MESSAGE(res.err.find("removed the") != std::string::npos, res.err);
    }
    CHECK(sysv_segments() == before);
    CHECK_FALSE(sysv_id_exists(s.a));
    CHECK(sysv_id_exists(s.b) == reuse_b);
    if (reuse_b) {
      struct shmid_ds ds;
      REQUIRE(shmctl(static_cast<int>(s.b), IPC_STAT, &ds) == 0);
      CHECK(ds.shm_nattch == 0);
      CHECK(ds.shm_perm.__key == s.key);
    }
    CHECK(children_of(getpid()) == kids);
    CHECK(proc_state(s.tree.root) == 0);
    holder.reset();
    REQUIRE(wait_until([&] { return proc_state(victim) == 0; }, 10s));
    restore_sysv_and_verify(s);
  }
}

// A dump of workload `name` refused because of the mapping whose address
// its READY line gives under `key`: one line naming the pid, that address
// and `why`; no image set; the process runs on untouched and verifies.
void check_mapping_refused(const std::string& name, const std::vector<std::string>& args, const std::string& key,
                           const std::string& why) {
  TreeWorkload w(name, args);  // (a failed check kills its child too)
  Dumpee& d = w.d;
  long addr = ready_number(d.ready_info(), key);
  REQUIRE(addr > 0);
  char hex[32];
  snprintf(hex, sizeof hex, "%#lx", addr);
  auto r = crtools({"dump", "-t", std::to_string(d.pid()), "-D", w.img});
  INFO("dump stderr: ", r.err);
  CHECK(r.status > 0);
  CHECK(r.status < 128);
  CHECK_MESSAGE(mentions(r.err, std::to_string(d.pid())), "the error does not name the pid");
  CHECK_MESSAGE(r.err.find(hex) != std::string::npos, "the error does not name address ", hex);
  CHECK_MESSAGE(r.err.find(why) != std::string::npos, "the error does not say '", why, "'");
  CHECK_MESSAGE(std::count(r.err.begin(), r.err.end(), '\n') <= 1, "not one line: ", r.err);
  CHECK_FALSE(fs::exists(w.img + "/inventory.img"));
  CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), "after the refused dump: ", v.describe());
}

TEST_CASE("cycle: SysV shm: a partly unmapped attach is refused at dump naming pid, address and kind; the tree runs on") {
  check_mapping_refused("ckpt_sysvshm", {"--partial"}, "partial", "SysV shared memory");
}

// A shared memory object over the 1 TiB bound (a sparse 2 TiB memfd with one
// page mapped) is refused at dump naming pid, address and size; the tree
// runs on.
TEST_CASE("cycle: a shared memory object over 1 TiB is refused at dump naming pid and address; the tree runs on") {
  check_mapping_refused("ckpt_memfd", {"--over-limit"}, "huge", "2048 GiB is larger than the 1024 GiB");
}

// A dump that fails after part of the tree is collected: the root (python)
// is seized, its memory written and its parasite run and removed; then its
// child holds a raw ICMP socket, which is refused. Both must run on as before:
// not traced, not stopped, the same mappings (no parasite left), no image
// set left, and the pair still talks (the root checks it, then PASS).
TEST_CASE("cycle: a tree whose child holds an unsupported fd is refused; the whole tree runs on untouched") {
  const char* script = R"PY(
import os, signal, socket
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
r, w = os.pipe()
r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    os.close(w); os.close(r2)
    while True:
        b = os.read(r, 1)
        if not b:
            os._exit(0)
        os.write(w2, b.upper())
os.close(r); os.close(w2)
os.write(3, ('READY pids=%d,%d\n' % (os.getpid(), pid)).encode()); os.close(3)
signal.sigwait({signal.SIGTERM})
os.write(w, b'x')
ok = os.read(r2, 1) == b'X'
os.close(w)
_, st = os.waitpid(pid, 0)
print('PASS' if ok and st == 0 else 'FAIL: child answered %s, ended with %d' % (ok, st))
)PY";
  TempDir t;
  Dumpee d("/usr/bin/python3", Dumpee::Options{{"-c", script}});
  const std::vector<pid_t> pids = ready_list(d.ready_info(), "pids");
  REQUIRE(pids.size() == 2);
  std::vector<std::string> maps_before;
  for (pid_t p : pids) maps_before.push_back(proc_maps(p));
  auto r = crtools({"dump", "-t", std::to_string(pids[0]), "-D", t / "img"});
  INFO("dump stderr: ", r.err);
  CHECK(r.status == 1);
  CHECK(lines_in(r.err) == 1);
  CHECK(mentions(r.err, std::to_string(pids[1])));
  CHECK(lower(r.err).find("socket") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "img/inventory.img"));
  for (size_t i = 0; i < pids.size(); i++) {
    CAPTURE(pids[i]);
    CHECK_MESSAGE(untouched_problem(pids[i]) == "", untouched_problem(pids[i]));
    CHECK_MESSAGE(proc_maps(pids[i]) == maps_before[i], "the mappings changed: a parasite or scratch area left");
  }
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

TEST_CASE("cycle: restore -t checks the root pid recorded in the images") {
  TempDir t;
  Dumpee d("ckpt_counter");
  pid_t pid = d.pid();
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", t / "img"});
  REQUIRE(r.status == 0);
  REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
  pid_t wrong = pid + 1;
  expect_refused({crtools_path(), "restore", "-D", t / "img", "-t", std::to_string(wrong)}, pid, d.exe(),
                 "/dev/null", "restore -t with another pid");
  Background ok({crtools_path(), "restore", "-D", t / "img", "-t", std::to_string(pid), "-d"});
  RunResult res = ok.wait(120s);
  INFO("restore stderr: ", res.err);
  REQUIRE(res.status == 0);
  REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
  CHECK(terminate_and_collect(pid, d.output_path(), 60s).passed());
}

// Each file of the set at `img` whose name starts with one of `prefixes`,
// in turn a byte flipped, cut in half, or removed (in a copy of the set):
// the restore is refused before any process with `pid` exists (and, with
// `named`, the error names that file). How many files were damaged.
int refuse_each_damage(const std::string& img, const TempDir& t, pid_t pid, const std::string& exe,
                       const std::vector<std::string>& prefixes, bool named) {
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(img)) {
    std::string f = e.path().filename().string();
    for (auto& p : prefixes)
      if (f.rfind(p, 0) == 0) {
        files.push_back(f);
        break;
      }
  }
  std::sort(files.begin(), files.end());
  int n = 0;
  for (auto& f : files) {
    for (const char* how : {"flip", "truncate", "remove"}) {
      std::string bad = t / ("bad-" + std::to_string(n++));
      fs::copy(img, bad);
      std::string p = bad + "/" + f;
      uint64_t size = fs::file_size(p);
      if (std::string(how) == "flip") {
        if (size == 0) continue;
        flip_byte(p, size / 2);
      } else if (std::string(how) == "truncate") {
        if (size == 0) continue;
        fs::resize_file(p, size / 2);
      } else {
        fs::remove(p);
      }
      RunResult r = expect_refused({crtools_path(), "restore", "-D", bad}, pid, exe, "/dev/null", std::string(how) + " " + f);
      if (named) CHECK_MESSAGE(r.err.find(f) != std::string::npos, how, " ", f, ": the error does not name it: ", r.err);
      fs::remove_all(bad);
    }
  }
  return static_cast<int>(files.size());
}

// The page images of shared memory objects (memfds mapped shared and
// private) and of SysV segments: damaged, missing or cut short, the restore
// is refused naming the file before any process (or segment) is made; the
// intact set restores.
TEST_CASE("cycle: damaged page images of shared memory objects and SysV segments are refused before any process exists") {
  for (const char* wl : {"ckpt_memfd", "ckpt_sysvshm"}) {
    CAPTURE(wl);
    TreeWorkload w(wl, std::string(wl) == "ckpt_sysvshm" ? std::vector<std::string>{"--big-mib=8"}
                                                        : std::vector<std::string>{});
    auto r = crtools({"dump", "-t", std::to_string(w.tree.root), "-D", w.img});
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    REQUIRE(w.d.wait_exit(30s) == 128 + SIGKILL);
    reap_pids(w.tree.others, 30s);
    int n = refuse_each_damage(w.img, w.t, w.tree.root, w.d.exe(),
                               {"pagemap-shmem-", "pages-shmem-", "pagemap-sysv-", "pages-sysv-"}, true);
    CHECK(n >= 4);
    auto rr = crtools({"restore", "-D", w.img, "-d"});
    INFO("restore stderr: ", rr.err);
    REQUIRE(rr.status == 0);
    for (pid_t p : w.tree.live()) REQUIRE(wait_restored(p, w.d.exe(), w.d.cmdline(), 30s));
    Verdict v = terminate_and_collect(w.tree.root, w.d.output_path(), 60s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }
}

TEST_CASE("cycle: truncated or corrupted or missing images are refused before any process exists") {
  TempDir t;
  Dumpee d("ckpt_memory", {"--big-mib", "8"});
  pid_t pid = d.pid();
  std::string img = t / "img";
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);

  REQUIRE(refuse_each_damage(img, t, pid, d.exe(), {""}, false) >= 3);
  // The intact set still restores: the refusals were about the damage.
  {
    Background ok({crtools_path(), "restore", "-D", img, "-d"});
    RunResult res = ok.wait(120s);
    INFO("restore stderr: ", res.err);
    REQUIRE(res.status == 0);
    REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
    Verdict v = terminate_and_collect(pid, d.output_path(), 60s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }

  // The stream form (-D -), as cr-dump writes it: cut short, or a byte
  // flipped in the middle (in the page data, which is most of it).
  Dumpee d2("ckpt_memory", {"--big-mib", "8"});
  pid_t pid2 = d2.pid();
  std::string tar = t / "img.tar";
  auto sr = run({"/bin/bash", "-c", shq(crtools_path()) + " dump -t " + std::to_string(pid2) + " -D - > " + shq(tar)});
  INFO("stream dump stderr: ", sr.err);
  REQUIRE(sr.status == 0);
  REQUIRE(d2.wait_exit(30s) == 128 + SIGKILL);
  std::string cut = t / "cut.tar", flipped = t / "flipped.tar";
  fs::copy_file(tar, cut);
  fs::resize_file(cut, fs::file_size(tar) / 2);
  expect_refused({crtools_path(), "restore", "-D", "-"}, pid2, d2.exe(), cut, "truncated stream");
  fs::copy_file(tar, flipped);
  flip_byte(flipped, fs::file_size(tar) / 2 + 100);
  expect_refused({crtools_path(), "restore", "-D", "-"}, pid2, d2.exe(), flipped, "corrupted stream");
  Background ok2({crtools_path(), "restore", "-D", "-", "-d"}, tar);
  RunResult res2 = ok2.wait(120s);
  INFO("stream restore stderr: ", res2.err);
  REQUIRE(res2.status == 0);
  REQUIRE(wait_restored(pid2, d2.exe(), d2.cmdline(), 30s));
  Verdict v2 = terminate_and_collect(pid2, d2.output_path(), 60s);
  CHECK_MESSAGE(v2.passed(), v2.describe());
}

TEST_CASE("cycle: a file that changed size or was replaced since the dump is refused at restore") {
  for (const char* change : {"grown", "replaced"}) {
    std::string what_changed = change;
    CAPTURE(what_changed);
    TempDir t;
    std::string wd = t / "wd";
    fs::create_directory(wd);
    Dumpee::Options o;
    o.dir = wd;
    Dumpee d("ckpt_files", o);
    pid_t pid = d.pid();
    auto r = crtools({"dump", "-t", std::to_string(pid), "-D", t / "img"});
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
    std::string victim = std::string(change) == "grown" ? "append.log" : "ro.dat";
    std::string path = wd + "/" + victim;
    if (std::string(change) == "grown") {
      std::ofstream(path, std::ios::app) << "more";
    } else {
      // Same size and bytes, another inode. (The old file is kept under
      // another name: deleted, its inode number could be reused at once.)
      std::string content = read_text(path);
      fs::rename(path, path + ".old");
      std::ofstream(path) << content;
      REQUIRE(fs::file_size(path) == content.size());
    }
    // (Files are checked when they are opened, which may be in the new task:
    // a process may exist for a moment, but none may be left.)
    RunResult res = expect_refused({crtools_path(), "restore", "-D", t / "img"}, pid, d.exe(), "/dev/null", victim, false);
    CHECK_MESSAGE(res.err.find(victim) != std::string::npos, "the error does not name ", victim, ": ", res.err);
    // Asked to go ahead anyway (cr-restore --skip-file-check), it restores.
    Background forced({crtools_path(), "restore", "-D", t / "img", "--skip-file-check", "-d"});
    RunResult fr = forced.wait(120s);
    INFO("forced restore stderr: ", fr.err);
    REQUIRE(fr.status == 0);
    REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
    Verdict v = terminate_and_collect(pid, d.output_path(), 60s);
    // The workload checks each file's identity (dev/inode), so after
    // "replaced" it must notice fd 100 (ro.dat) is another file; after
    // "grown" only append.log's size differs, which it does not check.
    if (std::string(change) == "grown") CHECK_MESSAGE(v.passed(), v.describe());
    else CHECK_MESSAGE(v.line.find("fd 100: dev/ino/mode") != std::string::npos, v.describe());
  }
}

// A file mapped shared and writable that became executable since the dump:
// the restore would open a program for writing (every exec of it failing
// with ETXTBSY meanwhile); refused before any process, naming it.
TEST_CASE("cycle: a shared writable mapping of a file made executable since the dump is refused at restore") {
  TempDir t;
  std::string wd = t / "wd";
  fs::create_directory(wd);
  Dumpee::Options o;
  o.dir = wd;
  Dumpee d("ckpt_filemap", o);
  pid_t pid = d.pid();
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", t / "img"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
  const std::string shared = wd + "/filemap-shared.dat";
  fs::permissions(shared, fs::perms::owner_exec, fs::perm_options::add);
  RunResult res = expect_refused({crtools_path(), "restore", "-D", t / "img"}, pid, d.exe(), "/dev/null",
                                 "filemap-shared.dat");
  CHECK_MESSAGE(res.err.find("executable file mapped shared and writable") != std::string::npos, res.err);
  // Not executable again: it restores, and the workload checks its mappings.
  fs::permissions(shared, fs::perms::owner_exec, fs::perm_options::remove);
  Background back({crtools_path(), "restore", "-D", t / "img", "-d"});
  RunResult br = back.wait(120s);
  INFO("restore stderr: ", br.err);
  REQUIRE(br.status == 0);
  REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
  Verdict v = terminate_and_collect(pid, d.output_path(), 60s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

// ------------------------------------------------------------------ failed dumps

TEST_CASE("cycle: a dump into a full filesystem fails cleanly and the process runs on") {
  TempDir t;
  SmallTmpfs small(t / "small", "1m");
  REQUIRE_MESSAGE(small.ok(), "mount tmpfs: ", strerror(errno));
  Dumpee d("ckpt_memory");  // 64 MiB of random data: cannot fit
  std::string ps = std::to_string(d.pid());
  auto r = crtools({"dump", "-t", ps, "-D", t / "small/img"});
  INFO("dump stderr: ", r.err);
  CHECK(r.status != 0);
  CHECK(r.status < 128);
  CHECK(lines_in(r.err) >= 1);
  CHECK_MESSAGE(lower(r.err).find("space") != std::string::npos, "the error does not say the disk is full");
  CHECK_FALSE(fs::exists(t / "small/img/inventory.img"));
  CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));

  // The stream form into the same full filesystem.
  auto s = run({"/bin/bash", "-c", shq(crtools_path()) + " dump -t " + ps + " -D - > " + shq(t / "small/img.tar")});
  INFO("stream dump stderr: ", s.err);
  CHECK(s.status != 0);
  CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));

  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), "after the failed dumps: ", v.describe());
}

TEST_CASE("cycle: a dump into a stream whose reader goes away fails cleanly and the process runs on") {
  Dumpee d("ckpt_memory");
  std::string ps = std::to_string(d.pid());
  auto r = run({"/bin/bash", "-c",
                shq(crtools_path()) + " dump -t " + ps +
                    " -D - | head -c 10000 > /dev/null; echo \"dump status ${PIPESTATUS[0]}\" >&2"});
  INFO("dump stderr: ", r.err);
  size_t at = r.err.rfind("dump status ");
  REQUIRE(at != std::string::npos);
  int dump_status = std::stoi(r.err.substr(at + 12));
  CHECK_MESSAGE(dump_status != 0, "the dump did not notice");
  CHECK_MESSAGE(dump_status < 128, "cr-dump died of signal ", dump_status - 128, " instead of reporting the error");
  CHECK_MESSAGE(lines_in(r.err.substr(0, at)) >= 1, "cr-dump said nothing");
  CHECK_MESSAGE(untouched_problem(d.pid()) == "", untouched_problem(d.pid()));
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), "after the failed dump: ", v.describe());
}

// ---------------------------------------------------------------- TCP
//
// ckpt_tcp_echo serves one client outside the tree (this test) on the
// port of its READY line; the client checks every byte echoed back.

namespace {

int ready_port(const Dumpee& d) {
  auto p = ready_list(d.ready_info(), "port");
  REQUIRE(p.size() == 1);
  return p[0];
}


}  // namespace

// The client keeps ONE connection across the checkpoint: data before the
// dump, while the tree is frozen and dumped (it waits in the queues, or is
// dropped by the network lock and sent again), while the tree is gone, and
// after the restore; every byte of the echo is checked. The lock's nft
// table exists from the dump to the restore only. Through an image
// directory (restore -d) and through a pipe (dump -D - | restore -D - -d).
TEST_CASE("cycle: a TCP client outside the tree keeps its connection to a restored echo server (--tcp-established)") {
  for (bool pipeline : {false, true}) {
    CAPTURE(pipeline);
    TempDir t;
    Dumpee d("ckpt_tcp_echo");
    const pid_t pid = d.pid();
    const std::string ps = std::to_string(pid), cr = crtools_path();
    EchoClient c(ready_port(d));
    c.send_n(100000);
    REQUIRE(c.receive_all() == "");
    if (!pipeline) {
      Background dump({cr, "dump", "-t", ps, "-D", t / "img", "--tcp-established"});
      c.send_n(20000);  // during the dump
      RunResult dr = dump.wait(120s);
      INFO("dump stderr: ", dr.err);
      REQUIRE(dr.status == 0);
      CHECK(d.wait_exit(30s) == 128 + SIGKILL);
      CHECK_MESSAGE(net_lock_exists(pid), "no nft table inet crtools-", pid, " between dump and restore");
      c.send_n(30000);  // while the tree is gone
      RunResult rr = crtools({"restore", "-D", t / "img", "-d"});
      INFO("restore stderr: ", rr.err);
      REQUIRE(rr.status == 0);
    } else {
      Reaper reaper(pid);
      Background pipe({"/bin/bash", "-c",
                       "set -o pipefail; " + shq(cr) + " dump -t " + ps + " -D - --tcp-established | " + shq(cr) +
                           " restore -D - -d"});
      c.send_n(20000);
      CHECK(reaper.wait(120s) == 128 + SIGKILL);
      RunResult pr = pipe.wait(120s);
      INFO("pipeline stderr: ", pr.err);
      REQUIRE(pr.status == 0);
      c.send_n(30000);
    }
    REQUIRE(wait_restored(pid, d.exe(), d.cmdline(), 30s));
    CHECK_MESSAGE(!net_lock_exists(pid), "the nft table is still there after the restore");
    std::string bad = c.receive_all();
    CHECK_MESSAGE(bad == "", "the echo after restore: ", bad);
    c.send_n(100000);
    bad = c.receive_all();
    CHECK_MESSAGE(bad == "", "the echo of data sent after restore: ", bad);
    c.close_now();
    Verdict v = terminate_and_collect(pid, d.output_path(), 60s);
    CHECK_MESSAGE(v.passed(), v.describe(), "; output: ", d.output());
    CHECK(v.output.find("echoed " + std::to_string(c.sent()) + " bytes") != std::string::npos);
  }
}

// Without --tcp-established an established connection is refused naming
// pid, fd and the connection; with it but without nft (forced absent) the
// dump is refused saying so; a dump that fails after the lock was set (its
// stream's reader goes away) takes the sockets out of repair mode and
// deletes the table. Each time the tree runs on and the client's
// connection still echoes.
TEST_CASE("cycle: established TCP refused without --tcp-established or nft, and a failed dump undoes the lock; the connection goes on") {
  Dumpee d("ckpt_tcp_echo");
  const std::string ps = std::to_string(d.pid()), cr = crtools_path();
  EchoClient c(ready_port(d));
  c.send_n(5000);
  REQUIRE(c.receive_all() == "");
  TempDir t;
  RunResult r = crtools({"dump", "-t", ps, "-D", t / "img"});
  INFO("dump stderr: ", r.err);
  CHECK(r.status != 0);
  CHECK(r.status < 128);
  CHECK(lines_in(r.err) == 1);
  CHECK(mentions(r.err, ps));
  CHECK(r.err.find("established TCP connection 127.0.0.1:") != std::string::npos);
  CHECK(r.err.find("give --tcp-established") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "img/inventory.img"));
  CHECK(untouched_problem(d.pid()) == "");
  c.send_n(5000);
  CHECK(c.receive_all() == "");

  r = run({"/usr/bin/env", "CRTOOLS_FEATURES_ABSENT=nft-net-lock", cr, "dump", "-t", ps, "-D", t / "img2",
           "--tcp-established"});
  INFO("dump (no nft) stderr: ", r.err);
  CHECK(r.status != 0);
  CHECK(r.err.find("cannot lock the network") != std::string::npos);
  CHECK(r.err.find("nft-net-lock") != std::string::npos);
  CHECK_FALSE(net_lock_exists(d.pid()));
  CHECK(untouched_problem(d.pid()) == "");
  c.send_n(5000);
  CHECK(c.receive_all() == "");

  r = run({"/bin/bash", "-c",
           shq(cr) + " dump -t " + ps + " -D - --tcp-established | head -c 100 > /dev/null; echo \"dump status ${PIPESTATUS[0]}\" >&2"});
  INFO("dump (reader gone) stderr: ", r.err);
  size_t at = r.err.rfind("dump status ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoi(r.err.substr(at + 12)) != 0);
  CHECK_FALSE(net_lock_exists(d.pid()));
  CHECK(untouched_problem(d.pid()) == "");
  c.send_n(50000);
  std::string bad = c.receive_all();
  CHECK_MESSAGE(bad == "", "after the failed dump: ", bad);
  c.close_now();
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), "after the refused dumps: ", v.describe());
}

// dump --leave-running and dump -s with --tcp-established: the lock is
// gone when the dump ends and the connection goes on with the original.
TEST_CASE("cycle: dump --leave-running and -s with established TCP lift the lock; the original's connection goes on") {
  for (std::string mode : {"--leave-running", "-s"}) {
    CAPTURE(mode);
    Dumpee d("ckpt_tcp_echo");
    const std::string ps = std::to_string(d.pid());
    EchoClient c(ready_port(d));
    c.send_n(5000);
    REQUIRE(c.receive_all() == "");
    TempDir t;
    RunResult r = crtools({"dump", "-t", ps, "-D", t / "img", "--tcp-established", mode});
    INFO("dump stderr: ", r.err);
    REQUIRE(r.status == 0);
    CHECK_FALSE(net_lock_exists(d.pid()));
    if (mode == "-s") {
      REQUIRE(wait_until([&] { return proc_state(d.pid()) == 'T'; }, 10s));
      c.send_n(5000);  // queued while it is stopped
      kill(d.pid(), SIGCONT);
    } else {
      c.send_n(5000);
    }
    std::string bad = c.receive_all();
    CHECK_MESSAGE(bad == "", "after the dump: ", bad);
    c.close_now();
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), "the original after the dump: ", v.describe());
  }
}

// A restore that fails (the listener's port is taken meanwhile) kills what
// it made and deletes the network lock table: no rule is left behind.
TEST_CASE("cycle: a failed restore of established TCP connections leaves no nft rule behind") {
  Dumpee d("ckpt_tcp_echo");
  const pid_t pid = d.pid();
  const int port = ready_port(d);
  EchoClient c(port);
  c.send_n(5000);
  REQUIRE(c.receive_all() == "");
  TempDir t;
  RunResult r = crtools({"dump", "-t", std::to_string(pid), "-D", t / "img", "--tcp-established"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  REQUIRE(d.wait_exit(30s) == 128 + SIGKILL);
  REQUIRE(net_lock_exists(pid));
  int squat = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(squat >= 0);
  REQUIRE(bind(squat, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(squat, 1) == 0);
  RunResult rr = crtools({"restore", "-D", t / "img"});
  close(squat);
  INFO("restore stderr: ", rr.err);
  CHECK(rr.status != 0);
  CHECK(rr.err.find("bind") != std::string::npos);
  CHECK_FALSE(pid_alive(pid));
  CHECK_FALSE(net_lock_exists(pid));
  RunResult rules = run({"/usr/sbin/nft", "list", "ruleset"});
  CHECK_MESSAGE(rules.out.find("crtools-" + std::to_string(pid)) == std::string::npos, "nft ruleset: ", rules.out);
}
