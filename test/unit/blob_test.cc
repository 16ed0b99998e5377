// The blob toolchain: generated descriptors, the loader, the parasite's and
// the restorer's commands run in this process (or a forked child), and
// gen-blob's rejection of objects the loader cannot honour.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/blob/blob.h"
#include "common/blob/parasite.h"
#include "parasite/parasite_abi.h"
#include "parasite/restorer_abi.h"
#include "parasite_blob.inc"
#include "restorer_blob.inc"

namespace fs = std::filesystem;
using namespace cr;

namespace {

using ParasiteFn = long (*)(ParasiteArgs*);
using RestorerFn = long (*)(RestorerArgs*);

// The build directory ($(O)): this binary is $(O)/test/unit-tests.
fs::path build_dir() { return fs::read_symlink("/proc/self/exe").parent_path().parent_path(); }

struct RunResult {
  int status = -1;  // exit status, or -1
  std::string out, err;
};

std::string read_memfd(int fd) {
  std::string s;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, n);
  close(fd);
  return s;
}

RunResult run(const std::vector<std::string>& argv) {
  RunResult r;
  int out = memfd_create("out", 0), err = memfd_create("err", 0);
  REQUIRE(out >= 0);
  REQUIRE(err >= 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
  r.out = read_memfd(out);
  r.err = read_memfd(err);
  return r;
}

void init_args(ParasiteArgs* a, ParasiteCmd cmd) {
  memset(a, 0x5a, sizeof *a);  // the parasite must not rely on zeroed args
  parasite_args_init(a, cmd);
}

void init_args(RestorerArgs* a, RestorerCmd cmd) {
  memset(a, 0x5a, sizeof *a);
  a->magic = kRestorerArgsMagic;
  a->abi_version = kRestorerAbiVersion;
  a->cmd = static_cast<uint32_t>(cmd);
  a->log_fd = -1;
}

std::string what(const BlobResult& r) { return std::string(r.what, strnlen(r.what, sizeof r.what)); }

struct Parasite {
  LocalBlob blob;
  ParasiteFn service = nullptr;
  ParasiteArgs* args = nullptr;

  Parasite() {
    auto b = LocalBlob::map(parasite_blob());
    REQUIRE_MESSAGE(b.ok(), b.error().str());
    blob = std::move(*b);
    auto f = blob.function<ParasiteFn>("parasite_service");
    REQUIRE_MESSAGE(f.ok(), f.error().str());
    service = *f;
    auto a = blob.object<ParasiteArgs>("parasite_args");
    REQUIRE_MESSAGE(a.ok(), a.error().str());
    args = *a;
  }
  long call(ParasiteCmd cmd) {
    init_args(args, cmd);
    return service(args);
  }
};

void check_desc(const BlobDesc& d) {
  INFO("blob ", d.name);
  CHECK(d.exec_size % 4096 == 0);
  CHECK(d.exec_size > 0);
  CHECK(d.image_size <= d.total_size);
  CHECK(d.map_size() % 4096 == 0);
  CHECK(d.map_size() >= d.total_size);
  REQUIRE(d.nr_symbols >= 1);
  CHECK(std::string(d.symbols[0].name) == "__blob_entry");
  CHECK(d.symbols[0].offset == 0);
  for (uint64_t i = 0; i < d.nr_symbols; i++) CHECK(d.symbols[i].end() <= d.total_size);
  CHECK(d.nr_relocs > 0);  // at least the runtime's self-check pointer
  for (uint64_t i = 0; i < d.nr_relocs; i++) {
    CHECK(d.relocs[i] >= d.exec_size);  // only data holds absolute addresses
    CHECK(d.relocs[i] + 8 <= d.image_size);
    if (i) CHECK(d.relocs[i] > d.relocs[i - 1]);
    uint64_t v;
    memcpy(&v, d.image + d.relocs[i], 8);
    CHECK(v < d.total_size);  // an offset into the blob, before rebasing
  }
}

}  // namespace

