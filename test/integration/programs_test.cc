// Real programs through the dump/kill/restore cycle (issue 5): a python3
// program counting in a dict and appending to a file, a perl program doing
// the same in a hash, sleep(1), and a bash loop that forks a sleep each
// round (a process tree: bash and its child). (A program with 200 threads
// each counting in its own variable is the cycle case
// "cycle: 200 threads ..." in cycle_test.cc.) Each must go on from its pre-dump state:
// the counter and the log continue where they stopped (no restart, no gap),
// and the program's own check of its memory passes. redis-server loaded
// with keys answers with the same data after restore (issue 7).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test/integration/harness.h"

using namespace harness;
using namespace std::chrono_literals;

namespace {

// The programs print READY on fd 3 and close it, log every 1000th count to
// log.txt, and on SIGTERM check that their table holds every count since
// the start and that the log has no gap, then print PASS or FAIL.
const char* kPython = R"PY(
import os, signal, sys
stop = False
def term(*a):
    global stop
    stop = True
signal.signal(signal.SIGTERM, term)
log = open('log.txt', 'a')
d = {}
i = 0
os.write(3, b'READY\n'); os.close(3)
while not stop:
    i += 1
    d[i] = i * i
    if i % 1000 == 0:
        log.write('%d\n' % i); log.flush()
bad = [k for k in d if d[k] != k * k]
lines = [int(x) for x in open('log.txt')]
if bad or len(d) != i:
    print('FAIL: table lost entries: %d of %d' % (len(d), i))
elif lines != list(range(1000, lines[-1] + 1, 1000)):
    print('FAIL: log has a gap or restarted')
else:
    print('PASS')
sys.stdout.flush()
)PY";

const char* kPerl = R"PL(
use strict; use warnings; use IO::Handle;
my $stop = 0; $SIG{TERM} = sub { $stop = 1 };
open(my $log, '>>', 'log.txt') or die; $log->autoflush(1);
my %h; my $i = 0;
open(my $r, '>&=', 3) or die; print $r "READY\n"; close($r);
while (!$stop) { $i++; $h{$i} = 2 * $i; print $log "$i\n" if $i % 1000 == 0; }
my $bad = grep { $h{$_} != 2 * $_ } keys %h;
open(my $in, '<', 'log.txt') or die; my @l = <$in>; chomp @l;
my $gap = 0; for my $k (0 .. $#l) { $gap = 1 if $l[$k] != 1000 * ($k + 1); }
if ($bad || scalar(keys %h) != $i) { print "FAIL: hash lost entries\n"; }
elsif ($gap) { print "FAIL: log has a gap or restarted\n"; }
else { print "PASS\n"; }
)PL";


long last_logged(const std::string& path) {
  std::ifstream f(path);
  std::string line, last;
  while (std::getline(f, line))
    if (!line.empty()) last = line;
  return last.empty() ? 0 : std::stol(last);
}

// Dump (kill), restore detached, check the log moves past the dumped point,
// then ask for the verdict.
void cycle_counting_program(const std::string& exe, const std::vector<std::string>& args) {
  Dumpee d(exe, Dumpee::Options{args});
  const pid_t pid = d.pid();  // d forgets it once the dump has killed it
  REQUIRE(pid > 0);
  std::string log = d.dir() + "/log.txt";
  // Let it log something first (its own output is the handshake).
  REQUIRE(wait_until([&] { return last_logged(log) >= 3000; }, 60s));
  TempDir img;
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img.path() + "/set"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(d.wait_exit() == 128 + SIGKILL);
  long at_dump = last_logged(log);
  auto rr = crtools({"restore", "-D", img.path() + "/set", "-d"});
  INFO(rr.err);
  REQUIRE(rr.status == 0);
  // It continues: the log grows past the point of the dump, without a gap.
  CHECK(wait_until([&] { return last_logged(log) >= at_dump + 3000; }, 60s));
  // Restored with -d, it is our child again (we are a child subreaper).
  Verdict v = terminate_and_collect(pid, d.output_path());
  INFO(v.describe());
  CHECK(v.passed());
}

}  // namespace

TEST_CASE("program: python3 counting in a dict and appending to a file continues") {
  cycle_counting_program("/usr/bin/python3", {"-c", kPython});
}

TEST_CASE("program: perl counting in a hash and appending to a file continues") {
  cycle_counting_program("/usr/bin/perl", {"-e", kPerl});
}

