// Host side of the parasite's command protocol (parasite/parasite_abi.h):
// what to put in the args area and the registers, and how to read the
// outcome. The injection itself (remote mmap, writing the blob, setting the
// registers, running it to its return, restoring) is the remote-syscall
// engine's job; this is the contract it follows.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/blob/blob.h"
#include "common/error.h"
#include "parasite/parasite_abi.h"

namespace cr {

// Offsets in the parasite blob that a run needs, checked once.
struct ParasiteLayout {
  uint64_t map_size;     // bytes to map at the base
  uint64_t exec_size;    // [0, exec_size) R-X, the rest R/W
  uint64_t entry;        // parasite_trap_entry
  uint64_t return_done;  // parasite_return_done: rip at the entry of its rt_sigprocmask
  uint64_t ret;          // parasite_return (sizeof(ParasiteReturn) bytes)
  uint64_t args;         // parasite_args (sizeof(ParasiteArgs) bytes)
  uint64_t stack_top;    // parasite_stack_top

  // Registers for one command with the parasite mapped at `base`.
  uint64_t rip(uint64_t base) const { return base + entry; }
  uint64_t rdi(uint64_t base) const { return base + args; }
  uint64_t rsp(uint64_t base) const { return base + stack_top; }
  uint64_t after_return_call(uint64_t base) const { return base + return_done; }
  uint64_t return_block(uint64_t base) const { return base + ret; }
};

// The layout of the embedded parasite; an error if the blob and the host
// disagree about ParasiteArgs (built from different headers).
Result<ParasiteLayout> parasite_layout(const BlobDesc& d = parasite_blob());

// Fill the args header for `cmd`; the command's input (u.*) is left as is.
void parasite_args_init(ParasiteArgs* a, ParasiteCmd cmd, int log_fd = -1);

// After the run: the entry's return value and the args' result.
// ok if both say success; otherwise an Error naming pid and the failed step.
Status parasite_check(const ParasiteArgs& a, long rax, pid_t pid = 0);

const char* parasite_cmd_name(ParasiteCmd cmd);

}  // namespace cr
