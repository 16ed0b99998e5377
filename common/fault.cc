#include "common/fault.h"

#include "common/log.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <execinfo.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cr {

namespace {

struct Shared {
  std::atomic<uint64_t> reached;
};

Shared* g_shared = nullptr;  // null: fault injection off (the usual case)
uint64_t g_target = 0;       // 0: only count
pid_t g_owner = 0;           // the process that writes the report
std::string g_report;
thread_local int t_off = 0;

void write_report() {
  if (!g_shared || getpid() != g_owner || g_report.empty()) return;
  FILE* f = fopen(g_report.c_str(), "we");
  if (!f) return;
  fprintf(f, "points %llu\n", (unsigned long long)g_shared->reached.load());
  fclose(f);
}

}  // namespace

void fault_setup() {
  const char* inject = getenv("CRTOOLS_FAULT_INJECT");
  const char* report = getenv("CRTOOLS_FAULT_REPORT");
  if ((!inject || !*inject) && (!report || !*report)) return;
  void* p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  g_shared = new (p) Shared{};
  g_target = inject ? strtoull(inject, nullptr, 10) : 0;
  g_owner = getpid();
  if (report) g_report = report;
  atexit(write_report);
}

Status fault_point(const char* what) {
  if (!g_shared || t_off) return ok_status();
  uint64_t n = g_shared->reached.fetch_add(1) + 1;
  if (n != g_target) return ok_status();
  pr_info(0, "fault injection: failing point %llu (%s)", (unsigned long long)n, what);
  // CRTOOLS_FAULT_BACKTRACE=1: where (addresses for addr2line), for
  // finding a caller that ignores the failure.
  if (const char* bt = getenv("CRTOOLS_FAULT_BACKTRACE"); bt && *bt == '1') {
    void* frames[32];
    backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
  }
  return make_errno(EIO, "injected fault at point %llu (%s)", (unsigned long long)n, what);
}

FaultsOff::FaultsOff() { t_off++; }
FaultsOff::~FaultsOff() { t_off--; }

}  // namespace cr
