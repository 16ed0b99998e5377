// Memory probes: map_files, pagemap, /proc/PID/mem, PR_SET_MM_MAP, memfd,
// the vDSO layout and soft-dirty tracking.
#include <fcntl.h>
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/fd.h"
#include "common/kernel/probe_child.h"
#include "common/kernel/probes.h"
#include "common/strings.h"
#include "common/kernel/uapi.h"

namespace cr::probe {

namespace {

constexpr size_t kPage = 4096;


// A child that says "ready" after running prepare(), then waits until told
// to go (or its stdin closes).
Result<std::unique_ptr<ProbeChild>> waiting_child(const char* what, std::function<void()> prepare) {
  auto c = TRY(ProbeChild::spawn(what, [prepare](ChildIo& io) {
    if (prepare) prepare();
    io.send("ready");
    io.recv();
    return 0;
  }));
  TRY_STATUS(c->expect("ready"));
  return c;
}

std::string human_size(uint64_t n) {
  if (n % (1024 * 1024) == 0) return std::to_string(n >> 20) + " MiB";
  if (n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

// An unlinked temporary file, as dump meets a mapping of a deleted file.
Result<UniqueFd> deleted_file() {
  UniqueFd fd(open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.valid()) return fd;
  char tmpl[] = "/tmp/crtools-probe-XXXXXX";
  int f = mkostemp(tmpl, O_CLOEXEC);
  if (f < 0) return make_errno(errno, "cannot create a temporary file in /tmp");
  unlink(tmpl);
  return UniqueFd(f);
}

}  // namespace

Result<std::string> map_files() {
  UniqueFd fd = TRY(deleted_file());
  char page[kPage];
  for (size_t i = 0; i < kPage; i++) page[i] = static_cast<char>(i * 13 + 5);
  TRY_STATUS(pwrite_full(fd.get(), page, kPage, 0));
  Mapping m = TRY(Mapping::file(fd.get(), kPage, PROT_READ, MAP_SHARED));
  struct stat want;
  if (fstat(fd.get(), &want)) return make_errno(errno, "fstat");
  auto child = TRY(waiting_child("map-files", nullptr));
  std::string path = strprintf("/proc/%d/map_files/%" PRIxPTR "-%" PRIxPTR, child->pid(), m.addr(), m.addr() + kPage);
  char link[512];
  ssize_t n = readlink(path.c_str(), link, sizeof link - 1);
  if (n < 0) return make_errno(errno, "readlink %s", path.c_str());
  link[n] = 0;
  UniqueFd o(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!o.valid()) return make_errno(errno, "cannot open %s", path.c_str());
  struct stat got;
  if (fstat(o.get(), &got)) return make_errno(errno, "fstat %s", path.c_str());
  if (got.st_dev != want.st_dev || got.st_ino != want.st_ino)
    return make_error("%s opened another file than the one mapped", path.c_str());
  char back[kPage];
  size_t r = TRY(pread_full(o.get(), back, kPage, 0));
  if (r != kPage || memcmp(back, page, kPage) != 0)
    return make_error("%s does not read back the mapped file's contents", path.c_str());
  return strprintf("opened a child's mapping of a deleted file through /proc/PID/map_files (%s)", link);
}

Result<std::string> proc_pagemap() {
  Mapping m = TRY(Mapping::anon(2 * kPage));
  char* p = m.get();
  auto child = TRY(waiting_child("proc-pagemap", [p] { p[0] = 1; }));
  uint64_t e0 = TRY(pagemap_entry(child->pid(), m.addr()));
  uint64_t e1 = TRY(pagemap_entry(child->pid(), m.addr() + kPage));
  if (!(e0 & uapi::PM_PRESENT))
    return make_error("a page the child wrote is not present in its pagemap (entry 0x%" PRIx64 ")", e0);
  if (e1 & (uapi::PM_PRESENT | uapi::PM_SWAP))
    return make_error("a page nobody touched shows as present or swapped (entry 0x%" PRIx64 ")", e1);
  return strprintf("/proc/PID/pagemap of a child shows its written page present and an untouched one empty%s",
             (e0 & uapi::PM_PFRAME_MASK) ? " (PFNs visible)" : " (PFNs hidden)");
}

Result<std::string> proc_pid_mem() {
  Mapping m = TRY(Mapping::anon(2 * kPage));
  char* p = m.get();
  auto child = TRY(waiting_child("proc-pid-mem", [p] {
    for (size_t i = 0; i < kPage; i++) p[i] = static_cast<char>(i * 7 + 3);
  }));
  std::string path = strprintf("/proc/%d/mem", child->pid());
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_pid_error(child->pid(), errno, "open %s", path.c_str());
  std::vector<char> buf(2 * kPage, 'x');
  ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(reinterpret_cast<uintptr_t>(m.get())));
  int e = errno;
  ::close(fd);
  if (n < 0) return make_pid_error(child->pid(), e, "pread %s", path.c_str());
  if ((size_t)n != buf.size()) return make_error("%s: read %zd of %zu bytes", path.c_str(), n, buf.size());
  for (size_t i = 0; i < kPage; i++)
    if (buf[i] != static_cast<char>(i * 7 + 3) || buf[kPage + i] != 0)
      return make_error("%s returned other bytes than the child's (offset %zu)", path.c_str(), i);
  return std::string("/proc/PID/mem gave two pages (one written, one untouched) of a child");
}

Result<std::string> prctl_mm_map() {
  return run_in_child("prctl-mm-map", []() -> Result<std::string> {
    unsigned int size = 0;
    if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0))
      return make_errno(errno, "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)");
    if (size != sizeof(struct prctl_mm_map))
      return make_error("PR_SET_MM_MAP_SIZE is %u, crtools was built for %zu", size, sizeof(struct prctl_mm_map));

    // This task's own values, from /proc/self/stat (man 5 proc).
    std::string stat = TRY(read_file("/proc/self/stat"));
    size_t rp = stat.rfind(')');
    if (rp == std::string::npos) return make_error("cannot parse /proc/self/stat");
    std::vector<uint64_t> f(3, 0);  // fields are numbered from 1; f[3] is the state
    {
      const char* s = stat.c_str() + rp + 2;
      while (*s) {
        char* end;
        f.push_back(strtoull(s, &end, 10));
        if (end == s) end++;  // the state letter
        s = end;
        while (*s == ' ' || *s == '\n') s++;
      }
    }
    if (f.size() <= 51) return make_error("/proc/self/stat has only %zu fields", f.size() - 1);
    struct prctl_mm_map map;
    memset(&map, 0, sizeof map);
    map.start_code = f[26];
    map.end_code = f[27];
    map.start_stack = f[28];
    map.start_data = f[45];
    map.end_data = f[46];
    map.start_brk = f[47];
    map.arg_start = f[48];
    map.arg_end = f[49];
    map.env_start = f[50];
    map.env_end = f[51];
    map.brk = syscall(SYS_brk, 0);
    std::string auxv = TRY(read_file("/proc/self/auxv"));
    std::vector<uint64_t> av(auxv.size() / 8);
    memcpy(av.data(), auxv.data(), av.size() * 8);
    map.auxv = reinterpret_cast<__u64*>(av.data());
    map.auxv_size = av.size() * 8;
    map.exe_fd = static_cast<uint32_t>(-1);  // keep the executable

    std::string before = TRY(read_file("/proc/self/cmdline"));
    bool shifted = map.arg_end - map.arg_start >= 2 && before.size() >= 2;
    if (shifted) map.arg_start += 1;  // a visible, harmless change
    if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0))
      return make_errno(errno, "prctl(PR_SET_MM, PR_SET_MM_MAP) with this task's own values");
    if (shifted) {
      std::string after = TRY(read_file("/proc/self/cmdline"));
      if (after != before.substr(1))
        return make_error("PR_SET_MM_MAP succeeded but /proc/self/cmdline did not follow the new arg_start");
    }
    return strprintf("PR_SET_MM_MAP_SIZE is %u; PR_SET_MM_MAP set a child's code, data, brk, stack, argv, env and "
               "auxv fields%s",
               size, shifted ? " (its moved arg_start showed in /proc/PID/cmdline)" : "");
  });
}

