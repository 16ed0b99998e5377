#include "common/fault.h"
#include "common/image/image_set.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/crc32c.h"
#include "common/image/tar.h"
#include "common/log.h"

namespace cr {

namespace {

constexpr const char* kPartSuffix = ".part";

bool ends_with(const std::string& s, const char* suf) {
  size_t n = strlen(suf);
  return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
}

Result<UniqueFd> make_spool_file() {
  std::string dir = spool_dir();
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return make_errno(errno, "cannot create a spool file in %s", dir.c_str());
  return UniqueFd(fd);
}

}  // namespace

std::string spool_dir() {
  const char* t = getenv("TMPDIR");
  if (t && *t) return t;
  return "/var/tmp";
}

// ---------------------------------------------------------------- writer

ImageWriter::~ImageWriter() {
  if (!closed_ && set_ && !set_->stream_ && set_->dir_.valid()) {
    std::string part = "." + name_ + kPartSuffix;
    unlinkat(set_->dir_.get(), part.c_str(), 0);
  }
}

Status ImageWriter::write(const void* data, size_t len, const uint32_t* known_crc) {
  if (closed_) return make_error("%s: write after close", name_.c_str());
  TRY_STATUS(fault_point("image write"));
  uint64_t off = sizeof(ImageHeader) + len_;
  auto st = pwrite_full(fd_.get(), data, len, off);
  if (!st)
    return make_errno(st.error().err, "%s: offset %llu: cannot write image", name_.c_str(),
                      (unsigned long long)off);
  uint32_t c = known_crc ? *known_crc : crc32c(0, data, len);
  crc_ = crc32c_combine(crc_, c, len);
  len_ += len;
  return ok_status();
}

Status ImageWriter::close() {
  if (closed_) return ok_status();
  TRY_STATUS(fault_point("image close"));
  ImageHeader h = make_header(kind_, len_, crc_);
  auto st = pwrite_full(fd_.get(), &h, sizeof h, 0);
  if (!st) return make_errno(st.error().err, "%s: offset 0: cannot write image header", name_.c_str());
  TRY_STATUS(set_->commit_file(*this));
  closed_ = true;
  return ok_status();
}

// ---------------------------------------------------------------- set

// A set opened for writing and never finished was a failed dump: remove what
// it wrote (and the directory, if it made it), so no partial set is left.
ImageSet::~ImageSet() {
  if (!writing_ || finished_ || stream_ || !dir_.valid()) return;
  for (const auto& n : written_) unlinkat(dir_.get(), n.c_str(), 0);
  if (created_dir_) rmdir(where_.c_str());
}

Result<std::unique_ptr<ImageSet>> ImageSet::open_write(const std::string& where, bool overwrite,
                                                       int stream_fd) {
  TRY_STATUS(fault_point("image set open"));
  std::unique_ptr<ImageSet> s(new ImageSet());
  s->where_ = where;
  s->writing_ = true;
  if (where == "-") {
    s->stream_ = true;
    s->out_fd_ = stream_fd;
    if (isatty(stream_fd))
      return make_error("refusing to write an image stream to a terminal; redirect stdout or use -D DIR");
    return s;
  }
  if (mkdir(where.c_str(), 0700) == 0) s->created_dir_ = true;
  else if (errno != EEXIST) return make_errno(errno, "cannot create image directory %s", where.c_str());
  int fd = ::open(where.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_errno(errno, "cannot open image directory %s", where.c_str());
  s->dir_.reset(fd);

  // An existing set is replaced only when asked; its files go first so that
  // a half-written new set never mixes with an old one.
  std::vector<std::string> old;
  int dfd = dup(fd);
  if (dfd < 0) return make_errno(errno, "%s", where.c_str());
  DIR* d = fdopendir(dfd);
  if (!d) {
    ::close(dfd);
    return make_errno(errno, "cannot list %s", where.c_str());
  }
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (ends_with(n, ".img") || (n[0] == '.' && ends_with(n, kPartSuffix))) old.push_back(n);
  }
  closedir(d);
  bool has_set = false;
  for (auto& n : old) has_set |= n[0] != '.';
  if (has_set && !overwrite)
    return make_error("%s already holds an image set; use --overwrite to replace it", where.c_str());
  for (auto& n : old)
    if (unlinkat(fd, n.c_str(), 0) < 0)
      return make_errno(errno, "cannot remove old image %s/%s", where.c_str(), n.c_str());
  return s;
}

Result<std::unique_ptr<ImageSet>> ImageSet::open_read(const std::string& where, int in) {
  TRY_STATUS(fault_point("image set open"));
  std::unique_ptr<ImageSet> s(new ImageSet());
  s->where_ = where;
  if (where != "-") {
    int fd = ::open(where.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_errno(errno, "cannot open image directory %s", where.c_str());
    s->dir_.reset(fd);
    return s;
  }
  // Stream: spool every member into an unnamed temporary file.
  s->stream_ = true;
  if (isatty(in)) return make_error("refusing to read an image stream from a terminal; use -D DIR");
  uint64_t off = 0;
  char block[512];
  std::vector<char> buf(1 << 20);
  bool ended = false;
  while (true) {
    auto n = TRY(read_full(in, block, sizeof block));
    if (n == 0 && off == 0) return make_error("stream: empty input, no image set");
    if (n != sizeof block)
      return make_error("stream: offset %llu: truncated (no end-of-archive marker)",
                        (unsigned long long)(off + n));
    auto ent = TRY(tar_decode_header(block, off));
    off += 512;
    if (ent.name.empty()) {
      ended = true;
      break;
    }
    if (s->members_.count(ent.name))
      return make_error("stream: offset %llu: duplicate member %s", (unsigned long long)(off - 512),
                        ent.name.c_str());
    auto spool = TRY(make_spool_file());
    uint64_t left = ent.size;
    uint64_t woff = 0;
    while (left) {
      size_t chunk = std::min<uint64_t>(left, buf.size());
      auto r = TRY(read_full(in, buf.data(), chunk));
      if (r != chunk)
        return make_error("stream: offset %llu: truncated inside %s", (unsigned long long)(off + r),
                          ent.name.c_str());
      auto st = pwrite_full(spool.get(), buf.data(), chunk, woff);
      if (!st) return make_errno(st.error().err, "cannot spool %s to %s", ent.name.c_str(), spool_dir().c_str());
      left -= chunk;
      woff += chunk;
      off += chunk;
    }
    uint64_t pad = (512 - ent.size % 512) % 512;
    if (pad) {
      auto r = TRY(read_full(in, block, pad));
      if (r != pad)
        return make_error("stream: offset %llu: truncated padding after %s", (unsigned long long)(off + r),
                          ent.name.c_str());
      off += pad;
    }
    s->members_[ent.name] = std::make_shared<UniqueFd>(std::move(spool));
  }
  if (!ended) return make_error("stream: truncated");
  // The second end block is optional in practice; read it if present.
  return s;
}

Result<std::unique_ptr<ImageSet>> ImageSet::open_append(const std::string& dir) {
  if (dir == "-") return make_error("cannot add files to an image stream");
  std::unique_ptr<ImageSet> s(new ImageSet());
  s->where_ = dir;
  s->writing_ = true;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_errno(errno, "cannot open image directory %s", dir.c_str());
  s->dir_.reset(fd);
  return s;
}

Result<std::unique_ptr<ImageSet>> ImageSet::open_single(const std::string& path) {
  std::unique_ptr<ImageSet> s(new ImageSet());
  s->where_ = path;
  s->stream_ = true;
  UniqueFd fd;
  std::string name;
  if (path == "-") {
    auto spool = TRY(make_spool_file());
    std::vector<char> buf(1 << 20);
    uint64_t off = 0;
    while (true) {
      auto r = TRY(read_full(0, buf.data(), buf.size()));
      if (r == 0) break;
      TRY_STATUS(pwrite_full(spool.get(), buf.data(), r, off));
      off += r;
    }
    fd = std::move(spool);
    name = "stdin";
  } else {
    int f = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f < 0) return make_errno(errno, "cannot open %s", path.c_str());
    fd.reset(f);
    struct stat st;
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) return make_error("%s is not a regular file", path.c_str());
    size_t slash = path.rfind('/');
    name = slash == std::string::npos ? path : path.substr(slash + 1);
  }
  s->members_[name] = std::make_shared<UniqueFd>(std::move(fd));
  return s;
}

