// RemoteSession: run system calls (and, for the parasite, code) inside a
// seized task, and put the task back exactly as it was.
//
//   auto task = TRY(SeizedTask::seize(tid));
//   {
//     auto rs = TRY(RemoteSession::start(task));
//     RemotePtr<char> path = TRY(rs.push_string("/foo/bar"));
//     long fd = TRY(rs.syscall_raw(SYS_open, path, O_RDWR));   // -errno on failure
//   }   // registers, FPU state, signal mask, code bytes, scratch memory restored
//
// What start() does to the task, and what restore() undoes (also on every
// error path, and from the destructor):
//  * A task stopped inside a system call (read, nanosleep, wait4, ppoll,
//    epoll_wait, ...) holds -ERESTART* in rax. restore() gives it back the
//    registers that issue the call again: rip onto the syscall
//    instruction, rax = the call (-ERESTARTSYS, -ERESTARTNOINTR,
//    -ERESTARTNOHAND) or restart_syscall (-ERESTART_RESTARTBLOCK, so a
//    sleeper wakes at its original deadline). See plan_restart().
//  * Saves the general registers, the XSAVE state and the signal mask, and
//    blocks every signal while it works (SIGKILL and SIGSTOP cannot be:
//    a SIGSTOP arriving meanwhile is delivered, the task stays stopped).
//  * Finds a `syscall` instruction to borrow, without writing anything:
//    in the vDSO first, else in any executable mapping. Only if none exists
//    are the two bytes at the task's rip overwritten (saved first, put back
//    on restore, whatever fails in between).
//  * Each syscall_raw() sets the argument registers, points rip at that
//    instruction and runs the task from syscall-entry to syscall-exit stop
//    (PTRACE_SYSCALL): no code runs after the instruction, nothing depends
//    on what follows it, and no breakpoint trap (SIGTRAP) is involved.
//  * Scratch memory (alloc_scratch, push_string) is a private anonymous
//    mapping, unmapped on restore.
//
// Armour: should the tracer die mid-session (SIGKILL of cr-dump or cr-exec,
// an OOM kill), the kernel detaches the task and it runs on from whatever
// registers we left it with. So that those are always safe, a session
// started with SyscallSite::Auto is *armed* when it can be:
//  * A return frame (an rt_sigframe: the resume registers, the saved mask,
//    the XSAVE state; common/kernel/sigframe.h) is written on the task's
//    stack below its red zone, where signal delivery would write one (the
//    bytes under it are saved and put back last).
//  * Each call runs at a `syscall` followed only by code we can follow to
//    its `ret` (the vDSO's clock_getres fallback: `syscall; xor ...; ret`),
//    with rsp (and rbp) set so that the `ret` finds, as its return
//    address, the frame's pretcode: a `mov $15,%eax; syscall` (rt_sigreturn,
//    glibc's __restore_rt) found in the task's code. A task let go between
//    two of our calls, or in one, finishes that call, returns into
//    rt_sigreturn and is exactly as it was before the session.
//  * Code run by run_until_call (the parasite) returns to the task's own
//    registers by itself (parasite/parasite_abi.h); the tracer only watches.
//  * start() checks the frame once by running rt_sigreturn through it:
//    the task must come back with the resume registers and mask. Not for a
//    task whose call restarts through restart_syscall (nanosleep): any
//    rt_sigreturn cancels that (6.18 arch/x86/kernel/signal_64.c sets
//    restart_block.fn = do_no_restart_syscall), so its sleep would end
//    early with EINTR; there the frame is used unchecked, and a task let go
//    through it sees exactly that EINTR.
// Not armed (a debug line says why; the session works as before, only not
// safe against our death): no such `syscall ... ret` or rt_sigreturn code
// in the task, no room on its stack, live AMX tile registers or a shadow
// stack, or an interrupted call with a signal pending (the kernel's own
// restart decision, which a return frame cannot carry). What our death
// leaves in an armed task: the scratch mappings (unused, anonymous) and the
// dead bytes of the frame below its stack pointer.
//
// The session borrows the SeizedTask, which must outlive it. It may be used
// on a task seized by SeizedTask::seize() or adopted with adopt_stopped().
#pragma once

