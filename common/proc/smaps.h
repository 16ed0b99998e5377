// /proc/PID/smaps: per-VMA sizes and the VmFlags line.
//
// Each VMA is its maps line followed by "Key:   N kB" lines and, last on
// 6.18, "VmFlags: rd wr mr mw me ac ". VmFlags lists two-letter mnemonics
// (show_smap_vma_flags in fs/proc/task_mmu.c, Documentation/filesystems/
// proc.rst). Mnemonics this code does not know are kept in
// VmFlags::unknown() rather than refused: new kernels add flags.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/proc/maps.h"

namespace cr::proc {

enum class VmFlag : uint8_t {
  Rd,  // readable
  Wr,  // writeable
  Ex,  // executable
  Sh,  // shared
  Mr,  // may read
  Mw,  // may write
  Me,  // may execute
  Ms,  // may share
  Gd,  // stack segment grows down
  Pf,  // pure PFN range
  Dw,  // disabled write to the mapped file (gone since 5.15)
  Lo,  // pages are locked in memory (mlock)
  Io,  // memory mapped I/O area
  Sr,  // sequential read advised (MADV_SEQUENTIAL)
  Rr,  // random read advised (MADV_RANDOM)
  Dc,  // do not copy area on fork (MADV_DONTFORK)
  De,  // do not expand area on remapping
  Ac,  // area is accountable
  Nr,  // swap space is not reserved for the area
  Ht,  // area uses huge tlb pages
  Sf,  // synchronous page fault (MAP_SYNC)
  Ar,  // architecture specific flag
  Wf,  // wipe on fork (MADV_WIPEONFORK)
  Dd,  // do not include area into core dump (MADV_DONTDUMP)
  Sd,  // soft dirty
  Mm,  // mixed map area
  Hg,  // huge page advised (MADV_HUGEPAGE)
  Nh,  // no huge page advised (MADV_NOHUGEPAGE)
  Mg,  // mergeable advised (MADV_MERGEABLE / PR_SET_MEMORY_MERGE)
  Bt,  // arm64 BTI guarded page
  Mt,  // arm64 MTE allocation tags enabled
  Um,  // userfaultfd missing tracking
  Uw,  // userfaultfd write-protect tracking
  Ui,  // userfaultfd minor fault tracking
  Ss,  // shadow stack
  Sl,  // sealed (mseal)
  Lf,  // lock on fault (mlock2 MLOCK_ONFAULT)
  Dp,  // always lazily freeable (MAP_DROPPABLE)
  Count
};
static_assert(static_cast<int>(VmFlag::Count) <= 64);

struct VmFlagInfo {
  VmFlag flag;
  const char* code;     // "rd"
  const char* meaning;  // "readable"
};
// Every known flag, in the kernel's print order.
std::span<const VmFlagInfo> vmflag_table();
const char* vmflag_code(VmFlag f);
std::optional<VmFlag> vmflag_from_code(std::string_view code);

class VmFlags {
 public:
  bool has(VmFlag f) const { return bits_ & bit(f); }
  void set(VmFlag f) { bits_ |= bit(f); }
  void clear(VmFlag f) { bits_ &= ~bit(f); }
  uint64_t bits() const { return bits_; }  // bit i = VmFlag(i), our numbering
  const std::vector<std::string>& unknown() const { return unknown_; }
  void add_unknown(std::string code) { unknown_.push_back(std::move(code)); }
  // "rd wr mr mw me ac" (known flags in table order, then unknown ones).
  std::string str() const;
  bool operator==(const VmFlags&) const = default;

 private:
  static uint64_t bit(VmFlag f) { return 1ull << static_cast<unsigned>(f); }
  uint64_t bits_ = 0;
  std::vector<std::string> unknown_;
};

// Parse the value of a VmFlags line: two-character mnemonics separated by
// single spaces (a trailing space is normal). Repeats are an error.
Result<VmFlags> parse_vmflags(std::string_view value, std::string_view source = "smaps",
                              int lineno = 0);

// The madvise() advice values that reproduce the advisable flags on a
// fresh mapping, in a fixed order: dc MADV_DONTFORK, dd MADV_DONTDUMP,
// wf MADV_WIPEONFORK, hg MADV_HUGEPAGE, nh MADV_NOHUGEPAGE,
// mg MADV_MERGEABLE, sr MADV_SEQUENTIAL, rr MADV_RANDOM.
// Not included: lo/lf (mlock, see lock_mode()), flags the kernel sets by
// itself (de, dd on vvar/VM_IO areas, ac, nr, pf, io, ...), sl (mseal),
// dp (MAP_DROPPABLE, an mmap flag), um/uw/ui (userfaultfd registration).
// mg may also come from prctl(PR_SET_MEMORY_MERGE) for the whole process.
std::vector<int> madvise_advices(const VmFlags& f);

enum class LockMode { None, Locked, OnFault };  // mlock() / mlock2(MLOCK_ONFAULT)
LockMode lock_mode(const VmFlags& f);

struct SmapsEntry {
  VmaInfo vma;
  // Byte counts (the file prints kB).
  uint64_t size = 0, kernel_page_size = 0, mmu_page_size = 0;
  uint64_t rss = 0, pss = 0, pss_dirty = 0;
  uint64_t shared_clean = 0, shared_dirty = 0, private_clean = 0, private_dirty = 0;
  uint64_t referenced = 0, anonymous = 0, ksm = 0, lazy_free = 0, anon_huge_pages = 0;
  uint64_t shmem_pmd_mapped = 0, file_pmd_mapped = 0, shared_hugetlb = 0, private_hugetlb = 0;
  uint64_t swap = 0, swap_pss = 0, locked = 0;
  bool thp_eligible = false;
  int protection_key = -1;  // -1: no ProtectionKey line (no pkeys)
  VmFlags flags;
};

// Keyed by VMA start address.
using SmapsMap = std::map<uint64_t, SmapsEntry>;

// Parse a whole smaps file. Each VMA must have Size (equal to end-start),
// Rss, Anonymous, Swap and VmFlags; unknown keys are ignored; VMAs sorted and
// non-overlapping as in maps.
Result<SmapsMap> parse_smaps(std::string_view text, std::string_view source = "smaps");
Result<SmapsMap> read_smaps(pid_t pid);

}  // namespace cr::proc