TEST_CASE("blob: generated descriptors are consistent") {
  const BlobDesc& p = parasite_blob();
  const BlobDesc& r = restorer_blob();
  check_desc(p);
  check_desc(r);
  CHECK(std::string(p.name) == "parasite");
  CHECK(std::string(r.name) == "restorer");

  // The generated constants and the descriptor agree.
  namespace gp = gen_blob::parasite;
  CHECK(gp::total_size == p.total_size);
  CHECK(gp::sym::parasite_args.offset == p.symbol("parasite_args")->offset);
  CHECK(gp::sym::parasite_args.size == sizeof(ParasiteArgs));
  CHECK(gen_blob::restorer::sym::restorer_args.size == sizeof(RestorerArgs));

  // Entries are code; the args and the stack are data.
  for (const char* s : {"parasite_trap_entry", "parasite_service"})
    CHECK(p.symbol(s)->offset < p.exec_size);
  for (const char* s : {"restorer_entry", "restorer_main"}) CHECK(r.symbol(s)->offset < r.exec_size);
  CHECK(p.symbol("parasite_trap_entry")->offset == 0);
  CHECK(r.symbol("restorer_entry")->offset == 0);
  CHECK(p.object("parasite_args", sizeof(ParasiteArgs))->offset >= p.exec_size);
  uint64_t ptop = p.symbol("parasite_stack_top")->offset;
  CHECK(ptop % 16 == 0);
  CHECK(ptop >= p.image_size + kParasiteStackSize);
  CHECK(ptop <= p.total_size);
  uint64_t rtop = r.symbol("restorer_stack_top")->offset;
  CHECK(rtop % 16 == 0);
  CHECK(rtop >= r.image_size + kRestorerStackSize);

  // Lookups that must fail, naming the blob.
  auto missing = p.symbol("no_such_symbol");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("parasite") != std::string::npos);
  auto wrong = p.object("parasite_args", sizeof(RestorerArgs));
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message.find("different ABI headers") != std::string::npos);
}

TEST_CASE("blob: relocation for a foreign base address") {
  const BlobDesc& d = parasite_blob();
  std::vector<unsigned char> buf(d.map_size(), 0xee);
  const uint64_t base = 0x7f1234560000;
  REQUIRE(blob_relocate_into(d, buf.data(), buf.size(), base).ok());
  std::vector<bool> is_slot(d.image_size);
  for (uint64_t i = 0; i < d.nr_relocs; i++) {
    uint64_t want, got;
    memcpy(&want, d.image + d.relocs[i], 8);
    memcpy(&got, buf.data() + d.relocs[i], 8);
    CHECK(got == want + base);
    for (int k = 0; k < 8; k++) is_slot[d.relocs[i] + k] = true;
  }
  size_t diff = 0;
  for (uint64_t i = 0; i < d.image_size; i++)
    if (!is_slot[i] && buf[i] != d.image[i]) diff++;
  CHECK(diff == 0);
  size_t nonzero = 0;
  for (uint64_t i = d.image_size; i < buf.size(); i++) nonzero += buf[i] != 0;
  CHECK(nonzero == 0);

  CHECK_FALSE(blob_relocate_into(d, buf.data(), d.total_size - 1, base).ok());
  CHECK_FALSE(blob_relocate_into(d, buf.data(), buf.size(), base + 8).ok());
}

