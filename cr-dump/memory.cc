// Dump side of memory (records: common/image/memory.h, pages.h; restore side:
// cr-restore/memory.cc and the restorer): the VMAs from /proc/PID/maps and
// smaps, the mm fields from /proc/PID/stat, auxv and exe, and the pages a
// private mapping holds (present or swapped anonymous pages, from
// /proc/PID/pagemap), read through /proc/PID/mem in large batches and
// streamed into the page image; in a child, the pages still shared with its
// parent's identical mapping are recorded as the parent's instead.
#include <fcntl.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <optional>

#include "common/image/pages.h"
#include "common/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/proc/maps.h"
#include "common/proc/misc.h"
#include "common/proc/pagemap.h"
#include "common/proc/smaps.h"
#include "common/proc/stat.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

constexpr size_t kReadChunk = 8 << 20;  // bytes read from the task per call

unsigned long long ull(uint64_t v) { return v; }

// A deleted file mapped private that is a shared memory object: a memfd, or
// a deleted file on tmpfs (a POSIX shm object after shm_unlink), seen
// through /proc/PID/map_files.
bool is_private_shmem(pid_t pid, const proc::VmaInfo& v) {
  if (!v.deleted || v.shared) return false;
  if (v.path.rfind("/memfd:", 0) == 0) return true;
  char mf[96];
  snprintf(mf, sizeof mf, "/proc/%d/map_files/%llx-%llx", pid, ull(v.start), ull(v.end));
  struct statfs sf;
  return statfs(mf, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

// Why a mapping cannot be dumped yet, or "" if it can.
std::string unsupported(pid_t pid, const proc::VmaInfo& v, const proc::VmFlags& f) {
  using proc::VmFlag;
  if (v.is_special()) return "";  // [vvar] and friends are PFN maps by nature; restore moves them
  // SysV shared memory ("/SYSV%08x (deleted)"): "sysv", checked further by
  // check_sysv_attach. Huge pages (SHM_HUGETLB) are not restored.
  if (is_sysv_shm(v)) return f.has(VmFlag::Ht) ? "SysV shared memory on huge pages (SHM_HUGETLB)" : "";
  if (v.is_shared_anon() && v.path == "/dev/zero") return "";  // shared anonymous memory: "shmem"
  if (v.deleted && v.shared) return "";  // memfd or deleted file, mapped shared: "shmem" if on tmpfs
  // A memfd or deleted tmpfs file mapped private is "shmem" too, its
  // written pages the task's.
  if (v.deleted && !is_private_shmem(pid, v)) return "mapping of deleted file " + v.path;
  if (f.has(VmFlag::Io) || f.has(VmFlag::Pf)) return "device memory mapping " + v.path;
  if (f.has(VmFlag::Ht)) return "hugetlbfs mapping";
  if (f.has(VmFlag::Lo) || f.has(VmFlag::Lf)) return "mlocked memory";
  if (f.has(VmFlag::Um) || f.has(VmFlag::Uw) || f.has(VmFlag::Ui)) return "userfaultfd-registered memory";
  if (f.has(VmFlag::Ss)) return "shadow stack";
  if (f.has(VmFlag::Sl)) return "sealed (mseal) memory";
  if (v.path.rfind("[anon:", 0) == 0 || v.path.rfind("[anon_shmem:", 0) == 0)
    return "named anonymous mapping " + v.path;
  if (!v.path.empty() && v.path[0] == '[' && !v.is_heap() && !v.is_stack() && !v.is_special())
    return "special mapping " + v.path;
  // The restore would open a program or library for writing, and while it
  // is so open every exec of it fails (ETXTBSY): refused at both ends.
  if (v.shared && f.has(VmFlag::Mw) && !v.path.empty() && v.path[0] == '/') {
    char mf[96];
    snprintf(mf, sizeof mf, "/proc/%d/map_files/%llx-%llx", pid, ull(v.start), ull(v.end));
    struct stat st;
    if (stat(mf, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
      return "shared writable mapping of the executable file " + v.path;
  }
  return "";
}

// A mapping of shared memory: the object behind it (seen through
// /proc/PID/map_files) is saved once for the whole tree. Mapped private (a
// memfd or deleted tmpfs file), the pages the task wrote are its own, saved
// with its others.
Status dump_shmem(pid_t pid, const proc::VmaInfo& v, VmaRec& r, Files& files) {
  char mf[96];
  snprintf(mf, sizeof mf, "/proc/%d/map_files/%llx-%llx", pid, ull(v.start), ull(v.end));
  UniqueFd fd(open(mf, O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (!fd.valid() || fstat(fd.get(), &st) < 0)
    return make_pid_error(pid, errno, "shared memory at %#llx: cannot open it through map_files", ull(v.start));
  char what[96];
  snprintf(what, sizeof what, "shared memory at %#llx", ull(v.start));
  TRY(dump_shmem_object(pid, fd.get(), v.is_shared_anon() ? "" : v.path, what, files));
  r.dev = st.st_dev;
  r.ino = st.st_ino;
  r.file_size = st.st_size;
  return ok_status();
}

std::string kind_of(const proc::VmaInfo& v) {
  if (v.is_heap()) return "heap";
  if (v.is_stack()) return "stack";
  if (v.is_vdso()) return "vdso";
  if (v.is_vvar()) return "vvar";
  if (v.is_vsyscall()) return "vsyscall";
  if (is_sysv_shm(v)) return "sysv";
  if (v.is_shared_anon() || v.deleted) return "shmem";  // (unsupported() refused other deleted files)
  if (v.is_file()) return "file";
  return "anon";
}

std::vector<std::string> madvise_flags(const proc::VmFlags& f) {
  using proc::VmFlag;
  static const struct {
    VmFlag flag;
    const char* name;
  } kList[] = {{VmFlag::Dc, "dc"}, {VmFlag::Dd, "dd"}, {VmFlag::Wf, "wf"}, {VmFlag::Hg, "hg"},
               {VmFlag::Nh, "nh"}, {VmFlag::Mg, "mg"}, {VmFlag::Sr, "sr"}, {VmFlag::Rr, "rr"}};
  std::vector<std::string> out;
  for (auto& e : kList)
    if (f.has(e.flag)) out.push_back(e.name);
  return out;
}

// Read [addr, addr+len) of the task into buf, through /proc/PID/mem, which
// also reads pages the task cannot (PROT_NONE). Not process_vm_readv: since
// Linux 5.19 it pins the pages, and a read-only pin of an anonymous page
// shared copy-on-write with another process unshares it (the kernel copies
// the page; seen on 6.18): a dump would break the sharing of every page
// of a forked tree, doubling its memory, and hide it from the next process
// (Pagemap::cow_runs). /proc/PID/mem reads without pinning, about as fast.
Status read_task_memory(pid_t pid, int mem_fd, uint64_t addr, void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(mem_fd, static_cast<char*>(buf) + done, len - done, static_cast<off_t>(addr + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return make_pid_error(pid, n < 0 ? errno : EIO, "cannot read memory at %#llx", ull(addr + done));
    done += n;
  }
  return ok_status();
}

}  // namespace

namespace {
// The shared memory objects saved so far (ShmemRec id -> a copy of the fd
// they were found through), read by dump_shmem_contents once the whole
// tree is collected (and still frozen).
std::map<uint64_t, UniqueFd> g_shmem_fds;

bool zero_page(const char* p) {
  static const char kZero[kPageSize] = {};
  return memcmp(p, kZero, kPageSize) == 0;
}
}  // namespace

Result<uint64_t> dump_shmem_object(pid_t pid, int fd, const std::string& path, const std::string& what, Files& files) {
  struct stat st;
  if (fstat(fd, &st) < 0) return make_pid_error(pid, errno, "%s: fstat", what.c_str());
  for (auto& m : files.shmem)
    if (m.dev == st.st_dev && m.ino == st.st_ino) return m.id;
  bool memfd = path.rfind("/memfd:", 0) == 0;
  if (!path.empty()) {
    struct statfs sf;
    if (fstatfs(fd, &sf) < 0 || sf.f_type != TMPFS_MAGIC)
      return make_pid_error(pid, 0, "%s: deleted file %s is not supported (not on tmpfs)", what.c_str(), path.c_str());
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxShmemSize)
    return make_pid_error(pid, 0, "%s: %llu GiB is larger than the %llu GiB a shared memory object may have",
                          what.c_str(), ull(st.st_size >> 30), ull(kMaxShmemSize >> 30));
  ShmemRec m;
  m.id = files.shmem.size() + 1;
  m.dev = st.st_dev;
  m.ino = st.st_ino;
  m.path = path;
  m.size = st.st_size;
  m.pages = shmem_pagemap_name(m.id);
  if (memfd) {
    int seals = fcntl(fd, F_GET_SEALS);
    m.seals = seals < 0 ? 0 : seals;
  }
  UniqueFd copy(fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!copy.valid()) return make_pid_error(pid, errno, "%s: cannot keep its fd", what.c_str());
  g_shmem_fds[m.id] = std::move(copy);
  files.shmem.push_back(std::move(m));
  return files.shmem.back().id;
}

Status write_object_pages(ImageSet& set, const std::string& id, int fd, uint64_t size, bool compress,
                          DumpStats& stats, const std::string& what) {
  auto pw = TRY(PageWriter::create(set, id, compress));
  std::vector<char> buf(kReadChunk);
  auto st = for_each_data_range(fd, size, [&](uint64_t off, uint64_t len) -> Status {
    for (uint64_t a = off; a < off + len;) {
      size_t n = std::min<uint64_t>(buf.size(), off + len - a);
      size_t got = TRY(pread_full(fd, buf.data(), n, a));
      memset(buf.data() + got, 0, n - got);  // past the end of the object: its last page's tail
      // Pages that are zero (read once, never written) are left out: a
      // hole reads as zeros too.
      for (size_t p = 0; p < n;) {
        size_t q = p;
        while (q < n && !zero_page(buf.data() + q)) q += kPageSize;
        if (q > p) TRY_STATUS(pw->add(a + p, buf.data() + p, q - p));
        stats.pages_written += (q - p) / kPageSize;
        while (q < n && zero_page(buf.data() + q)) q += kPageSize;
        p = q;
      }
      stats.pages_scanned += n / kPageSize;
      a += n;
    }
    return ok_status();
  });
  if (!st) return make_error("%s: cannot read its contents: %s", what.c_str(), st.error().str().c_str());
  TRY_STATUS(pw->finish());
  stats.bytes_written += pw->stored_bytes();
  return ok_status();
}

Status dump_shmem_contents(ImageSet& set, bool compress, const Files& files, DumpStats& stats,
                           std::vector<std::string>& images) {
  double t0 = now_us();
  for (auto& m : files.shmem) {
    auto it = g_shmem_fds.find(m.id);
    if (it == g_shmem_fds.end()) return make_error("shared memory object %llu: its fd was not kept", ull(m.id));
    char what[64];
    snprintf(what, sizeof what, "shared memory object %llu", ull(m.id));
    TRY_STATUS(write_object_pages(set, shmem_pages_id(m.id), it->second.get(), m.size, compress, stats, what));
    images.push_back(m.pages);
    images.push_back(image_name(ImageKind::Pages, shmem_pages_id(m.id)));
  }
  g_shmem_fds.clear();
  stats.memory_us += now_us() - t0;
  return ok_status();
}

Status check_memory_supported(pid_t pid) {
  auto smaps = TRY(proc::read_smaps(pid));
  for (auto& [start, e] : smaps) {
    std::string why = unsupported(pid, e.vma, e.flags);
    if (!why.empty())
      return make_pid_error(pid, 0, "%s at %#llx-%#llx is not supported", why.c_str(), ull(e.vma.start),
                            ull(e.vma.end));
    if (is_sysv_shm(e.vma)) (void)TRY(check_sysv_attach(pid, e.vma));
  }
  auto exe = TRY(proc::read_exe(pid));
  if (exe.deleted) return make_pid_error(pid, 0, "its executable %s was deleted; this is not supported", exe.path.c_str());
  return ok_status();
}

Result<Mm> dump_memory(pid_t pid, RemoteSession& rs, ImageSet& set, bool compress, DumpStats& stats, Files& files,
                       const CowParent* parent) {
  double t0 = now_us();
  Mm mm;
  auto ps = TRY(proc::read_stat(pid));
  mm.start_code = ps.startcode;
  mm.end_code = ps.endcode;
  mm.start_data = ps.start_data;
  mm.end_data = ps.end_data;
  mm.start_brk = ps.start_brk;
  mm.start_stack = ps.startstack;
  mm.arg_start = ps.arg_start;
  mm.arg_end = ps.arg_end;
  mm.env_start = ps.env_start;
  mm.env_end = ps.env_end;
  long brk = TRY(rs.syscall_raw(SYS_brk, 0));
  if (brk < 0) return make_pid_error(pid, static_cast<int>(-brk), "brk(0)");
  mm.brk = static_cast<uint64_t>(brk);
  auto auxv = TRY(proc::read_auxv(pid));
  auxv.push_back({0, 0});  // AT_NULL ends the vector (read_auxv leaves it out)
  for (auto& [k, v] : auxv) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&k);
    mm.auxv.data.insert(mm.auxv.data.end(), p, p + 8);
    p = reinterpret_cast<const uint8_t*>(&v);
    mm.auxv.data.insert(mm.auxv.data.end(), p, p + 8);
  }
  auto exe = TRY(proc::read_exe(pid));
  if (exe.deleted) return make_pid_error(pid, 0, "its executable %s was deleted; this is not supported", exe.path.c_str());
  mm.exe = exe.path;
  struct stat est;
  if (stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &est) < 0)
    return make_pid_error(pid, errno, "cannot stat its executable");
  mm.exe_dev = est.st_dev;
  mm.exe_ino = est.st_ino;
  mm.exe_size = est.st_size;

  auto smaps = TRY(proc::read_smaps(pid));
  auto pagemap = TRY(proc::Pagemap::open(pid));
  std::string memp = "/proc/" + std::to_string(pid) + "/mem";
  UniqueFd mem(open(memp.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) return make_pid_error(pid, errno, "cannot open %s", memp.c_str());
  auto pw = TRY(PageWriter::create(set, pid, compress));
  std::vector<char> buf(kReadChunk);
  std::optional<proc::Pagemap> parent_pagemap;

  for (auto& [start, e] : smaps) {
    const proc::VmaInfo& v = e.vma;
    std::string why = unsupported(pid, v, e.flags);
    if (!why.empty())
      return make_pid_error(pid, 0, "%s at %#llx-%#llx is not supported", why.c_str(), ull(v.start), ull(v.end));
    VmaRec r;
    r.start = v.start;
    r.end = v.end;
    r.prot = v.prot;
    r.shared = v.shared;
    r.growsdown = e.flags.has(proc::VmFlag::Gd);
    r.may_write = e.flags.has(proc::VmFlag::Mw);
    r.kind = kind_of(v);
    r.name = v.path;
    r.pgoff = v.pgoff;
    r.vmflags = madvise_flags(e.flags);
    if (r.kind == "file") {
      // The exact file behind the mapping, whatever its name says.
      char mf[96];
      snprintf(mf, sizeof mf, "/proc/%d/map_files/%llx-%llx", pid, ull(v.start), ull(v.end));
      struct stat st;
      if (stat(mf, &st) < 0) return make_pid_error(pid, errno, "cannot stat the file mapped at %#llx", ull(v.start));
      if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
        return make_pid_error(pid, 0, "mapping of %s at %#llx is not supported (not a regular file)", v.path.c_str(),
                              ull(v.start));
      r.dev = st.st_dev;
      r.ino = st.st_ino;
      r.file_size = st.st_size;
    }
    if (r.kind == "shmem") TRY_STATUS(dump_shmem(pid, v, r, files));
    if (r.kind == "sysv") TRY_STATUS(dump_sysv_shm(pid, v, r, files));
    mm.vmas.push_back(r);
    if (v.shared || v.is_special()) continue;  // shared pages live in the file; vDSO comes from the kernel
    // The same mapping in the parent: its pages still shared with ours are
    // the parent's (copy-on-write since the fork), the rest ours.
    const VmaRec* pv = nullptr;
    if (parent)
      for (auto& x : parent->mm->vmas)
        if (same_private_mapping(x, r)) pv = &x;
    std::vector<proc::PageRun> runs, same;
    if (pv) {
      if (!parent_pagemap) parent_pagemap = TRY(proc::Pagemap::open(parent->pid));
      TRY_STATUS(pagemap.cow_runs(*parent_pagemap, v.start, v.end, runs, same));
      for (auto& s : same) TRY_STATUS(pw->add_in_parent(s.start, s.end - s.start));
      stats.pages_in_parent += proc::run_pages(same);
    } else {
      runs = TRY(pagemap.dump_runs(v));
    }
    stats.pages_scanned += v.pages();
    for (auto& run : runs) {
      for (uint64_t a = run.start; a < run.end;) {
        size_t n = std::min<uint64_t>(buf.size(), run.end - a);
        TRY_STATUS(read_task_memory(pid, mem.get(), a, buf.data(), n));
        TRY_STATUS(pw->add(a, buf.data(), n));
        a += n;
      }
      stats.pages_written += run.pages();
    }
  }
  TRY_STATUS(pw->finish());
  stats.bytes_written += pw->stored_bytes();
  stats.memory_us += now_us() - t0;
  pr_debug(pid, "memory: %zu VMAs; in the tree so far %llu pages written, %llu the parent's", mm.vmas.size(),
           ull(stats.pages_written), ull(stats.pages_in_parent));
  return mm;
}

}  // namespace cr
