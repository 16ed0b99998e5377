// Shared helpers of the /proc parsers (common/proc/*): strict number
// parsing, line iteration with line numbers, and errors that name the file.
//
// Every parser takes the file's text and a `source` (the file name used in
// error messages, e.g. "/proc/812/maps"); the read_* wrappers read the real
// file and set Error::pid. Errors look like
//   "/proc/812/maps: line 7: bad address range '7f00-zz'"
#pragma once

#include <sys/types.h>

#include <charconv>
#include <cstdarg>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace cr::proc {

// x86-64 base page size; every VMA bound and pagemap entry is in these.
inline constexpr uint64_t kProcPageSize = 4096;

// "/proc/812/maps" for (812, "maps").
std::string proc_path(pid_t pid, std::string_view rel);

// Read /proc/PID/<rel> whole; the error names the file and carries pid.
Result<std::string> read_proc_file(pid_t pid, std::string_view rel);

// An error about `source`, optionally at a line (line 0: no line).
Error parse_error(std::string_view source, int line, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
Error vparse_error(std::string_view source, int line, const char* fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

// Quote a piece of input for an error message: at most 40 bytes, control
// characters escaped.
std::string quote(std::string_view s);

// Strict integer parsing: the whole of s must be digits of the base (a
// leading '-' only for signed T), nothing else, no overflow of T.
template <class T>
bool parse_int(std::string_view s, T& out, int base = 10) {
  static_assert(std::is_integral_v<T>);
  if (s.empty()) return false;
  if (s[0] == '+') return false;
  if constexpr (std::is_unsigned_v<T>) {
    if (s[0] == '-') return false;
  }
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  out = v;
  return true;
}

// Whitespace: space and tab (never newline; callers split lines first).
inline bool is_blank(char c) { return c == ' ' || c == '\t'; }
std::string_view trim(std::string_view s);
// Split on runs of spaces/tabs; empty pieces dropped.
std::vector<std::string_view> split_blank(std::string_view s);

// Iterate the lines of a text. Every line must end in '\n': complete()
// reports a final line without one as truncated (the file was cut short).
class LineReader {
 public:
  LineReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}
  // Call first: an error naming the last line if the text does not end in
  // '\n' (empty text is complete).
  Status complete() const;
  // Next line without its '\n'; false at the end.
  bool next(std::string_view& line);
  int lineno() const { return lineno_; }
  std::string_view source() const { return source_; }
  // An error at the current line.
  Error error(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));

 private:
  std::string_view text_;
  std::string_view source_;
  size_t pos_ = 0;
  int lineno_ = 0;
};

// "key:\tvalue" lines (status, smaps fields, fdinfo): split at the first
// ':'; value has leading blanks removed. Returns false if there is no ':'.
bool split_key_value(std::string_view line, std::string_view& key, std::string_view& value);

// Add pid to a wrapper's error.
template <class T>
Result<T> with_pid(Result<T> r, pid_t pid) {
  if (!r.ok()) {
    Error e = std::move(r).error();
    e.pid = pid;
    return e;
  }
  return r;
}

}  // namespace cr::proc
