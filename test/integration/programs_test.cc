// Real programs through the dump/kill/restore cycle (issue 5): a python3
// program counting in a dict and appending to a file, a perl program doing
// the same in a hash, and sleep(1). Each must go on from its pre-dump state:
// the counter and the log continue where they stopped (no restart, no gap),
// and the program's own check of its memory passes.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
