// Small string helpers shared across crtools.
#pragma once

#include <string>

namespace cr {

// printf into a std::string (at most 1 KiB).
std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace cr
