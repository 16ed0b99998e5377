// Self-test of the dumpee workloads (test/workloads/ckpt_*.c) and of the
// harness that runs them, without any checkpoint:
//  - every workload, left alone, verifies PASS (so a FAIL after a restore is
//    the restore's doing);
//  - every workload, told to disturb its own state after READY
//    (--selftest-corrupt), verifies FAIL and names what it disturbed (so its
//    checks can fail at all);
//  - at READY a dumpee holds only what issue 5 can checkpoint: no pipe,
//    socket or anon-inode fd, one thread, no child, its own session;
//  - the tree and thread workloads (ckpt_tree, ckpt_threads, ckpt_pipes)
//    have the shape their READY line says (pids, groups, sessions, zombies,
//    tids), verify PASS left alone and FAIL under --selftest-corrupt, and
//    leave no process behind after their verdict;
//  - the harness collects a verdict from a process that is not its direct
//    child (the shapes a restored process comes in: a grandchild under an
//    attached cr-restore, an orphan reparented to us after restore -d).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/types.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "test/integration/harness.h"

using namespace harness;
using namespace std::chrono_literals;

namespace {

struct Case {
  std::string name;
  std::vector<std::string> args;
  // Phrases the FAIL line must contain under --selftest-corrupt.
  std::vector<std::string> corrupt_says;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"ckpt_counter", {}, {"stack copy diverged", ".bss buffer checksum changed"}},
      {"ckpt_regs", {}, {"r13=", "mm5 differs from byte 0", "mxcsr", "__thread variable"}},
      {"ckpt_memory", {}, {"ro: maps line", "big: checksum", "sparse: 1 pages differ"}},
      {"ckpt_heap", {}, {"program break", "[heap] line", "block 7"}},
      {"ckpt_filemap", {}, {"private mapping page 2 differs", "shared marker lost"}},
      {"ckpt_madvise", {}, {"dd: VmFlags", "rr: VmFlags"}},
      {"ckpt_vdso", {}, {"vdso/vvar mappings"}},
      {"ckpt_mmfields", {}, {"/proc/self/cmdline"}},
      {"ckpt_signals", {}, {"sigaction(12)", "pending SIGQUIT not delivered", "SA_NODEFER"}},
      {"ckpt_itimer", {}, {"ITIMER_REAL interval", "ITIMER_VIRTUAL interval", "stopped firing"}},
      {"ckpt_task", {}, {"RLIMIT_NOFILE", "umask", "cwd", "comm", "rseq: not registered", "robust list"}},
      {"ckpt_task", {"--creds"}, {"RLIMIT_NOFILE", "umask"}},
      {"ckpt_files", {}, {"fd 7: F_GETFL", "fd 20: offset", "fd 100: '/dev/null'", "fd 23: F_GETFD"}},
  };
  return c;
}

const std::vector<std::string>& unsupported_kinds() {
  static const std::vector<std::string> k = {"socket", "inet", "unix-scm", "eventfd", "pipe", "epoll", "epoll-closed", "inotify", "inotify-queued", "fanotify-queued", "deleted-file", "thread", "child",
                                             "left-session"};
  return k;
}

std::string label(const Case& c) {
  std::string s = c.name;
  for (auto& a : c.args) s += " " + a;
  return s;
}

// What a checkpoint of issue 5 could not take: any pipe/socket/anon-inode
// fd, fd 3 (the ready channel), a second thread, a child, a foreign session.
std::string protocol_problems(pid_t pid) {
  std::string p, base = "/proc/" + std::to_string(pid);
  for (auto& e : std::filesystem::directory_iterator(base + "/fd")) {
    std::error_code ec;
    std::string l = std::filesystem::read_symlink(e.path(), ec).string();
    std::string fd = e.path().filename().string();
    if (fd == "3") p += "fd 3 still open; ";
    if (l.rfind("pipe:", 0) == 0 || l.rfind("socket:", 0) == 0 || l.rfind("anon_inode:", 0) == 0)
      p += "fd " + fd + " is " + l + "; ";
  }
  int threads = 0;
  for (auto& e : std::filesystem::directory_iterator(base + "/task")) (void)e, threads++;
  if (threads != 1) p += std::to_string(threads) + " threads; ";
  if (!children_of(pid).empty()) p += "has children; ";
  std::string st = read_text(base + "/stat");
  std::istringstream in(st.substr(st.rfind(')') + 2));
  std::string state, ppid, pgrp, sid;
  in >> state >> ppid >> pgrp >> sid;
  if (pgrp != std::to_string(pid) || sid != std::to_string(pid)) p += "pgrp " + pgrp + " sid " + sid + "; ";
  return p;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

}  // namespace

