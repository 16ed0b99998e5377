// The restorer's arguments, shared by the host (cr-restore) and the blob.
//
// The restorer runs inside a task being restored. cr-restore (in that task)
// copies the blob into an anonymous mapping with its absolute relocations
// applied for the final address (blob_relocate_into()), moves it there
// (mremap) into a hole that collides with nothing, fills the RestorerArgs at
// off("restorer_args"), and jumps to off("restorer_entry") with rdi = the
// args address. restorer_entry switches to the blob's own stack
// (restorer_stack_top) and calls restorer_main(args).
//
// restorer_main does not return once the restore has started: it ends in
// rt_sigreturn into the dumped registers. If it returns (a failure, or a
// test command), restorer_entry calls exit_group(-ret), so the task exits
// with the errno as status and args->result says what failed.
//
// kRestore's work, step by step: parasite/restorer_task_abi.h and
// restorer_task.cc.
#pragma once

#include "parasite/blob_abi.h"

namespace cr {

inline constexpr uint32_t kRestorerArgsMagic = 0x52737431;  // "Rst1"
inline constexpr uint32_t kRestorerAbiVersion = 4;  // 3: RestoreVma shmid, shmflg; 4: RestoreTaskArgs fault_off, fault_target
// Size of the restorer's own stack in its bss (restorer_stack_top is its end).
#define CR_RESTORER_STACK_SIZE 32768
inline constexpr uint32_t kRestorerStackSize = CR_RESTORER_STACK_SIZE;

enum class RestorerCmd : uint32_t {
  kPing = 0,     // u.ping: out = ~in, base, pid
  kRestore = 1,  // u.restore: swap the address space and sigreturn (restorer_task_abi.h)
  kNrCmds
};

struct RestorerPing {
  uint64_t in;    // host sets
  uint64_t out;   // restorer: ~in
  uint64_t base;  // restorer: its own load address
  int32_t pid;    // restorer: getpid()
  uint32_t pad;
};
static_assert(sizeof(RestorerPing) == 32);
static_assert(offsetof(RestorerPing, pid) == 24);

struct RestorerRestore {
  uint64_t task_args;  // host: address of the RestoreTaskArgs (in the restore hole)
};
static_assert(sizeof(RestorerRestore) == 8);

struct RestorerArgs {
  uint32_t magic;        // host: kRestorerArgsMagic
  uint32_t abi_version;  // host: kRestorerAbiVersion
  uint32_t cmd;          // host: a RestorerCmd
  int32_t log_fd;        // host: fd for a one-line failure note, or -1
  BlobResult result;     // restorer: outcome
  union {
    RestorerPing ping;
    RestorerRestore restore;
    uint8_t reserved[256];
  } u;
};
static_assert(offsetof(RestorerArgs, cmd) == 8);
static_assert(offsetof(RestorerArgs, log_fd) == 12);
static_assert(offsetof(RestorerArgs, result) == 16);
static_assert(offsetof(RestorerArgs, u) == 80);
static_assert(sizeof(RestorerArgs) == 80 + 256);

CR_BLOB_ABI_TYPE(RestorerArgs);

}  // namespace cr
