// The kernel feature table: its consistency, CRTOOLS_FEATURES_ABSENT, the
// cache and dependency rules, and the probe child runner. Nothing here
// depends on what this kernel supports.
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "common/kernel/features.h"
#include "common/kernel/probe_child.h"
#include "common/kernel/uapi.h"

using namespace cr;

namespace {

// Restore the default (nothing forced) after each test that changes it.
struct ResetFeatures {
  ~ResetFeatures() { (void)features_init(""); }
};

bool is_kebab(const std::string& s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  for (char c : s)
    if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-')) return false;
  return s.find("--") == std::string::npos;
}

// Process state letter from /proc/PID/stat, 0 if gone.
char state_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return 0;
  size_t rp = s.rfind(')');
  return rp == std::string::npos || rp + 2 >= s.size() ? 0 : s[rp + 2];
}

}  // namespace

TEST_CASE("feature table: one row per enum value, in order") {
  const auto& t = feature_table();
  REQUIRE(t.size() == kFeatureCount);
  for (size_t i = 0; i < t.size(); i++) {
    CAPTURE(i);
    CHECK(static_cast<size_t>(t[i].id) == i);
    CHECK(&feature_info(t[i].id) == &t[i]);
  }
}

TEST_CASE("feature table: unique kebab-case names, every row described and probed") {
  std::set<std::string> names;
  for (const auto& row : feature_table()) {
    std::string n = row.name ? row.name : "";
    CAPTURE(n);
    CHECK(is_kebab(n));
    CHECK(names.insert(n).second);
    REQUIRE(row.purpose != nullptr);
    REQUIRE(row.breaks != nullptr);
    CHECK(std::string(row.purpose).size() > 10);
    CHECK(std::string(row.breaks).size() > 10);
    CHECK((row.probe != nullptr));
    CHECK(std::string(feature_name(row.id)) == n);
  }
}

TEST_CASE("feature table: dependencies are acyclic and required rows need only required rows") {
  for (const auto& row : feature_table()) {
    CAPTURE(row.name);
    for (Feature d : row.depends) {
      CHECK(d != row.id);
      if (row.required) CHECK(feature_info(d).required);
    }
    // Walk the dependency graph from this row; it must never come back.
    std::set<Feature> seen;
    std::vector<Feature> todo(row.depends.begin(), row.depends.end());
    while (!todo.empty()) {
      Feature f = todo.back();
      todo.pop_back();
      REQUIRE(f != row.id);
      if (!seen.insert(f).second) continue;
      for (Feature g : feature_info(f).depends) todo.push_back(g);
    }
  }
}

TEST_CASE("feature table: the basic dump/restore needs are required, the rest optional") {
  for (Feature f : {Feature::PtraceSeize, Feature::PtraceGetsigmask, Feature::MapFiles, Feature::Clone3SetTid,
                    Feature::PrctlMmMap, Feature::Kcmp, Feature::PidfdGetfd, Feature::Vdso})
    CHECK(feature_info(f).required);
  for (Feature f : {Feature::SoftDirty, Feature::UffdWpAsync, Feature::PagemapScan, Feature::TcpRepair,
                    Feature::NsPid, Feature::BpfMaps, Feature::CpuAvx512, Feature::CpuCetShstk,
                    Feature::CgroupFreezer})
    CHECK_FALSE(feature_info(f).required);
}

TEST_CASE("feature_by_name: exact, snake_case and upper case; unknown names") {
  CHECK(feature_by_name("soft-dirty") == Feature::SoftDirty);
  CHECK(feature_by_name("soft_dirty") == Feature::SoftDirty);
  CHECK(feature_by_name("PAGEMAP_SCAN") == Feature::PagemapScan);
  CHECK(feature_by_name("clone3-set-tid") == Feature::Clone3SetTid);
  CHECK_FALSE(feature_by_name("").has_value());
  CHECK_FALSE(feature_by_name("soft").has_value());
  CHECK_FALSE(feature_by_name("soft-dirty ").has_value());
  for (const auto& row : feature_table()) CHECK(feature_by_name(row.name) == row.id);
}

