// The parasite: runs inside a frozen dumpee and answers one command per run
// (protocol: parasite/parasite_abi.h). Freestanding; see parasite/blob_rt.h.
#include "parasite/blob_rt.h"

#include <linux/prctl.h>
#include <linux/time.h>

#include "parasite/parasite_abi.h"

#pragma GCC visibility push(hidden)

using cr::ParasiteArgs;
using cr::ParasiteCmd;

extern "C" long parasite_service(ParasiteArgs* a);

// The entry the tracer jumps to: rdi = args, rsp = a stack. Must be the
// first thing in the blob (section .blob.entry, __blob_entry at offset 0).
// After the command it returns the task to its own state from
// parasite_return (filled by the host): the signal mask first, by the
// rt_sigprocmask the tracer waits for, then the flags and every general
// register, rsp last but one, and a jump through memory to its rip. No
// rt_sigreturn: that would cancel an interrupted call's restart block
// (nanosleep's restart_syscall). Had the tracer died meanwhile, the task
// simply goes on as it was.
asm(R"(
	.pushsection .blob.entry,"ax",@progbits
	.globl __blob_entry
	.hidden __blob_entry
	.globl parasite_trap_entry
	.hidden parasite_trap_entry
	.globl parasite_return_done
	.hidden parasite_return_done
	.type parasite_trap_entry,@function
__blob_entry:
parasite_trap_entry:
	andq $-16, %rsp
	call parasite_service
	movl $14, %eax
	movl $2, %edi
	leaq parasite_return+0(%rip), %rsi
	xorl %edx, %edx
	movl $8, %r10d
	syscall
parasite_return_done:
	pushq parasite_return+8(%rip)
	popfq
	movq parasite_return+16(%rip), %r15
	movq parasite_return+24(%rip), %r14
	movq parasite_return+32(%rip), %r13
	movq parasite_return+40(%rip), %r12
	movq parasite_return+48(%rip), %rbp
	movq parasite_return+56(%rip), %rbx
	movq parasite_return+64(%rip), %r11
	movq parasite_return+72(%rip), %r10
	movq parasite_return+80(%rip), %r9
	movq parasite_return+88(%rip), %r8
	movq parasite_return+96(%rip), %rax
	movq parasite_return+104(%rip), %rcx
	movq parasite_return+112(%rip), %rdx
	movq parasite_return+120(%rip), %rsi
	movq parasite_return+128(%rip), %rdi
	movq parasite_return+136(%rip), %rsp
	jmp *parasite_return+144(%rip)
	.size parasite_trap_entry, .-parasite_trap_entry
	.popsection

	.pushsection .bss.parasite_stack,"aw",@nobits
	.balign 16
	.globl parasite_stack_top
	.hidden parasite_stack_top
parasite_stack:
	.skip )" CR_BLOB_STR(CR_PARASITE_STACK_SIZE) R"(
parasite_stack_top:
	.popsection
)");

// The args area, exported to the host as the symbol parasite_args, and the
// task's own state to return to (parasite_return).
extern "C" {
[[gnu::used]] constinit ParasiteArgs parasite_args = {};
[[gnu::used]] constinit cr::ParasiteReturn parasite_return = {};
}

namespace {

constexpr const char kName[] = "parasite";

long do_ping(ParasiteArgs* a) {
  a->u.ping.out = ~a->u.ping.in;
  a->u.ping.base = blob::self_base();
  return 0;
}

long do_get_sigactions(ParasiteArgs* a) {
  for (int sig = 1; sig <= cr::kBlobNSig; sig++) {
    long r = blob::sys_rt_sigaction(sig, nullptr, &a->u.sigactions.sa[sig - 1]);
    if (r < 0) return blob::fail_arg(&a->result, a->log_fd, kName, "rt_sigaction", sig, r);
  }
  return 0;
}

long do_get_itimers(ParasiteArgs* a) {
  static_assert(sizeof(cr::BlobItimerval) == sizeof(struct itimerval));
  struct {
    int which;
    cr::BlobItimerval* out;
  } const timers[] = {
      {ITIMER_REAL, &a->u.itimers.real},
      {ITIMER_VIRTUAL, &a->u.itimers.virt},
      {ITIMER_PROF, &a->u.itimers.prof},
  };
  for (const auto& t : timers) {
    long r = blob::sys_getitimer(t.which, t.out);
    if (r < 0) return blob::fail_arg(&a->result, a->log_fd, kName, "getitimer", t.which, r);
  }
  return 0;
}

long do_get_sigaltstack(ParasiteArgs* a) {
  long r = blob::sys_sigaltstack(nullptr, &a->u.sigaltstack.ss);
  if (r < 0) return blob::fail(&a->result, a->log_fd, kName, "sigaltstack", r);
  return 0;
}

long do_get_misc(ParasiteArgs* a) {
  auto& m = a->u.misc;
  // umask can only be read by setting it; the task is frozen, and the old
  // value goes straight back.
  long old = blob::sys_umask(0);
  blob::sys_umask(static_cast<unsigned>(old));
  m.umask = static_cast<uint32_t>(old);
  long r = blob::sys_personality(0xffffffff);
  if (r < 0) return blob::fail(&a->result, a->log_fd, kName, "personality", r);
  m.personality = static_cast<uint32_t>(r);
  uint64_t tid_addr = 0;
  r = blob::sys_prctl(PR_GET_TID_ADDRESS, reinterpret_cast<unsigned long>(&tid_addr));
  if (r < 0) return blob::fail(&a->result, a->log_fd, kName, "prctl(PR_GET_TID_ADDRESS)", r);
  m.clear_child_tid = tid_addr;
  m.pid = static_cast<int32_t>(blob::sys_getpid());
  m.tid = static_cast<int32_t>(blob::sys_gettid());
  return 0;
}

long do_fini(ParasiteArgs*) { return 0; }

using Handler = long (*)(ParasiteArgs*);
// A table of absolute addresses: R_X86_64_64 relocations, rebased by the
// loader (and a check that it did).
constexpr Handler kHandlers[] = {
    do_ping, do_get_sigactions, do_get_itimers, do_get_sigaltstack, do_get_misc, do_fini,
};
static_assert(sizeof kHandlers / sizeof kHandlers[0] ==
              static_cast<size_t>(ParasiteCmd::kNrCmds));

}  // namespace

extern "C" long parasite_service(ParasiteArgs* a) {
  if (a->magic != cr::kParasiteArgsMagic)
    return blob::fail_arg(&a->result, -1, kName, "args: bad magic", a->magic, -EPROTO);
  if (a->abi_version != cr::kParasiteAbiVersion)
    return blob::fail_arg(&a->result, -1, kName, "args: abi version", a->abi_version, -EPROTO);
  blob::result_ok(&a->result);
  if (!blob::relocated())
    return blob::fail_arg(&a->result, a->log_fd, kName, "relocations not applied at base",
                          blob::self_base(), -ENOEXEC);
  if (a->cmd >= static_cast<uint32_t>(ParasiteCmd::kNrCmds))
    return blob::fail_arg(&a->result, a->log_fd, kName, "unknown command", a->cmd, -EINVAL);
  long r = kHandlers[a->cmd](a);
  a->result.ret = static_cast<int32_t>(r);
  return r;
}

#pragma GCC visibility pop