Result<std::string> memfd_create() {
  UniqueFd fd(::memfd_create("crtools-probe", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return make_errno(errno, "memfd_create");
  if (ftruncate(fd.get(), 2 * kPage)) return make_errno(errno, "ftruncate of a memfd");
  {
    Mapping m = TRY(Mapping::file(fd.get(), 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED));
    memcpy(m.get() + kPage, "crtools", 8);
  }
  char back[8] = {};
  size_t n = TRY(pread_full(fd.get(), back, sizeof back, kPage));
  if (n != 8 || memcmp(back, "crtools", 8) != 0)
    return make_error("a memfd does not read back what its shared mapping wrote");
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) return make_errno(errno, "F_ADD_SEALS");
  int seals = fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    return make_error("F_GET_SEALS returned 0x%x", seals);
  char link[256];
  std::string lp = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t l = readlink(lp.c_str(), link, sizeof link - 1);
  if (l < 0) return make_errno(errno, "readlink %s", lp.c_str());
  link[l] = 0;
  return strprintf("memfd_create, a shared mapping, sealing (%s)", link);
}

Result<std::string> vdso() {
  auto maps = TRY(read_maps(0));
  std::vector<MapsEntry> parts;
  for (auto& e : maps)
    if (e.name == "[vdso]" || e.name.rfind("[vvar", 0) == 0) parts.push_back(e);
  std::sort(parts.begin(), parts.end(), [](const MapsEntry& a, const MapsEntry& b) { return a.start < b.start; });
  bool have_vdso = false;
  std::string layout;
  for (auto& e : parts) {
    have_vdso |= e.name == "[vdso]";
    if (!layout.empty()) layout += ", ";
    layout += e.name + " " + human_size(e.end - e.start);
  }
  if (!have_vdso)
    return make_error("no [vdso] in /proc/self/maps (%s); booted with vdso=0?",
                      layout.empty() ? "no vvar either" : layout.c_str());
  uintptr_t lo = parts.front().start, hi = parts.back().end;
  if (hi - lo > (64u << 20)) return make_error("the vDSO parts are scattered over %" PRIuPTR " bytes", hi - lo);
  // Restore moves these mappings to where the dumped task had them; try it
  // in a child. After the move the child's libc (and ASan's allocator) would
  // still call the old vDSO address, so from then on it makes raw system
  // calls only, and this process checks the result in /proc/PID/maps.
  Mapping dst = TRY(Mapping::anon(hi - lo, PROT_NONE));
  uintptr_t base = dst.addr();
  struct Move {
    uintptr_t from, len, to;
  };
  std::vector<Move> moves;
  for (auto& e : parts) moves.push_back({e.start, e.end - e.start, base + (e.start - lo)});
  auto child = TRY(ProbeChild::spawn("vdso", [&moves](ChildIo& io) {
    if (!io.send("ready")) return 1;
    char c;
    if (syscall(SYS_read, io.in_fd(), &c, 1) != 1) return 1;
    for (size_t i = 0; i < moves.size(); i++) {
      long r = syscall(SYS_mremap, moves[i].from, moves[i].len, moves[i].len, MREMAP_MAYMOVE | MREMAP_FIXED,
                       moves[i].to);
      if (r == -1) {
        // "error N E\n": part N failed with errno E, formatted by hand.
        char msg[32] = "error ";
        size_t n = 6;
        auto put = [&](unsigned long v) {
          char d[24];
          size_t k = 0;
          do d[k++] = static_cast<char>('0' + v % 10); while ((v /= 10) && k < sizeof d);
          while (k && n < sizeof msg - 2) msg[n++] = d[--k];
        };
        put(i);
        msg[n++] = ' ';
        put(static_cast<unsigned long>(errno));
        msg[n++] = '\n';
        syscall(SYS_write, io.out_fd(), msg, n);
        syscall(SYS_exit_group, 1);
      }
    }
    syscall(SYS_write, io.out_fd(), "moved\n", 6);
    while (syscall(SYS_read, io.in_fd(), &c, 1) > 0) {
    }
    syscall(SYS_exit_group, 0);
    return 0;
  }));
  TRY_STATUS(child->expect("ready"));
  TRY_STATUS(child->send("go"));
  std::string got = TRY(child->recv());
  unsigned long bad_part = 0, bad_errno = 0;
  if (sscanf(got.c_str(), "error %lu %lu", &bad_part, &bad_errno) == 2 && bad_part < parts.size())
    return make_errno(static_cast<int>(bad_errno), "mremap of %s", parts[bad_part].name.c_str());
  if (got != "moved") return make_error("vdso: unexpected answer from the probe child: '%s'", got.c_str());
  auto now = TRY(read_maps(child->pid()));
  for (auto& e : parts) {
    bool found = false;
    for (auto& n : now) found |= n.name == e.name && n.start == base + (e.start - lo);
    if (!found) return make_error("after mremap, %s is not where it was moved to", e.name.c_str());
  }
  return strprintf("%s; mremap moved them all in a child", layout.c_str());
}

Result<std::string> soft_dirty() {
  return run_in_child("soft-dirty", []() -> Result<std::string> {
    Mapping m = TRY(Mapping::anon(kPage));
    volatile char* p = m.get();
    p[0] = 1;
    {
      UniqueFd cr(open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC));
      if (!cr.valid()) return make_errno(errno, "cannot open /proc/self/clear_refs");
      if (write(cr.get(), uapi::kClearRefsSoftDirty, 1) != 1)
        return make_errno(errno, "writing %s to /proc/self/clear_refs", uapi::kClearRefsSoftDirty);
    }
    uint64_t clean = TRY(pagemap_entry(0, m.addr()));
    p[0] = 2;
    uint64_t dirty = TRY(pagemap_entry(0, m.addr()));
    if (!(dirty & uapi::PM_SOFT_DIRTY))
      return make_error("a page written after 'echo 4 > clear_refs' does not show soft-dirty bit 55 in "
                        "/proc/PID/pagemap: this kernel has no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY "
                        "is off)");
    if (clean & uapi::PM_SOFT_DIRTY)
      return make_error("'echo 4 > clear_refs' did not clear soft-dirty bit 55");
    return std::string("clear_refs 4 cleared pagemap bit 55 and a write set it again");
  });
}

}  // namespace cr::probe
