// common/proc/status and common/proc/stat: fixed text from a 6.18 machine
// (comm "a) (b c)"), escapes, malformed text, and live checks.
#include <doctest/doctest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <string>

#include "common/proc/stat.h"
#include "common/proc/status.h"

using namespace cr;
using namespace cr::proc;

namespace {

// prctl(PR_SET_NAME, "a) (b c)"), umask 027, SIGUSR1 blocked and pending,
// SIGRTMIN+3 blocked, SIGHUP SIGINT SIGQUIT SIGTERM ignored.
const char kStatus[] = R"PROC(Name:	a) (b c)
Umask:	0027
State:	S (sleeping)
Tgid:	8302
Ngid:	0
Pid:	8302
PPid:	8293
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	 
NStgid:	8302
NSpid:	8302
NSpgid:	8293
NSsid:	6666
Kthread:	0
VmPeak:	    2588 kB
VmSize:	    2552 kB
VmLck:	       8 kB
VmPin:	       0 kB
VmHWM:	    1524 kB
VmRSS:	    1524 kB
RssAnon:	     112 kB
RssFile:	    1408 kB
RssShmem:	       4 kB
VmData:	     272 kB
VmStk:	     132 kB
VmExe:	       4 kB
VmLib:	    1532 kB
VmPTE:	      44 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
untag_mask:	0xffffffffffffffff
Threads:	1
SigQ:	5/96368
SigPnd:	0000000000000200
ShdPnd:	0000000000000000
SigBlk:	0000001000010200
SigIgn:	0000000000004007
SigCgt:	0000000000000000
CapInh:	0000000000000000
CapPrm:	000001fffeffffff
CapEff:	000001fffeffffff
CapBnd:	000001fffeffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	vulnerable
SpeculationIndirectBranch:	always enabled
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed:	00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001
Mems_allowed_list:	0
voluntary_ctxt_switches:	6
nonvoluntary_ctxt_switches:	1
)PROC";
const char kStat[] = R"PROC(8302 (a) (b c)) S 8293 8293 6666 0 -1 4194304 87 429 1 0 0 0 0 0 20 0 1 0 121809 2613248 336 18446744073709551615 94894302797824 94894302800817 140727647371040 0 0 512 66048 16391 0 1 0 0 17 0 0 0 0 0 0 94894302809552 94894302810376 94895119114240 140727647378077 140727647378083 140727647378083 140727647379442 0
)PROC";

