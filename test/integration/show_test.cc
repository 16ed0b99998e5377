// cr-show and the crtools multiplexer, end to end, on sets written by the
// image library itself.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/image/image_set.h"
#include "common/image/pages.h"
#include "common/image/records.h"
#include "test/integration/harness.h"

using namespace harness;
using nlohmann::json;

namespace {

// inventory + stats + one pagemap with two runs (the second compressible).
void write_set(const std::string& where) {
  auto set = cr::ImageSet::open_write(where, false);
  REQUIRE(set.ok());
  std::vector<char> a(2 * cr::kPageSize, 'A'), b(3 * cr::kPageSize);
  for (size_t i = 0; i < b.size(); i++) b[i] = char(i * 7);
  memcpy(a.data(), "hello, crtools", 14);
  auto pw = cr::PageWriter::create(**set, 1, true);
  REQUIRE(pw.ok());
  REQUIRE((*pw)->add(0x7f0000001000, a.data(), a.size()).ok());
  REQUIRE((*pw)->add(0x7f0000010000, b.data(), b.size()).ok());
  REQUIRE((*pw)->finish().ok());
  REQUIRE(cr::write_record(**set, "stats-dump.img", cr::Stats{"dump", {{"freeze_us", 42}}}).ok());
  REQUIRE(cr::write_record(**set, "inventory.img", cr::make_inventory(1234)).ok());
  REQUIRE((*set)->finish().ok());
}

}  // namespace

TEST_CASE("crtools --help lists every command") {
  auto r = crtools({"--help"});
  CHECK(r.status == 0);
  for (const char* c : {"dump", "restore", "show", "check", "exec"})
    CHECK(r.out.find(std::string("  ") + c + " ") != std::string::npos);
}

TEST_CASE("crtools rejects an unknown command") {
  auto r = crtools({"foo"});
  CHECK(r.status != 0);
  CHECK(r.err == "crtools: 'foo' is not a crtools command; see 'crtools --help'\n");
}

TEST_CASE("crtools --version") {
  auto r = crtools({"--version"});
  CHECK(r.status == 0);
  CHECK(r.out.rfind("crtools ", 0) == 0);
}

TEST_CASE("crtools finds an external cr-<command> on PATH") {
  TempDir d;
  std::string script = d / "cr-hello";
  {
    FILE* f = fopen(script.c_str(), "w");
    REQUIRE(f);
    fputs("#!/bin/sh\necho \"hello $*\"\n", f);
    fclose(f);
    chmod(script.c_str(), 0755);
  }
  std::string old = getenv("PATH") ? getenv("PATH") : "";
  setenv("PATH", (d.path() + ":" + old).c_str(), 1);
  auto r = crtools({"hello", "world"});
  setenv("PATH", old.c_str(), 1);
  CHECK(r.status == 0);
  CHECK(r.out == "hello world\n");
}

TEST_CASE("cr-show summarises a set, text and json") {
  TempDir d;
  write_set(d / "set");
  auto r = crtools({"show", "-D", d / "set"});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("4 images") != std::string::npos);
  CHECK(r.out.find("inventory.img") != std::string::npos);
  CHECK(r.out.find("root_pid=1234") != std::string::npos);
  CHECK(r.out.find("pagemap-1.img") != std::string::npos);

  auto j = crtools({"show", "-D", d / "set", "--json"});
  REQUIRE(j.status == 0);
  json doc = json::parse(j.out);
  CHECK(doc["complete"] == true);
  REQUIRE(doc["images"].size() == 4);
  bool saw_inv = false;
  for (auto& im : doc["images"])
    if (im["kind"] == "inventory") {
      saw_inv = true;
      CHECK(im["record"]["root_pid"] == 1234);
    }
  CHECK(saw_inv);
}

TEST_CASE("cr-show -f decodes one image; -c dumps pages by address") {
  TempDir d;
  write_set(d / "set");
  auto r = crtools({"show", "-f", d / "set/pagemap-1.img"});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("vaddr: 0x7f0000001000") != std::string::npos);
  auto c = crtools({"show", "-D", d / "set", "-f", "pagemap-1.img", "-c"});
  INFO(c.err);
  CHECK(c.status == 0);
  CHECK(c.out.find("7f0000001000: 68 65 6c 6c 6f 2c 20 63  72 74 6f 6f 6c 73 41 41  |hello, crtoolsAA|") !=
        std::string::npos);
  CHECK(c.out.find("7f0000010000:") != std::string::npos);
  CHECK(c.out.find("*\n") != std::string::npos);  // repeated lines folded
  auto cj = crtools({"show", "-f", d / "set/pagemap-1.img", "-c", "--json"});
  REQUIRE(cj.status == 0);
  json doc = json::parse(cj.out);
  REQUIRE(doc["contents"].size() == 5);
  CHECK(doc["contents"][0]["vaddr"] == 0x7f0000001000ull);
  CHECK(doc["contents"][0]["hex"].get<std::string>().rfind("68656c6c6f2c", 0) == 0);
}

TEST_CASE("cr-show reads a stream on stdin") {
  TempDir d;
  write_set(d / "set");
  // tar(1) makes the stream: the format is plain ustar.
  auto t = run({"/bin/sh", "-c", "cd " + d / "set" + " && tar --format=ustar -cf - *.img | " + bin_dir() +
                                     "/crtools show -D - --json"});
  INFO(t.err);
  REQUIRE(t.status == 0);
  json doc = json::parse(t.out);
  CHECK(doc["images"].size() == 4);
}

TEST_CASE("a corrupted set gives one line naming the file and offset") {
  TempDir d;
  write_set(d / "set");
  {
    int fd = open((d / "set/stats-dump.img").c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    char c;
    REQUIRE(pread(fd, &c, 1, 40) == 1);
    c ^= 1;
    REQUIRE(pwrite(fd, &c, 1, 40) == 1);
    close(fd);
  }
  auto r = crtools({"show", "-D", d / "set"});
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("stats-dump.img: offset 12: payload checksum mismatch") != std::string::npos);
  truncate((d / "set/inventory.img").c_str(), 20);
  r = crtools({"show", "-D", d / "set", "-f", "inventory.img"});
  CHECK(r.status == 1);
  CHECK(r.err.find("inventory.img: offset 20: truncated image header") != std::string::npos);
}

TEST_CASE("cr-show usage errors") {
  auto r = crtools({"show"});
  CHECK(r.status == 2);
  CHECK(r.err.find("give -D DIR") != std::string::npos);
  r = crtools({"show", "-D", "/x", "-t", "1"});
  CHECK(r.status == 2);
  CHECK(r.err == "cr-show: option '-t' does not apply to show; see 'cr-show --help'\n");
  r = crtools({"show", "-D", "/nonexistent-dir"});
  CHECK(r.status == 1);
  CHECK(r.err.find("cannot open image directory /nonexistent-dir: No such file or directory") !=
        std::string::npos);
}
