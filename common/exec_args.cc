#include "common/exec_args.h"

#include <sys/syscall.h>

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstring>

#include "common/ptrace/restart.h"
#include "common/remote/syscall_names.h"

namespace cr {

namespace {

// Digits of `s` in `base`, into v; false on a bad digit, overflow or nothing.
bool parse_digits(std::string_view s, int base, uint64_t& v) {
  if (s.empty()) return false;
  v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    if (d >= base) return false;
    if (v > (UINT64_MAX - d) / base) return false;
    v = v * base + d;
  }
  return true;
}

// Calls whose return value is an address.
bool returns_address(long nr) { return nr == SYS_mmap || nr == SYS_mremap || nr == SYS_brk || nr == SYS_shmat; }

const char* restart_text(long err) {
  switch (err) {
    case kERESTARTSYS: return "ERESTARTSYS (To be restarted if SA_RESTART is set)";
    case kERESTARTNOINTR: return "ERESTARTNOINTR (To be restarted)";
    case kERESTARTNOHAND: return "ERESTARTNOHAND (To be restarted if no handler)";
    case kERESTART_RESTARTBLOCK: return "ERESTART_RESTARTBLOCK (Interrupted by signal)";
    default: return nullptr;
  }
}

}  // namespace

const CommandSpec& exec_command_spec() {
  static const CommandSpec spec = {
      "exec",
      "-t PID SYSCALL [ARG...]\n\n"
      "Run one system call inside task PID (a thread id names that thread) and print\n"
      "it with its result. SYSCALL is a name (close, openat, ...) or a number; an ARG\n"
      "is an integer (123, -1, 0x1f, 0755) or &STRING, passed as the address of a\n"
      "NUL-terminated copy of STRING in the task.",
      {Opt::Tree, Opt::LogFile, Opt::Verbosity, Opt::Version},
      /*stop_at_positional=*/true,
      /*min_positional=*/1,
      /*max_positional=*/-1};
  return spec;
}

Result<ExecArg> parse_exec_arg(const std::string& s) {
  ExecArg a;
  if (!s.empty() && s[0] == '&') {
    a.kind = ExecArg::Kind::String;
    a.text = s.substr(1);
    return a;
  }
  std::string_view v = s;
  if (!v.empty() && v[0] == '-') {
    a.negative = true;
    v.remove_prefix(1);
  }
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    a.base = 16;
    v.remove_prefix(2);
  } else if (v.size() > 1 && v[0] == '0') {
    a.base = 8;
    v.remove_prefix(1);
  }
  uint64_t mag = 0;
  if (!parse_digits(v, a.base, mag))
    return make_error("'%s' is not an argument: give an integer (123, -1, 0x1f, 0755) or &STRING", s.c_str());
  if (a.negative) {
    if (mag > static_cast<uint64_t>(INT64_MAX) + 1) return make_error("'%s' does not fit in 64 bits", s.c_str());
    a.value = ~mag + 1;
  } else {
    a.value = mag;
  }
  return a;
}

Result<long> parse_syscall(const std::string& s) {
  if (s.empty()) return make_error("missing system call name");
  if (isdigit(static_cast<unsigned char>(s[0]))) {
    auto a = parse_exec_arg(s);
    if (!a || a->negative || a->value > static_cast<uint64_t>(INT_MAX))
      return make_error("'%s' is not a system call number", s.c_str());
    return static_cast<long>(a->value);
  }
  if (auto nr = syscall_number(s)) return *nr;
  Error e = make_error("unknown system call '%s'", s.c_str());
  e.remedy = "names are those of syscalls(2) on x86-64, e.g. close, openat; a number works too";
  return e;
}

Result<ExecRequest> parse_exec_request(const std::vector<std::string>& positional) {
  if (positional.empty()) return make_error("missing system call name");
  ExecRequest r;
  r.nr = TRY(parse_syscall(positional[0]));
  const char* n = syscall_name(r.nr);
  r.name = n ? n : "syscall_" + std::to_string(r.nr);
  size_t nargs = positional.size() - 1;
  if (nargs > kMaxSyscallArgs)
    return make_error("too many arguments: a system call takes at most %zu, %s got %zu", kMaxSyscallArgs,
                      r.name.c_str(), nargs);
  for (size_t i = 1; i < positional.size(); i++) r.args.push_back(TRY(parse_exec_arg(positional[i])));
  return r;
}

Status check_exec_allowed(const ExecRequest& r) {
  switch (r.nr) {
    case SYS_fork:
    case SYS_vfork:
    case SYS_clone:
    case SYS_clone3: {
      Error e = make_error("refusing to run %s in the task: the child would start on crtools' borrowed "
                           "instruction with crtools' registers, not in the program",
                           r.name.c_str());
      return e;
    }
    case SYS_rt_sigreturn:
      return make_error("refusing to run rt_sigreturn in the task: it would load registers from a "
                        "signal frame that is not there");
    default:
      return ok_status();
  }
}

std::string quote_c_string(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      case '\r': o += "\\r"; break;
      case '\v': o += "\\v"; break;
      case '\f': o += "\\f"; break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          o += static_cast<char>(c);
        } else {
          char b[8];
          snprintf(b, sizeof b, "\\x%02x", c);
          o += b;
        }
    }
  }
  return o + "\"";
}

static std::string format_arg(const ExecArg& a) {
  if (a.kind == ExecArg::Kind::String) return quote_c_string(a.text);
  uint64_t mag = a.negative ? ~a.value + 1 : a.value;
  char b[40];
  const char* sign = a.negative ? "-" : "";
  if (a.base == 16) snprintf(b, sizeof b, "%s0x%" PRIx64, sign, mag);
  else if (a.base == 8) snprintf(b, sizeof b, "%s0%" PRIo64, sign, mag);
  else snprintf(b, sizeof b, "%s%" PRIu64, sign, mag);
  return b;
}

std::string format_exec_call(const ExecRequest& r) {
  std::string s = r.name + "(";
  for (size_t i = 0; i < r.args.size(); i++) {
    if (i) s += ", ";
    s += format_arg(r.args[i]);
  }
  return s + ")";
}

std::string format_exec_return(const ExecRequest& r, long ret) {
  if (ret < 0 && ret >= -4095) {
    long err = -ret;
    if (const char* t = restart_text(err)) return std::string("? ") + t;
    const char* name = strerrorname_np(static_cast<int>(err));
    char b[160];
    snprintf(b, sizeof b, "-1 %s (%s)", name ? name : ("E" + std::to_string(err)).c_str(),
             strerror(static_cast<int>(err)));
    return b;
  }
  char b[40];
  if (returns_address(r.nr)) snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(ret));
  else snprintf(b, sizeof b, "%ld", ret);
  return b;
}

std::string format_exec_line(const ExecRequest& r, long ret) {
  return format_exec_call(r) + " = " + format_exec_return(r, ret);
}

std::string format_exec_exited_line(const ExecRequest& r) { return format_exec_call(r) + " = ?"; }

}  // namespace cr