std::string status_err(std::string_view text) {
  auto r = parse_status(text, "/proc/812/status");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

std::string stat_err(std::string_view text) {
  auto r = parse_stat(text, "/proc/812/stat");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

std::string replaced(std::string s, std::string_view from, std::string_view to) {
  size_t p = s.find(from);
  REQUIRE(p != std::string::npos);
  s.replace(p, from.size(), to);
  return s;
}

std::string without_line(std::string s, std::string_view key) {
  size_t p = s.find(key);
  REQUIRE(p != std::string::npos);
  s.erase(p, s.find('\n', p) - p + 1);
  return s;
}

std::string self_comm() {
  char name[17] = {};
  prctl(PR_GET_NAME, name);
  return name;
}

}  // namespace

TEST_CASE("proc status: parses a real 6.18 status file") {
  auto r = parse_status(kStatus, "/proc/8302/status");
  REQUIRE(r.ok());
  const ProcStatus& s = *r;
  CHECK(s.name == "a) (b c)");
  REQUIRE(s.umask);
  CHECK(*s.umask == 027);
  CHECK(s.state == 'S');
  CHECK(s.tgid == 8302);
  CHECK(s.pid == 8302);
  CHECK(s.ppid == 8293);
  CHECK(s.tracer_pid == 0);
  CHECK(s.uid == std::array<uint32_t, 4>{0, 0, 0, 0});
  CHECK(s.gid == std::array<uint32_t, 4>{0, 0, 0, 0});
  CHECK(s.groups.empty());
  CHECK(s.fd_size == 256);
  CHECK(s.ns_tgid == std::vector<pid_t>{8302});
  CHECK(s.ns_pid == std::vector<pid_t>{8302});
  CHECK(s.ns_pgid == std::vector<pid_t>{8293});
  CHECK(s.ns_sid == std::vector<pid_t>{6666});
  REQUIRE(s.kthread);
  CHECK_FALSE(*s.kthread);
  CHECK(s.threads == 1);
  CHECK(s.sigq_queued == 5);
  CHECK(s.sigq_limit == 96368);
  CHECK(s.sig_pnd == (1ull << (SIGUSR1 - 1)));
  CHECK(s.shd_pnd == 0);
  // SIGCHLD too: the file was copied out through system(), which blocks it.
  CHECK(s.sig_blk == ((1ull << (SIGUSR1 - 1)) | (1ull << (SIGCHLD - 1)) | (1ull << (SIGRTMIN + 3 - 1))));
  CHECK(s.sig_ign == ((1ull << (SIGHUP - 1)) | (1ull << (SIGINT - 1)) | (1ull << (SIGQUIT - 1)) |
                      (1ull << (SIGTERM - 1))));
  CHECK(s.sig_cgt == 0);
  CHECK(s.cap_inh == 0);
  CHECK(s.cap_prm == 0x000001fffeffffffull);
  CHECK(s.cap_eff == 0x000001fffeffffffull);
  CHECK(s.cap_bnd == 0x000001fffeffffffull);
  CHECK(s.cap_amb == 0);
  CHECK_FALSE(s.no_new_privs);
  CHECK(s.seccomp == 0);
  CHECK(s.seccomp_filters == 0);
  CHECK(s.speculation_store_bypass == "vulnerable");
  CHECK(s.speculation_indirect_branch == "always enabled");
}

TEST_CASE("proc status: names, groups, zombies, unknown keys") {
  // The kernel escapes only '\n' and '\\' in Name; tabs and leading blanks stay.
  auto r = parse_status(replaced(kStatus, "Name:\ta) (b c)", "Name:\t x\\ny\\\\z\tw ("));
  REQUIRE(r.ok());
  CHECK(r->name == " x\ny\\z\tw (");
  CHECK(status_err(replaced(kStatus, "Name:\ta) (b c)", "Name:\tbad\\q")) ==
        "/proc/812/status: line 1: Name: bad escape in 'bad\\q'");
  CHECK(status_err(replaced(kStatus, "Name:\ta) (b c)", "Name: x")).find("line 1: Name: expected a tab") !=
        std::string::npos);

  r = parse_status(replaced(kStatus, "Groups:\t \n", "Groups:\t4 24 27 1000 \n"));
  REQUIRE(r.ok());
  CHECK(r->groups == std::vector<uint32_t>{4, 24, 27, 1000});

  // Nested pid namespaces: the ids are listed outermost first.
  r = parse_status(replaced(kStatus, "NSpid:\t8302", "NSpid:\t8302\t1"));
  REQUIRE(r.ok());
  CHECK(r->ns_pid == std::vector<pid_t>{8302, 1});

  // A zombie has no Umask line (and no Vm* lines).
  r = parse_status(without_line(replaced(kStatus, "State:\tS (sleeping)", "State:\tZ (zombie)"), "Umask:"));
  REQUIRE(r.ok());
  CHECK_FALSE(r->umask);
  CHECK(r->state == 'Z');

  // Keys this parser does not know are ignored, wherever they are.
  r = parse_status(replaced(kStatus, "Tgid:", "Future_Key:\twhatever : it is\nTgid:"));
  REQUIRE(r.ok());
  CHECK(r->tgid == 8302);
}

TEST_CASE("proc status: malformed input gives errors naming file and line") {
  CHECK(status_err(without_line(kStatus, "Pid:\t8302")) == "/proc/812/status: no Pid line");
  CHECK(status_err(without_line(kStatus, "SigCgt:")) == "/proc/812/status: no SigCgt line");
  CHECK(status_err(without_line(kStatus, "CapAmb:")) == "/proc/812/status: no CapAmb line");
  CHECK(status_err(replaced(kStatus, "SigBlk:\t0000001000010200", "SigBlk:\t00000010000102zz")) ==
        "/proc/812/status: line 41: SigBlk: bad value '00000010000102zz'");
  CHECK(status_err(replaced(kStatus, "SigBlk:\t0000001000010200", "SigBlk:\t10000001000010200"))
            .find("SigBlk: bad value") != std::string::npos);  // 65 bits
  CHECK(status_err(replaced(kStatus, "SigBlk:\t0000001000010200", "SigBlk:\t")).find("SigBlk: bad value ''") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "Uid:\t0\t0\t0\t0", "Uid:\t0\t0\t0")).find("line 9: Uid: bad value") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "Gid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t4294967296")).find("Gid: bad value") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "Tgid:\t8302", "Tgid:\t99999999999")).find("Tgid: bad value") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "Tgid:\t8302", "Tgid:\t")).find("Tgid: bad value") != std::string::npos);
  CHECK(status_err(replaced(kStatus, "Umask:\t0027", "Umask:\t0089")).find("Umask: bad value") != std::string::npos);
  CHECK(status_err(replaced(kStatus, "SigQ:\t5/96368", "SigQ:\t5")).find("SigQ: bad value '5'") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "State:\tS (sleeping)", "State:\t")).find("State: bad value") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "Seccomp:\t0", "Seccomp:\t3")).find("Seccomp: bad value") != std::string::npos);
  CHECK(status_err(replaced(kStatus, "NoNewPrivs:\t0", "NoNewPrivs:\tyes")).find("NoNewPrivs: bad value") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "NSpid:\t8302", "NSpid:\t")).find("NSpid: bad value") != std::string::npos);
  CHECK(status_err(replaced(kStatus, "NSpid:\t8302", "NSpid:\t1\t8302")).find("NSpid does not contain Pid") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "Threads:", "Pid:\t1\nThreads:")).find("repeated Pid line") !=
        std::string::npos);
  CHECK(status_err(replaced(kStatus, "Threads:", "no colon here\nThreads:")).find("bad line 'no colon here'") !=
        std::string::npos);
  std::string s = kStatus;
  CHECK(status_err(s.substr(0, s.size() - 1)).find("truncated line") != std::string::npos);
  CHECK(status_err("").find("no Name line") != std::string::npos);
  std::string_view all(kStatus);
  // A prefix cut inside a line fails; one cut at a line boundary fails
  // unless every required line came before the cut.
  for (size_t n = 0; n < all.size(); n += 5)
    if (parse_status(all.substr(0, n)).ok()) CHECK(all[n - 1] == '\n');
}