TEST_CASE("blob: parasite ping and the self-check of relocations") {
  Parasite p;
  init_args(p.args, ParasiteCmd::kPing);
  p.args->u.ping.in = 0x0123456789abcdefull;
  CHECK(p.service(p.args) == 0);
  CHECK(p.args->result.ret == 0);
  CHECK(p.args->u.ping.out == ~0x0123456789abcdefull);
  CHECK(p.args->u.ping.base == p.blob.base());

  // Relocated for another base than where it runs: the parasite notices.
  const BlobDesc& d = parasite_blob();
  void* m = mmap(nullptr, d.map_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(m != MAP_FAILED);
  REQUIRE(blob_relocate_into(d, m, d.map_size(), reinterpret_cast<uint64_t>(m) + 0x200000).ok());
  REQUIRE(mprotect(m, d.exec_size, PROT_READ | PROT_EXEC) == 0);
  auto* args = reinterpret_cast<ParasiteArgs*>(static_cast<char*>(m) + d.symbol("parasite_args")->offset);
  auto fn = reinterpret_cast<ParasiteFn>(static_cast<char*>(m) + d.symbol("parasite_service")->offset);
  init_args(args, ParasiteCmd::kPing);
  CHECK(fn(args) == -ENOEXEC);
  CHECK(what(args->result) == "relocations not applied at base");
  CHECK(args->result.arg == reinterpret_cast<uint64_t>(m));
  char want[128];
  snprintf(want, sizeof want, "parasite ping: relocations not applied at base 0x%lx: %s",
           reinterpret_cast<unsigned long>(m), strerror(ENOEXEC));
  Status st = parasite_check(*args, -ENOEXEC);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().str() == want);
  munmap(m, d.map_size());
}

TEST_CASE("blob: parasite reports bad args and unknown commands") {
  Parasite p;
  init_args(p.args, ParasiteCmd::kPing);
  p.args->magic = 0xdead;
  CHECK(p.service(p.args) == -EPROTO);
  CHECK(what(p.args->result) == "args: bad magic");
  CHECK(p.args->result.arg == 0xdead);

  init_args(p.args, ParasiteCmd::kPing);
  p.args->abi_version = 99;
  CHECK(p.service(p.args) == -EPROTO);
  CHECK(what(p.args->result) == "args: abi version");

  // Unknown command, with the one-line note on a log fd.
  int pfd[2];
  REQUIRE(pipe(pfd) == 0);
  init_args(p.args, ParasiteCmd::kPing);
  p.args->cmd = 99;
  p.args->log_fd = pfd[1];
  CHECK(p.service(p.args) == -EINVAL);
  close(pfd[1]);
  char buf[256] = {};
  ssize_t n = read(pfd[0], buf, sizeof buf - 1);
  close(pfd[0]);
  CHECK(n > 0);
  CHECK(std::string(buf) == "parasite: unknown command 99: errno 22\n");

  Error e = blob_error(parasite_blob(), p.args->result, 1234);
  CHECK(e.err == EINVAL);
  CHECK(e.pid == 1234);
  CHECK(e.str() == "pid 1234: parasite: unknown command 99: Invalid argument");

  // parasite_check: success, and a bare return value without a report.
  init_args(p.args, ParasiteCmd::kPing);
  CHECK(p.service(p.args) == 0);
  CHECK(parasite_check(*p.args, 0).ok());
  Status st = parasite_check(*p.args, -EFAULT, 7);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().str() == "pid 7: parasite ping: failed: Bad address");
  auto l = parasite_layout();
  REQUIRE_MESSAGE(l.ok(), l.error().str());
  CHECK(l->map_size == parasite_blob().map_size());
  CHECK(l->args == parasite_blob().symbol("parasite_args")->offset);
}

namespace {
constexpr uint64_t kSaRestorer = 0x04000000;  // not in glibc's headers
void handler_a(int) {}
void handler_b(int, siginfo_t*, void*) {}

BlobSigaction raw_sigaction(int sig) {
  BlobSigaction k{};
  REQUIRE(syscall(SYS_rt_sigaction, sig, nullptr, &k, kBlobSigsetSize) == 0);
  return k;
}
}  // namespace

