#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "common/options.h"

using namespace cr;

namespace {

const CommandSpec kDumpLike = {"dump", "-t PID -D DIR",
                               {Opt::Tree, Opt::ImagesDir, Opt::LeaveStopped, Opt::LogFile, Opt::Verbosity,
                                Opt::Namespaces, Opt::LeaveRunning, Opt::GhostLimit},
                               false, 0, 0};
const CommandSpec kExecLike = {"exec", "-t PID SYSCALL [ARG...]", {Opt::Tree}, true, 1, -1};

Result<Options> parse(const CommandSpec& c, std::vector<std::string> args) {
  args.insert(args.begin(), std::string("cr-") + c.name);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return parse_options(c, static_cast<int>(args.size()), argv.data());
}

}  // namespace

TEST_CASE("option table: every option has one row, unique names") {
  std::set<std::string> longs;
  std::set<char> shorts;
  for (int i = 0; i < static_cast<int>(Opt::Count_); i++) {
    const auto& s = option_spec(static_cast<Opt>(i));
    CHECK(s.id == static_cast<Opt>(i));
    CHECK(longs.insert(s.long_name).second);
    if (s.short_name) CHECK(shorts.insert(s.short_name).second);
    CHECK(s.help[0] != 0);
  }
  CHECK(option_table().size() == static_cast<size_t>(Opt::Count_));
}

TEST_CASE("short and long forms parse alike") {
  auto a = parse(kDumpLike, {"-t", "123", "-D", "/tmp/x", "-s", "-v", "2", "-o", "log"});
  REQUIRE(a.ok());
  CHECK(a->tree == 123);
  CHECK(a->images_dir == "/tmp/x");
  CHECK(a->leave_stopped);
  CHECK(a->verbosity == 2);
  CHECK(a->log_file == "log");
  auto b = parse(kDumpLike, {"--tree=123", "--images-dir", "/tmp/x", "--leave-stopped", "--verbosity=2",
                             "--log-file", "log"});
  REQUIRE(b.ok());
  CHECK(b->tree == 123);
  CHECK(b->images_dir == "/tmp/x");
  CHECK(b->leave_stopped);
  CHECK(b->verbosity == 2);
  CHECK(b->has(Opt::Tree));
  CHECK(!b->has(Opt::Namespaces));
}

TEST_CASE("malformed values are usage errors") {
  auto r = parse(kDumpLike, {"-t", "abc"});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "'abc' is not a pid; see 'cr-dump --help'");
  CHECK(!parse(kDumpLike, {"-t", "0"}).ok());
  CHECK(!parse(kDumpLike, {"-t", "-5"}).ok());
  CHECK(!parse(kDumpLike, {"-t", "99999999999"}).ok());
  r = parse(kDumpLike, {"-v", "9"});
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("-v takes a level from 0 to 4") == 0);
  CHECK(!parse(kDumpLike, {"-v", "x"}).ok());
  r = parse(kDumpLike, {"-n", "uts,bogus"});
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("unknown namespace 'bogus'") == 0);
  auto ok = parse(kDumpLike, {"-n", "uts,ipc,net,mnt"});
  REQUIRE(ok.ok());
  CHECK(ok->namespaces == std::vector<std::string>{"uts", "ipc", "net", "mnt"});
  CHECK(!parse(kDumpLike, {"--ghost-limit", "12Q"}).ok());
  auto g = parse(kDumpLike, {"--ghost-limit", "16M"});
  REQUIRE(g.ok());
  CHECK(g->ghost_limit == 16u << 20);
}

TEST_CASE("an option of another command is named as misplaced") {
  auto r = parse(kDumpLike, {"-c"});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "option '-c' does not apply to dump; see 'cr-dump --help'");
  r = parse(kDumpLike, {"--json"});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "option '--json' does not apply to dump; see 'cr-dump --help'");
  r = parse(kDumpLike, {"--frobnicate"});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "unknown option '--frobnicate'; see 'cr-dump --help'");
  r = parse(kDumpLike, {"-t"});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "option '-t' needs an argument; see 'cr-dump --help'");
  r = parse(kDumpLike, {"stray"});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "unexpected argument 'stray'; see 'cr-dump --help'");
}

TEST_CASE("stop at the first positional keeps negative numbers as arguments") {
  auto r = parse(kExecLike, {"-t", "5", "lseek", "3", "-1", "0"});
  REQUIRE(r.ok());
  CHECK(r->positional == std::vector<std::string>{"lseek", "3", "-1", "0"});
  CHECK(!parse(kExecLike, {"-t", "5"}).ok());  // SYSCALL missing
}

TEST_CASE("help is accepted by every command and lists its options") {
  auto r = parse(kDumpLike, {"--help"});
  REQUIRE(r.ok());
  CHECK(r->help);
  std::string u = usage_text(kDumpLike);
  CHECK(u.find("--tree PID") != std::string::npos);
  CHECK(u.find("--contents") == std::string::npos);
}

TEST_CASE("sizes") {
  CHECK(*parse_size("0") == 0);
  CHECK(*parse_size("4k") == 4096);
  CHECK(*parse_size("2G") == 2ull << 30);
  CHECK(!parse_size("").ok());
  CHECK(!parse_size("k").ok());
  CHECK(!parse_size("99999999999999999999").ok());
  CHECK(!parse_size("17179869184G").ok());
}
