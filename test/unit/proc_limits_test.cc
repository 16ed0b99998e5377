// common/proc/limits: the 16 rlimits from /proc/PID/limits.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/proc/limits.h"

using namespace cr;
using namespace cr::proc;

namespace {

const char kLimits[] = R"PROC(Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96368                96368                processes 
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96368                96368                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
)PROC";

std::string limits_err(std::string_view text) {
  auto r = parse_limits(text, "/proc/812/limits");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

std::string replaced(std::string s, std::string_view from, std::string_view to) {
  size_t p = s.find(from);
  REQUIRE(p != std::string::npos);
  s.replace(p, from.size(), to);
  return s;
}

std::vector<std::string> lines(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    out.emplace_back(s.substr(0, nl + 1));
    s.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("proc limits: parses a real 6.18 limits file") {
  auto r = parse_limits(kLimits, "/proc/8302/limits");
  REQUIRE(r.ok());
  const ProcLimits& l = *r;
  CHECK(l[RLIMIT_CPU].rlim_cur == RLIM_INFINITY);
  CHECK(l[RLIMIT_CPU].rlim_max == RLIM_INFINITY);
  CHECK(l[RLIMIT_STACK].rlim_cur == 8388608);
  CHECK(l[RLIMIT_STACK].rlim_max == RLIM_INFINITY);
  CHECK(l[RLIMIT_CORE].rlim_cur == 0);
  CHECK(l[RLIMIT_NPROC].rlim_cur == 96368);
  CHECK(l[RLIMIT_NOFILE].rlim_cur == 20000);
  CHECK(l[RLIMIT_NOFILE].rlim_max == 20000);
  CHECK(l[RLIMIT_MEMLOCK].rlim_max == 8388608);
  CHECK(l[RLIMIT_SIGPENDING].rlim_cur == 96368);
  CHECK(l[RLIMIT_MSGQUEUE].rlim_cur == 819200);
  CHECK(l[RLIMIT_NICE].rlim_cur == 0);
  CHECK(l[RLIMIT_RTPRIO].rlim_max == 0);
  CHECK(l[RLIMIT_RTTIME].rlim_cur == RLIM_INFINITY);

  CHECK(std::string(rlimit_row_name(RLIMIT_RTTIME)) == "Max realtime timeout");
  CHECK(std::string(rlimit_row_unit(RLIMIT_NOFILE)) == "files");
  CHECK(rlimit_row_name(16) == nullptr);
  CHECK(rlimit_row_name(-1) == nullptr);

  // Rows are matched by name: any order works.
  auto ls = lines(kLimits);
  std::reverse(ls.begin() + 1, ls.end());
  std::string shuffled;
  for (auto& x : ls) shuffled += x;
  auto s = parse_limits(shuffled);
  REQUIRE(s.ok());
  for (int i = 0; i < kRlimits; i++) {
    CHECK((*s)[i].rlim_cur == l[i].rlim_cur);
    CHECK((*s)[i].rlim_max == l[i].rlim_max);
  }
}

TEST_CASE("proc limits: malformed input gives errors naming file and line") {
  auto ls = lines(kLimits);
  std::string no_rss;
  for (auto& x : ls)
    if (x.find("Max resident set") == std::string::npos) no_rss += x;
  CHECK(limits_err(no_rss) == "/proc/812/limits: no 'Max resident set' row");
  CHECK(limits_err(std::string(kLimits) + ls[3]) == "/proc/812/limits: line 18: repeated limit 'Max data size'");
  CHECK(limits_err(replaced(kLimits, "Max file locks ", "Max file lockz ")).find("line 12: unknown limit 'Max file lockz") !=
        std::string::npos);
  CHECK(limits_err(replaced(kLimits, "8388608              unlimited            bytes",
                            "8388608              unlimited            files"))
            .find("'Max stack size': unit 'files', expected 'bytes'") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "0                    0                    \nMax realtime priority",
                            "0                    0                    us\nMax realtime priority"))
            .find("'Max nice priority': unit 'us', expected ''") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "20000                20000", "20000                2000O"))
            .find("'Max open files': bad hard limit '2000O'") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "20000                20000", "-1                   20000"))
            .find("bad soft limit '-1'") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "20000                20000", "18446744073709551616 20000"))
            .find("bad soft limit") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "20000                20000", "18446744073709551615 20000"))
            .find("bad soft limit") != std::string::npos);  // the kernel would have printed "unlimited"
  CHECK(limits_err(replaced(kLimits, "20000                20000", "20001                20000"))
            .find("soft limit above hard limit") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "20000                20000                files",
                            "20000                files"))
            .find("'Max open files': unit '', expected 'files'") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "Max open files            20000                20000                files",
                            "Max open files"))
            .find("'Max open files': expected soft, hard and unit") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "Max open files            20000                20000                files",
                            "Max open files            20000"))
            .find("expected soft, hard and unit") != std::string::npos);
  CHECK(limits_err(replaced(kLimits, "Soft Limit", "Soft Lim")).find("line 1: bad header") != std::string::npos);
  CHECK(limits_err("") == "/proc/812/limits: empty file");
  std::string s = kLimits;
  CHECK(limits_err(s.substr(0, s.size() - 1)).find("line 17: truncated line") != std::string::npos);
  std::string_view all(kLimits);
  for (size_t n = 0; n < all.size(); n += 3) CHECK_FALSE(parse_limits(all.substr(0, n)).ok());
}

TEST_CASE("proc limits: live, matches getrlimit for all 16") {
  struct rlimit old;
  REQUIRE(getrlimit(RLIMIT_CORE, &old) == 0);
  struct rlimit lowered = {old.rlim_cur == 0 ? rlim_t(0) : rlim_t(4096), old.rlim_max};
  if (old.rlim_max != RLIM_INFINITY && lowered.rlim_cur > old.rlim_max) lowered.rlim_cur = old.rlim_max;
  REQUIRE(setrlimit(RLIMIT_CORE, &lowered) == 0);
  auto r = read_limits(getpid());
  REQUIRE(setrlimit(RLIMIT_CORE, &old) == 0);
  REQUIRE(r.ok());
  for (int i = 0; i < kRlimits; i++) {
    struct rlimit want;
    REQUIRE(getrlimit(static_cast<__rlimit_resource>(i), &want) == 0);
    if (i == RLIMIT_CORE) want = lowered;
    INFO("resource ", i, " ", rlimit_row_name(i));
    CHECK((*r)[i].rlim_cur == want.rlim_cur);
    CHECK((*r)[i].rlim_max == want.rlim_max);
  }
}
