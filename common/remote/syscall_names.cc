#include "common/remote/syscall_names.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace cr {

namespace {

struct Entry {
  const char* name;
  long nr;
};

constexpr Entry kTable[] = {
#include "syscall_table.inc"
};

}  // namespace

std::optional<long> syscall_number(std::string_view name) {
  for (const auto& e : kTable)
    if (name == e.name) return e.nr;
  return std::nullopt;
}

const char* syscall_name(long nr) {
  for (const auto& e : kTable)
    if (e.nr == nr) return e.name;
  return nullptr;
}

size_t syscall_table_size() { return std::size(kTable); }

}  // namespace cr
