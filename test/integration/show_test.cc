// cr-show and the crtools multiplexer, end to end.
#include <doctest/doctest.h>

#include "test/integration/harness.h"

using namespace harness;

TEST_CASE("crtools --help lists every command") {
  auto r = crtools({"--help"});
  CHECK(r.status == 0);
  for (const char* c : {"dump", "restore", "show", "check", "exec"}) CHECK(r.out.find(std::string("  ") + c) != std::string::npos);
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