TEST_CASE("proc stat: parses a real 6.18 stat line with a hostile comm") {
  auto r = parse_stat(kStat, "/proc/8302/stat");
  REQUIRE(r.ok());
  const ProcStat& s = *r;
  CHECK(s.pid == 8302);
  CHECK(s.comm == "a) (b c)");
  CHECK(s.state == 'S');
  CHECK(s.ppid == 8293);
  CHECK(s.pgrp == 8293);
  CHECK(s.session == 6666);
  CHECK(s.tty_nr == 0);
  CHECK(s.tpgid == -1);
  CHECK(s.flags == 4194304);
  CHECK(s.minflt == 87);
  CHECK(s.cminflt == 429);
  CHECK(s.majflt == 1);
  CHECK(s.priority == 20);
  CHECK(s.nice == 0);
  CHECK(s.num_threads == 1);
  CHECK(s.starttime == 121809);
  CHECK(s.vsize == 2613248);
  CHECK(s.rss == 336);
  CHECK(s.rsslim == UINT64_MAX);
  CHECK(s.startcode == 94894302797824ull);
  CHECK(s.endcode == 94894302800817ull);
  CHECK(s.startstack == 140727647371040ull);
  CHECK(s.signal == 512);
  CHECK(s.blocked == 66048);
  CHECK(s.sigignore == 16391);
  CHECK(s.sigcatch == 0);
  CHECK(s.wchan == 1);
  CHECK(s.exit_signal == 17);
  CHECK(s.processor == 0);
  CHECK(s.rt_priority == 0);
  CHECK(s.policy == 0);
  CHECK(s.start_data == 94894302809552ull);
  CHECK(s.end_data == 94894302810376ull);
  CHECK(s.start_brk == 94895119114240ull);
  CHECK(s.arg_start == 140727647378077ull);
  CHECK(s.arg_end == 140727647378083ull);
  CHECK(s.env_start == 140727647378083ull);
  CHECK(s.env_end == 140727647379442ull);
  CHECK(s.exit_code == 0);

  // comm is raw in stat: newlines, tabs, backslashes, parentheses.
  std::string odd = kStat;
  odd.replace(odd.find("(a) (b c))"), 10, "(x\ny\\z\tw ()");
  auto o = parse_stat(odd);
  REQUIRE(o.ok());
  CHECK(o->comm == "x\ny\\z\tw (");
  CHECK(o->env_end == 140727647379442ull);
  odd = kStat;
  odd.replace(odd.find("(a) (b c))"), 10, "())");
  o = parse_stat(odd);
  REQUIRE(o.ok());
  CHECK(o->comm == ")");
  odd.replace(odd.find("())"), 3, "()");
  o = parse_stat(odd);
  REQUIRE(o.ok());
  CHECK(o->comm.empty());

  // Negative values where the kernel prints them (RT priority, nice).
  auto neg = parse_stat(replaced(kStat, " 20 0 1 0 121809", " -51 -5 1 0 121809"));
  REQUIRE(neg.ok());
  CHECK(neg->priority == -51);
  CHECK(neg->nice == -5);

  // A future kernel's extra numeric fields are ignored.
  std::string more = kStat;
  more.insert(more.size() - 1, " 7 8");
  CHECK(parse_stat(more).ok());
}

