// Validation of what issue 6 added to the images: the process tree
// (parents first, zombies, unique tids), threads' scheduling and seccomp
// fields, POSIX timers, pipes, shared anonymous memory and SysV shared
// memory segments with the VMAs attaching them. Each rule is
// shown to accept the good record and refuse one broken field.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include "common/image/task_images.h"

using namespace cr;

namespace {

Pstree good_tree() {
  Pstree t;
  t.root_pid = 100;
  t.tasks = {{100, 0, 100, 100, {100, 105}, false, 0},
             {101, 100, 100, 100, {101}, false, 0},
             {102, 101, 102, 100, {102}, false, 0},
             {103, 100, 100, 100, {}, true, 7 << 8}};
  return t;
}

Core good_core() {
  Core c;
  c.pid = 100;
  c.comm = "w";
  c.cwd = c.root = "/";
  c.creds.uids = {0, 0, 0, 0};
  c.creds.gids = {0, 0, 0, 0};
  ThreadCore t;
  t.tid = 100;
  t.xsave.data.assign(1024, 0);
  t.regs.rip = 0x400000;
  t.regs.rsp = 0x7ffff000;
  t.regs.cs = 0x33;
  t.regs.ss = 0x2b;
  t.robust_list_len = 24;
  t.altstack_flags = SS_DISABLE;
  c.threads = {t};
  t.tid = 105;
  c.threads.push_back(t);
  return c;
}

bool refused(const Status& s, const char* words) {
  if (s) return false;
  INFO(s.error().str());
  CHECK(s.error().str().find(words) != std::string::npos);
  return true;
}

}  // namespace

TEST_CASE("pstree: a good tree passes; each broken rule is refused") {
  CHECK(validate_pstree(good_tree()));
  auto t = good_tree();
  std::swap(t.tasks[1], t.tasks[2]);  // a child before its parent
  CHECK(refused(validate_pstree(t), "parent not before it"));
  t = good_tree();
  t.tasks[2].pid = 101;  // duplicate pid
  CHECK(refused(validate_pstree(t), "duplicate pid"));
  t = good_tree();
  t.tasks[3].threads = {103};  // a zombie with threads
  CHECK(refused(validate_pstree(t), "zombie with threads"));
  t = good_tree();
  t.tasks.push_back({104, 103, 100, 100, {104}, false, 0});  // a zombie's child
  CHECK(refused(validate_pstree(t), "child of a zombie"));
  t = good_tree();
  t.tasks[1].threads = {101, 105};  // a tid used twice
  CHECK(refused(validate_pstree(t), "duplicate thread id"));
  t = good_tree();
  t.tasks[1].threads = {999};  // the leader is not first
  CHECK(refused(validate_pstree(t), "leader is not its first thread"));
  t = good_tree();
  t.tasks[0].ppid = 5;  // the root has a parent in the tree
  CHECK(refused(validate_pstree(t), "parent not before it"));
  t = good_tree();
  t.tasks[2].pgid = 0;
  CHECK(refused(validate_pstree(t), "process group or session"));
  // The root's gone session and group leaders: not in the tree, and a
  // group helper only inside a session helper's session.
  t = good_tree();
  t.tasks[0].sid = 90;
  t.tasks[0].pgid = 91;
  t.root_session_gone = t.root_group_gone = true;
  CHECK(validate_pstree(t));
  t.tasks[0].sid = 101;  // a pid of the tree
  CHECK(refused(validate_pstree(t), "gone session leader"));
  t.tasks[0].sid = 90;
  t.root_session_gone = false;  // a group helper without a session helper
  CHECK(refused(validate_pstree(t), "gone group leader"));
}