TEST_CASE("parse_feature_list: CRTOOLS_FEATURES_ABSENT syntax") {
  auto empty = parse_feature_list("");
  REQUIRE(empty);
  CHECK(empty->empty());

  auto two = parse_feature_list("kcmp,soft-dirty");
  REQUIRE(two);
  CHECK(*two == std::vector<Feature>{Feature::Kcmp, Feature::SoftDirty});

  auto spaced = parse_feature_list(" kcmp , ,soft_dirty,kcmp,");
  REQUIRE(spaced);
  CHECK(*spaced == std::vector<Feature>{Feature::Kcmp, Feature::SoftDirty});

  auto bad = parse_feature_list("kcmp,no-such-thing");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("'no-such-thing'") != std::string::npos);
  CHECK(bad.error().remedy.find("ptrace-seize") != std::string::npos);
  CHECK(bad.error().remedy.find("cgroup-freezer") != std::string::npos);
}

TEST_CASE("features_init: a forced feature is absent without probing, and require_feature says so") {
  ResetFeatures reset;
  REQUIRE(features_init("soft-dirty,kcmp"));
  const FeatureStatus& st = feature_status(Feature::SoftDirty);
  CHECK_FALSE(st.available);
  CHECK(st.forced_absent);
  CHECK(st.probe_usec == 0);
  CHECK(st.detail.find(kFeaturesAbsentEnv) != std::string::npos);
  CHECK_FALSE(feature_available(Feature::Kcmp));
  Status s = require_feature(Feature::Kcmp);
  REQUIRE_FALSE(s);
  CHECK(s.error().message.find("'kcmp'") != std::string::npos);
  CHECK(s.error().message.find(feature_info(Feature::Kcmp).breaks) != std::string::npos);
  CHECK(s.error().remedy.find(kFeaturesAbsentEnv) != std::string::npos);
}

TEST_CASE("features_init: a feature whose dependency is absent is absent, naming the dependency") {
  ResetFeatures reset;
  REQUIRE(features_init("userfaultfd"));
  // The whole chain is decided without running a probe.
  const FeatureStatus& wp = feature_status(Feature::UffdWp);
  CHECK_FALSE(wp.available);
  CHECK_FALSE(wp.forced_absent);
  CHECK(wp.detail == "needs userfaultfd, which is absent");
  const FeatureStatus& scan = feature_status(Feature::PagemapScan);
  CHECK_FALSE(scan.available);
  CHECK(scan.detail == "needs uffd-wp-async, uffd-wp-unpopulated, which are absent");
  CHECK(scan.probe_usec == 0);
}

TEST_CASE("features_init: an unknown name is an error, and every feature then reads absent") {
  ResetFeatures reset;
  Status s = features_init("kcmp,bogus");
  REQUIRE_FALSE(s);
  CHECK(s.error().message.find(kFeaturesAbsentEnv) != std::string::npos);
  CHECK(s.error().message.find("'bogus'") != std::string::npos);
  CHECK_FALSE(feature_available(Feature::CpuXsave));
  Status r = require_feature(Feature::CpuXsave);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("'bogus'") != std::string::npos);
  // A good value recovers.
  REQUIRE(features_init(""));
  CHECK_FALSE(feature_status(Feature::CpuXsave).forced_absent);
}

TEST_CASE("features_init() reads CRTOOLS_FEATURES_ABSENT from the environment") {
  ResetFeatures reset;
  REQUIRE(setenv(kFeaturesAbsentEnv, "ns_time", 1) == 0);
  Status s = features_init();
  unsetenv(kFeaturesAbsentEnv);
  REQUIRE(s);
  CHECK(feature_status(Feature::NsTime).forced_absent);
  CHECK_FALSE(feature_status(Feature::NsUts).forced_absent);
}

TEST_CASE("feature_status caches: the same answer, probed once") {
  ResetFeatures reset;
  REQUIRE(features_init(""));
  const FeatureStatus& a = feature_status(Feature::CpuXsave);  // CPUID only: no fork
  std::string detail = a.detail;
  bool avail = a.available;
  const FeatureStatus& b = feature_status(Feature::CpuXsave);
  CHECK(&a == &b);
  CHECK(b.detail == detail);
  CHECK(b.available == avail);
  CHECK(!b.detail.empty());
}