TEST_CASE("program: sleep 600 is restored asleep in its nanosleep") {
  Dumpee d("/bin/sh", Dumpee::Options{{"-c", "echo READY >&3; exec 3>&-; exec sleep 600"}});
  const pid_t pid = d.pid();
  REQUIRE(pid > 0);
  std::string p = "/proc/" + std::to_string(pid);
  // exec sets comm before the new argument area: wait for the full cmdline.
  const std::string cmdline("sleep\0" "600\0", 10);
  REQUIRE(wait_until([&] { return read_text(p + "/cmdline") == cmdline; }, 10s));
  TempDir img;
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img.path() + "/set"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(d.wait_exit() == 128 + SIGKILL);
  auto rr = crtools({"restore", "-D", img.path() + "/set", "-d"});
  INFO(rr.err);
  REQUIRE(rr.status == 0);
  CHECK(read_text(p + "/cmdline") == cmdline);
  // Back in clock_nanosleep (syscall 230), sleeping.
  CHECK(wait_until([&] { return read_text(p + "/syscall").rfind("230 ", 0) == 0; }, 10s));
  CHECK(proc_state(pid) == 'S');
  // It still ends on a signal like a sleep does; -d made it our child again.
  REQUIRE(pid > 0);
  kill(pid, SIGTERM);
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM));
}

TEST_CASE("program: a short sleep finishes normally after restore (exit 0)") {
  Dumpee d("/bin/sh", Dumpee::Options{{"-c", "echo READY >&3; exec 3>&-; exec sleep 2"}});
  const pid_t pid = d.pid();
  REQUIRE(pid > 0);
  REQUIRE(wait_until([&] { return read_text("/proc/" + std::to_string(pid) + "/cmdline") == std::string("sleep\0" "2\0", 8); }, 10s));
  TempDir img;
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img.path() + "/set"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(d.wait_exit() == 128 + SIGKILL);
  // Attached: cr-restore exits with the sleep's status, 0 when it completes.
  auto rr = crtools({"restore", "-D", img.path() + "/set"});
  INFO(rr.err);
  CHECK(rr.status == 0);
}

TEST_CASE("program: a bash loop forking sleep goes on counting with its child sleep restored") {
  // Each round appends the next number to log.txt and forks `sleep 1`.
  const char* script =
      "i=0; while true; do i=$((i+1)); echo $i >> log.txt; "
      "if [ $i = 1 ]; then echo READY >&3; exec 3>&-; fi; sleep 1; done";
  Dumpee d("/bin/bash", Dumpee::Options{{"-c", script}});
  const pid_t pid = d.pid();
  REQUIRE(pid > 0);
  const std::string bash_exe = d.exe(), log = d.dir() + "/log.txt";
  const std::string sleep_cmdline("sleep\0" "1\0", 8);
  pid_t s = -1;
  std::string sleep_exe;
  // Whatever happens, bash and its sleeps end with the case (by pid).
  struct Guard {
    pid_t bash;
    std::string bash_exe;
    ~Guard() {
      std::vector<pid_t> kids = children_of(bash);
      kill_tree({bash}, bash_exe);
      for (pid_t k : kids) kill_tree({k}, proc_exe(k).find("sleep") != std::string::npos ? proc_exe(k) : "");
    }
  } guard{pid, bash_exe};
  auto sleep_child = [&]() -> pid_t {
    for (pid_t c : children_of(pid))
      if (proc_cmdline(c) == sleep_cmdline) return c;
    return -1;
  };
  // A fresh round: a new number in the log, then its sleep running; the
  // dump comes well within the second the sleep lasts.
  REQUIRE(wait_until([&] { return last_logged(log) >= 2; }, 10s));
  long n0 = last_logged(log);
  REQUIRE(wait_until([&] { return last_logged(log) > n0 && (s = sleep_child()) > 0; }, 10s));
  sleep_exe = proc_exe(s);
  TempDir img;
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img.path() + "/set"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(d.wait_exit() == 128 + SIGKILL);
  std::vector<int> st = reap_pids({s}, 30s);  // killed too, and reparented to us
  CHECK_MESSAGE(st[0] == 128 + SIGKILL, "bash's sleep ended with ", st[0]);
  REQUIRE(proc_state(s) == 0);
  long at_dump = last_logged(log);
  auto rr = crtools({"restore", "-D", img.path() + "/set", "-d"});
  INFO("restore stderr: ", rr.err);
  REQUIRE(rr.status == 0);
  REQUIRE(wait_restored(pid, bash_exe, d.cmdline(), 30s));
  // Restored with -d, bash is our child again (we are a child subreaper).
  CHECK_MESSAGE(proc_ppid(pid) == getpid(), "bash's parent is ", proc_ppid(pid), " (", proc_cmdline(proc_ppid(pid)), ")");
  // The sleep is bash's child again, with its pid, asleep where it was.
  CHECK_MESSAGE(wait_until([&] { return proc_cmdline(s) == sleep_cmdline && proc_ppid(s) == pid; }, 10s),
                "sleep ", s, " is not bash's child again (cmdline '", proc_cmdline(s), "')");
  CHECK(proc_exe(s) == sleep_exe);
  // bash waits for it and goes on counting: the next numbers follow the
  // last one before the dump (no restart from 1, no gap).
  CHECK(wait_until([&] { return last_logged(log) >= at_dump + 2; }, 30s));
  std::ifstream f(log);
  long expect = 1;
  std::string line;
  bool ok = true;
  while (std::getline(f, line)) {
    if (line != std::to_string(expect)) {
      ok = false;
      break;
    }
    expect++;
  }
  CHECK_MESSAGE(ok, "log.txt line ", expect, " is '", line, "' (dumped at ", at_dump, "): restarted or skipped");
  CHECK(expect - 1 >= at_dump + 2);
  // bash does not print PASS: end the tree by pid (bash first, then its sleep).
  std::vector<pid_t> kids = children_of(pid);
  kill_tree({pid}, bash_exe);
  for (pid_t k : kids) kill_tree({k}, sleep_exe);
  CHECK_MESSAGE(proc_state(pid) == 0, "bash in state '", proc_state(pid), "', parent ", proc_ppid(pid));
}