TEST_CASE("blob: parasite GET_SIGACTIONS reports what was installed") {
  const int sigs[] = {SIGUSR1, SIGUSR2, SIGWINCH, SIGRTMIN + 3};
  struct sigaction old[4];
  for (int i = 0; i < 4; i++) REQUIRE(sigaction(sigs[i], nullptr, &old[i]) == 0);

  struct sigaction a = {};
  a.sa_handler = handler_a;
  a.sa_flags = SA_RESTART | SA_NODEFER;
  sigemptyset(&a.sa_mask);
  sigaddset(&a.sa_mask, SIGTERM);
  sigaddset(&a.sa_mask, SIGRTMIN + 1);
  REQUIRE(sigaction(SIGUSR1, &a, nullptr) == 0);
  struct sigaction ign = {};
  ign.sa_handler = SIG_IGN;
  REQUIRE(sigaction(SIGUSR2, &ign, nullptr) == 0);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  REQUIRE(sigaction(SIGWINCH, &dfl, nullptr) == 0);
  struct sigaction b = {};
  b.sa_sigaction = handler_b;
  b.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&b.sa_mask);
  REQUIRE(sigaction(SIGRTMIN + 3, &b, nullptr) == 0);

  Parasite p;
  long ret = p.call(ParasiteCmd::kGetSigactions);

  for (int i = 0; i < 4; i++) REQUIRE(sigaction(sigs[i], &old[i], nullptr) == 0);
  REQUIRE(ret == 0);
  const BlobSigaction* sa = p.args->u.sigactions.sa;

  const BlobSigaction& u1 = sa[SIGUSR1 - 1];
  CHECK(u1.handler == reinterpret_cast<uint64_t>(&handler_a));
  CHECK((u1.flags & ~uint64_t(kSaRestorer)) == uint64_t(SA_RESTART | SA_NODEFER));
  CHECK((u1.flags & kSaRestorer) != 0);  // glibc's __restore_rt
  CHECK(u1.restorer != 0);
  CHECK(u1.mask == ((1ull << (SIGTERM - 1)) | (1ull << (SIGRTMIN + 1 - 1))));
  CHECK(sa[SIGUSR2 - 1].handler == 1);  // SIG_IGN
  CHECK(sa[SIGWINCH - 1].handler == 0);  // SIG_DFL
  const BlobSigaction& rt = sa[SIGRTMIN + 3 - 1];
  CHECK(rt.handler == reinterpret_cast<uint64_t>(&handler_b));
  CHECK((rt.flags & ~uint64_t(kSaRestorer)) == uint64_t(SA_SIGINFO | SA_ONSTACK));
  CHECK(sa[SIGKILL - 1].handler == 0);
  CHECK(sa[SIGSTOP - 1].handler == 0);

  // And every other signal matches what the kernel says now (unchanged ones).
  for (int sig = 1; sig <= kBlobNSig; sig++) {
    bool ours = false;
    for (int s : sigs) ours |= s == sig;
    if (ours) continue;
    INFO("signal ", sig);
    BlobSigaction k = raw_sigaction(sig);
    CHECK(memcmp(&k, &sa[sig - 1], sizeof k) == 0);
  }
}

TEST_CASE("blob: parasite GET_ITIMERS reports the interval timers") {
  struct itimerval old_real, old_prof, old_virt;
  REQUIRE(getitimer(ITIMER_REAL, &old_real) == 0);
  REQUIRE(getitimer(ITIMER_PROF, &old_prof) == 0);
  REQUIRE(getitimer(ITIMER_VIRTUAL, &old_virt) == 0);
  struct itimerval real = {{5, 250000}, {100, 0}};
  struct itimerval prof = {{0, 0}, {50, 0}};
  struct itimerval virt = {{0, 0}, {0, 0}};
  REQUIRE(setitimer(ITIMER_REAL, &real, nullptr) == 0);
  REQUIRE(setitimer(ITIMER_PROF, &prof, nullptr) == 0);
  REQUIRE(setitimer(ITIMER_VIRTUAL, &virt, nullptr) == 0);

  Parasite p;
  long ret = p.call(ParasiteCmd::kGetItimers);
  REQUIRE(setitimer(ITIMER_REAL, &old_real, nullptr) == 0);
  REQUIRE(setitimer(ITIMER_PROF, &old_prof, nullptr) == 0);
  REQUIRE(setitimer(ITIMER_VIRTUAL, &old_virt, nullptr) == 0);
  REQUIRE(ret == 0);

  const ParasiteItimers& t = p.args->u.itimers;
  CHECK(t.real.interval_sec == 5);
  CHECK(t.real.interval_usec == 250000);
  CHECK(t.real.value_sec >= 98);
  CHECK(t.real.value_sec <= 100);
  CHECK(t.prof.interval_sec == 0);
  CHECK(t.prof.interval_usec == 0);
  CHECK(t.prof.value_sec >= 48);
  CHECK(t.prof.value_sec <= 50);
  CHECK(t.virt.value_sec == 0);
  CHECK(t.virt.value_usec == 0);
}

