// The integration test binary: doctest's main, made a child subreaper so
// that a killed tree's orphans come to us and are reaped at once (kernel
// 6.18 lets PID 1 reap orphaned zombies only after a delay; their pids
// would block the next restore — DESIGN.md section 8).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cstdio>

namespace {
void reap_all() {
  int st;
  while (waitpid(-1, &st, WNOHANG) > 0) {
  }
}

struct Reaper : doctest::IReporter {
  explicit Reaper(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override { reap_all(); }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
}  // namespace

DOCTEST_REGISTER_LISTENER("reaper", 1, Reaper);

int main(int argc, char** argv) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    perror("PR_SET_CHILD_SUBREAPER");
    return 1;
  }
  doctest::Context ctx(argc, argv);
  int rc = ctx.run();
  reap_all();
  return rc;
}
