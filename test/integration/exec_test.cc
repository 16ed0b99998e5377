// cr-exec and the remote-syscall engine against small workloads
// (test/workloads/exec_*.c). Every workload checks its own side (fd 1
// closed, registers intact, sleep deadline kept, signal mask restored) and
// reports on its stdout; the test compares what a second ptrace look and
// /proc show before and after. Synchronisation is by READY lines, replies
// and /proc state, never by sleeping.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/ptrace/seized_task.h"
#include "common/remote/remote_session.h"
#include "test/integration/harness.h"

using namespace harness;
using namespace std::chrono;

namespace {

// A workload that dies must fail a check, not kill this binary with SIGPIPE
// when a command is sent to it.
[[maybe_unused]] const bool kIgnoreSigpipe = (signal(SIGPIPE, SIG_IGN), true);

RunResult exec(pid_t pid, std::vector<std::string> args) {
  std::vector<std::string> a = {"exec", "-t", std::to_string(pid)};
  a.insert(a.end(), args.begin(), args.end());
  return crtools(a);
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  std::string x;
  while (in >> x) w.push_back(x);
  return w;
}

// /proc/TID/syscall: the call a task sleeps in (-1 if none) and its pc.
struct InSyscall {
  long nr = -2;
  std::string pc;
};
InSyscall in_syscall(pid_t tid) {
  auto w = words(read_text("/proc/" + std::to_string(tid) + "/syscall"));
  InSyscall s;
  if (w.empty() || w[0] == "running") return s;
  s.nr = std::stol(w[0]);
  s.pc = w.back();
  return s;
}

// Wait (on kernel state, there is no handshake for it) until `tid` sleeps in `nr`.
bool wait_in_syscall(pid_t tid, long nr) {
  return wait_until([&] {
    char st = proc_state(tid);
    return (st == 'S' || st == 'D') && in_syscall(tid).nr == nr;
  });
}

std::string status_field(pid_t pid, const std::string& key) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

// The signal state /proc shows: pending (thread and process), blocked,
// ignored, caught.
std::string signal_state(pid_t pid) {
  std::string s;
  for (const char* k : {"SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"}) s += std::string(k) + status_field(pid, k) + "\n";
  return s;
}

pid_t tracer_of(pid_t pid) { return std::atoi(status_field(pid, "TracerPid").c_str()); }

// A second, independent look with ptrace: general registers and XSAVE state.
struct Regs {
  user_regs_struct gp{};
  cr::XState x;
};
Regs ptrace_look(pid_t tid) {
  auto t = cr::SeizedTask::seize(tid);
  REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().str()));
  Regs r;
  auto g = t->get_regs();
  REQUIRE(g.ok());
  r.gp = *g;
  auto x = t->get_xstate();
  REQUIRE(x.ok());
  r.x = *x;
  REQUIRE(t->detach().ok());
  return r;
}

void check_same_regs(const Regs& a, const Regs& b) {
  CHECK(memcmp(&a.gp, &b.gp, sizeof a.gp) == 0);
  CHECK(a.gp.rip == b.gp.rip);
  CHECK(a.gp.rsp == b.gp.rsp);
  CHECK(a.gp.rax == b.gp.rax);
  CHECK(a.gp.orig_rax == b.gp.orig_rax);
  CHECK(a.gp.fs_base == b.gp.fs_base);
  REQUIRE(a.x.bytes.size() == b.x.bytes.size());
  CHECK(a.x.bytes.size() >= 576);
  CHECK(a.x == b.x);
}

// The workload is alive, not traced, and answers.
void check_alive(Workload& w) {
  CHECK(w.running());
  CHECK(tracer_of(w.pid()) == 0);
  w.send("ping");
  CHECK(w.read_line() == "pong");
}

// "2026-...Z cr-exec pid N: error: MESSAGE": does stderr hold one error
// line containing `what`?
bool one_error_line_with(const RunResult& r, const std::string& what) {
  size_t nl = r.err.find('\n');
  return r.err.find(what) != std::string::npos && nl == r.err.size() - 1;
}

