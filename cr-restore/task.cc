// The work inside a task being restored, from the fork to the jump into the
// restorer blob: session and group, files, cwd/root/umask/personality, the
// memory plan, the restorer and its arguments.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/blob/blob.h"
#include "common/log.h"
#include "cr-restore/restore.h"
#include "parasite/restorer_abi.h"

// glibc (2.35+) registers an rseq area for every thread; the restorer
// unmaps it, so it must be unregistered first, or the kernel's next update
// of it would kill the task with SIGSEGV.
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace cr {

namespace {

// The parent's premapped VMAs (in a child, as the fork left them).
std::vector<RestoreVma> g_parent_premap;

constexpr uint32_t kRseqSig = 0x53053053;  // glibc's RSEQ_SIG on x86
constexpr int kRseqFlagUnregister = 1;

void unregister_glibc_rseq() {
  if (&__rseq_offset == nullptr || &__rseq_size == nullptr || __rseq_size == 0) return;
  char* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
  // The length glibc registered: sizeof(struct rseq) (32) in 2.35-2.39,
  // __rseq_size in later versions.
  for (unsigned len : {32u, __rseq_size, 20u})
    if (syscall(SYS_rseq, area, len, kRseqFlagUnregister, kRseqSig) == 0) return;
}

Status prepare_and_jump(const ImageSet& set, const SetImages& imgs, const TreePlan& tree, int index,
                        const RestoreOptions& o, int& err_fd) {
  const TaskImages& t = imgs.tasks[index];
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  // The error pipe goes above every fd to restore and every transit fd
  // first, so that a failure at any later step still reaches cr-restore.
  int top = 2;
  for (auto& d : t.fds.fds) top = std::max(top, d.fd);
  // A task sharing its parent's fd table (CLONE_FILES) takes a copy: the
  // number it inherited is its parent's too.
  const bool shared_table = t.entry.shares_files;
  const int service_min = std::max(top + 1, tree.transit_end);
  if (shared_table) {
    err_fd = fcntl(err_fd, F_DUPFD_CLOEXEC, service_min);
    if (err_fd < 0) return make_errno(errno, "cannot copy the error pipe");
  } else {
    err_fd = TRY(move_fd_above(err_fd, service_min));
  }
  TRY_STATUS(restore_session(imgs, tree, index));
  if (t.entry.zombie) become_zombie(t.entry);
  // What this task's subtree shares, then the subtree itself.
  TRY_STATUS(create_transit_shmem(set, imgs.files, tree, index));  // memfd files open these
  TRY_STATUS(create_transit_files(imgs.files, tree, index, o));
  // Its controlling terminal before its children: they inherit it.
  TRY_STATUS(restore_ctty(imgs, tree, index));
  // A child subreaper before its children: orphans below it (a gone
  // session's members, after their helper exits) become its children.
  if (t.core.child_subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
    return make_errno(errno, "PR_SET_CHILD_SUBREAPER");
  // Memory before the children: they inherit it, and take over the VMAs
  // whose pages they shared with this task at dump (copy-on-write).
  const BlobDesc& rb = restorer_blob();
  uint64_t blob_size = rb.map_size();
  uint64_t args_size = task_args_size(t);
  MemoryPlan plan = TRY(premap_memory(set, t, tree, o, blob_size, args_size, g_parent_premap));
  g_parent_premap = plan.vmas;
  TRY_STATUS(fork_children(set, imgs, tree, index, o, err_fd));

  // The restorer at plan.blob_at: an anonymous mapping (never a mapping of
  // this binary: PR_SET_MM_MAP would refuse to change exe_file while the
  // old one is mapped), relocated for that address.
  void* b = mmap(reinterpret_cast<void*>(plan.blob_at), blob_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (b == MAP_FAILED) return make_errno(errno, "cannot map the restorer");
  TRY_STATUS(blob_relocate_into(rb, b, blob_size, plan.blob_at));
  if (mprotect(b, rb.exec_size, PROT_READ | PROT_EXEC) < 0) return make_errno(errno, "mprotect restorer");
  void* args = mmap(reinterpret_cast<void*>(plan.args_at), args_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (args == MAP_FAILED) return make_errno(errno, "cannot map the restorer's arguments");

  // The images are read; now the fds (which closes the image set's too).
  // From here on fds 0-2 are the restored task's: nothing may be logged.
  log_set_silent(true);
  int service = service_min;
  if (!shared_table) {
    // Children sharing this fd table must be done with the fds first.
    TRY_STATUS(wait_files_sharers());
    std::vector<int> keep = {err_fd};
    service = TRY(restore_files(imgs.files, t.fds, tree, o, keep));
    err_fd = keep[0];
  }

  // The executable, for PR_SET_MM_MAP's exe_fd.
  TRY_STATUS(check_file_unchanged("executable", t.mm.exe, t.mm.exe_dev, t.mm.exe_ino, t.mm.exe_size, o));
  int exe = open(t.mm.exe.c_str(), O_RDONLY | O_CLOEXEC);
  if (exe < 0) return make_errno(errno, "cannot open the executable %s", t.mm.exe.c_str());
  exe = TRY(move_fd_above(exe, service));
  // Sharing the table, this task leaves the fds to its parent; it needs no
  // more of them than its own service fds, above every restored number.
  if (shared_table) tell_parent_files_done();

  // A task sharing its parent's fs information (CLONE_FS) leaves cwd and
  // umask to the parent; the dump refused such sharing under chroot.
  if (!t.entry.shares_fs && chdir(t.core.cwd.c_str()) < 0)
    return make_errno(errno, "cannot change directory to %s", t.core.cwd.c_str());
  if (!t.entry.shares_fs && t.core.root != "/" && chroot(t.core.root.c_str()) < 0)
    return make_errno(errno, "cannot change root to %s", t.core.root.c_str());
  if (!t.entry.shares_fs) umask(static_cast<mode_t>(t.core.umask));
  if (personality(static_cast<unsigned long>(t.core.personality)) < 0)
    return make_errno(errno, "cannot set personality %#llx", (unsigned long long)t.core.personality);

  TRY_STATUS(fill_task_args(t, plan, exe, err_fd));

  auto ra_sym = TRY(rb.object("restorer_args", sizeof(RestorerArgs)));
  auto* ra = reinterpret_cast<RestorerArgs*>(plan.blob_at + ra_sym.offset);
  ra->magic = kRestorerArgsMagic;
  ra->abi_version = kRestorerAbiVersion;
  ra->cmd = static_cast<uint32_t>(RestorerCmd::kRestore);
  ra->log_fd = err_fd;
  ra->u.restore.task_args = plan.args_at;
  uint64_t entry = plan.blob_at + TRY(rb.symbol("restorer_entry")).offset;

  unregister_glibc_rseq();
  // No return: the restorer switches to its own stack, replaces this
  // address space, and ends in the dumped registers (or exits on failure,
  // having written why to err_fd).
  asm volatile("movq %0, %%rdi\n\tjmp *%1" : : "r"(reinterpret_cast<uint64_t>(ra)), "r"(entry) : "rdi", "memory");
  __builtin_unreachable();
}

}  // namespace

void restore_task_and_jump(const ImageSet& set, const SetImages& imgs, const TreePlan& tree, int index,
                           const RestoreOptions& o, int err_fd) {
  auto st = prepare_and_jump(set, imgs, tree, index, o, err_fd);
  // Only failures come back, named by the pid they happened in.
  Error e = st.error();
  if (!e.pid && e.message.rfind("pid ", 0) != 0) e.pid = getpid();
  std::string msg = e.str() + "\n";
  if (err_fd >= 0) (void)!write(err_fd, msg.data(), msg.size());
  _exit(1);
}

}  // namespace cr
