// ParasiteSession: the parasite blob injected into a seized task, for state
// only the task itself can tell (sigactions, itimers, sigaltstack, umask,
// clear_child_tid ...). Built on RemoteSession, as cr-exec is:
//
//   auto task = TRY(SeizedTask::seize(pid));
//   auto rs = TRY(RemoteSession::start(task));
//   {
//     auto ps = TRY(ParasiteSession::inject(rs));
//     ParasiteArgs a = TRY(ps.run(ParasiteCmd::kGetSigactions));
//   }   // parasite unmapped (it is scratch memory of the RemoteSession)
//
// The blob lives in scratch memory of the RemoteSession, so it is unmapped
// and the task's registers, signal mask and memory are put back when the
// RemoteSession ends, whatever failed in between.
#pragma once

#include "common/blob/parasite.h"
#include "common/error.h"
#include "common/remote/remote_session.h"

namespace cr {

class ParasiteSession {
 public:
  static Result<ParasiteSession> inject(RemoteSession& rs);
  // Run one command; `in` supplies the command's input (u.*). Returns the
  // args area as the parasite left it, or an Error naming pid and step.
  Result<ParasiteArgs> run(ParasiteCmd cmd, const ParasiteArgs* in = nullptr);
  uint64_t base() const { return base_; }

 private:
  ParasiteSession(RemoteSession& rs, ParasiteLayout l, uint64_t base) : rs_(&rs), layout_(l), base_(base) {}
  RemoteSession* rs_;
  ParasiteLayout layout_;
  uint64_t base_;
};

}  // namespace cr