int64_t mono_ns() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

}  // namespace

TEST_CASE("exec: getpid returns the task's pid") {
  Workload w("exec_target");
  auto r = exec(w.pid(), {"getpid"});
  CHECK(r.status == 0);
  CHECK(r.out == "getpid() = " + std::to_string(w.pid()) + "\n");
  CHECK(r.err == "");
  // A number names the call as well.
  auto n = exec(w.pid(), {std::to_string(SYS_getpid)});
  CHECK(n.status == 0);
  CHECK(n.out == "getpid() = " + std::to_string(w.pid()) + "\n");
  check_alive(w);
}

TEST_CASE("exec: close 1 makes the workload's writes to fd 1 fail with EBADF") {
  Workload w("exec_target");
  w.send("write1");
  CHECK(w.read_line() == "x");  // fd 1 is the same pipe
  CHECK(w.read_line() == "write1 2 OK");

  auto r = exec(w.pid(), {"close", "1"});
  CHECK(r.status == 0);
  CHECK(r.out == "close(1) = 0\n");
  w.send("write1");
  CHECK(w.read_line() == "write1 -1 EBADF");

  // The seed example: closing it again fails, and that is still a run call.
  auto again = exec(w.pid(), {"close", "1"});
  CHECK(again.status == 0);
  CHECK(again.out == "close(1) = -1 EBADF (Bad file descriptor)\n");
  check_alive(w);
}

