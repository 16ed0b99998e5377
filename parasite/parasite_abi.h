// The parasite's command protocol, shared by the host (cr-dump) and the blob.
//
// The parasite runs inside a frozen dumpee and answers one command per run:
//
//   1. The host maps the blob into the task (a region of at least
//      blob.map_size() bytes at address B, with the blob's absolute
//      relocations applied for B: blob_relocate_into()), text and rodata
//      [0, exec_size) R-X, the rest R/W.
//   2. The host fills the ParasiteArgs at B + off("parasite_args"): magic,
//      abi_version, cmd, log_fd (-1: no log), and the command's input.
//   3. The host fills the ParasiteReturn at B + off("parasite_return") with
//      the task's own signal mask, flags and general registers (rip and rsp
//      included), and sets, in the stopped task: rip = B +
//      off("parasite_trap_entry"), rdi = the args address, rsp = B +
//      off("parasite_stack_top") (any writable stack works; the entry aligns
//      it to 16 bytes), and runs it with every signal blocked, stopping at
//      system calls (PTRACE_SYSCALL).
//   4. parasite_trap_entry calls parasite_service(args), which runs the
//      command and returns 0 or -errno (also stored in args->result.ret);
//      the entry then puts the mask back (rt_sigprocmask from just before
//      parasite_return_done: the host's sign that the command is over),
//      and the registers, and jumps to the task's rip. The host stops it at
//      that call's exit and blocks signals again; had the host died, the
//      task would go on as it was.
//   5. The host reads the reply from the args area. kParasiteFini is the
//      last command before unmapping.
//
// parasite_service is an ordinary function (System V ABI) so that tests can
// call it directly in their own process (test/unit/blob_test.cc).
//
// The parasite touches no FPU/SSE/AVX register (it is compiled with
// -mgeneral-regs-only) and allocates nothing: everything it needs is in its
// own image, its bss and the args area.
#pragma once

#include "parasite/blob_abi.h"

