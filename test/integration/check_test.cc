// crtools check, end to end: the verdict on this machine, the JSON table,
// --feature for every name, and CRTOOLS_FEATURES_ABSENT forcing fallbacks.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "test/integration/harness.h"

using namespace harness;
using nlohmann::json;

namespace {

// crtools check ... with CRTOOLS_FEATURES_ABSENT set to `absent`.
RunResult check_with_absent(const std::string& absent, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env", "CRTOOLS_FEATURES_ABSENT=" + absent, bin_dir() + "/crtools",
                                   "check"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

json check_json() {
  auto r = crtools({"check", "--json"});
  REQUIRE_MESSAGE(r.status <= 1, r.err);
  json j = json::parse(r.out);  // throws (fails the test) on bad JSON
  return j;
}

const json& feature(const json& j, const std::string& name) {
  for (const auto& f : j["features"])
    if (f["name"] == name) return f;
  FAIL("no feature " << name << " in the JSON");
  static json none;
  return none;
}

// Nothing a probe forked may outlive the command: this binary is a child
// subreaper, so a leftover would have come to us.
void expect_no_leftovers() {
  int st;
  errno = 0;
  pid_t r = waitpid(-1, &st, WNOHANG);
  CHECK_MESSAGE(r == -1, "a process was left behind: waitpid returned " << r);
  CHECK(errno == ECHILD);
}

}  // namespace

TEST_CASE("crtools check: Looks good. on this machine") {
  auto r = crtools({"check"});
  CHECK_MESSAGE(r.status == 0, r.out << r.err);
  CHECK(r.out == "Looks good.\n");
  CHECK(r.err == "");
  expect_no_leftovers();
}

TEST_CASE("crtools check --all: every feature, soft-dirty absent, still Looks good.") {
  auto r = crtools({"check", "--all"});
  CHECK_MESSAGE(r.status == 0, r.out << r.err);
  json j = check_json();
  for (const auto& f : j["features"]) {
    std::string name = f["name"];
    CHECK_MESSAGE(r.out.find(" " + name + " ") != std::string::npos, name);
  }
  size_t sd = r.out.find("[ABSENT] soft-dirty ");
  CHECK(sd != std::string::npos);
  CHECK(r.out.find("Required features:") < r.out.find("Optional features:"));
  CHECK(r.out.size() >= 12);
  CHECK(r.out.compare(r.out.size() - 12, 12, "Looks good.\n") == 0);
  expect_no_leftovers();
}

TEST_CASE("crtools check --json: parses and lists every feature with its result") {
  auto r = crtools({"check", "--json"});
  CHECK(r.status == 0);
  json j = json::parse(r.out);
  CHECK(j["looks_good"] == true);
  CHECK(j["missing_required"].empty());
  CHECK(j["features_absent_env"].is_null());
  REQUIRE(j["features"].is_array());
  CHECK(j["features"].size() >= 40);
  std::set<std::string> names;
  int required = 0;
  for (const auto& f : j["features"]) {
    REQUIRE(f["name"].is_string());
    std::string name = f["name"];
    CAPTURE(name);
    CHECK(names.insert(name).second);
    CHECK(f["required"].is_boolean());
    CHECK(f["available"].is_boolean());
    CHECK(f["forced_absent"] == false);
    CHECK(f["detail"].is_string());
    CHECK(!f["detail"].get<std::string>().empty());
    CHECK(!f["purpose"].get<std::string>().empty());
    CHECK(!f["breaks"].get<std::string>().empty());
    CHECK(f["depends_on"].is_array());
    if (f["required"] == true) {
      required++;
      CHECK(f["available"] == true);
    }
  }
  CHECK(required >= 10);
  for (const char* n : {"ptrace-seize", "clone3-set-tid", "prctl-mm-map", "pagemap-scan", "uffd-wp-async",
                        "soft-dirty", "tcp-repair", "vdso", "bpf-maps", "cgroup-freezer", "ns-time"})
    CHECK_MESSAGE(names.count(n) == 1, n);

  // Other JSON readers agree.
  CHECK(run({"/usr/bin/env", "python3", "-m", "json.tool"}, r.out).status == 0);
  auto jq = run({"/usr/bin/env", "jq", "-e", "[.features[] | select(.name == \"soft-dirty\")] | length == 1"}, r.out);
  CHECK_MESSAGE(jq.status == 0, jq.err);
  expect_no_leftovers();
}

TEST_CASE("crtools check: soft-dirty is reported absent on this kernel, its tracking replacement present") {
  json j = check_json();
  const json& sd = feature(j, "soft-dirty");
  CHECK(sd["available"] == false);
  CHECK(sd["forced_absent"] == false);
  CHECK(sd["required"] == false);
  CHECK(sd["detail"].get<std::string>().find("CONFIG_MEM_SOFT_DIRTY") != std::string::npos);
  CHECK(feature(j, "pagemap-scan")["available"] == true);
  CHECK(feature(j, "uffd-wp-async")["available"] == true);
  // The vDSO as 6.18 lays it out: all three parts named.
  std::string vdso = feature(j, "vdso")["detail"];
  for (const char* part : {"[vvar]", "[vvar_vclock]", "[vdso]"}) CHECK_MESSAGE(vdso.find(part) != std::string::npos, vdso);

  auto r = crtools({"check", "--feature", "soft-dirty"});
  CHECK(r.status == 1);
  CHECK(r.out.rfind("soft-dirty: absent (optional)\n", 0) == 0);
}

TEST_CASE("crtools check --feature NAME: works for every name, exit status follows the result") {
  json j = check_json();
  REQUIRE(!j["features"].empty());
  for (const auto& f : j["features"]) {
    std::string name = f["name"];
    bool avail = f["available"];
    CAPTURE(name);
    auto r = crtools({"check", "--feature", name});
    CHECK(r.status == (avail ? 0 : 1));
    CHECK(r.out.rfind(name + ": " + (avail ? "available" : "absent"), 0) == 0);
    auto rj = crtools({"check", "--feature", name, "--json"});
    CHECK(rj.status == (avail ? 0 : 1));
    json one = json::parse(rj.out);
    CHECK(one["name"] == name);
    CHECK(one["available"] == avail);
  }
  expect_no_leftovers();
}

TEST_CASE("crtools check --feature: an unknown name lists the valid ones (exit 2)") {
  auto r = crtools({"check", "--feature", "warp-drive"});
  CHECK(r.status == 2);
  CHECK(r.out == "");
  CHECK(r.err.find("unknown feature 'warp-drive'") != std::string::npos);
  for (const char* n : {"ptrace-seize", "soft-dirty", "cgroup-freezer"}) CHECK(r.err.find(n) != std::string::npos);

  auto missing = crtools({"check", "--feature"});
  CHECK(missing.status == 2);
  CHECK(missing.err.find("'--feature' needs an argument") != std::string::npos);
}

TEST_CASE("CRTOOLS_FEATURES_ABSENT: each required feature forced absent makes check fail naming it") {
  json j = check_json();
  for (const auto& f : j["features"]) {
    if (f["required"] != true) continue;
    std::string name = f["name"];
    CAPTURE(name);
    auto r = check_with_absent(name, {});
    CHECK(r.status == 1);
    CHECK(r.out.find("Error: " + name + " is absent: declared absent by CRTOOLS_FEATURES_ABSENT\n") !=
          std::string::npos);
    CHECK(r.out.find("without it: ") != std::string::npos);
    CHECK(r.out.find("Looks bad: ") != std::string::npos);
    CHECK(r.out.find("Looks good.") == std::string::npos);
  }
}

TEST_CASE("CRTOOLS_FEATURES_ABSENT: dependents follow, optional features keep Looks good.") {
  // ptrace-seize takes the other ptrace features down with it.
  auto r = check_with_absent("ptrace-seize", {"--json"});
  CHECK(r.status == 1);
  json j = json::parse(r.out);
  CHECK(j["looks_good"] == false);
  CHECK(j["features_absent_env"] == "ptrace-seize");
  std::set<std::string> missing;
  for (const auto& m : j["missing_required"]) missing.insert(m.get<std::string>());
  for (const char* n : {"ptrace-seize", "ptrace-getsigmask", "ptrace-peeksiginfo", "ptrace-regsets",
                        "ptrace-rseq-config"})
    CHECK_MESSAGE(missing.count(n) == 1, n);
  CHECK(feature(j, "ptrace-seize")["forced_absent"] == true);
  CHECK(feature(j, "ptrace-getsigmask")["detail"] == "needs ptrace-seize, which is absent");

  // Optional features forced absent (snake_case accepted): still good, and
  // the dirty-tracking chain reports why.
  auto opt = check_with_absent("uffd_wp_async,tcp-repair", {"--json"});
  CHECK(opt.status == 0);
  json o = json::parse(opt.out);
  CHECK(o["looks_good"] == true);
  CHECK(feature(o, "tcp-repair")["forced_absent"] == true);
  CHECK(feature(o, "pagemap-scan")["available"] == false);
  CHECK(feature(o, "pagemap-scan")["detail"] == "needs uffd-wp-async, which is absent");
  auto plain = check_with_absent("pagemap-scan", {});
  CHECK(plain.status == 0);
  CHECK(plain.out == "Looks good.\n");
  auto one = check_with_absent("pagemap-scan", {"--feature", "pagemap-scan"});
  CHECK(one.status == 1);
  CHECK(one.out.find("declared absent by CRTOOLS_FEATURES_ABSENT") != std::string::npos);
}

TEST_CASE("CRTOOLS_FEATURES_ABSENT: an unknown name is an error that lists the names") {
  auto r = check_with_absent("kcmp,bogus", {});
  CHECK(r.status == 2);
  CHECK(r.out == "");
  CHECK(r.err.find("CRTOOLS_FEATURES_ABSENT: unknown feature 'bogus'") != std::string::npos);
  CHECK(r.err.find("ptrace-seize") != std::string::npos);
}
