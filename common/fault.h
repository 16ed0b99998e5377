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
// A restore's points include those of the restorer blob, inside each task
// being restored (parasite/restorer_task.cc: one before each of its
// fallible system calls, the first of a loop): cr-restore maps the shared
// page into the task's restore hole (gone with the hole) and the blob
// counts there. They are in the "points N" total, not in the named lines
// (only the command's own process names its points); the blob fails its
// point as the kernel would (EIO), writing "injected fault at point N
// (restorer what)" as the task's error, and cr-restore logs the point as
// its own (fault_blob_note). With CRTOOLS_FAULT_ACTION set, the blob's
// points only count; an interruption waits for cr-restore's next point.
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
// The restorer blob's side (RestoreTaskArgs fault_off, fault_target): the
// shared page, to be mapped into the task (page null: fault injection
// off), and the point the blob fails (0: none; it only counts).
struct FaultBlobParams {
  void* page;
  uint64_t target;
};
FaultBlobParams fault_blob_params();
// After a task being restored failed: if its restorer failed the injected
// point, log it as fault_point does for its own.
void fault_blob_note();
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
