#include "common/image/tar.h"

#include <cstdio>
#include <cstring>

#include "common/crc32c.h"

namespace cr {

namespace {
constexpr uint64_t kMaxMemberSize = 1ull << 42;  // 4 TiB: beyond any sane image

void put_octal(char* field, size_t width, uint64_t v) {
  // width includes the terminating NUL
  snprintf(field, width, "%0*llo", (int)(width - 1), (unsigned long long)v);
}
}  // namespace

Status check_image_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 99)
    return make_error("'%s' is not a valid image file name", name.c_str());
  for (unsigned char c : name)
    if (c == '/' || c < 0x20 || c == 0x7f)
      return make_error("'%s' is not a valid image file name", name.c_str());
  return ok_status();
}

void tar_encode_header(const std::string& name, uint64_t size, char out[512]) {
  memset(out, 0, 512);
  memcpy(out, name.data(), std::min<size_t>(name.size(), 99));
  put_octal(out + 100, 8, 0600);  // mode
  put_octal(out + 108, 8, 0);     // uid
  put_octal(out + 116, 8, 0);     // gid
  if (size < (1ull << 33)) {
    put_octal(out + 124, 12, size);
  } else {
    // GNU base-256: first byte 0x80, big-endian value in the rest.
    unsigned char* f = reinterpret_cast<unsigned char*>(out + 124);
    f[0] = 0x80;
    for (int i = 11; i >= 1; i--) {
      f[i] = size & 0xff;
      size >>= 8;
    }
  }
  put_octal(out + 136, 12, 0);  // mtime: fixed, so streams are reproducible
  out[156] = '0';               // regular file
  memcpy(out + 257, "ustar", 6);
  memcpy(out + 263, "00", 2);
  memcpy(out + 265, "root", 4);
  memcpy(out + 297, "root", 4);
  memset(out + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++) sum += (unsigned char)out[i];
  snprintf(out + 148, 8, "%06o", sum);
  out[155] = ' ';
}

Result<TarEntry> tar_decode_header(const char block[512], uint64_t offset) {
  bool zero = true;
  for (int i = 0; i < 512 && zero; i++) zero = block[i] == 0;
  if (zero) return TarEntry{"", 0};
  unsigned long long off = offset;

  // Checksum: sum of all bytes with the checksum field taken as spaces.
  unsigned sum = 0;
  for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)block[i];
  char ck[9] = {};
  memcpy(ck, block + 148, 8);
  unsigned stored = 0;
  bool digits = false;
  for (char c : ck) {
    if (c >= '0' && c <= '7') {
      stored = stored * 8 + (c - '0');
      digits = true;
    } else if (c == ' ' || c == 0) {
      if (digits) break;
    } else {
      return make_error("stream: offset %llu: bad tar header checksum field", off + 148);
    }
  }
  if (!digits || !checksum_matches(sum, stored))
    return make_error("stream: offset %llu: tar header checksum mismatch", off + 148);
  if (memcmp(block + 257, "ustar", 5) != 0)
    return make_error("stream: offset %llu: not a ustar archive member", off + 257);
  char type = block[156];
  if (type != '0' && type != 0)
    return make_error("stream: offset %llu: unsupported tar member type '%c'", off + 156, type);
  if (block[345] != 0)
    return make_error("stream: offset %llu: tar name prefix is not supported", off + 345);

  TarEntry e;
  size_t nlen = strnlen(block, 100);
  if (nlen == 100) return make_error("stream: offset %llu: tar member name is too long", off);
  e.name.assign(block, nlen);
  auto st = check_image_file_name(e.name);
  if (!st) return make_error("stream: offset %llu: %s", off, st.error().message.c_str());

  const unsigned char* f = reinterpret_cast<const unsigned char*>(block + 124);
  uint64_t size = 0;
  if (f[0] & 0x80) {
    if (f[0] != 0x80) return make_error("stream: offset %llu: bad tar size", off + 124);
    for (int i = 1; i < 12; i++) {
      if (size >> 56) return make_error("stream: offset %llu: bad tar size", off + 124);
      size = (size << 8) | f[i];
    }
  } else {
    bool any = false;
    int i = 0;
    while (i < 12 && f[i] == ' ') i++;
    for (; i < 12; i++) {
      char c = f[i];
      if (c >= '0' && c <= '7') {
        size = size * 8 + (c - '0');
        any = true;
      } else if (c == 0 || c == ' ') {
        break;
      } else {
        return make_error("stream: offset %llu: bad tar size", off + 124);
      }
    }
    if (!any) return make_error("stream: offset %llu: bad tar size", off + 124);
  }
  if (size > kMaxMemberSize)
    return make_error("stream: offset %llu: tar member of %llu bytes is too large", off + 124,
                      (unsigned long long)size);
  e.size = size;
  return e;
}

}  // namespace cr