TEST_CASE("exec: open '&PATH' 2 gives the workload an fd to read and write PATH") {
  TempDir dir;
  std::string path = dir / "file";
  { std::ofstream(path) << ""; }
  Workload w("exec_target");
  std::string maps_before = proc_maps(w.pid());

  auto r = exec(w.pid(), {"open", "&" + path, "2"});
  CHECK(r.status == 0);
  std::string prefix = "open(\"" + path + "\", 2) = ";
  REQUIRE(r.out.rfind(prefix, 0) == 0);
  int fd = std::atoi(r.out.substr(prefix.size()).c_str());
  CHECK(fd >= 3);
  w.send("rw " + std::to_string(fd));
  CHECK(w.read_line() == "rw ok " + path);
  CHECK(read_text(path) == "written-by-exec-target");
  // The string went through a scratch mapping, which is gone again.
  CHECK(proc_maps(w.pid()) == maps_before);

  // With O_CREAT and a mode (octal as in C).
  std::string created = dir / "created";
  auto c = exec(w.pid(), {"open", "&" + created, "0x42", "0600"});
  CHECK(c.status == 0);
  CHECK(c.out.rfind("open(\"" + created + "\", 0x42, 0600) = ", 0) == 0);
  struct stat st;
  REQUIRE(stat(created.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // A failing open is reported as the call's result.
  auto missing = exec(w.pid(), {"open", "&" + dir / "nope", "0"});
  CHECK(missing.status == 0);
  CHECK(missing.out == "open(\"" + dir / "nope" + "\", 0) = -1 ENOENT (No such file or directory)\n");
  check_alive(w);
}

TEST_CASE("exec: memory map, registers and signal state are the same before and after") {
  SUBCASE("registers of a task blocked in read(), seen by ptrace and by itself") {
    Workload w("exec_regs", {"read"});
    REQUIRE(wait_in_syscall(w.pid(), SYS_read));
    std::string maps = proc_maps(w.pid());
    Regs before = ptrace_look(w.pid());
    REQUIRE(wait_in_syscall(w.pid(), SYS_read));

    auto o = exec(w.pid(), {"open", "&/proc/self/status", "0"});
    REQUIRE(o.status == 0);
    std::string fd = o.out.substr(o.out.rfind(' ') + 1);
    fd.pop_back();
    auto c = exec(w.pid(), {"close", fd});
    CHECK(c.out == "close(" + fd + ") = 0\n");

    REQUIRE(wait_in_syscall(w.pid(), SYS_read));
    Regs after = ptrace_look(w.pid());
    check_same_regs(before, after);
    CHECK(proc_maps(w.pid()) == maps);
    w.send("wake");
    CHECK(w.read_line().rfind("REGS OK read=5", 0) == 0);
    check_alive(w);
  }
  SUBCASE("pending, blocked and caught signals") {
    Workload w("exec_target");
    std::string sig = signal_state(w.pid());
    std::string maps = proc_maps(w.pid());
    CHECK(sig.find("SigPnd\t0000000000000200") != std::string::npos);  // SIGUSR1 on the thread
    CHECK(sig.find("ShdPnd\t0000000000000800") != std::string::npos);  // SIGUSR2 on the process
    auto r = exec(w.pid(), {"access", "&/", "0"});
    CHECK(r.out == "access(\"/\", 0) = 0\n");
    CHECK(signal_state(w.pid()) == sig);
    CHECK(proc_maps(w.pid()) == maps);
    check_alive(w);
  }
}

TEST_CASE("exec: a task blocked in read() goes on reading") {
  Workload w("exec_target");
  REQUIRE(wait_in_syscall(w.pid(), SYS_read));
  for (int i = 0; i < 3; i++) CHECK(exec(w.pid(), {"getppid"}).status == 0);
  // The first reply is to this ping: read() never returned EINTR.
  w.send("ping");
  CHECK(w.read_line() == "pong");
}

TEST_CASE("exec: a sleeper wakes at its original deadline") {
  // The call lands in the middle of the sleep: a sleep restarted from
  // scratch would end a second late; one resumed by restart_syscall (or an
  // absolute one re-issued) ends on time. Slack allows a loaded machine.
  const long kSleepMs = 2000, kSlackMs = 800;
  for (const char* mode : {"nanosleep", "clock_abs"}) {
    CAPTURE(mode);
    Workload w("exec_blocker", {mode, std::to_string(kSleepMs)});
    auto info = words(w.ready_info());
    REQUIRE(info.size() == 3);
    int64_t start = std::stoll(info[1]);
    REQUIRE(wait_in_syscall(w.pid(), std::string(mode) == "nanosleep" ? SYS_nanosleep : SYS_clock_nanosleep));
    // Into the middle of the sleep (a clock wait, not a synchronisation).
    wait_until([&] { return mono_ns() >= start + kSleepMs * 1000000 / 2; }, seconds(5));
    auto r = exec(w.pid(), {"getpid"});
    CHECK(r.status == 0);
    auto woke = words(w.read_line(seconds(10)));
    REQUIRE(woke.size() == 4);
    CHECK(woke[0] == "WOKE");
    CHECK(woke[1] == "ret=0");
    CHECK(woke[2] == "errno=0");
    double late_ms = std::stod(woke[3].substr(strlen("late_ms=")));
    CHECK(late_ms >= 0);
    CHECK(late_ms < kSlackMs);
    check_alive(w);
  }
}

TEST_CASE("exec: calls blocked in epoll_wait, ppoll, sigsuspend, wait4 go on") {
  SUBCASE("epoll_wait returns the event, not EINTR") {
    Workload w("exec_blocker", {"epoll"});
    REQUIRE(wait_in_syscall(w.pid(), SYS_epoll_wait));
    CHECK(exec(w.pid(), {"getpid"}).status == 0);
    w.send("go");
    CHECK(w.read_line() == "EPOLL ret=1 errno=0");
    check_alive(w);
  }
  SUBCASE("epoll_pwait keeps the mask it replaces for the wait") {
    Workload w("exec_blocker", {"epoll_pwait"});
    REQUIRE(wait_in_syscall(w.pid(), SYS_epoll_pwait));
    CHECK(exec(w.pid(), {"getpid"}).status == 0);
    w.send("go");
    CHECK(w.read_line() == "EPOLL_PWAIT ret=1 errno=0 mask=ok");
  }
  SUBCASE("ppoll keeps the mask it replaces for the wait") {
    Workload w("exec_blocker", {"ppoll"});
    REQUIRE(wait_in_syscall(w.pid(), SYS_ppoll));
    CHECK(exec(w.pid(), {"getpid"}).status == 0);
    w.send("go");
    CHECK(w.read_line() == "PPOLL ret=1 errno=0 mask=ok");
  }
  SUBCASE("sigsuspend ends with the signal it waits for, and the old mask") {
    Workload w("exec_blocker", {"sigsuspend"});
    REQUIRE(wait_in_syscall(w.pid(), SYS_rt_sigsuspend));
    CHECK(exec(w.pid(), {"getpid"}).status == 0);
    REQUIRE(wait_in_syscall(w.pid(), SYS_rt_sigsuspend));
    kill(w.pid(), SIGUSR1);
    CHECK(w.read_line() == "SIGSUSPEND ret=-1 errno=EINTR handled=1 mask=ok");
  }
  SUBCASE("wait4 collects its child") {
    Workload w("exec_blocker", {"wait4"});
    REQUIRE(wait_in_syscall(w.pid(), SYS_wait4));
    CHECK(exec(w.pid(), {"getpid"}).status == 0);
    w.send("exit");  // the child reads it and exits 7
    CHECK(w.read_line() == "WAIT4 ret=ok status=7 errno=0");
  }
}

TEST_CASE("exec: a busy-looping task keeps every register") {
  Workload w("exec_regs", {"busy"});
  REQUIRE(w.read_line() == "SPINNING");
  for (int i = 0; i < 3; i++) {
    auto r = exec(w.pid(), {"getpid"});
    CHECK(r.status == 0);
    CHECK(r.out == "getpid() = " + std::to_string(w.pid()) + "\n");
  }
  auto s = exec(w.pid(), {"open", "&/", "0"});
  CHECK(s.status == 0);
  w.send("stop spinning");
  CHECK(w.read_line().rfind("REGS OK", 0) == 0);
  check_alive(w);
}

TEST_CASE("exec: -t TID uses that thread only") {
  Workload w("exec_threads");
  auto info = words(w.ready_info());
  REQUIRE(info.size() == 2);
  pid_t tid = std::stoi(info[1]);
  REQUIRE(tid != w.pid());
  REQUIRE(wait_in_syscall(tid, SYS_read));

  auto g = exec(tid, {"gettid"});
  CHECK(g.status == 0);
  CHECK(g.out == "gettid() = " + std::to_string(tid) + "\n");
  auto p = exec(tid, {"getpid"});
  CHECK(p.out == "getpid() = " + std::to_string(w.pid()) + "\n");
  // A per-thread effect: the name of that thread only.
  std::string main_comm = read_text("/proc/" + std::to_string(w.pid()) + "/comm");
  auto n = exec(tid, {"prctl", "15", "&renamed"});
  CHECK(n.out == "prctl(15, \"renamed\") = 0\n");
  CHECK(read_text("/proc/" + std::to_string(w.pid()) + "/task/" + std::to_string(tid) + "/comm") == "renamed\n");
  CHECK(read_text("/proc/" + std::to_string(w.pid()) + "/comm") == main_comm);
  // The worker's read() goes on: it gets the poke, not EINTR.
  w.send("poke");
  CHECK(w.read_line() == "worker poked 1");
  check_alive(w);
}

TEST_CASE("exec: a stopped task stays stopped") {
  Workload w("exec_target");
  REQUIRE(wait_in_syscall(w.pid(), SYS_read));
  kill(w.pid(), SIGSTOP);
  REQUIRE(wait_until([&] { return proc_state(w.pid()) == 'T'; }));

  auto r = exec(w.pid(), {"getpid"});
  CHECK(r.status == 0);
  CHECK(r.out == "getpid() = " + std::to_string(w.pid()) + "\n");
  // Detaching puts it back into the group stop (it passes through R).
  CHECK(wait_until([&] { return proc_state(w.pid()) == 'T'; }));
  CHECK(tracer_of(w.pid()) == 0);
  w.send("ping");  // not read while stopped
  CHECK(proc_state(w.pid()) == 'T');
  kill(w.pid(), SIGCONT);
  CHECK(w.read_line() == "pong");

  // Stopped by its own raise(SIGSTOP) (in user mode, not in read()).
  w.send("stop");
  CHECK(w.read_line() == "stopping");
  REQUIRE(wait_until([&] { return proc_state(w.pid()) == 'T'; }));
  CHECK(exec(w.pid(), {"getppid"}).status == 0);
  CHECK(wait_until([&] { return proc_state(w.pid()) == 'T'; }));
  kill(w.pid(), SIGCONT);
  CHECK(w.read_line() == "continued");
  check_alive(w);
}

TEST_CASE("exec: a task under a seccomp filter: the call bypasses it, the filter stays") {
  Workload w("exec_target", {"seccomp"});
  CHECK(status_field(w.pid(), "Seccomp").find('2') != std::string::npos);
  w.send("getppid");
  CHECK(w.read_line() == "getppid -1 EPERM");
  // A filter could as well kill the task for a call it does not expect:
  // the engine suspends it (PTRACE_O_SUSPEND_SECCOMP) while it holds the task.
  auto r = exec(w.pid(), {"getppid"});
  CHECK(r.status == 0);
  CHECK(r.out == "getppid() = " + std::to_string(getpid()) + "\n");
  w.send("getppid");
  CHECK(w.read_line() == "getppid -1 EPERM");
  check_alive(w);
}

TEST_CASE("exec: a task that exits in the call is reported, not restored") {
  Workload w("exec_target");
  auto r = exec(w.pid(), {"exit_group", "3"});
  CHECK(r.status == 0);
  CHECK(r.out == "exit_group(3) = ?\n+++ exited with 3 +++\n");
  CHECK(w.wait() == 3);
}

TEST_CASE("exec: errors say why, exit non-zero, and leave the task untouched") {
  Workload w("exec_target");
  REQUIRE(wait_in_syscall(w.pid(), SYS_read));
  std::string maps = proc_maps(w.pid());
  std::string sig = signal_state(w.pid());
  auto untouched = [&] {
    CHECK(proc_maps(w.pid()) == maps);
    CHECK(signal_state(w.pid()) == sig);
    check_alive(w);
  };

  SUBCASE("no such task") {
    auto r = exec(INT_MAX, {"getpid"});
    CHECK(r.status == 1);
    CHECK(r.out == "");
    CHECK(one_error_line_with(r, "pid 2147483647: error: task not found"));
  }
  SUBCASE("unknown system call name") {
    auto r = exec(w.pid(), {"nosuchcall", "1"});
    CHECK(r.status == 2);
    CHECK(r.err.find("cr-exec: unknown system call 'nosuchcall'") == 0);
    untouched();
  }
  SUBCASE("more than six arguments") {
    auto r = exec(w.pid(), {"write", "1", "2", "3", "4", "5", "6", "7"});
    CHECK(r.status == 2);
    CHECK(r.err.find("too many arguments: a system call takes at most 6, write got 7") != std::string::npos);
    untouched();
  }
  SUBCASE("an argument that is neither a number nor &STRING") {
    auto r = exec(w.pid(), {"close", "one"});
    CHECK(r.status == 2);
    CHECK(r.err.find("'one' is not an argument") != std::string::npos);
    untouched();
  }
  SUBCASE("no -t") {
    auto r = crtools({"exec", "getpid"});
    CHECK(r.status == 2);
    CHECK(r.err.find("-t PID is required") != std::string::npos);
  }
  SUBCASE("a call that cannot be undone") {
    auto r = exec(w.pid(), {"fork"});
    CHECK(r.status == 1);
    CHECK(one_error_line_with(r, "refusing to run fork"));
    untouched();
  }
  SUBCASE("permission denied") {
    auto r = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                  bin_dir() + "/crtools", "exec", "-t", std::to_string(w.pid()), "getpid"});
    CHECK(r.status == 1);
    CHECK(one_error_line_with(r, "permission denied"));
    untouched();
  }
  SUBCASE("a task traced by someone else") {
    {
      auto t = cr::SeizedTask::seize(w.pid());
      REQUIRE(t.ok());
      auto r = exec(w.pid(), {"getpid"});
      CHECK(r.status == 1);
      CHECK(one_error_line_with(r, "task is already traced by pid " + std::to_string(getpid())));
    }
    untouched();
  }
  SUBCASE("a zombie") {
    w.send("zombie");
    auto z = words(w.read_line());
    REQUIRE(z.size() == 2);
    pid_t zp = std::stoi(z[1]);
    REQUIRE(proc_state(zp) == 'Z');
    auto r = exec(zp, {"getpid"});
    CHECK(r.status == 1);
    CHECK(one_error_line_with(r, "task is a zombie"));
    maps = proc_maps(w.pid());
    untouched();
  }
  SUBCASE("a kernel thread") {
    pid_t kt = 2;
    if (status_field(kt, "Kthread").find('1') == std::string::npos) return;  // no kthreadd at pid 2 here
    auto r = exec(kt, {"getpid"});
    CHECK(r.status == 1);
    CHECK(one_error_line_with(r, "task is a kernel thread"));
  }
  SUBCASE("a parent waiting for its vfork child") {
    w.send("vfork");
    auto v = words(w.read_line());
    REQUIRE(v.size() == 2);
    REQUIRE(v[0] == "vforked");
    REQUIRE(wait_until([&] { return proc_state(w.pid()) == 'D'; }));
    auto r = exec(w.pid(), {"getpid"});
    CHECK(r.status == 1);
    CHECK(one_error_line_with(r, "task is waiting for its vfork child"));
    CHECK(tracer_of(w.pid()) == 0);
    w.send("child, exit");
    CHECK(w.read_line() == "vfork done");
    untouched();
  }
  SUBCASE("cr-exec's own pid") {
    // -t of crtools itself: the multiplexer execs cr-exec in place.
    auto r = run({"/bin/sh", "-c", "exec \"$0\" exec -t $$ getpid", bin_dir() + "/crtools"});
    CHECK(r.status == 1);
    CHECK(one_error_line_with(r, "task is crtools itself"));
  }
}