#include <sys/user.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/error.h"
#include "common/proc/maps.h"
#include "common/ptrace/restart.h"
#include "common/ptrace/seized_task.h"
#include "common/remote/remote_ptr.h"

namespace cr {

template <class T>
struct is_remote_ptr : std::false_type {};
template <class T>
struct is_remote_ptr<RemotePtr<T>> : std::true_type {};
// What a system call argument may be: an integer, an enum or a RemotePtr.
template <class T>
concept RemoteArg = std::is_integral_v<T> || std::is_enum_v<T> || is_remote_ptr<T>::value;

enum class SyscallSite {
  Auto,        // vDSO, then any executable mapping, then patch at rip
  Vdso,        // only the vDSO
  PatchAtRip,  // always write `syscall` over the bytes at rip (tests)
};

struct RemoteSessionOptions {
  SyscallSite site = SyscallSite::Auto;
};

class RemoteSession {
 public:
  static Result<RemoteSession> start(SeizedTask& task, const RemoteSessionOptions& opts = {});

  RemoteSession(RemoteSession&& o) noexcept;
  RemoteSession& operator=(RemoteSession&&) = delete;
  RemoteSession(const RemoteSession&) = delete;
  RemoteSession& operator=(const RemoteSession&) = delete;
  // restore_or_log().
  ~RemoteSession();

  SeizedTask& task() { return *task_; }
  pid_t tid() const { return task_->tid(); }
  bool active() const { return active_; }

  // The registers the task resumes with (after settling; rip on the syscall
  // instruction if an interrupted call is to be re-issued).
  const user_regs_struct& resume_regs() const { return resume_regs_; }
  // The call that was interrupted and will be re-issued, if any.
  PendingRestart pending_restart_kind() const { return restart_; }
  uint64_t saved_sigmask() const { return saved_sigmask_; }
  const XState& saved_xstate() const { return saved_xstate_; }
  // The borrowed `syscall` instruction, and whether it had to be written.
  RemotePtr<void> syscall_site() const { return site_; }
  bool site_patched() const { return site_patched_; }

  // Run system call `nr` with up to six arguments in the task. The value is
  // the raw kernel return (negative: -errno); the Error is for a call that
  // could not be run (the task died, ptrace failed, ...). A task that exits
  // in the call (exit, exit_group) gives an Error with err == ESRCH and
  // task().exited() true. A successful execve/execveat ends the session:
  // only the signal mask is put back (nothing else of the old program exists).
  Result<long> syscall_raw(long nr, std::span<const uint64_t> args);
  template <class... A>
    requires(RemoteArg<A> && ...)
  Result<long> syscall_raw(long nr, A... args) {
    static_assert(sizeof...(A) <= 6, "a system call takes at most six arguments");
    const uint64_t v[] = {0, to_arg(args)...};
    return syscall_raw(nr, std::span<const uint64_t>(v + 1, sizeof...(A)));
  }
  // The same, but a negative return is an Error naming the call and errno.
  template <class... A>
    requires(RemoteArg<A> && ...)
  Result<uint64_t> syscall_checked(long nr, A... args) {
    long r = TRY(syscall_raw(nr, args...));
    return check_return(nr, r);
  }

  // Memory. alloc_scratch maps `size` bytes (rounded up to pages) in the
  // task; every scratch mapping is unmapped on restore.
  Result<RemotePtr<void>> alloc_scratch(size_t size, int prot = 3 /* PROT_READ|PROT_WRITE */);
  // Copy bytes / a NUL-terminated string into scratch memory.
  Result<RemotePtr<void>> push_bytes(const void* data, size_t len);
  Result<RemotePtr<char>> push_string(std::string_view s);

  Status write_bytes(RemotePtr<void> dst, const void* src, size_t len) { return task_->write_mem(dst, src, len); }
  Status read_bytes(RemotePtr<void> src, void* dst, size_t len) { return task_->read_mem(src, dst, len); }
  template <class T>
  Status write(RemotePtr<T> dst, const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    return write_bytes(dst, &v, sizeof v);
  }
  template <class T>
  Result<T> read(RemotePtr<T> src) {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    TRY_STATUS(read_bytes(src, &v, sizeof v));
    return v;
  }