TEST_CASE("program: a python3 multiprocessing pool goes on mapping with the same workers") {
  // Each round maps a function over 10 numbers on a pool of 3 worker
  // processes (fork; pipes, a POSIX semaphore in /dev/shm, handler threads)
  // and appends the round's number to log.txt; on SIGTERM it checks every
  // result it got and that the log has no gap, then closes the pool.
  const char* script = R"PY(
import multiprocessing as mp, os, signal, sys
stop = False
def term(*a):
    global stop
    stop = True
def sq(x):
    return x * x
if __name__ == '__main__':
    ctx = mp.get_context('fork')
    pool = ctx.Pool(3)
    signal.signal(signal.SIGTERM, term)
    workers = sorted(p.pid for p in mp.active_children())
    bad = 0
    i = 0
    with open('log.txt', 'a') as log:
        while not stop:
            i += 1
            if pool.map(sq, range(10)) != [x * x for x in range(10)]:
                bad += 1
            log.write('%d\n' % i)
            log.flush()
            if i == 1:
                os.write(3, ('READY pids=' + ','.join(map(str, workers)) + '\n').encode())
                os.close(3)
    after = sorted(p.pid for p in mp.active_children())
    lines = [int(x) for x in open('log.txt')]
    pool.close()
    pool.join()
    if bad:
        print('FAIL: %d rounds gave wrong results' % bad)
    elif after != workers:
        print('FAIL: workers %s, were %s' % (after, workers))
    elif lines != list(range(1, len(lines) + 1)):
        print('FAIL: log has a gap or restarted')
    else:
        print('PASS')
    sys.stdout.flush()
)PY";
  Dumpee d("/usr/bin/python3", Dumpee::Options{{"-c", script}});
  const pid_t pid = d.pid();
  REQUIRE(pid > 0);
  const std::string exe = d.exe(), log = d.dir() + "/log.txt";
  const std::vector<pid_t> workers = ready_list(d.ready_info(), "pids");
  REQUIRE(workers.size() == 3);
  std::vector<pid_t> all = workers;
  all.insert(all.begin(), pid);
  struct Guard {
    std::vector<pid_t> pids;
    std::string exe;
    ~Guard() { kill_tree(pids, exe); }
  } guard{all, exe};
  REQUIRE(wait_until([&] { return last_logged(log) >= 3; }, 60s));
  TempDir img;
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img.path() + "/set"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(d.wait_exit() == 128 + SIGKILL);
  std::vector<int> st = reap_pids(workers, 30s);  // killed too, and reparented to us
  for (size_t i = 0; i < workers.size(); i++) CHECK_MESSAGE(st[i] == 128 + SIGKILL, "worker ", workers[i], ": ", st[i]);
  long at_dump = last_logged(log);
  auto rr = crtools({"restore", "-D", img.path() + "/set", "-d"});
  INFO("restore stderr: ", rr.err);
  REQUIRE(rr.status == 0);
  REQUIRE(wait_restored(pid, exe, d.cmdline(), 30s));
  for (pid_t w : workers) CHECK_MESSAGE(proc_ppid(w) == pid, "worker ", w, " has parent ", proc_ppid(w));
  // It goes on mapping: the log grows past the dump.
  CHECK(wait_until([&] { return last_logged(log) >= at_dump + 5; }, 60s));
  Verdict v = terminate_and_collect(pid, d.output_path());
  CHECK_MESSAGE(v.passed(), v.describe(), "; output: ", d.output());
}

