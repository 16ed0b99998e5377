#include "common/proc/misc.h"

#include <elf.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/proc/dir.h"
#include "common/proc/parse.h"

namespace cr::proc {

// ---------------------------------------------------------------- links

LinkTarget parse_link_text(std::string_view text) {
  constexpr std::string_view kDeleted = " (deleted)";
  LinkTarget t;
  if (!text.empty() && text[0] == '/' && text.size() > kDeleted.size() && text.ends_with(kDeleted)) {
    text.remove_suffix(kDeleted.size());
    t.deleted = true;
  }
  t.path.assign(text);
  return t;
}

Result<LinkTarget> read_link(const std::string& path) {
  std::string buf(256, '\0');
  while (true) {
    ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) return make_errno(errno, "cannot read link %s", path.c_str());
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(n);
      return parse_link_text(buf);
    }
    if (buf.size() >= (1u << 20)) return make_error("link %s is too long", path.c_str());
    buf.resize(buf.size() * 2);
  }
}

Result<LinkTarget> read_exe(pid_t pid) { return with_pid(read_link(proc_path(pid, "exe")), pid); }
Result<LinkTarget> read_cwd(pid_t pid) { return with_pid(read_link(proc_path(pid, "cwd")), pid); }
Result<LinkTarget> read_root(pid_t pid) { return with_pid(read_link(proc_path(pid, "root")), pid); }
Result<LinkTarget> read_fd_link(pid_t pid, int fd) {
  return with_pid(read_link(proc_path(pid, "fd/" + std::to_string(fd))), pid);
}

// ---------------------------------------------------------------- auxv

Result<std::vector<AuxvEntry>> parse_auxv(std::string_view bytes, std::string_view source) {
  std::vector<AuxvEntry> out;
  if (bytes.empty()) return out;
  if (bytes.size() % 16)
    return parse_error(source, 0, "size %zu is not a multiple of 16 bytes", bytes.size());
  for (size_t off = 0; off < bytes.size(); off += 16) {
    uint64_t t, v;
    memcpy(&t, bytes.data() + off, 8);
    memcpy(&v, bytes.data() + off + 8, 8);
    if (t == AT_NULL) {
      if (off + 16 != bytes.size())
        return parse_error(source, 0, "data after AT_NULL at offset %zu", off);
      return out;
    }
    out.emplace_back(t, v);
  }
  return parse_error(source, 0, "no AT_NULL entry at the end");
}

Result<std::vector<AuxvEntry>> read_auxv(pid_t pid) {
  std::string bytes = TRY(read_proc_file(pid, "auxv"));
  return with_pid(parse_auxv(bytes, proc_path(pid, "auxv")), pid);
}

// ---------------------------------------------------------------- personality

Result<uint32_t> parse_personality(std::string_view text, std::string_view source) {
  if (text.empty() || text.back() != '\n')
    return parse_error(source, 0, "truncated (no newline at end) %s", quote(text).c_str());
  text.remove_suffix(1);
  uint32_t p = 0;
  if (text.size() != 8 || !parse_int(text, p, 16)) return parse_error(source, 0, "bad value %s", quote(text).c_str());
  return p;
}

Result<uint32_t> read_personality(pid_t pid) {
  std::string text = TRY(read_proc_file(pid, "personality"));
  return with_pid(parse_personality(text, proc_path(pid, "personality")), pid);
}

// ---------------------------------------------------------------- tasks

Result<std::vector<pid_t>> list_tasks(pid_t pid) {
  auto ids = TRY(with_pid(list_numeric_dir(proc_path(pid, "task")), pid));
  if (ids.empty()) return make_pid_error(pid, 0, "%s is empty", proc_path(pid, "task").c_str());
  return std::vector<pid_t>(ids.begin(), ids.end());
}