TEST_CASE("workload selftest: every ckpt workload verifies PASS when left alone") {
  for (auto& c : cases()) {
    CAPTURE(label(c));
    Dumpee d(c.name, c.args);
    CHECK_MESSAGE(protocol_problems(d.pid()) == "", "holds state issue 5 cannot dump");
    CHECK(d.output() == "");  // nothing written before SIGTERM
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }
}

TEST_CASE("workload selftest: every ckpt workload detects its own corruption") {
  for (auto& c : cases()) {
    CAPTURE(label(c));
    Dumpee d(c.name, with(c.args, {"--selftest-corrupt"}));
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.exited, v.describe());
    CHECK_MESSAGE(v.status == 1, v.describe());
    REQUIRE_MESSAGE(v.line.rfind("FAIL: ", 0) == 0, v.describe());
    for (auto& phrase : c.corrupt_says) CHECK_MESSAGE(v.line.find(phrase) != std::string::npos, phrase, " not in ", v.line);
    if (c.name == "ckpt_regs") {
      // The corruption reaches every register file the CPU has.
      std::string vec = d.ready_info().substr(0, 3);
      CHECK_MESSAGE(v.line.find(vec + "5 differs from byte 0") != std::string::npos, v.line);
      if (vec != "xmm") CHECK_MESSAGE(v.line.find(vec + "6 differs from byte 19") != std::string::npos, v.line);
      if (vec == "zmm") {
        CHECK_MESSAGE(v.line.find("k3=") != std::string::npos, v.line);
        CHECK_MESSAGE(v.line.find("zmm9 differs from byte 33") != std::string::npos, v.line);
        CHECK_MESSAGE(v.line.find("zmm20 differs from byte 40") != std::string::npos, v.line);
      }
    }
  }
}

TEST_CASE("workload selftest: --spin waits in user code and still verifies") {
  for (std::string w : {"ckpt_memory", "ckpt_heap", "ckpt_signals", "ckpt_files", "ckpt_task", "ckpt_mmfields"}) {
    CAPTURE(w);
    Dumpee d(w, {"--spin"});
    CHECK(wait_until([&] { return proc_state(d.pid()) == 'R'; }, 10s));
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), v.describe());
    Dumpee bad(w, {"--spin", "--selftest-corrupt"});
    Verdict b = bad.verdict(60s);
    CHECK_MESSAGE(b.line.rfind("FAIL: ", 0) == 0, b.describe());
  }
}

TEST_CASE("workload selftest: ckpt_memory takes --big-mib and checks all of it") {
  Dumpee d("ckpt_memory", {"--big-mib", "200"});
  CHECK(d.ready_info().find("big=200MiB") != std::string::npos);
  Verdict v = d.verdict(120s);
  CHECK_MESSAGE(v.passed(), v.describe());
}

TEST_CASE("workload selftest: ckpt_counter --print counts on screen") {
  Dumpee d("ckpt_counter", {"--print"});
  // Its own output is the handshake: one tick a second.
  CHECK(wait_until([&] { return d.output().find("tick 1 counter ") != std::string::npos; }, 10s));
  Verdict v = d.verdict(60s);
  CHECK_MESSAGE(v.passed(), v.describe());
  CHECK(v.output.find("at SIGTERM") != std::string::npos);
}

