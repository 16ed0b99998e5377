// The restorer: runs inside a task being restored, swaps its address space
// and sigreturns into the dumped registers (protocol:
// parasite/restorer_abi.h). Freestanding; see parasite/blob_rt.h.
//
// Skeleton: the entry, its own stack, the args check and kPing. The restore
// itself (unmap the restore-time mm, map the dumped VMAs, fill pages, move
// vDSO/vvar, PR_SET_MM_MAP, threads, signals, timers, barrier, rt_sigreturn)
// is issue 5's dump/restore work.
#include "parasite/blob_rt.h"

#include "parasite/restorer_abi.h"
#include "parasite/restorer_task_abi.h"

#pragma GCC visibility push(hidden)

using cr::RestorerArgs;
using cr::RestorerCmd;

extern "C" long restorer_main(RestorerArgs* a);
extern "C" long restorer_restore_task(cr::RestoreTaskArgs* a, cr::BlobResult* r);

// rdi = args. Switch to the blob's own stack first: the caller's stack is
// about to be unmapped. If restorer_main returns, exit with -ret.
asm(R"(
	.pushsection .blob.entry,"ax",@progbits
	.globl __blob_entry
	.hidden __blob_entry
	.globl restorer_entry
	.hidden restorer_entry
	.type restorer_entry,@function
__blob_entry:
restorer_entry:
	leaq restorer_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call restorer_main
	movq %rax, %rdi
	negq %rdi
	movl $)" CR_BLOB_STR(__NR_exit_group) R"(, %eax
	syscall
	ud2
	.size restorer_entry, .-restorer_entry
	.popsection

	.pushsection .bss.restorer_stack,"aw",@nobits
	.balign 16
	.globl restorer_stack_top
	.hidden restorer_stack_top
restorer_stack:
	.skip )" CR_BLOB_STR(CR_RESTORER_STACK_SIZE) R"(
restorer_stack_top:
	.popsection
)");

extern "C" {
[[gnu::used]] constinit RestorerArgs restorer_args = {};
}

namespace {

constexpr const char kName[] = "restorer";

long do_ping(RestorerArgs* a) {
  a->u.ping.out = ~a->u.ping.in;
  a->u.ping.base = blob::self_base();
  a->u.ping.pid = static_cast<int32_t>(blob::sys_getpid());
  return 0;
}

// Returns only on failure (parasite/restorer_task.cc).
long do_restore(RestorerArgs* a) {
  auto* t = reinterpret_cast<cr::RestoreTaskArgs*>(a->u.restore.task_args);
  t->log_fd = a->log_fd;
  return restorer_restore_task(t, &a->result);
}

using Handler = long (*)(RestorerArgs*);
constexpr Handler kHandlers[] = {do_ping, do_restore};
static_assert(sizeof kHandlers / sizeof kHandlers[0] ==
              static_cast<size_t>(RestorerCmd::kNrCmds));

}  // namespace

extern "C" long restorer_main(RestorerArgs* a) {
  if (a->magic != cr::kRestorerArgsMagic)
    return blob::fail_arg(&a->result, -1, kName, "args: bad magic", a->magic, -EPROTO);
  if (a->abi_version != cr::kRestorerAbiVersion)
    return blob::fail_arg(&a->result, -1, kName, "args: abi version", a->abi_version, -EPROTO);
  blob::result_ok(&a->result);
  if (!blob::relocated())
    return blob::fail_arg(&a->result, a->log_fd, kName, "relocations not applied at base",
                          blob::self_base(), -ENOEXEC);
  if (a->cmd >= static_cast<uint32_t>(RestorerCmd::kNrCmds))
    return blob::fail_arg(&a->result, a->log_fd, kName, "unknown command", a->cmd, -EINVAL);
  long r = kHandlers[a->cmd](a);
  a->result.ret = static_cast<int32_t>(r);
  return r;
}

#pragma GCC visibility pop
