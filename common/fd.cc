#include "common/fd.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace cr {

Result<size_t> read_full(int fd, void* buf, size_t len) {
  size_t done = 0;
  auto* p = static_cast<char*>(buf);
  while (done < len) {
    ssize_t r = ::read(fd, p + done, len - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return make_errno(errno, "read");
    }
    if (r == 0) break;
    done += r;
  }
  return done;
}

Result<size_t> pread_full(int fd, void* buf, size_t len, uint64_t off) {
  size_t done = 0;
  auto* p = static_cast<char*>(buf);
  while (done < len) {
    ssize_t r = ::pread(fd, p + done, len - done, off + done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return make_errno(errno, "read");
    }
    if (r == 0) break;
    done += r;
  }
  return done;
}

Status write_full(int fd, const void* buf, size_t len) {
  auto* p = static_cast<const char*>(buf);
  while (len) {
    ssize_t w = ::write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_errno(errno, "write");
    }
    p += w;
    len -= w;
  }
  return ok_status();
}

Status pwrite_full(int fd, const void* buf, size_t len, uint64_t off) {
  auto* p = static_cast<const char*>(buf);
  while (len) {
    ssize_t w = ::pwrite(fd, p, len, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_errno(errno, "write");
    }
    p += w;
    len -= w;
    off += w;
  }
  return ok_status();
}

Status for_each_data_range(int fd, uint64_t size, const std::function<Status(uint64_t, uint64_t)>& fn) {
  constexpr uint64_t kPage = 4096;
  const uint64_t limit = (size + kPage - 1) / kPage * kPage;
  uint64_t next = 0;  // everything below was handed out
  while (next < size) {
    off_t d = lseek(fd, static_cast<off_t>(next), SEEK_DATA);
    if (d < 0 && errno == ENXIO) break;  // only a hole from here to the end
    if (d < 0) return make_errno(errno, "lseek SEEK_DATA at %llu", (unsigned long long)next);
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) return make_errno(errno, "lseek SEEK_HOLE at %llu", (unsigned long long)d);
    uint64_t start = std::max<uint64_t>(static_cast<uint64_t>(d) / kPage * kPage, next);
    uint64_t end = std::min<uint64_t>((static_cast<uint64_t>(h) + kPage - 1) / kPage * kPage, limit);
    if (start >= limit) break;
    if (end > start) TRY_STATUS(fn(start, end - start));
    if (static_cast<uint64_t>(h) <= next) break;  // (a file that shrank meanwhile)
    next = std::max(end, start + kPage);
  }
  return ok_status();
}

Result<std::string> read_file(const char* path, size_t limit) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_errno(errno, "cannot open %s", path);
  std::string s;
  char buf[16384];
  while (true) {
    ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      return make_errno(errno, "cannot read %s", path);
    }
    if (r == 0) break;
    s.append(buf, r);
    if (s.size() > limit) return make_error("%s is larger than %zu bytes", path, limit);
  }
  return s;
}

}  // namespace cr