Result<std::vector<pid_t>> parse_children(std::string_view text, std::string_view source) {
  std::vector<pid_t> out;
  if (text.find('\n') != std::string_view::npos)
    return parse_error(source, 0, "unexpected newline in %s", quote(text).c_str());
  // "1 2 3 ": numbers each followed by one space.
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) return parse_error(source, 0, "truncated list %s", quote(text).c_str());
    pid_t p = 0;
    if (!parse_int(rest.substr(0, sp), p) || p <= 0)
      return parse_error(source, 0, "bad pid %s", quote(rest.substr(0, sp)).c_str());
    out.push_back(p);
    rest.remove_prefix(sp + 1);
  }
  return out;
}

Result<std::vector<pid_t>> read_children(pid_t pid, pid_t tid) {
  std::string rel = "task/" + std::to_string(tid) + "/children";
  std::string text = TRY(read_proc_file(pid, rel));
  return with_pid(parse_children(text, proc_path(pid, rel)), pid);
}

// ---------------------------------------------------------------- timers

int PosixTimer::sigev_notify() const { return notify | (thread_id ? SIGEV_THREAD_ID : 0); }

Result<std::vector<PosixTimer>> parse_timers(std::string_view text, std::string_view source) {
  LineReader lr(text, source);
  TRY_STATUS(lr.complete());
  std::vector<PosixTimer> out;
  std::string_view line;
  auto expect = [&](std::string_view key, std::string_view& value) -> Status {
    if (!lr.next(line)) return parse_error(source, lr.lineno() + 1, "missing '%.*s:' line (record cut short)",
                                           int(key.size()), key.data());
    std::string_view k;
    if (!split_key_value(line, k, value) || k != key)
      return lr.error("expected '%.*s:', got %s", int(key.size()), key.data(), quote(line).c_str());
    return ok_status();
  };
  while (true) {
    std::string_view v;
    PosixTimer t;
    if (!lr.next(line)) break;
    std::string_view k;
    if (!split_key_value(line, k, v) || k != "ID") return lr.error("expected 'ID:', got %s", quote(line).c_str());
    if (!parse_int(v, t.id) || t.id < 0) return lr.error("ID: bad value %s", quote(v).c_str());

    TRY_STATUS(expect("signal", v));  // "34/00000000deadbeef"
    size_t slash = v.find('/');
    if (slash == std::string_view::npos || !parse_int(v.substr(0, slash), t.signo) || t.signo < 0 ||
        t.signo > 64 || !parse_int(v.substr(slash + 1), t.sigev_value, 16))
      return lr.error("signal: bad value %s", quote(v).c_str());

    TRY_STATUS(expect("notify", v));  // "signal/tid.8302"
    slash = v.find('/');
    size_t dot = v.find('.', slash == std::string_view::npos ? 0 : slash);
    if (slash == std::string_view::npos || dot == std::string_view::npos)
      return lr.error("notify: bad value %s", quote(v).c_str());
    std::string_view how = v.substr(0, slash), who = v.substr(slash + 1, dot - slash - 1);
    if (how == "signal")
      t.notify = SIGEV_SIGNAL;
    else if (how == "none")
      t.notify = SIGEV_NONE;
    else if (how == "thread")
      t.notify = SIGEV_THREAD;
    else
      return lr.error("notify: unknown kind %s", quote(how).c_str());
    if (who == "tid")
      t.thread_id = true;
    else if (who != "pid")
      return lr.error("notify: expected pid or tid, got %s", quote(who).c_str());
    if (!parse_int(v.substr(dot + 1), t.notify_pid) || t.notify_pid < 0)
      return lr.error("notify: bad pid %s", quote(v.substr(dot + 1)).c_str());

    TRY_STATUS(expect("ClockID", v));
    if (!parse_int(v, t.clock_id)) return lr.error("ClockID: bad value %s", quote(v).c_str());
    out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const PosixTimer& a, const PosixTimer& b) { return a.id < b.id; });
  for (size_t i = 1; i < out.size(); i++)
    if (out[i].id == out[i - 1].id) return parse_error(source, 0, "timer ID %d listed twice", out[i].id);
  return out;
}

Result<std::vector<PosixTimer>> read_timers(pid_t pid) {
  std::string text = TRY(read_proc_file(pid, "timers"));
  return with_pid(parse_timers(text, proc_path(pid, "timers")), pid);
}

}  // namespace cr::proc