TEST_CASE("proc stat: malformed input gives errors naming file and field") {
  std::string s = kStat;
  CHECK(stat_err(s.substr(0, s.size() - 1)) == "/proc/812/stat: truncated (no newline at end)");
  CHECK(stat_err(s.substr(0, s.rfind(' ')) + "\n") == "/proc/812/stat: 51 fields, expected 52");
  CHECK(stat_err(replaced(kStat, " 18446744073709551615 ", " 18446744073709551616 ")) ==
        "/proc/812/stat: field 25 (rsslim): bad number '18446744073709551616'");
  CHECK(stat_err(replaced(kStat, " 17 0 0 0 ", " x 0 0 0 ")) == "/proc/812/stat: field 38 (exit_signal): bad number 'x'");
  CHECK(stat_err(replaced(kStat, " 4194304 ", " -4194304 ")).find("field 9 (flags)") != std::string::npos);
  CHECK(stat_err(replaced(kStat, " 4194304 ", "  4194304 ")).find("field 9 (flags): bad number ''") !=
        std::string::npos);
  CHECK(stat_err(replaced(kStat, ") S ", ") SS ")).find("field 3 (state)") != std::string::npos);
  CHECK(stat_err(replaced(kStat, ") S ", ")S ")).find("expected ' ' after comm") != std::string::npos);
  CHECK(stat_err(replaced(kStat, "8302 (", "8302x (")).find("field 1 (pid)") != std::string::npos);
  CHECK(stat_err(replaced(kStat, "8302 (", "(")).find("field 1 (pid): bad number '(a)'") != std::string::npos);
  CHECK(stat_err("8302 (cat\n").find("no '(comm)' field") != std::string::npos);
  std::string more = kStat;
  more.insert(more.size() - 1, " 7 junk");
  CHECK(stat_err(more).find("field 54: bad number 'junk'") != std::string::npos);
  CHECK(stat_err("").find("empty") != std::string::npos);
  std::string_view all(kStat);
  for (size_t n = 0; n < all.size(); n++) CHECK_FALSE(parse_stat(all.substr(0, n)).ok());
}

TEST_CASE("proc status and stat: live, this process") {
  mode_t old = umask(023);
  auto st = read_status(getpid());
  umask(old);
  REQUIRE(st.ok());
  CHECK(st->pid == getpid());
  CHECK(st->tgid == getpid());
  CHECK(st->ppid == getppid());
  CHECK(st->name == self_comm());
  REQUIRE(st->umask);
  CHECK(*st->umask == 023);
  CHECK(st->threads >= 1);
  CHECK(st->uid[0] == getuid());
  CHECK(st->uid[1] == geteuid());
  CHECK(st->gid[0] == getgid());
  REQUIRE_FALSE(st->ns_pid.empty());
  CHECK(st->ns_pid.front() == getpid());
  CHECK(st->cap_bnd != 0);

  auto s = read_stat(getpid());
  REQUIRE(s.ok());
  CHECK(s->pid == getpid());
  CHECK(s->comm == self_comm());
  CHECK(s->ppid == getppid());
  CHECK(s->pgrp == getpgrp());
  CHECK(s->session == getsid(0));
  CHECK(s->state == 'R');
  CHECK(s->num_threads == st->threads);
  CHECK(s->startcode < s->endcode);
  CHECK(s->arg_start < s->arg_end);
  CHECK(s->env_start <= s->env_end);
  CHECK(s->start_data <= s->end_data);

  auto t = read_task_stat(getpid(), static_cast<pid_t>(syscall(SYS_gettid)));
  REQUIRE(t.ok());
  CHECK(t->pid == static_cast<pid_t>(syscall(SYS_gettid)));

  auto gone = read_stat(999999999);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().pid == 999999999);
  CHECK(gone.error().message.find("/proc/999999999/stat") != std::string::npos);
}
