// mm-<pid>.img: one address space — its VMAs and the mm fields that
// PR_SET_MM_MAP restores. The pages are in pagemap-<pid>.img/pages-<pid>.img
// (common/image/pages.h). Dump side: cr-dump/memory.cc; restore side:
// cr-restore/memory.cc and the restorer blob.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/image/bytes.h"
#include "common/image/format.h"

namespace cr {

struct VmaRec {
  uint64_t start = 0, end = 0;
  int32_t prot = 0;            // PROT_*
  bool shared = false;         // MAP_SHARED
  bool growsdown = false;      // MAP_GROWSDOWN (the stack)
  std::string kind;            // anon, file, shmem, sysv, heap, stack, vdso, vvar, vsyscall
  std::string name;            // [heap], [vvar_vclock], or the file path
  uint64_t pgoff = 0;          // file offset in bytes
  uint64_t dev = 0, ino = 0;   // of a mapped file (st_dev, st_ino); shmem: the ShmemRec's;
                               // sysv: ino is the segment's id (SysvShmRec), dev 0
  uint64_t file_size = 0;      // st_size at dump time
  std::vector<std::string> vmflags;  // VmFlags that restore re-applies (dc dd wf hg nh mg sr rr)
  bool may_write = false;      // VmFlags "mw": a shared file mapping opened for writing
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(VmaRec, start, end, prot, shared, growsdown, kind, name, pgoff, dev, ino,
                                   file_size, vmflags, may_write)

// Two private mappings a forked child can inherit one from the other: the
// same range of the same kind of memory (the same file at the same offset).
// Not a private mapping of a shared memory object ("shmem": a memfd or a
// deleted tmpfs file): each task's written pages of it are saved and
// restored as its own.
inline bool same_private_mapping(const VmaRec& a, const VmaRec& b) {
  return a.start == b.start && a.end == b.end && !a.shared && !b.shared && a.kind == b.kind &&
         a.growsdown == b.growsdown && (a.kind == "anon" || a.kind == "heap" || a.kind == "stack" ||
                                        (a.kind == "file" && a.name == b.name && a.pgoff == b.pgoff &&
                                         a.dev == b.dev && a.ino == b.ino));
}

struct Mm {
  static constexpr ImageKind kKind = ImageKind::Mm;
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  Bytes auxv;              // saved_auxv as u64 pairs
  std::string exe;         // /proc/PID/exe
  uint64_t exe_dev = 0, exe_ino = 0, exe_size = 0;
  std::vector<VmaRec> vmas;  // sorted by address
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Mm, start_code, end_code, start_data, end_data, start_brk, brk, start_stack,
                                   arg_start, arg_end, env_start, env_end, auxv, exe, exe_dev, exe_ino,
                                   exe_size, vmas)

}  // namespace cr