TEST_CASE("workload selftest: ckpt_unsupported holds what it says and verifies") {
  for (auto& k : unsupported_kinds()) {
    CAPTURE(k);
    Dumpee d("ckpt_unsupported", {"--kind", k});
    CHECK(d.ready_info().rfind("kind=" + k + " ", 0) == 0);
    std::string base = "/proc/" + std::to_string(d.pid());
    std::error_code ec;
    std::string l42 = std::filesystem::read_symlink(base + "/fd/42", ec).string();
    if (k == "socket" || k == "inet" || k == "unix-scm") CHECK(l42.rfind("socket:", 0) == 0);
    if (k == "pipe") CHECK(l42.rfind("pipe:", 0) == 0);
    if (k == "eventfd") CHECK(l42 == "anon_inode:[eventfd]");
    if (k == "epoll" || k == "epoll-closed") CHECK(l42 == "anon_inode:[eventpoll]");
    if (k == "inotify" || k == "inotify-queued") CHECK(l42 == "anon_inode:inotify");
    if (k == "fanotify-queued") CHECK(l42 == "anon_inode:[fanotify]");
    if (k == "deleted-file") CHECK(l42.find(" (deleted)") != std::string::npos);
    if (k == "thread") CHECK(protocol_problems(d.pid()).find("2 threads") != std::string::npos);
    if (k == "child" || k == "left-session") CHECK(children_of(d.pid()).size() == 1);
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), v.describe());
    Dumpee bad("ckpt_unsupported", {"--kind", k, "--selftest-corrupt"});
    Verdict b = bad.verdict(60s);
    CHECK_MESSAGE(b.line.rfind("FAIL: ", 0) == 0, b.describe());
  }
}

TEST_CASE("workload selftest: a workload that fails before READY is reported with its output") {
  bool threw = false;
  try {
    Dumpee d("ckpt_unsupported", std::vector<std::string>{});  // no --kind
  } catch (const std::exception& e) {
    threw = true;
    std::string m = e.what();
    CHECK_MESSAGE(m.find("ckpt_unsupported") != std::string::npos, m);
    CHECK_MESSAGE(m.find("SETUP: --kind") != std::string::npos, m);
  }
  CHECK(threw);
}

TEST_CASE("workload selftest: the dumpee's fds and cwd and session") {
  TempDir t;
  Dumpee::Options o;
  o.dir = t.path();
  Dumpee d("ckpt_counter", o);
  std::string base = "/proc/" + std::to_string(d.pid());
  auto link = [&](const char* fd) { return std::filesystem::read_symlink(base + "/fd/" + fd).string(); };
  CHECK(link("0") == "/dev/null");
  CHECK(link("1") == d.output_path());
  CHECK(link("2") == d.output_path());
  CHECK(d.output_path() == t / "ckpt_counter.out");
  std::string info = read_text(base + "/fdinfo/1");
  auto flags = std::stoul(info.substr(info.find("flags:") + 6), nullptr, 8);
  CHECK((flags & O_APPEND) != 0);
  CHECK(std::filesystem::read_symlink(base + "/cwd").string() == t.path());
  CHECK(protocol_problems(d.pid()) == "");
  CHECK(d.exe() == workload_path("ckpt_counter"));
  CHECK(d.cmdline() == d.exe() + std::string(1, '\0'));
  CHECK(d.wait_restored(1s));  // it is what it was
  CHECK_FALSE(wait_restored(d.pid(), d.exe(), "something else", 0s));
}

