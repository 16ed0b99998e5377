// ptrace probes: each seizes and interrupts a forked child the way cr-dump
// stops a task, then uses the request under test on it.
#include <elf.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/kernel/probe_child.h"
#include "common/kernel/probes.h"
#include "common/strings.h"
#include "common/kernel/uapi.h"

namespace cr::probe {

namespace {


// Fork a child that runs setup, says "ready" and then answers "ping" with
// "pong" until its stdin closes; PTRACE_SEIZE it and stop it with
// PTRACE_INTERRUPT, as cr-dump does. The child is killed and reaped when the
// returned object goes away.
Result<std::unique_ptr<ProbeChild>> seized_child(const char* what, std::function<Status()> setup) {
  auto child = TRY(ProbeChild::spawn(what, [setup](ChildIo& io) {
    if (setup) {
      Status st = setup();
      if (!st) {
        io.send("error " + st.error().str());
        return 1;
      }
    }
    io.send("ready");
    while (true) {
      std::string l = io.recv();
      if (l == "ping") io.send("pong");
      else return 0;
    }
  }));
  TRY_STATUS(child->expect("ready"));
  pid_t pid = child->pid();
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) return make_pid_error(pid, errno, "PTRACE_SEIZE");
  if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) return make_pid_error(pid, errno, "PTRACE_INTERRUPT");
  int st = TRY(child->wait_status());
  if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTRAP || (st >> 16) != PTRACE_EVENT_STOP)
    return make_pid_error(pid, 0, "after PTRACE_INTERRUPT the child was not in PTRACE_EVENT_STOP but %s",
                          describe_wait_status(st).c_str());
  return child;
}

constexpr int kRtSig = 40;  // a real-time signal glibc does not reserve
uint64_t sigbit(int sig) { return 1ULL << (sig - 1); }

}  // namespace

Result<std::string> ptrace_seize() {
  auto child = TRY(seized_child("ptrace-seize", nullptr));
  pid_t pid = child->pid();
  if (ptrace(PTRACE_DETACH, pid, 0, 0) != 0) return make_pid_error(pid, errno, "PTRACE_DETACH");
  // The task must run on unharmed: its interrupted read() restarts.
  TRY_STATUS(child->send("ping"));
  TRY_STATUS(child->expect("pong"));
  return std::string("PTRACE_SEIZE + PTRACE_INTERRUPT stopped a child in PTRACE_EVENT_STOP; after "
                     "PTRACE_DETACH it ran on");
}

Result<std::string> ptrace_getsigmask() {
  const uint64_t want = sigbit(SIGUSR1) | sigbit(SIGUSR2) | sigbit(kRtSig);
  auto child = TRY(seized_child("ptrace-getsigmask", [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    sigaddset(&s, kRtSig);
    if (sigprocmask(SIG_SETMASK, &s, nullptr)) return Status(make_errno(errno, "sigprocmask"));
    return ok_status();
  }));
  pid_t pid = child->pid();
  uint64_t m = 0;
  if (ptrace(PTRACE_GETSIGMASK, pid, sizeof m, &m) != 0) return make_pid_error(pid, errno, "PTRACE_GETSIGMASK");
  if (m != want)
    return make_error("PTRACE_GETSIGMASK returned 0x%" PRIx64 ", the child blocked 0x%" PRIx64, m, want);
  uint64_t more = want | sigbit(SIGALRM);
  if (ptrace(PTRACE_SETSIGMASK, pid, sizeof more, &more) != 0)
    return make_pid_error(pid, errno, "PTRACE_SETSIGMASK");
  uint64_t back = 0;
  if (ptrace(PTRACE_GETSIGMASK, pid, sizeof back, &back) != 0)
    return make_pid_error(pid, errno, "PTRACE_GETSIGMASK");
  if (back != more)
    return make_error("PTRACE_SETSIGMASK 0x%" PRIx64 " read back as 0x%" PRIx64, more, back);
  return strprintf("PTRACE_GETSIGMASK read the child's mask 0x%" PRIx64 "; PTRACE_SETSIGMASK changed it", m);
}

Result<std::string> ptrace_peeksiginfo() {
  auto child = TRY(seized_child("ptrace-peeksiginfo", [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, kRtSig);
    if (sigprocmask(SIG_BLOCK, &s, nullptr)) return Status(make_errno(errno, "sigprocmask"));
    // One signal pending for the process, one for the thread.
    union sigval v;
    v.sival_int = 0x1234;
    if (sigqueue(getpid(), SIGUSR1, v)) return Status(make_errno(errno, "sigqueue"));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = kRtSig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = 0x5678;
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), kRtSig, &si))
      return Status(make_errno(errno, "rt_tgsigqueueinfo"));
    return ok_status();
  }));
  pid_t pid = child->pid();
  struct Want {
    bool shared;
    int sig, value;
  } wants[] = {{false, kRtSig, 0x5678}, {true, SIGUSR1, 0x1234}};
  for (int round = 0; round < 2; round++) {  // twice: peeking must not dequeue
    for (const Want& w : wants) {
      struct __ptrace_peeksiginfo_args a = {0, w.shared ? (uint32_t)PTRACE_PEEKSIGINFO_SHARED : 0u, 8};
      siginfo_t buf[8];
      long n = ptrace(PTRACE_PEEKSIGINFO, pid, &a, buf);
      if (n < 0) return make_pid_error(pid, errno, "PTRACE_PEEKSIGINFO");
      if (n != 1 || buf[0].si_signo != w.sig || buf[0].si_value.sival_int != w.value)
        return make_error("PTRACE_PEEKSIGINFO%s returned %ld signals (first %d), expected signal %d",
                          w.shared ? " (shared queue)" : "", n, n > 0 ? buf[0].si_signo : 0, w.sig);
    }
  }
  return std::string("PTRACE_PEEKSIGINFO read a thread's and a process's pending signal, twice, without "
                     "dequeuing them");
}