TEST_CASE("core: threads' scheduling and seccomp, POSIX timers") {
  CHECK(validate_core(good_core(), "core-100.img"));
  auto c = good_core();
  c.threads[1].sched_policy = 4;  // not a policy
  CHECK(refused(validate_core(c, "core-100.img"), "scheduling"));
  c = good_core();
  c.threads[1].nice = 20;
  CHECK(refused(validate_core(c, "core-100.img"), "scheduling"));
  c = good_core();
  c.threads[1].affinity.assign(129, 1);
  CHECK(refused(validate_core(c, "core-100.img"), "scheduling"));
  c = good_core();
  c.threads[1].affinity.assign(2, 0);  // no CPU
  CHECK(refused(validate_core(c, "core-100.img"), "affinity holds no CPU"));
  c = good_core();
  c.threads[1].sched_policy = SCHED_FIFO;  // a real-time policy needs a priority
  CHECK(refused(validate_core(c, "core-100.img"), "sched_priority 0"));
  c.threads[1].sched_priority = 10;
  CHECK(validate_core(c, "core-100.img"));
  c.threads[1].sched_flags = 2;
  CHECK(refused(validate_core(c, "core-100.img"), "unknown sched_flags 0x2"));

  // What the restorer's system calls would refuse only in the new task.
  c = good_core();
  c.threads[1].regs.ss = 0x2b ^ 8;
  CHECK(refused(validate_core(c, "core-100.img"), "segment cs 0x33 / ss 0x23"));
  c = good_core();
  c.threads[1].regs.fs_base = kTaskSizeMax;
  CHECK(refused(validate_core(c, "core-100.img"), "fs_base"));
  c = good_core();
  c.threads[1].rseq_ptr = 0x7f0000000010;  // not 32-byte aligned
  c.threads[1].rseq_len = 32;
  CHECK(refused(validate_core(c, "core-100.img"), "rseq area 0x7f0000000010"));
  c.threads[1].rseq_ptr = 0x7f0000000020;
  CHECK(validate_core(c, "core-100.img"));
  c = good_core();
  c.threads[1].robust_list_len = 25;
  CHECK(refused(validate_core(c, "core-100.img"), "robust list"));
  c = good_core();
  c.threads[1].altstack_flags = 0;  // enabled, of 0 bytes
  CHECK(refused(validate_core(c, "core-100.img"), "sigaltstack"));
  c.threads[1].altstack_size = 8192;
  c.threads[1].altstack_sp = 0x7f0000000000;
  CHECK(validate_core(c, "core-100.img"));
  c = good_core();
  c.creds.cap_eff = 1;  // not permitted
  CHECK(refused(validate_core(c, "core-100.img"), "cap_eff is not inside cap_prm"));
  c.creds.cap_prm = 1;
  CHECK(validate_core(c, "core-100.img"));
  c.creds.securebits = 0xffffff55;
  CHECK(refused(validate_core(c, "core-100.img"), "securebits has unknown bits"));
  c = good_core();
  c.shared_pending = {Bytes{std::vector<uint8_t>(128, 0)}};  // si_signo 0
  CHECK(refused(validate_core(c, "core-100.img"), "si_signo 0"));
  c = good_core();
  c.threads[1].seccomp_mode = 2;
  c.threads[1].seccomp_filters = {{{std::vector<uint8_t>(16, 0)}, 0}};
  CHECK(validate_core(c, "core-100.img"));
  c.threads[1].seccomp_filters[0].prog.data.resize(13);  // not whole instructions
  CHECK(refused(validate_core(c, "core-100.img"), "seccomp filter"));
  c.threads[1].seccomp_mode = 1;  // filters without filter mode
  c.threads[1].seccomp_filters[0].prog.data.resize(16);
  CHECK(refused(validate_core(c, "core-100.img"), "seccomp state"));

  c = good_core();
  c.threads[1].own_creds = true;  // a thread's own credentials need 4 uids and 4 gids
  CHECK(refused(validate_core(c, "core-100.img"), "bad credentials"));
  c.threads[1].creds.uids = {0, 4242, 0, 4242};
  c.threads[1].creds.gids = {0, 0, 0, 0};
  CHECK(validate_core(c, "core-100.img"));

  c = good_core();
  PosixTimerRec p;
  p.id = 3;
  p.clock_id = 1;
  p.signo = 34;
  p.interval_nsec = 5;
  c.posix_timers = {p};
  CHECK(validate_core(c, "core-100.img"));
  c.posix_timers.push_back(p);  // the same id twice
  CHECK(refused(validate_core(c, "core-100.img"), "POSIX timer 3"));
  c.posix_timers = {p};
  c.posix_timers[0].value_nsec = 1000000000;
  CHECK(refused(validate_core(c, "core-100.img"), "POSIX timer 3"));
  c.posix_timers = {p};
  c.posix_timers[0].sigev_notify = 3;
  CHECK(refused(validate_core(c, "core-100.img"), "POSIX timer 3"));
}

