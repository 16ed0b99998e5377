#include "common/proc/maps.h"

#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>

#include "common/proc/parse.h"

namespace cr::proc {

namespace {
constexpr std::string_view kDeleted = " (deleted)";
}

uint64_t VmaInfo::pages() const { return size() / kProcPageSize; }

bool VmaInfo::is_file() const { return !path.empty() && path[0] == '/'; }

bool VmaInfo::is_anon() const { return inode == 0 && !is_file() && !is_special(); }

bool VmaInfo::is_vvar() const {
  return path.size() >= 6 && path.compare(0, 5, "[vvar") == 0 && path.back() == ']';
}

bool VmaInfo::is_shared_anon() const {
  if (!shared) return false;
  if (path == "/dev/zero" && deleted) return true;
  return path.size() > 13 && path.compare(0, 12, "[anon_shmem:") == 0 && path.back() == ']';
}

std::string vma_str(const VmaInfo& v) {
  char b[80];
  snprintf(b, sizeof b, "%" PRIx64 "-%" PRIx64 " %c%c%c%c", v.start, v.end,
           v.prot & PROT_READ ? 'r' : '-', v.prot & PROT_WRITE ? 'w' : '-',
           v.prot & PROT_EXEC ? 'x' : '-', v.shared ? 's' : 'p');
  return b;
}

Result<VmaInfo> parse_maps_line(std::string_view line, std::string_view source, int lineno) {
  auto err = [&](const char* what, std::string_view piece) {
    return parse_error(source, lineno, "%s %s", what, quote(piece).c_str());
  };
  VmaInfo v;
  std::string_view rest = line;
  // Take the next field ending at a single space (or end of line).
  auto field = [&](std::string_view& out) {
    size_t sp = rest.find(' ');
    out = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    return !out.empty();
  };
  std::string_view range, perms, off, dev, ino;
  if (!field(range)) return err("missing address range in", line);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos || !parse_int(range.substr(0, dash), v.start, 16) ||
      !parse_int(range.substr(dash + 1), v.end, 16))
    return err("bad address range", range);
  if (v.start >= v.end || v.start % kProcPageSize || v.end % kProcPageSize)
    return err("bad address range", range);
  if (!field(perms)) return err("missing permissions in", line);
  if (perms.size() != 4 || (perms[0] != 'r' && perms[0] != '-') || (perms[1] != 'w' && perms[1] != '-') ||
      (perms[2] != 'x' && perms[2] != '-') || (perms[3] != 's' && perms[3] != 'p'))
    return err("bad permissions", perms);
  v.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
           (perms[2] == 'x' ? PROT_EXEC : 0);
  v.shared = perms[3] == 's';
  if (!field(off)) return err("missing offset in", line);
  if (!parse_int(off, v.pgoff, 16)) return err("bad offset", off);
  if (!field(dev)) return err("missing device in", line);
  size_t colon = dev.find(':');
  if (colon == std::string_view::npos || !parse_int(dev.substr(0, colon), v.dev_major, 16) ||
      !parse_int(dev.substr(colon + 1), v.dev_minor, 16))
    return err("bad device", dev);
  if (!field(ino)) return err("missing inode in", line);
  if (!parse_int(ino, v.inode, 10)) return err("bad inode", ino);
  // The rest: padding then the name (may contain spaces), or nothing.
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (!rest.empty()) {
    if (rest.size() > kDeleted.size() && rest.ends_with(kDeleted) && rest.front() == '/') {
      v.deleted = true;
      rest.remove_suffix(kDeleted.size());
    }
    v.path.assign(rest);
  }
  return v;
}

Result<std::vector<VmaInfo>> parse_maps(std::string_view text, std::string_view source) {
  LineReader lr(text, source);
  TRY_STATUS(lr.complete());
  std::vector<VmaInfo> out;
  std::string_view line;
  while (lr.next(line)) {
    VmaInfo v = TRY(parse_maps_line(line, source, lr.lineno()));
    if (!out.empty() && v.start < out.back().end)
      return lr.error("mapping %s overlaps or precedes the one before (%s)", vma_str(v).c_str(),
                      vma_str(out.back()).c_str());
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<VmaInfo>> read_maps(pid_t pid) {
  std::string text = TRY(read_proc_file(pid, "maps"));
  return with_pid(parse_maps(text, proc_path(pid, "maps")), pid);
}

Result<std::optional<VdsoArea>> find_vdso_area(const std::vector<VmaInfo>& vmas) {
  std::optional<size_t> vi;
  for (size_t i = 0; i < vmas.size(); i++) {
    if (!vmas[i].is_vdso()) continue;
    if (vi) return make_error("two [vdso] mappings, at %s and %s", vma_str(vmas[*vi]).c_str(),
                              vma_str(vmas[i]).c_str());
    vi = i;
  }
  if (!vi) return std::optional<VdsoArea>();
  size_t first = *vi, last = *vi;
  while (first > 0 && vmas[first - 1].is_vvar() && vmas[first - 1].end == vmas[first].start) first--;
  while (last + 1 < vmas.size() && vmas[last + 1].is_vvar() && vmas[last].end == vmas[last + 1].start)
    last++;
  VdsoArea a;
  a.start = vmas[first].start;
  a.end = vmas[last].end;
  a.vdso_start = vmas[*vi].start;
  a.vdso_end = vmas[*vi].end;
  a.first = first;
  a.count = last - first + 1;
  return std::optional<VdsoArea>(a);
}

}  // namespace cr::proc
