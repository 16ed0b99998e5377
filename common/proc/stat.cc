#include "common/proc/stat.h"

#include <vector>

#include "common/proc/parse.h"

namespace cr::proc {

namespace {

const char* const kNames[kStatFields + 1] = {
    "",           "pid",        "comm",       "state",     "ppid",        "pgrp",
    "session",    "tty_nr",     "tpgid",      "flags",     "minflt",      "cminflt",
    "majflt",     "cmajflt",    "utime",      "stime",     "cutime",      "cstime",
    "priority",   "nice",       "num_threads", "itrealvalue", "starttime", "vsize",
    "rss",        "rsslim",     "startcode",  "endcode",   "startstack",  "kstkesp",
    "kstkeip",    "signal",     "blocked",    "sigignore", "sigcatch",    "wchan",
    "nswap",      "cnswap",     "exit_signal", "processor", "rt_priority", "policy",
    "delayacct_blkio_ticks", "guest_time", "cguest_time", "start_data", "end_data", "start_brk",
    "arg_start",  "arg_end",    "env_start",  "env_end",   "exit_code",
};

}  // namespace

Result<ProcStat> parse_stat(std::string_view text, std::string_view source) {
  ProcStat s;
  if (text.empty()) return parse_error(source, 0, "empty file");
  if (text.back() != '\n') return parse_error(source, 0, "truncated (no newline at end)");
  text.remove_suffix(1);
  size_t open = text.find(" (");
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2)
    return parse_error(source, 0, "no '(comm)' field in %s", quote(text).c_str());
  if (!parse_int(text.substr(0, open), s.pid) || s.pid <= 0)
    return parse_error(source, 0, "field 1 (pid): bad number %s", quote(text.substr(0, open)).c_str());
  s.comm.assign(text.substr(open + 2, close - open - 2));
  std::string_view rest = text.substr(close + 1);
  if (rest.empty() || rest[0] != ' ')
    return parse_error(source, 0, "expected ' ' after comm, got %s", quote(rest).c_str());
  rest.remove_prefix(1);

  // Fields 3.. are separated by single spaces.
  std::vector<std::string_view> f;
  f.reserve(kStatFields);
  while (true) {
    size_t sp = rest.find(' ');
    f.push_back(rest.substr(0, sp));
    if (sp == std::string_view::npos) break;
    rest = rest.substr(sp + 1);
  }
  if (f.size() < kStatFields - 2)
    return parse_error(source, 0, "%zu fields, expected %d", f.size() + 2, kStatFields);

  // Field n (1-based) is f[n - 3].
  Error err;
  bool bad = false;
  auto num = [&](int n, auto& out) {
    if (bad) return;
    std::string_view v = f[n - 3];
    if (!parse_int(v, out)) {
      err = parse_error(source, 0, "field %d (%s): bad number %s", n, kNames[n], quote(v).c_str());
      bad = true;
    }
  };
  if (f[0].size() != 1 || f[0][0] == ' ')
    return parse_error(source, 0, "field 3 (state): bad value %s", quote(f[0]).c_str());
  s.state = f[0][0];
  num(4, s.ppid);
  num(5, s.pgrp);
  num(6, s.session);
  num(7, s.tty_nr);
  num(8, s.tpgid);
  num(9, s.flags);
  num(10, s.minflt);
  num(11, s.cminflt);
  num(12, s.majflt);
  num(13, s.cmajflt);
  num(14, s.utime);
  num(15, s.stime);
  num(16, s.cutime);
  num(17, s.cstime);
  num(18, s.priority);
  num(19, s.nice);
  num(20, s.num_threads);
  num(21, s.itrealvalue);
  num(22, s.starttime);
  num(23, s.vsize);
  num(24, s.rss);
  num(25, s.rsslim);
  num(26, s.startcode);
  num(27, s.endcode);
  num(28, s.startstack);
  num(29, s.kstkesp);
  num(30, s.kstkeip);
  num(31, s.signal);
  num(32, s.blocked);
  num(33, s.sigignore);
  num(34, s.sigcatch);
  num(35, s.wchan);
  num(36, s.nswap);
  num(37, s.cnswap);
  num(38, s.exit_signal);
  num(39, s.processor);
  num(40, s.rt_priority);
  num(41, s.policy);
  num(42, s.delayacct_blkio_ticks);
  num(43, s.guest_time);
  num(44, s.cguest_time);
  num(45, s.start_data);
  num(46, s.end_data);
  num(47, s.start_brk);
  num(48, s.arg_start);
  num(49, s.arg_end);
  num(50, s.env_start);
  num(51, s.env_end);
  num(52, s.exit_code);
  if (bad) return err;
  for (size_t i = kStatFields - 2; i < f.size(); i++) {
    int64_t i64;
    uint64_t u64;
    if (!parse_int(f[i], i64) && !parse_int(f[i], u64))
      return parse_error(source, 0, "field %zu: bad number %s", i + 3, quote(f[i]).c_str());
  }
  return s;
}

Result<ProcStat> read_stat(pid_t pid) {
  std::string text = TRY(read_proc_file(pid, "stat"));
  return with_pid(parse_stat(text, proc_path(pid, "stat")), pid);
}

Result<ProcStat> read_task_stat(pid_t pid, pid_t tid) {
  std::string rel = "task/" + std::to_string(tid) + "/stat";
  std::string text = TRY(read_proc_file(pid, rel));
  return with_pid(parse_stat(text, proc_path(pid, rel)), pid);
}

}  // namespace cr::proc
