#include "common/proc/fdinfo.h"

#include "common/proc/dir.h"
#include "common/proc/parse.h"

namespace cr::proc {

const std::string* FdInfo::find(std::string_view key) const {
  for (const auto& [k, v] : extra)
    if (k == key) return &v;
  return nullptr;
}

std::vector<std::string> FdInfo::find_all(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : extra)
    if (k == key) out.push_back(v);
  return out;
}

Result<FdInfo> parse_fdinfo(std::string_view text, std::string_view source) {
  LineReader lr(text, source);
  TRY_STATUS(lr.complete());
  FdInfo fi;
  bool have_pos = false, have_flags = false, have_mnt = false, have_ino = false;
  std::string_view line;
  auto known = [&](std::string_view line, std::string_view key, bool& have, auto&& parse) -> Result<bool> {
    if (!line.starts_with(key) || line.size() <= key.size() || line[key.size()] != ':') return false;
    if (have) return lr.error("repeated %.*s line", int(key.size()), key.data());
    std::string_view v = trim(line.substr(key.size() + 1));
    if (!parse(v)) return lr.error("%.*s: bad value %s", int(key.size()), key.data(), quote(v).c_str());
    have = true;
    return true;
  };
  while (lr.next(line)) {
    if (TRY(known(line, "pos", have_pos, [&](std::string_view v) { return parse_int(v, fi.pos); })))
      continue;
    if (TRY(known(line, "flags", have_flags, [&](std::string_view v) { return parse_int(v, fi.flags, 8); })))
      continue;
    if (TRY(known(line, "mnt_id", have_mnt, [&](std::string_view v) { return parse_int(v, fi.mnt_id); })))
      continue;
    if (TRY(known(line, "ino", have_ino, [&](std::string_view v) { return parse_int(v, fi.ino); })))
      continue;
    std::string_view l = line;
    while (!l.empty() && is_blank(l.front())) l.remove_prefix(1);
    if (l.empty()) return lr.error("empty line");
    size_t cut = 0;
    while (cut < l.size() && l[cut] != ':' && !is_blank(l[cut])) cut++;
    std::string_view key = l.substr(0, cut);
    std::string_view value = cut < l.size() ? l.substr(cut + 1) : std::string_view();
    while (!value.empty() && is_blank(value.front())) value.remove_prefix(1);
    if (key.empty()) return lr.error("bad line %s", quote(line).c_str());
    fi.extra.emplace_back(std::string(key), std::string(value));
  }
  if (!have_pos) return parse_error(source, 0, "no pos line");
  if (!have_flags) return parse_error(source, 0, "no flags line");
  if (!have_mnt) return parse_error(source, 0, "no mnt_id line");
  if (!have_ino) return parse_error(source, 0, "no ino line");
  return fi;
}

Result<FdInfo> read_fdinfo(pid_t pid, int fd) {
  std::string rel = "fdinfo/" + std::to_string(fd);
  std::string text = TRY(read_proc_file(pid, rel));
  return with_pid(parse_fdinfo(text, proc_path(pid, rel)), pid);
}

Result<std::vector<int>> list_fds(pid_t pid) {
  auto ids = TRY(with_pid(list_numeric_dir(proc_path(pid, "fd")), pid));
  return std::vector<int>(ids.begin(), ids.end());
}

}  // namespace cr::proc
