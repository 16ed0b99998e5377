// cr-exec: run one system call inside another task and print it, strace
// style:   cr-exec -t 1234 open '&/foo/bar' 2   ->   open("/foo/bar", 2) = 3
//
// The work is the remote-syscall engine's (common/remote/remote_session.h):
// seize the thread, run the call on a borrowed `syscall` instruction, put
// everything back, detach. Exit status: 0 when the call ran (whatever it
// returned), 1 when it could not be run, 2 on a usage error, 130 when
// interrupted (SIGINT/SIGTERM/SIGHUP stop a blocking call; the task is
// restored all the same).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/exec_args.h"
#include "common/log.h"
#include "common/options.h"
#include "common/ptrace/seized_task.h"
#include "common/remote/remote_session.h"

using namespace cr;

namespace {

constexpr int kExitExecuted = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

// A handler without SA_RESTART: the engine's wait returns EINTR and turns it
// into a PTRACE_INTERRUPT of the call it runs.
volatile sig_atomic_t g_interrupted = 0;
void on_cancel(int) { g_interrupted = 1; }

void install_cancel_handlers() {
  struct sigaction sa = {};
  sa.sa_handler = on_cancel;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

void print_line(const std::string& line) {
  fputs((line + "\n").c_str(), stdout);
  fflush(stdout);
}

int run(pid_t tid, const ExecRequest& req) {
  auto seized = SeizedTask::seize(tid);
  if (!seized) {
    log_error(seized.error());
    return kExitFailed;
  }
  SeizedTask& task = *seized;
  long ret = 0;
  {
    auto session = RemoteSession::start(task);
    if (!session) {
      log_error(session.error());
      return kExitFailed;  // the partial session has been undone; ~SeizedTask detaches
    }
    std::vector<uint64_t> args;
    for (const auto& a : req.args) {
      if (a.kind == ExecArg::Kind::String) {
        auto p = session->push_string(a.text);
        if (!p) {
          log_error(p.error());
          return kExitFailed;
        }
        args.push_back(p->addr());
      } else {
        args.push_back(a.value);
      }
    }
    auto r = session->syscall_raw(req.nr, args);
    if (!r) {
      if (task.exited()) {
        print_line(format_exec_exited_line(req));
        print_line("+++ " + describe_wait_status(task.wait_status()) + " +++");
        return kExitExecuted;
      }
      log_error(r.error());
      return kExitFailed;
    }
    ret = *r;
    if (auto st = session->restore(); !st) {
      print_line(format_exec_line(req, ret));
      log_error(st.error());
      return kExitFailed;
    }
  }
  if (auto st = task.detach(); !st) {
    print_line(format_exec_line(req, ret));
    log_error(st.error());
    return kExitFailed;
  }
  print_line(format_exec_line(req, ret));
  return (g_interrupted || task.cancel_requested()) ? kExitInterrupted : kExitExecuted;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = command_start_or_exit(exec_command_spec(), argc, argv);
  if (!o.has(Opt::Tree)) {
    fprintf(stderr, "cr-exec: -t PID is required; see 'cr-exec --help'\n");
    return kExitUsage;
  }
  auto req = parse_exec_request(o.positional);
  if (!req) {
    fprintf(stderr, "cr-exec: %s; see 'cr-exec --help'\n", req.error().str().c_str());
    return kExitUsage;
  }
  if (auto st = check_exec_allowed(*req); !st) {
    Error e = std::move(st).error();
    e.pid = o.tree;
    log_error(e);
    return kExitFailed;
  }
  install_cancel_handlers();
  return run(o.tree, *req);
}
