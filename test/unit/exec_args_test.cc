// cr-exec: argument parsing, the syscall name table, strace-style output,
// the restart rules of the remote-syscall engine, RemotePtr and the /proc
// parsers it uses.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cerrno>
#include <climits>
#include <string>
#include <type_traits>
#include <vector>

#include "common/exec_args.h"
#include "common/options.h"
#include "common/ptrace/restart.h"
#include "common/ptrace/task_state.h"
#include "common/remote/remote_ptr.h"
#include "common/remote/syscall_names.h"

using namespace cr;

namespace {

ExecRequest req_of(std::vector<std::string> v) {
  auto r = parse_exec_request(v);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().str()));
  return *r;
}

Result<Options> parse_exec_cmdline(std::vector<std::string> args) {
  std::vector<std::string> storage = {"cr-exec"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  return parse_options(exec_command_spec(), static_cast<int>(storage.size()), argv.data());
}

}  // namespace

TEST_CASE("exec args: integers in C syntax") {
  struct {
    const char* in;
    uint64_t value;
    int base;
  } ok[] = {
      {"0", 0, 10},
      {"123", 123, 10},
      {"-1", ~0ULL, 10},
      {"0x1f", 0x1f, 16},
      {"0X1F", 0x1f, 16},
      {"-0x10", static_cast<uint64_t>(-16), 16},
      {"0755", 0755, 8},
      {"18446744073709551615", ~0ULL, 10},
      {"-9223372036854775808", 1ULL << 63, 10},
      {"0xffffffffffffffff", ~0ULL, 16},
  };
  for (auto& c : ok) {
    CAPTURE(c.in);
    auto a = parse_exec_arg(c.in);
    REQUIRE(a.ok());
    CHECK(a->kind == ExecArg::Kind::Int);
    CHECK(a->value == c.value);
    CHECK(a->base == c.base);
  }
  for (const char* bad : {"", "-", "0x", "12abc", "abc", "08", "1.5", "+3", "18446744073709551616",
                          "-9223372036854775809", "0x10000000000000000", " 1"}) {
    CAPTURE(bad);
    auto a = parse_exec_arg(bad);
    REQUIRE_FALSE(a.ok());
    bool explained = a.error().message.find("is not an argument") != std::string::npos ||
                     a.error().message.find("does not fit") != std::string::npos;
    CHECK(explained);
  }
}

TEST_CASE("exec args: &STRING is passed by address") {
  auto a = parse_exec_arg("&/foo/bar");
  REQUIRE(a.ok());
  CHECK(a->kind == ExecArg::Kind::String);
  CHECK(a->text == "/foo/bar");
  auto e = parse_exec_arg("&");
  REQUIRE(e.ok());
  CHECK(e->kind == ExecArg::Kind::String);
  CHECK(e->text.empty());
  auto amp = parse_exec_arg("&&x y");
  REQUIRE(amp.ok());
  CHECK(amp->text == "&x y");
}

TEST_CASE("exec args: system call names come from the generated table") {
  CHECK(syscall_table_size() > 300);
  CHECK(*syscall_number("read") == SYS_read);
  CHECK(*syscall_number("close") == SYS_close);
  CHECK(*syscall_number("open") == SYS_open);
  CHECK(*syscall_number("openat") == SYS_openat);
  CHECK(*syscall_number("restart_syscall") == SYS_restart_syscall);
  CHECK(*syscall_number("clone3") == SYS_clone3);
  CHECK_FALSE(syscall_number("nosuchcall").has_value());
  CHECK_FALSE(syscall_number("").has_value());
  CHECK(std::string(syscall_name(SYS_getpid)) == "getpid");
  CHECK(syscall_name(100000) == nullptr);
  // Every name maps back to its number.
  for (long nr = 0; nr < 1024; nr++) {
    const char* n = syscall_name(nr);
    if (n) {
      CAPTURE(n);
      CHECK(*syscall_number(n) == nr);
    }
  }
}