TEST_CASE("blob: parasite GET_SIGALTSTACK and GET_MISC") {
  stack_t old;
  REQUIRE(sigaltstack(nullptr, &old) == 0);
  std::vector<char> mem(64 << 10);
  stack_t ss = {};
  ss.ss_sp = mem.data();
  ss.ss_size = mem.size();
  REQUIRE(sigaltstack(&ss, nullptr) == 0);
  Parasite p;
  long ret = p.call(ParasiteCmd::kGetSigaltstack);
  REQUIRE(sigaltstack(&old, nullptr) == 0);
  REQUIRE(ret == 0);
  CHECK(p.args->u.sigaltstack.ss.sp == reinterpret_cast<uint64_t>(mem.data()));
  CHECK(p.args->u.sigaltstack.ss.size == mem.size());
  CHECK(p.args->u.sigaltstack.ss.flags == 0);

  mode_t old_mask = umask(027);
  ret = p.call(ParasiteCmd::kGetMisc);
  mode_t after = umask(old_mask);
  REQUIRE(ret == 0);
  const ParasiteMisc& m = p.args->u.misc;
  CHECK(m.umask == 027);
  CHECK(after == 027);  // the parasite put it back
  CHECK(m.personality == static_cast<uint32_t>(personality(0xffffffff)));
  int* tid_addr = nullptr;
  REQUIRE(prctl(PR_GET_TID_ADDRESS, &tid_addr) == 0);
  CHECK(m.clear_child_tid == reinterpret_cast<uint64_t>(tid_addr));
  CHECK(m.clear_child_tid != 0);  // glibc registers one for every thread
  CHECK(m.pid == getpid());
  CHECK(m.tid == gettid());

  CHECK(p.call(ParasiteCmd::kFini) == 0);
  CHECK(p.args->result.ret == 0);
}

namespace {
// For the return test, in a forked child: where the parasite's entry
// returns to, and what it finds there.
extern "C" {
uint64_t g_landed[8];  // r15, r12, rbx, rsp, rdi, rax, rflags
ParasiteArgs* g_ret_args;
[[noreturn]] void check_landing();
void cr_test_landing();
}
asm(R"(
	.text
	.globl cr_test_landing
	.type cr_test_landing,@function
cr_test_landing:
	movq %r15, g_landed+0(%rip)
	movq %r12, g_landed+8(%rip)
	movq %rbx, g_landed+16(%rip)
	movq %rsp, g_landed+24(%rip)
	movq %rdi, g_landed+32(%rip)
	movq %rax, g_landed+40(%rip)
	pushfq
	popq %rax
	movq %rax, g_landed+48(%rip)
	cld
	andq $-16, %rsp
	call check_landing
	ud2
)");

alignas(16) char g_landing_stack[64 << 10];

void check_landing() {
  int code = 0;
  uint64_t top = reinterpret_cast<uint64_t>(g_landing_stack + sizeof g_landing_stack) - 8;
  if (g_landed[0] != 0x1515151515151515) code |= 1;
  if (g_landed[1] != 0x1212121212121212) code |= 2;
  if (g_landed[2] != 0xbbbbbbbbbbbbbbbb) code |= 4;
  if (g_landed[3] != top) code |= 8;
  if (g_landed[4] != 0xd1d1d1d1d1d1d1d1 || g_landed[5] != 0xaaaaaaaaaaaaaaaa) code |= 16;
  if (!(g_landed[6] & 1)) code |= 64;  // CF, set by popfq
  sigset_t now;
  sigprocmask(SIG_BLOCK, nullptr, &now);
  if (!sigismember(&now, SIGUSR2) || sigismember(&now, SIGUSR1)) code |= 128;
  if (g_ret_args->u.ping.out != ~uint64_t(77) || g_ret_args->result.ret != 0) code |= 32;
  _exit(code);
}
}  // namespace

