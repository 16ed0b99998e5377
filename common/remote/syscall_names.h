// x86-64 system call names and numbers, from the table generated at build
// time out of the kernel headers' asm/unistd_64.h ($(O)/gen/syscall_table.inc).
#pragma once

#include <optional>
#include <string_view>

namespace cr {

// "openat" -> 257; nullopt if unknown.
std::optional<long> syscall_number(std::string_view name);
// 257 -> "openat"; nullptr if the number has no name here.
const char* syscall_name(long nr);
// How many names the table holds (for tests).
size_t syscall_table_size();

}  // namespace cr