Result<std::unique_ptr<ImageWriter>> ImageSet::create(const std::string& name, ImageKind kind) {
  if (!writing_ || finished_) return make_error("%s: image set is not open for writing", name.c_str());
  TRY_STATUS(check_image_file_name(name));
  UniqueFd fd;
  if (stream_) {
    fd = TRY(make_spool_file());
  } else {
    std::string part = "." + name + kPartSuffix;
    unlinkat(dir_.get(), part.c_str(), 0);
    int f = openat(dir_.get(), part.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f < 0) return make_errno(errno, "cannot create %s/%s", where_.c_str(), name.c_str());
    fd.reset(f);
  }
  return std::unique_ptr<ImageWriter>(new ImageWriter(this, name, kind, std::move(fd)));
}

Status ImageSet::commit_file(ImageWriter& w) {
  uint64_t size = sizeof(ImageHeader) + w.len_;
  if (stream_) {
    TRY_STATUS(emit_tar_member(w.name_, w.fd_.get(), size));
  } else {
    std::string part = "." + w.name_ + kPartSuffix;
    if (renameat(dir_.get(), part.c_str(), dir_.get(), w.name_.c_str()) < 0)
      return make_errno(errno, "cannot rename %s into place", w.name_.c_str());
  }
  written_.push_back(w.name_);
  return ok_status();
}