TEST_CASE("features: uapi.h: values of interfaces newer than the system headers") {
  CHECK(PAGEMAP_SCAN == _IOWR('f', 16, struct pm_scan_arg));
  CHECK(sizeof(struct pm_scan_arg) == 96);
  CHECK(sizeof(struct page_region) == 24);
  CHECK(PM_SCAN_WP_MATCHING == 1);
  CHECK(PM_SCAN_CHECK_WPASYNC == 2);
  CHECK(PAGE_IS_WRITTEN == 2);
  CHECK(PAGE_IS_GUARD == 256);
  CHECK(UFFD_FEATURE_WP_UNPOPULATED == (1 << 13));
  CHECK(UFFD_FEATURE_WP_ASYNC == (1 << 15));
  CHECK(ARCH_SHSTK_STATUS == 0x5005);
  CHECK(NT_X86_SHSTK == 0x204);
  CHECK(uapi::PM_SOFT_DIRTY == (1ULL << 55));
  CHECK(uapi::PM_UFFD_WP == (1ULL << 57));
}

// ---------------------------------------------------------------- probe children

TEST_CASE("feature probes: run_in_child: the child's value or error comes back") {
  auto ok = probe::run_in_child("test", []() -> Result<std::string> { return std::string("fine"); });
  REQUIRE(ok);
  CHECK(*ok == "fine");
  auto bad = probe::run_in_child("test", []() -> Result<std::string> { return make_errno(EPERM, "nope"); });
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "nope");
  CHECK(bad.error().err == EPERM);
}

TEST_CASE("feature probes: run_in_child: a child that dies without a verdict is an error saying how it ended") {
  auto r = probe::run_in_child("test", []() -> Result<std::string> { _exit(3); });
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("exited with status 3") != std::string::npos);
}

TEST_CASE("feature probes: run_in_child: a hanging child is killed at the deadline") {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  auto r = probe::run_in_child(
      "test",
      []() -> Result<std::string> {
        pause();
        return std::string();
      },
      200);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("did not answer within 200 ms") != std::string::npos);
  CHECK(t1.tv_sec - t0.tv_sec < 3);
}

TEST_CASE("feature probes: ProbeChild: lines both ways; the destructor kills and reaps the child and what it forked") {
  pid_t child_pid = 0, grandchild = 0;
  {
    auto c = probe::ProbeChild::spawn("test", [](probe::ChildIo& io) {
      pid_t g = fork();
      if (g == 0) {
        while (true) pause();
      }
      io.send("grandchild " + std::to_string(g));
      while (true) {
        std::string l = io.recv();
        if (l.empty()) return 0;
        io.send("echo " + l);
      }
    });
    REQUIRE(c);
    child_pid = (*c)->pid();
    auto l = (*c)->recv();
    REQUIRE(l);
    REQUIRE(sscanf(l->c_str(), "grandchild %d", &grandchild) == 1);
    REQUIRE((*c)->send("hello"));
    CHECK((*c)->expect("echo hello"));
    auto timeout = (*c)->recv(50);
    CHECK_FALSE(timeout);
  }
  CHECK(kill(child_pid, 0) == -1);  // reaped, not a zombie
  // The grandchild was killed with the process group; someone else reaps it.
  bool gone = false;
  for (int i = 0; i < 500 && !gone; i++) {
    char s = state_of(grandchild);
    gone = s == 0 || s == 'Z';
    if (!gone) usleep(10000);
  }
  CHECK(gone);
  int st;
  while (waitpid(-1, &st, WNOHANG) > 0) {
  }
}

TEST_CASE("features: man/cr-check.8 lists every feature under the right heading") {
  // make unit runs from the top of the tree; __FILE__ is relative to it.
  std::string path = __FILE__;
  path = path.substr(0, path.rfind("test/unit/")) + "man/cr-check.8";
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t req = text.find(".SS Required features\n");
  size_t opt = text.find(".SS Optional features\n");
  size_t env = text.find(".SH ENVIRONMENT\n");
  REQUIRE(req != std::string::npos);
  REQUIRE(opt != std::string::npos);
  REQUIRE(env != std::string::npos);
  REQUIRE((req < opt && opt < env));
  CHECK(text.find("CRTOOLS_FEATURES_ABSENT") != std::string::npos);
  for (const auto& row : feature_table()) {
    std::string esc;
    for (const char* c = row.name; *c; c++) esc += *c == '-' ? std::string("\\-") : std::string(1, *c);
    size_t at = text.find(".TP\n.B " + esc + "\n");
    CAPTURE(row.name);
    REQUIRE(at != std::string::npos);
    if (row.required) CHECK((at > req && at < opt));
    else CHECK((at > opt && at < env));
  }
}
