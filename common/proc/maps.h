// /proc/PID/maps: one VmaInfo per line.
//
// Line format (fs/proc/task_mmu.c, show_map_vma):
//   start-end perms offset major:minor inode [padding name]
//   7f18e640d000-7f18e6411000 rw-p 00000000 fe:00 10953079   /tmp/a file
// Anonymous lines end right after the inode (the kernel leaves one space).
// The name is the rest of the line after the padding, so file names with
// spaces survive; a trailing " (deleted)" is removed and reported in
// `deleted`. The kernel escapes '\n' in file names as "\012" and nothing
// else, so `path` is the text as printed: dump code that needs the exact
// file must open /proc/PID/map_files/START-END instead. A real file whose
// name ends in " (deleted)" is indistinguishable from a deleted one here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cr::proc {

struct VmaInfo {
  uint64_t start = 0, end = 0;
  int prot = 0;          // PROT_READ | PROT_WRITE | PROT_EXEC
  bool shared = false;   // 's' (VM_MAYSHARE) rather than 'p'
  uint64_t pgoff = 0;    // file offset in bytes
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;      // file path or "[heap]"-style name; "" if anonymous
  bool deleted = false;  // path was followed by " (deleted)"

  uint64_t size() const { return end - start; }
  uint64_t pages() const;
  // Backed by a file object: a path starting with '/'. This includes memfd
  // ("/memfd:NAME"), SysV shm ("/SYSV%08x") and shared anonymous memory
  // ("/dev/zero" deleted, see is_shared_anon()).
  bool is_file() const;
  // No file behind it: plain anonymous memory, [heap], [stack],
  // [anon:NAME]; not the vDSO/vvar/vsyscall special mappings.
  bool is_anon() const;
  bool is_stack() const { return path == "[stack]"; }
  bool is_heap() const { return path == "[heap]"; }
  bool is_vdso() const { return path == "[vdso]"; }
  // "[vvar]", "[vvar_vclock]", any "[vvar...]" part of the vDSO area.
  bool is_vvar() const;
  bool is_vsyscall() const { return path == "[vsyscall]"; }
  // vdso, vvar or vsyscall: kernel-provided, never dumped as memory.
  bool is_special() const { return is_vdso() || is_vvar() || is_vsyscall(); }
  // MAP_SHARED|MAP_ANONYMOUS memory (a shmem object): "/dev/zero (deleted)"
  // or, with CONFIG_ANON_VMA_NAME, "[anon_shmem:NAME]".
  bool is_shared_anon() const;
  bool contains(uint64_t addr) const { return addr >= start && addr < end; }
};

// Parse one maps line (without '\n'). source/lineno only name the error.
Result<VmaInfo> parse_maps_line(std::string_view line, std::string_view source = "maps",
                                int lineno = 0);
// Parse a whole maps file: every line complete, VMAs page aligned, sorted
// and non-overlapping. Empty text (kernel thread, zombie) gives no VMAs.
Result<std::vector<VmaInfo>> parse_maps(std::string_view text, std::string_view source = "maps");
// Read and parse /proc/PID/maps.
Result<std::vector<VmaInfo>> read_maps(pid_t pid);

// The vDSO area: [vdso] plus every adjacent [vvar...] mapping (on 6.18
// [vvar] [vvar_vclock] [vdso]; older kernels have one vvar, some put it
// after the vdso). Indices refer to the vector given.
struct VdsoArea {
  uint64_t start = 0, end = 0;  // the whole area
  uint64_t vdso_start = 0, vdso_end = 0;
  size_t first = 0, count = 0;  // vmas[first .. first+count)
};
// nullopt if there is no [vdso]; an error if there are two.
Result<std::optional<VdsoArea>> find_vdso_area(const std::vector<VmaInfo>& vmas);

// "7f18e640d000-7f18e6411000 rw-p" for messages.
std::string vma_str(const VmaInfo& v);

}  // namespace cr::proc
