// CRC-32C (Castagnoli), the checksum of every image file. Uses the SSE4.2
// crc32 instruction when the CPU has it, a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cr {

// Continue a CRC over more bytes: crc32c(crc32c(0, a), b) == crc32c(0, a+b).
uint32_t crc32c(uint32_t crc, const void* data, size_t len);
// The CRC of a+b from crc(a), crc(b) and the length of b.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

}  // namespace cr
