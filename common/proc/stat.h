// /proc/PID/stat (fs/proc/array.c: do_task_stat), all 52 fields of
// `man 5 proc_pid_stat` in kernel order. comm is printed raw (it may hold
// spaces, parentheses, even newlines): it runs from the first '(' to the
// LAST ')'. Fields the kernel hides from an unprivileged reader read as 0.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cr::proc {

struct ProcStat {
  pid_t pid = 0;                 // 1
  std::string comm;              // 2 (without the parentheses)
  char state = 0;                // 3
  pid_t ppid = 0;                // 4
  pid_t pgrp = 0;                // 5
  pid_t session = 0;             // 6
  int tty_nr = 0;                // 7
  pid_t tpgid = 0;               // 8 (-1: no controlling terminal)
  uint32_t flags = 0;            // 9  PF_*
  uint64_t minflt = 0;           // 10
  uint64_t cminflt = 0;          // 11
  uint64_t majflt = 0;           // 12
  uint64_t cmajflt = 0;          // 13
  uint64_t utime = 0;            // 14 clock ticks
  uint64_t stime = 0;            // 15
  int64_t cutime = 0;            // 16
  int64_t cstime = 0;            // 17
  int64_t priority = 0;          // 18
  int64_t nice = 0;              // 19
  int64_t num_threads = 0;       // 20
  int64_t itrealvalue = 0;       // 21 always 0
  uint64_t starttime = 0;        // 22 clock ticks after boot
  uint64_t vsize = 0;            // 23 bytes
  int64_t rss = 0;               // 24 pages
  uint64_t rsslim = 0;           // 25
  uint64_t startcode = 0;        // 26
  uint64_t endcode = 0;          // 27
  uint64_t startstack = 0;       // 28
  uint64_t kstkesp = 0;          // 29
  uint64_t kstkeip = 0;          // 30
  uint64_t signal = 0;           // 31 obsolete masks
  uint64_t blocked = 0;          // 32
  uint64_t sigignore = 0;        // 33
  uint64_t sigcatch = 0;         // 34
  uint64_t wchan = 0;            // 35
  uint64_t nswap = 0;            // 36
  uint64_t cnswap = 0;           // 37
  int exit_signal = 0;           // 38
  int processor = 0;             // 39
  uint32_t rt_priority = 0;      // 40
  uint32_t policy = 0;           // 41 SCHED_*
  uint64_t delayacct_blkio_ticks = 0;  // 42
  uint64_t guest_time = 0;       // 43
  int64_t cguest_time = 0;       // 44
  uint64_t start_data = 0;       // 45
  uint64_t end_data = 0;         // 46
  uint64_t start_brk = 0;        // 47
  uint64_t arg_start = 0;        // 48
  uint64_t arg_end = 0;          // 49
  uint64_t env_start = 0;        // 50
  uint64_t env_end = 0;          // 51
  int exit_code = 0;             // 52
};

inline constexpr int kStatFields = 52;

// Fields after the 52nd (a future kernel's) are ignored; fewer is an error.
Result<ProcStat> parse_stat(std::string_view text, std::string_view source = "stat");
Result<ProcStat> read_stat(pid_t pid);
// /proc/PID/task/TID/stat
Result<ProcStat> read_task_stat(pid_t pid, pid_t tid);

}  // namespace cr::proc