TEST_CASE("exec: SIGINT ends a blocking call, and the task is restored") {
  Workload w("exec_blocker", {"pause"});
  REQUIRE(wait_in_syscall(w.pid(), SYS_pause));
  std::string own_pc = in_syscall(w.pid()).pc;
  RunResult r;
  std::thread t([&] { r = exec(w.pid(), {"pause"}); });
  // cr-exec's pause runs when the task sleeps in pause() at another pc.
  bool ours = wait_until([&] {
    auto s = in_syscall(w.pid());
    return tracer_of(w.pid()) != 0 && s.nr == SYS_pause && s.pc != own_pc;
  });
  pid_t tracer = tracer_of(w.pid());
  if (ours && tracer > 0) kill(tracer, SIGINT);
  t.join();
  REQUIRE(ours);
  CHECK(r.status == 130);
  CHECK(r.out == "pause() = ? ERESTARTNOHAND (To be restarted if no handler)\n");
  // Its own pause() goes on until a signal of its own.
  REQUIRE(wait_in_syscall(w.pid(), SYS_pause));
  CHECK(in_syscall(w.pid()).pc == own_pc);
  kill(w.pid(), SIGUSR2);
  CHECK(w.read_line() == "PAUSE ret=-1 errno=EINTR");
  check_alive(w);
}