  // Overwrite task memory that must be put back on restore (code of a
  // blob's trampoline, ...). The old bytes are saved before anything is
  // written, so a write failing halfway is undone too.
  Status write_restored_on_exit(RemotePtr<void> dst, const void* src, size_t len);

  // Run code in the task from `regs` until it calls `nr` from the
  // instruction before `after_syscall`, and that call returns: the code's
  // sign that it is done (the parasite's rt_sigprocmask, which puts the
  // task's mask back before it returns to its own registers by itself).
  // Every signal is blocked again afterwards. A fault is an Error naming
  // the signal and address.
  Status run_until_call(const user_regs_struct& regs, long nr, RemotePtr<void> after_syscall);
  bool armed() const { return armed_; }

  // Run code in the task from `regs` (set rip and rsp there) until it
  // executes int3 (not armed: a tracer's death at the trap delivers the
  // SIGTRAP); returns the registers at the trap. SIGTRAP is unblocked
  // while the code runs (a blocked SIGTRAP from int3 would reset the task's
  // SIGTRAP handler); every other signal stays blocked. A fault in the code
  // is an Error naming the signal and address.
  Result<user_regs_struct> run_until_int3(const user_regs_struct& regs);

  // Put everything back now; the session is over afterwards. Returns the
  // first error; every step is tried regardless.
  Status restore();
  void restore_or_log();

 private:
  explicit RemoteSession(SeizedTask& t) : task_(&t) {}
  Status plan_restart();
  Status find_syscall_site(SyscallSite how, const std::vector<proc::VmaInfo>& maps);
  Status arm(const std::vector<proc::VmaInfo>& maps);
  Result<std::vector<uint8_t>> return_frame_bytes(uint64_t at, uint64_t pretcode);
  // Set `r` in the task and run it through one system call `nr` (entry and
  // exit stops); the raw return.
  Result<long> run_call(long nr, const user_regs_struct& r);
  void put_frame_back();
  // Armed: leave the task where, let go, it returns through the frame
  // (about to run getpid at the syscall site); then block every signal.
  Status block_signals_armed();
  // An error may leave the task at the entry stop of a call of the code
  // we ran (the parasite's rt_sigprocmask): skip that call, to its exit
  // stop, before anything else is run or set (registers set at an entry
  // stop would be taken as that call's).
  Status leave_syscall_entry();
  // Resume (PTRACE_SYSCALL) to the next system call entry or exit stop. On
  // the way a stop signal is delivered (the process stops, and stays so
  // after us), another signal is kept for restore() to send back, a fault
  // is an Error naming it and `doing`, the task's end an ESRCH Error.
  Result<Stop> next_syscall_stop(const std::string& doing);
  Error fault_error(const Stop& s, const std::string& doing);
  Result<Stop> run_to_stop(int request, bool want_exit);
  Result<uint64_t> check_return(long nr, long r);

  template <class T, std::enable_if_t<std::is_integral_v<T> || std::is_enum_v<T>, int> = 0>
  static uint64_t to_arg(T v) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  }
  template <class T>
  static uint64_t to_arg(RemotePtr<T> p) {
    return p.addr();
  }

  struct Patch {
    RemotePtr<void> at;
    std::vector<uint8_t> old;
  };
  struct Scratch {
    RemotePtr<void> base;
    size_t size = 0;
    size_t used = 0;  // bump allocation for push_*
  };

  SeizedTask* task_;
  bool active_ = false;
  bool restoring_ = false;  // restore() runs munmap through syscall_raw
  bool exec_done_ = false;
  bool mask_saved_ = false;
  bool xstate_saved_ = false;
  user_regs_struct resume_regs_{};
  PendingRestart restart_ = PendingRestart::None;
  XState saved_xstate_;
  uint64_t saved_sigmask_ = 0;
  RemotePtr<void> site_;
  bool site_patched_ = false;
  std::vector<Patch> patches_;
  std::vector<Scratch> scratch_;
  std::vector<siginfo_t> deferred_signals_;
  // Armour (see the top of this file).
  bool armed_ = false;
  uint64_t armed_rsp_ = 0;      // rsp and rbp of every call while armed
  uint64_t frame_at_ = 0;       // the return frame on the stack
  Patch frame_old_;             // the stack bytes under it, put back last
};

}  // namespace cr
