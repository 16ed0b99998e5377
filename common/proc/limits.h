// /proc/PID/limits (fs/proc/base.c: proc_pid_limits): a header line, then
// one row per resource, "%-25s %-20s %-20s %-10s": name, soft, hard, unit;
// "unlimited" for RLIM_INFINITY. Rows are matched by name, so their order
// does not matter; all 16 must be there, each once. An unknown row, a unit
// that does not belong to the row, or a bad number is an error.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <string_view>

#include "common/error.h"

namespace cr::proc {

inline constexpr int kRlimits = 16;
static_assert(RLIM_NLIMITS == kRlimits, "RLIMIT_* count changed");

// Indexed by RLIMIT_* (RLIMIT_CPU = 0 ... RLIMIT_RTTIME = 15).
using ProcLimits = std::array<struct rlimit, kRlimits>;

// The row name of RLIMIT_* resource r ("Max cpu time"); nullptr if out of range.
const char* rlimit_row_name(int r);
// The unit of the row ("seconds", "bytes", ...; "" for nice/rtprio).
const char* rlimit_row_unit(int r);

Result<ProcLimits> parse_limits(std::string_view text, std::string_view source = "limits");
Result<ProcLimits> read_limits(pid_t pid);

}  // namespace cr::proc