TEST_CASE("exec args: SYSCALL is a name or a number") {
  CHECK(*parse_syscall("getpid") == SYS_getpid);
  CHECK(*parse_syscall("39") == 39);
  CHECK(*parse_syscall("0x27") == 39);
  auto u = parse_syscall("nosuchcall");
  REQUIRE_FALSE(u.ok());
  CHECK(u.error().message == "unknown system call 'nosuchcall'");
  CHECK_FALSE(u.error().remedy.empty());
  CHECK_FALSE(parse_syscall("-1").ok());
  CHECK_FALSE(parse_syscall("99999999999").ok());
  CHECK_FALSE(parse_syscall("").ok());
}

TEST_CASE("exec args: a request has at most six arguments") {
  ExecRequest r = req_of({"open", "&/foo/bar", "2"});
  CHECK(r.nr == SYS_open);
  CHECK(r.name == "open");
  REQUIRE(r.args.size() == 2);
  CHECK(r.args[0].text == "/foo/bar");
  CHECK(r.args[1].value == 2);

  CHECK(req_of({"getpid"}).args.empty());
  CHECK(req_of({"mmap", "0", "4096", "3", "0x22", "-1", "0"}).args.size() == 6);
  auto seven = parse_exec_request({"mmap", "0", "4096", "3", "0x22", "-1", "0", "0"});
  REQUIRE_FALSE(seven.ok());
  CHECK(seven.error().message.find("too many arguments") != std::string::npos);
  CHECK_FALSE(parse_exec_request({}).ok());
  CHECK_FALSE(parse_exec_request({"close", "one"}).ok());

  ExecRequest n = req_of({"1000"});
  CHECK(n.nr == 1000);
  CHECK(n.name == "syscall_1000");
}

TEST_CASE("exec args: calls that cannot be undone are refused") {
  for (const char* c : {"fork", "vfork", "clone", "clone3", "rt_sigreturn"}) {
    CAPTURE(c);
    auto st = check_exec_allowed(req_of({c}));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message.find("refusing to run") == 0);
  }
  for (const char* c : {"getpid", "close", "execve", "exit_group", "dup2"}) {
    CAPTURE(c);
    CHECK(check_exec_allowed(req_of({c})).ok());
  }
}

TEST_CASE("exec args: strace-style output") {
  CHECK(format_exec_line(req_of({"close", "1"}), -EBADF) == "close(1) = -1 EBADF (Bad file descriptor)");
  CHECK(format_exec_line(req_of({"open", "&/foo/bar", "2"}), 3) == "open(\"/foo/bar\", 2) = 3");
  CHECK(format_exec_line(req_of({"getpid"}), 1234) == "getpid() = 1234");
  CHECK(format_exec_line(req_of({"lseek", "3", "-1", "0"}), -EINVAL) ==
        "lseek(3, -1, 0) = -1 EINVAL (Invalid argument)");
  CHECK(format_exec_line(req_of({"openat", "-100", "&x", "0x42", "0644"}), 5) ==
        "openat(-100, \"x\", 0x42, 0644) = 5");
  CHECK(format_exec_line(req_of({"mmap", "0", "4096", "3", "0x22", "-1", "0"}), 0x7f0000001000L) ==
        "mmap(0, 4096, 3, 0x22, -1, 0) = 0x7f0000001000");
  CHECK(format_exec_line(req_of({"pause"}), -kERESTARTNOHAND) ==
        "pause() = ? ERESTARTNOHAND (To be restarted if no handler)");
  CHECK(format_exec_return(req_of({"read", "0", "0", "1"}), -kERESTARTSYS) ==
        "? ERESTARTSYS (To be restarted if SA_RESTART is set)");
  CHECK(format_exec_return(req_of({"nanosleep", "0", "0"}), -kERESTART_RESTARTBLOCK) ==
        "? ERESTART_RESTARTBLOCK (Interrupted by signal)");
  CHECK(format_exec_line(req_of({"1000"}), -ENOSYS) == "syscall_1000() = -1 ENOSYS (Function not implemented)");
  CHECK(format_exec_exited_line(req_of({"exit_group", "3"})) == "exit_group(3) = ?");
  CHECK(format_exec_return(req_of({"getpid"}), -4000) == "-1 E4000 (Unknown error 4000)");

  CHECK(quote_c_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quote_c_string("tab\there\nnl") == "\"tab\\there\\nnl\"");
  CHECK(quote_c_string(std::string("\x01\xff", 2)) == "\"\\x01\\xff\"");
  CHECK(format_exec_call(req_of({"write", "1", "&hi\n", "3"})) == "write(1, \"hi\\n\", 3)");
}

