#include "common/fault.h"
#include "common/proc/parse.h"

#include <cstdio>

#include "common/fd.h"

namespace cr::proc {

std::string proc_path(pid_t pid, std::string_view rel) {
  std::string p = "/proc/" + std::to_string(pid);
  p += '/';
  p += rel;
  return p;
}

Result<std::string> read_proc_file(pid_t pid, std::string_view rel) {
  TRY_STATUS(fault_point("/proc read"));
  std::string path = proc_path(pid, rel);
  auto r = read_file(path.c_str());
  if (!r.ok()) {
    Error e = std::move(r).error();
    e.pid = pid;
    return e;
  }
  return r;
}

Error vparse_error(std::string_view source, int line, const char* fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  std::string m(source);
  if (line > 0) m += ": line " + std::to_string(line);
  m += ": ";
  m += buf;
  return Error{std::move(m), 0, 0, {}};
}

Error parse_error(std::string_view source, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Error e = vparse_error(source, line, fmt, ap);
  va_end(ap);
  return e;
}

Error LineReader::error(const char* fmt, ...) const {
  va_list ap;
  va_start(ap, fmt);
  Error e = vparse_error(source_, lineno_, fmt, ap);
  va_end(ap);
  return e;
}

std::string quote(std::string_view s) {
  std::string out = "'";
  size_t n = 0;
  for (char c : s) {
    if (n++ == 40) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char b[8];
      snprintf(b, sizeof b, "\\x%02x", u);
      out += b;
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_blank(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_blank(s[i])) i++;
    size_t j = i;
    while (j < s.size() && !is_blank(s[j])) j++;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

Status LineReader::complete() const {
  if (text_.empty() || text_.back() == '\n') return ok_status();
  int lines = 1;
  for (char c : text_) lines += c == '\n';
  return parse_error(source_, lines, "truncated line (no newline at end of file)");
}

bool LineReader::next(std::string_view& line) {
  if (pos_ >= text_.size()) return false;
  lineno_++;
  size_t nl = text_.find('\n', pos_);
  if (nl == std::string_view::npos) nl = text_.size();
  line = text_.substr(pos_, nl - pos_);
  pos_ = nl + 1;
  return true;
}

bool split_key_value(std::string_view line, std::string_view& key, std::string_view& value) {
  size_t c = line.find(':');
  if (c == std::string_view::npos) return false;
  key = line.substr(0, c);
  value = line.substr(c + 1);
  while (!value.empty() && is_blank(value.front())) value.remove_prefix(1);
  return true;
}

}  // namespace cr::proc