TEST_CASE("workload selftest: verdict of a grandchild whose parent waits (attached restore shape)") {
  Dumpee::Options o;
  o.wrapper = {"/bin/sh", "-c", "\"$@\" & echo PID $! >&3; exec 3>&-; wait $!", "sh"};
  {
    Dumpee d("ckpt_heap", o);
    REQUIRE(d.wrapper_pid() > 0);
    CHECK(d.pid() != d.wrapper_pid());
    CHECK(children_of(d.wrapper_pid()) == std::vector<pid_t>{d.pid()});
    Verdict v = terminate_and_collect(d.pid(), d.output_path(), d.wrapper_pid(), 60s);
    CHECK_MESSAGE(v.passed(), v.describe());
    CHECK(v.status == 0);
  }
  {
    o.args = {"--selftest-corrupt"};
    Dumpee d("ckpt_heap", o);
    Verdict v = terminate_and_collect(d.pid(), d.output_path(), d.wrapper_pid(), 60s);
    CHECK(v.status == 1);
    CHECK(v.line.rfind("FAIL: ", 0) == 0);
  }
  {
    // Not waiting for the parent: the pid vanishes (reaped by sh) or stays a
    // zombie for a moment; the verdict comes from the output file.
    o.args = {};
    Dumpee d("ckpt_heap", o);
    Verdict v = terminate_and_collect(d.pid(), d.output_path(), 60s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }
  {
    // The same through a Background parent (how an attached cr-restore runs).
    TempDir t;
    std::string out = t / "w.out";
    std::string script = "exec 3>/dev/null; \"$@\" >>" + out + " 2>&1 & echo $! > " + (t / "pid") + "; wait $!";
    Background bg({"/bin/sh", "-c", script, "sh", workload_path("ckpt_heap")});
    REQUIRE(wait_until([&] { return read_text(t / "pid").find('\n') != std::string::npos; }, 10s));
    pid_t pid = std::stoi(read_text(t / "pid"));
    // fd 3 is /dev/null here, so READY goes nowhere; the workload closes fd 3
    // right after it, which is what we wait for.
    std::string fd3 = "/proc/" + std::to_string(pid) + "/fd/3";
    CHECK(wait_until([&] { return access(fd3.c_str(), F_OK) != 0; }, 10s));
    Verdict v = terminate_and_collect(pid, out, bg, 60s);
    CHECK_MESSAGE(v.passed(), v.describe());
    CHECK(v.status == 0);
  }
}

TEST_CASE("workload selftest: verdict of an orphan reparented to us (restore -d shape)") {
  Dumpee::Options o;
  o.wrapper = {"/bin/sh", "-c", "\"$@\" & echo PID $! >&3; exit 0", "sh"};
  Dumpee d("ckpt_signals", o);
  CHECK(d.wait_wrapper(10s) == 0);
  // The workload's parent is now the test binary, the child subreaper.
  std::string st = read_text("/proc/" + std::to_string(d.pid()) + "/stat");
  std::istringstream in(st.substr(st.rfind(')') + 2));
  std::string state;
  pid_t ppid = 0;
  in >> state >> ppid;
  CHECK(ppid == getpid());
  Verdict v = terminate_and_collect(d.pid(), d.output_path(), 60s);
  CHECK_MESSAGE(v.passed(), v.describe());
  CHECK(v.status == 0);  // we reaped it: the status is known
}

TEST_CASE("workload selftest: Background runs a command with only fds 0-2") {
  Background bg({"/bin/sh", "-c", "echo out; echo err >&2; ls /proc/$$/fd; exit 3"});
  RunResult r = bg.wait(30s);
  CHECK(r.status == 3);
  CHECK(r.out == "out\n0\n1\n2\n");
  CHECK(r.err == "err\n");
  CHECK_FALSE(bg.running());
}

// ------------------------------------------------------------------ trees
//
// The tree and thread workloads (ckpt_tree, ckpt_threads, ckpt_pipes) hold
// what the single-process protocol above forbids: children, threads, pipes.
// Their READY line lists every pid (pids=) or tid (tids=).

namespace {

struct TreeCase {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> corrupt_says;  // in the FAIL line
  std::vector<std::string> corrupt_output;  // anywhere in the output (children's own lines)
};

const std::vector<TreeCase>& tree_cases() {
  static const std::vector<TreeCase> c = {
      {"ckpt_tree", {}, {"(plain) exited with status 1", "(chain) exited with status 1"},
       {"(plain): pgid", "(chain): memory: shared part differs at offset 100"}},
      {"ckpt_tree", {"--zombie"}, {"(plain) exited with status 1"}, {"(plain): pgid"}},
      {"ckpt_tree", {"--fan=20"}, {"(chain) exited with status 1"}, {"(plain): pgid"}},
      {"ckpt_threads", {}, {"comm 'corrupted' was 'ckth-1'", "thread 2", "signal mask"}, {}},
      {"ckpt_threads", {"--threads=50"}, {"comm 'corrupted' was 'ckth-1'", "signal mask"}, {}},
      {"ckpt_pipes", {}, {"fd 20: offset 3334", "exited with status 1"}, {"pipe A (fd 31): read 2499 bytes"}},
  };
  return c;
}

std::string label(const TreeCase& c) {
  std::string s = c.name;
  for (auto& a : c.args) s += " " + a;
  return s;
}

// pid, ppid, pgrp, sid and state of a process (from /proc/PID/stat).
struct Stat {
  char state = 0;
  pid_t ppid = -1, pgrp = -1, sid = -1;
};
Stat stat_of(pid_t pid) {
  Stat s;
  std::string st = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t p = st.rfind(')');
  if (p == std::string::npos) return s;
  std::istringstream in(st.substr(p + 2));
  std::string state;
  in >> state >> s.ppid >> s.pgrp >> s.sid;
  s.state = state.empty() ? 0 : state[0];
  return s;
}

// Everything a tree workload holds at READY that it should not: fd 3, and a
// pipe except in ckpt_pipes.
std::string tree_fd_problems(pid_t pid, bool pipes_allowed) {
  std::string p;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::string l = std::filesystem::read_symlink(e.path(), ec).string();
    std::string fd = e.path().filename().string();
    if (fd == "3") p += "pid " + std::to_string(pid) + ": fd 3 still open; ";
    if ((!pipes_allowed && l.rfind("pipe:", 0) == 0) || l.rfind("socket:", 0) == 0 || l.rfind("anon_inode:", 0) == 0)
      p += "pid " + std::to_string(pid) + ": fd " + fd + " is " + l + "; ";
  }
  return p;
}

// The tree: each pid of `pids=` still ends at the end of the case.
struct TreeGuard {
  std::vector<pid_t> pids;
  std::string exe;
  ~TreeGuard() { kill_tree(pids, exe); }
};

}  // namespace