TEST_CASE("exec args: the command line stops at SYSCALL so -1 is an argument") {
  auto o = parse_exec_cmdline({"-t", "1234", "lseek", "3", "-1", "0"});
  REQUIRE(o.ok());
  CHECK(o->tree == 1234);
  CHECK(o->positional == std::vector<std::string>{"lseek", "3", "-1", "0"});

  auto v = parse_exec_cmdline({"-v", "2", "-t", "7", "-o", "log", "close", "-1"});
  REQUIRE(v.ok());
  CHECK(v->verbosity == 2);
  CHECK(v->log_file == "log");
  CHECK(v->positional == std::vector<std::string>{"close", "-1"});

  auto missing = parse_exec_cmdline({"-t", "7"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("missing arguments") != std::string::npos);

  auto foreign = parse_exec_cmdline({"-t", "7", "-D", "dir", "getpid"});
  REQUIRE_FALSE(foreign.ok());
  CHECK(foreign.error().message.find("does not apply to exec") != std::string::npos);

  CHECK(usage_text(exec_command_spec()).find("&STRING") != std::string::npos);
}

TEST_CASE("exec restart: what an interrupted system call needs") {
  user_regs_struct r{};
  r.rip = 0x401002;

  SUBCASE("not in a system call") {
    r.orig_rax = static_cast<uint64_t>(-1);
    r.rax = static_cast<uint64_t>(-kERESTARTSYS);  // stale value, not a restart
    CHECK(pending_restart(r, false) == PendingRestart::None);
    CHECK(regs_to_reissue(r, PendingRestart::None).rip == r.rip);
  }
  SUBCASE("completed call") {
    r.orig_rax = SYS_read;
    r.rax = 5;
    CHECK(pending_restart(r, false) == PendingRestart::None);
  }
  SUBCASE("ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND rewind") {
    for (long code : {kERESTARTSYS, kERESTARTNOINTR, kERESTARTNOHAND}) {
      r.orig_rax = SYS_read;
      r.rax = static_cast<uint64_t>(-code);
      CHECK(pending_restart(r, false) == PendingRestart::Rewind);
      CHECK(pending_restart(r, true) == PendingRestart::Rewind);
      user_regs_struct o = regs_to_reissue(r, PendingRestart::Rewind);
      CHECK(o.rip == 0x401000);
      CHECK(o.rax == SYS_read);
      CHECK(o.orig_rax == SYS_read);
    }
  }
  SUBCASE("ERESTART_RESTARTBLOCK goes through restart_syscall") {
    r.orig_rax = SYS_nanosleep;
    r.rax = static_cast<uint64_t>(-kERESTART_RESTARTBLOCK);
    CHECK(pending_restart(r, false) == PendingRestart::RestartBlock);
    user_regs_struct o = regs_to_reissue(r, PendingRestart::RestartBlock);
    CHECK(o.rip == 0x401000);
    CHECK(o.rax == static_cast<uint64_t>(SYS_restart_syscall));
  }
  SUBCASE("EINTR from epoll_wait is the stop's doing unless a signal is pending") {
    r.orig_rax = SYS_epoll_wait;
    r.rax = static_cast<uint64_t>(-EINTR);
    CHECK(pending_restart(r, false) == PendingRestart::RewindEintr);
    CHECK(pending_restart(r, true) == PendingRestart::None);
    CHECK(regs_to_reissue(r, PendingRestart::RewindEintr).rax == SYS_epoll_wait);
    r.orig_rax = SYS_read;  // read's EINTR is genuine
    CHECK(pending_restart(r, false) == PendingRestart::None);
  }
  CHECK(is_restart_errno(512));
  CHECK(is_restart_errno(516));
  CHECK_FALSE(is_restart_errno(515));
  CHECK_FALSE(is_restart_errno(EINTR));
}

TEST_CASE("exec remote: RemotePtr is an address, not a pointer") {
  static_assert(!std::is_convertible_v<RemotePtr<int>, int*>);
  static_assert(!std::is_convertible_v<int*, RemotePtr<int>>);
  static_assert(!std::is_convertible_v<uint64_t, RemotePtr<int>>);
  static_assert(std::is_convertible_v<RemotePtr<int>, RemotePtr<void>>);
  static_assert(!std::is_convertible_v<RemotePtr<void>, RemotePtr<int>>);
  static_assert(!std::is_convertible_v<RemotePtr<int>, RemotePtr<long>>);
  static_assert(sizeof(RemotePtr<char>) == 8);

  RemotePtr<uint32_t> p(0x1000);
  CHECK((p + 3).addr() == 0x100c);
  CHECK((p - 1).addr() == 0xffc);
  CHECK(((p + 4) - p) == 4);
  RemotePtr<void> v = p;
  CHECK((v + 3).addr() == 0x1003);
  CHECK(p.cast<char>().addr() == 0x1000);
  CHECK((p.cast<char>() + 1).addr() == 0x1001);
  RemotePtr<uint32_t> q = p;
  ++q;
  CHECK(q > p);
  CHECK(q == RemotePtr<uint32_t>(0x1004));
  q += 2;
  CHECK(q.addr() == 0x100c);
  CHECK_FALSE(RemotePtr<int>());
  CHECK(RemotePtr<int>().null());
  CHECK(static_cast<bool>(p));
}

TEST_CASE("exec proc: status and stat parsers") {
  const std::string status =
      "Name:\tmy prog\nUmask:\t0022\nState:\tT (stopped)\nTgid:\t100\nNgid:\t0\nPid:\t101\n"
      "PPid:\t1\nTracerPid:\t55\nKthread:\t0\nSigQ:\t0/1\nSigPnd:\t0000000000000200\n"
      "ShdPnd:\t0000000000000800\nSigBlk:\t0000000000000a00\nSeccomp:\t2\n";
  TaskState st;
  REQUIRE(parse_proc_status(status, st).ok());
  CHECK(st.name == "my prog");
  CHECK(st.tgid == 100);
  CHECK(st.tid == 101);
  CHECK(st.tracer == 55);
  CHECK_FALSE(st.kthread);
  CHECK(st.state == 'T');
  CHECK(st.seccomp == 2);
  CHECK(st.sig_pending == 0x200);
  CHECK(st.shd_pending == 0x800);
  CHECK(st.sig_blocked == 0xa00);
  TaskState bad;
  CHECK_FALSE(parse_proc_status("Name:\tx\n", bad).ok());

  CHECK(parse_proc_stat_state("12 (cat) R 1 2 3") == 'R');
  CHECK(parse_proc_stat_state("12 (a) b) Z 1 2 3") == 'Z');
  CHECK(parse_proc_stat_state("12 (x") == 0);
}

TEST_CASE("exec proc: refusals name the reason") {
  TaskState st;
  st.tid = st.tgid = 4242;
  st.state = 'S';
  CHECK(check_task_enterable(st).ok());

  TaskState z = st;
  z.state = 'Z';
  auto ez = check_task_enterable(z);
  REQUIRE_FALSE(ez.ok());
  CHECK(ez.error().message.find("zombie") != std::string::npos);
  CHECK(ez.error().pid == 4242);

  TaskState k = st;
  k.kthread = true;
  k.name = "kworker/0:1";
  auto ek = check_task_enterable(k);
  REQUIRE_FALSE(ek.ok());
  CHECK(ek.error().message.find("kernel thread") != std::string::npos);

  TaskState t = st;
  t.tracer = 77;
  auto et = check_task_enterable(t);
  REQUIRE_FALSE(et.ok());
  CHECK(et.error().message.find("already traced by pid 77") != std::string::npos);

  TaskState self = st;
  self.tgid = getpid();
  auto es = check_task_enterable(self);
  REQUIRE_FALSE(es.ok());
  CHECK(es.error().message.find("crtools itself") != std::string::npos);
}

TEST_CASE("exec proc: read_task_state of this process and of no process") {
  auto me = read_task_state(getpid());
  REQUIRE(me.ok());
  CHECK(me->tgid == getpid());
  CHECK(me->state == 'R');
  auto none = read_task_state(INT_MAX);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().err == ESRCH);
  CHECK(none.error().pid == INT_MAX);
}
