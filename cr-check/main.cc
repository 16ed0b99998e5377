// cr-check: tell, feature by feature, whether this kernel can dump and
// restore. The features, their probes and what depends on them are the
// table in common/kernel/features.cc; this file only reports.
//
// Exit status: 0 every required feature works (or, with --feature, that one
// works); 1 a required feature (or the one asked about) is absent; 2 misuse,
// including an unknown feature name in --feature or CRTOOLS_FEATURES_ABSENT.
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/kernel/features.h"
#include "common/log.h"
#include "common/options.h"

using nlohmann::json;
using namespace cr;

namespace {

const CommandSpec kCheck = {
    "check",
    "[--all] [--json] [--feature NAME]",
    {Opt::All, Opt::Feature, Opt::Json, Opt::LogFile, Opt::Verbosity, Opt::Version},
    false, 0, 0};

json feature_json(const FeatureInfo& info) {
  const FeatureStatus& st = feature_status(info.id);
  json deps = json::array();
  for (Feature d : info.depends) deps.push_back(feature_name(d));
  return {{"name", info.name},       {"required", info.required}, {"available", st.available},
          {"forced_absent", st.forced_absent}, {"detail", st.detail}, {"purpose", info.purpose},
          {"breaks", info.breaks},   {"depends_on", deps},        {"probe_usec", st.probe_usec}};
}

// Wrap text at width, each line after the first indented by `indent`.
std::string wrap(const std::string& text, size_t indent, size_t width = 100) {
  std::string out, line;
  size_t room = width > indent ? width - indent : 40;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sp = text.find(' ', pos);
    std::string word = text.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
    pos = sp == std::string::npos ? text.size() : sp + 1;
    if (!line.empty() && line.size() + 1 + word.size() > room) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

void print_row(const FeatureInfo& info) {
  const FeatureStatus& st = feature_status(info.id);
  constexpr size_t kIndent = 2 + 9 + 24;
  std::string status = st.available ? "[ok]" : st.forced_absent ? "[forced]" : "[ABSENT]";
  printf("  %-8s %-23s %s\n", status.c_str(), info.name, wrap(st.detail, kIndent).c_str());
  if (!st.available)
    printf("%*s%s\n", (int)kIndent, "", wrap(std::string("without it: ") + info.breaks, kIndent).c_str());
}

void print_missing(const FeatureInfo& info) {
  const FeatureStatus& st = feature_status(info.id);
  printf("Error: %s is absent: %s\n", info.name, wrap(st.detail, 7).c_str());
  printf("       %s\n", wrap(std::string("without it: ") + info.breaks, 7).c_str());
}

int check_one(const std::string& name, bool as_json) {
  auto f = feature_by_name(name);
  if (!f) {
    fprintf(stderr, "cr-check: unknown feature '%s'; the features are:\n  %s\n", name.c_str(),
            feature_names("\n  ").c_str());
    return 2;
  }
  const FeatureInfo& info = feature_info(*f);
  const FeatureStatus& st = feature_status(*f);
  if (as_json) {
    printf("%s\n", feature_json(info).dump(2).c_str());
  } else {
    printf("%s: %s (%s)\n", info.name, st.available ? "available" : "absent",
           info.required ? "required" : "optional");
    printf("  %s\n", wrap(st.detail, 2).c_str());
    printf("  %s\n", wrap(std::string("used for: ") + info.purpose, 2).c_str());
    if (!st.available) printf("  %s\n", wrap(std::string("without it: ") + info.breaks, 2).c_str());
  }
  return st.available ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = command_start_or_exit(kCheck, argc, argv);
  auto init = features_init();
  if (!init) {
    fprintf(stderr, "cr-check: %s\n", init.error().str().c_str());
    return 2;
  }
  if (geteuid() != 0 && !o.json)
    fprintf(stderr, "cr-check: not running as root: most probes need CAP_SYS_ADMIN and CAP_SYS_PTRACE and will "
                    "report their feature absent\n");
  if (o.has(Opt::Feature)) return check_one(o.feature, o.json);

  const auto& table = feature_table();
  if (o.json || o.all) probe_all_features();
  int missing = 0, required = 0;
  for (const auto& row : table) {
    if (!row.required) continue;
    required++;
    if (!feature_status(row.id).available) missing++;
  }

  if (o.json) {
    json feats = json::array(), miss = json::array();
    for (const auto& row : table) {
      feats.push_back(feature_json(row));
      if (row.required && !feature_status(row.id).available) miss.push_back(row.name);
    }
    const char* env = getenv(kFeaturesAbsentEnv);
    json out = {{"looks_good", missing == 0},
                {"missing_required", miss},
                {"features_absent_env", env ? json(env) : json(nullptr)},
                {"features", feats}};
    printf("%s\n", out.dump(2).c_str());
    return missing ? 1 : 0;
  }

  if (o.all) {
    for (bool req : {true, false}) {
      printf("%s features:\n", req ? "Required" : "Optional");
      for (const auto& row : table)
        if (row.required == req) print_row(row);
    }
  } else {
    for (const auto& row : table)
      if (row.required && !feature_status(row.id).available) print_missing(row);
  }
  if (missing) {
    printf("Looks bad: %d of %d required features %s absent; see cr-check(8).\n", missing, required,
           missing == 1 ? "is" : "are");
    return 1;
  }
  printf("Looks good.\n");
  return 0;
}