TEST_CASE("workload selftest: tree and thread workloads hold their shape and verify PASS") {
  for (auto& c : tree_cases()) {
    CAPTURE(label(c));
    TempDir t;
    Dumpee::Options o;
    o.args = c.args;
    o.dir = t.path();
    Dumpee d(c.name, o);
    std::vector<pid_t> pids = ready_list(d.ready_info(), "pids");
    std::vector<pid_t> tids = ready_list(d.ready_info(), "tids");
    TreeGuard guard{pids, d.exe()};
    CHECK(d.output() == "");
    if (c.name == "ckpt_threads") {
      int n = 8;
      for (auto& a : c.args)
        if (a.rfind("--threads=", 0) == 0) n = std::stoi(a.substr(10));
      REQUIRE(tids.size() == size_t(n + 1));
      CHECK(tids[0] == d.pid());
      int tasks = 0;
      for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(d.pid()) + "/task")) (void)e, tasks++;
      CHECK(tasks == n + 1);
      for (pid_t tid : tids) CHECK(std::filesystem::exists("/proc/" + std::to_string(d.pid()) + "/task/" + std::to_string(tid)));
      CHECK(children_of(d.pid()).empty());
      CHECK(tree_fd_problems(d.pid(), false) == "");
    } else {
      REQUIRE(!pids.empty());
      CHECK(pids[0] == d.pid());
      std::vector<pid_t> zombies = ready_list(d.ready_info(), "zombies");
      for (pid_t p : pids) {
        CAPTURE(p);
        bool z = std::find(zombies.begin(), zombies.end(), p) != zombies.end();
        Stat s = stat_of(p);
        if (z) {
          CHECK(s.state == 'Z');
          CHECK(s.ppid == d.pid());
        } else {
          CHECK((s.state == 'S' || s.state == 'R'));
          CHECK(proc_exe(p) == d.exe());
          CHECK(tree_fd_problems(p, c.name == "ckpt_pipes") == "");
        }
      }
      if (c.name == "ckpt_tree") {
        // root, pgroup (+2), session (+1), chain of 4, plain, fan, 2 zombies
        int fan = 0;
        for (auto& a : c.args)
          if (a.rfind("--fan=", 0) == 0) fan = std::stoi(a.substr(6));
        CHECK(pids.size() == size_t(1 + 3 + 2 + 4 + 1 + fan + zombies.size()));
        CHECK(children_of(d.pid()).size() == size_t(4 + fan + zombies.size()));
        Stat pg = stat_of(pids[1]), pg1 = stat_of(pids[2]), pg2 = stat_of(pids[3]);
        CHECK(pg.pgrp == pids[1]);
        CHECK(pg.sid == d.pid());
        CHECK(pg1.pgrp == pids[1]);
        CHECK(pg2.pgrp == pids[1]);
        CHECK(pg1.ppid == pids[1]);
        Stat ss = stat_of(pids[4]), ss1 = stat_of(pids[5]);
        CHECK(ss.sid == pids[4]);
        CHECK(ss.pgrp == pids[4]);
        CHECK(ss1.sid == pids[4]);
        CHECK(ss1.ppid == pids[4]);
        std::vector<pid_t> chain = ready_list(d.ready_info(), "chain");
        REQUIRE(chain.size() == 4);
        CHECK(stat_of(chain[0]).ppid == d.pid());
        for (size_t i = 1; i < chain.size(); i++) CHECK(stat_of(chain[i]).ppid == chain[i - 1]);
        if (std::find(c.args.begin(), c.args.end(), "--zombie") != c.args.end()) CHECK(zombies.size() == 2);
      }
      if (c.name == "ckpt_pipes") {
        REQUIRE(pids.size() == 2);
        CHECK(children_of(d.pid()) == std::vector<pid_t>{pids[1]});
      }
    }
    Verdict v = d.verdict(120s);
    CHECK_MESSAGE(v.passed(), v.describe());
    for (pid_t p : pids) CHECK_MESSAGE(proc_state(p) == 0, "pid ", p, " left after the verdict");
  }
}

