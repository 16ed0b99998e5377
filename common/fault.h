// Fault injection (issue 8; cr-dump(8) and cr-restore(8), ENVIRONMENT).
// With CRTOOLS_FAULT_INJECT=N in the environment, the N-th fault point a
// command reaches fails as the kernel would with EIO. The points sit at the
// fallible steps of the forward path: ptrace requests, /proc reads, remote
// system calls, parasite commands, image writes and reads, forks. Undo
// paths (a remote session putting a task back, detaching, removing a
// half-written set) run inside a FaultsOff scope and reach none: they are
// what the tests check. The count is shared by a command's processes (a
// page mapped shared before cr-restore forks the tree). With
// CRTOOLS_FAULT_REPORT=FILE the command writes "points N" there at exit,
// so that a test can walk N over every point, then one line "I what" for
// each point its own process reached (its number and what it guards: a
// test can pick points by kind and order). CRTOOLS_FAULT_ACTION changes
// what happens at point N: "signal:SIG" raises signal number SIG to the
// command itself (an interruption at that moment), "kill:PID" SIGKILLs PID
// (a dumpee killed by someone else mid-dump); both go on from there.
//
// The same points are where a command stops when asked to: after
// catch_interrupts(), SIGINT, SIGTERM or SIGHUP make the next point fail
// ("interrupted by INT"), so the command unwinds as from any failure.
#pragma once

#include "common/error.h"

namespace cr {

// Once, at command start (command_start_or_exit).
void fault_setup();
// ok, or the injected failure naming the point and its number, or the
// interruption.
Status fault_point(const char* what);
// SIGINT, SIGTERM and SIGHUP interrupt the command at its next fault point
// (and a blocking wait with EINTR) rather than killing it halfway.
void catch_interrupts();

// No fault points fire on this thread while one lives.
class FaultsOff {
 public:
  FaultsOff();
  ~FaultsOff();
  FaultsOff(const FaultsOff&) = delete;
  FaultsOff& operator=(const FaultsOff&) = delete;
};

}  // namespace cr
