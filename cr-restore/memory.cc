// Restore side of memory (dump side: cr-dump/memory.cc, records:
// common/image/memory.h and pages.h). The VMAs are rebuilt by normal code in
// a hole of the restore-time address space and filled from the page images
// (raw frames are read straight into place); the restorer blob then only
// moves them into place with mremap, which moves page tables, not bytes.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/shm.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "common/blob/blob.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/proc/maps.h"
#include "cr-restore/restore.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace cr {

namespace {
constexpr uint64_t kGuard = kPageSize;          // between premapped VMAs
constexpr uint64_t kStackGuard = 256 * kPageSize;  // below a MAP_GROWSDOWN VMA (stack_guard_gap)
constexpr uint64_t kLowest = 1ull << 32;        // keep the hole out of the low 4 GiB

bool is_special(const VmaRec& v) { return v.kind == "vdso" || v.kind == "vvar" || v.kind == "vsyscall"; }

// A SysV attach: nothing to premap; the restorer attaches the segment
// (made by cr-restore before any task, cr-restore/sysv_shm.cc) in place.
RestoreVma sysv_attach(const VmaRec& v) {
  uint32_t flg = 0;
  // Read-only unless the attach could write ("mw"): a writable attach
  // mprotected read-only keeps the right to become writable again.
  if (!v.may_write) flg |= SHM_RDONLY;
  if (v.prot & PROT_EXEC) flg |= SHM_EXEC;
  return {v.start, v.start, v.end, madv_bits(v.vmflags), v.prot, static_cast<int32_t>(v.ino), flg, 0};
}

struct Interval {
  uint64_t start, end;
};

// Highest gap of `size` bytes in [kLowest, kTaskSizeMax) outside `busy`.
Result<uint64_t> find_hole(std::vector<Interval> busy, uint64_t size) {
  std::sort(busy.begin(), busy.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  uint64_t top = kTaskSizeMax;
  for (auto it = busy.rbegin(); it != busy.rend(); ++it) {
    if (it->start >= top) {
      continue;
    }
    uint64_t gap_lo = std::max(it->end, kLowest);
    if (top > gap_lo && top - gap_lo >= size) return top - size;
    top = std::min(top, it->start);
    if (top <= kLowest) break;
  }
  if (top > kLowest && top - kLowest >= size) return top - size;
  return make_error("no free %llu MiB of address space for the restore", (unsigned long long)(size >> 20));
}

// Map one dumped VMA at `at` (its own address or a slot in the hole),
// read-write so that its pages can be filled.
Status map_vma(pid_t pid, const VmaRec& v, uint64_t at, const TreePlan& tree, const RestoreOptions& o, int fixed) {
  uint64_t len = v.end - v.start;
  int flags = fixed | (v.shared ? MAP_SHARED : MAP_PRIVATE);
  int prot = PROT_READ | PROT_WRITE;
  int fd = -1;
  if (v.kind == "shmem") {
    // The object its creator made, inherited at its transit number.
    fd = fcntl(tree.transit_shmem.at(tree.shmem_of_inode.at({v.dev, v.ino})), F_DUPFD_CLOEXEC, 0);
    // Shared: no pages to fill, map it as it was (a memfd sealed against
    // writing takes no writable shared mapping). Private: writable, so that
    // the task's own pages are written over the object's (copy-on-write).
    if (v.shared) prot = v.prot;
    if (fd < 0) return make_errno(errno, "shared memory at %#llx: its object is not here", (unsigned long long)v.start);
  } else if (v.kind == "file") {
    char what[64];
    snprintf(what, sizeof what, "mapping at %#llx", (unsigned long long)v.start);
    TRY_STATUS(check_file_unchanged(what, v.name, v.dev, v.ino, v.file_size, o));
    bool rw = v.shared && v.may_write;
    fd = open(v.name.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return make_errno(errno, "%s: cannot open %s", what, v.name.c_str());
    if (v.shared && !rw) prot = PROT_READ;
  } else {
    if (v.shared)
      return make_pid_error(pid, 0, "shared anonymous memory at %#llx is not supported", (unsigned long long)v.start);
    flags |= MAP_ANONYMOUS;
    if (v.growsdown) flags |= MAP_GROWSDOWN;
  }
  void* m = mmap(reinterpret_cast<void*>(at), len, prot, flags, fd, fd >= 0 ? static_cast<off_t>(v.pgoff) : 0);
  int e = errno;
  if (fd >= 0) close(fd);
  if (m == MAP_FAILED)
    return make_errno(e, "cannot map %#llx-%#llx (%s)", (unsigned long long)v.start, (unsigned long long)v.end,
                      v.name.empty() ? v.kind.c_str() : v.name.c_str());
  if (reinterpret_cast<uint64_t>(m) != at) {  // an old kernel ignoring MAP_FIXED_NOREPLACE
    munmap(m, len);
    return make_errno(EEXIST, "cannot map %#llx in place", (unsigned long long)v.start);
  }
  return ok_status();
}

// The vDSO parts of this kernel (`cur`: a map of a process here) for the
// dumped ones of `t`: the same names and sizes, each to go to its dumped
// address.
Result<std::vector<RestoreVdsoPart>> match_vdso(const TaskImages& t, const std::vector<proc::VmaInfo>& cur) {
  const std::string mm = image_name(ImageKind::Mm, t.entry.pid);
  std::vector<RestoreVdsoPart> out;
  std::vector<const proc::VmaInfo*> cur_special;
  for (auto& v : cur)
    if (v.is_vdso() || v.is_vvar()) cur_special.push_back(&v);
  size_t dumped_special = 0;
  for (size_t i = 0; i < t.mm.vmas.size(); i++) {
    const VmaRec& v = t.mm.vmas[i];
    if (v.kind != "vdso" && v.kind != "vvar") continue;
    dumped_special++;
    const proc::VmaInfo* match = nullptr;
    for (auto* c : cur_special)
      if (c->path == v.name) match = c;
    if (!match)
      return make_error("%s: vma %zu: this kernel has no %s mapping, the dumped task had one", mm.c_str(), i,
                        v.name.c_str());
    if (match->size() != v.end - v.start)
      return make_error("%s: vma %zu: %s is %llu bytes on this kernel, %llu at dump time", mm.c_str(), i,
                        v.name.c_str(), (unsigned long long)match->size(), (unsigned long long)(v.end - v.start));
    out.push_back({match->start, match->size(), v.start});
  }
  if (dumped_special != cur_special.size())
    return make_error("%s: the vDSO layout of this kernel (%zu parts) differs from the dumped one (%zu)", mm.c_str(),
                      cur_special.size(), dumped_special);
  return out;
}


}  // namespace

// A number in a /proc/sys file (`dflt` if it cannot be read).
uint64_t read_sys_u64(const char* path, uint64_t dflt) {
  FILE* f = fopen(path, "re");
  if (!f) return dflt;
  unsigned long long v = dflt;
  if (fscanf(f, "%llu", &v) != 1) v = dflt;
  fclose(f);
  return v;
}

Status check_memory_here(const SetImages& imgs) {
  auto cur = TRY(proc::read_maps(getpid()));
  const uint64_t min_addr = read_sys_u64("/proc/sys/vm/mmap_min_addr", 65536);
  struct rlimit data;
  getrlimit(RLIMIT_DATA, &data);
  const uint64_t overcommit = read_sys_u64("/proc/sys/vm/overcommit_memory", 0);
  struct sysinfo si;
  uint64_t commit_max = ~0ull;
  if (sysinfo(&si) == 0) commit_max = (uint64_t(si.totalram) + si.totalswap) * si.mem_unit;
  for (const TaskImages& t : imgs.tasks) {
    if (t.entry.zombie) continue;
    const std::string mm = image_name(ImageKind::Mm, t.entry.pid);
    const char* f = mm.c_str();
    const auto vdso = TRY(match_vdso(t, cur));
    // Each mapping where mmap puts it (MAP_FIXED: not below
    // vm.mmap_min_addr), a private one within what the heuristic
    // overcommit grants at once (MemTotal + SwapTotal), and room for the
    // restore hole beside what cr-restore has mapped (a task's own map
    // starts as a copy of it).
    uint64_t hole = 2 * kGuard + restorer_blob().map_size() + task_args_size(t);
    for (auto& p : vdso) hole += p.size;
    std::vector<Interval> busy;
    for (auto& c : cur) busy.push_back({c.start, c.end});
    for (size_t i = 0; i < t.mm.vmas.size(); i++) {
      const VmaRec& v = t.mm.vmas[i];
      if (is_special(v)) continue;
      busy.push_back({v.start, v.end});
      if (v.start < min_addr)
        return make_error("%s: vma %zu: start %#llx is below vm.mmap_min_addr (%#llx)", f, i,
                          (unsigned long long)v.start, (unsigned long long)min_addr);
      if (!v.shared && overcommit == 0 && v.end - v.start > commit_max)
        return make_error("%s: vma %zu: %llu MiB of private memory at %#llx, more than this machine's memory and "
                          "swap (%llu MiB) grant one mapping", f, i, (unsigned long long)((v.end - v.start) >> 20),
                          (unsigned long long)v.start, (unsigned long long)(commit_max >> 20));
      if (v.kind == "sysv") continue;
      bool clash = false;
      for (auto& c : cur) clash |= c.start < v.end && v.start < c.end;
      if (clash) hole += (v.end - v.start) + kGuard + (v.growsdown ? kStackGuard : 0);
    }
    if (auto h = find_hole(busy, hole); !h)
      return make_error("%s: its mappings leave no free %llu MiB of address space for the restore here", f,
                        (unsigned long long)(hole >> 20));
    // The rest of PR_SET_MM_MAP's checks (validate_mm has the others):
    // no field below vm.mmap_min_addr, ...
    const Mm& m = t.mm;
    const struct {
      const char* name;
      uint64_t v;
    } fields[] = {{"start_code", m.start_code}, {"end_code", m.end_code},   {"start_data", m.start_data},
                  {"end_data", m.end_data},     {"start_brk", m.start_brk}, {"brk", m.brk},
                  {"start_stack", m.start_stack}, {"arg_start", m.arg_start}, {"arg_end", m.arg_end},
                  {"env_start", m.env_start},   {"env_end", m.env_end}};
    for (auto& fl : fields)
      if (fl.v < min_addr)
        return make_error("%s: mm field %s %#llx is below vm.mmap_min_addr (%#llx)", f, fl.name,
                          (unsigned long long)fl.v, (unsigned long long)min_addr);
    // ... and the heap and data within RLIMIT_DATA (the one the task has
    // then: cr-restore's; its own comes after).
    if (data.rlim_cur != RLIM_INFINITY && (m.brk - m.start_brk) + (m.end_data - m.start_data) > data.rlim_cur)
      return make_error("%s: mm fields brk - start_brk + end_data - start_data = %llu bytes exceed RLIMIT_DATA (%llu)",
                        f, (unsigned long long)((m.brk - m.start_brk) + (m.end_data - m.start_data)),
                        (unsigned long long)data.rlim_cur);
  }
  return ok_status();
}

uint64_t madv_bits(const std::vector<std::string>& vmflags) {
  static const struct {
    const char* name;
    uint64_t bit;
  } kMap[] = {{"dc", kMadvDontfork}, {"dd", kMadvDontdump},   {"wf", kMadvWipeonfork}, {"hg", kMadvHugepage},
              {"nh", kMadvNohugepage}, {"mg", kMadvMergeable}, {"sr", kMadvSequential}, {"rr", kMadvRandom}};
  uint64_t bits = 0;
  for (auto& f : vmflags)
    for (auto& m : kMap)
      if (f == m.name) bits |= m.bit;
  return bits;
}

Status fill_object_from_pages(const ImageSet& set, const std::string& pagemap, int fd, const std::string& what) {
  auto pr = TRY(PageReader::open_pagemap(set, pagemap));
  // In pieces of at most a raw frame: read straight into the buffer, once.
  std::vector<char> buf(std::min<uint64_t>(kRawFrameSize, pr->pagemap().raw_len));
  for (const auto& e : pr->pagemap().entries) {
    const uint64_t len = e.nr_pages * kPageSize;
    for (uint64_t done = 0; done < len;) {
      size_t n = std::min<uint64_t>(buf.size(), len - done);
      TRY_STATUS(pr->read(e.off + done, buf.data(), n));
      auto st = pwrite_full(fd, buf.data(), n, e.vaddr + done);
      if (!st)
        return make_errno(st.error().err, "%s: cannot write %zu bytes at offset %#llx", what.c_str(), n,
                          (unsigned long long)(e.vaddr + done));
      done += n;
    }
  }
  return ok_status();
}

namespace {

// A memfd again, with its name and seals; a deleted tmpfs file mapped
// shared: an unnamed file in its old directory when that still is tmpfs
// (O_TMPFILE: "/dev/shm/#123 (deleted)" in /proc/PID/maps), else a memfd.
// Filled, at fd `at`; seals last.
Status create_shmem_file(const ImageSet& set, const ShmemRec& m, int at) {
  bool memfd = m.path.rfind("/memfd:", 0) == 0;
  int fd = -1;
  if (memfd) {
    fd = memfd_create(m.path.substr(7).c_str(), MFD_CLOEXEC | (m.seals ? MFD_ALLOW_SEALING : 0));
  } else {
    std::string dir = m.path.substr(0, m.path.rfind('/'));
    if (dir.empty()) dir = "/";
    struct statfs sf;
    if (statfs(dir.c_str(), &sf) == 0 && sf.f_type == TMPFS_MAGIC)
      fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) fd = memfd_create(m.path.substr(m.path.rfind('/') + 1).c_str(), MFD_CLOEXEC);
  }
  if (fd < 0) return make_errno(errno, "shared memory of deleted %s: cannot make a file for it", m.path.c_str());
  UniqueFd f(fd);
  if (ftruncate(fd, static_cast<off_t>(m.size)) < 0)
    return make_errno(errno, "shared memory of deleted %s: ftruncate", m.path.c_str());
  TRY_STATUS(fill_object_from_pages(set, m.pages, fd, "shared memory " + m.path));
  if (memfd && m.seals && fcntl(fd, F_ADD_SEALS, m.seals) < 0)
    return make_errno(errno, "%s: cannot seal it again (%#x)", m.path.c_str(), m.seals);
  if (dup3(fd, at, O_CLOEXEC) < 0) return make_errno(errno, "shared memory of deleted %s: cannot place it at fd %d", m.path.c_str(), at);
  return ok_status();
}

}  // namespace

Status create_transit_shmem(const ImageSet& set, const Files& files, const TreePlan& tree, int index) {
  for (uint64_t id : tree.creates_shmem[index]) {
    const ShmemRec* m = nullptr;
    for (auto& x : files.shmem)
      if (x.id == id) m = &x;
    if (!m) return make_error("shared memory object %llu is not in the images", (unsigned long long)id);
    // An anonymous shared mapping of its size, filled, then opened through
    // map_files: the same kind of object as the dumped one ("/dev/zero
    // (deleted)" in /proc/PID/maps), which every holder maps from the fd.
    int at = tree.transit_shmem.at(id);
    if (!m->path.empty()) {
      TRY_STATUS(create_shmem_file(set, *m, at));
      continue;
    }
    uint64_t size = std::max<uint64_t>((m->size + kPageSize - 1) / kPageSize * kPageSize, kPageSize);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return make_errno(errno, "shared memory object %llu: mmap", (unsigned long long)id);
    char mf[96];
    snprintf(mf, sizeof mf, "/proc/self/map_files/%llx-%llx", (unsigned long long)reinterpret_cast<uint64_t>(p),
             (unsigned long long)(reinterpret_cast<uint64_t>(p) + size));
    int fd = open(mf, O_RDWR | O_CLOEXEC);
    int e = errno;
    munmap(p, size);
    if (fd < 0) return make_errno(e, "shared memory object %llu: cannot open it through map_files", (unsigned long long)id);
    UniqueFd f(fd);
    TRY_STATUS(fill_object_from_pages(set, m->pages, fd, "shared memory object " + std::to_string(id)));
    if (dup3(fd, at, O_CLOEXEC) < 0)
      return make_errno(errno, "shared memory object %llu: cannot place it at fd %d", (unsigned long long)id, at);
  }
  return ok_status();
}

Result<MemoryPlan> premap_memory(const ImageSet& set, const TaskImages& t, const TreePlan& tree,
                                 const RestoreOptions& o, uint64_t blob_size, uint64_t args_size,
                                 const std::vector<RestoreVma>& parent_vmas) {
  pid_t pid = static_cast<pid_t>(t.core.pid);
  MemoryPlan plan;
  auto pr = TRY(PageReader::open(set, pid));
  // VMAs holding pages of the parent's (Pagemap::in_parent): this task has
  // them already, premapped by its parent before the fork and shared
  // copy-on-write; `inherited[i]` is where.
  std::vector<uint64_t> inherited(t.mm.vmas.size(), 0);
  {
    size_t vi = 0;
    for (const auto& r : pr->pagemap().in_parent) {
      uint64_t end = r.vaddr + r.nr_pages * kPageSize;
      while (vi < t.mm.vmas.size() && t.mm.vmas[vi].end <= r.vaddr) vi++;
      // Every VMA the run touches (validated: each one's pages lie in VMAs).
      for (size_t k = vi; k < t.mm.vmas.size() && t.mm.vmas[k].start < end; k++) {
        const VmaRec& v = t.mm.vmas[k];
        if (inherited[k]) continue;
        for (auto& pv : parent_vmas)
          if (pv.start == v.start && pv.end == v.end) inherited[k] = pv.premap;
        if (!inherited[k])
          return make_pid_error(pid, 0, "the mapping at %#llx shares pages with the parent's, which the parent did "
                                "not map", (unsigned long long)v.start);
      }
    }
  }
  auto cur = TRY(proc::read_maps(getpid()));
  std::vector<Interval> busy;
  for (auto& v : cur) busy.push_back({v.start, v.end});
  for (auto& v : t.mm.vmas) busy.push_back({v.start, v.end});

  // The vDSO parts: the same names and sizes as at dump time.
  uint64_t vdso_total = 0;
  plan.vdso = TRY(match_vdso(t, cur));
  for (auto& p : plan.vdso) vdso_total += p.size;

  // First every VMA whose place is free in this process goes straight there:
  // nothing to move later, and an anonymous VMA keeps the page offset of its
  // address, so the heap still merges with what brk() adds after restore.
  std::vector<size_t> to_hole;
  for (size_t i = 0; i < t.mm.vmas.size(); i++) {
    const VmaRec& v = t.mm.vmas[i];
    if (is_special(v)) continue;
    if (v.kind == "sysv") {
      plan.vmas.push_back(sysv_attach(v));
      continue;
    }
    if (inherited[i]) {
      // Where the parent had it: in place already, or moved into the hole.
      if (inherited[i] == v.start) {
        plan.vmas.push_back({v.start, v.start, v.end, madv_bits(v.vmflags), v.prot, -1, 0, 0});
        plan.keep.push_back({v.start, v.end});
      } else {
        to_hole.push_back(i);
      }
      continue;
    }
    bool clash = false;
    for (auto& c : cur) clash |= c.start < v.end && v.start < c.end;
    if (!clash) {
      auto m = map_vma(pid, v, v.start, tree, o, MAP_FIXED_NOREPLACE);
      if (m) {
        plan.vmas.push_back({v.start, v.start, v.end, madv_bits(v.vmflags), v.prot, -1, 0, 0});
        plan.keep.push_back({v.start, v.end});
        continue;
      }
      if (m.error().err != EEXIST) return std::move(m).error();
    }
    to_hole.push_back(i);
  }

  // The hole holds the blob, the args, the vDSO temp slot and the rest.
  uint64_t size = kGuard + blob_size + args_size + vdso_total + kGuard;
  for (size_t i : to_hole) {
    const VmaRec& v = t.mm.vmas[i];
    if (v.growsdown) size += kStackGuard;
    size += (v.end - v.start) + kGuard;
  }
  uint64_t hole = TRY(find_hole(busy, size));
  plan.hole_start = hole;
  plan.hole_end = hole + size;
  // Reserve it all, then map the pieces over the reservation.
  void* r = mmap(reinterpret_cast<void*>(hole), size, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (r == MAP_FAILED) return make_errno(errno, "cannot reserve the restore hole at %#llx", (unsigned long long)hole);
  plan.keep.push_back({plan.hole_start, plan.hole_end});
  for (auto& p : plan.vdso) plan.keep.push_back({p.cur, p.cur + p.size});
  uint64_t at = hole + kGuard;
  plan.blob_at = at;
  at += blob_size;
  plan.args_at = at;
  at += args_size;
  plan.vdso_temp = at;
  at += vdso_total + kGuard;
  for (size_t i : to_hole) {
    const VmaRec& v = t.mm.vmas[i];
    if (v.growsdown) at += kStackGuard;
    if (inherited[i]) {
      // mremap moves the page tables: the pages stay shared with the parent.
      void* m = mremap(reinterpret_cast<void*>(inherited[i]), v.end - v.start, v.end - v.start,
                       MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(at));
      if (m == MAP_FAILED)
        return make_errno(errno, "cannot move the mapping at %#llx inherited from the parent",
                          (unsigned long long)v.start);
    } else {
      TRY_STATUS(map_vma(pid, v, at, tree, o, MAP_FIXED));
    }
    plan.vmas.push_back({at, v.start, v.end, madv_bits(v.vmflags), v.prot, -1, 0, 0});
    at += (v.end - v.start) + kGuard;
  }
  std::sort(plan.keep.begin(), plan.keep.end(),
            [](const RestoreRange& a, const RestoreRange& b) { return a.start < b.start; });

  // Fill the pages: each run of the pagemap, split by VMA.
  std::map<uint64_t, uint64_t> premap_of;  // dumped start -> where it is mapped now
  for (const auto& pv : plan.vmas) premap_of[pv.start] = pv.premap;
  const auto& vmas = t.mm.vmas;
  // In an inherited VMA, every page but the parent's goes back to what an
  // untouched page holds (zeros, or the file's page), then ours are written.
  for (size_t i = 0; i < vmas.size(); i++) {
    if (!inherited[i]) continue;
    const VmaRec& v = vmas[i];
    uint64_t a = v.start;
    auto drop = [&](uint64_t to) -> Status {
      if (to > a && madvise(reinterpret_cast<void*>(premap_of.at(v.start) + (a - v.start)), to - a, MADV_DONTNEED) < 0)
        return make_errno(errno, "madvise DONTNEED at %#llx", (unsigned long long)a);
      return ok_status();
    };
    for (const auto& r : pr->pagemap().in_parent) {
      uint64_t rs = r.vaddr, re = r.vaddr + r.nr_pages * kPageSize;
      if (re <= v.start || rs >= v.end) continue;
      TRY_STATUS(drop(std::max(rs, v.start)));
      a = std::min(re, v.end);
    }
    TRY_STATUS(drop(v.end));
    plan.pages_inherited += v.end - v.start;
  }
  size_t vi = 0;
  for (const auto& e : pr->pagemap().entries) {
    uint64_t a = e.vaddr, end = e.vaddr + e.nr_pages * kPageSize;
    while (a < end) {
      while (vi < vmas.size() && vmas[vi].end <= a) vi++;
      // Validated by load_set_images: every page lies in a private VMA.
      const VmaRec& v = vmas[vi];
      uint64_t n = std::min(end, v.end) - a;
      char* dst = reinterpret_cast<char*>(premap_of.at(v.start) + (a - v.start));
      // Fault anonymous memory in bulk: the VM's page faults dominate the
      // cost of a restore (NOTES.md section 3).
      if (v.kind != "file") madvise(dst, n, MADV_POPULATE_WRITE);
      TRY_STATUS(pr->read(e.off + (a - e.vaddr), dst, n));
      plan.pages_restored += n;
      a += n;
    }
  }
  pr_debug(pid, "premapped %zu VMAs in the hole %#llx-%#llx, %llu bytes of pages", plan.vmas.size(),
           (unsigned long long)plan.hole_start, (unsigned long long)plan.hole_end,
           (unsigned long long)plan.pages_restored);
  return plan;
}

}  // namespace cr