TEST_CASE("workload selftest: tree and thread workloads detect their own corruption") {
  for (auto& c : tree_cases()) {
    CAPTURE(label(c));
    Dumpee d(c.name, with(c.args, {"--selftest-corrupt"}));
    TreeGuard guard{ready_list(d.ready_info(), "pids"), d.exe()};
    Verdict v = d.verdict(120s);
    CHECK_MESSAGE(v.exited, v.describe());
    CHECK_MESSAGE(v.status == 1, v.describe());
    REQUIRE_MESSAGE(v.line.rfind("FAIL: ", 0) == 0, v.describe());
    for (auto& phrase : c.corrupt_says) CHECK_MESSAGE(v.line.find(phrase) != std::string::npos, phrase, " not in ", v.line);
    for (auto& phrase : c.corrupt_output)
      CHECK_MESSAGE(v.output.find(phrase) != std::string::npos, phrase, " not in ", v.output);
    for (pid_t p : guard.pids) CHECK_MESSAGE(proc_state(p) == 0, "pid ", p, " left after the verdict");
  }
}

TEST_CASE("workload selftest: ckpt_tree --spin and ckpt_pipes --spin verify") {
  for (std::string w : {"ckpt_tree", "ckpt_pipes"}) {
    CAPTURE(w);
    Dumpee d(w, {"--spin"});
    TreeGuard guard{ready_list(d.ready_info(), "pids"), d.exe()};
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.passed(), v.describe());
  }
}

TEST_CASE("workload selftest: creds, posix timers, seccomp, shmem and SysV shm workloads verify PASS and detect corruption") {
  const struct {
    const char* name;
    const char* corrupt_says;
  } ws[] = {{"ckpt_creds", "CapBnd"},
            {"ckpt_posix_timers", "intervals changed"},
            {"ckpt_seccomp", "Seccomp_filters"},
            {"ckpt_shmem", "child"},
            {"ckpt_clonefs", "not shared"},
            {"ckpt_fifo", "child ended"},
            {"ckpt_memfd", "child ended"},
            {"ckpt_clonefiles", "not shared"},
            {"ckpt_orphans", "not the gone A's"},
            {"ckpt_sysvshm", "A at its first attach byte 5000"},
            {"ckpt_eventfds", "semaphore eventfd gave 4 units"},
            {"ckpt_deleted", "the deleted file's bytes differ"},
            {"ckpt_inotify", "fdinfo watches are not wd 2, 3, 4"},
            {"ckpt_fanotify", "fdinfo shows 3 fanotify lines, 4 before"},
            {"ckpt_procfd", "fd 44 (reopened through /proc/self/fd/43) has offset"},
            {"ckpt_locks", "a new process found the locks not as dumped"},
            {"ckpt_bpf_maps", "hash entry 7919 is not as set"},
            {"ckpt_unix_sockets", "expected 'efgh-reply', got 'fgh-reply'"},
            {"ckpt_pty", "A: window 20x20"},
            {"ckpt_inet", "fd 40: TCP_NODELAY is 0, expected 1"},
            {"ckpt_tcp_echo", "fd 42: expected 'pair-hello', got 'air-hello'"}};
  for (auto& w : ws) {
    CAPTURE(w.name);
    {
      Dumpee d(w.name);
      Verdict v = d.verdict(60s);
      CHECK_MESSAGE(v.passed(), v.describe());
    }
    Dumpee d(w.name, {"--selftest-corrupt"});
    Verdict v = d.verdict(60s);
    CHECK_MESSAGE(v.status == 1, v.describe());
    CHECK_MESSAGE(v.line.find(w.corrupt_says) != std::string::npos, v.describe());
  }
}