TEST_CASE("files: pipes and shared memory objects") {
  Files f;
  f.pipes = {{77, 4242, 65536, {std::vector<uint8_t>(100, 'x')}, ""}};
  FileRec r;
  r.id = 1;
  r.type = "pipe";
  r.flags = O_RDONLY;
  r.pipe_id = 77;
  f.files = {r};
  r.id = 2;
  r.flags = O_WRONLY | O_NONBLOCK;
  f.files.push_back(r);
  f.shmem = {{9, 23, 4711, 8192, "pagemap-shmem-9.img", "/memfd:x", 0}};
  FileRec m;
  m.id = 3;
  m.type = "memfd";
  m.path = "/memfd:x";
  m.shmem_id = 9;
  f.files.push_back(m);
  FdTable t;
  t.fds = {{0, false, 1}, {1, true, 2}};
  CHECK(validate_files(f, t, "fdinfo-1.img"));

  Files b = f;
  b.files[0].pipe_id = 78;  // no such pipe
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "no pipe 78"));
  b = f;
  b.files[1].flags = O_RDWR;  // a pipe end is one way
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "read or write only"));
  b = f;
  b.pipes[0].size = 65537;  // not a power of two
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "capacity"));
  b = f;
  b.pipes[0].data.data.resize(65537);  // more than fits
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "do not fit"));
  b = f;
  b.shmem[0].size = kMaxShmemSize + 1;  // beyond the sanity bound
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "shared memory object 9: larger than 1 TiB"));
  b.shmem[0].size = kMaxShmemSize;
  CHECK(validate_files(b, t, "fdinfo-1.img"));
  b = f;
  b.shmem[0].pages = "pagemap-1.img";  // a task's pages
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "shared memory object 9: its pages are not in its own"));
  b = f;
  b.shmem[0].path = "memfd:x";  // not absolute
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "shared memory object 9: bad path"));
  b = f;
  b.files[0].type = "fifo";  // a FIFO needs its path
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "FIFO path"));
  b.files[0].path = "/run/app.fifo";
  CHECK(validate_files(b, t, "fdinfo-1.img"));
  b = f;
  b.files[2].shmem_id = 10;  // a memfd fd without its object
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "no shared memory object 10"));
  b = f;
  b.shmem.push_back(b.shmem[0]);  // twice
  CHECK(refused(validate_files(b, t, "fdinfo-1.img"), "shared memory object 9: duplicate id"));
}

