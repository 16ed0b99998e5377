// The stream form of an image set (-D -): a POSIX ustar archive holding the
// same files a directory would, so `tar t` lists it and `tar x` unpacks it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr {

// Encode a 512-byte ustar header for a regular file (mode 0600). Sizes past
// the 11-digit octal limit use the GNU base-256 form.
void tar_encode_header(const std::string& name, uint64_t size, char out[512]);

struct TarEntry {
  std::string name;
  uint64_t size;
};

// Decode one header block. Returns an entry, or an entry with empty name for
// an all-zero block (end of archive). `offset` is used in messages.
Result<TarEntry> tar_decode_header(const char block[512], uint64_t offset);

// Check that a name is a plain file name we would write: no '/', not "." or
// "..", no control characters, at most 99 bytes.
Status check_image_file_name(const std::string& name);

}  // namespace cr