namespace cr {

inline constexpr uint32_t kParasiteArgsMagic = 0x50727331;  // "Prs1"
inline constexpr uint32_t kParasiteAbiVersion = 2;  // 2: returns to the task itself, not by int3
// Size of the stack in the parasite's bss (parasite_stack_top is its end).
// A macro as well, for the entry's assembly.
#define CR_PARASITE_STACK_SIZE 16384
inline constexpr uint32_t kParasiteStackSize = CR_PARASITE_STACK_SIZE;

enum class ParasiteCmd : uint32_t {
  kPing = 0,          // u.ping: out = ~in, base = where the blob thinks it is
  kGetSigactions = 1, // u.sigactions: every signal's disposition
  kGetItimers = 2,    // u.itimers: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  kGetSigaltstack = 3,// u.sigaltstack: the calling thread's sigaltstack
  kGetMisc = 4,       // u.misc: umask, personality, clear_child_tid, pid, tid
  kFini = 5,          // nothing left to do; the host unmaps the parasite
  kNrCmds
};

// The kernel's struct sigaction on x86-64 (what rt_sigaction(2) reads and
// writes with sigsetsize 8): handler, flags, restorer, mask.
struct BlobSigaction {
  uint64_t handler;   // SIG_DFL (0), SIG_IGN (1) or the handler's address
  uint64_t flags;     // SA_*, including SA_RESTORER as glibc sets it
  uint64_t restorer;  // sa_restorer (glibc's __restore_rt)
  uint64_t mask;      // sa_mask: bit (sig - 1)
};
static_assert(sizeof(BlobSigaction) == 32);
static_assert(offsetof(BlobSigaction, handler) == 0);
static_assert(offsetof(BlobSigaction, flags) == 8);
static_assert(offsetof(BlobSigaction, restorer) == 16);
static_assert(offsetof(BlobSigaction, mask) == 24);

// struct itimerval (two struct timeval) as getitimer(2) fills it.
struct BlobItimerval {
  int64_t interval_sec;
  int64_t interval_usec;
  int64_t value_sec;
  int64_t value_usec;
};
static_assert(sizeof(BlobItimerval) == 32);
static_assert(offsetof(BlobItimerval, interval_usec) == 8);
static_assert(offsetof(BlobItimerval, value_sec) == 16);
static_assert(offsetof(BlobItimerval, value_usec) == 24);

// stack_t as sigaltstack(2) fills it.
struct BlobStack {
  uint64_t sp;
  int32_t flags;  // SS_DISABLE, SS_AUTODISARM (SS_ONSTACK refers to the parasite's own stack)
  uint32_t pad;
  uint64_t size;
};
static_assert(sizeof(BlobStack) == 24);
static_assert(offsetof(BlobStack, flags) == 8);
static_assert(offsetof(BlobStack, size) == 16);

struct ParasitePing {
  uint64_t in;    // host sets
  uint64_t out;   // parasite: ~in
  uint64_t base;  // parasite: its own load address (rip-relative)
};
static_assert(sizeof(ParasitePing) == 24);

struct ParasiteSigactions {
  BlobSigaction sa[kBlobNSig];  // sa[sig - 1]; SIGKILL/SIGSTOP are always SIG_DFL
};
static_assert(sizeof(ParasiteSigactions) == 64 * 32);

struct ParasiteItimers {
  BlobItimerval real;   // ITIMER_REAL
  BlobItimerval virt;   // ITIMER_VIRTUAL
  BlobItimerval prof;   // ITIMER_PROF
};
static_assert(sizeof(ParasiteItimers) == 96);
static_assert(offsetof(ParasiteItimers, virt) == 32);
static_assert(offsetof(ParasiteItimers, prof) == 64);

struct ParasiteSigaltstack {
  BlobStack ss;
};
static_assert(sizeof(ParasiteSigaltstack) == 24);

struct ParasiteMisc {
  uint32_t umask;
  uint32_t personality;
  uint64_t clear_child_tid;  // prctl(PR_GET_TID_ADDRESS)
  int32_t pid;               // getpid() (in the task's own pid namespace)
  int32_t tid;               // gettid()
};
static_assert(sizeof(ParasiteMisc) == 24);
static_assert(offsetof(ParasiteMisc, personality) == 4);
static_assert(offsetof(ParasiteMisc, clear_child_tid) == 8);
static_assert(offsetof(ParasiteMisc, pid) == 16);
static_assert(offsetof(ParasiteMisc, tid) == 20);

// The task's own state, to which the entry returns after a command (the
// blob symbol parasite_return; the entry's assembly uses these offsets).
struct ParasiteReturn {
  uint64_t mask;    // the signal mask (rt_sigprocmask SIG_SETMASK)
  uint64_t rflags;  // popfq
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi;
  uint64_t rsp, rip;
};
static_assert(offsetof(ParasiteReturn, rflags) == 8);
static_assert(offsetof(ParasiteReturn, r15) == 16);
static_assert(offsetof(ParasiteReturn, rbx) == 56);
static_assert(offsetof(ParasiteReturn, r8) == 88);
static_assert(offsetof(ParasiteReturn, rdi) == 128);
static_assert(offsetof(ParasiteReturn, rsp) == 136);
static_assert(offsetof(ParasiteReturn, rip) == 144);
static_assert(sizeof(ParasiteReturn) == 152);
CR_BLOB_ABI_TYPE(ParasiteReturn);

// The args area: one per parasite, at the blob symbol parasite_args.
struct ParasiteArgs {
  uint32_t magic;        // host: kParasiteArgsMagic
  uint32_t abi_version;  // host: kParasiteAbiVersion
  uint32_t cmd;          // host: a ParasiteCmd
  int32_t log_fd;        // host: fd in the task for a one-line failure note, or -1
  BlobResult result;     // parasite: outcome of the last command
  union {
    ParasitePing ping;
    ParasiteSigactions sigactions;
    ParasiteItimers itimers;
    ParasiteSigaltstack sigaltstack;
    ParasiteMisc misc;
  } u;
};
static_assert(offsetof(ParasiteArgs, magic) == 0);
static_assert(offsetof(ParasiteArgs, abi_version) == 4);
static_assert(offsetof(ParasiteArgs, cmd) == 8);
static_assert(offsetof(ParasiteArgs, log_fd) == 12);
static_assert(offsetof(ParasiteArgs, result) == 16);
static_assert(offsetof(ParasiteArgs, u) == 80);
static_assert(sizeof(ParasiteArgs) == 80 + 64 * 32);

CR_BLOB_ABI_TYPE(BlobSigaction);
CR_BLOB_ABI_TYPE(BlobItimerval);
CR_BLOB_ABI_TYPE(BlobStack);
CR_BLOB_ABI_TYPE(ParasiteArgs);

}  // namespace cr