TEST_CASE("files and mm: SysV shared memory segments and the VMAs attaching them") {
  Files f;
  SysvShmRec a;  // removed (SHM_DEST), locked, IPC_PRIVATE
  a.id = 32769;
  a.key = 0;
  a.mode = 0600 | kSysvShmDest | kSysvShmLocked;
  a.uid = a.cuid = 1000;
  a.gid = a.cgid = 100;
  a.size = 3 * 4096;
  a.pages = "pagemap-sysv-32769.img";
  SysvShmRec b = a;  // with a key, not removed
  b.id = 5;
  b.key = 0x1234;
  b.mode = 0644;
  b.size = 100;
  b.pages = "pagemap-sysv-5.img";
  f.sysv_shm = {a, b};
  FdTable t;
  CHECK(validate_files(f, t, "fdinfo-1.img"));

  Files x = f;
  x.sysv_shm[1].id = 32769;  // twice the same id
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 32769 (key 0x1234): bad or duplicate id"));
  x = f;
  x.sysv_shm[1].id = -1;
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment -1 (key 0x1234): bad or duplicate id"));
  x = f;
  x.sysv_shm.push_back(b);  // another segment with b's key
  x.sysv_shm[2].id = 6;
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 6 (key 0x1234): its key is another segment's"));
  x = f;
  x.sysv_shm[1].mode |= 04000;  // SHM_HUGETLB is not a mode bit crtools restores
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 5 (key 0x1234): unknown mode bits"));
  x = f;
  x.sysv_shm[1].mode |= kSysvShmDest;  // removed but still has a key
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 5 (key 0x1234): removed (SHM_DEST)"));
  for (uint32_t SysvShmRec::*field : {&SysvShmRec::uid, &SysvShmRec::gid, &SysvShmRec::cuid, &SysvShmRec::cgid}) {
    x = f;
    x.sysv_shm[0].*field = ~0u;
    CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 32769 (key 0): owner or creator"));
  }
  x = f;
  x.sysv_shm[1].size = 0;
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 5 (key 0x1234): bad size"));
  x = f;
  x.sysv_shm[1].size = kMaxShmemSize + 1;
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 5 (key 0x1234): bad size"));
  x.sysv_shm[1].size = 200ull << 20;  // over the old 64 MiB inline limit: fine
  CHECK(validate_files(x, t, "fdinfo-1.img"));
  x = f;
  x.sysv_shm[0].pages = "pagemap-sysv-5.img";  // another segment's pages
  CHECK(refused(validate_files(x, t, "fdinfo-1.img"), "segment 32769 (key 0): its pages are not in its own"));

  // The VMAs: one whole attach each (b's 100 bytes take one page).
  Mm mm;
  mm.exe = "/bin/w";
  mm.start_code = 0x1000;  // PR_SET_MM_MAP: start_code below end_code
  mm.end_code = 0x2000;
  VmaRec v;
  v.start = 0x10000;
  v.end = 0x13000;
  v.prot = PROT_READ | PROT_WRITE;
  v.shared = true;
  v.kind = "sysv";
  v.name = "/SYSV00000000";
  v.ino = 32769;
  mm.vmas = {v};
  v.start = 0x20000;
  v.end = 0x21000;
  v.prot = PROT_READ;
  v.ino = 5;
  mm.vmas.push_back(v);
  CHECK(validate_mm(mm, "mm-1.img"));
  {
    // What PR_SET_MM_MAP checks, field by field.
    Mm b = mm;
    b.end_code = b.start_code;
    CHECK(refused(validate_mm(b, "mm-1.img"), "mm-1.img: mm field start_code 0x1000 is not below end_code 0x1000"));
    b = mm;
    b.env_start = b.env_end + 4096;
    CHECK(refused(validate_mm(b, "mm-1.img"), "mm field env_start 0x1000 is above env_end 0"));
    b = mm;
    b.brk = ~0ull;
    CHECK(refused(validate_mm(b, "mm-1.img"), "mm field brk 0xffffffffffffffff is outside user space"));
  }
  CHECK(validate_vma_objects(mm, f, "mm-1.img"));
  Mm y = mm;
  y.vmas[1].ino = 6;  // no such segment
  CHECK(refused(validate_vma_objects(y, f, "mm-1.img"), "at 0x20000: no segment 6"));
  y = mm;
  y.vmas[0].end = 0x12000;  // part of it (a partial munmap)
  CHECK(refused(validate_vma_objects(y, f, "mm-1.img"), "at 0x10000: no segment 32769 or not one whole attach"));
  y = mm;
  y.vmas[0].pgoff = 4096;  // not from its start
  CHECK(refused(validate_vma_objects(y, f, "mm-1.img"), "not one whole attach"));
  y = mm;
  y.vmas[0].shared = false;
  CHECK(refused(validate_vma_objects(y, f, "mm-1.img"), "not one whole attach"));
  y = mm;
  y.vmas[0].dev = 3;
  CHECK(refused(validate_vma_objects(y, f, "mm-1.img"), "not one whole attach"));
  y = mm;
  y.vmas[0].kind = "sysvshm";  // unknown kind
  CHECK(refused(validate_mm(y, "mm-1.img"), "unknown kind 'sysvshm'"));
}

