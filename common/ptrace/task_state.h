// What /proc says about one task (a thread, named by its TID), read before
// seizing it so that refusals can say why: gone, zombie, kernel thread,
// already traced, waiting for a vfork child.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/error.h"

namespace cr {

struct TaskState {
  pid_t tid = 0;
  pid_t tgid = 0;
  char state = 0;           // R S D T t Z X I ... from /proc/TID/stat
  pid_t tracer = 0;         // TracerPid
  bool kthread = false;
  int seccomp = 0;          // 0 off, 1 strict, 2 filter
  uint64_t sig_pending = 0;  // SigPnd: this thread
  uint64_t shd_pending = 0;  // ShdPnd: the thread group
  uint64_t sig_blocked = 0;  // SigBlk
  std::string name;          // comm
};

// Parse /proc/TID/status and /proc/TID/stat. "No such task" is an Error
// with err == ESRCH and the pid set.
Result<TaskState> read_task_state(pid_t tid);

// Parsers, exposed for tests.
Status parse_proc_status(const std::string& text, TaskState& out);
// The state letter from /proc/TID/stat text (the field after the ')' that
// ends the command name, which may itself hold spaces and parentheses).
char parse_proc_stat_state(const std::string& stat_text);

// The system call a blocked task sleeps in, from /proc/TID/syscall: its
// number, or -1 when the task is not in a system call (or running), -2 if
// unknown. args[0] is the first argument.
struct BlockedSyscall {
  long nr = -2;
  uint64_t arg0 = 0;
};
BlockedSyscall read_blocked_syscall(pid_t tid);

// A task that cannot be seized or entered safely: a zombie or dead task, a
// kernel thread, this very process, a task traced by someone else, or a
// parent waiting for its vfork child. The Error names the reason and a remedy.
Status check_task_enterable(const TaskState& st);

}  // namespace cr
