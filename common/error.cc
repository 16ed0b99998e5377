#include "common/error.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace cr {

static std::string vformat(const char* fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  return buf;
}

std::string Error::str() const {
  std::string s;
  if (pid > 0) s += "pid " + std::to_string(pid) + ": ";
  s += message;
  if (err) {
    s += ": ";
    s += strerror(err);
  }
  if (!remedy.empty()) s += " (" + remedy + ")";
  return s;
}

Error make_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Error e{vformat(fmt, ap), 0, 0, {}};
  va_end(ap);
  return e;
}

Error make_errno(int err, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Error e{vformat(fmt, ap), err, 0, {}};
  va_end(ap);
  return e;
}

Error make_pid_error(pid_t pid, int err, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Error e{vformat(fmt, ap), err, pid, {}};
  va_end(ap);
  return e;
}

}  // namespace cr
