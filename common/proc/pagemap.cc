#include "common/proc/pagemap.h"

#include <fcntl.h>

#include <cinttypes>

#include "common/proc/parse.h"

namespace cr::proc {

void append_dump_runs(uint64_t start, std::span<const uint64_t> entries, std::vector<PageRun>& runs) {
  size_t i = 0, n = entries.size();
  while (i < n) {
    while (i < n && !pm_must_dump(entries[i])) i++;
    if (i == n) break;
    size_t j = i + 1;
    while (j < n && pm_must_dump(entries[j])) j++;
    uint64_t s = start + i * kProcPageSize, e = start + j * kProcPageSize;
    if (!runs.empty() && runs.back().end == s)
      runs.back().end = e;
    else
      runs.push_back({s, e});
    i = j;
  }
}

namespace {
void add_page(std::vector<PageRun>& runs, uint64_t a) {
  if (!runs.empty() && runs.back().end == a)
    runs.back().end = a + kProcPageSize;
  else
    runs.push_back({a, a + kProcPageSize});
}
}  // namespace

void append_cow_runs(uint64_t start, std::span<const uint64_t> child, std::span<const uint64_t> parent,
                     std::vector<PageRun>& own, std::vector<PageRun>& same) {
  for (size_t i = 0; i < child.size(); i++) {
    if (!pm_must_dump(child[i])) continue;
    uint64_t a = start + i * kProcPageSize;
    add_page(i < parent.size() && pm_same_page(child[i], parent[i]) ? same : own, a);
  }
}

uint64_t run_pages(const std::vector<PageRun>& runs) {
  uint64_t n = 0;
  for (const auto& r : runs) n += r.pages();
  return n;
}

Result<Pagemap> Pagemap::open(pid_t pid) {
  std::string path = proc_path(pid, "pagemap");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_pid_error(pid, errno, "cannot open %s", path.c_str());
  return Pagemap(std::move(fd), std::move(path), pid);
}

Status Pagemap::read(uint64_t start, std::span<uint64_t> out) {
  if (start % kProcPageSize)
    return make_pid_error(pid_, 0, "%s: address %#" PRIx64 " is not page aligned", path_.c_str(), start);
  uint64_t off = start / kProcPageSize * sizeof(uint64_t);
  size_t len = out.size_bytes();
  auto r = pread_full(fd_.get(), out.data(), len, off);
  if (!r.ok())
    return make_pid_error(pid_, r.error().err, "%s: cannot read entries at %#" PRIx64, path_.c_str(), start);
  if (*r != len)
    return make_pid_error(pid_, 0, "%s: short read at %#" PRIx64 " (%zu of %zu bytes)", path_.c_str(), start, *r,
                          len);
  return ok_status();
}

Result<std::vector<PageRun>> Pagemap::dump_runs(uint64_t start, uint64_t end) {
  if (start % kProcPageSize || end % kProcPageSize || end < start)
    return make_pid_error(pid_, 0, "%s: bad range %#" PRIx64 "-%#" PRIx64, path_.c_str(), start, end);
  std::vector<PageRun> runs;
  uint64_t total = (end - start) / kProcPageSize;
  if (buf_.size() < std::min<uint64_t>(total, kBatchPages)) buf_.resize(std::min<uint64_t>(total, kBatchPages));
  for (uint64_t done = 0; done < total;) {
    size_t n = std::min<uint64_t>(total - done, kBatchPages);
    uint64_t addr = start + done * kProcPageSize;
    TRY_STATUS(read(addr, std::span<uint64_t>(buf_.data(), n)));
    append_dump_runs(addr, std::span<const uint64_t>(buf_.data(), n), runs);
    done += n;
  }
  return runs;
}

Status Pagemap::cow_runs(Pagemap& parent, uint64_t start, uint64_t end, std::vector<PageRun>& own,
                        std::vector<PageRun>& same) {
  if (start % kProcPageSize || end % kProcPageSize || end < start)
    return make_pid_error(pid_, 0, "%s: bad range %#" PRIx64 "-%#" PRIx64, path_.c_str(), start, end);
  uint64_t total = (end - start) / kProcPageSize;
  std::vector<uint64_t> pbuf(std::min<uint64_t>(total, kBatchPages));
  if (buf_.size() < pbuf.size()) buf_.resize(pbuf.size());
  for (uint64_t done = 0; done < total;) {
    size_t n = std::min<uint64_t>(total - done, kBatchPages);
    uint64_t addr = start + done * kProcPageSize;
    TRY_STATUS(read(addr, std::span<uint64_t>(buf_.data(), n)));
    TRY_STATUS(parent.read(addr, std::span<uint64_t>(pbuf.data(), n)));
    append_cow_runs(addr, std::span<const uint64_t>(buf_.data(), n), std::span<const uint64_t>(pbuf.data(), n), own,
                    same);
    done += n;
  }
  return ok_status();
}

Result<std::vector<PageRun>> Pagemap::dump_runs(const VmaInfo& vma) {
  if (vma.shared)
    return make_pid_error(pid_, 0, "%s: mapping %s is shared; its pages are not dumped per mapping", path_.c_str(),
                          vma_str(vma).c_str());
  if (vma.is_vsyscall())
    return make_pid_error(pid_, 0, "%s: mapping %s is the vsyscall page", path_.c_str(), vma_str(vma).c_str());
  return dump_runs(vma.start, vma.end);
}

}  // namespace cr::proc
