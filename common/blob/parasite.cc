#include "common/blob/parasite.h"

namespace cr {

Result<ParasiteLayout> parasite_layout(const BlobDesc& d) {
  ParasiteLayout l{};
  l.map_size = d.map_size();
  l.exec_size = d.exec_size;
  l.entry = TRY(d.symbol("parasite_trap_entry")).offset;
  l.return_done = TRY(d.symbol("parasite_return_done")).offset;
  l.ret = TRY(d.object("parasite_return", sizeof(ParasiteReturn))).offset;
  l.args = TRY(d.object("parasite_args", sizeof(ParasiteArgs))).offset;
  l.stack_top = TRY(d.symbol("parasite_stack_top")).offset;
  if (l.entry >= l.exec_size || l.return_done >= l.exec_size || l.ret < l.exec_size)
    return make_error("blob %s: parasite_trap_entry is not in its code", d.name);
  if (l.args < l.exec_size || l.stack_top % 16 || l.stack_top > d.total_size ||
      l.stack_top < l.exec_size + kParasiteStackSize)
    return make_error("blob %s: args area or stack outside its data", d.name);
  return l;
}

void parasite_args_init(ParasiteArgs* a, ParasiteCmd cmd, int log_fd) {
  a->magic = kParasiteArgsMagic;
  a->abi_version = kParasiteAbiVersion;
  a->cmd = static_cast<uint32_t>(cmd);
  a->log_fd = log_fd;
  a->result = BlobResult{};
}

Status parasite_check(const ParasiteArgs& a, long rax, pid_t pid) {
  if (rax == 0 && a.result.ret == 0) return ok_status();
  const char* cmd = parasite_cmd_name(static_cast<ParasiteCmd>(a.cmd));
  if (a.result.ret != 0) return blob_error(parasite_blob(), a.result, pid, cmd);
  if (rax < 0 && rax >= -4095)
    return make_pid_error(pid, static_cast<int>(-rax), "parasite %s: failed", cmd);
  return make_pid_error(pid, 0, "parasite %s: returned %ld without a report", cmd, rax);
}

const char* parasite_cmd_name(ParasiteCmd cmd) {
  switch (cmd) {
    case ParasiteCmd::kPing: return "ping";
    case ParasiteCmd::kGetSigactions: return "get-sigactions";
    case ParasiteCmd::kGetItimers: return "get-itimers";
    case ParasiteCmd::kGetSigaltstack: return "get-sigaltstack";
    case ParasiteCmd::kGetMisc: return "get-misc";
    case ParasiteCmd::kFini: return "fini";
    case ParasiteCmd::kNrCmds: break;
  }
  return "unknown";
}

}  // namespace cr
