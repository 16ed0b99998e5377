// /proc/PID/pagemap: one u64 per virtual page
// (Documentation/admin-guide/mm/pagemap.rst):
//   bit 63 present, 62 swapped, 61 file-page or shared-anon,
//   bit 56 exclusively mapped, 55 soft-dirty (always 0 here: no
//   CONFIG_MEM_SOFT_DIRTY), bits 0-54 PFN (0 without CAP_SYS_ADMIN).
//
// A dump of a private mapping saves the pages that are present or swapped
// and anonymous (bit 61 clear): all touched pages of an anonymous mapping,
// and only the copy-on-write copies of a file-backed private one (its
// unmodified file pages have bit 61 and come back from the file).
// Entries are read with large preads and turned into runs [start, end).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/proc/maps.h"

namespace cr::proc {

inline constexpr uint64_t kPmPresent = 1ull << 63;
inline constexpr uint64_t kPmSwapped = 1ull << 62;
inline constexpr uint64_t kPmFileOrSharedAnon = 1ull << 61;
inline constexpr uint64_t kPmExclusive = 1ull << 56;
inline constexpr uint64_t kPmSoftDirty = 1ull << 55;
inline constexpr uint64_t kPmPfnMask = (1ull << 55) - 1;

inline bool pm_present(uint64_t e) { return e & kPmPresent; }
inline bool pm_swapped(uint64_t e) { return e & kPmSwapped; }
inline bool pm_file(uint64_t e) { return e & kPmFileOrSharedAnon; }
inline bool pm_exclusive(uint64_t e) { return e & kPmExclusive; }
inline bool pm_soft_dirty(uint64_t e) { return e & kPmSoftDirty; }
// A page a private-mapping dump must save: present or swapped, anonymous.
inline bool pm_must_dump(uint64_t e) { return (e & (kPmPresent | kPmSwapped)) && !(e & kPmFileOrSharedAnon); }

struct PageRun {
  uint64_t start = 0, end = 0;  // [start, end), page aligned
  uint64_t pages() const { return (end - start) / 4096; }
  bool operator==(const PageRun&) const = default;
};

// Append to `runs` the pages to dump among entries[i] (the entry of page
// start + i*4096), merging with the last run when adjacent. Feeding
// consecutive batches in address order yields maximal runs.
void append_dump_runs(uint64_t start, std::span<const uint64_t> entries, std::vector<PageRun>& runs);

// Two entries of the same page in a parent and its child: the very same
// page, shared copy-on-write since a fork (the same frame or swap slot).
// Without CAP_SYS_ADMIN the PFNs read 0 and nothing is found shared.
inline bool pm_same_page(uint64_t child, uint64_t parent) {
  constexpr uint64_t kWhere = kPmPresent | kPmSwapped | kPmPfnMask;
  return pm_must_dump(child) && (child & kPmPfnMask) != 0 && ((child ^ parent) & kWhere) == 0;
}

// As append_dump_runs, for a child's private mapping beside its parent's
// identical one (parent[i] is the parent's entry of the same page): pages to
// dump go to `own`, pages that are the parent's very pages to `same`.
void append_cow_runs(uint64_t start, std::span<const uint64_t> child, std::span<const uint64_t> parent,
                     std::vector<PageRun>& own, std::vector<PageRun>& same);

// Total pages in a list of runs.
uint64_t run_pages(const std::vector<PageRun>& runs);

class Pagemap {
 public:
  // Pages per pread (8 bytes each): 64Ki pages = 512 KiB, 256 MiB of address space.
  static constexpr size_t kBatchPages = 64 * 1024;

  // Open /proc/PID/pagemap (must be done while the task is alive).
  static Result<Pagemap> open(pid_t pid);

  // Read the entries of the pages [start, start + out.size()*4096).
  Status read(uint64_t start, std::span<uint64_t> out);

  // Runs to dump in [start, end) (page aligned), read in batches.
  Result<std::vector<PageRun>> dump_runs(uint64_t start, uint64_t end);

  // Runs to dump in [start, end), split by `parent`'s pagemap of the same
  // range (append_cow_runs).
  Status cow_runs(Pagemap& parent, uint64_t start, uint64_t end, std::vector<PageRun>& own,
                  std::vector<PageRun>& same);

  // Runs to dump for a private VMA. A shared VMA (its pages live in the
  // shared object and are dumped once, not per mapping) or the vsyscall
  // page (outside the user address space) is an error.
  Result<std::vector<PageRun>> dump_runs(const VmaInfo& vma);

  const std::string& path() const { return path_; }

 private:
  Pagemap(UniqueFd fd, std::string path, pid_t pid) : fd_(std::move(fd)), path_(std::move(path)), pid_(pid) {}
  UniqueFd fd_;
  std::string path_;
  pid_t pid_ = 0;
  std::vector<uint64_t> buf_;
};

}  // namespace cr::proc
