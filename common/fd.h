// File descriptor ownership and full reads/writes.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>

#include "common/error.h"

namespace cr {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Read exactly len bytes (retrying short reads and EINTR). Returns the number
// read, which is less than len only at end of file.
Result<size_t> read_full(int fd, void* buf, size_t len);
Result<size_t> pread_full(int fd, void* buf, size_t len, uint64_t off);
Status write_full(int fd, const void* buf, size_t len);
Status pwrite_full(int fd, const void* buf, size_t len, uint64_t off);

// The data of a sparse file in [0, size), found with lseek SEEK_DATA and
// SEEK_HOLE: fn(off, len) for each run in order, the runs widened to whole
// pages (off page aligned; the last may reach past size up to its page).
// A tmpfs file counts its swapped-out pages as data, its holes not.
Status for_each_data_range(int fd, uint64_t size, const std::function<Status(uint64_t, uint64_t)>& fn);

// Read a whole small file (/proc files); limit guards against runaway sizes.
Result<std::string> read_file(const char* path, size_t limit = 64 << 20);

}  // namespace cr