TEST_CASE("blob: the parasite's entry returns the task to the registers and mask in parasite_return") {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto b = LocalBlob::map(parasite_blob());
    if (!b) _exit(100);
    auto args = b->object<ParasiteArgs>("parasite_args");
    auto back = b->object<ParasiteReturn>("parasite_return");
    if (!args || !back) _exit(101);
    init_args(*args, ParasiteCmd::kPing);
    (*args)->u.ping.in = 77;
    auto layout = parasite_layout();
    if (!layout) _exit(104);
    if (layout->rdi(b->base()) != reinterpret_cast<uint64_t>(*args)) _exit(105);
    if (layout->return_block(b->base()) != reinterpret_cast<uint64_t>(*back)) _exit(106);
    g_ret_args = *args;
    // The mask to return to: SIGUSR2 only (now: SIGUSR1 only).
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    ParasiteReturn& r = **back;
    memcpy(&r.mask, &m, 8);
    r.rflags = 0x203;
    r.r15 = 0x1515151515151515;
    r.r12 = 0x1212121212121212;
    r.rbx = 0xbbbbbbbbbbbbbbbb;
    r.rdi = 0xd1d1d1d1d1d1d1d1;
    r.rax = 0xaaaaaaaaaaaaaaaa;
    r.rsp = reinterpret_cast<uint64_t>(g_landing_stack + sizeof g_landing_stack) - 8;
    r.rip = reinterpret_cast<uint64_t>(&cr_test_landing);
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_SETMASK, &m, nullptr);
    uint64_t entry = layout->rip(b->base());
    uint64_t top = layout->rsp(b->base());
    // As the tracer will: rsp = a stack (misaligned on purpose), rdi = args.
    asm volatile("mov %0, %%rsp\n\tjmp *%1"
                 :
                 : "r"(top - 8), "r"(entry), "D"(*args)
                 : "memory");
    __builtin_unreachable();
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("blob: restorer runs kPing and reports failures through its entry") {
  // kRestore really replaces the calling process, so it is not run here;
  // the failure path is exercised with bad args and an unknown command.
  auto b = LocalBlob::map(restorer_blob());
  REQUIRE_MESSAGE(b.ok(), b.error().str());
  auto main_fn = b->function<RestorerFn>("restorer_main");
  REQUIRE(main_fn.ok());
  auto args = b->object<RestorerArgs>("restorer_args");
  REQUIRE(args.ok());
  RestorerArgs* a = *args;

  init_args(a, RestorerCmd::kPing);
  a->u.ping.in = 5;
  CHECK((*main_fn)(a) == 0);
  CHECK(a->u.ping.out == ~uint64_t(5));
  CHECK(a->u.ping.base == b->base());
  CHECK(a->u.ping.pid == getpid());

  init_args(a, RestorerCmd::kPing);
  a->cmd = 77;
  CHECK((*main_fn)(a) == -EINVAL);
  CHECK(what(a->result) == "unknown command");
  CHECK(blob_error(restorer_blob(), a->result).str() ==
        "restorer: unknown command 77: Invalid argument");
  init_args(a, RestorerCmd::kPing);
  a->magic = 1;
  CHECK((*main_fn)(a) == -EPROTO);

  // Through restorer_entry, which switches to the blob's stack and exits
  // with -ret when restorer_main returns.
  for (auto [cmd, want] : {std::pair{0u, 0}, std::pair{77u, EINVAL}}) {
    init_args(a, RestorerCmd::kPing);
    a->cmd = cmd;
    auto entry = b->function<void (*)(RestorerArgs*)>("restorer_entry");
    REQUIRE(entry.ok());
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) (*entry)(a);  // never returns
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == want);
  }
}

