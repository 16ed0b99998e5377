#include "common/ptrace/task_state.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/fd.h"

namespace cr {

namespace {

std::string proc_path(pid_t tid, const char* what) {
  return "/proc/" + std::to_string(tid) + "/" + what;
}

uint64_t parse_hex(const std::string& v) { return strtoull(v.c_str(), nullptr, 16); }

}  // namespace

Status parse_proc_status(const std::string& text, TaskState& out) {
  bool have_tgid = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    size_t vs = line.find_first_not_of(" \t", colon + 1);
    std::string val = vs == std::string::npos ? "" : line.substr(vs);
    if (key == "Name") out.name = val;
    else if (key == "Tgid") {
      out.tgid = static_cast<pid_t>(atoi(val.c_str()));
      have_tgid = true;
    } else if (key == "Pid") out.tid = static_cast<pid_t>(atoi(val.c_str()));
    else if (key == "TracerPid") out.tracer = static_cast<pid_t>(atoi(val.c_str()));
    else if (key == "Kthread") out.kthread = atoi(val.c_str()) != 0;
    else if (key == "Seccomp") out.seccomp = atoi(val.c_str());
    else if (key == "SigPnd") out.sig_pending = parse_hex(val);
    else if (key == "ShdPnd") out.shd_pending = parse_hex(val);
    else if (key == "SigBlk") out.sig_blocked = parse_hex(val);
    else if (key == "State" && !val.empty() && !out.state) out.state = val[0];
  }
  if (!have_tgid) return make_error("no Tgid line in /proc status");
  return ok_status();
}

char parse_proc_stat_state(const std::string& stat_text) {
  size_t p = stat_text.rfind(')');
  if (p == std::string::npos || p + 2 >= stat_text.size()) return 0;
  return stat_text[p + 2];
}

Result<TaskState> read_task_state(pid_t tid) {
  if (tid <= 0) return make_pid_error(tid, ESRCH, "task not found");
  auto status = read_file(proc_path(tid, "status").c_str(), 1 << 16);
  if (!status) {
    int e = status.error().err;
    if (e == ENOENT || e == ESRCH) return make_pid_error(tid, ESRCH, "task not found");
    return make_pid_error(tid, e, "cannot read %s", proc_path(tid, "status").c_str());
  }
  TaskState st;
  if (auto r = parse_proc_status(*status, st); !r)
    return make_pid_error(tid, 0, "cannot parse %s: %s", proc_path(tid, "status").c_str(),
                          r.error().message.c_str());
  // The stat letter is the one the scheduler sees right now; prefer it.
  if (auto stat = read_file(proc_path(tid, "stat").c_str(), 1 << 16); stat) {
    char c = parse_proc_stat_state(*stat);
    if (c) st.state = c;
  }
  st.tid = tid;
  return st;
}

BlockedSyscall read_blocked_syscall(pid_t tid) {
  BlockedSyscall b;
  auto text = read_file(proc_path(tid, "syscall").c_str(), 4096);
  if (!text) return b;
  const std::string& s = *text;
  if (s.rfind("running", 0) == 0) {
    b.nr = -1;
    return b;
  }
  char* end = nullptr;
  long nr = strtol(s.c_str(), &end, 10);
  if (end == s.c_str()) return b;
  b.nr = nr < 0 ? -1 : nr;
  if (nr >= 0) b.arg0 = strtoull(end, nullptr, 16);
  return b;
}

Status check_task_enterable(const TaskState& st) {
  pid_t tid = st.tid;
  if (st.state == 'Z' || st.state == 'X') {
    Error e = make_pid_error(tid, 0, "task is a zombie (it has exited; its parent has not reaped it)");
    if (st.tid == st.tgid)
      e.remedy = "if other threads of the process still run, name one of them with -t TID";
    return e;
  }
  if (st.kthread) return make_pid_error(tid, 0, "task is a kernel thread (%s); it has no user space to enter", st.name.c_str());
  if (st.tgid == getpid()) return make_pid_error(tid, 0, "task is crtools itself");
  if (st.tracer != 0) {
    // Who: another crtools command (a dump of an overlapping tree, an
    // exec) or a debugger.
    std::string who;
    if (auto t = read_task_state(st.tracer)) who = t->name;
    if (who.rfind("cr-", 0) == 0) {
      Error e = make_pid_error(tid, EBUSY, "task is busy: %s (pid %d) has it now", who.c_str(), st.tracer);
      e.remedy = "wait for that command to finish";
      return e;
    }
    Error e = make_pid_error(tid, EPERM, "task is already traced by pid %d%s%s%s", st.tracer, who.empty() ? "" : " (",
                             who.c_str(), who.empty() ? "" : ")");
    e.remedy = "detach the debugger or tracer (gdb, strace) first";
    return e;
  }
  if (st.state == 'D') {
    // A parent blocked in vfork() (or clone with CLONE_VFORK, as
    // posix_spawn does) stops for no one until its child execs or exits.
    BlockedSyscall b = read_blocked_syscall(tid);
    bool vfork = b.nr == SYS_vfork || b.nr == SYS_clone3 ||
                 (b.nr == SYS_clone && (b.arg0 & CLONE_VFORK));
    if (vfork) {
      Error e = make_pid_error(tid, 0, "task is waiting for its vfork child to exec or exit; it cannot be stopped now");
      e.remedy = "try again once the child has run exec";
      return e;
    }
  }
  return ok_status();
}

}  // namespace cr