Result<std::string> ptrace_regsets() {
  auto child = TRY(seized_child("ptrace-regsets", nullptr));
  pid_t pid = child->pid();
  struct user_regs_struct regs;
  struct iovec iov = {&regs, sizeof regs};
  if (ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov) != 0)
    return make_pid_error(pid, errno, "PTRACE_GETREGSET NT_PRSTATUS");
  if (iov.iov_len != sizeof regs)
    return make_error("NT_PRSTATUS is %zu bytes, expected %zu", iov.iov_len, sizeof regs);
  std::vector<uint8_t> xs(64 * 1024);
  struct iovec xiov = {xs.data(), xs.size()};
  if (ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &xiov) != 0)
    return make_pid_error(pid, errno, "PTRACE_GETREGSET NT_X86_XSTATE");
  if (xiov.iov_len < 576) return make_error("NT_X86_XSTATE is only %zu bytes", xiov.iov_len);
  uint64_t xcr0, xstate_bv;
  memcpy(&xcr0, xs.data() + uapi::kXstateXcr0Offset, sizeof xcr0);
  memcpy(&xstate_bv, xs.data() + uapi::kXstateHeaderOffset, sizeof xstate_bv);
  // Parasite injection writes registers back; the unchanged set must be accepted.
  iov = {&regs, sizeof regs};
  if (ptrace(PTRACE_SETREGSET, pid, NT_PRSTATUS, &iov) != 0)
    return make_pid_error(pid, errno, "PTRACE_SETREGSET NT_PRSTATUS");
  xiov.iov_base = xs.data();
  if (ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &xiov) != 0)
    return make_pid_error(pid, errno, "PTRACE_SETREGSET NT_X86_XSTATE");
  if (ptrace(PTRACE_DETACH, pid, 0, 0) != 0) return make_pid_error(pid, errno, "PTRACE_DETACH");
  TRY_STATUS(child->send("ping"));
  TRY_STATUS(child->expect("pong"));
  return strprintf("NT_PRSTATUS %zu bytes, NT_X86_XSTATE %zu bytes (XCR0 0x%" PRIx64 ", XSTATE_BV 0x%" PRIx64
             "); SETREGSET of both and the child ran on",
             sizeof regs, xiov.iov_len, xcr0, xstate_bv);
}

Result<std::string> ptrace_rseq_config() {
  auto child = TRY(seized_child("ptrace-rseq-config", nullptr));
  pid_t pid = child->pid();
  struct __ptrace_rseq_configuration c;
  memset(&c, 0, sizeof c);
  long r = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof c, &c);
  if (r < 0) return make_pid_error(pid, errno, "PTRACE_GET_RSEQ_CONFIGURATION");
  if (r != (long)sizeof c)
    return make_error("PTRACE_GET_RSEQ_CONFIGURATION returned %ld bytes, expected %zu", r, sizeof c);
  if (!c.rseq_abi_pointer)
    return std::string("PTRACE_GET_RSEQ_CONFIGURATION works (the probe child has no rseq registered)");
  return strprintf("PTRACE_GET_RSEQ_CONFIGURATION: the child's rseq area is at 0x%" PRIx64 ", %u bytes, "
             "signature 0x%x",
             (uint64_t)c.rseq_abi_pointer, c.rseq_abi_size, c.signature);
}

Result<std::string> ptrace_seccomp_filter() {
  static const struct sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xfffff, 0, 1),  // no such syscall
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  constexpr size_t n = sizeof prog / sizeof prog[0];
  auto child = TRY(seized_child("ptrace-seccomp-filter", [] {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return Status(make_errno(errno, "PR_SET_NO_NEW_PRIVS"));
    struct sock_fprog fp = {static_cast<unsigned short>(n), const_cast<sock_filter*>(prog)};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp))
      return Status(make_errno(errno, "seccomp(SECCOMP_SET_MODE_FILTER)"));
    return ok_status();
  }));
  pid_t pid = child->pid();
  long cnt = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, nullptr);
  if (cnt < 0) return make_pid_error(pid, errno, "PTRACE_SECCOMP_GET_FILTER");
  if (cnt != (long)n) return make_error("PTRACE_SECCOMP_GET_FILTER counted %ld instructions, expected %zu", cnt, n);
  struct sock_filter got[n];
  if (ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, got) != cnt)
    return make_pid_error(pid, errno, "PTRACE_SECCOMP_GET_FILTER (reading the program)");
  if (memcmp(got, prog, sizeof prog) != 0) return make_error("PTRACE_SECCOMP_GET_FILTER returned another program");
  struct __ptrace_seccomp_metadata md = {0, 0};
  if (ptrace(PTRACE_SECCOMP_GET_METADATA, pid, sizeof md, &md) < 0)
    return make_pid_error(pid, errno, "PTRACE_SECCOMP_GET_METADATA");
  return strprintf("PTRACE_SECCOMP_GET_FILTER read back the child's %zu-instruction filter (flags 0x%" PRIx64 ")", n,
             (uint64_t)md.flags);
}

}  // namespace cr::probe