TEST_CASE("program: bash job-control pipelines keep their process groups across restore, a gone leader's too") {
  // set -m: each pipeline is a job with its own process group, led by its
  // first process; the others join it (a sibling's group). The second job's
  // first process (`true`) exits at once: its group lives on, leaderless,
  // holding the last sleep; restore makes it again with a helper task.
  const char* script = "set -m; sleep 600 | sleep 601 & true | sleep 602 & echo READY >&3; exec 3>&-; wait";
  Dumpee d("/bin/bash", Dumpee::Options{{"-c", script}});
  const pid_t bash = d.pid();
  REQUIRE(bash > 0);
  const std::string bash_exe = d.exe();
  std::vector<pid_t> kids;
  // All three forked and running sleep (exec done: the full cmdline), and
  // `true` gone and reaped.
  REQUIRE(wait_until(
      [&] {
        kids = children_of(bash);
        if (kids.size() != 3) return false;
        for (pid_t k : kids)
          if (proc_cmdline(k).rfind(std::string("sleep\0" "60", 8), 0) != 0) return false;
        return true;
      },
      10s));
  auto stat_of = [](pid_t p) {
    std::string st = read_text("/proc/" + std::to_string(p) + "/stat");
    std::istringstream in(st.substr(st.rfind(')') + 2));
    std::string state, ppid, pgrp, sid;
    in >> state >> ppid >> pgrp >> sid;
    return ppid + "/" + pgrp + "/" + sid;
  };
  auto pgrp_of = [&](pid_t p) { return std::stoi(stat_of(p).substr(stat_of(p).find('/') + 1)); };
  std::sort(kids.begin(), kids.end(), [&](pid_t a, pid_t b) { return proc_cmdline(a) < proc_cmdline(b); });
  std::vector<std::string> before, cmd;
  std::string sleep_exe = proc_exe(kids[0]);
  for (pid_t k : kids) {
    before.push_back(stat_of(k));
    cmd.push_back(proc_cmdline(k));
  }
  struct Guard {
    std::vector<pid_t> pids;
    std::string bash_exe, sleep_exe;
    ~Guard() {
      kill_tree({pids[0]}, bash_exe);
      kill_tree({pids[1], pids[2], pids[3]}, sleep_exe);
    }
  } guard{{bash, kids[0], kids[1], kids[2]}, bash_exe, sleep_exe};
  INFO("sleeps ", kids[0], " ", before[0], ", ", kids[1], " ", before[1], ", ", kids[2], " ", before[2]);
  // The first job's group is led by its first sleep and holds both; the
  // second's leader is gone.
  CHECK(before[0].substr(before[0].find('/')) == before[1].substr(before[1].find('/')));
  CHECK(pgrp_of(kids[0]) == kids[0]);
  const pid_t gone = pgrp_of(kids[2]);
  CHECK(gone != kids[2]);
  CHECK(proc_state(gone) == 0);
  TempDir img;
  auto r = crtools({"dump", "-t", std::to_string(bash), "-D", img.path() + "/set"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(d.wait_exit() == 128 + SIGKILL);
  reap_pids(kids, 30s);
  auto rr = crtools({"restore", "-D", img.path() + "/set", "-d"});
  INFO("restore stderr: ", rr.err);
  REQUIRE(rr.status == 0);
  REQUIRE(wait_restored(bash, bash_exe, d.cmdline(), 30s));
  for (size_t i = 0; i < kids.size(); i++) {
    CHECK(wait_restored(kids[i], sleep_exe, cmd[i], 30s));
    CHECK_MESSAGE(stat_of(kids[i]) == before[i], "sleep ", kids[i], ": ppid/pgrp/sid ", stat_of(kids[i]),
                  ", was ", before[i]);
  }
  CHECK_MESSAGE(proc_state(gone) == 0, "the gone leader's pid ", gone, " holds a process after restore");
}

namespace {

// A tmux server of our own (its socket in a temporary directory), ended
// by pid, whatever happened.
struct Tmux {
  TempDir dir;
  std::string sock = dir / "sock";
  pid_t server = -1;
  RunResult operator()(std::vector<std::string> args) const {
    args.insert(args.begin(), {"/usr/bin/tmux", "-S", sock, "-f", "/dev/null"});
    return run(args, "", 30s);
  }
  std::string screen() const { return (*this)({"capture-pane", "-p"}).out; }
  void type(const std::string& text, bool enter = true) const {
    (*this)({"send-keys", "-l", text});
    if (enter) (*this)({"send-keys", "Enter"});
  }
  ~Tmux() {
    if (server <= 0) return;
    (*this)({"kill-server"});
    if (pid_alive(server)) kill(server, SIGKILL);
    reap_pids({server}, 10s);  // our child: the runner is a child subreaper
  }
};

// "KEY value" on a line of the screen: the value, "" if absent.
std::string screen_field(const std::string& screen, const std::string& key) {
  std::istringstream in(screen);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + " ", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      while (!v.empty() && v.back() == ' ') v.pop_back();
      return v;
    }
  return "";
}

long screen_number(const std::string& screen, const std::string& key) {
  std::string v = screen_field(screen, key);
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stol(v);
}

}  // namespace

namespace {

// A shell job on the user's terminal: tty_screen (a full-screen program in
// raw mode) started at a bash prompt in a tmux pane. Without --shell-job
// its dump is refused (the tree runs on); with it, the job is dumped and
// killed, and `crtools restore --shell-job` typed at the same prompt brings
// it back on that terminal: it redraws (SIGWINCH), counts on from the
// dumped value, still in raw mode, in the foreground (a key reaches it
// without Enter), and its 'q' ends it and the restore with status 0.
// With `stream`, the images go through `-D -`: dumped into a file by the
// test, read by the restore in the pane from its standard input (its
// terminal is then its standard output).
void shell_job_in_tmux(bool stream) {
  REQUIRE_MESSAGE(access("/usr/bin/tmux", X_OK) == 0, "/usr/bin/tmux is missing (scripts/install-deps installs it)");
  Tmux tmux;
  TempDir img;
  const std::string set = img / "set";
  auto r = tmux({"new-session", "-d", "-x", "80", "-y", "24", "env PS1=PROMPT$ bash --norc --noprofile"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  tmux.server = std::atoi(tmux({"display-message", "-p", "#{pid}"}).out.c_str());
  REQUIRE(tmux.server > 0);
  std::string s;
  REQUIRE_MESSAGE(wait_until([&] { return (s = tmux.screen()).find("PROMPT$") != std::string::npos; }, 20s), s);
  const std::string exe = workload_path("tty_screen");
  tmux.type(exe);
  REQUIRE_MESSAGE(wait_until([&] { return screen_number(s = tmux.screen(), "COUNTER") >= 5; }, 30s), s);
  const pid_t pid = static_cast<pid_t>(screen_number(s, "PID"));
  REQUIRE(pid > 0);
  struct Guard {
    pid_t pid;
    std::string exe;
    ~Guard() { kill_tree({pid}, exe); }
  } guard{pid, exe};
  CHECK(screen_field(s, "MODE") == "raw");

  // Without --shell-job: refused, naming the option; it runs on.
  if (!stream) {
    auto refused = crtools({"dump", "-t", std::to_string(pid), "-D", img / "refused"});
    CHECK(refused.status != 0);
    CHECK_MESSAGE(refused.err.find("--shell-job") != std::string::npos, refused.err);
    long before = screen_number(tmux.screen(), "COUNTER");
    CHECK_MESSAGE(wait_until([&] { return screen_number(tmux.screen(), "COUNTER") > before; }, 10s),
                  "the counter stopped after the refused dump");
  }

  const std::string tar = img / "set.tar";
  auto d = stream ? run({"/bin/bash", "-c", bin_dir() + "/crtools dump --shell-job -t " + std::to_string(pid) +
                                                " -D - > " + tar})
                  : crtools({"dump", "--shell-job", "-t", std::to_string(pid), "-D", set});
  INFO("dump stderr: ", d.err);
  REQUIRE(d.status == 0);
  // Gone from the pane: bash reaped it and prompts again; the screen
  // still shows the last value it drew.
  REQUIRE(wait_until([&] { return proc_exe(pid) != exe; }, 10s));
  auto pane_command = [&] { return tmux({"display-message", "-p", "#{pane_current_command}"}).out; };
  REQUIRE_MESSAGE(wait_until([&] { return pane_command() == "bash\n"; }, 10s), tmux.screen());
  const long dumped = screen_number(tmux.screen(), "COUNTER");
  REQUIRE(dumped >= 5);
  // Its images need --shell-job, and that a terminal: refused from here
  // (no terminal), leaving nothing behind.
  if (!stream) {
    auto no_opt = crtools({"restore", "-D", set});
    CHECK(no_opt.status == 1);
    CHECK_MESSAGE(no_opt.err.find("restore with --shell-job") != std::string::npos, no_opt.err);
    auto no_tty = crtools({"restore", "--shell-job", "-D", set});
    CHECK(no_tty.status == 1);
    CHECK_MESSAGE(no_tty.err.find("none of standard input, output and error is a terminal") != std::string::npos,
                  no_tty.err);
    CHECK(proc_exe(pid) != exe);
  }
  tmux.type("clear");
  REQUIRE_MESSAGE(wait_until([&] { return (s = tmux.screen()).find("COUNTER") == std::string::npos; }, 10s), s);

  tmux.type(bin_dir() + "/crtools restore --shell-job -D " + (stream ? "- < " + tar : set) + "; echo RC=$?");
  // Back, redrawn on its new terminal, counting on from the dumped value.
  long first = -1;
  REQUIRE_MESSAGE(wait_until([&] { return (first = screen_number(s = tmux.screen(), "COUNTER")) >= 0; }, 30s), s);
  INFO("screen after restore:\n", s);
  CHECK_MESSAGE(first >= dumped, "the counter restarted: ", first, " after ", dumped);
  CHECK_MESSAGE(first <= dumped + 100, "the counter jumped: ", first, " after ", dumped);
  CHECK(screen_number(s, "PID") == pid);
  CHECK(screen_field(s, "MODE") == "raw");
  CHECK(wait_until([&] { return screen_number(tmux.screen(), "COUNTER") > first; }, 10s));
  CHECK(pane_command() == "tty_screen\n");
  // In the foreground, in raw mode: one key, no Enter.
  tmux.type("x", false);
  CHECK_MESSAGE(wait_until([&] { return screen_field(s = tmux.screen(), "KEY") == "x"; }, 10s), s);
  tmux.type("q", false);
  CHECK_MESSAGE(wait_until([&] { return (s = tmux.screen()).find("RC=0") != std::string::npos; }, 20s), s);
  CHECK(wait_until([&] { return proc_exe(pid) != exe; }, 10s));
}

}  // namespace

TEST_CASE("program: a full-screen program in tmux comes back on the terminal with --shell-job") {
  shell_job_in_tmux(false);
}

TEST_CASE("program: the same through -D - (dump into a file, restore --shell-job -D - < file in the pane)") {
  shell_job_in_tmux(true);
}

// redis-server on a free port (redis refuses port 0), loaded with 1000
// keys through redis-cli, with one client connection held open by the
// test: dumped with --tcp-established (its listeners on 0.0.0.0 and ::,
// epoll, pipes, threads and that connection), restored, it answers with
// the same data (DBSIZE, every value, over IPv4 and IPv6), the held
// connection goes on, and new writes work. Readiness: redis-cli PING in a
// bounded handshake loop (redis has no other way to say it is up).
TEST_CASE("program: redis-server with 1000 keys answers with the same data after restore; a held connection goes on") {
  int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(probe >= 0);
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  REQUIRE(bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(getsockname(probe, reinterpret_cast<sockaddr*>(&a), &al) == 0);
  close(probe);
  const int port = ntohs(a.sin_port);
  const std::string ps = std::to_string(port);
  TempDir wd;
  Background srv({"/usr/bin/setsid", "/usr/bin/redis-server", "--port", ps, "--save", "", "--appendonly", "no",
                  "--daemonize", "no", "--dir", wd.path()});
  const pid_t pid = srv.pid();
  auto cli = [&](std::vector<std::string> args, const std::string& input = "", const std::string& host = "127.0.0.1") {
    args.insert(args.begin(), {"/usr/bin/redis-cli", "-h", host, "-p", ps});
    return run(args, input);
  };
  REQUIRE_MESSAGE(wait_until([&] { return cli({"PING"}).out == "PONG\n"; }, 30s), "redis-server did not answer: ",
                  srv.err());
  const std::string exe = proc_exe(pid), cmdline = proc_cmdline(pid);
  struct Guard {
    pid_t pid;
    std::string exe;
    ~Guard() { kill_tree({pid}, exe); }
  } guard{pid, exe};
  std::string load;
  std::vector<std::string> mget = {"--raw", "MGET"};
  for (int i = 0; i < 1000; i++) {
    load += "SET key:" + std::to_string(i) + " value-" + std::to_string(i * 7919 % 1000003) + "\n";
    mget.push_back("key:" + std::to_string(i));
  }
  REQUIRE(cli({}, load).status == 0);
  REQUIRE(cli({"DBSIZE"}).out == "1000\n");
  const std::string values = cli(mget).out;
  REQUIRE(std::count(values.begin(), values.end(), '\n') == 1000);
  // A client connection of our own, held across the checkpoint.
  int held = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(held >= 0);
  a.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(connect(held, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  auto ask = [&](const std::string& cmd, size_t want) {
    if (send(held, cmd.data(), cmd.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(cmd.size())) return std::string("send failed");
    std::string got;
    char b[256];
    while (got.size() < want) {
      struct pollfd p = {held, POLLIN, 0};
      if (poll(&p, 1, 30000) != 1) break;
      ssize_t n = recv(held, b, sizeof b, 0);
      if (n <= 0) break;
      got.append(b, static_cast<size_t>(n));
    }
    return got;
  };
  REQUIRE(ask("SET held 1\r\n", 5) == "+OK\r\n");
  // Every other client (each redis-cli above) is gone from redis's table:
  // only ours and the asking one are listed.
  REQUIRE(wait_until(
      [&] {
        std::string l = cli({"CLIENT", "LIST"}).out;
        return std::count(l.begin(), l.end(), '\n') == 2;
      },
      30s));
  TempDir img;
  auto r = crtools({"dump", "-t", std::to_string(pid), "-D", img.path() + "/set", "--tcp-established"});
  INFO("dump stderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(srv.wait(30s).status == 128 + SIGKILL);
  // The held connection as the images show it: established, with the
  // keepalive redis sets on client sockets (tcp-keepalive 300).
  auto shown = crtools({"show", "-D", img.path() + "/set", "-f", "files.img", "--json"});
  CHECK(shown.out.find("\"state\": \"established\"") != std::string::npos);
  CHECK(shown.out.find("\"keepidle\": 300") != std::string::npos);
  auto rr = crtools({"restore", "-D", img.path() + "/set", "-d"});
  INFO("restore stderr: ", rr.err);
  REQUIRE(rr.status == 0);
  REQUIRE(wait_restored(pid, exe, cmdline, 30s));
  CHECK(cli({"DBSIZE"}).out == "1001\n");  // the 1000 keys and "held"
  CHECK(cli(mget).out == values);
  CHECK(cli({"GET", "key:7"}).out == "value-55433\n");
  CHECK(cli({"PING"}, "", "::1").out == "PONG\n");
  CHECK(ask("GET held\r\n", 7) == "$1\r\n1\r\n");
  CHECK(cli({"SET", "after", "yes"}).out == "OK\n");
  CHECK(cli({"GET", "after"}).out == "yes\n");
  CHECK(cli({"DBSIZE"}).out == "1002\n");
  close(held);
  cli({"SHUTDOWN", "NOSAVE"});
  std::vector<int> st = reap_pids({pid}, 30s);
  CHECK_MESSAGE(st[0] == 0, "redis-server ended with ", st[0]);
}