// The engine itself, as cr-dump's parasite injection will use it.

TEST_CASE("exec engine: a syscall written over the code at rip is put back") {
  Workload w("exec_regs", {"busy"});
  REQUIRE(w.read_line() == "SPINNING");
  uint8_t before[16], during[16], after[16];
  {
    auto t = cr::SeizedTask::seize(w.pid());
    REQUIRE(t.ok());
    auto regs = t->get_regs();
    REQUIRE(regs.ok());
    cr::RemotePtr<void> rip(regs->rip);
    REQUIRE(t->read_mem(rip, before, sizeof before).ok());
    {
      auto rs = cr::RemoteSession::start(*t, {cr::SyscallSite::PatchAtRip});
      REQUIRE_MESSAGE(rs.ok(), (rs.ok() ? "" : rs.error().str()));
      CHECK(rs->site_patched());
      CHECK(rs->syscall_site() == rip);
      REQUIRE(t->read_mem(rip, during, sizeof during).ok());
      CHECK(during[0] == 0x0f);
      CHECK(during[1] == 0x05);
      CHECK(memcmp(during + 2, before + 2, sizeof before - 2) == 0);
      auto pid = rs->syscall_raw(SYS_getpid);
      REQUIRE(pid.ok());
      CHECK(*pid == w.pid());
      auto bad = rs->syscall_raw(SYS_close, -1);
      REQUIRE(bad.ok());
      CHECK(*bad == -EBADF);
      auto checked = rs->syscall_checked(SYS_close, -1);
      REQUIRE_FALSE(checked.ok());
      CHECK(checked.error().err == EBADF);
    }
    REQUIRE(t->read_mem(rip, after, sizeof after).ok());
    CHECK(memcmp(before, after, sizeof before) == 0);
  }
  w.send("stop spinning");
  CHECK(w.read_line().rfind("REGS OK", 0) == 0);
  check_alive(w);
}

