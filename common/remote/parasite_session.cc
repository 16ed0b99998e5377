#include "common/fault.h"
#include "common/remote/parasite_session.h"

#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstring>
#include <vector>

#include "common/log.h"

namespace cr {

Result<ParasiteSession> ParasiteSession::inject(RemoteSession& rs) {
  TRY_STATUS(fault_point("parasite injection"));
  pid_t pid = rs.tid();
  ParasiteLayout l = TRY(parasite_layout());
  const BlobDesc& d = parasite_blob();
  RemotePtr<void> base = TRY(rs.alloc_scratch(l.map_size, PROT_READ | PROT_WRITE));
  std::vector<uint8_t> img(l.map_size);
  TRY_STATUS(blob_relocate_into(d, img.data(), img.size(), base.addr()));
  // Where the parasite returns to after each command: the task's own state.
  const user_regs_struct& g = rs.resume_regs();
  ParasiteReturn back = {rs.saved_sigmask(), g.eflags, g.r15, g.r14, g.r13, g.r12, g.rbp, g.rbx, g.r11, g.r10,
                         g.r9, g.r8, g.rax, g.rcx, g.rdx, g.rsi, g.rdi, g.rsp, g.rip};
  memcpy(img.data() + l.ret, &back, sizeof back);
  TRY_STATUS(rs.write_bytes(base, img.data(), img.size()));
  TRY(rs.syscall_checked(SYS_mprotect, base.addr(), l.exec_size, PROT_READ | PROT_EXEC));
  pr_debug(pid, "parasite injected at %#llx (%llu bytes)", (unsigned long long)base.addr(),
           (unsigned long long)l.map_size);
  return ParasiteSession(rs, l, base.addr());
}

Result<ParasiteArgs> ParasiteSession::run(ParasiteCmd cmd, const ParasiteArgs* in) {
  TRY_STATUS(fault_point("parasite command"));
  ParasiteArgs a;
  if (in) a = *in;
  else memset(&a, 0, sizeof a);
  parasite_args_init(&a, cmd, -1);
  RemotePtr<void> args(layout_.rdi(base_));
  TRY_STATUS(rs_->write_bytes(args, &a, sizeof a));
  user_regs_struct r = rs_->resume_regs();
  r.rip = layout_.rip(base_);
  r.rdi = layout_.rdi(base_);
  r.rsp = layout_.rsp(base_);
  r.orig_rax = ~0ull;  // not in a system call: no restart on resume
  TRY_STATUS(rs_->run_until_call(r, SYS_rt_sigprocmask, RemotePtr<void>(layout_.after_return_call(base_))));
  TRY_STATUS(rs_->read_bytes(args, &a, sizeof a));
  TRY_STATUS(parasite_check(a, a.result.ret, rs_->tid()));
  return a;
}

}  // namespace cr