// A "shmem" VMA maps its object shared or (a memfd) private, within its size.
TEST_CASE("mm: shared memory VMAs, shared and private, inside their object") {
  Files f;
  f.shmem = {{9, 23, 4711, 5 * 4096 + 1, "pagemap-shmem-9.img", "/memfd:x", 0}};
  Mm mm;
  mm.exe = "/bin/w";
  mm.start_code = 0x1000;  // PR_SET_MM_MAP: start_code below end_code
  mm.end_code = 0x2000;
  VmaRec v;
  v.start = 0x10000;
  v.end = 0x16000;  // the whole object, its size rounded up
  v.prot = PROT_READ | PROT_WRITE;
  v.shared = true;
  v.kind = "shmem";
  v.name = "/memfd:x";
  v.dev = 23;
  v.ino = 4711;
  mm.vmas = {v};
  v.start = 0x20000;
  v.end = 0x22000;
  v.shared = false;  // a private mapping of its pages 2 and 3
  v.pgoff = 2 * 4096;
  mm.vmas.push_back(v);
  CHECK(validate_vma_objects(mm, f, "mm-1.img"));
  Mm y = mm;
  y.vmas[1].pgoff = 5 * 4096;  // past its end
  CHECK(refused(validate_vma_objects(y, f, "mm-1.img"), "shared memory at 0x20000: no such object or out of its bounds"));
  y = mm;
  y.vmas[1].ino = 4712;  // no such object
  CHECK(refused(validate_vma_objects(y, f, "mm-1.img"), "shared memory at 0x20000: no such object"));
}

// The page image of a shared object: offsets within its size, nothing the parent's.
TEST_CASE("pages: a shared memory object's pagemap stays within the object") {
  Pagemap pm;
  pm.entries = {{0, 2, 0}, {10 * 4096, 3, 2 * 4096}};
  pm.raw_len = 5 * 4096;
  CHECK(validate_object_pagemap(pm, "pagemap-shmem-1.img", 13 * 4096));
  CHECK(validate_object_pagemap(pm, "pagemap-shmem-1.img", 12 * 4096 + 1));  // the last page is partly the object's
  CHECK(refused(validate_object_pagemap(pm, "pagemap-shmem-1.img", 12 * 4096),
                "pagemap-shmem-1.img: pages at offset 0xa000 + 3 pages lie past the object's 49152 bytes"));
  CHECK(refused(validate_object_pagemap(pm, "pagemap-shmem-1.img", 0), "lie past"));
  Pagemap q = pm;
  q.entries[1].vaddr = ~0ull & ~4095ull;  // far past, no overflow in the check
  CHECK(refused(validate_object_pagemap(q, "pagemap-shmem-1.img", 13 * 4096), "lie past"));
  q = pm;
  q.in_parent = {{20 * 4096, 1}};
  CHECK(refused(validate_object_pagemap(q, "pagemap-sysv-7.img", 30 * 4096), "cannot be the parent's"));
  CHECK(validate_object_pagemap(Pagemap{}, "pagemap-shmem-1.img", 0));  // an object with no data
}