TEST_CASE("exec engine: the vDSO lends its syscall instruction, nothing is written") {
  Workload w("exec_target");
  REQUIRE(wait_in_syscall(w.pid(), SYS_read));
  auto t = cr::SeizedTask::seize(w.pid());
  REQUIRE(t.ok());
  auto rs = cr::RemoteSession::start(*t, {cr::SyscallSite::Vdso});
  REQUIRE(rs.ok());
  CHECK_FALSE(rs->site_patched());
  CHECK(rs->pending_restart_kind() != cr::PendingRestart::None);  // it was in read()
  auto p = rs->syscall_raw(SYS_getpid);
  REQUIRE(p.ok());
  CHECK(*p == w.pid());
}

TEST_CASE("exec engine: without a detach, the task issues its interrupted call again") {
  // PTRACE_DETACH makes the kernel run its own restart logic; PTRACE_CONT
  // does not. After restore() the registers alone must do it.
  SUBCASE("read: rewound onto the syscall instruction") {
    Workload w("exec_target");
    REQUIRE(wait_in_syscall(w.pid(), SYS_read));
    auto t = cr::SeizedTask::seize(w.pid());
    REQUIRE(t.ok());
    auto raw = t->get_regs();
    REQUIRE(raw.ok());
    CHECK(static_cast<long>(raw->rax) == -512);  // -ERESTARTSYS
    {
      auto rs = cr::RemoteSession::start(*t);
      REQUIRE(rs.ok());
      CHECK(rs->pending_restart_kind() == cr::PendingRestart::Rewind);
      CHECK(rs->resume_regs().rip == raw->rip - 2);
      CHECK(rs->resume_regs().rax == SYS_read);
      CHECK(rs->syscall_raw(SYS_getpid).ok());
    }
    REQUIRE(t->resume(PTRACE_CONT).ok());
    REQUIRE(wait_in_syscall(w.pid(), SYS_read));
    REQUIRE(t->interrupt().ok());
    auto s = t->wait_stop();
    REQUIRE(s.ok());
    CHECK(s->kind == cr::StopKind::Trap);
    REQUIRE(t->detach().ok());
    check_alive(w);
  }
  SUBCASE("nanosleep: through restart_syscall, to the original deadline") {
    Workload w("exec_blocker", {"nanosleep", "1500"});
    REQUIRE(wait_in_syscall(w.pid(), SYS_nanosleep));
    auto t = cr::SeizedTask::seize(w.pid());
    REQUIRE(t.ok());
    {
      auto rs = cr::RemoteSession::start(*t);
      REQUIRE(rs.ok());
      CHECK(rs->pending_restart_kind() == cr::PendingRestart::RestartBlock);
      CHECK(rs->resume_regs().rax == SYS_restart_syscall);
      CHECK(rs->syscall_raw(SYS_getpid).ok());
    }
    REQUIRE(t->resume(PTRACE_CONT).ok());
    auto woke = words(w.read_line(seconds(10)));
    REQUIRE(woke.size() == 4);
    CHECK(woke[1] == "ret=0");
    CHECK(std::stod(woke[3].substr(strlen("late_ms="))) >= 0);
    REQUIRE(wait_in_syscall(w.pid(), SYS_read));
    REQUIRE(t->interrupt().ok());
    REQUIRE(t->wait_stop().ok());
    REQUIRE(t->detach().ok());
    check_alive(w);
  }
}

