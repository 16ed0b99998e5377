// cr-exec's command line and output, kept apart from ptrace so they can be
// unit-tested:  SYSCALL [ARG...]  ->  ExecRequest  ->  `open("/foo/bar", 2) = 3`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/options.h"

namespace cr {

struct ExecArg {
  enum class Kind { Int, String };
  Kind kind = Kind::Int;
  uint64_t value = 0;  // Int: the register value (two's complement if negative)
  int base = 10;       // Int: 10, 16 or 8, as written (output uses it)
  bool negative = false;
  std::string text;    // String: the bytes after '&'
};

struct ExecRequest {
  long nr = -1;
  std::string name;  // "close", or "syscall_<nr>" for a number with no name
  std::vector<ExecArg> args;
};

constexpr size_t kMaxSyscallArgs = 6;

// cr-exec's options: -t PID (required), -o, -v; parsing stops at SYSCALL so
// that "-1" after it is an argument, not an option.
const CommandSpec& exec_command_spec();

// An integer in C syntax (123, -1, 0x1f, 0755) that fits 64 bits, or
// &STRING (the string is passed by address, NUL-terminated).
Result<ExecArg> parse_exec_arg(const std::string& s);
// A system call name from the generated table, or its number.
Result<long> parse_syscall(const std::string& s);
// positional = {SYSCALL, ARG...}
Result<ExecRequest> parse_exec_request(const std::vector<std::string>& positional);

// Calls that cannot be run on a borrowed instruction and then undone:
// fork, vfork, clone, clone3 (the child would start in the borrowed
// context, not in the program) and rt_sigreturn (it would load registers
// from the stack). Error explains.
Status check_exec_allowed(const ExecRequest& r);

// strace-style output.
std::string quote_c_string(std::string_view s);     // "\"a\\n\""
std::string format_exec_call(const ExecRequest& r);  // open("/foo/bar", 2)
// 3 | -1 EBADF (Bad file descriptor) | ? ERESTARTSYS (To be restarted if SA_RESTART is set)
std::string format_exec_return(const ExecRequest& r, long ret);
std::string format_exec_line(const ExecRequest& r, long ret);  // call + " = " + return
// The line for a call during which the task exited: exit_group(3) = ?
std::string format_exec_exited_line(const ExecRequest& r);

}  // namespace cr
