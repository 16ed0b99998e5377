#include "common/fault.h"

#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "parasite/restorer_task_abi.h"

namespace cr {

namespace {

// The restorer blob sees it as a RestoreFaultPage.
struct Shared {
  std::atomic<uint64_t> reached;
  std::atomic<uint64_t> blob_failed;  // the point a restorer failed, for fault_blob_note,
  char blob_what[48];                 // and what it guarded
};
static_assert(offsetof(Shared, reached) == offsetof(RestoreFaultPage, reached));
static_assert(offsetof(Shared, blob_failed) == offsetof(RestoreFaultPage, failed));
static_assert(offsetof(Shared, blob_what) == offsetof(RestoreFaultPage, what));
static_assert(sizeof(Shared) == sizeof(RestoreFaultPage));
static_assert(sizeof(std::atomic<uint64_t>) == 8 && std::atomic<uint64_t>::is_always_lock_free);

// What happens at the chosen point (CRTOOLS_FAULT_ACTION).
enum class Action { Fail, Signal, Kill };

Shared* g_shared = nullptr;  // null: fault injection off (the usual case)
uint64_t g_target = 0;       // 0: only count
Action g_action = Action::Fail;
int g_action_sig = 0;        // Action::Signal: raised to ourselves
pid_t g_action_pid = 0;      // Action::Kill: SIGKILLed
pid_t g_owner = 0;           // the process that writes the report
std::string g_report;
// The points the owner reached, with their numbers, for the report.
std::vector<std::pair<uint64_t, const char*>>* g_names = nullptr;
thread_local int t_off = 0;
volatile sig_atomic_t g_interrupted = 0;  // the signal that asked us to stop

void write_report() {
  if (!g_shared || getpid() != g_owner || g_report.empty()) return;
  FILE* f = fopen(g_report.c_str(), "we");
  if (!f) return;
  fprintf(f, "points %llu\n", (unsigned long long)g_shared->reached.load());
  if (g_names)
    for (auto& [n, what] : *g_names) fprintf(f, "%llu %s\n", (unsigned long long)n, what);
  fclose(f);
}

void on_interrupt(int sig) {
  if (!g_interrupted) g_interrupted = sig;
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
  if (report) {
    g_report = report;
    g_names = new std::vector<std::pair<uint64_t, const char*>>;
  }
  if (const char* a = getenv("CRTOOLS_FAULT_ACTION"); a && *a) {
    if (!strncmp(a, "signal:", 7)) {
      g_action = Action::Signal;
      g_action_sig = atoi(a + 7);
    } else if (!strncmp(a, "kill:", 5)) {
      g_action = Action::Kill;
      g_action_pid = atoi(a + 5);
    }
  }
  atexit(write_report);
}

void catch_interrupts() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;  // no SA_RESTART: a blocking wait returns EINTR
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

Status fault_point(const char* what) {
  if (t_off) return ok_status();
  if (int sig = g_interrupted) {
    Error e = make_error("interrupted by %s; the tree is left as it was", sigabbrev_np(sig) ? sigabbrev_np(sig) : "a signal");
    (void)what;
    return e;
  }
  if (!g_shared) return ok_status();
  uint64_t n = g_shared->reached.fetch_add(1) + 1;
  if (g_names && getpid() == g_owner) g_names->emplace_back(n, what);
  if (n != g_target) return ok_status();
  if (g_action == Action::Signal) {
    pr_info(0, "fault injection: signal %d at point %llu (%s)", g_action_sig, (unsigned long long)n, what);
    raise(g_action_sig);
    return ok_status();  // the next point sees it
  }
  if (g_action == Action::Kill) {
    pr_info(0, "fault injection: killing pid %d at point %llu (%s)", g_action_pid, (unsigned long long)n, what);
    kill(g_action_pid, SIGKILL);
    return ok_status();
  }
  pr_info(0, "fault injection: failing point %llu (%s)", (unsigned long long)n, what);
  // CRTOOLS_FAULT_BACKTRACE=1: where (addresses for addr2line), for
  // finding a caller that ignores the failure.
  if (const char* bt = getenv("CRTOOLS_FAULT_BACKTRACE"); bt && *bt == '1') {
    void* frames[32];
    backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
  }
  return make_errno(EIO, "injected fault at point %llu (%s)", (unsigned long long)n, what);
}

FaultBlobParams fault_blob_params() {
  if (!g_shared) return {nullptr, 0};
  return {g_shared, g_action == Action::Fail ? g_target : 0};
}

void fault_blob_note() {
  if (!g_shared) return;
  if (uint64_t n = g_shared->blob_failed.exchange(0)) {
    g_shared->blob_what[sizeof g_shared->blob_what - 1] = 0;
    pr_info(0, "fault injection: failing point %llu (%s)", (unsigned long long)n, g_shared->blob_what);
  }
}

FaultsOff::FaultsOff() { t_off++; }
FaultsOff::~FaultsOff() { t_off--; }

}  // namespace cr