TEST_CASE("exec engine: run_until_int3 runs code; a fault is an error; all is put back") {
  Workload w("exec_target");
  REQUIRE(wait_in_syscall(w.pid(), SYS_read));
  std::string maps = proc_maps(w.pid());
  std::string sig = signal_state(w.pid());
  {
    auto t = cr::SeizedTask::seize(w.pid());
    REQUIRE(t.ok());
    auto rs = cr::RemoteSession::start(*t);
    REQUIRE(rs.ok());
    auto code = rs->alloc_scratch(4096);
    REQUIRE(code.ok());
    // mov $39, %eax; syscall; int3   |   ud2
    const uint8_t getpid_code[] = {0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xcc};
    const uint8_t fault_code[] = {0x0f, 0x0b};
    REQUIRE(rs->write_bytes(*code, getpid_code, sizeof getpid_code).ok());
    REQUIRE(rs->write_bytes(*code + 64, fault_code, sizeof fault_code).ok());
    REQUIRE(rs->syscall_checked(SYS_mprotect, *code, 4096, PROT_READ | PROT_EXEC).ok());
    auto back = rs->read<uint64_t>(code->cast<uint64_t>());
    REQUIRE(back.ok());
    CHECK((*back & 0xff) == 0xb8);

    user_regs_struct r = rs->resume_regs();
    r.rip = code->addr();
    auto out = rs->run_until_int3(r);
    REQUIRE_MESSAGE(out.ok(), (out.ok() ? "" : out.error().str()));
    CHECK(out->rax == static_cast<uint64_t>(w.pid()));
    CHECK(out->rip == code->addr() + sizeof getpid_code);

    r.rip = code->addr() + 64;
    auto f = rs->run_until_int3(r);
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().message.find("faulted: signal 4") != std::string::npos);

    // The session goes on after a fault.
    auto s = rs->push_string("/");
    REQUIRE(s.ok());
    auto a = rs->syscall_raw(SYS_access, *s, 0);
    REQUIRE(a.ok());
    CHECK(*a == 0);
    CHECK(rs->restore().ok());
  }
  CHECK(proc_maps(w.pid()) == maps);
  CHECK(signal_state(w.pid()) == sig);  // SIGTRAP still caught, pending signals kept
  check_alive(w);
}

TEST_CASE("exec engine: an error halfway is undone by the session's destructor") {
  Workload w("exec_target");
  REQUIRE(wait_in_syscall(w.pid(), SYS_read));
  std::string maps = proc_maps(w.pid());
  std::string sig = signal_state(w.pid());
  {
    auto t = cr::SeizedTask::seize(w.pid());
    REQUIRE(t.ok());
    auto failing = [&]() -> cr::Status {
      auto rs = TRY(cr::RemoteSession::start(*t));
      cr::RemotePtr<void> scratch = TRY(rs.alloc_scratch(8192));
      (void)scratch;
      TRY(rs.push_string("some text"));
      // Past the end of every mapping: the write fails, TRY returns.
      const char junk[8] = {};
      TRY_STATUS(rs.write_restored_on_exit(cr::RemotePtr<void>(0x10), junk, sizeof junk));
      return cr::ok_status();
    };
    auto st = failing();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().pid == w.pid());
    CHECK(t->attached());
  }
  CHECK(proc_maps(w.pid()) == maps);
  CHECK(signal_state(w.pid()) == sig);
  check_alive(w);
}
