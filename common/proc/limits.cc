#include "common/proc/limits.h"

#include <algorithm>
#include <iterator>

#include "common/proc/parse.h"

namespace cr::proc {

namespace {

struct Row {
  int resource;
  const char* name;
  const char* unit;
};
// fs/proc/base.c lnames[], in RLIMIT_* order.
constexpr Row kRows[kRlimits] = {
    {RLIMIT_CPU, "Max cpu time", "seconds"},
    {RLIMIT_FSIZE, "Max file size", "bytes"},
    {RLIMIT_DATA, "Max data size", "bytes"},
    {RLIMIT_STACK, "Max stack size", "bytes"},
    {RLIMIT_CORE, "Max core file size", "bytes"},
    {RLIMIT_RSS, "Max resident set", "bytes"},
    {RLIMIT_NPROC, "Max processes", "processes"},
    {RLIMIT_NOFILE, "Max open files", "files"},
    {RLIMIT_MEMLOCK, "Max locked memory", "bytes"},
    {RLIMIT_AS, "Max address space", "bytes"},
    {RLIMIT_LOCKS, "Max file locks", "locks"},
    {RLIMIT_SIGPENDING, "Max pending signals", "signals"},
    {RLIMIT_MSGQUEUE, "Max msgqueue size", "bytes"},
    {RLIMIT_NICE, "Max nice priority", ""},
    {RLIMIT_RTPRIO, "Max realtime priority", ""},
    {RLIMIT_RTTIME, "Max realtime timeout", "us"},
};

constexpr bool rows_in_order() {
  for (int i = 0; i < kRlimits; i++)
    if (kRows[i].resource != i) return false;
  return true;
}
static_assert(rows_in_order());

bool parse_limit(std::string_view v, rlim_t& out) {
  if (v == "unlimited") {
    out = RLIM_INFINITY;
    return true;
  }
  uint64_t x = 0;
  if (!parse_int(v, x) || x == RLIM_INFINITY) return false;  // the kernel prints "unlimited" for it
  out = x;
  return true;
}

}  // namespace

const char* rlimit_row_name(int r) { return r >= 0 && r < kRlimits ? kRows[r].name : nullptr; }
const char* rlimit_row_unit(int r) { return r >= 0 && r < kRlimits ? kRows[r].unit : nullptr; }

Result<ProcLimits> parse_limits(std::string_view text, std::string_view source) {
  LineReader lr(text, source);
  TRY_STATUS(lr.complete());
  ProcLimits out{};
  std::array<bool, kRlimits> seen{};
  std::string_view line;
  if (!lr.next(line)) return parse_error(source, 0, "empty file");
  auto hdr = split_blank(line);
  static const std::string_view kHeader[] = {"Limit", "Soft", "Limit", "Hard", "Limit", "Units"};
  if (!std::equal(hdr.begin(), hdr.end(), std::begin(kHeader), std::end(kHeader)))
    return lr.error("bad header %s", quote(line).c_str());
  while (lr.next(line)) {
    int r = -1;
    for (int i = 0; i < kRlimits; i++) {
      std::string_view name = kRows[i].name;
      if (line.starts_with(name) && line.size() > name.size() && line[name.size()] == ' ') {
        r = i;
        break;
      }
    }
    if (r < 0) return lr.error("unknown limit %s", quote(line).c_str());
    if (seen[r]) return lr.error("repeated limit '%s'", kRows[r].name);
    seen[r] = true;
    auto t = split_blank(line.substr(std::string_view(kRows[r].name).size()));
    if (t.size() < 2 || t.size() > 3) return lr.error("'%s': expected soft, hard and unit, got %s",
                                                      kRows[r].name, quote(line).c_str());
    std::string_view unit = t.size() == 3 ? t[2] : std::string_view();
    if (unit != kRows[r].unit)
      return lr.error("'%s': unit %s, expected '%s'", kRows[r].name, quote(unit).c_str(), kRows[r].unit);
    if (!parse_limit(t[0], out[r].rlim_cur))
      return lr.error("'%s': bad soft limit %s", kRows[r].name, quote(t[0]).c_str());
    if (!parse_limit(t[1], out[r].rlim_max))
      return lr.error("'%s': bad hard limit %s", kRows[r].name, quote(t[1]).c_str());
    if (out[r].rlim_cur > out[r].rlim_max)
      return lr.error("'%s': soft limit above hard limit", kRows[r].name);
  }
  for (int i = 0; i < kRlimits; i++)
    if (!seen[i]) return parse_error(source, 0, "no '%s' row", kRows[i].name);
  return out;
}

Result<ProcLimits> read_limits(pid_t pid) {
  std::string text = TRY(read_proc_file(pid, "limits"));
  return with_pid(parse_limits(text, proc_path(pid, "limits")), pid);
}

}  // namespace cr::proc