Status ImageSet::emit_tar_member(const std::string& name, int fd, uint64_t size) {
  char hdr[512];
  tar_encode_header(name, size, hdr);
  auto st = write_full(out_fd_, hdr, sizeof hdr);
  if (!st) return make_errno(st.error().err, "stream: cannot write %s", name.c_str());
  off_t in_off = 0;
  uint64_t left = size;
  while (left) {
    ssize_t n = sendfile(out_fd_, fd, &in_off, std::min<uint64_t>(left, 1 << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_errno(errno, "stream: cannot write %s", name.c_str());
    }
    if (n == 0) return make_error("stream: %s shrank while being written", name.c_str());
    left -= n;
  }
  static const char zeros[512] = {};
  uint64_t pad = (512 - size % 512) % 512;
  st = write_full(out_fd_, zeros, pad);
  if (!st) return make_errno(st.error().err, "stream: cannot write %s", name.c_str());
  out_off_ += 512 + size + pad;
  return ok_status();
}

Status ImageSet::emit_tar_bytes(const std::string& name, const void* data, uint64_t size) {
  char hdr[512];
  tar_encode_header(name, size, hdr);
  auto st = write_full(out_fd_, hdr, sizeof hdr);
  if (st) st = write_full(out_fd_, data, size);
  static const char zeros[512] = {};
  uint64_t pad = (512 - size % 512) % 512;
  if (st) st = write_full(out_fd_, zeros, pad);
  if (!st) return make_errno(st.error().err, "stream: cannot write %s", name.c_str());
  out_off_ += 512 + size + pad;
  return ok_status();
}

Status ImageSet::write_object(const std::string& name, ImageKind kind, const nlohmann::json& data) {
  if (!image_kind_info(kind).cbor) return make_error("%s: not a record image kind", name.c_str());
  TRY_STATUS(fault_point("image write"));
  std::vector<uint8_t> cbor = nlohmann::json::to_cbor(data);
  if (stream_ && writing_ && !finished_) {
    TRY_STATUS(check_image_file_name(name));
    ImageHeader h = make_header(kind, cbor.size(), crc32c(0, cbor.data(), cbor.size()));
    std::vector<uint8_t> all(sizeof h + cbor.size());
    memcpy(all.data(), &h, sizeof h);
    memcpy(all.data() + sizeof h, cbor.data(), cbor.size());
    TRY_STATUS(emit_tar_bytes(name, all.data(), all.size()));
    written_.push_back(name);
    return ok_status();
  }
  auto w = TRY(create(name, kind));
  TRY_STATUS(w->write(cbor.data(), cbor.size()));
  return w->close();
}

Status ImageSet::finish() {
  if (finished_) return ok_status();
  finished_ = true;
  if (stream_ && writing_) {
    static const char zeros[1024] = {};
    auto st = write_full(out_fd_, zeros, sizeof zeros);
    if (!st) return make_errno(st.error().err, "stream: cannot write the end of the archive");
  } else if (dir_.valid()) {
    if (fsync(dir_.get()) < 0 && errno != EINVAL)
      return make_errno(errno, "cannot sync %s", where_.c_str());
  }
  return ok_status();
}

std::vector<std::string> ImageSet::names() const {
  std::vector<std::string> out;
  if (!members_.empty() || stream_) {
    for (auto& [n, _] : members_) out.push_back(n);
    return out;
  }
  if (!dir_.valid()) return out;
  int dfd = dup(dir_.get());
  if (dfd < 0) return out;
  DIR* d = fdopendir(dfd);
  if (!d) {
    ::close(dfd);
    return out;
  }
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n[0] != '.' && ends_with(n, ".img")) out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool ImageSet::has(const std::string& name) const {
  if (stream_) return members_.count(name) != 0;
  struct stat st;
  return fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Result<ImageFile> ImageSet::open(const std::string& name) const {
  TRY_STATUS(check_image_file_name(name));
  TRY_STATUS(fault_point("image open"));
  ImageFile f;
  f.name_ = name;
  if (stream_) {
    auto it = members_.find(name);
    if (it == members_.end()) return make_error("%s: missing from the image set", name.c_str());
    f.fd_ = it->second;
  } else {
    int fd = openat(dir_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return make_error("%s: missing from the image set", name.c_str());
      if (errno == ELOOP) return make_error("%s: is a symlink; refusing to follow it", name.c_str());
      return make_errno(errno, "%s: cannot open", name.c_str());
    }
    f.fd_ = std::make_shared<UniqueFd>(fd);
  }
  struct stat st;
  if (fstat(f.fd(), &st) < 0) return make_errno(errno, "%s: cannot stat", name.c_str());
  if (!S_ISREG(st.st_mode)) return make_error("%s: not a regular file", name.c_str());
  uint64_t size = st.st_size;
  memset(&f.hdr_, 0, sizeof f.hdr_);
  auto r = TRY(pread_full(f.fd(), &f.hdr_, sizeof f.hdr_, 0));
  (void)r;
  TRY_STATUS(validate_header(f.hdr_, name, size));
  return f;
}

Result<nlohmann::json> ImageSet::read_object(const std::string& name, ImageKind expected) const {
  auto f = TRY(open(name));
  if (f.kind() != expected)
    return make_error("%s: offset 6: a %s image where a %s image was expected", name.c_str(),
                      f.kind_info().name, image_kind_info(expected).name);
  return f.decode();
}

// ---------------------------------------------------------------- file

Status ImageFile::read_at(uint64_t off, void* buf, size_t len) const {
  if (off > hdr_.payload_len || len > hdr_.payload_len - off)
    return make_error("%s: offset %llu: read of %zu bytes past the end of the payload", name_.c_str(),
                      (unsigned long long)(off + sizeof(ImageHeader)), len);
  auto n = pread_full(fd(), buf, len, off + sizeof(ImageHeader));
  if (!n) return make_errno(n.error().err, "%s: offset %llu: cannot read", name_.c_str(),
                            (unsigned long long)(off + sizeof(ImageHeader)));
  if (*n != len)
    return make_error("%s: offset %llu: file shrank while being read", name_.c_str(),
                      (unsigned long long)(off + sizeof(ImageHeader) + *n));
  return ok_status();
}

Status ImageFile::verify() const {
  std::vector<char> buf(std::min<uint64_t>(hdr_.payload_len, 4 << 20));
  uint32_t crc = 0;
  for (uint64_t off = 0; off < hdr_.payload_len;) {
    size_t n = std::min<uint64_t>(buf.size(), hdr_.payload_len - off);
    TRY_STATUS(read_at(off, buf.data(), n));
    crc = crc32c(crc, buf.data(), n);
    off += n;
  }
  if (!checksum_matches(crc, hdr_.payload_crc)) return make_error("%s: offset 12: payload checksum mismatch", name_.c_str());
  return ok_status();
}

Result<nlohmann::json> ImageFile::decode() const {
  if (!kind_info().cbor) return make_error("%s: a %s image holds no record", name_.c_str(), kind_info().name);
  std::vector<uint8_t> buf(hdr_.payload_len);
  TRY_STATUS(read_at(0, buf.data(), buf.size()));
  if (!checksum_matches(crc32c(0, buf.data(), buf.size()), hdr_.payload_crc))
    return make_error("%s: offset 12: payload checksum mismatch", name_.c_str());
  try {
    return nlohmann::json::from_cbor(buf);
  } catch (const nlohmann::json::parse_error& e) {
    return make_error("%s: offset %llu: bad CBOR record: %s", name_.c_str(),
                      (unsigned long long)(sizeof(ImageHeader) + e.byte), e.what());
  } catch (const nlohmann::json::exception& e) {
    return make_error("%s: offset 32: bad CBOR record: %s", name_.c_str(), e.what());
  }
}

}  // namespace cr