TEST_CASE("blob: gen-blob lays out a known object exactly") {
  fs::path o = build_dir();
  fs::path gen = o / "tools/gen-blob";
  fs::path good = o / "test/blob/good.o";
  REQUIRE_MESSAGE(fs::exists(gen), (gen.string() + " missing: build with make"));
  REQUIRE_MESSAGE(fs::exists(good), (good.string() + " missing: build with make"));
  char tmpl[] = "/tmp/blob-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  fs::path bin = fs::path(tmpl) / "good.bin";
  RunResult r = run({gen, "--name", "good", "--describe", "--bin", bin, "--export", "helper",
                     "--export", "msg", "--export", "table", "--export", "zeros", good});
  CHECK(r.status == 0);
  CHECK(r.err == "");
  CHECK(r.out ==
        "blob good\n"
        "image_size 4112\n"
        "total_size 4176\n"
        "exec_size 4096\n"
        "reloc 0x1000\n"
        "reloc 0x1008\n"
        "symbol __blob_entry 0x0 0\n"
        "symbol helper 0x10 6\n"
        "symbol msg 0x20 0\n"
        "symbol table 0x1000 16\n"
        "symbol zeros 0x1010 0\n");
  std::vector<unsigned char> img(8192);
  FILE* f = fopen(bin.c_str(), "rb");
  REQUIRE(f);
  img.resize(fread(img.data(), 1, img.size(), f));
  fclose(f);
  fs::remove_all(tmpl);
  REQUIRE(img.size() == 4112);
  auto le32 = [&](size_t off) {
    int32_t v;
    memcpy(&v, &img[off], 4);
    return v;
  };
  auto le64 = [&](size_t off) {
    uint64_t v;
    memcpy(&v, &img[off], 8);
    return v;
  };
  CHECK(le32(3) == 0x1000 - 7);  // lea table(%rip): PC32 resolved
  CHECK(le32(8) == 0x10 - 12);   // call helper: PLT32 resolved
  CHECK(le64(0x1000) == 0x10);   // .quad helper: offset, rebased at load
  CHECK(le64(0x1008) == 0x22);   // .quad msg + 2
  CHECK(memcmp(&img[0x20], "blob!", 6) == 0);
}

TEST_CASE("blob: gen-blob rejects what the loader cannot honour") {
  fs::path o = build_dir();
  fs::path gen = o / "tools/gen-blob";
  REQUIRE_MESSAGE(fs::exists(gen), (gen.string() + " missing: build with make"));
  struct Case {
    const char* obj;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"gotpcrel.S.o", {"section .blob.entry", "R_X86_64_REX_GOTPCRELX", "against target",
                        "visibility push(hidden)"}},
      {"abs32.S.o", {"section .blob.entry", "R_X86_64_32S", "-fpie"}},
      {"undef.S.o", {"undefined symbol missing_function"}},
      {"common.S.o", {"COMMON symbol shared_counter"}},
      {"ctor.cc.o", {"section .init_array", "constructors"}},
      {"tls.S.o", {"section .tbss", "thread-local"}},
      {"noentry.S.o", {"exported symbol __blob_entry is not defined"}},
  };
  for (const Case& c : cases) {
    std::string name = std::string("bad_") + std::string(c.obj).substr(0, std::string(c.obj).find('.'));
    INFO(c.obj);
    fs::path obj = o / "test/blob" / c.obj;
    REQUIRE_MESSAGE(fs::exists(obj), (obj.string() + " missing: build with make"));
    RunResult r = run({gen, "--name", name, "-o", "/dev/null", obj});
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.out == "");
    CHECK(r.err.find("gen-blob: blob " + name + ": ") == 0);
    for (const auto& w : c.want) CHECK(r.err.find(w) != std::string::npos);
  }

  // A good blob with an export it does not have.
  RunResult r = run({gen, "--name", "parasite", "--export", "no_such_entry", "-o", "/dev/null",
                     o / "blob/parasite.o"});
  CHECK(r.status == 1);
  CHECK(r.err.find("exported symbol no_such_entry is not defined") != std::string::npos);
  // Not an object at all.
  r = run({gen, "--name", "junk", "-o", "/dev/null", "/proc/self/status"});
  CHECK(r.status == 1);
  CHECK(r.err.find("not an ELF file") != std::string::npos);
}
