#include "common/strings.h"

#include <cstdarg>
#include <cstdio>

namespace cr {

std::string strprintf(const char* fmt, ...) {
  char b[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  return b;
}

}  // namespace cr
